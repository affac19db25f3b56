// Package prefetch asks the processor to bring memory into its cache
// before the code that needs it runs.
package prefetch

import "unsafe"

// ForWrite asks for every cache line of b in a state this core may write
// (x86 PREFETCHW: one read-for-ownership), without waiting for them. For
// a frame another CPU has just written (the kernel's copy into the UMEM),
// a plain read leaves the line shared with that CPU and the first write
// to it then waits a second time, for the other copy to be invalidated;
// the worker encrypts and decrypts frames in place, so it writes every
// line it reads. It does nothing where the processor lacks PREFETCHW
// (cpuid.HasPREFETCHW) or elsewhere than amd64.
func ForWrite(b []byte) {
	if supported && len(b) > 0 {
		forWrite(&b[0], len(b))
	}
}

// ForRead asks for every cache line of the n bytes at p to be brought into
// this core's cache, and returns a value that means nothing (callers sum it
// into a sink). On amd64 it issues PREFETCHT0, which retires at once: a
// loop over many cold objects then does not stall once the core's reorder
// window is full of loads waiting for memory, and the misses of many
// objects overlap. Elsewhere it reads one byte of every line, and the
// returned sum keeps those loads from being optimised away. p must point
// to n readable bytes.
func ForRead(p unsafe.Pointer, n uintptr) uint64 {
	if n == 0 {
		return 0
	}
	return forRead(p, n)
}
