package ike

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tunterm/tunterm/control/config"
	"github.com/tunterm/tunterm/control/ike/wire"
	"github.com/tunterm/tunterm/control/programmer"
	"github.com/tunterm/tunterm/dataplane/esp"
)

// Ports (RFC 7296 §2, RFC 3948 §2.2).
const (
	PortIKE  = 500
	PortNATT = 4500
)

// Tuning.
const (
	tickEvery      = 250 * time.Millisecond
	queueLen       = 4096
	maxDatagram    = 65535
	rekeyOutWait   = 10 * time.Second // a rekeyed CHILD_SA's outbound switch without the peer's DELETE
	firstRetrans   = time.Second
	maxFragments   = 64 // RFC 7383 leaves it open; strongSwan caps reassembly at 64 too
	maxReassembled = 65535
	nonceLen       = 32
)

// Dataplane is what the responder needs from control/programmer (which
// implements it); tests may substitute their own.
type Dataplane interface {
	AllocSPI() uint32
	ReleaseSPI(spi uint32)
	InstallChild(c programmer.IKEChild, activate bool) (in, out *esp.SA, err error)
	ActivateOut(inSPI uint32) error
	RetireChild(inSPI uint32)
	RemoveChild(inSPIs ...uint32)
}

// Options configure a Responder.
type Options struct {
	Config    *config.IKE
	Dataplane Dataplane
	Log       *slog.Logger
	// Port and NATTPort replace 500 and 4500 (0 = the standard ports, -1 =
	// an ephemeral port, for tests).
	Port, NATTPort int
	// Handlers is the number of handler goroutines (0 = GOMAXPROCS).
	Handlers int
}

// Responder is the IKEv2 responder. Safe for concurrent use; see the package
// doc for its goroutines.
type Responder struct {
	log   *slog.Logger
	dp    Dataplane
	cfg   atomic.Pointer[config.IKE]
	stats Stats
	once  onceLog
	opts  Options

	socks []*socket
	work  chan packet

	mu       sync.Mutex
	sas      map[uint64]*ikeSA // by our SPI
	initIdx  map[initKey]*ikeSA
	byID     map[string]map[*ikeSA]struct{}
	halfOpen int
	cookies  cookieSecrets

	done   chan struct{}
	wg     sync.WaitGroup
	closed atomic.Bool
	panics atomic.Uint64 // recovered panics (bugs); the fuzzers fail on any
}

type socket struct {
	conn  *net.UDPConn
	natt  bool
	local netip.AddrPort
}

type packet struct {
	b    []byte
	from netip.AddrPort
	s    *socket
}

type initKey struct {
	spii uint64
	from netip.AddrPort
}

// New builds a responder; Start opens its sockets.
func New(o Options) (*Responder, error) {
	if o.Config == nil || o.Dataplane == nil {
		return nil, errors.New("ike: Options.Config and Options.Dataplane are required")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Port == 0 {
		o.Port = PortIKE
	}
	if o.NATTPort == 0 {
		o.NATTPort = PortNATT
	}
	if o.Handlers <= 0 {
		o.Handlers = runtime.GOMAXPROCS(0)
	}
	r := &Responder{log: o.Log, dp: o.Dataplane, opts: o, work: make(chan packet, queueLen),
		sas: map[uint64]*ikeSA{}, initIdx: map[initKey]*ikeSA{}, byID: map[string]map[*ikeSA]struct{}{},
		done: make(chan struct{})}
	r.cfg.Store(o.Config)
	r.cookies.rotate()
	return r, nil
}

// Start listens on every configured address, UDP ports 500 and 4500, and
// starts the goroutines. On error nothing stays open.
func (r *Responder) Start() error {
	c := r.cfg.Load()
	for _, a := range c.ListenAddrs {
		for _, pt := range []struct {
			port int
			natt bool
		}{{r.opts.Port, false}, {r.opts.NATTPort, true}} {
			ap := netip.AddrPortFrom(a, uint16(max(pt.port, 0)))
			conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
			if err != nil {
				r.closeSockets()
				return fmt.Errorf("ike: listen %s: %w", ap, err)
			}
			conn.SetReadBuffer(4 << 20)
			ap = conn.LocalAddr().(*net.UDPAddr).AddrPort()
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			r.socks = append(r.socks, &socket{conn: conn, natt: pt.natt, local: ap})
		}
	}
	for _, s := range r.socks {
		r.wg.Add(1)
		go r.readSocket(s)
	}
	for range r.opts.Handlers {
		r.wg.Add(1)
		go r.runHandler()
	}
	r.wg.Add(1)
	go r.runTicker()
	r.log.Info("IKE responder listening", "addresses", c.ListenAddrs, "ports", []int{r.opts.Port, r.opts.NATTPort},
		"proposals", c.Proposals, "esp_proposals", c.ESPProposals, "psk_ids", len(c.PSKByID), "cas", len(c.CACerts),
		"dpd", c.DPDInterval, "cookie_threshold", c.CookieThreshold)
	return nil
}

// Addrs returns the bound socket addresses (tests with port 0).
func (r *Responder) Addrs() (ike, natt []netip.AddrPort) {
	for _, s := range r.socks {
		ap := s.conn.LocalAddr().(*net.UDPAddr).AddrPort()
		if s.natt {
			natt = append(natt, ap)
		} else {
			ike = append(ike, ap)
		}
	}
	return ike, natt
}

// Reload takes a new ike configuration: PSKs, CAs, proposals and timers
// apply to new exchanges; established SAs stay. Listen addresses take
// effect at restart.
func (r *Responder) Reload(c *config.IKE) {
	r.cfg.Store(c)
	r.log.Info("IKE configuration reloaded", "proposals", c.Proposals, "esp_proposals", c.ESPProposals,
		"psk_ids", len(c.PSKByID), "cas", len(c.CACerts))
}

// Stats returns the counters.
func (r *Responder) Stats() *Stats { return &r.stats }

// Close deletes every IKE SA (telling the peers), removes their SAs from
// the dataplane, closes the sockets and waits for the goroutines.
func (r *Responder) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	for _, sa := range r.allSAs() {
		sa.mu.Lock()
		sa.terminate("shutdown", true)
		sa.mu.Unlock()
	}
	close(r.done)
	r.closeSockets()
	r.wg.Wait()
	return nil
}

func (r *Responder) closeSockets() {
	for _, s := range r.socks {
		s.conn.Close()
	}
}

func (r *Responder) allSAs() []*ikeSA {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*ikeSA, 0, len(r.sas))
	for _, sa := range r.sas {
		out = append(out, sa)
	}
	return out
}

// readSocket is a socket's reader goroutine.
func (r *Responder) readSocket(s *socket) {
	defer r.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if r.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		b := buf[:n]
		if s.natt {
			if n == 1 && b[0] == 0xff { // RFC 3948 §2.3 NAT-keepalive
				r.stats.inc(Keepalives)
				continue
			}
			if n < 4 || b[0]|b[1]|b[2]|b[3] != 0 { // ESP in UDP (RFC 3948 §2.2)
				r.stats.inc(ESPOnIKESocket)
				continue
			}
			b = b[4:]
		}
		p := packet{b: append([]byte(nil), b...), from: netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), s: s}
		select {
		case r.work <- p:
		default:
			r.stats.inc(Overload)
		}
	}
}

func (r *Responder) runHandler() {
	defer r.wg.Done()
	for {
		select {
		case <-r.done:
			return
		case p := <-r.work:
			r.handle(p)
		}
	}
}

// handle processes one received IKE message.
func (r *Responder) handle(p packet) {
	defer func() {
		// A bug in message handling must not take the responder down with
		// every AP's tunnel: log it, count it as malformed and go on.
		if e := recover(); e != nil {
			r.stats.inc(Malformed)
			r.panics.Add(1)
			r.log.Error("IKE: panic while handling a message (bug)", "peer", p.from, "panic", e,
				"stack", string(stack()))
		}
	}()
	r.stats.inc(RxMessages)
	h, err := wire.ParseHeader(p.b)
	if err != nil {
		r.stats.inc(Malformed)
		if errors.Is(err, wire.ErrInvalidMajorVersion) && h.Exchange == wire.IKE_SA_INIT && !h.IsResponse() {
			// RFC 7296 §2.5: an unprotected INVALID_MAJOR_VERSION.
			resp := &wire.Message{Header: h.ResponseHeader(), Payloads: []wire.Payload{wire.NewNotify(wire.INVALID_MAJOR_VERSION, nil)}}
			resp.Header.SPIr = 0
			r.send(p.s, p.from, resp.Marshal())
		}
		r.once.log(r.log, slog.LevelWarn, "malformed-hdr "+p.from.Addr().String(), "IKE: malformed message header",
			"peer", p.from, "err", err)
		return
	}
	if h.Exchange == wire.IKE_SA_INIT && !h.IsResponse() && h.SPIr == 0 {
		r.handleInit(p, h)
		return
	}
	our := h.SPIr
	if !h.IsInitiator() {
		our = h.SPIi
	}
	r.mu.Lock()
	sa := r.sas[our]
	r.mu.Unlock()
	if sa == nil {
		r.stats.inc(UnknownSPI)
		r.once.log(r.log, slog.LevelInfo, "unknown-spi "+p.from.Addr().String(), "IKE: message for an unknown IKE SA (peer restarted, or SA deleted)",
			"peer", p.from, "exchange", h.Exchange, "spi_i", spiHex(h.SPIi), "spi_r", spiHex(h.SPIr))
		return
	}
	sa.mu.Lock()
	sa.recv(p, h)
	after := sa.after
	sa.after = nil
	sa.mu.Unlock()
	for _, f := range after {
		f()
	}
}

// send writes one IKE message (without marker) to the peer.
func (r *Responder) send(s *socket, to netip.AddrPort, msg []byte) {
	b := msg
	if s.natt {
		b = make([]byte, 4+len(msg))
		copy(b[4:], msg)
	}
	if _, err := s.conn.WriteToUDPAddrPort(b, to); err != nil {
		r.stats.inc(SendErrors)
		if !r.closed.Load() {
			r.once.log(r.log, slog.LevelWarn, "send "+to.String(), "IKE: send failed", "peer", to, "err", err)
		}
		return
	}
	r.stats.inc(TxMessages)
}

// register adds sa under its SPI (and the half-open index).
func (r *Responder) register(sa *ikeSA, ik *initKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sas[sa.ourSPI()] = sa
	if ik != nil {
		r.initIdx[*ik] = sa
		r.halfOpen++
	}
}

// unregister removes sa from every index.
func (r *Responder) unregister(sa *ikeSA) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sas[sa.ourSPI()] == sa {
		delete(r.sas, sa.ourSPI())
	}
	if sa.halfOpenIdx != nil {
		if r.initIdx[*sa.halfOpenIdx] == sa {
			delete(r.initIdx, *sa.halfOpenIdx)
		}
		sa.halfOpenIdx = nil
		r.halfOpen--
	}
	if sa.peerIDStr != "" {
		if m := r.byID[sa.peerIDStr]; m != nil {
			delete(m, sa)
			if len(m) == 0 {
				delete(r.byID, sa.peerIDStr)
			}
		}
	}
}

// established moves sa out of the half-open index and indexes its identity;
// it returns the other IKE SAs of the same identity (for INITIAL_CONTACT).
func (r *Responder) established(sa *ikeSA) []*ikeSA {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sa.halfOpenIdx != nil {
		if r.initIdx[*sa.halfOpenIdx] == sa {
			delete(r.initIdx, *sa.halfOpenIdx)
		}
		sa.halfOpenIdx = nil
		r.halfOpen--
	}
	m := r.byID[sa.peerIDStr]
	if m == nil {
		m = map[*ikeSA]struct{}{}
		r.byID[sa.peerIDStr] = m
	}
	var others []*ikeSA
	for o := range m {
		others = append(others, o)
	}
	m[sa] = struct{}{}
	return others
}

// HalfOpen returns the number of half-open IKE SAs.
func (r *Responder) HalfOpen() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.halfOpen
}

// runTicker drives every SA's timers.
func (r *Responder) runTicker() {
	defer r.wg.Done()
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case now := <-t.C:
			r.cookies.maybeRotate(now)
			for _, sa := range r.allSAs() {
				sa.mu.Lock()
				sa.tick(now)
				after := sa.after
				sa.after = nil
				sa.mu.Unlock()
				for _, f := range after {
					f()
				}
			}
		}
	}
}

func spiHex(v uint64) string { return fmt.Sprintf("%016x", v) }

func stack() []byte {
	b := make([]byte, 8192)
	return b[:runtime.Stack(b, false)]
}

func hashOf(b []byte) [32]byte { return sha256.Sum256(b) }

// replace puts n, the rekeyed successor of old, into the SPI and identity
// indexes; old stays findable by its SPI until it is deleted.
func (r *Responder) replace(old, n *ikeSA) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sas[n.ourSPI()] = n
	if m := r.byID[old.peerIDStr]; m != nil {
		delete(m, old)
		m[n] = struct{}{}
	}
}
