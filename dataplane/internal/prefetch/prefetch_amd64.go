//go:build amd64 && !purego

package prefetch

import "github.com/tunterm/tunterm/dataplane/internal/cpuid"

var supported = cpuid.HasPREFETCHW()

//go:noescape
func forWrite(p *byte, n int)
