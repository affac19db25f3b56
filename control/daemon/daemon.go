// Package daemon runs tunterm live: it loads the configuration, programs the
// tables, attaches the XDP steering programs, opens AF_XDP (or, as a
// fallback, AF_PACKET) ports, runs one pinned worker per core, follows the
// kernel's neighbour table and link state, reloads on SIGHUP and cleans up
// on SIGTERM/SIGINT.
//
// Threads: each worker is a goroutine locked to its OS thread and pinned to
// a CPU; it alone touches its ports and pool. Everything else (signals,
// reload, aging, netlink, the stats log) runs in the control goroutine of
// Run, which is the one writer of the tables.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/tunterm/tunterm/control/config"
	"github.com/tunterm/tunterm/control/ike"
	"github.com/tunterm/tunterm/control/programmer"
	"github.com/tunterm/tunterm/control/radsec"
	"github.com/tunterm/tunterm/dataplane/bridge"
	"github.com/tunterm/tunterm/dataplane/esp"
	"github.com/tunterm/tunterm/dataplane/pipeline"
	"github.com/tunterm/tunterm/dataplane/port"
	"github.com/tunterm/tunterm/dataplane/port/afpacket"
	"github.com/tunterm/tunterm/dataplane/port/afxdp"
	"github.com/tunterm/tunterm/dataplane/sched"
	"github.com/tunterm/tunterm/dataplane/stats"
	"github.com/tunterm/tunterm/dataplane/table"
	"github.com/tunterm/tunterm/ebpf/steer"
)

// Options are the command-line settings of `tunterm run`.
type Options struct {
	ConfigPath string
	// StatsEvery is how often a counters line is logged (0: never).
	StatsEvery time.Duration
	Log        *slog.Logger
	// Ready, if set, is closed once the dataplane runs (for tests).
	Ready chan<- struct{}
}

// Daemon is a running dataplane.
type Daemon struct {
	o     Options
	log   *slog.Logger
	cfg   *config.Config
	store table.Store
	fdb   *bridge.FDB
	prog  *programmer.Programmer

	down, up  ifaceInfo
	driver    string // "afxdp" or "afpacket"
	steerDown *steer.Program
	steerUp   *steer.Program
	umem      *afxdp.UMEM
	depot     *port.Depot
	workers   []*worker
	closers   []func() error
	stop      atomic.Bool
	wg        sync.WaitGroup
	linkUp    map[int]bool
	nbDone    chan struct{}  // stops the netlink followers
	ike       *ike.Responder // nil without an ike: block
	// svc is the management server (/metrics, /debug/*) and the RadSec
	// proxy; nil until the dataplane runs.
	svc *radsec.Service
	// schedWarned: the counters line could not read a worker thread's
	// scheduling counters, and said so.
	schedWarned bool
}

type ifaceInfo struct {
	name    string
	index   int
	mac     net.HardwareAddr
	queues  int
	carrier bool
}

type worker struct {
	id   int
	cpu  int
	spin bool // ports.idle: spin (never sleep when idle)
	w    *pipeline.Worker
	pool *port.Pool
	// ports this worker owns (for Flush and Close); nil when none.
	down, up port.Port
	// maxGap is the longest time in ns between the starts of two of the
	// worker's polls since the last counters line took it: how long, at
	// worst, its rings went unlooked-at (a batch's processing, a send, a
	// nap, the thread being preempted). Written by the worker, taken
	// (swapped with 0) by the counters line.
	maxGap atomic.Int64
	// tid is the worker's thread (0 until it runs), for the counters
	// line's worker_wait_us and worker_preempted; lastSched is what the
	// last counters line read (the stats loop's own).
	tid       atomic.Int32
	lastSched threadSched
}

// Run starts the dataplane described by the configuration file and blocks
// until ctx is cancelled (SIGTERM/SIGINT in the command), reloading the
// configuration on every value received from reload.
func Run(ctx context.Context, o Options, reload <-chan struct{}) error {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	c, err := config.Load(o.ConfigPath)
	if err != nil {
		return err
	}
	d := &Daemon{o: o, log: o.Log, cfg: c, linkUp: map[int]bool{}}
	defer d.cleanup()
	if err := d.start(); err != nil {
		return err
	}
	if d.svc, err = radsec.StartService(d.cfg, d.log); err != nil {
		return err
	}
	defer d.svc.Close() // before cleanup: defers run last-in first-out
	if d.ike != nil {
		d.ike.RegisterAPI(d.svc.API())
	}
	if o.Ready != nil {
		close(o.Ready)
	}
	return d.loop(ctx, reload)
}

func (d *Daemon) start() error {
	c := d.cfg
	var err error
	if d.down, err = lookupIface("downstream", c.Downstream.Interface); err != nil {
		return err
	}
	if d.up, err = lookupIface("upstream", c.Upstream.Interface); err != nil {
		return err
	}
	if c.Downstream.MAC == "" { // the interface's own MAC is our source
		copy(c.Downstream.HWAddr[:], d.down.mac)
	}
	n, cpus, err := workerCount(c)
	if err != nil {
		return err
	}
	d.fdb = bridge.New(c.Bridge.FDBSize)
	d.prog = programmer.New(&d.store, d.fdb)
	d.prog.SetWorkers(n)
	t, err := d.prog.Apply(c)
	if err != nil {
		return err
	}
	d.log.Info("tables programmed", "tunnel_address", t.Local.Addr, "tunnels", len(t.Tunnels),
		"peers", len(t.Peers), "sessions", len(t.Sessions), "inbound_sas", len(t.InSA))
	d.followNeighbours()

	// A handoff ring holds a NIC ring's worth twice over, so a burst that
	// fills one worker's RX ring does not overflow the ring to its owner.
	mesh := pipeline.NewMesh(n, 2*c.Ports.RingSize)
	switch drv := c.Ports.Driver; drv {
	case "afxdp", "auto":
		err = d.openXDP(n, t.Local.Addr)
		if err != nil && drv == "auto" {
			d.log.Warn("AF_XDP unavailable, falling back to AF_PACKET (slower: one copy per frame, kernel sees every frame)",
				"reason", err)
			d.closeAll()
			err = d.openAFPacket(n)
		}
	case "afpacket":
		err = d.openAFPacket(n)
	}
	if err != nil {
		return err
	}
	prefetchMin := prefetchMinSAs(c.Ports.Prefetch)
	for i, wk := range d.workers {
		wk.cpu, wk.spin = -1, c.Ports.Idle == "spin"
		if len(cpus) > 0 {
			wk.cpu = cpus[i]
		}
		wk.w = pipeline.NewWorker(pipeline.Config{ID: i, Tables: &d.store, FDB: d.fdb, Pool: wk.pool,
			Down: wk.down, Up: wk.up, Mesh: mesh, TxVia: 0, PrefetchMinSAs: prefetchMin})
	}
	// One P per worker plus one for everything else, so the control plane
	// never preempts a worker to run.
	if from, to := sched.ReserveProcs(n); to != from {
		d.log.Info("GOMAXPROCS raised: one P per worker plus one for the control plane", "from", from, "to", to)
	}
	for _, wk := range d.workers {
		d.wg.Add(1)
		go d.runWorker(wk)
	}
	d.log.Info("dataplane running", "driver", d.driver, "workers", n, "cpus", cpus,
		"downstream", d.down.name, "downstream_queues", d.down.queues,
		"upstream", d.up.name, "upstream_queues", d.up.queues,
		"prefetch", prefetchNote(c.Ports.Prefetch))
	impl, why := esp.GCMImplementation()
	d.log.Info("ESP AES-GCM implementation", "impl", impl, "why", why)
	d.noteIsolation(cpus)
	d.noteTHP(thpPath)
	return d.startIKE()
}

// startIKE runs the IKEv2 responder on the downstream address (ike.listen)
// when the file has an ike: block; the XDP program passes IKE to the
// kernel's sockets. It programs the tables through d.prog.
func (d *Daemon) startIKE() error {
	if d.cfg.IKE == nil {
		return nil
	}
	r, err := ike.New(ike.Options{Config: d.cfg.IKE, Dataplane: d.prog, Log: d.log})
	if err != nil {
		return err
	}
	if err := r.Start(); err != nil {
		return err
	}
	d.ike = r
	return nil
}

// IKE is the IKE responder, nil when not configured (the management server
// registers its /debug/ipsec page with RegisterAPI).
func (d *Daemon) IKE() *ike.Responder { return d.ike }

// workerCount resolves workers: auto|N and cpus.
func workerCount(c *config.Config) (int, []int, error) {
	cpus := c.CPUs
	n := c.Workers.N
	if n == 0 { // auto
		n = len(cpus)
		if n == 0 {
			n = runtime.NumCPU()
		}
	}
	if n > 64 {
		return 0, nil, fmt.Errorf("workers: %d is more than 64", n)
	}
	if len(cpus) > 0 && len(cpus) != n {
		return 0, nil, fmt.Errorf("cpus: %d CPUs listed for %d workers", len(cpus), n)
	}
	return n, cpus, nil
}

func lookupIface(role, name string) (ifaceInfo, error) {
	if name == "" {
		return ifaceInfo{}, fmt.Errorf("%s.interface: required by `tunterm run`", role)
	}
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return ifaceInfo{}, fmt.Errorf("%s.interface %q: %w", role, name, err)
	}
	q := 0
	if m, _ := filepath.Glob("/sys/class/net/" + name + "/queues/rx-*"); len(m) > 0 {
		q = len(m)
	}
	if q == 0 {
		q = 1
	}
	return ifaceInfo{name: name, index: ifi.Index, mac: ifi.HardwareAddr, queues: q, carrier: ifi.Flags&net.FlagUp != 0}, nil
}

// openXDP loads and attaches the steering programs and opens one AF_XDP
// socket per worker and NIC queue on one shared UMEM.
func (d *Daemon) openXDP(n int, addr netip.Addr) error {
	po := d.cfg.Ports
	mode, err := steer.ParseMode(po.XDPMode)
	if err != nil {
		return fmt.Errorf("ports.xdp_mode: %w", err)
	}
	if d.steerDown, err = steer.Load(steer.Downstream, []netip.Addr{addr}); err != nil {
		return err
	}
	d.closers = append(d.closers, d.steerDown.Close)
	if d.steerUp, err = steer.Load(steer.Upstream, nil); err != nil {
		return err
	}
	d.closers = append(d.closers, d.steerUp.Close)
	if err := d.steerDown.Attach(d.down.index, mode); err != nil {
		return err
	}
	if err := d.steerUp.Attach(d.up.index, mode); err != nil {
		return err
	}
	_, dm, _ := d.steerDown.Attachment()
	_, um, _ := d.steerUp.Attachment()
	d.log.Info("XDP programs attached (bpf_link: removed if tunterm dies)",
		"downstream", d.down.name, "downstream_mode", dm, "upstream", d.up.name, "upstream_mode", um)

	ring := po.RingSize
	perPort := ring // chunks each port keeps posted for reception
	sockets := 0
	for w := range n {
		if w < d.down.queues {
			sockets++
		}
		if w < d.up.queues {
			sockets++
		}
	}
	// Fill + in-flight TX per socket, plus what the workers hold and flood.
	frames := sockets*(perPort+ring) + n*4*port.BatchSize + 4096
	if d.umem, err = afxdp.NewUMEM(frames); err != nil {
		return err
	}
	d.closers = append(d.closers, d.umem.Close)
	d.depot = port.NewDepot(d.umem.Mem())
	for w := range n {
		wk := &worker{id: w, pool: d.depot.NewPool()}
		d.workers = append(d.workers, wk)
		if w >= d.down.queues || w >= d.up.queues {
			continue // no queue of its own: transmits through worker 0
		}
		for _, x := range []struct {
			ifc  ifaceInfo
			prog *steer.Program
			dst  *port.Port
			name string
		}{{d.down, d.steerDown, &wk.down, "down"}, {d.up, d.steerUp, &wk.up, "up"}} {
			p, err := afxdp.Open(x.ifc.index, d.umem, afxdp.Options{Queue: w, NeedWakeup: po.NeedWakeup,
				BusyPoll: po.BusyPoll, RxSize: ring, TxSize: ring, FillSize: ring, CompSize: ring,
				FillFrames: perPort, KickAt: txKickAt, Pool: wk.pool, Name: fmt.Sprintf("%s/%d", x.ifc.name, w)})
			if err != nil {
				return fmt.Errorf("AF_XDP socket on %s queue %d: %w", x.ifc.name, w, err)
			}
			for _, note := range p.Notes() {
				d.log.Info("AF_XDP", "port", p.Name(), "note", note)
			}
			d.closers = append(d.closers, p.Close)
			if err := x.prog.RegisterXSK(w, p.FD()); err != nil {
				return err
			}
			*x.dst = p
		}
	}
	d.driver = "afxdp"
	return nil
}

func (d *Daemon) openAFPacket(n int) error { return openAFPacket(d, n) }

// txKickAt is how many frames a worker lets wait on an AF_XDP tx ring
// before it makes the kernel send them (afxdp.Options.KickAt). Fewer are
// sent when the worker's poll finds nothing to do (see drainer). Measured
// on veth at 90 % load: 3-5 frames per sendto() without it, a call
// costing about as much as a frame's processing.
const txKickAt = 32

// txDrain is the least time between two sends of what waits below
// txKickAt: the most a frame waits for its sendto() when frames come
// often, none when they come less often than that. DPDK's l3fwd drains its
// tx buffers every 100 µs in the same way.
const txDrain = 50 * time.Microsecond

// drainer decides when a worker sends what waits on its tx rings below
// txKickAt: at a poll that found nothing to do, if the last send was at
// least txDrain ago. Under light load that is the first empty poll after a
// frame (no added latency); under paced load, where nearly every other poll
// is empty, it gathers up to txDrain of frames per sendto() instead of one
// or two.
type drainer struct {
	pending bool      // frames were processed since the last send
	last    time.Time // the last send
}

// busy notes a poll that processed frames.
func (d *drainer) busy() { d.pending = true }

// idle is called at a poll that found nothing to do; it reports whether to
// send now (and then counts the send as done at now). force sends anyway
// (before a nap).
func (d *drainer) idle(now time.Time, force bool) bool {
	if !d.pending || (!force && now.Sub(d.last) < txDrain) {
		return false
	}
	d.pending, d.last = false, now
	return true
}

// runWorker is a worker's goroutine: locked to its thread, pinned, polling
// until stopped. At an empty poll it sends what waits on its tx rings (as
// drainer decides); after 1024 it naps (ports.idle: sleep) without giving
// up its P.
func (d *Daemon) runWorker(wk *worker) {
	defer d.wg.Done()
	if err := sched.Pin(wk.cpu); err != nil {
		d.log.Warn("cannot pin worker", "worker", wk.id, "cpu", wk.cpu, "err", err)
	}
	wk.tid.Store(int32(unix.Gettid()))
	idle := 0
	var tx drainer
	prev := time.Now()
	for !d.stop.Load() {
		now := time.Now()
		if g := int64(now.Sub(prev)); g > wk.maxGap.Load() {
			wk.maxGap.Store(g)
		}
		prev = now
		if wk.w.Poll() > 0 {
			idle = 0
			tx.busy()
			continue
		}
		idle++
		nap := idle > 1024 && !wk.spin
		if tx.idle(now, nap) {
			wk.flush()
		}
		if nap {
			sched.Nap(50 * time.Microsecond) // keeps the P: see package sched
		}
	}
	for wk.w.Poll() > 0 { // drain handoffs
	}
	wk.flush()
}

// ports are the worker's ports (either may be nil).
func (wk *worker) ports() [2]port.Port { return [2]port.Port{wk.down, wk.up} }

// flush sends what waits on the worker's tx rings and reaps completions.
func (wk *worker) flush() {
	for _, p := range wk.ports() {
		if f, ok := p.(interface{ Flush() }); ok {
			f.Flush()
		}
	}
}

func (d *Daemon) loop(ctx context.Context, reload <-chan struct{}) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var statsC <-chan time.Time
	if d.o.StatsEvery > 0 {
		st := time.NewTicker(d.o.StatsEvery)
		defer st.Stop()
		statsC = st.C
	}
	last, lastT := d.counters(), time.Now()
	lastNIC := d.nicDrops()
	for {
		select {
		case <-ctx.Done():
			d.log.Info("stopping")
			return nil
		case <-reload:
			d.reload()
		case now := <-tick.C:
			d.prog.Age(uint32(now.Unix()))
		case now := <-statsC:
			cur, nic := d.counters(), d.nicDrops()
			d.logStats(last, cur, now.Sub(lastT), nic.sub(lastNIC))
			last, lastT, lastNIC = cur, now, nic
		}
	}
}

// reload re-reads the configuration and publishes new tables; established
// SAs and sessions whose configuration is unchanged keep their state.
func (d *Daemon) reload() {
	c, err := config.Load(d.o.ConfigPath)
	if err != nil {
		d.log.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	if c.Downstream.Interface != d.cfg.Downstream.Interface || c.Upstream.Interface != d.cfg.Upstream.Interface ||
		c.Workers != d.cfg.Workers || !equalInts(c.CPUs, d.cfg.CPUs) || c.Ports != d.cfg.Ports {
		d.log.Warn("reload: interfaces, workers, cpus and ports take effect at restart; applying the rest")
	}
	if c.Downstream.MAC == "" {
		copy(c.Downstream.HWAddr[:], d.down.mac)
	}
	t, err := d.prog.Apply(c)
	if err != nil {
		d.log.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	if d.steerDown != nil {
		if err := d.steerDown.SetAddrs([]netip.Addr{t.Local.Addr}); err != nil {
			d.log.Error("reload: updating the XDP tunnel address", "err", err)
		}
	}
	switch {
	case d.ike != nil && c.IKE != nil:
		d.ike.Reload(c.IKE)
	case (d.ike != nil) != (c.IKE != nil):
		d.log.Warn("reload: adding or removing the ike block takes effect at restart")
	}
	d.cfg = c
	if d.svc != nil {
		d.svc.Reload(c)
	}
	d.log.Info("configuration reloaded", "peers", len(t.Peers), "sessions", len(t.Sessions), "inbound_sas", len(t.InSA))
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// followNeighbours reads the downstream neighbour table and follows its
// changes (gateway and on-link APs), and logs link state changes once per
// transition.
func (d *Daemon) followNeighbours() {
	if l, err := netlink.NeighList(d.down.index, unix.AF_UNSPEC); err == nil {
		for _, n := range l {
			d.neighbour(n)
		}
	}
	d.probeGateway()
	done := make(chan struct{})
	d.nbDone = done
	nch := make(chan netlink.NeighUpdate, 64)
	if err := netlink.NeighSubscribe(nch, done); err != nil {
		d.log.Warn("cannot follow the neighbour table; using learned and configured next hops only", "err", err)
	}
	lch := make(chan netlink.LinkUpdate, 16)
	if err := netlink.LinkSubscribe(lch, done); err != nil {
		d.log.Warn("cannot follow link state", "err", err)
	}
	d.linkUp[d.down.index], d.linkUp[d.up.index] = true, true
	go func() {
		for {
			select {
			case <-done:
				return
			case u, ok := <-nch:
				if !ok {
					return
				}
				if u.LinkIndex == d.down.index && u.Type == unix.RTM_NEWNEIGH {
					d.neighbour(u.Neigh)
				}
			case u, ok := <-lch:
				if !ok {
					return
				}
				idx := int(u.Index)
				if idx != d.down.index && idx != d.up.index {
					continue
				}
				up := u.Flags&unix.IFF_RUNNING != 0
				if d.linkUp[idx] != up {
					d.linkUp[idx] = up
					state := "down"
					if up {
						state = "up"
					}
					d.log.Warn("link "+state, "interface", u.Attrs().Name)
				}
			}
		}
	}()
}

func (d *Daemon) neighbour(n netlink.Neigh) {
	if len(n.HardwareAddr) != 6 || n.IP == nil {
		return
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return
	}
	var mac [6]byte
	copy(mac[:], n.HardwareAddr)
	if d.prog.SetNeighbor(ip.Unmap(), mac) {
		d.log.Info("next hop", "ip", ip.Unmap(), "mac", n.HardwareAddr.String())
	}
}

// probeGateway makes the kernel resolve the gateway's MAC (an ARP/ND that
// the neighbour subscription then reports) by sending it one UDP datagram
// to the discard port through the ordinary stack.
func (d *Daemon) probeGateway() {
	gw := d.cfg.Downstream.GW
	if !gw.IsValid() {
		return
	}
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(gw, 9)))
	if err != nil {
		return
	}
	_, _ = conn.Write([]byte("tunterm neighbour probe"))
	conn.Close()
}

func (d *Daemon) counters() stats.Snapshot {
	var cs []*stats.Counters
	for _, wk := range d.workers {
		if wk.w != nil {
			cs = append(cs, &wk.w.Counters)
		}
	}
	return stats.Sum(cs...)
}

// nicDrop counts the frames the kernel dropped before our sockets saw them:
// the overload signal that no pipeline counter can show.
type nicDrop struct {
	// RingFull: the socket's RX ring was full (AF_XDP rx_ring_full;
	// AF_PACKET ring drops). The worker did not keep up.
	RingFull uint64
	// NoBuffer: AF_XDP rx_dropped: no chunk on the fill ring (the worker
	// did not give buffers back in time) or a frame longer than a chunk.
	NoBuffer uint64
}

func (n nicDrop) total() uint64 { return n.RingFull + n.NoBuffer }

func (n nicDrop) sub(o nicDrop) nicDrop {
	return nicDrop{n.RingFull - o.RingFull, n.NoBuffer - o.NoBuffer}
}

// attrs are the log attributes of n.
func (n nicDrop) attrs() []any {
	return []any{"nic_rx_dropped", n.total(), "nic_rx_ring_full", n.RingFull, "nic_rx_no_buffer", n.NoBuffer}
}

// logSockets logs each AF_XDP socket's counters, the kernel's and ours
// (for a post-mortem of drops at the ingress).
func (d *Daemon) logSockets() {
	for _, wk := range d.workers {
		for _, p := range wk.ports() {
			if p, ok := p.(*afxdp.Port); ok {
				if s, err := p.Stats(); err == nil {
					d.log.Info("socket counters", "socket", p.Name(), "received", s.Received, "transmitted", s.Transmitted,
						"completed", s.Completed, "kernel_rx_dropped", s.RxDropped, "kernel_rx_ring_full", s.RxRingFull,
						"kernel_fill_ring_empty", s.RxFillRingEmpty, "kernel_tx_ring_empty", s.TxRingEmpty,
						"pool_empty_at_refill", s.FillEmpty, "tx_ring_full", s.TxFull, "sendto", s.Kicks,
						"sendto_errors", s.KickErrors, "tx_deferred", s.Deferred)
				}
			}
		}
	}
}

func (d *Daemon) nicDrops() nicDrop {
	var n nicDrop
	for _, wk := range d.workers {
		for _, p := range wk.ports() {
			switch p := p.(type) {
			case *afxdp.Port:
				if s, err := p.Stats(); err == nil {
					n.RingFull += s.RxRingFull
					n.NoBuffer += s.RxDropped
				}
			case *afpacket.Port:
				if s, err := p.Stats(); err == nil {
					n.RingFull += s.Drops
				}
			}
		}
	}
	return n
}

func (d *Daemon) logStats(a, b stats.Snapshot, dt time.Duration, nic nicDrop) {
	s := dt.Seconds()
	rate := func(x, y uint64) string { return fmt.Sprintf("%.0f", float64(y-x)/s) }
	var drops []string
	for dir := range stats.NumDirs {
		for r := range stats.NumReasons {
			if n := b.Drops[dir][r] - a.Drops[dir][r]; n > 0 {
				drops = append(drops, fmt.Sprintf("%s/%s=%d", dir, stats.Reason(r), n))
			}
		}
	}
	sort.Strings(drops)
	attrs := []any{
		"rx_down_pps", rate(a.RxPkts[stats.FromDown], b.RxPkts[stats.FromDown]),
		"rx_up_pps", rate(a.RxPkts[stats.FromUp], b.RxPkts[stats.FromUp]),
		"tx_up_pps", rate(a.TxPkts[stats.FromDown], b.TxPkts[stats.FromDown]),
		"tx_down_pps", rate(a.TxPkts[stats.FromUp], b.TxPkts[stats.FromUp]),
		"tx_up_mbps", fmt.Sprintf("%.1f", float64(b.TxBytes[stats.FromDown]-a.TxBytes[stats.FromDown])*8/s/1e6),
		"macs_learned", b.Learned, "handoffs", b.Handoffs - a.Handoffs,
	}
	var gap int64
	for _, wk := range d.workers {
		gap = max(gap, wk.maxGap.Swap(0))
	}
	attrs = append(attrs, "max_poll_gap_us", gap/1000)
	attrs = append(attrs, d.workerWait()...)
	attrs = append(attrs, nic.attrs()...)
	d.log.Info("counters", append(attrs, "not_forwarded", strings.Join(drops, " "))...)
}

// workerWait is the counters line's worker_wait_us and worker_preempted:
// how long the workers' threads were runnable but kept off their CPUs by
// other tasks since the last line, and how often they were preempted.
// Both are omitted when the kernel does not say (logged once).
func (d *Daemon) workerWait() []any {
	var wait, pre uint64
	for _, wk := range d.workers {
		tid := int(wk.tid.Load())
		if tid == 0 {
			continue
		}
		s, err := readThreadSched(tid)
		if err != nil {
			if !d.schedWarned {
				d.schedWarned = true
				d.log.Warn("cannot read a worker thread's scheduling counters; worker_wait_us and worker_preempted left out", "err", err)
			}
			return nil
		}
		if wk.lastSched != (threadSched{}) {
			wait += s.waitNs - wk.lastSched.waitNs
			pre += s.preempted - wk.lastSched.preempted
		}
		wk.lastSched = s
	}
	return []any{"worker_wait_us", wait / 1000, "worker_preempted", pre}
}

// noteIsolation logs, once at start, the worker CPUs the kernel lets other
// tasks run on: there, any busy thread (another daemon, a kernel worker)
// can take a worker's CPU for milliseconds, and the worker's receive rings
// overflow meanwhile (counted as nic_rx_* drops). worker_wait_us in the
// counters line says how much that costs.
func (d *Daemon) noteIsolation(cpus []int) {
	if len(cpus) == 0 {
		return
	}
	shared, err := notIsolated(cpus, "/sys/devices/system/cpu/isolated")
	if err != nil {
		d.log.Debug("cannot tell whether the worker CPUs are isolated", "err", err)
		return
	}
	if len(shared) > 0 {
		d.log.Info("worker CPUs not isolated: other tasks may preempt a worker (see worker_wait_us; docs/deployment.md, \"Isolating the worker CPUs\")",
			"cpus", shared)
	}
}

// noteTHP says, once at start, when the kernel does not back tunterm's heap
// with transparent huge pages. The Go runtime asks for none itself (Go's
// GC guide, "Linux transparent huge pages"), so its tables stay on 4 KiB
// pages unless the mode is "always"; with thousands of tunnels the
// per-tunnel state of a batch can then miss the TLB as well as the cache.
func (d *Daemon) noteTHP(path string) {
	mode, err := thpMode(path)
	switch {
	case err != nil:
		d.log.Debug("cannot tell whether the kernel uses transparent huge pages", "err", err)
	case mode != "always":
		d.log.Info("transparent huge pages not \"always\": the SA, session and FDB tables stay on 4 KiB pages (docs/deployment.md, \"Transparent huge pages\")",
			"transparent_hugepage", mode)
	}
}

// Stats returns the summed counters (for the command's exit summary).
func (d *Daemon) Stats() stats.Snapshot { return d.counters() }

func (d *Daemon) closeAll() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		if err := d.closers[i](); err != nil && !errors.Is(err, os.ErrClosed) {
			d.log.Warn("cleanup", "err", err)
		}
	}
	d.closers = nil
	d.workers = nil
	d.steerDown, d.steerUp, d.umem = nil, nil, nil
}

// cleanup stops the workers, closes the ports, detaches the programs.
func (d *Daemon) cleanup() {
	if d.ike != nil { // tell the APs, while the tables still exist
		d.ike.Close()
	}
	d.stop.Store(true)
	d.wg.Wait()
	final, nic, ran := d.counters(), d.nicDrops(), len(d.workers) > 0
	d.logSockets()
	d.closeAll()
	if d.nbDone != nil {
		close(d.nbDone)
	}
	if ran {
		var drops []string
		for dir := range stats.NumDirs {
			for r := range stats.NumReasons {
				if n := final.Drops[dir][r]; n > 0 {
					drops = append(drops, fmt.Sprintf("%s/%s=%d", dir, stats.Reason(r), n))
				}
			}
		}
		attrs := []any{"rx_down", final.RxPkts[stats.FromDown], "rx_up", final.RxPkts[stats.FromUp],
			"tx_up", final.TxPkts[stats.FromDown], "tx_down", final.TxPkts[stats.FromUp], "handoffs", final.Handoffs}
		attrs = append(attrs, nic.attrs()...)
		d.log.Info("final counters", append(attrs, "not_forwarded", strings.Join(drops, " "))...)
	}
}

// prefetchNote says what ports.prefetch does, for the start-up log line.
func prefetchNote(mode string) string {
	if mode == "auto" {
		return fmt.Sprintf("auto (from %d inbound SAs)", pipeline.PrefetchAutoSAs)
	}
	return mode
}

// prefetchMinSAs maps ports.prefetch to pipeline.Config.PrefetchMinSAs.
func prefetchMinSAs(mode string) int {
	switch mode {
	case "on":
		return 0
	case "off":
		return -1
	}
	return pipeline.PrefetchAutoSAs // auto
}
