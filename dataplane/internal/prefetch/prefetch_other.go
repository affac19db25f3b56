//go:build !amd64 || purego

package prefetch

import "unsafe"

const supported = false

func forWrite(*byte, int) {}

// forRead reads one byte of every line of [p, p+n), n > 0, and returns
// their sum.
func forRead(p unsafe.Pointer, n uintptr) uint64 {
	var h uint64
	for o := uintptr(0); o < n; o += 64 {
		h += uint64(*(*byte)(unsafe.Add(p, o)))
	}
	return h + uint64(*(*byte)(unsafe.Add(p, n-1)))
}
