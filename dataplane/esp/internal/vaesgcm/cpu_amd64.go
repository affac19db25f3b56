//go:build amd64 && !purego

package vaesgcm

import (
	"golang.org/x/sys/cpu"

	"github.com/tunterm/tunterm/dataplane/internal/cpuid"
)

// supported: AES-NI and PCLMULQDQ (for the 128-bit tails), AVX2 with the
// OS saving the YMM registers (x/sys/cpu checks XGETBV), and VAES and
// VPCLMULQDQ (CPUID leaf 7, ECX bits 9 and 10; x/sys/cpu reports them only
// together with AVX-512, which Zen 3 lacks).
var supported = cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ && cpu.X86.HasAVX2 && hasVAES()

func hasVAES() bool {
	if max, _, _, _ := cpuid.CPUID(0, 0); max < 7 {
		return false
	}
	_, _, c, _ := cpuid.CPUID(7, 0)
	return c&(1<<9) != 0 && c&(1<<10) != 0
}

func subWord(w uint32) uint32

//go:noescape
func ctrXOR(rk *[15][16]byte, nr int, j0 *[16]byte, dst, src *byte, n int, extra *[32]byte)

//go:noescape
func ghash(htab *table, acc, first *[16]byte, src *byte, n int, last *byte, m int)

//go:noescape
func ghashShort(htab *table, acc, first *[16]byte, src *byte, n int, last *byte, m int)

//go:noescape
func ghashInit(h *[16]byte, htab *table)
