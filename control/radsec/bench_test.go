package radsec

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/tunterm/tunterm/control/radsec/radsectest"
)

// BenchmarkProxy measures requests per second through the proxy and the
// latency an AP sees (p50, p99) with aps TLS connections, against a fake
// RADIUS server that answers at once. Without a rate, each AP keeps one
// request in flight (saturation: latency is mostly queueing); with one,
// requests leave at that many per second in total, spread over the APs,
// and latency counts from when each should have left (no coordinated
// omission). Everything runs in this process: the APs' TLS and the fake
// server take CPU from the proxy, so the figures are a floor
// (docs/radsec.md).
func BenchmarkProxy(b *testing.B) {
	for _, bc := range []struct {
		aps  int
		kind string
		rate int
	}{{1, "access", 0}, {100, "access", 0}, {1000, "access", 0}, {1000, "accounting", 0},
		{1000, "access", 1000}, {1000, "access", 4000}} {
		name := fmt.Sprintf("aps=%d/%s", bc.aps, bc.kind)
		if bc.rate > 0 {
			name += fmt.Sprintf("/rate=%d", bc.rate)
		}
		b.Run(name, func(b *testing.B) { benchProxy(b, bc.aps, bc.kind, bc.rate) })
	}
}

func benchProxy(b *testing.B, aps int, kind string, rate int) {
	r := newRig(b, rigOptions{nAcct: 1, yaml: "  timeout: 5s\n  status_interval: 1h\n"})
	for _, f := range append(r.auth, r.acct...) {
		f.Fast.Store(true)
		f.AddReaders(runtime.GOMAXPROCS(0) - 1)
	}
	cfg := r.pki.apTLS(r.pki.ap)
	clients := make([]*radsectest.Client, aps)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c, err := radsectest.Dial(ctx, r.addr, cfg, "radsec")
			if err != nil {
				b.Error(err)
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	newReq := func() *radius.Packet {
		if kind == "accounting" {
			return radsectest.AccountingRequest("radsec", "bob")
		}
		return radsectest.AccessRequest("radsec", "bob", radsectest.Password)
	}
	// Requests are built outside the timed loop: the APs' cost of making
	// them is not the proxy's.
	reqs := make([]*radius.Packet, 256)
	for i := range reqs {
		reqs[i] = newReq()
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	// With a rate, a pacer hands out request numbers on time.
	var paced chan int64
	if rate > 0 {
		paced = make(chan int64, aps)
		go func() {
			defer close(paced)
			for i := range int64(b.N) {
				if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
					time.Sleep(d)
				}
				paced <- i
			}
		}()
	}
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var i int64
				t0 := time.Now()
				if paced != nil {
					var ok bool
					if i, ok = <-paced; !ok {
						return
					}
					t0 = start.Add(time.Duration(i) * time.Second / time.Duration(rate)) // when it should have left
				} else if i = next.Add(1) - 1; i >= int64(b.N) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := c.Exchange(ctx, reqs[i%int64(len(reqs))], true)
				cancel()
				lat[i] = time.Since(t0)
				if err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		var drops []string
		for d := drop(1); d < numDrops; d++ {
			if v := r.drops(d); v > 0 {
				drops = append(drops, fmt.Sprintf("%s/%s=%d", d.from(), d, v))
			}
		}
		b.Fatalf("%d of %d requests failed; proxy drops: %v", n, b.N, drops)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
