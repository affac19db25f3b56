package radsec

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tunterm/tunterm/control/config"
)

// udpSocketBuffer is the receive and send buffer we ask for on each UDP
// socket: a burst of answers (one per AP after a reconnection storm) must
// not overflow the default ~200 KiB, which holds only a few hundred
// datagrams.
const udpSocketBuffer = 4 << 20

// setSocketBuffers sets SO_RCVBUF and SO_SNDBUF to n, beyond
// net.core.rmem_max/wmem_max when we have CAP_NET_ADMIN (the *FORCE
// options), else as far as those limits allow.
func setSocketBuffers(c *net.UDPConn, n int) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) != nil {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, n)
		}
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, n) != nil {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, n)
		}
	})
}

// maxSocketsPerServer bounds the UDP sockets, hence the requests in flight
// (256 Identifiers each, RFC 2865 §3), towards one server.
const maxSocketsPerServer = 32

// request is one AP request on its way through the servers of a group.
// Owned by whoever holds it: the reader that built it, then the server
// that has it in flight, then (after a timeout) the next server.
type request struct {
	c     *apConn
	r     *apRequest
	g     *group
	start time.Time
	tried uint64 // bit i: servers[i] timed out
}

// pending is one packet in flight to a server: a request or a probe
// (req == nil). Its fields are fixed once it is published in its socket's
// table, except tries, which the server's mutex guards.
type pending struct {
	sock  *usock
	id    byte
	req   *request
	wire  []byte
	auth  [authLen]byte
	ps    [8]byte
	first time.Time
	tries int
	timer *time.Timer
}

// reserved marks an Identifier allocated to a packet still being encoded.
var reserved = &pending{}

// usock is one connected UDP socket to a server with its 256 Identifiers.
// The table is guarded by the server's mutex; the socket's receive loop is
// the only reader of conn.
type usock struct {
	s       *server
	conn    *net.UDPConn
	pending [256]*pending
	used    int
	next    uint8
}

// group is the ordered list of servers for one kind of traffic (auth or
// acct). The first server that is up takes every request; the others wait
// (primary/secondary). Safe for concurrent use.
type group struct {
	p       *Proxy
	role    string
	servers []*server
	sig     string // the configuration it was built from, to keep it across reloads

	mu        sync.Mutex
	active    int // index of the server taking traffic; -1: all down
	failovers atomic.Uint64
}

// server is one RADIUS server: its sockets, the packets in flight, its
// health. mu guards the socket tables and the health fields; counters are
// atomics in st.
type server struct {
	// Fixed at creation.
	g                  *group
	idx                int // position in the group: 0 is the primary
	name               string
	addr               netip.AddrPort
	source             netip.Addr
	secret             []byte
	requireMA, probe   bool
	timeout            time.Duration
	retries            int
	interval, deadTime time.Duration
	downAfter, upAfter int
	st                 *serverStats // atomics; carried across reloads
	kick               chan struct{}
	done               chan struct{}
	wg                 sync.WaitGroup

	mu     sync.Mutex // guards what follows
	socks  []*usock
	closed bool
	// Health.
	up                 bool
	since              time.Time
	okStreak, failStrk int
	probing            bool
	lastProbe          time.Time
	lastProbeOK        bool
	lastProbeRTT       time.Duration
	lastAnswer         time.Time
	lastErr            string
	reviveTimer        *time.Timer
}

// newGroup builds the servers of role ("auth" or "acct") and opens one
// socket to each, so that a bad radsec.source fails at start.
func newGroup(p *Proxy, role string, rc *config.RadSec, list []config.RADIUSServer) (*group, error) {
	g := &group{p: p, role: role, sig: groupSig(rc, list)}
	for i, sc := range list {
		s := &server{
			g: g, idx: i, name: sc.Name, addr: sc.Addr, source: rc.SourceAddr, secret: []byte(sc.Secret),
			requireMA: sc.RequireMA(), probe: sc.Probe(),
			timeout: time.Duration(rc.Timeout), retries: rc.RetryCount(),
			interval: time.Duration(rc.StatusInterval), deadTime: time.Duration(rc.DeadTime),
			downAfter: rc.DownAfter, upAfter: rc.UpAfter,
			st:   p.serverStats(role, sc.Name, sc.Addr),
			kick: make(chan struct{}, 1), done: make(chan struct{}),
			up: true, since: time.Now(),
		}
		g.servers = append(g.servers, s)
		s.mu.Lock()
		_, err := s.openLocked()
		s.mu.Unlock()
		if err != nil {
			g.close()
			key := "address"
			if rc.SourceAddr.IsValid() {
				key = "source"
			}
			return nil, fmt.Errorf("radsec.%s[%d] (%s): %s: %w", role+"_servers", i, sc.Name, key, err)
		}
	}
	return g, nil
}

// groupSig is what must not change for a group to survive a reload.
func groupSig(rc *config.RadSec, list []config.RADIUSServer) string {
	sig := fmt.Sprintf("%v|%v|%d|%v|%v|%d|%d", rc.SourceAddr, rc.Timeout, rc.RetryCount(),
		rc.StatusInterval, rc.DeadTime, rc.DownAfter, rc.UpAfter)
	for _, s := range list {
		sig += fmt.Sprintf("|%q,%v,%q,%v,%v", s.Name, s.Addr, s.Secret, s.RequireMA(), s.Probe())
	}
	return sig
}

func (g *group) start() {
	for _, s := range g.servers {
		if s.probe {
			s.wg.Add(1)
			go s.probeLoop()
		}
	}
}

// close stops every server; requests in flight are dropped (their APs'
// slots released).
func (g *group) close() {
	for _, s := range g.servers {
		s.close()
	}
}

// pick returns the server for a request that already timed out on the
// servers in tried: the first server that is up and not tried; when nothing
// was tried and every server is down, the primary anyway (it may be back
// before the probes notice); else nil.
func (g *group) pick(tried uint64) *server {
	for i, s := range g.servers {
		if tried&(1<<i) == 0 && s.isUp() {
			return s
		}
	}
	if tried == 0 {
		return g.servers[0]
	}
	return nil
}

// send hands req to the server pick chooses; false when there is none
// or it has no free Identifier.
func (g *group) send(req *request) bool {
	for {
		s := g.pick(req.tried)
		if s == nil {
			return false
		}
		switch s.send(req) {
		case sendOK:
			return true
		case sendBusy:
			g.p.fail(req, dropAPBusy)
			return true
		}
		// sendClosed: this group was replaced by a reload; try the next.
		req.tried |= 1 << s.idx
	}
}

// healthChanged recomputes the active server after s changed state, and
// logs and counts a failover or failback.
func (g *group) healthChanged(s *server, up bool, why string) {
	log := g.p.log
	if up {
		log.Warn("radsec: RADIUS server up", "group", g.role, "server", s.name, "address", s.addr, "why", why)
	} else {
		log.Warn("radsec: RADIUS server down", "group", g.role, "server", s.name, "address", s.addr, "why", why)
	}
	g.mu.Lock()
	old := g.active
	g.active = -1
	for i, x := range g.servers {
		if x.isUp() {
			g.active = i
			break
		}
	}
	now := g.active
	g.mu.Unlock()
	switch {
	case now == old:
	case now < 0:
		log.Error("radsec: every RADIUS server of the group is down; requests go to the first one anyway",
			"group", g.role, "first", g.servers[0].name)
	case old < 0:
		log.Warn("radsec: RADIUS traffic resumes", "group", g.role, "to", g.servers[now].name)
	default:
		g.failovers.Add(1)
		what := "failover"
		if now < old {
			what = "failback"
		}
		log.Warn("radsec: "+what, "group", g.role, "from", g.servers[old].name, "to", g.servers[now].name)
	}
}

func (s *server) isUp() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}

// openLocked opens another connected socket (s.mu held).
func (s *server) openLocked() (*usock, error) {
	var laddr *net.UDPAddr
	if s.source.IsValid() {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(s.source, 0))
	}
	conn, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(s.addr))
	if err != nil {
		return nil, err
	}
	setSocketBuffers(conn, udpSocketBuffer)
	u := &usock{s: s, conn: conn, next: uint8(len(s.socks) * 37)}
	s.socks = append(s.socks, u)
	s.wg.Add(1)
	go u.receiveLoop()
	return u, nil
}

// allocLocked finds a free Identifier, opening a socket when all are
// taken (s.mu held).
func (s *server) allocLocked() (*usock, byte, bool) {
	for _, u := range s.socks {
		if u.used == len(u.pending) {
			continue
		}
		// Rotate so a freed Identifier is not reused at once (RFC 5080
		// §2.2.1: a late answer must not match a new request).
		for range len(u.pending) {
			id := u.next
			u.next++
			if u.pending[id] == nil {
				u.pending[id] = reserved
				u.used++
				return u, id, true
			}
		}
	}
	if len(s.socks) >= maxSocketsPerServer {
		return nil, 0, false
	}
	u, err := s.openLocked()
	if err != nil {
		s.lastErr = err.Error()
		return nil, 0, false
	}
	id := u.next
	u.next++
	u.pending[id] = reserved
	u.used++
	return u, id, true
}

// freeLocked releases pd's Identifier if pd still holds it (s.mu held).
func (s *server) freeLocked(u *usock, id byte, pd *pending) bool {
	if u.pending[id] != pd {
		return false
	}
	u.pending[id] = nil
	u.used--
	return true
}

type sendResult int

const (
	sendOK sendResult = iota
	sendBusy
	sendClosed
)

// send encodes req for this server and sends it.
func (s *server) send(req *request) sendResult {
	p := s.g.p
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return sendClosed
	}
	u, id, ok := s.allocLocked()
	s.mu.Unlock()
	if !ok {
		return sendBusy
	}
	pd := &pending{sock: u, id: id, req: req, first: time.Now()}
	pd.ps = p.nextProxyState()
	wire, auth, err := encodeRequest(req.r, req.c.secret, id, s.secret, pd.ps[:])
	if err != nil {
		s.mu.Lock()
		s.freeLocked(u, id, reserved)
		s.mu.Unlock()
		p.fail(req, dropAPTooBig)
		return sendOK
	}
	pd.wire, pd.auth = wire, auth
	s.st.requests[reqType(req.r.code)].Add(1)
	s.publish(pd)
	return sendOK
}

// publish puts pd in its Identifier's slot, arms its timer and sends it.
func (s *server) publish(pd *pending) {
	u := pd.sock
	s.mu.Lock()
	if s.closed {
		s.freeLocked(u, pd.id, reserved)
		s.mu.Unlock()
		s.abandon(pd)
		return
	}
	u.pending[pd.id] = pd
	pd.timer = time.AfterFunc(s.timeout, func() { s.expire(pd) })
	s.mu.Unlock()
	s.write(pd)
}

func (s *server) write(pd *pending) {
	if _, err := pd.sock.conn.Write(pd.wire); err != nil {
		s.sendError(err)
	}
}

func (s *server) sendError(err error) {
	if errors.Is(err, net.ErrClosed) {
		return
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		s.st.unreachable.Add(1)
		s.g.p.rl.warn(kindUnreachable, "radsec: RADIUS server unreachable (ICMP)", "group", s.g.role, "server", s.name, "address", s.addr)
		s.kickProbe()
		return
	}
	s.st.sendErrors.Add(1)
	s.mu.Lock()
	s.lastErr = err.Error()
	s.mu.Unlock()
	s.g.p.rl.warn(kindSendError, "radsec: cannot send to RADIUS server", "group", s.g.role, "server", s.name, "address", s.addr, "err", err)
}

// expire runs when pd's timer fires: retransmit the same packet (RFC 5080
// §2.2.1: same Identifier and Authenticator), or give up on this server.
func (s *server) expire(pd *pending) {
	s.mu.Lock()
	if pd.sock.pending[pd.id] != pd {
		s.mu.Unlock()
		return
	}
	if pd.req != nil && pd.tries < s.retries {
		pd.tries++
		pd.timer.Reset(s.timeout)
		s.mu.Unlock()
		s.st.retransmissions.Add(1)
		s.write(pd)
		return
	}
	s.freeLocked(pd.sock, pd.id, pd)
	s.mu.Unlock()
	if pd.req == nil {
		s.probeDone(false, 0)
		return
	}
	s.st.timeouts.Add(1)
	s.requestTimedOut()
	req := pd.req
	req.tried |= 1 << s.idx
	if next := req.g.pick(req.tried); next != nil {
		s.st.failedOver.Add(1)
		if req.g.send(req) {
			return
		}
	}
	s.g.p.fail(req, dropAPTimeout)
}

// abandon drops a request that will not be answered (shutdown).
func (s *server) abandon(pd *pending) {
	if pd.req != nil {
		s.g.p.fail(pd.req, dropAPTimeout)
	}
}

// receiveLoop reads the server's answers on one socket until it closes.
func (u *usock) receiveLoop() {
	s := u.s
	defer s.wg.Done()
	buf := make([]byte, MaxPacketLen)
	for {
		n, err := u.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				s.sendError(err)
				continue
			}
			s.g.p.rl.warn(kindReadError, "radsec: reading from RADIUS server", "server", s.name, "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.receive(u, buf[:n])
	}
}

// receive handles one datagram from the server.
func (s *server) receive(u *usock, b []byte) {
	p := s.g.p
	if len(b) < HeaderLen {
		p.dropSrv(s, dropSrvMalformed)
		return
	}
	id := b[1]
	s.mu.Lock()
	pd := u.pending[id]
	s.mu.Unlock()
	if pd == nil || pd == reserved {
		p.dropSrv(s, dropSrvUnknownID)
		return
	}
	var ps []byte
	if pd.req != nil {
		ps = pd.ps[:]
	}
	resp, why := checkServerResponse(b, pd.wire, s.secret, s.requireMA, ps)
	if why != dropNone {
		p.dropSrv(s, why) // a valid answer may still come: pd stays
		return
	}
	s.mu.Lock()
	mine := s.freeLocked(u, id, pd)
	if mine {
		pd.timer.Stop()
	}
	s.mu.Unlock()
	if !mine {
		p.dropSrv(s, dropSrvUnknownID) // an answer to a retransmission crossed the first one
		return
	}
	rtt := time.Since(pd.first)
	if pd.req == nil {
		s.probeDone(true, rtt)
		return
	}
	s.st.responses[respType(resp.code)].Add(1)
	s.st.latency.observe(rtt)
	s.answered()
	p.respond(pd.req, resp, s, &pd.auth)
}

// probeLoop sends a Status-Server every interval, and at once when kicked.
func (s *server) probeLoop() {
	defer s.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		case <-s.kick:
		}
		s.sendProbe()
		t.Reset(s.interval)
	}
}

func (s *server) kickProbe() {
	if !s.probe {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// sendProbe sends a Status-Server (RFC 5997) unless one is outstanding.
// Probes are not retransmitted: an unanswered probe is a failed probe.
func (s *server) sendProbe() {
	s.mu.Lock()
	if s.probing || s.closed {
		s.mu.Unlock()
		return
	}
	u, id, ok := s.allocLocked()
	if !ok {
		s.mu.Unlock()
		return
	}
	s.probing = true
	s.mu.Unlock()
	wire, auth, err := encodeStatusServer(id, s.secret)
	if err != nil { // cannot happen: the packet is 38 bytes
		panic(err)
	}
	s.st.requests[reqStatus].Add(1)
	s.publish(&pending{sock: u, id: id, wire: wire, auth: auth, first: time.Now()})
}

// probeDone records a probe's fate and moves the server up or down.
func (s *server) probeDone(ok bool, rtt time.Duration) {
	now := time.Now()
	s.mu.Lock()
	s.probing = false
	s.lastProbe, s.lastProbeOK, s.lastProbeRTT = now, ok, rtt
	var changed, up bool
	var why string
	again := false
	if ok {
		s.st.probesOK.Add(1)
		s.lastAnswer = now
		s.failStrk = 0
		s.okStreak++
		if !s.up && s.okStreak >= s.upAfter {
			s.up, s.since, changed, up = true, now, true, true
			why = fmt.Sprintf("answered %d Status-Server probes", s.okStreak)
		}
	} else {
		s.st.probesFailed.Add(1)
		s.okStreak = 0
		s.failStrk++
		if s.up && s.failStrk >= s.downAfter {
			s.up, s.since, changed = false, now, true
			why = fmt.Sprintf("%d Status-Server probes unanswered (timeout %v)", s.failStrk, s.timeout)
		} else if s.up {
			again = true // suspect: probe again now rather than in interval
		}
	}
	s.mu.Unlock()
	if changed {
		s.g.healthChanged(s, up, why)
	}
	if again {
		s.kickProbe()
	}
}

// requestTimedOut feeds a request timeout into the server's health: a
// probed server gets probed at once; an unprobed one counts it, goes down
// after down_after in a row, and comes back after dead_time.
func (s *server) requestTimedOut() {
	if s.probe {
		s.kickProbe()
		return
	}
	s.mu.Lock()
	s.failStrk++
	changed := s.up && s.failStrk >= s.downAfter && !s.closed
	if changed {
		s.up, s.since = false, time.Now()
		s.reviveTimer = time.AfterFunc(s.deadTime, s.revive)
	}
	n := s.failStrk
	s.mu.Unlock()
	if changed {
		s.g.healthChanged(s, false, fmt.Sprintf("%d requests in a row unanswered (status_server: false)", n))
	}
}

// revive brings an unprobed server back after dead_time.
func (s *server) revive() {
	s.mu.Lock()
	changed := !s.up && !s.closed
	if changed {
		s.up, s.since, s.failStrk = true, time.Now(), 0
	}
	s.mu.Unlock()
	if changed {
		s.g.healthChanged(s, true, fmt.Sprintf("dead_time %v passed (status_server: false)", s.deadTime))
	}
}

// answered notes a valid answer to a request.
func (s *server) answered() {
	s.mu.Lock()
	s.lastAnswer = time.Now()
	if !s.probe {
		s.failStrk = 0
	}
	s.mu.Unlock()
}

// close stops the server: probes, sockets, and the packets in flight.
func (s *server) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	if s.reviveTimer != nil {
		s.reviveTimer.Stop()
	}
	var dropped []*pending
	for _, u := range s.socks {
		for id, pd := range u.pending {
			if pd != nil && pd != reserved {
				pd.timer.Stop()
				dropped = append(dropped, pd)
			}
			u.pending[id] = nil // a reserved one is abandoned by publish
		}
		u.used = 0
		u.conn.Close()
	}
	s.mu.Unlock()
	for _, pd := range dropped {
		s.abandon(pd)
	}
	s.wg.Wait()
}

// inflight counts the packets waiting for this server.
func (s *server) inflight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, u := range s.socks {
		n += u.used
	}
	return n
}
