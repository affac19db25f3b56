//go:build amd64

package cpuid

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

// TestVendor: leaf 0's vendor string (EBX, EDX, ECX) is the vendor_id the
// kernel shows in /proc/cpuinfo.
func TestVendor(t *testing.T) {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Skipf("SKIPPED: no /proc/cpuinfo: %v", err)
	}
	var want string
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "vendor_id" {
			want = strings.TrimSpace(v)
			break
		}
	}
	_, bx, cx, dx := CPUID(0, 0)
	var id [12]byte
	binary.LittleEndian.PutUint32(id[0:], bx)
	binary.LittleEndian.PutUint32(id[4:], dx)
	binary.LittleEndian.PutUint32(id[8:], cx)
	if string(id[:]) != want {
		t.Errorf("CPUID(0) vendor %q, /proc/cpuinfo says %q", id, want)
	}
}
