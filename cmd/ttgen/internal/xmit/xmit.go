// Package xmit transmits a traffic.Set out of one interface, as fast as
// possible or paced, by one of two methods:
//
//   - xdp: BPF_PROG_RUN of a two-instruction XDP program (bpf_redirect to the
//     interface) with BPF_F_TEST_XDP_LIVE_FRAMES, the kernel's own packet
//     generator (what xdp-trafficgen does). One call per pre-built frame with
//     a small Repeat, cycling through the set so every tunnel and client is
//     exercised. Frames go out through ndo_xdp_xmit: on a veth the peer must
//     have an XDP program attached (tunterm does), else the kernel drops them.
//   - afpacket: sendmmsg batches on an AF_PACKET socket with
//     PACKET_QDISC_BYPASS.
//
// Counting: a frame counts as sent when the kernel accepted it for
// transmission; a veth whose peer ring is full drops silently after that, so
// compare with what the receiver counted.
//
// Concurrency: a Sender is owned by the one goroutine that runs Run; the
// Progress counters may be read by anyone.
package xmit

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tunterm/tunterm/cmd/ttgen/internal/traffic"
)

// Sender moves frames of a set to an interface.
type Sender interface {
	// Send transmits up to max frames of set, continuing where the last
	// call stopped and wrapping around, and returns the frames and bytes the
	// kernel accepted. It does not allocate.
	Send(set *traffic.Set, max int) (n int, bytes uint64, err error)
	// Batch is the number of frames one Send call should carry at rate
	// frames per second (0: as fast as possible).
	Batch(rate float64) int
	Close() error
}

// Options control Run.
type Options struct {
	// Rate in frames per second; 0 sends as fast as possible.
	Rate float64
	// Duration stops Run after this long (0: until ctx is done).
	Duration time.Duration
	// Frames stops Run after this many frames (0: no limit).
	Frames uint64
	// CPU pins the sending thread (-1: not pinned).
	CPU int
}

// Progress counts what Run sent so far.
type Progress struct {
	Frames, Bytes atomic.Uint64
}

// Result is the outcome of Run.
type Result struct {
	Frames  uint64
	Bytes   uint64
	Seconds float64
}

// PPS returns frames per second.
func (r Result) PPS() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Frames) / r.Seconds
}

// Gbps returns the rate in Gbit/s of the frames as sent (no FCS, preamble or
// inter-frame gap).
func (r Result) Gbps() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Bytes) * 8 / r.Seconds / 1e9
}

// Run sends frames of set with s until ctx is done, o.Duration has passed or
// o.Frames were sent. The send loop runs on a locked (and optionally pinned)
// OS thread and allocates nothing per batch.
func Run(ctx context.Context, s Sender, set *traffic.Set, o Options, prog *Progress) (Result, error) {
	if set.Len() == 0 {
		return Result{}, fmt.Errorf("no frames to send")
	}
	if prog == nil {
		prog = &Progress{}
	}
	var stop atomic.Bool
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			stop.Store(true)
		case <-done:
		}
	}()
	type outcome struct {
		r   Result
		err error
	}
	res := make(chan outcome, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if o.CPU >= 0 {
			var cs unix.CPUSet
			cs.Set(o.CPU)
			if err := unix.SchedSetaffinity(0, &cs); err != nil {
				res <- outcome{err: fmt.Errorf("pinning to CPU %d: %w", o.CPU, err)}
				return
			}
		}
		r, err := loop(s, set, o, prog, &stop)
		res <- outcome{r, err}
	}()
	out := <-res
	return out.r, out.err
}

// loop is the send loop: pace, send, count.
func loop(s Sender, set *traffic.Set, o Options, prog *Progress, stop *atomic.Bool) (Result, error) {
	batch, maxBatch := s.Batch(o.Rate), s.Batch(0)
	var pc pacer
	if o.Rate > 0 {
		pc.init(o.Rate, batch)
	}
	start := time.Now()
	var deadline time.Time
	if o.Duration > 0 {
		deadline = start.Add(o.Duration)
	}
	var r Result
	for !stop.Load() {
		now := time.Now()
		if !deadline.IsZero() && !now.Before(deadline) {
			break
		}
		want := batch
		if o.Frames > 0 {
			if r.Frames >= o.Frames {
				break
			}
			want = int(min(uint64(want), o.Frames-r.Frames))
		}
		if o.Rate > 0 {
			if pc.behind && batch < maxBatch {
				// Calls take longer than the batch lasts (XDP's per-call
				// cost, a busy CPU): carry more per call.
				batch = min(2*batch, maxBatch)
				pc.burst = max(pc.burst, 2*float64(batch))
				pc.behind = false
				continue
			}
			want = pc.take(now, want)
			if want == 0 {
				continue // pc slept
			}
		}
		n, b, err := s.Send(set, want)
		if err != nil {
			r.Seconds = time.Since(start).Seconds()
			return r, err
		}
		if o.Rate > 0 && n < want {
			pc.refund(want - n)
		}
		r.Frames += uint64(n)
		r.Bytes += b
		prog.Frames.Store(r.Frames)
		prog.Bytes.Store(r.Bytes)
	}
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

// pacer is a token bucket refilled at rate frames per second, holding at
// most burst frames.
type pacer struct {
	rate   float64
	tokens float64
	burst  float64
	last   time.Time
	behind bool // credit overflowed the burst: sending lags the rate
}

func (p *pacer) init(rate float64, batch int) {
	p.rate = rate
	// 10 ms of credit absorbs sleeps that overshoot (the Go timer's
	// granularity) without letting a stall turn into a flood.
	p.burst = max(2*float64(batch), rate/100)
	p.tokens = float64(batch)
}

// take returns want when that many frames may go now, or sleeps until
// they are due and returns 0.
func (p *pacer) take(now time.Time, want int) int {
	if !p.last.IsZero() {
		p.tokens += now.Sub(p.last).Seconds() * p.rate
		if p.tokens > p.burst {
			p.tokens, p.behind = p.burst, true
		}
	}
	p.last = now
	if p.tokens >= float64(want) {
		p.tokens -= float64(want)
		return want
	}
	wait := time.Duration((float64(want) - p.tokens) / p.rate * float64(time.Second))
	time.Sleep(wait)
	return 0
}

func (p *pacer) refund(n int) { p.tokens += float64(n) }
