package ring

import (
	"math/bits"
	"sync/atomic"
)

// pad separates the groups of fields that different cores write. 128 bytes
// rather than one 64-byte line: the struct is not cache-line aligned on the
// heap, and adjacent-line prefetchers fetch 128-byte pairs, so a 128-byte gap
// keeps the producer's and the consumer's fields out of each other's line
// pair whatever the alignment (the Linux AF_XDP ring leaves a pad line for the
// same reason).
type pad [128]byte

// maxCap is the largest capacity New accepts (its round-up cannot overflow).
const maxCap = 1 << 62

// Ring is a bounded lock-free FIFO queue of T for exactly one producer
// goroutine and one consumer goroutine.
//
// Concurrency contract: Enqueue and EnqueueBatch are called only by the
// producer, Dequeue and DequeueBatch only by the consumer; the two may run at
// the same time. Either role may move to another goroutine only across a
// happens-before edge (the old goroutine has stopped and the new one learnt
// that through a channel, a WaitGroup, a mutex ...). Len and Cap are safe
// from any goroutine. A Ring is not copyable after first use.
//
// An element passes by value; whatever it points to (a frame buffer) belongs
// to the producer until the Enqueue that stores it returns true, and to the
// consumer from the Dequeue that returns it. A refused element still belongs
// to the caller, which must count the drop and release what it holds.
type Ring[T any] struct {
	_ pad
	// Read-only after New: read by both sides, written by neither.
	buf  []T
	mask uint64

	_ pad
	// Producer group. tail is the next index to write, published with one
	// atomic store per call; ptail is the producer's plain copy of it and
	// phead its cached view of head, which lags and is refreshed only when
	// the ring looks too full for the request.
	tail  atomic.Uint64
	ptail uint64
	phead uint64

	_ pad
	// Consumer group. head is the next index to read, published once per
	// call; chead is the consumer's plain copy and ctail its cached view of
	// tail, refreshed only when the ring looks too empty for the request.
	head  atomic.Uint64
	chead uint64
	ctail uint64

	_ pad
}

// New returns an empty ring holding capacity elements, rounded up to a power
// of two, at least 2. It panics if capacity <= 0 or above 2^62: a ring's size
// is configuration, checked before the dataplane starts.
func New[T any](capacity int) *Ring[T] {
	if capacity <= 0 || uint64(capacity) > maxCap {
		panic("ring: capacity out of range")
	}
	c := uint64(2)
	if capacity > 2 {
		c = 1 << bits.Len64(uint64(capacity)-1)
	}
	return &Ring[T]{buf: make([]T, c), mask: c - 1}
}

// Cap returns the ring's capacity (a power of two).
func (r *Ring[T]) Cap() int { return len(r.buf) }

// Len returns the number of elements in the ring. Called by the producer it
// is an upper bound, by the consumer a lower bound; from any other goroutine
// it is a snapshot that may be stale by the time it returns. It costs two
// atomic loads of contended lines: use it for telemetry, not per frame.
func (r *Ring[T]) Len() int {
	h := r.head.Load() // head first: the tail loaded after it is >= it
	n := r.tail.Load() - h
	if n > uint64(len(r.buf)) { // head moved on between the loads
		n = uint64(len(r.buf))
	}
	return int(n)
}

// Enqueue appends v and reports whether there was room. Producer only. On
// success it publishes with one atomic store; it loads the consumer's index
// only when its cached copy says the ring is full.
func (r *Ring[T]) Enqueue(v T) bool {
	t := r.ptail
	if t-r.phead == uint64(len(r.buf)) {
		r.phead = r.head.Load()
		if t-r.phead == uint64(len(r.buf)) {
			return false
		}
	}
	r.buf[t&r.mask] = v
	r.ptail = t + 1
	r.tail.Store(t + 1)
	return true
}

// EnqueueBatch appends the longest prefix of vs that fits and returns its
// length; vs[n:] were not enqueued and still belong to the caller. Producer
// only. It publishes the whole prefix with one atomic store, and loads the
// consumer's index (once) only when its cached copy shows less room than
// len(vs). An empty vs is a no-op.
func (r *Ring[T]) EnqueueBatch(vs []T) int {
	n := uint64(len(vs))
	if n == 0 {
		return 0
	}
	c := uint64(len(r.buf))
	t := r.ptail
	if free := c - (t - r.phead); free < n {
		r.phead = r.head.Load()
		if free = c - (t - r.phead); free < n {
			if free == 0 {
				return 0
			}
			n = free
		}
	}
	i := t & r.mask
	k := uint64(copy(r.buf[i:], vs[:n]))
	copy(r.buf, vs[k:n]) // the part that wrapped, if any
	r.ptail = t + n
	r.tail.Store(t + n)
	return int(n)
}

// Dequeue removes and returns the oldest element; ok is false if the ring is
// empty. Consumer only. The vacated slot is zeroed (see the package doc). It
// publishes with one atomic store, and loads the producer's index only when
// its cached copy says the ring is empty.
func (r *Ring[T]) Dequeue() (v T, ok bool) {
	h := r.chead
	if h == r.ctail {
		r.ctail = r.tail.Load()
		if h == r.ctail {
			return v, false
		}
	}
	p := &r.buf[h&r.mask]
	v = *p
	var zero T
	*p = zero
	r.chead = h + 1
	r.head.Store(h + 1)
	return v, true
}

// DequeueBatch moves the oldest elements into a prefix of dst, as many as are
// available up to len(dst), and returns how many. Consumer only. The vacated
// slots are zeroed. It publishes with one atomic store, and loads the
// producer's index (once) only when its cached copy shows fewer than len(dst)
// elements. An empty dst is a no-op.
func (r *Ring[T]) DequeueBatch(dst []T) int {
	n := uint64(len(dst))
	if n == 0 {
		return 0
	}
	h := r.chead
	if avail := r.ctail - h; avail < n {
		r.ctail = r.tail.Load()
		if avail = r.ctail - h; avail < n {
			if avail == 0 {
				return 0
			}
			n = avail
		}
	}
	i := h & r.mask
	if end := i + n; end <= uint64(len(r.buf)) {
		copy(dst, r.buf[i:end])
		clear(r.buf[i:end])
	} else {
		k := uint64(copy(dst, r.buf[i:]))
		clear(r.buf[i:])
		copy(dst[k:n], r.buf[:n-k])
		clear(r.buf[:n-k])
	}
	r.chead = h + n
	r.head.Store(h + n)
	return int(n)
}
