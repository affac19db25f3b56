package ring

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tunterm/tunterm/dataplane/port"
)

// The concurrent tests only spin with runtime.Gosched when a side cannot make
// progress: they are bounded by the item count, never by time, and assert
// nothing about speed.

// TestConcurrentFIFO moves sequence-numbered descriptors from a producer
// goroutine to a consumer goroutine with random batch sizes on both sides
// (including batches larger than the ring and empty ones) while a third
// goroutine polls Len. Every item must arrive exactly once, in order.
func TestConcurrentFIFO(t *testing.T) {
	// A 2-slot ring hands over nearly every item alone, which is slow when
	// the machine is busy: it gets fewer items.
	for _, tc := range []struct{ c, items int }{{2, 200_000}, {16, 1_000_000}, {256, 2_000_000}} {
		c, total := tc.c, scale(tc.items)
		t.Run(fmt.Sprintf("cap=%d", c), func(t *testing.T) {
			r := New[port.Frame](c)
			maxBatch := min(2*c+3, 80)
			var wg sync.WaitGroup
			var done, stop atomic.Bool
			var refused, lenCalls atomic.Uint64

			wg.Go(func() { // producer
				rng := rand.New(rand.NewPCG(1, uint64(c)))
				batch := make([]port.Frame, maxBatch)
				next := 0
				for next < total && !stop.Load() {
					if rng.IntN(4) == 0 {
						if r.Enqueue(frameFor(next)) {
							next++
						} else {
							refused.Add(1)
							runtime.Gosched()
						}
						continue
					}
					k := min(rng.IntN(maxBatch+1), total-next)
					for i := range k {
						batch[i] = frameFor(next + i)
					}
					n := r.EnqueueBatch(batch[:k])
					next += n // batch[n:k] stay ours; they are rebuilt next round
					if n < k {
						refused.Add(1)
						runtime.Gosched()
					}
				}
			})

			var got int
			var bad error
			wg.Go(func() { // consumer
				defer done.Store(true)
				rng := rand.New(rand.NewPCG(2, uint64(c)))
				dst := make([]port.Frame, maxBatch)
				for got < total && bad == nil {
					var n int
					if rng.IntN(4) == 0 {
						if f, ok := r.Dequeue(); ok {
							dst[0], n = f, 1
						}
					} else {
						n = r.DequeueBatch(dst[:rng.IntN(maxBatch+1)])
					}
					if n == 0 {
						runtime.Gosched()
						continue
					}
					for _, f := range dst[:n] {
						if want := frameFor(got); f.TS != want.TS || f.ID != want.ID || f.Off != want.Off || f.Len != want.Len {
							bad = fmt.Errorf("item %d: got %+v, want %+v", got, f, want)
							stop.Store(true)
							return
						}
						got++
					}
				}
			})

			wg.Go(func() { // observer: Len is safe from any goroutine
				for !done.Load() {
					if l := r.Len(); l < 0 || l > c {
						t.Errorf("Len() = %d outside [0, %d]", l, c)
						return
					}
					lenCalls.Add(1)
					runtime.Gosched()
				}
			})

			wg.Wait()
			if bad != nil {
				t.Fatal(bad)
			}
			if got != total {
				t.Fatalf("received %d items, want %d", got, total)
			}
			if v, ok := r.Dequeue(); ok {
				t.Fatalf("extra item after the last: %+v", v)
			}
			checkInvariants(t, r)
			t.Logf("%d items, %d refusals, %d Len calls", total, refused.Load(), lenCalls.Load())
		})
	}
}

// frameFor builds the descriptor for sequence number i, every field derived
// from i so a torn or misplaced copy shows.
func frameFor(i int) port.Frame {
	return port.Frame{Off: i % 251, Len: i % 1499, ID: uint32(i * 7), TS: int64(i)}
}

// TestPayloadHandoff passes real buffers the way the dataplane will: the
// producer writes a frame into a buffer and enqueues its descriptor; the
// consumer reads the bytes, rewrites them in place and sends the buffer back
// over a second ring; the producer reuses it. No locks anywhere, so the race
// detector checks that the rings order every payload access in both
// directions.
func TestPayloadHandoff(t *testing.T) {
	const bufSize = 128
	total := scale(300_000)
	fwd := New[port.Frame](64)
	back := New[port.Frame](256) // holds every buffer: returns never fail

	bufs := make([][]byte, back.Cap())
	free := make([]port.Frame, 0, len(bufs))
	for i := range bufs {
		bufs[i] = make([]byte, bufSize)
		free = append(free, port.Frame{Buf: bufs[i], ID: uint32(i)})
	}

	var wg sync.WaitGroup
	var perr, cerr error
	var stop atomic.Bool // set by a side that fails, so the other does not wait forever
	wg.Go(func() {       // producer: owns free and the buffers in it
		defer stop.Store(true)
		rng := rand.New(rand.NewPCG(3, 4))
		out := make([]port.Frame, 0, 64)
		recl := make([]port.Frame, 64)
		seq := 0
		for seq < total && !stop.Load() {
			// Take back what the consumer has finished with, checking
			// that its in-place rewrite is visible here.
			n := back.DequeueBatch(recl)
			for _, f := range recl[:n] {
				b := f.Buf
				s := binary.BigEndian.Uint64(b)
				for j := 8; j < bufSize; j++ {
					if b[j] != ^byte(s+uint64(j)) {
						perr = fmt.Errorf("returned buffer %d (seq %d): byte %d = %#x, want %#x", f.ID, s, j, b[j], ^byte(s+uint64(j)))
						return
					}
				}
				free = append(free, port.Frame{Buf: b, ID: f.ID})
			}
			// Fill a batch of fresh frames.
			k := min(rng.IntN(65), len(free), total-seq)
			out = out[:0]
			for range k {
				f := free[len(free)-1]
				free = free[:len(free)-1]
				b := f.Buf
				binary.BigEndian.PutUint64(b, uint64(seq+len(out)))
				for j := 8; j < bufSize; j++ {
					b[j] = byte(seq + len(out) + j)
				}
				f.Off, f.Len, f.TS = 0, bufSize, int64(seq+len(out))
				out = append(out, f)
			}
			sent := fwd.EnqueueBatch(out)
			seq += sent
			// Unsent frames are still ours: back to the free list (the
			// dataplane would count a drop; here they are retried).
			free = append(free, out[sent:]...)
			if sent == 0 && n == 0 {
				runtime.Gosched()
			}
		}
	})

	wg.Go(func() { // consumer
		in := make([]port.Frame, 64)
		want := 0
		for want < total {
			n := fwd.DequeueBatch(in[:1+want%64])
			if n == 0 {
				if stop.Load() && fwd.Len() == 0 {
					if perr == nil && want < total {
						cerr = fmt.Errorf("producer stopped after %d items", want)
					}
					return
				}
				runtime.Gosched()
				continue
			}
			for i := range in[:n] {
				f := &in[i]
				b := f.Bytes()
				s := binary.BigEndian.Uint64(b)
				if s != uint64(want) || f.TS != int64(want) {
					cerr = fmt.Errorf("got seq %d (TS %d), want %d", s, f.TS, want)
					stop.Store(true)
					return
				}
				for j := 8; j < bufSize; j++ {
					if b[j] != byte(s+uint64(j)) {
						cerr = fmt.Errorf("seq %d: byte %d = %#x, want %#x", s, j, b[j], byte(s+uint64(j)))
						stop.Store(true)
						return
					}
					b[j] = ^b[j] // "process" in place
				}
				want++
			}
			if m := back.EnqueueBatch(in[:n]); m != n {
				cerr = fmt.Errorf("return ring refused %d of %d buffers", n-m, n)
				stop.Store(true)
				return
			}
		}
	})
	wg.Wait()
	if perr != nil || cerr != nil {
		t.Fatalf("producer: %v; consumer: %v", perr, cerr)
	}
	// Every buffer is accounted for: free, or on its way back.
	if got := len(free) + back.Len(); got != len(bufs) || fwd.Len() != 0 {
		t.Fatalf("%d buffers free or returning, %d in flight, want %d and 0", got, fwd.Len(), len(bufs))
	}
}
