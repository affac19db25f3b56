//go:build amd64 && !purego

package prefetch

import (
	"unsafe"

	"github.com/tunterm/tunterm/dataplane/internal/cpuid"
)

var supported = cpuid.HasPREFETCHW()

//go:noescape
func forWrite(p *byte, n int)

//go:noescape
func forRead(p unsafe.Pointer, n uintptr) uint64
