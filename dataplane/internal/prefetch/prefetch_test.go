package prefetch

import (
	"bytes"
	"testing"
)

// TestForWriteChangesNothing: any start, any length, at the edges of the
// buffer, the bytes stay as they were. (Whether the processor has the
// instruction is cpuid.TestHasPREFETCHW's; what it is for only a live run
// can show: docs/performance.md, "Frames asked for writable".)
func TestForWriteChangesNothing(t *testing.T) {
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
		}
	}
	ForWrite(nil)
	if !bytes.Equal(buf, want) {
		t.Error("ForWrite changed the buffer")
	}
}
