package prefetch

import (
	"bytes"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestChangesNothing: ForWrite and ForRead, any start, any length, at the
// edges of the buffer, leave the bytes as they were. (Whether the processor
// has PREFETCHW is cpuid.TestHasPREFETCHW's; what they are for only a live
// run can show: docs/performance.md, "Frames asked for writable" and "the
// crypto object and State asked for, not loaded".)
func TestChangesNothing(t *testing.T) {
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	want := bytes.Clone(buf)
	for _, off := range []int{0, 1, 63, 64, 65, 1000, 4095} {
		for _, n := range []int{0, 1, 2, 63, 64, 65, 127, 128, 1400, 4096} {
			if off+n > len(buf) {
				continue
			}
			ForWrite(buf[off : off+n])
			sink += ForRead(unsafe.Pointer(unsafe.SliceData(buf[off:])), uintptr(n))
		}
	}
	ForWrite(nil)
	if !bytes.Equal(buf, want) {
		t.Error("a prefetch changed the buffer")
	}
}

var sink uint64

// TestStaysInside: ForRead of bytes that end just before an unreadable page
// does not fault (where it reads, it reads only inside [p, p+n)).
func TestStaysInside(t *testing.T) {
	page := os.Getpagesize()
	m, err := unix.Mmap(-1, 0, 2*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	if err := unix.Mprotect(m[page:], unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 63, 64, 65, 100, page} {
		sink += ForRead(unsafe.Pointer(&m[page-n]), uintptr(n)) // kept, so its loads are too
		ForWrite(m[page-n : page])
	}
}
