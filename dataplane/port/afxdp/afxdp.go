// Package afxdp is the AF_XDP implementation of port.Port: one socket per
// interface queue, all sockets of a worker sharing one UMEM, so that frames
// move between interfaces by descriptor, without a copy.
//
// Buffer flow (Documentation/networking/af_xdp.rst):
//
//	          pool ──refill──► fill ring ──kernel──► rx ring ──Receive──► worker
//	worker ──Transmit──► tx ring ──kernel──► completion ring ──reap──► pool
//
// A chunk posted to a fill or tx ring belongs to that port's kernel rings
// until it comes back on the rx or completion ring; the UMEM tracks this so
// that Close returns to the pool every chunk the kernel still held.
//
// Received frames start at port.Headroom in their chunk (the kernel's
// XDP_PACKET_HEADROOM); transmitted frames may start anywhere in their chunk
// (the descriptor address is the chunk base plus Frame.Off), so headers
// pushed or pulled by the dataplane cost nothing here.
//
// The XDP program that redirects frames into the sockets (an XSKMAP keyed by
// rx queue) is loaded and attached elsewhere; FD gives what to put in it.
//
// Concurrency: a UMEM, its Pool and its Ports are owned by one worker
// goroutine. Only Port.Stats may be called from another goroutine.
//
// Kernel behaviour this package relies on (read in net/xdp/xsk.c and
// checked by the tests on Linux 6.18 with veth):
//   - A socket on another device or queue can share a UMEM registration
//     (XDP_SHARED_UMEM, Linux >= 5.10) with its own fill and completion
//     rings; it inherits copy/zero-copy and need-wakeup from the first
//     socket, and the kernel refuses those bind flags on it.
//   - veth has no AF_XDP zero-copy: XDP_ZEROCOPY fails with EOPNOTSUPP and
//     a bind without either flag falls back to copy (XDP_OPTIONS tells).
//   - In copy mode the tx ring always asks for a wakeup and sendto()
//     transmits synchronously, at most max_tx_budget descriptors per call
//     (32 unless XDP_MAX_TX_SKB_BUDGET, Linux >= 6.17, raises it); it
//     returns EAGAIN when it stopped early and EBUSY when the driver
//     dropped a frame (whose chunk still completes). The fill ring never
//     asks for a wakeup in copy mode.
//   - A closed socket's queue is released by a workqueue item, so binding
//     the same queue right after Close can fail with EBUSY for a while.
//   - The kernel drops frames longer than ChunkSize-Headroom (rx_dropped);
//     frames longer than port.MaxFrame are dropped here (RxTooLong).
package afxdp

import (
	"errors"
	"fmt"
	"math/bits"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tunterm/tunterm/dataplane/internal/prefetch"
	"github.com/tunterm/tunterm/dataplane/port"
)

// Mode selects copy or zero-copy binding.
type Mode int

const (
	// Auto asks for zero-copy and lets the kernel fall back to copy mode
	// when the driver lacks it; Port.Notes says which one it got.
	Auto Mode = iota
	// Copy forces copy mode (XDP_COPY): works on every driver.
	Copy
	// ZeroCopy forces zero-copy mode (XDP_ZEROCOPY); Open fails when the
	// driver cannot do it.
	ZeroCopy
)

func (m Mode) String() string {
	switch m {
	case Auto:
		return "auto"
	case Copy:
		return "copy"
	case ZeroCopy:
		return "zero-copy"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// DefaultRingSize is the size of every ring left at 0 in Options.
const DefaultRingSize = 2048

// Options configure Open. The zero value is a copy-or-zero-copy socket on
// queue 0 with both rings and 2048-entry rings.
type Options struct {
	// Queue is the interface rx/tx queue to bind.
	Queue int
	// Mode is copy, zero-copy or auto. Sockets sharing a UMEM inherit the
	// mode of the first socket; asking for a different one fails.
	Mode Mode
	// NeedWakeup binds with XDP_USE_NEED_WAKEUP: the kernel tells when a
	// syscall is needed to make progress instead of us making one per
	// batch. Inherited from the first socket on the UMEM.
	NeedWakeup bool
	// BusyPoll sets SO_PREFER_BUSY_POLL, SO_BUSY_POLL and
	// SO_BUSY_POLL_BUDGET so that Receive and Transmit drive the queue's
	// NAPI from the worker. Best effort: a refusal is reported in Notes.
	// (The device also wants napi_defer_hard_irqs and gro_flush_timeout.)
	BusyPoll bool
	// BusyPollUsec is SO_BUSY_POLL (default 20 µs).
	BusyPollUsec int
	// Ring sizes, powers of two; 0 means DefaultRingSize.
	RxSize, TxSize, FillSize, CompSize int
	// NoRx and NoTx leave out the rx or tx ring (a transmit-only or
	// receive-only socket). Not both.
	NoRx, NoTx bool
	// FillFrames is how many chunks this port keeps posted for reception
	// (fill ring plus frames received and not yet taken); 0 means FillSize.
	// Lower it when several ports share a small UMEM.
	FillFrames int
	// KickAt lets Transmit leave frames on the tx ring without a sendto()
	// until this many wait there; Flush (or a later Transmit reaching the
	// mark) sends them. In copy mode every sendto() costs a system call
	// and a pass through the driver, so a worker that gets a few frames per
	// poll sends them in one call instead of many. 0 or 1: every Transmit
	// kicks. The caller must Flush when it goes idle.
	KickAt int
	// Name is the name used in logs and counters; default the interface
	// name.
	Name string
	// Pool, when set, is the allocator this port draws from and returns
	// to instead of UMEM.Pool(): with several workers sharing one UMEM,
	// each worker's ports use that worker's cache over a port.Depot made
	// from UMEM.Mem(), so a chunk received on one worker's socket can be
	// transmitted on another's. A chunk still moves between workers only
	// through a synchronising handoff (the pipeline's rings).
	Pool *port.Pool
}

// Port is one AF_XDP socket bound to an interface queue: a port.Port.
// Owned by one worker goroutine, like its UMEM; Stats alone may be called
// concurrently.
type Port struct {
	u       *UMEM
	pool    *port.Pool
	slot    uint8 // index in u.ports; chunks in our rings have owner slot+1
	fd      int
	ifindex int
	queue   int
	name    string
	zc      bool
	shared  bool // bound with XDP_SHARED_UMEM
	notes   []string

	fill addrRing
	comp addrRing
	rx   descRing
	tx   descRing

	needWakeup bool // bound with XDP_USE_NEED_WAKEUP
	busyPoll   bool
	fillFrames uint32 // most chunks posted for reception
	rxPosted   uint32 // chunks on the fill ring or the rx ring
	txBacklog  bool   // the last kick left descriptors on the tx ring
	kickAt     uint32 // Options.KickAt

	pollFd [1]unix.PollFd

	st counters

	mu     sync.Mutex // serialises Close against a concurrent Stats
	closed bool
}

// counters are our own per-port counters, written by the owner once per
// batch and read by Stats from any goroutine. Padded so that two ports'
// counters do not share a cache line.
type counters struct {
	_           [64]byte
	received    atomic.Uint64
	transmitted atomic.Uint64
	completed   atomic.Uint64
	fillEmpty   atomic.Uint64
	rxTooLong   atomic.Uint64
	rxBadDesc   atomic.Uint64
	txFull      atomic.Uint64
	txInvalid   atomic.Uint64
	kicks       atomic.Uint64
	kickErrors  atomic.Uint64
	deferred    atomic.Uint64
	wakeups     atomic.Uint64
	_           [64]byte
}

// Stats are a socket's counters: the kernel's (XDP_STATISTICS) and ours.
type Stats struct {
	// Kernel counters.
	RxDropped       uint64 // frames dropped by the kernel (e.g. too long for a chunk)
	RxInvalidDescs  uint64 // invalid fill descriptors
	TxInvalidDescs  uint64 // invalid tx descriptors
	RxRingFull      uint64 // frames dropped because the rx ring was full
	RxFillRingEmpty uint64 // times the kernel found the fill ring empty
	TxRingEmpty     uint64 // times the kernel found the tx ring empty

	// Our counters.
	Received    uint64 // frames handed to the worker
	Transmitted uint64 // frames queued on the tx ring
	Completed   uint64 // tx completions reaped (chunks back in the pool)
	FillEmpty   uint64 // refills that found the pool empty
	RxTooLong   uint64 // frames longer than port.MaxFrame, dropped
	RxBadDesc   uint64 // rx descriptors for chunks not posted by this port (never expected)
	TxFull      uint64 // frames refused because the tx ring was full
	TxInvalid   uint64 // frames refused because their descriptor was out of the chunk
	Kicks       uint64 // sendto() calls
	KickErrors  uint64 // sendto() calls that failed other than EAGAIN/EBUSY/ENOBUFS
	Deferred    uint64 // Transmits that left their frames for a later kick (Options.KickAt)
	Wakeups     uint64 // recvfrom() calls (busy poll or need-wakeup)
}

// Errors.
var (
	ErrUnsupported = errors.New("afxdp: AF_XDP sockets are not available")
	ErrQueueInUse  = errors.New("afxdp: interface queue already has a socket on this UMEM")
	ErrMode        = errors.New("afxdp: mode differs from the UMEM's first socket")
)

// Open creates an AF_XDP socket on queue o.Queue of interface ifindex (in
// the calling thread's network namespace) over u. The first socket on a
// UMEM registers it; further sockets bind with XDP_SHARED_UMEM and get fill
// and completion rings of their own (Linux >= 5.10 for another device or
// queue). The fill ring is primed from u.Pool() before Open returns.
//
// A queue whose previous socket was closed a moment ago may still be busy
// while the kernel releases it; Open waits up to bindBusyWait for it.
func Open(ifindex int, u *UMEM, o Options) (*Port, error) {
	if u == nil || u.closed {
		return nil, ErrClosed
	}
	if err := o.defaults(); err != nil {
		return nil, err
	}
	slot := u.freeSlot()
	if slot < 0 {
		return nil, fmt.Errorf("afxdp: more than %d sockets on one UMEM", maxPorts)
	}
	anchor, dup := u.anchor(ifindex, o.Queue)
	if anchor == nil && dup {
		return nil, fmt.Errorf("%w: ifindex %d queue %d", ErrQueueInUse, ifindex, o.Queue)
	}
	if anchor != nil {
		switch {
		case o.Mode == Copy && u.zc:
			return nil, fmt.Errorf("%w: copy requested, UMEM is zero-copy", ErrMode)
		case o.Mode == ZeroCopy && !u.zc:
			return nil, fmt.Errorf("%w: zero-copy requested, UMEM is in copy mode", ErrMode)
		}
	}

	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EAFNOSUPPORT) {
			return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
		}
		return nil, fmt.Errorf("afxdp: socket(AF_XDP): %w", err)
	}
	pool := u.pool
	if o.Pool != nil {
		pool = o.Pool
	}
	p := &Port{u: u, pool: pool, slot: uint8(slot), fd: fd, ifindex: ifindex, queue: o.Queue,
		busyPoll: o.BusyPoll, fillFrames: uint32(o.FillFrames), kickAt: uint32(max(o.KickAt, 0))}
	ok := false
	defer func() {
		if !ok {
			p.teardown()
		}
	}()
	if err := p.setup(anchor, o); err != nil {
		return nil, err
	}
	p.name = o.Name
	if p.name == "" {
		if ifi, err := net.InterfaceByIndex(ifindex); err == nil {
			p.name = ifi.Name
		} else {
			p.name = fmt.Sprintf("if%d", ifindex)
		}
	}
	p.pollFd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	if anchor == nil {
		u.zc, u.wakeup = p.zc, p.needWakeup
	}
	u.ports[slot] = p
	u.nopen++
	ok = true
	if !o.NoRx {
		p.refill()
	}
	return p, nil
}

func (o *Options) defaults() error {
	if o.NoRx && o.NoTx {
		return errors.New("afxdp: Options: NoRx and NoTx together leave no ring")
	}
	if o.Queue < 0 {
		return fmt.Errorf("afxdp: Options: queue %d", o.Queue)
	}
	for _, s := range []*int{&o.RxSize, &o.TxSize, &o.FillSize, &o.CompSize} {
		if *s == 0 {
			*s = DefaultRingSize
		}
		if *s < 0 || *s > 1<<20 || bits.OnesCount(uint(*s)) != 1 {
			return fmt.Errorf("afxdp: Options: ring size %d is not a power of two", *s)
		}
	}
	if o.FillFrames <= 0 || o.FillFrames > o.FillSize {
		o.FillFrames = o.FillSize
	}
	if o.BusyPollUsec <= 0 {
		o.BusyPollUsec = 20
	}
	return nil
}

// setup registers or shares the UMEM, creates and maps the rings and binds.
func (p *Port) setup(anchor *Port, o Options) error {
	fd, u := p.fd, p.u
	if anchor == nil {
		reg := unix.XDPUmemReg{
			Addr:     uint64(uintptr(unsafe.Pointer(unsafe.SliceData(u.mem)))),
			Len:      uint64(len(u.mem)),
			Size:     port.ChunkSize,
			Headroom: umemHeadroom,
		}
		if err := registerUMEM(fd, &reg); err != nil {
			hint := ""
			if errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.EPERM) {
				hint = " (raise RLIMIT_MEMLOCK or grant CAP_IPC_LOCK)"
			}
			return fmt.Errorf("afxdp: XDP_UMEM_REG: %w%s", err, hint)
		}
	}
	// Every socket here has its own fill and completion rings: the first
	// one because it registered the UMEM, the others because they are on
	// another device or queue.
	sizes := []struct {
		opt, n int
		skip   bool
		what   string
	}{
		{unix.XDP_UMEM_FILL_RING, o.FillSize, false, "fill"},
		{unix.XDP_UMEM_COMPLETION_RING, o.CompSize, false, "completion"},
		{unix.XDP_RX_RING, o.RxSize, o.NoRx, "rx"},
		{unix.XDP_TX_RING, o.TxSize, o.NoTx, "tx"},
	}
	for _, s := range sizes {
		if s.skip {
			continue
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, s.opt, s.n); err != nil {
			return fmt.Errorf("afxdp: %s ring of %d: %w", s.what, s.n, err)
		}
	}
	off, err := mmapOffsets(fd)
	if err != nil {
		return fmt.Errorf("afxdp: XDP_MMAP_OFFSETS: %w", err)
	}
	if p.fill, err = mapAddrRing(fd, off.Fr, uint32(o.FillSize), unix.XDP_UMEM_PGOFF_FILL_RING); err != nil {
		return fmt.Errorf("afxdp: mmap fill ring: %w", err)
	}
	if p.comp, err = mapAddrRing(fd, off.Cr, uint32(o.CompSize), unix.XDP_UMEM_PGOFF_COMPLETION_RING); err != nil {
		return fmt.Errorf("afxdp: mmap completion ring: %w", err)
	}
	if !o.NoRx {
		if p.rx, err = mapDescRing(fd, off.Rx, uint32(o.RxSize), unix.XDP_PGOFF_RX_RING); err != nil {
			return fmt.Errorf("afxdp: mmap rx ring: %w", err)
		}
	}
	if !o.NoTx {
		if p.tx, err = mapDescRing(fd, off.Tx, uint32(o.TxSize), unix.XDP_PGOFF_TX_RING); err != nil {
			return fmt.Errorf("afxdp: mmap tx ring: %w", err)
		}
	}

	sa := unix.SockaddrXDP{Ifindex: uint32(p.ifindex), QueueID: uint32(p.queue)}
	if anchor != nil {
		// Mode and need-wakeup come from the UMEM's registration; the
		// kernel refuses them as bind flags here.
		sa.Flags = unix.XDP_SHARED_UMEM
		sa.SharedUmemFD = uint32(anchor.fd)
		p.shared = true
		p.needWakeup = u.wakeup
		if o.NeedWakeup != u.wakeup {
			p.note("need-wakeup %v inherited from the UMEM's first socket (asked for %v)", u.wakeup, o.NeedWakeup)
		}
	} else {
		switch o.Mode {
		case Copy:
			sa.Flags = unix.XDP_COPY
		case ZeroCopy:
			sa.Flags = unix.XDP_ZEROCOPY
		}
		// Auto: neither flag; the kernel tries zero-copy and falls back.
		if o.NeedWakeup {
			sa.Flags |= unix.XDP_USE_NEED_WAKEUP
		}
		p.needWakeup = o.NeedWakeup
	}
	if err := bindRetry(fd, &sa); err != nil {
		switch {
		case errors.Is(err, unix.EOPNOTSUPP) && (o.Mode == ZeroCopy || (anchor != nil && u.zc)):
			return fmt.Errorf("afxdp: bind ifindex %d queue %d: zero-copy not supported by the driver: %w", p.ifindex, p.queue, err)
		case errors.Is(err, unix.EBUSY):
			return fmt.Errorf("afxdp: bind ifindex %d queue %d: queue busy (another AF_XDP socket is bound to it): %w", p.ifindex, p.queue, err)
		}
		return fmt.Errorf("afxdp: bind ifindex %d queue %d (flags %#x): %w", p.ifindex, p.queue, sa.Flags, err)
	}
	if p.zc, err = xdpZeroCopy(fd); err != nil {
		return fmt.Errorf("afxdp: XDP_OPTIONS: %w", err)
	}
	if o.Mode == Auto && anchor == nil && !p.zc {
		p.note("zero-copy not available on ifindex %d queue %d: using copy mode", p.ifindex, p.queue)
	}
	if o.Mode == ZeroCopy && !p.zc {
		return fmt.Errorf("afxdp: bind ifindex %d queue %d: %w: got copy mode", p.ifindex, p.queue, ErrMode)
	}

	if !o.NoTx && !p.zc {
		// Copy mode transmits at most max_tx_budget (32 by default)
		// descriptors per sendto(); let one kick drain the whole ring
		// (Linux >= 6.17).
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, o.TxSize); err != nil && o.TxSize > 32 {
			p.note("XDP_MAX_TX_SKB_BUDGET %d refused (%v): a kick sends at most 32 frames", o.TxSize, err)
		}
	}
	if o.BusyPoll {
		for _, s := range []struct {
			opt, v int
			what   string
		}{
			{unix.SO_PREFER_BUSY_POLL, 1, "SO_PREFER_BUSY_POLL"},
			{unix.SO_BUSY_POLL, o.BusyPollUsec, "SO_BUSY_POLL"},
			{unix.SO_BUSY_POLL_BUDGET, port.BatchSize, "SO_BUSY_POLL_BUDGET"},
		} {
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, s.opt, s.v); err != nil {
				p.note("busy poll: %s=%d refused: %v; busy polling off", s.what, s.v, err)
				p.busyPoll = false
				break
			}
		}
	}
	return nil
}

// bindBusyWait is how long Open keeps retrying a bind refused with EBUSY:
// the kernel releases a closed socket's queue asynchronously (a workqueue
// item), so a queue closed a moment ago can still be busy.
const bindBusyWait = 2 * time.Second

// bindRetry binds, retrying while the queue is busy. A refused bind leaves
// the socket's UMEM and rings in place, so the same socket can try again.
func bindRetry(fd int, sa *unix.SockaddrXDP) error {
	deadline := time.Now().Add(bindBusyWait)
	for {
		err := unix.Bind(fd, sa)
		if err != unix.EBUSY || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *Port) note(format string, a ...any) { p.notes = append(p.notes, fmt.Sprintf(format, a...)) }

// teardown closes the socket and unmaps the rings (used when Open fails).
func (p *Port) teardown() {
	if p.fd >= 0 {
		unix.Close(p.fd)
		p.fd = -1
	}
	p.fill.unmap()
	p.comp.unmap()
	p.rx.unmap()
	p.tx.unmap()
}

// FD is the socket, to put in the XSKMAP of the XDP program at key Queue.
func (p *Port) FD() int { return p.fd }

// Name implements port.Port.
func (p *Port) Name() string { return p.name }

// Ifindex and Queue are what the socket is bound to.
func (p *Port) Ifindex() int { return p.ifindex }

// Queue is the bound queue.
func (p *Port) Queue() int { return p.queue }

// ZeroCopy reports whether the socket is bound in zero-copy mode.
func (p *Port) ZeroCopy() bool { return p.zc }

// Shared reports whether the socket shares its UMEM registration with an
// earlier socket (XDP_SHARED_UMEM).
func (p *Port) Shared() bool { return p.shared }

// Notes are what Open had to settle for: copy instead of zero-copy, busy
// polling refused, and the like.
func (p *Port) Notes() []string { return p.notes }

// Receive implements port.Port: it appends up to port.BatchSize-b.N received
// frames to b and tops the fill ring up from the pool. It never blocks.
func (p *Port) Receive(b *port.Batch) int {
	if p.rx.mem == nil {
		p.reap()
		return 0
	}
	if p.txBacklog {
		p.kickTx()
	}
	p.reap()
	room := port.BatchSize - b.N
	if room <= 0 {
		p.refill()
		return 0
	}
	n := p.rx.avail(uint32(room))
	var tooLong, bad uint64
	got := 0
	if n > 0 {
		ts := time.Now().UnixNano()
		idx := p.rx.cachedCons
		mine := p.slot + 1
		for i := uint32(0); i < n; i++ {
			d := p.rx.desc[(idx+i)&p.rx.mask]
			id := uint32(d.Addr / port.ChunkSize)
			off := int(d.Addr % port.ChunkSize)
			if int(id) >= len(p.u.owner) || p.u.owner[id] != mine {
				bad++ // not ours: leave it alone rather than free it twice
				continue
			}
			p.u.owner[id] = ownerPool
			if d.Len > port.MaxFrame || off+int(d.Len) > port.ChunkSize {
				tooLong++
				p.pool.PutID(id)
				continue
			}
			f := &b.F[b.N]
			*f = p.pool.Frame(id, off, int(d.Len))
			f.TS = ts
			b.N++
			got++
		}
		p.rx.release(n)
		p.rxPosted -= n - uint32(bad)
		p.lookAhead()
		p.st.received.Add(uint64(got))
		if tooLong != 0 {
			p.st.rxTooLong.Add(tooLong)
		}
		if bad != 0 {
			p.st.rxBadDesc.Add(bad)
		}
	}
	p.refill()
	if (p.busyPoll && n == 0) || (p.needWakeup && p.fill.needWakeup()) {
		wake(p.fd)
		p.st.wakeups.Add(1)
	}
	return got
}

// lookAheadLen is how much of each frame lookAhead asks for: the first
// two cache lines, which hold the outer headers of every frame the
// pipeline handles (Ethernet, IPv6, UDP and ESP take 70 bytes).
const lookAheadLen = 128

// lookAhead asks for the headers of the frames the next Receive will
// return to be brought into this core's cache, writable
// (prefetch.ForWrite), without waiting for them. The kernel wrote them on
// another CPU; asked for now, they arrive while the worker processes this
// batch instead of while it waits at the start of the next one. Only
// frames already in the RX ring (as far as the last read of its producer
// index shows) are looked at; their descriptors are read, not consumed.
func (p *Port) lookAhead() {
	k := min(p.rx.cachedProd-p.rx.cachedCons, port.BatchSize)
	mem := p.u.mem
	for i := range k {
		a := p.rx.desc[(p.rx.cachedCons+i)&p.rx.mask].Addr
		if a < uint64(len(mem)) {
			prefetch.ForWrite(mem[a:min(a+lookAheadLen, uint64(len(mem)))])
		}
	}
}

// refill posts chunks from the pool to the fill ring until fillFrames chunks
// are posted or the ring or pool runs out; it publishes once.
func (p *Port) refill() {
	want := p.fillFrames - p.rxPosted
	if want == 0 {
		return
	}
	n := p.fill.free(want)
	if n > want {
		n = want
	}
	if n == 0 {
		return
	}
	mine := p.slot + 1
	idx := p.fill.cachedProd
	i := uint32(0)
	for ; i < n; i++ {
		id, ok := p.pool.GetID()
		if !ok {
			p.st.fillEmpty.Add(1)
			break
		}
		p.u.owner[id] = mine
		p.fill.desc[(idx+i)&p.fill.mask] = uint64(id) * port.ChunkSize
	}
	if i == 0 {
		return
	}
	p.fill.cachedProd += i
	p.rxPosted += i
	p.fill.publish()
}

// reap returns the chunks of completed transmissions to the pool.
func (p *Port) reap() {
	n := p.comp.avail(p.comp.size)
	if n == 0 {
		return
	}
	mine := p.slot + 1
	idx := p.comp.cachedCons
	for i := uint32(0); i < n; i++ {
		id := uint32(p.comp.desc[(idx+i)&p.comp.mask] / port.ChunkSize)
		if int(id) < len(p.u.owner) && p.u.owner[id] == mine {
			p.u.owner[id] = ownerPool
			p.pool.PutID(id)
		}
	}
	p.comp.release(n)
	p.st.completed.Add(uint64(n))
}

// Transmit implements port.Port: it takes every frame in b, queues those
// that fit on the tx ring (descriptor address = chunk base + Frame.Off),
// returns the others to the pool, kicks the kernel when it needs it, and
// reaps completions. It reports how many frames it queued.
func (p *Port) Transmit(b *port.Batch) int {
	p.reap()
	if b.N == 0 {
		if p.txBacklog {
			p.kickTx()
		}
		return 0
	}
	var free uint32
	if p.tx.mem != nil {
		free = p.tx.free(uint32(b.N))
	}
	mine := p.slot + 1
	idx := p.tx.cachedProd
	var n uint32
	var full, invalid uint64
	for i := range b.Frames() {
		f := &b.F[i]
		if int(f.ID) >= len(p.u.owner) {
			panic(fmt.Sprintf("afxdp: Transmit of chunk %d: not from this port's UMEM", f.ID))
		}
		if p.u.owner[f.ID] != ownerPool {
			panic(fmt.Sprintf("afxdp: Transmit of chunk %d which is still in a kernel ring", f.ID))
		}
		if f.Len <= 0 || f.Off < 0 || f.Off+f.Len > port.ChunkSize {
			invalid++
			p.pool.PutID(f.ID)
			continue
		}
		if n >= free {
			full++
			p.pool.PutID(f.ID)
			continue
		}
		p.u.owner[f.ID] = mine
		p.tx.desc[(idx+n)&p.tx.mask] = unix.XDPDesc{Addr: uint64(f.ID)*port.ChunkSize + uint64(f.Off), Len: uint32(f.Len)}
		n++
	}
	b.N = 0
	if full != 0 {
		p.st.txFull.Add(full)
	}
	if invalid != 0 {
		p.st.txInvalid.Add(invalid)
	}
	if n == 0 {
		return 0
	}
	p.tx.cachedProd += n
	p.tx.publish()
	p.st.transmitted.Add(uint64(n))
	if p.kickAt > 1 && !p.txBacklog && p.tx.cachedProd-p.tx.cons.Load() < p.kickAt {
		p.st.deferred.Add(1)
		return int(n) // sent by a later Transmit or Flush
	}
	p.kickTx()
	return int(n)
}

// maxKicks bounds the sendto() calls of one Transmit; what is left is sent
// by the next Transmit, Receive or Flush.
const maxKicks = 4

// kickTx has the kernel send what is on the tx ring. In copy mode sendto()
// transmits synchronously and returns EAGAIN when it stopped early (budget
// or completion ring full) and EBUSY when the driver dropped a frame, so we
// reap and retry a few times. In zero-copy mode it only wakes the driver.
func (p *Port) kickTx() {
	p.txBacklog = false
	for try := 0; try < maxKicks; try++ {
		if p.needWakeup && !p.tx.needWakeup() {
			return
		}
		e := kick(p.fd)
		p.st.kicks.Add(1)
		switch e {
		case 0:
			return
		case unix.EAGAIN, unix.EBUSY, unix.ENOBUFS:
		default:
			p.st.kickErrors.Add(1)
			p.txBacklog = p.tx.cons.Load() != p.tx.cachedProd
			return
		}
		p.reap()
		if p.tx.cons.Load() == p.tx.cachedProd {
			return
		}
	}
	p.txBacklog = true
}

// Flush kicks the tx ring if frames are still waiting on it and reaps
// completions; a worker calls it when it goes idle.
func (p *Port) Flush() {
	if p.tx.mem != nil && p.tx.cons.Load() != p.tx.cachedProd {
		p.kickTx()
	}
	p.reap()
}

// Poll waits up to timeout (forever if negative) for frames on the rx ring
// (poll(2); in copy mode it also drives the tx ring). It returns nil on
// readiness, timeout or interruption.
func (p *Port) Poll(timeout time.Duration) error {
	if p.fd < 0 {
		return ErrClosed
	}
	ms := int(timeout / time.Millisecond)
	if timeout > 0 && ms == 0 {
		ms = 1
	}
	p.pollFd[0].Revents = 0
	_, err := unix.Poll(p.pollFd[:], ms)
	if err != nil && err != unix.EINTR {
		return fmt.Errorf("afxdp: poll %s: %w", p.name, err)
	}
	return nil
}

// Stats returns the kernel's and our counters. It works on any socket
// (receive-only, transmit-only) and may be called from any goroutine, also
// concurrently with the owner's Receive and Transmit.
func (p *Port) Stats() (Stats, error) {
	s := Stats{
		Received:    p.st.received.Load(),
		Transmitted: p.st.transmitted.Load(),
		Completed:   p.st.completed.Load(),
		FillEmpty:   p.st.fillEmpty.Load(),
		RxTooLong:   p.st.rxTooLong.Load(),
		RxBadDesc:   p.st.rxBadDesc.Load(),
		TxFull:      p.st.txFull.Load(),
		TxInvalid:   p.st.txInvalid.Load(),
		Kicks:       p.st.kicks.Load(),
		KickErrors:  p.st.kickErrors.Load(),
		Deferred:    p.st.deferred.Load(),
		Wakeups:     p.st.wakeups.Load(),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return s, ErrClosed
	}
	k, err := xdpStatistics(p.fd)
	if err != nil {
		return s, fmt.Errorf("afxdp: XDP_STATISTICS on %s: %w", p.name, err)
	}
	s.RxDropped = k.Rx_dropped
	s.RxInvalidDescs = k.Rx_invalid_descs
	s.TxInvalidDescs = k.Tx_invalid_descs
	s.RxRingFull = k.Rx_ring_full
	s.RxFillRingEmpty = k.Rx_fill_ring_empty_descs
	s.TxRingEmpty = k.Tx_ring_empty_descs
	return s, nil
}

// Close closes the socket and returns to the pool every chunk that was on
// this port's fill, rx, tx or completion ring. Frames the worker holds stay
// the worker's. Close is idempotent.
//
// In zero-copy mode the driver releases the queue asynchronously after the
// socket is gone; the chunks are back in the pool at once all the same.
func (p *Port) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.reap() // what the kernel already completed
	err := unix.Close(p.fd)
	p.fd = -1
	p.mu.Unlock()

	p.fill.unmap()
	p.comp.unmap()
	p.rx.unmap()
	p.tx.unmap()
	p.fill.desc, p.comp.desc, p.rx.desc, p.tx.desc = nil, nil, nil, nil
	// The kernel has let go of the socket's rings: take back every chunk
	// they held.
	mine := p.slot + 1
	for id, o := range p.u.owner {
		if o == mine {
			p.u.owner[id] = ownerPool
			p.pool.PutID(uint32(id))
		}
	}
	p.rxPosted = 0
	p.txBacklog = false
	p.u.ports[p.slot] = nil
	p.u.nopen--
	if err != nil {
		return fmt.Errorf("afxdp: close %s: %w", p.name, err)
	}
	return nil
}

var _ port.Port = (*Port)(nil)
