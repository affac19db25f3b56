package afxdp

import (
	"fmt"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"

	"github.com/tunterm/tunterm/dataplane/port"
)

// BenchmarkForward forwards frames between two veths through one shared
// UMEM: d0 → d1 and d1 → d0, one worker goroutine. The peers reflect every
// frame (XDP_TX), so a fixed population of frames circulates
// d0 → d1 → s0 → d1 → d0 → g0 → d0 … and no generator is needed. One op is
// one forwarded frame. Indicative only: 2 shared vCPUs, copy mode, and the
// reflecting peers' softirq work runs on the same CPUs.
func BenchmarkForward(b *testing.B) {
	for _, size := range []int{64, 512, 1400} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			benchForward(b, size)
		})
	}
}

func benchForward(b *testing.B, size int) {
	l := newLab(b)
	u := newUMEM(b, 8192)
	x0 := l.attachRedirect(l.dut, l.d0, link.XDPDriverMode)
	x1 := l.attachRedirect(l.dut, l.d1, link.XDPDriverMode)
	l.attachReflector(l.peer, l.g0)
	l.attachReflector(l.peer, l.s0)
	o := Options{Mode: Copy, FillFrames: 1024}
	p0 := l.mustOpen(l.d0, u, o)
	p1 := l.mustOpen(l.d1, u, o)
	x0.register(b, p0)
	x1.register(b, p1)
	pool := u.Pool()

	const population = 512
	seed := func() {
		var s port.Batch
		frame := testFrame(b, macD0, macG0, 0, size)
		for i := 0; i < population; i++ {
			f, ok := pool.Get()
			if !ok {
				break
			}
			f.Len = copy(f.Buf[f.Off:], frame)
			s.Add(f)
			if s.Full() {
				p0.Transmit(&s)
			}
		}
		p0.Transmit(&s)
	}
	seed()

	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	var bt port.Batch
	fwd, reseeds := 0, 0
	idle := time.Now()
	for fwd < b.N {
		n := p0.Receive(&bt)
		p1.Transmit(&bt)
		m := p1.Receive(&bt)
		p0.Transmit(&bt)
		fwd += n + m
		if n+m > 0 {
			idle = time.Now()
		} else if time.Since(idle) > 100*time.Millisecond {
			seed() // the population died out (drops on the way)
			reseeds++
			idle = time.Now()
		}
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(fwd)/el.Seconds(), "pkts/s")
	b.ReportMetric(float64(reseeds), "reseeds")
	st0, _ := p0.Stats()
	st1, _ := p1.Stats()
	b.ReportMetric(float64(st0.RxDropped+st0.RxRingFull+st1.RxDropped+st1.RxRingFull+st0.TxFull+st1.TxFull), "drops")
}
