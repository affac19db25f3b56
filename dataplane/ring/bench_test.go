package ring

import (
	"fmt"
	"runtime"
	"testing"
	"unsafe"

	"github.com/tunterm/tunterm/dataplane/port"
)

// Benchmarks move port.Frame, the dataplane's 56-byte descriptor (a []byte,
// two ints, a uint32 and an int64), by value; uint64 shows the cost of the
// ring itself. Figures from a shared 2-vCPU machine are indicative only, the
// two-goroutine ones especially: they depend on whether the two goroutines
// get two idle cores.

var sinkFrame port.Frame

func benchFrame() port.Frame {
	return port.Frame{Buf: make([]byte, port.ChunkSize), Off: port.Headroom, Len: 60, ID: 1, TS: 2}
}

// BenchmarkEnqueueDequeue: one Enqueue and one Dequeue per op, one goroutine
// (the cost of the calls with the ring lines in this core's cache).
func BenchmarkEnqueueDequeue(b *testing.B) {
	b.Run("uint64", func(b *testing.B) {
		r := New[uint64](256)
		b.ReportAllocs()
		var sum uint64
		for i := range b.N {
			r.Enqueue(uint64(i))
			v, _ := r.Dequeue()
			sum += v
		}
		sinkFrame.TS = int64(sum)
	})
	b.Run(fmt.Sprintf("frame%d", unsafe.Sizeof(port.Frame{})), func(b *testing.B) {
		r := New[port.Frame](256)
		f := benchFrame()
		b.ReportAllocs()
		for i := range b.N {
			f.TS = int64(i)
			r.Enqueue(f)
			sinkFrame, _ = r.Dequeue()
		}
	})
}

// BenchmarkBatch: one EnqueueBatch and one DequeueBatch of n descriptors per
// op on a 256-slot ring, so runs start at every offset and some wrap.
func BenchmarkBatch(b *testing.B) {
	for _, n := range []int{32, 64} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r := New[port.Frame](256)
			in := make([]port.Frame, n)
			for i := range in {
				in[i] = benchFrame()
			}
			out := make([]port.Frame, n)
			b.ReportAllocs()
			for range b.N {
				if r.EnqueueBatch(in) != n || r.DequeueBatch(out) != n {
					b.Fatal("short batch on a 256-slot ring")
				}
			}
			reportItems(b, b.N*n)
		})
	}
}

// BenchmarkSPSC: a producer goroutine hands b.N descriptors to the consumer
// (the benchmark goroutine) through a 1024-slot ring in batches of 1 (Enqueue
// / Dequeue), 32 or 64 (EnqueueBatch / DequeueBatch). When a side can make no
// progress it yields. refused/item counts producer calls that found the ring
// full (the dataplane would drop there; here the producer retries). chan is a
// buffered channel of the same size, for comparison.
func BenchmarkSPSC(b *testing.B) {
	for _, batch := range []int{1, 32, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			r := New[port.Frame](1024)
			f := benchFrame()
			refused := 0
			done := make(chan struct{})
			b.ReportAllocs()
			b.ResetTimer()
			go func() { // producer
				defer close(done)
				in := make([]port.Frame, batch)
				for i := range in {
					in[i] = f
				}
				for sent := 0; sent < b.N; {
					k := min(batch, b.N-sent)
					var n int
					if batch == 1 {
						if r.Enqueue(f) {
							n = 1
						}
					} else {
						n = r.EnqueueBatch(in[:k])
					}
					sent += n
					if n < k {
						refused++
						runtime.Gosched()
					}
				}
			}()
			out := make([]port.Frame, batch)
			for got := 0; got < b.N; {
				var n int
				if batch == 1 {
					var ok bool
					if out[0], ok = r.Dequeue(); ok {
						n = 1
					}
				} else {
					n = r.DequeueBatch(out)
				}
				if n == 0 {
					runtime.Gosched()
				}
				got += n
			}
			<-done
			reportItems(b, b.N)
			b.ReportMetric(float64(refused)/float64(b.N), "refused/item")
		})
	}
	b.Run("chan", func(b *testing.B) {
		ch := make(chan port.Frame, 1024)
		f := benchFrame()
		b.ReportAllocs()
		b.ResetTimer()
		go func() {
			for range b.N {
				ch <- f
			}
		}()
		for range b.N {
			sinkFrame = <-ch
		}
		reportItems(b, b.N)
	})
}

// reportItems adds ns/item and items/s for n items moved in the timed part.
func reportItems(b *testing.B, n int) {
	s := b.Elapsed().Seconds()
	b.ReportMetric(s*1e9/float64(n), "ns/item")
	b.ReportMetric(float64(n)/s, "items/s")
}
