//go:build amd64 && !purego

package prefetch

import "github.com/tunterm/tunterm/dataplane/internal/cpuid"

// supported: CPUID 0x80000001 ECX bit 8, which AMD calls 3DNowPrefetch and
// Intel PRFCHW (PREFETCHW).
var supported = func() bool {
	if max, _, _, _ := cpuid.CPUID(0x80000000, 0); max < 0x80000001 {
		return false
	}
	_, _, c, _ := cpuid.CPUID(0x80000001, 0)
	return c&(1<<8) != 0
}()

//go:noescape
func forWrite(p *byte, n int)
