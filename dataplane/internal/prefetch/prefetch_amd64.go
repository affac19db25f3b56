//go:build amd64 && !purego

package prefetch

// supported: CPUID 0x80000001 ECX bit 8, which AMD calls 3DNowPrefetch and
// Intel PRFCHW (PREFETCHW).
var supported = func() bool {
	if max, _, _, _ := cpuid(0x80000000, 0); max < 0x80000001 {
		return false
	}
	_, _, c, _ := cpuid(0x80000001, 0)
	return c&(1<<8) != 0
}()

//go:noescape
func cpuid(eax, ecx uint32) (a, b, c, d uint32)

//go:noescape
func forWrite(p *byte, n int)
