package ring

import "testing"

// newAt returns a ring whose indices all start at start, so tests can run the
// free-running uint64 counters across their wrap at 2^64.
func newAt[T any](capacity int, start uint64) *Ring[T] {
	r := New[T](capacity)
	r.head.Store(start)
	r.tail.Store(start)
	r.ptail, r.phead = start, start
	r.chead, r.ctail = start, start
	return r
}

// scale shrinks an item count under the race detector (about 10x slower and
// memory hungry) and in -short mode.
func scale(n int) int {
	if raceEnabled {
		n /= 10
	}
	if testing.Short() {
		n /= 10
	}
	return max(n, 1000)
}

// checkInvariants checks what must hold between operations on one goroutine.
func checkInvariants[T any](t testing.TB, r *Ring[T]) {
	t.Helper()
	h, tl := r.head.Load(), r.tail.Load()
	c := uint64(r.Cap())
	switch {
	case r.ptail != tl || r.chead != h:
		t.Fatalf("private copies ptail=%d chead=%d, published tail=%d head=%d", r.ptail, r.chead, tl, h)
	case tl-h > c:
		t.Fatalf("tail-head = %d, cap %d", tl-h, c)
	case tl-r.phead > c || h-r.phead > tl-r.phead:
		t.Fatalf("producer's cached head %d outside [tail %d - cap, head %d]", r.phead, tl, h)
	case r.ctail-h > tl-h:
		t.Fatalf("consumer's cached tail %d outside [head %d, tail %d]", r.ctail, h, tl)
	case r.Len() != int(tl-h):
		t.Fatalf("Len() = %d, want %d", r.Len(), tl-h)
	}
}
