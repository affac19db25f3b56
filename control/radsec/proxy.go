package radsec

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tunterm/tunterm/control/config"
)

// Proxy is the RadSec proxy. Create it with New, run it with Start, stop
// it with Close. Safe for concurrent use.
type Proxy struct {
	log     *slog.Logger
	rl      *rateLog
	st      proxyStats
	cur     atomic.Pointer[snapshot]
	psSeed  uint32
	psSeq   atomic.Uint32
	started time.Time

	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]*apConn // nil while the TLS handshake runs
	closed   bool
	srvStats map[string]*serverStats
	retired  []*group
	wg       sync.WaitGroup
}

// snapshot is one configuration's view: immutable once published with
// cur.Store; a reload publishes a new one.
type snapshot struct {
	rc         *config.RadSec
	tls        *tlsSetup
	secret     []byte
	requireMA  bool
	auth, acct *group // acct is nil without acct_servers
	loaded     time.Time
}

// Options tune a Proxy beyond its configuration (tests).
type Options struct {
	// LogEvery is the least time between two log lines of one kind
	// (default 10s).
	LogEvery time.Duration
}

// New loads the certificates and opens the UDP sockets of rc (validated by
// package config). Nothing listens before Start.
func New(rc *config.RadSec, log *slog.Logger, o Options) (*Proxy, error) {
	if log == nil {
		log = slog.Default()
	}
	if o.LogEvery == 0 {
		o.LogEvery = logEvery
	}
	p := &Proxy{log: log, rl: newRateLog(log, o.LogEvery), conns: map[net.Conn]*apConn{},
		srvStats: map[string]*serverStats{}}
	var seed [4]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, err
	}
	p.psSeed = binary.BigEndian.Uint32(seed[:])
	s, err := p.build(rc, nil)
	if err != nil {
		return nil, err
	}
	p.cur.Store(s)
	return p, nil
}

// build makes the snapshot of rc, keeping the groups of old whose
// configuration is unchanged.
func (p *Proxy) build(rc *config.RadSec, old *snapshot) (*snapshot, error) {
	ts, err := loadTLS(rc)
	if err != nil {
		return nil, err
	}
	s := &snapshot{rc: rc, tls: ts, secret: []byte(rc.Secret), requireMA: rc.RequireAPMessageAuthenticator(), loaded: time.Now()}
	if old != nil && old.auth.sig == groupSig(rc, rc.AuthServers) {
		s.auth = old.auth
	} else if s.auth, err = newGroup(p, "auth", rc, rc.AuthServers); err != nil {
		return nil, err
	}
	if len(rc.AcctServers) > 0 {
		if old != nil && old.acct != nil && old.acct.sig == groupSig(rc, rc.AcctServers) {
			s.acct = old.acct
		} else if s.acct, err = newGroup(p, "acct", rc, rc.AcctServers); err != nil {
			if old == nil || s.auth != old.auth {
				s.auth.close()
			}
			return nil, err
		}
	}
	return s, nil
}

// Start listens on radsec.listen and starts the Status-Server probes.
func (p *Proxy) Start() error {
	s := p.cur.Load()
	ln, err := net.Listen("tcp", s.rc.ListenAddr.String())
	if err != nil {
		return fmt.Errorf("radsec.listen: %w", err)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	p.ln = ln
	p.started = time.Now()
	p.mu.Unlock()
	s.auth.start()
	if s.acct != nil {
		s.acct.start()
	}
	p.wg.Add(1)
	go p.acceptLoop(ln)
	p.log.Info("radsec: listening", "address", ln.Addr().String(), "auth_servers", len(s.rc.AuthServers),
		"acct_servers", len(s.rc.AcctServers), "source", s.rc.Source, "certificate", s.tls.cert.Subject,
		"not_after", s.tls.cert.NotAfter.Format(time.RFC3339))
	return nil
}

// Addr is the listening address (after Start).
func (p *Proxy) Addr() net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return nil
	}
	return p.ln.Addr()
}

// Reload applies a new configuration: certificates and CAs for new
// connections, servers and timers (a group whose servers and timers are
// unchanged keeps its sockets, health and requests in flight; a replaced
// one finishes what it has in flight and closes). radsec.listen,
// max_inflight and the secret of established connections change at
// reconnection or restart. On error the running configuration stays.
func (p *Proxy) Reload(rc *config.RadSec) error {
	old := p.cur.Load()
	s, err := p.build(rc, old)
	if err != nil {
		return err
	}
	if rc.ListenAddr != old.rc.ListenAddr {
		p.log.Warn("radsec: reload: radsec.listen takes effect at restart", "listening", old.rc.ListenAddr, "configured", rc.ListenAddr)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return net.ErrClosed
	}
	p.cur.Store(s)
	started := p.ln != nil
	var retire []*group
	if s.auth != old.auth {
		retire = append(retire, old.auth)
	}
	if old.acct != nil && s.acct != old.acct {
		retire = append(retire, old.acct)
	}
	p.retired = append(p.retired, retire...)
	p.mu.Unlock()
	if started {
		if s.auth != old.auth {
			s.auth.start()
		}
		if s.acct != nil && s.acct != old.acct {
			s.acct.start()
		}
	}
	// Let the old groups finish what they have in flight, then close.
	drain := time.Duration(old.rc.Timeout)*time.Duration(old.rc.RetryCount()+1)*time.Duration(len(old.rc.AuthServers)+len(old.rc.AcctServers)) + time.Second
	for _, g := range retire {
		time.AfterFunc(drain, g.close)
	}
	p.log.Info("radsec: configuration reloaded", "auth_servers", len(rc.AuthServers), "acct_servers", len(rc.AcctServers),
		"auth_kept", s.auth == old.auth, "certificate", s.tls.cert.Subject)
	return nil
}

// Close stops listening, closes every AP connection and every server
// socket, and waits for their goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	if p.ln != nil {
		p.ln.Close()
	}
	for raw := range p.conns {
		raw.Close()
	}
	retired := p.retired
	p.mu.Unlock()
	p.wg.Wait()
	s := p.cur.Load()
	s.auth.close()
	if s.acct != nil {
		s.acct.close()
	}
	for _, g := range retired {
		g.close()
	}
	return nil
}

func (p *Proxy) serverStats(role, name string, addr netip.AddrPort) *serverStats {
	k := role + "|" + name + "|" + addr.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.srvStats[k]
	if st == nil {
		st = &serverStats{}
		p.srvStats[k] = st
	}
	return st
}

// nextProxyState returns the value of our next Proxy-State attribute:
// unique per process and request, opaque to the servers.
func (p *Proxy) nextProxyState() [8]byte {
	var b [8]byte
	binary.BigEndian.PutUint32(b[:4], p.psSeed)
	binary.BigEndian.PutUint32(b[4:], p.psSeq.Add(1))
	return b
}

// acceptLoop accepts TCP connections until the listener closes.
func (p *Proxy) acceptLoop(ln net.Listener) {
	defer p.wg.Done()
	var backoff time.Duration
	for {
		raw, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and friends: wait rather than spin.
			p.rl.warn(kindAcceptError, "radsec: accept failed", "err", err)
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s := p.cur.Load()
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			raw.Close()
			return
		}
		if len(p.conns) >= s.rc.MaxConnections {
			p.mu.Unlock()
			p.rejectConn(raw, rejectLimit, fmt.Errorf("radsec.max_connections (%d) reached", s.rc.MaxConnections))
			raw.Close()
			continue
		}
		p.conns[raw] = nil
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serveConn(raw, s)
	}
}

func (p *Proxy) rejectConn(raw net.Conn, why reject, err error) {
	p.st.rejects[why].Add(1)
	p.rl.warn(kindReject+int(why), "radsec: connection refused", "peer", raw.RemoteAddr().String(), "reason", why.String(),
		"err", err, "hint", rejectHints[why])
}

var rejectHints = [numRejects]string{
	rejectUnknownCA: "the AP's certificate is not signed by a CA in radsec.ca",
	rejectExpired:   "the AP's certificate has expired (or is not yet valid: check the clocks); accept_expired: true lets it in",
	rejectBadCert:   "the AP's certificate is unusable for TLS client authentication (key usage, format)",
	rejectNoCert:    "the client sent no certificate: RadSec needs mutual authentication",
	rejectPlaintext: "not TLS: the client speaks plain RADIUS/TCP or HTTP to the RadSec port",
	rejectTimeout:   "no complete TLS handshake within radsec.handshake_timeout",
	rejectPeerAlert: "the AP aborted the handshake: it probably does not trust our certificate (radsec.cert) or its name",
	rejectClosed:    "the client closed the connection during the handshake (port scan, health check, or it gave up)",
	rejectProtocol:  "TLS versions or cipher suites do not match (we accept TLS 1.2 and 1.3), or a broken record",
	rejectLimit:     "radsec.max_connections reached",
}

// serveConn runs one connection: the handshake, then the AP's packets.
func (p *Proxy) serveConn(raw net.Conn, s *snapshot) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, raw)
		p.mu.Unlock()
		raw.Close()
	}()
	hto := time.Duration(s.rc.HandshakeTimeout)
	raw.SetDeadline(time.Now().Add(hto))
	tc := tls.Server(raw, s.tls.conf)
	ctx, cancel := context.WithTimeout(context.Background(), hto)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		p.rejectConn(raw, classify(err), err)
		return
	}
	raw.SetDeadline(time.Time{})
	c := newAPConn(p, s, raw, tc)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.conns[raw] = c
	p.mu.Unlock()
	if c.expired {
		p.st.expiredAccepted.Add(1)
		p.rl.warn(kindExpiredAccepted, "radsec: accepted an expired AP certificate (accept_expired: true)",
			"peer", c.peer, "subject", c.subject, "not_after", c.notAfter.Format(time.RFC3339))
	}
	p.st.connections.Add(1)
	p.st.connectionsAll.Add(1)
	p.log.Debug("radsec: AP connected", "peer", c.peer, "subject", c.subject, "tls", c.version)
	why := c.run()
	p.st.connections.Add(-1)
	p.log.Debug("radsec: AP disconnected", "peer", c.peer, "subject", c.subject, "why", why)
}

// dropAP counts and (rate-limited) logs a packet from an AP we drop.
func (p *Proxy) dropAP(c *apConn, why drop) {
	p.st.drops[why].Add(1)
	p.rl.warn(kindDrop+int(why), "radsec: dropped a request from an AP", "reason", why.String(), "peer", c.peer,
		"subject", c.subject, "hint", dropHints[why])
}

// dropSrv counts and (rate-limited) logs a packet from a server we drop.
func (p *Proxy) dropSrv(s *server, why drop) {
	p.st.drops[why].Add(1)
	p.rl.warn(kindDrop+int(why), "radsec: dropped a packet from a RADIUS server", "reason", why.String(),
		"group", s.g.role, "server", s.name, "address", s.addr.String(), "hint", dropHints[why])
}

var dropHints = [numDrops]string{
	dropAPMalformed:         "broken RADIUS framing or attributes from the AP; the connection is closed when the framing is lost",
	dropAPOversized:         "RADIUS Length above 4096 (RFC 2865 §3); the connection is closed",
	dropAPUnsupportedCode:   "only Access-Request, Accounting-Request and Status-Server are proxied",
	dropAPMissingMA:         "Access-Request without Message-Authenticator (BlastRADIUS hardening; radsec.require_message_authenticator)",
	dropAPBadMA:             "Message-Authenticator does not verify: the AP's RadSec secret is not radsec.secret",
	dropAPBadAuthenticator:  "Accounting-Request Authenticator does not verify: the AP's RadSec secret is not radsec.secret",
	dropAPDuplicate:         "the AP resent a request that is still waiting for its server",
	dropAPNoServer:          "no server to send it to (acct_servers empty for Accounting-Request)",
	dropAPTooBig:            "the request would exceed 4096 bytes with our Proxy-State and Message-Authenticator",
	dropAPBusy:              "every RADIUS Identifier towards the server is in use: the server is slow or down",
	dropAPTimeout:           "no server answered after retransmissions and failover",
	dropSrvMalformed:        "broken RADIUS packet from the server",
	dropSrvUnknownID:        "no request waits for this Identifier: a late answer (raise radsec.timeout) or a duplicate",
	dropSrvBadCode:          "the server's answer does not match the request type",
	dropSrvBadAuthenticator: "Response Authenticator does not verify: the server's secret differs from ours",
	dropSrvMissingMA:        "Access-Accept/Reject/Challenge without Message-Authenticator (BlastRADIUS): fix the server, or require_message_authenticator: false for it",
	dropSrvBadMA:            "Message-Authenticator does not verify: wrong secret, or tampering",
	dropSrvProxyState:       "the server did not echo our Proxy-State last (RFC 2865 §5.33)",
	dropSrvTooBig:           "the answer would exceed 4096 bytes",
	dropSrvAPGone:           "the AP's connection closed, or it reused the Identifier, before the answer came",
}

// handle processes one packet read from an AP; the caller holds one of
// c's in-flight slots, which the packet's fate releases.
func (p *Proxy) handle(c *apConn, b []byte) {
	s := p.cur.Load()
	r, why := checkAPRequest(b, c.secret, s.requireMA)
	if why != dropNone {
		p.dropAP(c, why)
		c.release()
		return
	}
	p.st.apRequests[reqType(r.code)].Add(1)
	c.requests.Add(1)
	g := s.auth
	switch r.code {
	case codeStatusServer:
		p.st.apResponses[respAccept].Add(1)
		c.deliver(encodeStatusAnswer(r, c.secret))
		return
	case codeAccountingRequest:
		g = s.acct
	}
	if g == nil {
		p.dropAP(c, dropAPNoServer)
		c.release()
		return
	}
	if old := c.slots[r.id].Load(); old != nil && old.r.auth == r.auth {
		p.dropAP(c, dropAPDuplicate)
		c.release()
		return
	}
	req := &request{c: c, r: r, g: g, start: time.Now()}
	c.slots[r.id].Store(req) // supersedes an older request with this Identifier
	if !g.send(req) {
		p.fail(req, dropAPNoServer)
	}
}

// fail ends a request without an answer.
func (p *Proxy) fail(req *request, why drop) {
	req.c.slots[req.r.id].CompareAndSwap(req, nil)
	p.dropAP(req.c, why)
	req.c.release()
}

// respond sends the AP the answer of server s to req.
func (p *Proxy) respond(req *request, resp *serverResponse, s *server, ourAuth *[authLen]byte) {
	c := req.c
	b, err := encodeResponse(resp, req.r, c.secret, s.secret, ourAuth)
	if err != nil {
		c.slots[req.r.id].CompareAndSwap(req, nil)
		p.dropSrv(s, dropSrvTooBig)
		c.release()
		return
	}
	if !c.slots[req.r.id].CompareAndSwap(req, nil) || c.isClosed() {
		p.dropSrv(s, dropSrvAPGone)
		c.release()
		return
	}
	p.st.apResponses[respType(resp.code)].Add(1)
	c.responses.Add(1)
	c.deliver(b)
}
