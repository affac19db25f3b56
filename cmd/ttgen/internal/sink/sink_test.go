package sink

import (
	"os"
	"testing"

	"github.com/cilium/ebpf"
)

// TestCounts runs the sink program on frames with BPF_PROG_RUN (no
// interface needed) and checks the verdict and the per-CPU counters.
func TestCounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING: needs root (BPF)")
	}
	s, err := load()
	if err != nil {
		t.Skipf("SKIPPING: cannot load the sink program: %v", err)
	}
	defer s.Close()
	var want uint64
	for _, n := range []int{60, 128, 1514} {
		ret, err := s.prog.Run(&ebpf.RunOptions{Data: make([]byte, n)})
		if err != nil {
			t.Fatal(err)
		}
		if ret != 1 {
			t.Errorf("sink returned %d for a %d-byte frame, want XDP_DROP (1)", ret, n)
		}
		want += uint64(n)
	}
	frames, bytes, err := s.Read()
	if err != nil {
		t.Fatal(err)
	}
	if frames != 3 || bytes != want {
		t.Errorf("Read() = %d frames, %d bytes; want 3, %d", frames, bytes, want)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
}
