package ike

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/tunterm/tunterm/control/ike/ikecrypto"
	"github.com/tunterm/tunterm/control/ike/proposal"
	"github.com/tunterm/tunterm/control/ike/wire"
	"github.com/tunterm/tunterm/dataplane/esp"
	"github.com/tunterm/tunterm/dataplane/table"
)

type saState uint8

const (
	stHalfOpen    saState = iota // IKE_SA_INIT answered, IKE_AUTH pending
	stEstablished                // authenticated
	stRekeyed                    // replaced by a rekeyed IKE SA, waiting for its DELETE
	stDead                       // deleted; stays only in goroutines that still hold it
)

func (s saState) String() string {
	return [...]string{"CONNECTING", "ESTABLISHED", "REKEYED", "DELETED"}[s]
}

// ikeSA is one IKE SA. Every field is guarded by mu (see the package doc
// for the lock order).
type ikeSA struct {
	r  *Responder
	mu sync.Mutex

	spiI, spiR uint64
	weInit     bool // we are the original initiator (we rekeyed the IKE SA)
	state      saState

	sock           *socket
	remote         netip.AddrPort
	natPeer, natUs bool
	// dpKey names the AP's dataplane peer (programmer.IKEChild.Key): set
	// by the first CHILD_SA and kept across NAT rebinding and IKE rekeys,
	// so APs behind one NAT address stay apart and each keeps its peer.
	dpKey netip.AddrPort

	chosen      proposal.Chosen
	suite       ikecrypto.Suite
	keys        ikecrypto.IKEKeys
	skIn, skOut *ikecrypto.SK
	ni, nr      []byte
	initReq     []byte // the peer's IKE_SA_INIT (RealMessage1)
	initResp    []byte // ours (RealMessage2)
	fragOK      bool
	peerHashes  []wire.HashAlgorithm

	peerID      *wire.ID
	peerIDStr   string
	localIDStr  string
	authInfo    string
	certExpired bool
	peerCert    *x509.Certificate

	children []*child

	// Requests from the peer (window 1).
	peerNext  uint32
	resp      [][]byte // datagrams of the last response
	haveResp  bool
	reqHashes map[[32]byte]bool // datagrams of the last request
	reasmReq  *reassembly
	reasmResp *reassembly
	dropAfter bool // terminate once the response is out

	// Our requests (window 1).
	ourNext uint32
	pending *outReq
	queued  []func()

	created, establishedAt time.Time
	lastRecv, lastActive   time.Time
	lastESP                uint64
	rekeyAt, expireAt      time.Time
	rekeyingIKE            bool
	rekeyedAt              time.Time
	halfOpenIdx            *initKey
	// peerRekey: the peer rekeyed this IKE SA while our rekey was
	// outstanding (RFC 7296 §2.8.2); the nonces decide when our response
	// arrives (collision.go).
	peerRekey *ikeCollision

	after []func() // run by the caller after mu is released
}

// childState is a CHILD_SA's life.
type childState uint8

const (
	chActive  childState = iota // in use
	chRekeyed                   // replaced; still sent with until the peer deletes it
	chRetired                   // not sent with; inbound decrypts until removeAt
)

func (s childState) String() string { return [...]string{"INSTALLED", "REKEYED", "DELETING"}[s] }

// child is one CHILD_SA pair as the IKE SA knows it.
type child struct {
	inSPI, outSPI uint32
	chosen        proposal.Chosen
	mode          table.Mode
	udp           bool
	local, remote wire.TrafficSelector
	in, out       *esp.SA
	state         childState
	created       time.Time
	rekeyAt       time.Time
	expireAt      time.Time
	activateAt    time.Time // deferred outbound switch (rekeyed by the peer)
	removeAt      time.Time // end of the grace window
	rekeying      bool
	replacedBy    *child
	// collision: the peer rekeyed this SA while our rekey was outstanding
	// (RFC 7296 §2.8.1, collision.go). deleting: our DELETE of it is
	// unanswered (§2.25.1). redundantAt: the peer's redundant SA of a
	// collision we won, deleted by us if the peer has not by then.
	collision   *childCollision
	deleting    bool
	redundantAt time.Time
}

type outReq struct {
	id     uint32
	exch   wire.ExchangeType
	msgs   [][]byte
	first  time.Time
	next   time.Time
	wait   time.Duration
	what   string
	onResp func(inner []wire.Payload)
	onFail func()
}

// ourSPI is the SPI we chose, by which the table finds the SA.
func (sa *ikeSA) ourSPI() uint64 {
	if sa.weInit {
		return sa.spiI
	}
	return sa.spiR
}

func (sa *ikeSA) logger() *slog.Logger {
	l := sa.r.log.With("peer", sa.remote, "spi_i", spiHex(sa.spiI), "spi_r", spiHex(sa.spiR))
	if sa.peerIDStr != "" {
		l = l.With("id", sa.peerIDStr)
	}
	return l
}

// setKeys installs the SK payload transforms for both directions.
func (sa *ikeSA) setKeys(s ikecrypto.Suite, k ikecrypto.IKEKeys) error {
	i, err := ikecrypto.NewSK(s, k.SKei, k.SKai)
	if err != nil {
		return err
	}
	r, err := ikecrypto.NewSK(s, k.SKer, k.SKar)
	if err != nil {
		return err
	}
	sa.suite, sa.keys = s, k
	if sa.weInit {
		sa.skOut, sa.skIn = i, r
	} else {
		sa.skOut, sa.skIn = r, i
	}
	return nil
}

// recv handles one message for this SA (mu held).
func (sa *ikeSA) recv(p packet, h wire.Header) {
	st := &sa.r.stats
	if sa.state == stDead {
		st.inc(UnknownSPI)
		return
	}
	if h.IsResponse() {
		sa.recvResponse(p, h)
		return
	}
	if h.MessageID+1 == sa.peerNext && sa.haveResp {
		if !sa.reqHashes[hashOf(p.b)] {
			st.inc(Duplicates)
			return
		}
		// RFC 7383 §2.6.1: a fragmented request is answered again on its
		// first fragment only.
		if m, err := wire.Parse(p.b); err == nil {
			if f, ok := m.Payloads[len(m.Payloads)-1].(*wire.EncryptedFragment); ok && f.Number != 1 {
				return
			}
		}
		st.inc(Retransmits)
		for _, b := range sa.resp {
			sa.r.send(p.s, p.from, b)
		}
		return
	}
	if h.MessageID != sa.peerNext {
		st.inc(BadMessageID)
		sa.r.once.log(sa.r.log, slog.LevelInfo, "msgid "+p.from.String(), "IKE: request with an unexpected Message ID dropped",
			"peer", p.from, "exchange", h.Exchange, "message_id", h.MessageID, "expected", sa.peerNext)
		return
	}
	if h.Exchange == wire.IKE_SA_INIT {
		st.inc(Duplicates)
		return
	}
	m, err := wire.Parse(p.b)
	if err != nil {
		st.inc(Malformed)
		sa.r.once.log(sa.r.log, slog.LevelWarn, "malformed "+p.from.String(), "IKE: malformed message dropped",
			"peer", p.from, "exchange", h.Exchange, "err", err)
		return
	}
	inner, hashes, done, err := sa.open(m, p.b, false)
	if err != nil {
		return // counted by open
	}
	if !done {
		return
	}
	sa.sock, sa.remote, sa.lastRecv = p.s, p.from, time.Now()
	var resp []wire.Payload
	switch h.Exchange {
	case wire.IKE_AUTH:
		if sa.state != stHalfOpen {
			st.inc(BadMessageID)
			return
		}
		resp = sa.handleAuth(inner)
	case wire.CREATE_CHILD_SA:
		if sa.state == stHalfOpen {
			st.inc(BadMessageID)
			return
		}
		resp = sa.handleCreateChild(inner)
	case wire.INFORMATIONAL:
		if sa.state == stHalfOpen {
			st.inc(BadMessageID)
			return
		}
		resp = sa.handleInformational(inner)
	default:
		st.inc(Unsupported)
		return
	}
	rh := h.ResponseHeader()
	sa.resp = sa.seal(rh, resp)
	sa.haveResp = true
	sa.reqHashes = hashes
	sa.peerNext++
	for _, b := range sa.resp {
		sa.r.send(sa.sock, sa.remote, b)
	}
	if sa.dropAfter {
		sa.terminate("authentication failed or deleted by the peer", false)
	}
}

// decrypt checks and decrypts the SK or SKF payload of raw (m parsed),
// counting a failure.
func (sa *ikeSA) decrypt(m *wire.Message, raw []byte) ([]byte, error) {
	head, data, err := wire.SplitEncrypted(raw)
	if err != nil {
		sa.r.stats.inc(Malformed)
		return nil, err
	}
	plain, err := sa.skIn.Open(head, data)
	if err != nil {
		sa.countOpenError(err, m)
		return nil, err
	}
	return plain, nil
}

// open authenticates and decrypts the SK payload, or collects an SKF
// fragment (RFC 7383 §2.6) and decrypts the whole message once complete.
// It returns the inner payloads and the hashes of the datagrams that made
// the message; done is false while fragments are missing.
func (sa *ikeSA) open(m *wire.Message, raw []byte, response bool) (inner []wire.Payload, hashes map[[32]byte]bool, done bool, err error) {
	st := &sa.r.stats
	if len(m.Payloads) == 0 {
		st.inc(Malformed)
		return nil, nil, false, errors.New("no encrypted payload")
	}
	switch e := m.Payloads[len(m.Payloads)-1].(type) {
	case *wire.Encrypted:
		plain, err := sa.decrypt(m, raw)
		if err != nil {
			return nil, nil, false, err
		}
		inner, err := wire.ParsePayloads(e.Next, plain)
		if err != nil {
			st.inc(Malformed)
			sa.r.once.log(sa.r.log, slog.LevelWarn, "malformed-inner "+sa.remote.String(), "IKE: malformed encrypted payloads",
				"peer", sa.remote, "exchange", m.Exchange, "err", err)
			return nil, nil, false, err
		}
		return inner, map[[32]byte]bool{hashOf(raw): true}, true, nil
	case *wire.EncryptedFragment:
		st.inc(FragmentsRx)
		if e.Total == 0 || e.Total > maxFragments || e.Number == 0 || e.Number > e.Total {
			st.inc(Malformed)
			return nil, nil, false, errors.New("bad fragment numbers")
		}
		plain, err := sa.decrypt(m, raw)
		if err != nil {
			return nil, nil, false, err
		}
		rp := &sa.reasmReq
		if response {
			rp = &sa.reasmResp
		}
		ra := *rp
		if ra == nil || ra.id != m.MessageID || int(e.Total) != len(ra.parts) {
			ra = &reassembly{id: m.MessageID, parts: make([][]byte, e.Total), hashes: map[[32]byte]bool{}}
			*rp = ra
		}
		i := int(e.Number) - 1
		if ra.parts[i] != nil {
			st.inc(Duplicates)
			return nil, nil, false, nil
		}
		if ra.size+len(plain) > maxReassembled {
			*rp = nil
			st.inc(Malformed)
			return nil, nil, false, errors.New("reassembled message too long")
		}
		ra.parts[i] = plain
		ra.size += len(plain)
		ra.have++
		ra.hashes[hashOf(raw)] = true
		if e.Number == 1 {
			ra.first = e.Next
		}
		if ra.have < len(ra.parts) {
			return nil, nil, false, nil
		}
		*rp = nil
		all := make([]byte, 0, ra.size)
		for _, b := range ra.parts {
			all = append(all, b...)
		}
		inner, err := wire.ParsePayloads(ra.first, all)
		if err != nil {
			st.inc(Malformed)
			return nil, nil, false, err
		}
		return inner, ra.hashes, true, nil
	}
	st.inc(Malformed)
	return nil, nil, false, errors.New("no encrypted payload")
}

func (sa *ikeSA) countOpenError(err error, m *wire.Message) {
	if errors.Is(err, ikecrypto.ErrAuthentication) {
		sa.r.stats.inc(Integrity)
	} else {
		sa.r.stats.inc(Malformed)
	}
	sa.r.once.log(sa.r.log, slog.LevelWarn, "integrity "+sa.remote.String(), "IKE: encrypted payload failed authentication; dropped",
		"peer", sa.remote, "exchange", m.Exchange, "message_id", m.MessageID, "err", err)
}

type reassembly struct {
	id     uint32
	parts  [][]byte
	have   int
	size   int
	first  wire.PayloadType
	hashes map[[32]byte]bool
}

// seal encrypts a message, in RFC 7383 fragments when it is longer than
// fragment_size and the peer supports them.
func (sa *ikeSA) seal(h wire.Header, inner []wire.Payload) [][]byte {
	body, first := wire.AppendPayloads(nil, inner)
	one := sealWith(sa.skOut, h, &wire.Encrypted{Next: first}, body)
	c := sa.r.cfg.Load()
	over := 8 + 20 // UDP + IPv4
	if sa.remote.Addr().Is6() {
		over = 8 + 40
	}
	if sa.sock != nil && sa.sock.natt {
		over += 4
	}
	if !sa.fragOK || len(one)+over <= c.FragmentSize {
		return [][]byte{one}
	}
	room := c.FragmentSize - over - wire.HeaderLen - 8 - sa.skOut.IVLen() - sa.skOut.ICVLen() - 17
	if room < 64 {
		return [][]byte{one}
	}
	out, err := wire.SealFragments(sa.skOut, h, first, body, room)
	if err != nil {
		panic("ike: seal: " + err.Error()) // we just built it
	}
	sa.r.stats.add(FragmentsTx, uint64(len(out)))
	return out
}

// sealWith is wire.Seal for messages we built ourselves (it cannot fail).
func sealWith(sk *ikecrypto.SK, h wire.Header, p wire.Payload, body []byte) []byte {
	msg, err := wire.Seal(sk, h, p, body)
	if err != nil {
		panic("ike: sealWith: " + err.Error()) // we just built it
	}
	return msg
}

// reqHeader is the header of a request we send.
func (sa *ikeSA) reqHeader(x wire.ExchangeType) wire.Header {
	h := wire.Header{SPIi: sa.spiI, SPIr: sa.spiR, Exchange: x, MessageID: sa.ourNext}
	if sa.weInit {
		h.Flags = wire.FlagInitiator
	}
	return h
}

// request sends a request of ours, or queues it while another is
// outstanding (window 1). onResp runs with mu held when the response comes;
// onFail when the peer never answers (before the SA is deleted).
func (sa *ikeSA) request(x wire.ExchangeType, inner []wire.Payload, what string, onResp func([]wire.Payload), onFail func()) {
	if sa.state == stDead {
		return
	}
	if sa.pending != nil {
		sa.queued = append(sa.queued, func() { sa.request(x, inner, what, onResp, onFail) })
		return
	}
	now := time.Now()
	msgs := sa.seal(sa.reqHeader(x), inner)
	sa.pending = &outReq{id: sa.ourNext, exch: x, msgs: msgs, first: now, wait: firstRetrans,
		next: now.Add(firstRetrans), what: what, onResp: onResp, onFail: onFail}
	sa.ourNext++
	for _, b := range msgs {
		sa.r.send(sa.sock, sa.remote, b)
	}
}

func (sa *ikeSA) recvResponse(p packet, h wire.Header) {
	st := &sa.r.stats
	pr := sa.pending
	if pr == nil || h.MessageID != pr.id || h.Exchange != pr.exch {
		st.inc(Duplicates)
		return
	}
	m, err := wire.Parse(p.b)
	if err != nil {
		st.inc(Malformed)
		return
	}
	inner, _, done, err := sa.open(m, p.b, true)
	if err != nil || !done {
		return
	}
	sa.pending = nil
	sa.lastRecv = time.Now()
	if pr.onResp != nil {
		pr.onResp(inner)
	}
	sa.nextQueued()
}

func (sa *ikeSA) nextQueued() {
	for sa.pending == nil && len(sa.queued) > 0 && sa.state != stDead {
		f := sa.queued[0]
		sa.queued = sa.queued[1:]
		f()
	}
}

// terminate deletes the IKE SA and its CHILD_SAs from the dataplane; with
// notify it first sends the peer an INFORMATIONAL with a Delete (best
// effort, not retransmitted).
func (sa *ikeSA) terminate(reason string, notify bool) {
	if sa.state == stDead {
		return
	}
	if notify && sa.state != stHalfOpen {
		for _, b := range sa.seal(sa.reqHeader(wire.INFORMATIONAL), []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}}) {
			sa.r.send(sa.sock, sa.remote, b)
		}
		sa.ourNext++
	}
	var spis []uint32
	for _, ch := range sa.children {
		spis = append(spis, ch.inSPI)
	}
	if len(spis) > 0 {
		sa.r.dp.RemoveChild(spis...)
	}
	sa.children = nil
	was := sa.state
	sa.state = stDead
	sa.pending, sa.queued = nil, nil
	sa.r.unregister(sa)
	lvl := slog.LevelInfo
	if was == stHalfOpen {
		lvl = slog.LevelDebug
	}
	sa.logger().Log(context.Background(), lvl, "IKE SA deleted", "reason", reason, "child_sas", len(spis))
}

// tick runs the SA's timers (mu held).
func (sa *ikeSA) tick(now time.Time) {
	c := sa.r.cfg.Load()
	switch sa.state {
	case stHalfOpen:
		if now.Sub(sa.created) > time.Duration(c.HalfOpenTimeout) {
			sa.r.stats.inc(HalfOpenTimeouts)
			sa.terminate("half-open timeout", false)
		}
		return
	case stRekeyed:
		if now.Sub(sa.rekeyedAt) > 30*time.Second {
			sa.terminate("rekeyed, and the peer did not delete the old IKE SA", true)
			return
		}
		if pr := sa.pending; pr != nil && !now.Before(pr.next) { // our DELETE of it
			for _, b := range pr.msgs {
				sa.r.send(sa.sock, sa.remote, b)
			}
			pr.wait *= 2
			pr.next = now.Add(pr.wait)
		}
		return
	case stDead:
		return
	}
	if pr := sa.pending; pr != nil {
		if now.Sub(pr.first) > time.Duration(c.DPDTimeout) {
			if pr.onFail != nil {
				pr.onFail()
			}
			sa.r.stats.inc(DPDDead)
			sa.logger().Warn("IKE: peer did not answer; deleting its SAs", "request", pr.what,
				"waited", now.Sub(pr.first).Round(time.Second))
			sa.terminate("peer dead (no answer to "+pr.what+")", false)
			return
		}
		if !now.Before(pr.next) {
			for _, b := range pr.msgs {
				sa.r.send(sa.sock, sa.remote, b)
			}
			pr.wait *= 2
			pr.next = now.Add(pr.wait)
		}
	}
	// Inbound ESP counts as a sign of life.
	var pk uint64
	for _, ch := range sa.children {
		if ch.in != nil {
			pk += ch.in.St.Packets.Load()
		}
	}
	if pk != sa.lastESP {
		sa.lastESP, sa.lastActive = pk, now
	}
	if c.DPDInterval > 0 && sa.pending == nil && now.Sub(latest(sa.lastRecv, sa.lastActive)) >= c.DPDInterval {
		sa.r.stats.inc(DPDSent)
		sa.request(wire.INFORMATIONAL, nil, "liveness check (DPD)", nil, nil)
	}
	sa.childTimers(now)
	if sa.state != stEstablished {
		return
	}
	if !sa.rekeyAt.IsZero() && !now.Before(sa.rekeyAt) && !sa.rekeyingIKE && sa.pending == nil {
		sa.rekeyIKE()
	}
	if !sa.expireAt.IsZero() && !now.Before(sa.expireAt) {
		sa.terminate("IKE SA lifetime expired (rekey failed)", true)
	}
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
