package pipeline_test

import (
	"strings"
	"testing"

	"github.com/tunterm/tunterm/dataplane/stats"
)

// FuzzPipeline feeds arbitrary frames to both directions of a worker
// programmed with an ESP tunnel and a plaintext one: no panic, no leaked
// buffer, and every received frame is either forwarded or counted as
// dropped exactly once.
func FuzzPipeline(f *testing.F) {
	s := suites[0]
	ap := apSA(f, s)
	f.Add(apFrame(f, ap, inner(f, c1, host, 200, []byte("seed"))), false)
	f.Add(l2tpIP(f, "198.18.0.2", 11, ck1, true, inner(f, c1, host, 100, nil)), false)
	f.Add(inner(f, host, c1, 200, []byte("up")), true)
	f.Add(inner(f, host, bc, 100, []byte("flood")), true)
	r := newRig(f, strings.Replace(espYAML(s), "fdb_size: 1048576", "fdb_size: 4096", 1))
	r.keep = false
	fates := 0
	r.w.Taps.Set(nil, nil, func(_ stats.Dir, _ int, _ stats.Reason, _ int) { fates++ })
	f.Fuzz(func(t *testing.T, frame []byte, fromUp bool) {
		fates = 0
		p, dir := r.down, stats.FromDown
		if fromUp {
			p, dir = r.up, stats.FromUp
		}
		before := stats.Sum(&r.w.Counters).RxPkts[dir]
		p.Inject(frame, 0)
		p.Inject(frame, 0) // twice: the second may hit learned state
		for p.Pending() > 0 {
			p.Receive(&r.rx)
			r.w.Process(dir, &r.rx)
		}
		if n := r.pool.InUse(); n != 0 {
			t.Fatalf("%d frame buffers leaked", n)
		}
		if fates != 2 {
			t.Fatalf("%d fates for 2 frames", fates)
		}
		if rx := stats.Sum(&r.w.Counters).RxPkts[dir] - before; rx != 2 {
			t.Fatalf("rx = %d, want 2", rx)
		}
	})
}
