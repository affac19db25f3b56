//go:build amd64

package cpuid

import (
	"encoding/binary"
	"os"
	"slices"
	"strings"
	"testing"
)

// cpuinfo returns the value of the first line of /proc/cpuinfo whose key
// is key: what the kernel read with the same instruction.
func cpuinfo(t *testing.T, key string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skipf("SKIPPED: no /proc/cpuinfo: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("/proc/cpuinfo has no %q line", key)
	return ""
}

// TestVendor: leaf 0's vendor string (EBX, EDX, ECX) is the vendor_id the
// kernel shows.
func TestVendor(t *testing.T) {
	want := cpuinfo(t, "vendor_id")
	_, bx, cx, dx := CPUID(0, 0)
	var id [12]byte
	binary.LittleEndian.PutUint32(id[0:], bx)
	binary.LittleEndian.PutUint32(id[4:], dx)
	binary.LittleEndian.PutUint32(id[8:], cx)
	if string(id[:]) != want {
		t.Errorf("CPUID(0) vendor %q, /proc/cpuinfo says %q", id, want)
	}
}

// TestHasPREFETCHW: the bit we read is the one the kernel reports as the
// "3dnowprefetch" flag.
func TestHasPREFETCHW(t *testing.T) {
	want := slices.Contains(strings.Fields(cpuinfo(t, "flags")), "3dnowprefetch")
	if got := HasPREFETCHW(); got != want {
		t.Errorf("HasPREFETCHW() = %v, /proc/cpuinfo has 3dnowprefetch: %v", got, want)
	}
}
