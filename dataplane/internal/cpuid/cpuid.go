//go:build amd64

// Package cpuid runs the x86 CPUID instruction, for the feature bits that
// golang.org/x/sys/cpu does not report (VAES and VPCLMULQDQ without
// AVX-512, PREFETCHW).
package cpuid

// CPUID returns EAX, EBX, ECX and EDX of CPUID leaf eax, subleaf ecx.
//
//go:noescape
func CPUID(eax, ecx uint32) (a, b, c, d uint32)
