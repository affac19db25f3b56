package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tunterm/tunterm/dataplane/port"
	"github.com/tunterm/tunterm/dataplane/port/afxdp"
	"github.com/tunterm/tunterm/dataplane/sched"
	"github.com/tunterm/tunterm/ebpf/steer"
)

// Options configure a Forwarder.
type Options struct {
	Down, Up   string // interface names
	Workers    int
	CPUs       []int // CPUs[i] pins worker i; empty: not pinned
	Ring       int   // AF_XDP ring size
	XDPMode    steer.Mode
	NeedWakeup bool
	BusyPoll   bool
	Log        *slog.Logger
}

// Forwarder is the running ceiling: one XDP program per interface (steer's
// upstream program: every frame but IEEE link-local goes to the AF_XDP
// socket of its queue), one UMEM shared by every socket of every worker,
// and one pinned goroutine per worker moving frames down->up and up->down
// unchanged.
//
// Concurrency: Start and Stop are called by one goroutine; Totals may be
// called from any goroutine at any time.
type Forwarder struct {
	o       Options
	progs   []*steer.Program
	umem    *afxdp.UMEM
	depot   *port.Depot
	workers []*worker
	closers []func() error
	stop    atomic.Bool
	wg      sync.WaitGroup
}

// worker owns queue id of both interfaces (nil ports when an interface has
// fewer queues than workers: such a worker idles).
type worker struct {
	id       int
	cpu      int
	pool     *port.Pool
	down, up *afxdp.Port
	ctr      fwdCounters
}

// fwdCounters are a worker's frame counts, written by the worker once per
// batch and read by Totals; padded so that two workers do not share a line.
type fwdCounters struct {
	_      [64]byte
	downUp atomic.Uint64 // frames queued on up after arriving on down
	upDown atomic.Uint64 // frames queued on down after arriving on up
	_      [64]byte
}

// Totals are the forwarder's counters summed over workers.
type Totals struct {
	DownToUp uint64 `json:"down_to_up"`
	UpToDown uint64 `json:"up_to_down"`
	// Kernel and port counters summed over the sockets.
	RxRingFull uint64 `json:"rx_ring_full"`
	RxDropped  uint64 `json:"rx_dropped"`
	FillEmpty  uint64 `json:"fill_empty"`
	TxFull     uint64 `json:"tx_full"`
	Kicks      uint64 `json:"kicks"`
	KickErrors uint64 `json:"kick_errors"`
}

// Start attaches the programs, opens the sockets and starts the workers. On
// error everything opened so far is closed.
func Start(o Options) (f *Forwarder, err error) {
	if o.Workers < 1 {
		return nil, fmt.Errorf("workers: %d, want at least 1", o.Workers)
	}
	if len(o.CPUs) > 0 && len(o.CPUs) != o.Workers {
		return nil, fmt.Errorf("cpus: %d CPUs for %d workers", len(o.CPUs), o.Workers)
	}
	if o.Ring == 0 {
		o.Ring = afxdp.DefaultRingSize
	}
	f = &Forwarder{o: o}
	defer func() {
		if err != nil {
			f.closeAll()
			f = nil
		}
	}()
	type iface struct {
		name   string
		index  int
		queues int
	}
	var ifs [2]iface // down, up
	for i, name := range []string{o.Down, o.Up} {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("interface %q: %w", name, err)
		}
		q := 1
		if m, _ := filepath.Glob("/sys/class/net/" + name + "/queues/rx-*"); len(m) > 0 {
			q = len(m)
		}
		ifs[i] = iface{name, ifi.Index, q}
		p, err := steer.Load(steer.Upstream, nil)
		if err != nil {
			return nil, err
		}
		f.closers = append(f.closers, p.Close)
		if err := p.Attach(ifi.Index, o.XDPMode); err != nil {
			return nil, err
		}
		f.progs = append(f.progs, p)
		_, mode, _ := p.Attachment()
		o.Log.Info("XDP attached (bpf_link)", "interface", name, "mode", mode, "queues", q)
	}

	sockets := 0
	for w := range o.Workers {
		if w < ifs[0].queues && w < ifs[1].queues {
			sockets += 2
		}
	}
	frames := sockets*2*o.Ring + o.Workers*4*port.BatchSize + 4096
	if f.umem, err = afxdp.NewUMEM(frames); err != nil {
		return nil, err
	}
	f.closers = append(f.closers, f.umem.Close)
	f.depot = port.NewDepot(f.umem.Mem())
	for w := range o.Workers {
		wk := &worker{id: w, cpu: -1, pool: f.depot.NewPool()}
		if len(o.CPUs) > 0 {
			wk.cpu = o.CPUs[w]
		}
		f.workers = append(f.workers, wk)
		if w >= ifs[0].queues || w >= ifs[1].queues {
			o.Log.Warn("worker has no queue of its own and idles", "worker", w)
			continue
		}
		for i, dst := range []**afxdp.Port{&wk.down, &wk.up} {
			p, err := afxdp.Open(ifs[i].index, f.umem, afxdp.Options{Queue: w, NeedWakeup: o.NeedWakeup,
				BusyPoll: o.BusyPoll, RxSize: o.Ring, TxSize: o.Ring, FillSize: o.Ring, CompSize: o.Ring,
				FillFrames: o.Ring, KickAt: 32, Pool: wk.pool, Name: fmt.Sprintf("%s/%d", ifs[i].name, w)})
			if err != nil {
				return nil, fmt.Errorf("AF_XDP socket on %s queue %d: %w", ifs[i].name, w, err)
			}
			f.closers = append(f.closers, p.Close)
			for _, n := range p.Notes() {
				o.Log.Info("AF_XDP", "port", p.Name(), "note", n)
			}
			if err := f.progs[i].RegisterXSK(w, p.FD()); err != nil {
				return nil, err
			}
			*dst = p
		}
	}
	sched.ReserveProcs(len(f.workers)) // as tunterm does
	for _, wk := range f.workers {
		f.wg.Add(1)
		go f.runWorker(wk)
	}
	return f, nil
}

// runWorker is a worker's goroutine: locked to its thread, pinned, moving
// one batch each way per round. Idle, it flushes pending transmissions at
// its first empty poll and backs off from spinning to 50 µs naps, as
// tunterm's workers do, except that tunterm sends at an empty poll at most
// once per 50 µs (its drainer). The reference keeps the plain rule so that
// its figures stay comparable across campaigns; at full load, where polls
// are never empty, the two rules are the same.
func (f *Forwarder) runWorker(wk *worker) {
	defer f.wg.Done()
	if err := sched.Pin(wk.cpu); err != nil {
		f.o.Log.Warn("cannot pin worker", "worker", wk.id, "cpu", wk.cpu, "err", err)
	}
	if wk.down == nil {
		for !f.stop.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		return
	}
	var b port.Batch
	idle := 0
	for !f.stop.Load() {
		moved := 0
		if n := wk.down.Receive(&b); n > 0 {
			wk.ctr.downUp.Add(uint64(wk.up.Transmit(&b)))
			moved += n
		}
		if n := wk.up.Receive(&b); n > 0 {
			wk.ctr.upDown.Add(uint64(wk.down.Transmit(&b)))
			moved += n
		}
		if moved > 0 {
			idle = 0
			continue
		}
		idle++
		if idle == 1 { // send what Transmit left on the tx rings (KickAt)
			wk.down.Flush()
			wk.up.Flush()
		}
		if idle > 1024 {
			sched.Nap(50 * time.Microsecond)
		}
	}
}

// Totals sums the workers' and sockets' counters.
func (f *Forwarder) Totals() Totals {
	var t Totals
	for _, wk := range f.workers {
		t.DownToUp += wk.ctr.downUp.Load()
		t.UpToDown += wk.ctr.upDown.Load()
		for _, p := range []*afxdp.Port{wk.down, wk.up} {
			if p == nil {
				continue
			}
			s, err := p.Stats()
			if err != nil && !errors.Is(err, afxdp.ErrClosed) {
				continue
			}
			t.RxRingFull += s.RxRingFull
			t.RxDropped += s.RxDropped
			t.FillEmpty += s.FillEmpty
			t.TxFull += s.TxFull
			t.Kicks += s.Kicks
			t.KickErrors += s.KickErrors
		}
	}
	return t
}

// Stop stops the workers and closes the sockets, the UMEM and the programs
// (the XDP programs are detached). It returns the final totals.
func (f *Forwarder) Stop() Totals {
	f.stop.Store(true)
	f.wg.Wait()
	t := f.Totals()
	f.closeAll()
	return t
}

func (f *Forwarder) closeAll() {
	for i := len(f.closers) - 1; i >= 0; i-- {
		if err := f.closers[i](); err != nil && !errors.Is(err, afxdp.ErrClosed) {
			f.o.Log.Warn("cleanup", "err", err)
		}
	}
	f.closers = nil
}
