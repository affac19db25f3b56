//go:build linux

package afpacket

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tunterm/tunterm/dataplane/port"
)

var benchSizes = []int{64, 512, 1400}

// BenchmarkTransmit sends batches of port.BatchSize frames from a port to a
// veth peer nobody reads (its stack drops them). One op is one frame.
func BenchmarkTransmit(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			tn := newTestNet(b, 1500)
			pool := port.NewPool(2 * port.BatchSize)
			p := openPort(b, tn.nsA, tn.idxA, pool, Options{})
			frame := udpFrame(b, macNoOne, macA, 1, size)
			var batch port.Batch
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			sent := 0
			for done := 0; done < b.N; {
				n := min(port.BatchSize, b.N-done)
				for i := 0; i < n; i++ {
					f, _ := pool.Get()
					f.Len = copy(f.Buf[f.Off:], frame)
					batch.Add(f)
				}
				sent += p.Transmit(&batch)
				done += n
			}
			el := time.Since(start)
			b.ReportMetric(float64(sent)/el.Seconds(), "pkts/s")
			b.ReportMetric(float64(b.N-sent)/float64(b.N), "refused")
		})
	}
}

// BenchmarkReceive receives b.N frames that a second port (in the peer
// namespace, on its own goroutine) transmits as fast as it can. "loss" is
// the share of frames the kernel dropped because the ring was full.
func BenchmarkReceive(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			tn := newTestNet(b, 1500)
			pool := port.NewPool(4 * port.BatchSize)
			rx := openPort(b, tn.nsA, tn.idxA, pool, Options{})
			genPool := port.NewPool(2 * port.BatchSize)
			gen := openPort(b, tn.nsB, tn.idxB, genPool, Options{})
			frame := udpFrame(b, macNoOne, macB, 1, size)

			var stop atomic.Bool
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // owns gen and genPool
				defer wg.Done()
				var batch port.Batch
				for !stop.Load() {
					for !batch.Full() {
						f, _ := genPool.Get()
						f.Len = copy(f.Buf[f.Off:], frame)
						batch.Add(f)
					}
					if gen.Transmit(&batch) == 0 {
						runtime.Gosched()
					}
				}
			}()
			defer func() { stop.Store(true); wg.Wait() }()

			var batch port.Batch
			for got := 0; got < port.BatchSize; { // traffic is flowing
				rx.Poll(10 * time.Millisecond)
				got += rx.Receive(&batch)
				for i := range batch.Frames() {
					pool.Put(&batch.F[i])
				}
				batch.N = 0
			}
			st0, _ := rx.Stats()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for got := 0; got < b.N; {
				if rx.Receive(&batch) == 0 {
					rx.Poll(10 * time.Millisecond)
					continue
				}
				got += batch.N
				for i := range batch.Frames() {
					pool.Put(&batch.F[i])
				}
				batch.N = 0
			}
			el := time.Since(start)
			b.StopTimer()
			st, _ := rx.Stats()
			recv, drops := st.RxFrames-st0.RxFrames, st.Drops-st0.Drops
			b.ReportMetric(float64(recv)/el.Seconds(), "pkts/s")
			if recv+drops > 0 {
				b.ReportMetric(float64(drops)/float64(recv+drops), "loss")
			}
		})
	}
}
