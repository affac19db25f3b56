package pipeline

import (
	"crypto/subtle"
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"strconv"
	"time"

	"github.com/tunterm/tunterm/dataplane/bridge"
	"github.com/tunterm/tunterm/dataplane/hdr"
	"github.com/tunterm/tunterm/dataplane/internal/abtest"
	"github.com/tunterm/tunterm/dataplane/internal/prefetch"
	"github.com/tunterm/tunterm/dataplane/port"
	"github.com/tunterm/tunterm/dataplane/ring"
	"github.com/tunterm/tunterm/dataplane/stats"
	"github.com/tunterm/tunterm/dataplane/table"
)

// Worker runs both directions of the pipeline, run to completion, over
// batches. A Worker and everything it holds (ports, pool, batches, counters)
// is owned by one goroutine; only Counters and the Taps may be read or set
// from elsewhere.
type Worker struct {
	ID     int
	tables *table.Store
	fdb    *bridge.FDB
	pool   *port.Pool
	down   port.Port
	up     port.Port

	// prefetchMin: prefetchSA runs for snapshots with at least this many
	// inbound SAs (Config.PrefetchMinSAs).
	prefetchMin int

	// Counters are this worker's totals (flushed once per batch).
	Counters stats.Counters
	// Taps are optional observers, loaded once per batch.
	Taps Taps

	rx     port.Batch
	txDown port.Batch
	txUp   port.Batch
	tally  stats.Batch
	now    uint32 // coarse seconds for FDB aging
	ipID   uint16

	// Handoff to the worker that owns an SA/session (nil with one worker).
	nw    int
	txVia int
	outq  []*ring.Ring[Handoff] // to worker j; nil for ourselves
	inq   []*ring.Ring[Handoff] // from worker j
	stage [][]Handoff           // per destination, published once per batch
	hbuf  [port.BatchSize]Handoff
	clock func() time.Time
	// pend holds, for each frame of an AP->corporate batch, the outcome
	// of its first pass (decryption and decapsulation) and, when that
	// outcome is bridgePending, the session whose inner frame the second
	// pass bridges. deferBridge is set while the first pass runs.
	pend        [port.BatchSize]pending
	pendS       *table.Session
	pendSeen    peerSeen
	deferBridge bool
	hint        uint64 // sink for prefetched values
	pre         [port.BatchSize]preSA
	homes       [2 * port.BatchSize]uint64 // FDB home slots of a batch's inner sources and destinations
	dsts        [port.BatchSize]bridge.Key // FDB keys of a corporate batch's destinations (prefetchUp)
	// cur is the frame being processed, for taps and traces.
	cur struct {
		dir      stats.Dir
		index    int
		outs     int
		off, len int // the received frame's span, for the drop tap
	}
}

// Config wires a worker.
type Config struct {
	ID     int
	Tables *table.Store
	FDB    *bridge.FDB
	Pool   *port.Pool
	Down   port.Port
	Up     port.Port
	// Clock returns the current time; nil means time.Now. Offline replay
	// sets it to the capture's timestamps so aging follows the capture.
	Clock func() time.Time
	// Mesh connects the workers of a multi-worker dataplane (nil: one
	// worker). Down and Up may then be nil for a worker that has no queue
	// of its own on that NIC: it processes what others hand it and sends
	// its output through worker TxVia, which must have both ports.
	Mesh  *Mesh
	TxVia int
	// PrefetchMinSAs: the worker asks for the tables' lines of an AP ->
	// corporate batch ahead of its lookups (prefetchSA) only when the
	// snapshot holds at least this many inbound SAs. 0 (the zero Config)
	// means always; PrefetchAutoSAs is the daemon's default; a negative
	// value means never.
	PrefetchMinSAs int
}

// PrefetchAutoSAs is the default of Config.PrefetchMinSAs (ports.prefetch:
// auto). Measured live on the lab VM (performance.md, "Session 12: the
// SA prefetch only where it pays"): without it, AP -> corporate batches
// took 1.3-2.3 % less time at 500 and 600 tunnels and 128 B, whose tables
// stay in the cache (about the same at 1400 B), and from 700 tunnels on
// up to 4.6 % more (1400 B), from 2,000 on up to 19.5 % more.
const PrefetchAutoSAs = 700

// NewWorker returns a worker for cfg.
func NewWorker(cfg Config) *Worker {
	w := &Worker{ID: cfg.ID, tables: cfg.Tables, fdb: cfg.FDB, pool: cfg.Pool,
		down: cfg.Down, up: cfg.Up, clock: cfg.Clock}
	if w.clock == nil {
		w.clock = time.Now
	}
	w.nw, w.txVia = 1, cfg.TxVia
	if m := cfg.Mesh; m != nil {
		w.nw = m.n
		w.outq, w.inq = make([]*ring.Ring[Handoff], m.n), make([]*ring.Ring[Handoff], m.n)
		w.stage = make([][]Handoff, m.n)
		for j := range m.n {
			if j != w.ID {
				w.outq[j], w.inq[j] = m.rings[w.ID][j], m.rings[j][w.ID]
				w.stage[j] = make([]Handoff, 0, port.BatchSize)
			}
		}
	}
	w.prefetchMin = cfg.PrefetchMinSAs
	if w.prefetchMin < 0 {
		w.prefetchMin = math.MaxInt
	}
	if abtest.On {
		abtest.SetInfo(w.abInfo)
	}
	return w
}

// Poll processes what other workers handed over, then receives one batch
// from each port, processes it and transmits the results. It returns the
// number of frames handled.
func (w *Worker) Poll() int {
	n := w.Drain()
	if w.down != nil {
		abtest.Begin()
		if w.down.Receive(&w.rx) > 0 {
			n += w.rx.N
			w.processTimed(stats.FromDown)
		}
	}
	if w.up != nil {
		abtest.Begin()
		if w.up.Receive(&w.rx) > 0 {
			n += w.rx.N
			w.processTimed(stats.FromUp)
		}
	}
	return n
}

// processTimed processes w.rx; in a paired A/B build (abtest.On) it also
// adds a full batch's time since abtest.Begin to its variant.
func (w *Worker) processTimed(dir stats.Dir) {
	if !abtest.On {
		w.Process(dir, &w.rx)
		return
	}
	k, size := w.rx.N, 0
	for i := range w.rx.Frames() {
		size += w.rx.F[i].Len
	}
	w.Process(dir, &w.rx)
	if k == port.BatchSize {
		abtest.End(k, size)
	}
}

// abInfo describes the run in a paired A/B report: the SAs of the
// snapshot.
func (w *Worker) abInfo() string {
	if t := w.tables.Load(); t != nil {
		return "sas=" + strconv.Itoa(t.SPI.Len())
	}
	return "sas=0"
}

// pending is a frame's state between the two passes over an AP->corporate
// batch.
type pending struct {
	s        *table.Session
	r        stats.Reason
	off, len int // the received frame's span, for the drop tap
	seen     peerSeen
}

// peerSeen is what an authenticated frame tells about its peer: its NAT
// port (0: none) and next-hop MAC. In a two-pass batch it is applied in
// the second pass, in frame order, so that a frame bridged to a peer sees
// exactly the updates of the frames before it, as in one pass.
type peerSeen struct {
	ps      *table.PeerState
	natPort uint16
	mac     uint64
}

func (p peerSeen) apply() {
	if p.ps == nil {
		return
	}
	if p.natPort != 0 && p.ps.NATPort.Load() != uint32(p.natPort) {
		p.ps.NATPort.Store(uint32(p.natPort))
	}
	if p.ps.NextHop.Load() != p.mac {
		p.ps.NextHop.Store(p.mac)
	}
}

// seen records or applies what an authenticated frame tells about its peer.
func (w *Worker) seen(ps *table.PeerState, natPort uint16, mac uint64) {
	if w.deferBridge {
		w.pendSeen = peerSeen{ps, natPort, mac}
		return
	}
	peerSeen{ps, natPort, mac}.apply()
}

// bridgePending is the internal first-pass outcome "decapsulated: bridge it
// in the second pass".
const bridgePending = stats.NumReasons + 2

// Process runs the pipeline for one batch received in direction dir, flushes
// the transmit batches and the counters, and empties in. Every frame of in
// ends up transmitted or back in the pool.
func (w *Worker) Process(dir stats.Dir, in *port.Batch) {
	t := w.tables.Load()
	taps := w.Taps.load()
	w.now = uint32(w.clock().Unix())
	w.cur.dir = dir
	// The kernel wrote these frames on another CPU; the pipeline rewrites
	// every line of them in place (decryption, encryption, headers). Ask
	// for them writable ahead of use rather than shared on the first read
	// and then again on the first write: now the first headerLen bytes of
	// every frame (which prefetchSA and prefetchUp read) and the whole of
	// the first frameAhead frames (from the corporate side with the room
	// their encapsulation writes around them, encapSpan); then the loop
	// that processes frame i asks for frame i+frameAhead.
	for i := range in.Frames() {
		b := in.F[i].Bytes()
		if i >= frameAhead {
			b = b[:min(len(b), headerLen)]
		} else if dir == stats.FromUp {
			b = encapSpan(&in.F[i])
		}
		prefetch.ForWrite(b)
	}
	if t != nil && dir == stats.FromDown {
		w.processDown(t, in, taps)
		return
	}
	if t != nil {
		w.prefetchUp(t, in)
	}
	for i := range in.Frames() {
		if j := i + frameAhead; j < in.N {
			prefetch.ForWrite(encapSpan(&in.F[j]))
		}
		f := &in.F[i]
		w.tally.RxPkts[dir]++
		w.tally.RxBytes[dir] += uint64(f.Len)
		w.cur.index, w.cur.outs = i, 0
		w.cur.off, w.cur.len = f.Off, f.Len
		var r stats.Reason
		if t == nil {
			r = stats.NoTable
		} else if dir == stats.FromDown {
			r = w.fromDown(t, f, taps)
		} else {
			r = w.fromUp(t, f, taps)
		}
		w.finish(f, r, taps)
	}
	in.N = 0
	w.flush(taps)
}

// frameAhead is how many frames ahead of the one being processed the
// worker asks for a batch's lines writable (prefetch.ForWrite). Asking for
// all 64 frames of a batch at once (1,400 lines at 1400 B) left the
// decryption and encryption waiting on the frames' loads live: the
// prefetches had not arrived, or had been dropped, by the time a frame's
// turn came. Four frames ahead is two to five microseconds of work, far
// more than a line takes to come over from the other CPU (performance.md,
// "Frames asked for writable").
const frameAhead = 4

// encapSpan is the part of a frame's chunk that the corporate -> AP path
// writes: the frame, encrypted in place, the encapsulation in front of it
// (Ethernet, IP, ESP and L2TPv3 headers) and the ESP trailer and ICV after
// it. Those lines were last written when the chunk last carried a frame,
// not by the kernel's copy of this one, and come as cold as the frame's
// own. encapRoom covers the encapsulation of transport mode (at most 110
// bytes: IPv6, NAT-T, an 8-byte cookie; TestEncapSpan checks the IPv4
// shape); ESP tunnel mode adds an inner IP header, whose extra line is then
// simply not asked for ahead. trailerRoom covers padding, the two trailer
// bytes and the longest ICV (32 bytes).
func encapSpan(f *port.Frame) []byte {
	return f.Buf[max(0, f.Off-encapRoom):min(len(f.Buf), f.Off+f.Len+trailerRoom)]
}

const (
	encapRoom   = 128
	trailerRoom = 64
)

// headerLen is how much of every frame of a batch the worker asks for
// writable before anything else: the Ethernet, IP, UDP and ESP headers
// (up to the sequence number, over IPv6 with NAT-T) or the destination MAC
// that the batch's first pass reads.
const headerLen = hdr.EthLen + hdr.IPv6Len + hdr.UDPLen + 8

// processDown runs an AP->corporate batch in two passes: first, for tables
// of at least prefetchMin inbound SAs, the SAs of the batch's ESP frames
// are asked for (prefetchSA); then every frame
// is parsed, decrypted and decapsulated up to its inner Ethernet frame; then
// the FDB slots of all inner source and destination MACs are read in one
// tight loop, so that their cache misses (one per frame with thousands of
// clients in a large table) overlap; then every frame is bridged and
// accounted for, in order.
func (w *Worker) processDown(t *table.Tables, in *port.Batch, taps *tapSet) {
	if t.SPI.Len() >= w.prefetchMin {
		w.prefetchSA(t, in)
	}
	w.deferBridge = true
	for i := range in.Frames() {
		if j := i + frameAhead; j < in.N {
			prefetch.ForWrite(in.F[j].Bytes())
		}
		f := &in.F[i]
		w.tally.RxPkts[stats.FromDown]++
		w.tally.RxBytes[stats.FromDown] += uint64(f.Len)
		w.cur.index, w.cur.outs = i, 0
		w.cur.off, w.cur.len = f.Off, f.Len
		w.pendS, w.pendSeen = nil, peerSeen{}
		r := w.fromDown(t, f, taps)
		w.pend[i] = pending{s: w.pendS, r: r, off: w.cur.off, len: w.cur.len, seen: w.pendSeen}
	}
	w.deferBridge = false
	n := 0
	for i := range in.Frames() {
		if p := &w.pend[i]; p.r == bridgePending {
			b := in.F[i].Bytes()
			vlan := hintVLAN(b, p.s.Tunnel.Native)
			w.homes[n] = w.fdb.Home(bridge.MakeKey(vlan, hdr.Src(b)))
			w.homes[n+1] = w.fdb.Home(bridge.MakeKey(vlan, hdr.Dst(b)))
			n += 2
		}
	}
	w.hint += w.fdb.PrefetchHomes(w.homes[:n])
	for i := range in.Frames() {
		f, p := &in.F[i], &w.pend[i]
		w.cur.index, w.cur.outs = i, 0
		w.cur.off, w.cur.len = p.off, p.len
		r := p.r
		p.seen.apply()
		if r == bridgePending {
			r = w.bridgeFromSession(t, p.s, f, taps)
		}
		w.finish(f, r, taps)
		p.s, p.seen = nil, peerSeen{}
	}
	in.N = 0
	w.flush(taps)
}

// prefetchUp reads the FDB slots of the destinations of a batch from the
// corporate side before the batch is processed (see processDown); then,
// for each destination the FDB knows, the session, tunnel, peer and
// outbound SA its encapsulation will read (esp.SA.Prefetch), for sessions
// this worker owns. With thousands of tunnels every frame meets them
// cold. It changes nothing; what fromUp later finds is authoritative.
func (w *Worker) prefetchUp(t *table.Tables, in *port.Batch) {
	n := 0
	for i := range in.Frames() {
		b := in.F[i].Bytes()
		if len(b) < hdr.EthLen {
			continue
		}
		vlan := t.Local.UpstreamVLAN
		if vlan == 0 {
			vlan = hintVLAN(b, 0)
		}
		w.dsts[n] = bridge.MakeKey(vlan, hdr.Dst(b))
		w.homes[n] = w.fdb.Home(w.dsts[n])
		n++
	}
	h := w.fdb.PrefetchHomes(w.homes[:n])
	for _, k := range w.dsts[:n] {
		o, hit := w.fdb.Lookup(k)
		if !hit {
			continue
		}
		idx, gen, ok := o.Session()
		if !ok {
			continue
		}
		s := t.Session(idx, gen)
		if s == nil || s.Peer.Owner != w.ID {
			continue
		}
		if s.Tunnel != nil && s.St != nil { // never nil from the programmer; a hint must not panic
			h += uint64(s.Tunnel.MTU) + s.St.TxPackets.Load()
		}
		if ps := s.Peer.St; ps != nil {
			h += ps.NextHop.Load()
		}
		if out := s.Peer.Out; out != nil && out.ESP != nil {
			h += out.ESP.Prefetch()
		}
	}
	w.hint += h
}

// hintVLAN guesses the VLAN of an Ethernet frame for a prefetch: the VID of
// an outer 802.1Q tag, or native. (The real classification is vlanOf's.)
func hintVLAN(b []byte, native uint16) uint16 {
	if len(b) >= hdr.EthLen+hdr.VLANLen && binary.BigEndian.Uint16(b[12:14]) == hdr.EtherTypeVLAN {
		if v := binary.BigEndian.Uint16(b[14:16]) & 0xfff; v != 0 {
			return v
		}
	}
	return native
}

// finish accounts for the fate of the frame being processed.
func (w *Worker) finish(f *port.Frame, r stats.Reason, taps *tapSet) {
	if r != stats.OK && r != handedOff {
		// Show the frame as received (decrypted in place if it got that
		// far) rather than what is left of it.
		f.Off, f.Len = w.cur.off, w.cur.len
		w.drop(f, r, taps)
	}
	if taps.Trace != nil {
		if r == handedOff {
			r = stats.OK
		}
		taps.Trace(w.cur.dir, w.cur.index, r, w.cur.outs)
	}
}

// drop accounts for f and returns its chunk to the pool.
func (w *Worker) drop(f *port.Frame, r stats.Reason, taps *tapSet) {
	w.tally.Drops[w.cur.dir][r]++
	if taps.Drop != nil {
		taps.Drop(w.cur.dir, f.Bytes(), f.TS, r)
	}
	w.pool.Put(f)
}

// flush transmits pending frames, publishes handoffs and the batch's
// counters.
func (w *Worker) flush(taps *tapSet) {
	for j := range w.stage {
		if len(w.stage[j]) > 0 {
			w.publish(j, taps)
		}
	}
	if w.txUp.N > 0 {
		w.transmit(w.up, &w.txUp, stats.FromDown, taps)
	}
	if w.txDown.N > 0 {
		w.transmit(w.down, &w.txDown, stats.FromUp, taps)
	}
	w.Counters.Flush(&w.tally)
}

func (w *Worker) transmit(p port.Port, b *port.Batch, dir stats.Dir, taps *tapSet) {
	n := b.N
	for i := range b.Frames() {
		w.tally.TxBytes[dir] += uint64(b.F[i].Len)
		if taps.TX != nil {
			taps.TX(dir, b.F[i].Bytes(), b.F[i].TS)
		}
	}
	sent := p.Transmit(b)
	w.tally.TxPkts[dir] += uint64(sent)
	w.tally.Drops[dir][stats.TxFull] += uint64(n - sent)
}

// toUp queues f for the upstream port (or for the worker that transmits
// for us).
func (w *Worker) toUp(f *port.Frame, taps *tapSet) {
	w.emit(w.up, &w.txUp, hoTxUp, stats.FromDown, f, taps)
}

// toDown queues f for the downstream port (or for the worker that
// transmits for us).
func (w *Worker) toDown(f *port.Frame, taps *tapSet) {
	w.emit(w.down, &w.txDown, hoTxDown, stats.FromUp, f, taps)
}

// emit queues f on port p's transmit batch b (dir: the direction of
// travel), or, when this worker has no such port, hands it to the worker
// that transmits for us.
func (w *Worker) emit(p port.Port, b *port.Batch, kind handoffKind, dir stats.Dir, f *port.Frame, taps *tapSet) {
	w.cur.outs++
	if p == nil {
		w.handoff(w.txVia, &Handoff{F: *f, Kind: kind, Dir: w.cur.dir}, taps)
		return
	}
	if b.Full() {
		w.transmit(p, b, dir, taps)
	}
	b.Add(*f)
}

// addrFrom converts 4 or 16 address bytes without allocating.
func addrFrom(b []byte) netip.Addr {
	if len(b) == 4 {
		return netip.AddrFrom4([4]byte(b))
	}
	return netip.AddrFrom16([16]byte(b))
}

// fromDown handles a frame received from the APs' side: outer IP, optional
// ESP (plain or in UDP 4500), L2TPv3 over IP or UDP, then the bridge.
func (w *Worker) fromDown(t *table.Tables, f *port.Frame, taps *tapSet) stats.Reason {
	b := f.Bytes()
	eth, ok := hdr.ParseEth(b)
	if !ok {
		return stats.Malformed
	}
	srcMAC := hdr.MACUint64(hdr.Src(b))
	var (
		proto   uint8
		src     netip.Addr
		payOff  int // offset of the IP payload from f.Off
		payEnd  int
		ipStart = eth.HdrLen
	)
	switch eth.EtherType {
	case hdr.EtherTypeIPv4:
		ip := hdr.IPv4(b[ipStart:])
		if !ip.Valid() {
			return stats.Malformed
		}
		if !t.Local.Is4 || [4]byte(ip.Dst()) != t.Local.Addr4 {
			return stats.NotForUs
		}
		if ip.IsFragment() {
			return stats.Fragment
		}
		proto, src = ip.Protocol(), addrFrom(ip.Src())
		payOff, payEnd = ipStart+ip.HeaderLen(), ipStart+ip.TotalLen()
	case hdr.EtherTypeIPv6:
		ip := hdr.IPv6(b[ipStart:])
		if !ip.Valid() {
			return stats.Malformed
		}
		if t.Local.Is4 || [16]byte(ip.Dst()) != t.Local.Addr16 {
			return stats.NotForUs
		}
		p, off, frag, ok := ip.UpperLayer()
		if !ok {
			return stats.Malformed
		}
		if frag {
			return stats.Fragment
		}
		proto, src = p, addrFrom(ip.Src())
		payOff, payEnd = ipStart+off, ipStart+hdr.IPv6Len+ip.PayloadLen()
	default:
		return stats.PuntHost
	}
	// Trim link-layer padding and the headers in front of the IP payload.
	f.Len = payEnd
	f.Pull(payOff)
	pay := f.Bytes()
	switch proto {
	case hdr.ProtoESP:
		return w.esp(t, f, src, srcMAC, 0, taps)
	case hdr.ProtoUDP:
		u := hdr.UDP(pay)
		if !u.Valid() {
			return stats.Malformed
		}
		switch u.DstPort() {
		case hdr.PortIKENATT:
			p := u.Payload()
			if len(p) == 1 && p[0] == 0xff {
				return stats.PuntIKE // NAT-keepalive (RFC 3948 §2.3)
			}
			if len(p) >= hdr.NonESPMarker && binary.BigEndian.Uint32(p) == 0 {
				return stats.PuntIKE // non-ESP marker: IKE (RFC 3948 §2.2)
			}
			f.Len = u.Length()
			f.Pull(hdr.UDPLen)
			return w.esp(t, f, src, srcMAC, u.SrcPort(), taps)
		case hdr.PortIKE:
			return stats.PuntIKE
		case hdr.PortL2TP:
			f.Len = u.Length()
			f.Pull(hdr.UDPLen)
			return w.l2tpUDP(t, f, src, srcMAC, nil, taps)
		}
		return stats.PuntHost
	case hdr.ProtoL2TP:
		return w.l2tpIP(t, f, src, srcMAC, nil, taps)
	}
	return stats.PuntHost
}

// esp decrypts the ESP packet that is f's whole content (from the ESP header
// to the end of the ICV). natPort is the UDP source port for ESP-in-UDP, 0
// for plain ESP.
func (w *Worker) esp(t *table.Tables, f *port.Frame, src netip.Addr, srcMAC uint64, natPort uint16, taps *tapSet) stats.Reason {
	e := hdr.ESP(f.Bytes())
	if !e.Valid() {
		return stats.Malformed
	}
	sa := t.SPI.Get(e.SPI())
	if sa == nil {
		return stats.NoSA
	}
	if src != sa.Peer.Addr {
		return stats.SAPeer
	}
	if sa.Peer.Owner != w.ID {
		return w.handRaw(sa.Peer.Owner, f, taps)
	}
	payload, next, r := sa.ESP.Open(f.Bytes())
	if r != stats.OK {
		return r
	}
	// Authenticated: the peer's NAT mapping and next hop are now trustworthy.
	w.seen(sa.Peer.St, natPort, srcMAC)
	// Re-point f at the decrypted payload, which aliases f.Buf: its offset
	// in the chunk follows from the capacities.
	off := cap(f.Buf) - cap(payload)
	if off < f.Off || off+len(payload) > f.Off+f.Len {
		return stats.Malformed // not a subslice of the frame: cannot happen
	}
	f.Off, f.Len = off, len(payload)

	l2tpSrc := src
	if sa.Mode == table.ModeTunnel {
		// Tunnel mode: an inner IP header addressed to us carries L2TPv3.
		b := f.Bytes()
		switch next {
		case hdr.ProtoIPIP:
			ip := hdr.IPv4(b)
			if !ip.Valid() || ip.IsFragment() {
				return stats.Malformed
			}
			if !sa.InnerLocal.Is4() || [4]byte(ip.Dst()) != sa.InnerLocal.As4() {
				return stats.NotForUs
			}
			next, l2tpSrc = ip.Protocol(), addrFrom(ip.Src())
			f.Len = ip.TotalLen()
			f.Pull(ip.HeaderLen())
		case hdr.ProtoIPv6:
			ip := hdr.IPv6(b)
			if !ip.Valid() {
				return stats.Malformed
			}
			if !sa.InnerLocal.Is6() || [16]byte(ip.Dst()) != sa.InnerLocal.As16() {
				return stats.NotForUs
			}
			p, off, frag, ok := ip.UpperLayer()
			if !ok || frag {
				return stats.Malformed
			}
			next, l2tpSrc = p, addrFrom(ip.Src())
			f.Len = hdr.IPv6Len + ip.PayloadLen()
			f.Pull(off)
		default:
			return stats.BadNext
		}
	}
	switch next {
	case hdr.ProtoL2TP:
		return w.l2tpIP(t, f, l2tpSrc, srcMAC, sa, taps)
	case hdr.ProtoUDP:
		u := hdr.UDP(f.Bytes())
		if !u.Valid() {
			return stats.Malformed
		}
		if u.DstPort() != hdr.PortL2TP {
			return stats.BadNext
		}
		f.Len = u.Length()
		f.Pull(hdr.UDPLen)
		return w.l2tpUDP(t, f, l2tpSrc, srcMAC, sa, taps)
	}
	return stats.BadNext
}

// l2tpIP handles an L2TPv3-over-IP payload (RFC 3931 §4.1.1).
func (w *Worker) l2tpIP(t *table.Tables, f *port.Frame, src netip.Addr, srcMAC uint64, sa *table.SA, taps *tapSet) stats.Reason {
	sid, ok := hdr.L2TPIPSession(f.Bytes())
	if !ok {
		return stats.Malformed
	}
	if sid == 0 {
		return stats.PuntL2TP
	}
	s := t.SID.Get(sid)
	if s == nil || s.Tunnel.Proto != table.ProtoIP {
		return stats.NoSession
	}
	if sa == nil && s.Peer.Owner != w.ID {
		return w.handRaw(s.Peer.Owner, f, taps)
	}
	f.Pull(hdr.L2TPIPHdrLen)
	return w.session(t, s, f, src, srcMAC, sa, taps)
}

// l2tpUDP handles an L2TPv3-over-UDP payload (RFC 3931 §4.1.2.1).
func (w *Worker) l2tpUDP(t *table.Tables, f *port.Frame, src netip.Addr, srcMAC uint64, sa *table.SA, taps *tapSet) stats.Reason {
	sid, control, ver, ok := hdr.L2TPUDPHeader(f.Bytes())
	if !ok {
		return stats.Malformed
	}
	if control {
		return stats.PuntL2TP
	}
	if ver != hdr.L2TPVersion3 {
		return stats.BadVersion
	}
	s := t.SID.Get(sid)
	if s == nil || s.Tunnel.Proto != table.ProtoUDP {
		return stats.NoSession
	}
	if sa == nil && s.Peer.Owner != w.ID {
		return w.handRaw(s.Peer.Owner, f, taps)
	}
	f.Pull(hdr.L2TPUDPHdrLen)
	return w.session(t, s, f, src, srcMAC, sa, taps)
}

// session checks the cookie, the peer and the SA of a session's data
// message whose cookie starts at f, strips the L2TPv3 remainder and bridges
// the inner Ethernet frame.
func (w *Worker) session(t *table.Tables, s *table.Session, f *port.Frame, src netip.Addr, srcMAC uint64, sa *table.SA, taps *tapSet) stats.Reason {
	b := f.Bytes()
	n := len(s.LocalCookie)
	if s.Sublayer {
		n += hdr.L2TPSublayerLen
	}
	if len(b) < n+hdr.EthLen {
		return stats.Malformed
	}
	if subtle.ConstantTimeCompare(b[:len(s.LocalCookie)], s.LocalCookie) != 1 {
		return stats.CookieMismatch
	}
	if src != s.L2TPAddr {
		return stats.PeerMismatch
	}
	if sa == nil {
		if s.Tunnel.IPsec {
			return stats.IPsecRequire
		}
		w.seen(s.Peer.St, 0, srcMAC)
	} else if sa.Peer != s.Peer {
		return stats.WrongSA
	}
	f.Pull(n)
	st := s.St
	st.RxPackets.Store(st.RxPackets.Load() + 1)
	st.RxBytes.Store(st.RxBytes.Load() + uint64(f.Len))
	if w.deferBridge {
		w.pendS = s
		return bridgePending
	}
	return w.bridgeFromSession(t, s, f, taps)
}

// vlanOf returns the VLAN a session frame belongs to and whether it is
// tagged (VID 0 priority tags count as untagged).
func vlanOf(e *hdr.Eth, native uint16) (uint16, bool) {
	if e.Tags > 0 && e.VLAN != 0 {
		return e.VLAN, true
	}
	return native, false
}

// bridgeFromSession admits, learns and forwards an inner frame from session s.
func (w *Worker) bridgeFromSession(t *table.Tables, s *table.Session, f *port.Frame, taps *tapSet) stats.Reason {
	b := f.Bytes()
	e, ok := hdr.ParseEth(b)
	if !ok {
		return stats.Malformed
	}
	vlan, tagged := vlanOf(&e, s.Tunnel.Native)
	if !s.Tunnel.VLANs.Has(vlan) {
		return stats.VLANNotAllowed
	}
	srcMAC := hdr.Src(b)
	if hdr.IsMulticastMAC(srcMAC) || hdr.IsZeroMAC(srcMAC) {
		return stats.BadSrcMAC
	}
	me := bridge.SessionOwner(s.Index, s.Gen)
	if r := w.learn(t, bridge.MakeKey(vlan, srcMAC), me, s.MaxMACs); r != stats.OK {
		return r
	}
	if e.Tags > 0 && !tagged {
		hdr.SetVLAN(b, vlan) // priority-tagged (VID 0): give it the native VLAN
		tagged = true
	}
	dst := hdr.Dst(b)
	if !hdr.IsMulticastMAC(dst) {
		if o, hit := w.fdb.Lookup(bridge.MakeKey(vlan, dst)); hit {
			if o.IsUpstream() {
				return w.sendUp(t, f, vlan, tagged, taps)
			}
			if o == me {
				return stats.NoMember
			}
			if !t.Local.Hairpin {
				return stats.Hairpin
			}
			idx, gen, _ := o.Session()
			d := t.Session(idx, gen)
			if d == nil {
				return w.flood(t, f, vlan, tagged, s, true, false, taps)
			}
			return w.encapFor(t, d, f, vlan, tagged, taps)
		}
	}
	return w.flood(t, f, vlan, tagged, s, true, false, taps)
}

// learn applies the learning policy (bridge.FDB.LearnPolicy) for a frame
// from owner me: lock-free refresh, MAC-move protection, the MAC limit.
func (w *Worker) learn(t *table.Tables, k bridge.Key, me bridge.Owner, limit uint32) stats.Reason {
	_, res := w.fdb.LearnPolicy(k, me, w.now, limit, t)
	switch res {
	case bridge.Added:
		w.tally.Learned++
	case bridge.Moved:
		w.tally.Moves++
	case bridge.Full:
		w.tally.FDBFull++
	case bridge.MoveDenied:
		return stats.MACMove
	case bridge.LimitReached:
		return stats.MACLimit
	}
	return stats.OK
}

// sendUp transmits an inner frame of VLAN vlan on the upstream port, tagged
// on a trunk or untagged on an access port.
func (w *Worker) sendUp(t *table.Tables, f *port.Frame, vlan uint16, tagged bool, taps *tapSet) stats.Reason {
	if av := t.Local.UpstreamVLAN; av > 0 {
		if vlan != av {
			return stats.VLANNotAllowed
		}
		if tagged {
			f.Off = hdr.RemoveVLAN(f.Buf, f.Off)
			f.Len -= hdr.VLANLen
		}
	} else if !tagged {
		if f.Off < hdr.VLANLen {
			return stats.Malformed
		}
		f.Off = hdr.InsertVLAN(f.Buf, f.Off, vlan)
		f.Len += hdr.VLANLen
	}
	w.toUp(f, taps)
	return stats.OK
}

// flood replicates a broadcast, multicast or unknown-unicast frame: to the
// upstream port (when it came from a session) and to every session of the
// VLAN other than src (sessions only when it came from upstream, or when
// hairpinning is on). Sessions owned by other workers are reached by
// handing each such worker one copy to flood to its own members (local:
// this is such a copy). f itself serves the last destination.
func (w *Worker) flood(t *table.Tables, f *port.Frame, vlan uint16, tagged bool, src *table.Session, fromSession, local bool, taps *tapSet) stats.Reason {
	var members []*table.Session
	var remote uint64
	if !fromSession || t.Local.Hairpin {
		members = t.Members[vlan&0xfff]
		if !local && w.nw > 1 {
			remote = t.MemberWorkers[vlan&0xfff] &^ (1 << uint(w.ID))
		}
	}
	outs := bits.OnesCount64(remote)
	for _, m := range members {
		if m != src && m.Peer.Owner == w.ID {
			outs++
		}
	}
	// The upstream copy, when it came from a session and the upstream
	// port carries the VLAN.
	av := t.Local.UpstreamVLAN
	up := fromSession && !local && (av == 0 || vlan == av)
	if up {
		outs++
	}
	if outs == 0 {
		if fromSession && !local {
			return stats.VLANNotAllowed // the access port does not carry it
		}
		return stats.NoMember
	}
	var srcIdx, srcGen uint32
	if src != nil {
		srcIdx, srcGen = src.Index, src.Gen
	}
	for j := 0; remote != 0; j++ {
		if remote&(1<<uint(j)) == 0 {
			continue
		}
		remote &^= 1 << uint(j)
		h := Handoff{Kind: hoFlood, Dir: w.cur.dir, VLAN: vlan, Tagged: tagged, Sess: srcIdx, Gen: srcGen}
		outs--
		if outs == 0 {
			h.F = *f
			w.handoff(j, &h, taps)
			return handedOff
		}
		if c, ok := w.copyOf(f); ok {
			h.F = c
			w.handoff(j, &h, taps)
		}
	}
	for _, m := range members {
		if m == src || m.Peer.Owner != w.ID {
			continue
		}
		outs--
		if outs == 0 {
			return w.toSession(t, m, f, vlan, tagged, taps)
		}
		if c, ok := w.copyOf(f); ok {
			if r := w.toSession(t, m, &c, vlan, tagged, taps); r != stats.OK {
				w.drop(&c, r, taps)
			}
		}
	}
	return w.sendUp(t, f, vlan, tagged, taps)
}

// copyOf copies f into a new chunk for one more flood destination.
func (w *Worker) copyOf(f *port.Frame) (port.Frame, bool) {
	c, ok := w.pool.Get()
	if !ok {
		w.tally.Drops[w.cur.dir][stats.NoBuffer]++
		return c, false
	}
	c.Off, c.Len, c.TS = f.Off, f.Len, f.TS
	copy(c.Bytes(), f.Bytes())
	w.tally.Flooded++
	return c, true
}

// encapFor sends f to session s, or hands it to the worker that owns s.
func (w *Worker) encapFor(t *table.Tables, s *table.Session, f *port.Frame, vlan uint16, tagged bool, taps *tapSet) stats.Reason {
	if s.Peer.Owner != w.ID {
		w.handoff(s.Peer.Owner, &Handoff{F: *f, Kind: hoEncap, Dir: w.cur.dir, VLAN: vlan, Tagged: tagged, Sess: s.Index, Gen: s.Gen}, taps)
		return handedOff
	}
	return w.toSession(t, s, f, vlan, tagged, taps)
}

// fromUp handles a frame from the corporate trunk.
func (w *Worker) fromUp(t *table.Tables, f *port.Frame, taps *tapSet) stats.Reason {
	b := f.Bytes()
	e, ok := hdr.ParseEth(b)
	if !ok {
		return stats.Malformed
	}
	dst, srcMAC := hdr.Dst(b), hdr.Src(b)
	if hdr.IsLinkLocalControl(dst) {
		return stats.PuntLink
	}
	var vlan uint16
	tagged := e.Tags > 0
	if av := t.Local.UpstreamVLAN; av > 0 {
		if tagged && e.VLAN != 0 {
			return stats.VLANNotAllowed
		}
		if tagged { // priority tag on an access port: drop the tag
			f.Off = hdr.RemoveVLAN(f.Buf, f.Off)
			f.Len -= hdr.VLANLen
			b = f.Bytes()
			dst, srcMAC = hdr.Dst(b), hdr.Src(b)
			tagged = false
		}
		vlan = av
	} else {
		if !tagged || e.VLAN == 0 {
			return stats.VLANNotAllowed
		}
		vlan = e.VLAN
	}
	if !t.VLANs.Has(vlan) {
		return stats.VLANNotAllowed
	}
	if hdr.IsMulticastMAC(srcMAC) || hdr.IsZeroMAC(srcMAC) {
		return stats.BadSrcMAC
	}
	w.learn(t, bridge.MakeKey(vlan, srcMAC), bridge.Upstream, 0)
	if !hdr.IsMulticastMAC(dst) {
		if o, hit := w.fdb.Lookup(bridge.MakeKey(vlan, dst)); hit {
			if o.IsUpstream() {
				return stats.NoMember // destination is behind the port it came from
			}
			idx, gen, _ := o.Session()
			if s := t.Session(idx, gen); s != nil {
				return w.encapFor(t, s, f, vlan, tagged, taps)
			}
		}
	}
	return w.flood(t, f, vlan, tagged, nil, false, false, taps)
}
