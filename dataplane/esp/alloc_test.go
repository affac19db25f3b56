package esp

import (
	"fmt"
	"testing"

	"github.com/tunterm/tunterm/dataplane/stats"
)

// TestZeroAllocs: Seal and Open allocate nothing per packet, for every suite,
// with and without ESN, small and large payloads.
func TestZeroAllocs(t *testing.T) {
	const runs = 200
	for _, s := range allSuites() {
		for _, esn := range []bool{false, true} {
			for _, n := range []int{0, 100, 1400} {
				t.Run(fmt.Sprintf("%s/esn=%v/%d", s, esn, n), func(t *testing.T) {
					tx, rx := pair(t, s, esn)
					h, tr := tx.HeaderLen(), tx.MaxTrailer()
					buf := make([]byte, h+n+tr)
					if a := testing.AllocsPerRun(runs, func() {
						if _, _, r := tx.Seal(buf, h, n, 4); r != stats.OK {
							t.Fatalf("Seal = %v", r)
						}
					}); a != 0 {
						t.Errorf("Seal(%d bytes): %v allocs per packet, want 0", n, a)
					}
					// Fresh packets (AllocsPerRun calls f runs+1 times).
					pkts := make([][]byte, runs+1)
					for i := range pkts {
						pkts[i] = sealCopy(t, tx, make([]byte, n), 4)
					}
					i := 0
					if a := testing.AllocsPerRun(runs, func() {
						if _, _, r := rx.Open(pkts[i]); r != stats.OK {
							t.Fatalf("Open = %v", r)
						}
						i++
					}); a != 0 {
						t.Errorf("Open(%d bytes): %v allocs per packet, want 0", n, a)
					}
					// Drops do not allocate either.
					if a := testing.AllocsPerRun(runs, func() {
						if _, _, r := rx.Open(pkts[0]); r == stats.OK {
							t.Fatal("replayed packet accepted")
						}
					}); a != 0 {
						t.Errorf("Open(replay): %v allocs per packet, want 0", a)
					}
				})
			}
		}
	}
}
