package ike

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/tunterm/tunterm/control/ike/ikecrypto"
	"github.com/tunterm/tunterm/control/ike/proposal"
	"github.com/tunterm/tunterm/control/ike/wire"
)

// cookieSecrets makes and checks stateless cookies (RFC 7296 §2.6):
//
//	Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)
//
// with Hash = HMAC-SHA-256 keyed by the secret, truncated to 16 octets. The
// secret changes every cookieLife; cookies of the previous secret stay
// valid, so an initiator that got one just before a change is not refused.
type cookieSecrets struct {
	mu        sync.Mutex
	cur, prev [32]byte
	ver       byte
	at        time.Time
}

const cookieLife = 2 * time.Minute

func (c *cookieSecrets) rotate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prev = c.cur
	rand.Read(c.cur[:])
	c.ver++
	c.at = time.Now()
}

func (c *cookieSecrets) maybeRotate(now time.Time) {
	c.mu.Lock()
	old := now.Sub(c.at) > cookieLife
	c.mu.Unlock()
	if old {
		c.rotate()
	}
}

func cookieHash(secret *[32]byte, ni []byte, ip netip.Addr, spii uint64) []byte {
	m := hmac.New(sha256.New, secret[:])
	m.Write(ni)
	m.Write(ip.AsSlice())
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], spii)
	m.Write(b[:])
	return m.Sum(nil)[:16]
}

func (c *cookieSecrets) make(ni []byte, ip netip.Addr, spii uint64) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte{c.ver}, cookieHash(&c.cur, ni, ip, spii)...)
}

func (c *cookieSecrets) check(cookie, ni []byte, ip netip.Addr, spii uint64) bool {
	if len(cookie) != 17 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var secret *[32]byte
	switch cookie[0] {
	case c.ver:
		secret = &c.cur
	case c.ver - 1:
		secret = &c.prev
	default:
		return false
	}
	return hmac.Equal(cookie[1:], cookieHash(secret, ni, ip, spii))
}

// answerInit sends an unprotected IKE_SA_INIT response carrying one notify
// (COOKIE, NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD, INVALID_SYNTAX), without
// creating any state; SPIr is zero (RFC 7296 §2.6).
func (r *Responder) answerInit(p packet, h wire.Header, n *wire.Notify) {
	rh := h.ResponseHeader()
	rh.SPIr = 0
	m := &wire.Message{Header: rh, Payloads: []wire.Payload{n}}
	r.send(p.s, p.from, m.Marshal())
}

// handleInit answers an IKE_SA_INIT request (RFC 7296 §1.2).
func (r *Responder) handleInit(p packet, h wire.Header) {
	ik := initKey{h.SPIi, p.from}
	r.mu.Lock()
	sa := r.initIdx[ik]
	half := r.halfOpen
	r.mu.Unlock()
	if sa != nil { // a retransmission: the cached response, or nothing
		sa.mu.Lock()
		if sa.state == stHalfOpen && sa.reqHashes[hashOf(p.b)] {
			r.stats.inc(Retransmits)
			for _, b := range sa.resp {
				r.send(p.s, p.from, b)
			}
		} else {
			r.stats.inc(Duplicates)
		}
		sa.mu.Unlock()
		return
	}
	log := r.log.With("peer", p.from)
	m, err := wire.Parse(p.b)
	if err != nil {
		r.stats.inc(Malformed)
		r.once.log(r.log, slog.LevelWarn, "malformed-init "+p.from.Addr().String(), "IKE: malformed IKE_SA_INIT", "peer", p.from, "err", err)
		if n := wire.NotifyForError(err); n != nil {
			r.answerInit(p, h, n)
		}
		return
	}
	if h.MessageID != 0 {
		r.stats.inc(Malformed)
		return
	}
	c := r.cfg.Load()
	nonce, ok1 := wire.First[*wire.Nonce](m.Payloads)
	saP, ok2 := wire.First[*wire.SA](m.Payloads)
	ke, ok3 := wire.First[*wire.KE](m.Payloads)
	if !ok1 || !ok2 || !ok3 {
		r.stats.inc(Malformed)
		r.once.log(r.log, slog.LevelWarn, "init-missing "+p.from.Addr().String(), "IKE: IKE_SA_INIT without SA, KE or Nonce", "peer", p.from, "message", m.String())
		r.answerInit(p, h, wire.NewNotify(wire.INVALID_SYNTAX, nil))
		return
	}

	// §2.6: under load, make the initiator prove it receives at its address.
	if c.CookieThreshold < 0 || half >= c.CookieThreshold {
		cookie, has := m.Cookie()
		if !has || !r.cookies.check(cookie, nonce.Data, p.from.Addr(), h.SPIi) {
			if has {
				r.stats.inc(CookiesBad)
			}
			r.stats.inc(CookiesSent)
			r.once.log(r.log, slog.LevelInfo, "cookies", "IKE: half-open SAs at the cookie threshold; answering IKE_SA_INIT with COOKIE",
				"half_open", half, "threshold", c.CookieThreshold)
			r.answerInit(p, h, wire.NewNotify(wire.COOKIE, r.cookies.make(nonce.Data, p.from.Addr(), h.SPIi)))
			return
		}
	}

	chosen, ok := proposal.Select(c.IKEProps, saP.Proposals, proposal.WithDH)
	if !ok {
		r.stats.inc(NoProposal)
		var offered []string
		for i := range saP.Proposals {
			offered = append(offered, saP.Proposals[i].String())
		}
		r.once.log(r.log, slog.LevelWarn, "noprop "+p.from.Addr().String(), "IKE: no acceptable IKE proposal (NO_PROPOSAL_CHOSEN)",
			"peer", p.from, "offered", offered, "configured", c.Proposals)
		r.answerInit(p, h, wire.NewNotify(wire.NO_PROPOSAL_CHOSEN, nil))
		return
	}
	if ke.Group != chosen.DH {
		r.stats.inc(InvalidKE)
		log.Debug("IKE: INVALID_KE_PAYLOAD", "got", ke.Group, "want", chosen.DH)
		r.answerInit(p, h, wire.NewInvalidKE(chosen.DH))
		return
	}
	suite := chosen.Suite(0)
	dh, err := ikecrypto.GenerateKey(ikecrypto.DHGroup(chosen.DH), nil)
	if err != nil {
		r.stats.inc(NoProposal)
		r.answerInit(p, h, wire.NewNotify(wire.NO_PROPOSAL_CHOSEN, nil))
		return
	}
	gir, err := dh.Shared(ke.Data)
	if err != nil {
		r.stats.inc(Malformed)
		r.once.log(r.log, slog.LevelWarn, "badke "+p.from.Addr().String(), "IKE: invalid KE payload", "peer", p.from, "err", err)
		r.answerInit(p, h, wire.NewNotify(wire.INVALID_SYNTAX, nil))
		return
	}
	nr := randBytes(nonceLen)
	spir := r.newSPI()
	skeyseed, err := ikecrypto.SKEYSEED(suite.PRF, nonce.Data, nr, gir)
	if err != nil {
		r.stats.inc(NoProposal)
		return
	}
	keys, err := ikecrypto.DeriveIKEKeys(suite, skeyseed, nonce.Data, nr, h.SPIi, spir)
	if err != nil {
		r.stats.inc(NoProposal)
		return
	}
	sa = &ikeSA{r: r, spiI: h.SPIi, spiR: spir, state: stHalfOpen, sock: p.s, remote: p.from,
		ni: nonce.Data, nr: nr, initReq: p.b, chosen: chosen, created: time.Now(), peerNext: 1,
		reqHashes: map[[32]byte]bool{hashOf(p.b): true}}
	if err := sa.setKeys(suite, keys); err != nil {
		r.stats.inc(NoProposal)
		return
	}
	sa.lastRecv = sa.created

	// NAT detection (§2.23): hashes of what each side sees.
	srcs, dst := wire.NATD(m.Payloads)
	natd := len(srcs) > 0 && dst != nil
	if natd {
		want := wire.NATDHash(h.SPIi, 0, p.from)
		sa.natPeer = true
		for _, s := range srcs {
			if hmac.Equal(s, want[:]) {
				sa.natPeer = false
			}
		}
		us := wire.NATDHash(h.SPIi, 0, p.s.local)
		sa.natUs = !hmac.Equal(dst, us[:])
	}
	sa.fragOK = m.Notify(wire.IKEV2_FRAGMENTATION_SUPPORTED) != nil
	if n := m.Notify(wire.SIGNATURE_HASH_ALGORITHMS); n != nil {
		sa.peerHashes, _ = n.HashAlgorithms()
	}

	rh := h.ResponseHeader()
	rh.SPIr = spir
	resp := []wire.Payload{
		&wire.SA{Proposals: []wire.Proposal{chosen.Wire(nil)}},
		&wire.KE{Group: chosen.DH, Data: dh.Public()},
		&wire.Nonce{Data: nr},
	}
	if natd {
		s, d := wire.NewNATD(h.SPIi, spir, p.s.local, p.from)
		resp = append(resp, s, d)
	}
	if len(c.CACerts) > 0 {
		resp = append(resp, certReq(c.CACerts))
	}
	if sa.fragOK {
		resp = append(resp, wire.NewNotify(wire.IKEV2_FRAGMENTATION_SUPPORTED, nil))
	}
	if sa.peerHashes != nil && (c.Signer != nil || len(c.CACerts) > 0) {
		resp = append(resp, wire.NewSignatureHashAlgorithms(wire.HashSHA2_256, wire.HashSHA2_384, wire.HashSHA2_512))
	}
	out := (&wire.Message{Header: rh, Payloads: resp}).Marshal()
	sa.initResp = out
	sa.resp = [][]byte{out}
	sa.haveResp = true
	sa.halfOpenIdx = &ik
	r.register(sa, &ik)
	r.send(p.s, p.from, out)
	log.Debug("IKE: IKE_SA_INIT answered", "proposal", chosen.String(), "nat_peer", sa.natPeer, "nat_us", sa.natUs,
		"spi_i", spiHex(h.SPIi), "spi_r", spiHex(spir))
}

// certReq is a CERTREQ naming our CAs by the SHA-1 hash of their public
// key (RFC 7296 §3.7).
func certReq(cas []*x509.Certificate) *wire.CERTREQ {
	var a []byte
	for _, c := range cas {
		h := sha1.Sum(c.RawSubjectPublicKeyInfo)
		a = append(a, h[:]...)
	}
	return &wire.CERTREQ{Encoding: wire.CertX509Signature, Authority: a}
}

// newSPI draws a random non-zero IKE SPI unused by any SA.
func (r *Responder) newSPI() uint64 {
	for {
		var b [8]byte
		rand.Read(b[:])
		v := binary.BigEndian.Uint64(b[:])
		if v == 0 {
			continue
		}
		r.mu.Lock()
		_, used := r.sas[v]
		r.mu.Unlock()
		if !used {
			return v
		}
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
