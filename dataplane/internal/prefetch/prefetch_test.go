package prefetch

import (
	"bytes"
	"os"
	"runtime"
	"strings"
	"testing"
)

// TestSupported: the CPUID bit we read is the one the kernel reports as
// the "3dnowprefetch" flag in /proc/cpuinfo.
func TestSupported(t *testing.T) {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil || runtime.GOARCH != "amd64" {
		t.Skipf("SKIPPED: no /proc/cpuinfo on %s (%v)", runtime.GOARCH, err)
	}
	var flags []string
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "flags" {
			flags = strings.Fields(v)
			break
		}
	}
	want := false
	for _, f := range flags {
		want = want || f == "3dnowprefetch"
	}
	if Supported() != want {
		t.Errorf("Supported() = %v, /proc/cpuinfo has 3dnowprefetch: %v", Supported(), want)
	}
}

// TestForWriteChangesNothing: any start, any length, at the edges of the
// buffer, the bytes stay as they were.
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
