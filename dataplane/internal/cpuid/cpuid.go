//go:build amd64

// Package cpuid runs the x86 CPUID instruction, for the feature bits that
// golang.org/x/sys/cpu does not report (VAES and VPCLMULQDQ without
// AVX-512, PREFETCHW).
package cpuid

// CPUID returns EAX, EBX, ECX and EDX of CPUID leaf eax, subleaf ecx.
//
//go:noescape
func CPUID(eax, ecx uint32) (a, b, c, d uint32)

// HasPREFETCHW reports CPUID 0x80000001 ECX bit 8, which AMD calls
// 3DNowPrefetch and Intel PRFCHW: the processor has PREFETCHW.
func HasPREFETCHW() bool {
	if max, _, _, _ := CPUID(0x80000000, 0); max < 0x80000001 {
		return false
	}
	_, _, c, _ := CPUID(0x80000001, 0)
	return c&(1<<8) != 0
}
