package ring

import (
	"fmt"
	"math/bits"
	"slices"
	"testing"

	"github.com/tunterm/tunterm/dataplane/port"
)

func TestNewCapacity(t *testing.T) {
	for _, tc := range []struct{ in, want int }{
		{1, 2}, {2, 2}, {3, 4}, {4, 4}, {5, 8}, {63, 64}, {64, 64}, {65, 128}, {1000, 1024}, {1 << 20, 1 << 20},
	} {
		t.Run(fmt.Sprint(tc.in), func(t *testing.T) {
			r := New[int](tc.in)
			if got := r.Cap(); got != tc.want {
				t.Errorf("New(%d).Cap() = %d, want %d", tc.in, got, tc.want)
			}
			if r.Len() != 0 {
				t.Errorf("New(%d).Len() = %d, want 0", tc.in, r.Len())
			}
		})
	}
}

func TestNewPanics(t *testing.T) {
	bad := []int{0, -1, -1 << 20}
	if bits.UintSize == 64 {
		huge := uint64(maxCap) + 1
		bad = append(bad, int(huge))
	}
	for _, c := range bad {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%d) did not panic", c)
				}
			}()
			New[int](c)
		})
	}
}

// TestFillDrain fills rings of several sizes to the brim, one element and one
// batch at a time, and drains them, across the 2^64 wrap of the counters too.
func TestFillDrain(t *testing.T) {
	for _, start := range []uint64{0, ^uint64(0) - 2} {
		for _, c := range []int{2, 4, 64} {
			t.Run(fmt.Sprintf("start=%#x/cap=%d", start, c), func(t *testing.T) {
				r := newAt[int](c, start)
				if v, ok := r.Dequeue(); ok {
					t.Fatalf("Dequeue() on empty = %d, true", v)
				}
				for i := range c {
					if !r.Enqueue(i) {
						t.Fatalf("Enqueue(%d) = false with Len %d, Cap %d", i, r.Len(), c)
					}
				}
				if r.Enqueue(-1) {
					t.Fatal("Enqueue on a full ring = true")
				}
				if n := r.EnqueueBatch([]int{-1, -2}); n != 0 {
					t.Fatalf("EnqueueBatch on a full ring = %d, want 0", n)
				}
				if r.Len() != c {
					t.Fatalf("Len() = %d, want %d", r.Len(), c)
				}
				checkInvariants(t, r)
				for i := range c {
					if v, ok := r.Dequeue(); !ok || v != i {
						t.Fatalf("Dequeue() = %d, %v, want %d, true", v, ok, i)
					}
				}
				if v, ok := r.Dequeue(); ok {
					t.Fatalf("Dequeue() on drained ring = %d, true", v)
				}
				checkInvariants(t, r)

				// Same with batches: one batch fills it exactly.
				in := make([]int, c)
				for i := range in {
					in[i] = 100 + i
				}
				if n := r.EnqueueBatch(in); n != c {
					t.Fatalf("EnqueueBatch(%d) = %d", c, n)
				}
				out := make([]int, c+3)
				if n := r.DequeueBatch(out); n != c || !slices.Equal(out[:n], in) {
					t.Fatalf("DequeueBatch = %d %v, want %d %v", n, out[:n], c, in)
				}
				if n := r.DequeueBatch(out); n != 0 {
					t.Fatalf("DequeueBatch on empty = %d, want 0", n)
				}
				checkInvariants(t, r)
			})
		}
	}
}

// TestWrapAround runs many laps of uneven enqueue/dequeue runs, so slots are
// reused and batches straddle the end of the buffer in every position.
func TestWrapAround(t *testing.T) {
	for _, start := range []uint64{0, ^uint64(0) - 1000} {
		t.Run(fmt.Sprintf("start=%#x", start), func(t *testing.T) {
			r := newAt[uint64](8, start)
			var next, want uint64
			in := make([]uint64, 16)
			out := make([]uint64, 16)
			for lap := range 5000 {
				k := lap%7 + 1
				// Alternate single and batch operations on each side.
				if lap%2 == 0 {
					for range k {
						if r.Enqueue(next) {
							next++
						}
					}
				} else {
					for i := range k {
						in[i] = next + uint64(i)
					}
					next += uint64(r.EnqueueBatch(in[:k]))
				}
				if lap%3 == 0 {
					for range k {
						v, ok := r.Dequeue()
						if !ok {
							break
						}
						if v != want {
							t.Fatalf("lap %d: Dequeue() = %d, want %d", lap, v, want)
						}
						want++
					}
				} else {
					n := r.DequeueBatch(out[:k])
					for _, v := range out[:n] {
						if v != want {
							t.Fatalf("lap %d: DequeueBatch gave %d, want %d", lap, v, want)
						}
						want++
					}
				}
				if got := uint64(r.Len()); got != next-want {
					t.Fatalf("lap %d: Len() = %d, want %d", lap, got, next-want)
				}
				checkInvariants(t, r)
			}
			if next < 10000 {
				t.Fatalf("only %d items went through", next)
			}
		})
	}
}

// TestBatchPartial: a batch larger than the free space enqueues a prefix, the
// rest stays with the caller; a dst larger than the contents gets a prefix.
func TestBatchPartial(t *testing.T) {
	r := New[int](8)
	if n := r.EnqueueBatch([]int{0, 1, 2, 3, 4}); n != 5 {
		t.Fatalf("EnqueueBatch(5) = %d, want 5", n)
	}
	if n := r.EnqueueBatch([]int{5, 6, 7, 8, 9, 10}); n != 3 {
		t.Fatalf("EnqueueBatch(6) with 3 free = %d, want 3", n)
	}
	if n := r.EnqueueBatch([]int{8}); n != 0 {
		t.Fatalf("EnqueueBatch on full = %d, want 0", n)
	}
	out := make([]int, 3)
	if n := r.DequeueBatch(out); n != 3 || !slices.Equal(out, []int{0, 1, 2}) {
		t.Fatalf("DequeueBatch(3) = %d %v, want 3 [0 1 2]", n, out[:n])
	}
	// Three free slots at the front of the buffer: the batch wraps.
	if n := r.EnqueueBatch([]int{8, 9, 10, 11}); n != 3 {
		t.Fatalf("EnqueueBatch(4) with 3 free = %d, want 3", n)
	}
	out = make([]int, 20)
	n := r.DequeueBatch(out)
	if want := []int{3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(out[:n], want) {
		t.Fatalf("DequeueBatch(20) = %v, want %v", out[:n], want)
	}
	for i, v := range out[n:] {
		if v != 0 {
			t.Fatalf("DequeueBatch wrote dst[%d] = %d beyond the %d it returned", n+i, v, n)
		}
	}
	checkInvariants(t, r)
}

// TestBatchEmpty: empty and nil slices are no-ops on full and empty rings.
func TestBatchEmpty(t *testing.T) {
	r := New[int](2)
	for _, s := range [][]int{nil, {}} {
		if n := r.EnqueueBatch(s); n != 0 {
			t.Errorf("EnqueueBatch(%v) = %d on empty ring", s, n)
		}
		if n := r.DequeueBatch(s); n != 0 {
			t.Errorf("DequeueBatch(%v) = %d on empty ring", s, n)
		}
	}
	r.Enqueue(1)
	r.Enqueue(2)
	for _, s := range [][]int{nil, {}} {
		if n := r.EnqueueBatch(s); n != 0 {
			t.Errorf("EnqueueBatch(%v) = %d on full ring", s, n)
		}
		if n := r.DequeueBatch(s); n != 0 {
			t.Errorf("DequeueBatch(%v) = %d on full ring", s, n)
		}
	}
	if r.Len() != 2 {
		t.Errorf("Len() = %d after no-ops, want 2", r.Len())
	}
	checkInvariants(t, r)
}

// TestZeroesVacatedSlots: dequeued slots hold no stale descriptor.
func TestZeroesVacatedSlots(t *testing.T) {
	r := New[port.Frame](4)
	buf := make([]byte, 64)
	f := func(i int) port.Frame { return port.Frame{Buf: buf, Off: i, Len: 1, ID: uint32(i), TS: int64(i)} }
	r.Enqueue(f(1))
	r.EnqueueBatch([]port.Frame{f(2), f(3), f(4)})
	r.Dequeue()
	r.DequeueBatch(make([]port.Frame, 2))
	r.EnqueueBatch([]port.Frame{f(5), f(6)}) // wraps
	r.DequeueBatch(make([]port.Frame, 3))    // wraps
	if r.Len() != 0 {
		t.Fatalf("Len() = %d, want 0", r.Len())
	}
	for i, s := range r.buf {
		if s.Buf != nil || s.Off != 0 || s.Len != 0 || s.ID != 0 || s.TS != 0 {
			t.Errorf("slot %d = %+v after dequeue, want zero", i, s)
		}
	}
}

// TestCachedIndices: each side reads the other's index only when its cached
// copy cannot satisfy the request.
func TestCachedIndices(t *testing.T) {
	r := New[int](4)
	r.EnqueueBatch([]int{1, 2, 3})
	if r.ctail != 0 {
		t.Fatalf("consumer's cached tail = %d before any dequeue, want 0", r.ctail)
	}
	r.Dequeue() // looks empty: loads tail (3)
	if r.ctail != 3 {
		t.Fatalf("cached tail = %d after refresh, want 3", r.ctail)
	}
	r.Enqueue(4)
	r.Dequeue() // served from the cache
	if r.ctail != 3 {
		t.Fatalf("cached tail = %d, want 3 (no refresh needed)", r.ctail)
	}
	r.Dequeue()
	if r.ctail != 3 {
		t.Fatalf("cached tail = %d, want 3 (no refresh needed)", r.ctail)
	}
	if r.phead != 0 {
		t.Fatalf("producer's cached head = %d, want 0 (never looked full)", r.phead)
	}
	r.Enqueue(5) // tail 5, head 3, cached head 0: looks full, refreshes
	if r.phead != 3 {
		t.Fatalf("cached head = %d after refresh, want 3", r.phead)
	}
	out := make([]int, 4)
	if n := r.DequeueBatch(out); n != 2 || out[0] != 4 || out[1] != 5 {
		t.Fatalf("DequeueBatch(4) = %d %v, want 2 [4 5]", n, out[:n])
	}
	checkInvariants(t, r)
}
