package ring

import (
	"testing"

	"github.com/tunterm/tunterm/dataplane/port"
)

// TestZeroAllocs: no operation allocates, whether it succeeds, wraps or is
// refused, with a descriptor that holds a pointer (port.Frame's Buf).
func TestZeroAllocs(t *testing.T) {
	const runs = 1000
	r := New[port.Frame](128)
	buf := make([]byte, port.ChunkSize)
	f := port.Frame{Buf: buf, Off: port.Headroom, Len: 60, ID: 7, TS: 1}
	batch := make([]port.Frame, port.BatchSize)
	for i := range batch {
		batch[i] = f
	}
	dst := make([]port.Frame, port.BatchSize)

	for _, tc := range []struct {
		name string
		op   func()
	}{
		{"Enqueue+Dequeue", func() {
			if !r.Enqueue(f) {
				t.Fatal("Enqueue = false")
			}
			if _, ok := r.Dequeue(); !ok {
				t.Fatal("Dequeue = false")
			}
		}},
		// 64 in, 64 out on a 128 ring: runs straddle the end every other time.
		{"EnqueueBatch+DequeueBatch", func() {
			r.Enqueue(f) // shift the phase so batches wrap
			if n := r.EnqueueBatch(batch); n != len(batch) {
				t.Fatalf("EnqueueBatch = %d", n)
			}
			if n := r.DequeueBatch(dst); n != len(dst) {
				t.Fatalf("DequeueBatch = %d", n)
			}
			r.Dequeue()
		}},
		{"Len+Cap", func() { _ = r.Len() + r.Cap() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a := testing.AllocsPerRun(runs, tc.op); a != 0 {
				t.Errorf("%s: %v allocs per run, want 0", tc.name, a)
			}
		})
	}

	// Refusals and empty polls, the overload and idle cases.
	for r.Enqueue(f) {
	}
	if a := testing.AllocsPerRun(runs, func() {
		if r.Enqueue(f) || r.EnqueueBatch(batch) != 0 {
			t.Fatal("full ring accepted")
		}
	}); a != 0 {
		t.Errorf("refused Enqueue/EnqueueBatch: %v allocs per run, want 0", a)
	}
	for r.DequeueBatch(dst) > 0 {
	}
	if a := testing.AllocsPerRun(runs, func() {
		if _, ok := r.Dequeue(); ok || r.DequeueBatch(dst) != 0 {
			t.Fatal("empty ring gave an element")
		}
	}); a != 0 {
		t.Errorf("empty Dequeue/DequeueBatch: %v allocs per run, want 0", a)
	}
}
