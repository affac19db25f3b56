// Package prefetch asks the processor to bring memory into its cache
// before the code that needs it runs.
package prefetch

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
