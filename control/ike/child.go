package ike

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/tunterm/tunterm/control/ike/ikecrypto"
	"github.com/tunterm/tunterm/control/ike/proposal"
	"github.com/tunterm/tunterm/control/ike/wire"
	"github.com/tunterm/tunterm/control/programmer"
	"github.com/tunterm/tunterm/dataplane/esp"
	"github.com/tunterm/tunterm/dataplane/table"
)

// L2TPv3 transports the traffic selectors may name (RFC 3931 §4.1).
const (
	protoL2TP = 115
	protoUDP  = 17
	portL2TP  = 1701
)

// childResult is a negotiated CHILD_SA and what the response says about it.
type childResult struct {
	ch        *child
	chosen    proposal.Chosen
	ke        *wire.KE // our KE with PFS
	transport bool
}

// payloads are the response payloads for the CHILD_SA: [N(USE_TRANSPORT_MODE)]
// SA [Nr] [KEr] TSi TSr. In a response TSi is the peer's side.
func (r *childResult) payloads(nr []byte) []wire.Payload {
	var ps []wire.Payload
	if r.transport {
		ps = append(ps, wire.NewNotify(wire.USE_TRANSPORT_MODE, nil))
	}
	spi := binary.BigEndian.AppendUint32(nil, r.ch.inSPI)
	ps = append(ps, &wire.SA{Proposals: []wire.Proposal{r.chosen.Wire(spi)}})
	if nr != nil {
		ps = append(ps, &wire.Nonce{Data: nr})
	}
	if r.ke != nil {
		ps = append(ps, r.ke)
	}
	ps = append(ps, &wire.TS{Selectors: []wire.TrafficSelector{r.ch.remote}},
		&wire.TS{Responder: true, Selectors: []wire.TrafficSelector{r.ch.local}})
	return ps
}

// negotiateChild creates a CHILD_SA the peer asked for in IKE_AUTH or
// CREATE_CHILD_SA: proposal, traffic selectors, mode, optional PFS (ke),
// keys (ni, nr: the exchange's nonces, the peer's first) and installation
// of the inbound SA. A rekeyed CHILD_SA (old != nil) does not take over the
// outbound direction yet. On failure it returns the notify to send.
func (sa *ikeSA) negotiateChild(inner []wire.Payload, ni, nr []byte, m proposal.Mode, ke *wire.KE, old *child) (*childResult, *wire.Notify) {
	c := sa.r.cfg.Load()
	st := &sa.r.stats
	log := sa.logger()
	saP, ok1 := wire.First[*wire.SA](inner)
	var tsi, tsr *wire.TS
	for _, p := range inner {
		if t, ok := p.(*wire.TS); ok {
			if t.Responder {
				tsr = t
			} else {
				tsi = t
			}
		}
	}
	if !ok1 || tsi == nil || tsr == nil {
		st.inc(Malformed)
		return nil, wire.NewNotify(wire.INVALID_SYNTAX, nil)
	}
	if _, cp := wire.First[*wire.Config](inner); cp {
		st.inc(Unsupported)
		sa.r.once.log(log, slog.LevelInfo, "cp "+sa.peerIDStr, "IKE: configuration payload (virtual IP request) ignored")
	}
	chosen, ok := proposal.Select(c.ESPProps, saP.Proposals, m)
	if !ok || len(chosen.SPI) != 4 {
		st.inc(NoProposal)
		var offered []string
		for i := range saP.Proposals {
			offered = append(offered, saP.Proposals[i].String())
		}
		sa.r.once.log(log, slog.LevelWarn, "nochildprop "+sa.peerIDStr, "IKE: no acceptable ESP proposal (NO_PROPOSAL_CHOSEN)",
			"offered", offered, "configured", c.ESPProposals)
		return nil, wire.NewNotify(wire.NO_PROPOSAL_CHOSEN, nil)
	}
	local, remote, ok := sa.narrowTS(tsr.Selectors, tsi.Selectors)
	if !ok {
		st.inc(TSUnacceptable)
		sa.r.once.log(log, slog.LevelWarn, "ts "+sa.peerIDStr, "IKE: TS_UNACCEPTABLE: traffic selectors must name our address and the AP's, protocol L2TP (115) or UDP 1701",
			"tsi", tsString(tsi.Selectors), "tsr", tsString(tsr.Selectors))
		return nil, wire.NewNotify(wire.TS_UNACCEPTABLE, nil)
	}
	var gir []byte
	var ourKE *wire.KE
	if chosen.DH != wire.DH_NONE {
		if ke == nil || ke.Group != chosen.DH {
			st.inc(InvalidKE)
			return nil, wire.NewInvalidKE(chosen.DH)
		}
		dh, err := ikecrypto.GenerateKey(ikecrypto.DHGroup(chosen.DH), nil)
		if err != nil {
			return nil, wire.NewNotify(wire.NO_PROPOSAL_CHOSEN, nil)
		}
		if gir, err = dh.Shared(ke.Data); err != nil {
			st.inc(Malformed)
			return nil, wire.NewNotify(wire.INVALID_SYNTAX, nil)
		}
		ourKE = &wire.KE{Group: chosen.DH, Data: dh.Public()}
	}
	transport := wire.FindNotify(inner, wire.USE_TRANSPORT_MODE) != nil
	keys, err := ikecrypto.DeriveChildKeys(chosen.Suite(wire.PRFID(sa.suite.PRF)), sa.keys.SKd, gir, ni, nr)
	if err != nil {
		st.inc(NoProposal)
		return nil, wire.NewNotify(wire.NO_PROPOSAL_CHOSEN, nil)
	}
	ch := &child{outSPI: binary.BigEndian.Uint32(chosen.SPI), chosen: chosen, local: local, remote: remote}
	ch.mode = table.ModeTunnel
	if transport {
		ch.mode = table.ModeTransport
	}
	if n := sa.install(ch, keys.InitToResp, keys.RespToInit, old == nil); n != nil {
		return nil, n
	}
	if old != nil {
		old.state, old.replacedBy = chRekeyed, ch
		ch.activateAt = time.Now().Add(rekeyOutWait)
		if !old.rekeying { // else counted once the collision is resolved
			st.inc(ChildRekeys)
		}
	}
	return &childResult{ch: ch, chosen: chosen, ke: ourKE, transport: transport}, nil
}

// install programs a negotiated CHILD_SA: in protects traffic to us, out
// traffic to the peer.
func (sa *ikeSA) install(ch *child, in, out ikecrypto.DirKeys, activate bool) *wire.Notify {
	c := sa.r.cfg.Load()
	cph, integ, ok := espAlgs(ch.chosen)
	if !ok {
		sa.r.stats.inc(NoProposal)
		return wire.NewNotify(wire.NO_PROPOSAL_CHOSEN, nil)
	}
	if ch.inSPI == 0 {
		ch.inSPI = sa.r.dp.AllocSPI()
	}
	esn := ch.chosen.ESN == wire.ESN
	lt := c.Lifetime
	mk := func(spi uint32, k ikecrypto.DirKeys) esp.Config {
		return esp.Config{SPI: spi, Cipher: cph, EncKey: k.EncKey, Integ: integ, IntegKey: k.IntegKey, ESN: esn,
			ReplayWindow: 128, SoftBytes: lt.ChildBytes, HardBytes: lt.ChildBytes * 11 / 10,
			SoftPackets: lt.ChildPackets, HardPackets: lt.ChildPackets * 11 / 10}
	}
	ch.udp = sa.natPeer || sa.natUs
	dc := programmer.IKEChild{Peer: sa.remote.Addr(), UDPEncap: ch.udp, Mode: ch.mode,
		In: mk(ch.inSPI, in), Out: mk(ch.outSPI, out)}
	if ch.udp {
		dc.NATPort = sa.remote.Port()
	}
	if !sa.dpKey.IsValid() {
		sa.dpKey = dc.KeyOf()
	}
	dc.Key = sa.dpKey
	if ch.mode == table.ModeTunnel {
		dc.InnerLocal, dc.InnerRemote = ch.local.Start, ch.remote.Start
	}
	var err error
	if ch.in, ch.out, err = sa.r.dp.InstallChild(dc, activate); err != nil {
		sa.r.dp.ReleaseSPI(ch.inSPI)
		sa.r.stats.inc(InstallErrors)
		sa.logger().Error("IKE: the dataplane refused a CHILD_SA", "err", err)
		return wire.NewNotify(wire.TEMPORARY_FAILURE, nil)
	}
	now := time.Now()
	ch.created = now
	ch.rekeyAt = now.Add(jitter(time.Duration(c.Lifetime.Child)))
	ch.expireAt = now.Add(time.Duration(c.Lifetime.Child) * 11 / 10)
	sa.children = append(sa.children, ch)
	sa.r.stats.inc(ChildSAs)
	sa.logger().Info("CHILD_SA installed", "spi_in", spi32(ch.inSPI), "spi_out", spi32(ch.outSPI),
		"proposal", ch.chosen.String(), "mode", ch.mode, "udp_encap", ch.udp,
		"ts", ch.local.String()+" === "+ch.remote.String(), "outbound_active", activate)
	return nil
}

// espAlgs maps a chosen ESP proposal to the dataplane's algorithms.
func espAlgs(c proposal.Chosen) (esp.Cipher, esp.Integ, bool) {
	var cph esp.Cipher
	switch {
	case c.Encr.ID == wire.ENCR_AES_GCM_16 && c.Encr.Bits == 128:
		cph = esp.AESGCM128
	case c.Encr.ID == wire.ENCR_AES_GCM_16 && c.Encr.Bits == 256:
		cph = esp.AESGCM256
	case c.Encr.ID == wire.ENCR_AES_CTR && c.Encr.Bits == 128:
		cph = esp.AESCTR128
	case c.Encr.ID == wire.ENCR_AES_CTR && c.Encr.Bits == 256:
		cph = esp.AESCTR256
	case c.Encr.ID == wire.ENCR_AES_CBC && c.Encr.Bits == 128:
		cph = esp.AESCBC128
	case c.Encr.ID == wire.ENCR_AES_CBC && c.Encr.Bits == 256:
		cph = esp.AESCBC256
	case c.Encr.ID == wire.ENCR_CHACHA20_POLY1305:
		cph = esp.ChaCha20Poly1305
	default:
		return 0, 0, false
	}
	integ := esp.IntegNone
	switch c.Integ {
	case wire.AUTH_NONE:
	case wire.AUTH_HMAC_SHA1_96:
		integ = esp.HMACSHA1_96
	case wire.AUTH_HMAC_SHA2_256_128:
		integ = esp.HMACSHA256_128
	case wire.AUTH_HMAC_SHA2_384_192:
		integ = esp.HMACSHA384_192
	case wire.AUTH_HMAC_SHA2_512_256:
		integ = esp.HMACSHA512_256
	default:
		return 0, 0, false
	}
	return cph, integ, true
}

// narrowTS picks our side from localTS and the AP's from remoteTS (RFC
// 7296 §2.9): our side must contain our address, the AP's must contain
// its address or be a single host (tunnel mode inner address, or the AP's
// address behind a NAT); protocols L2TP (115), UDP with port 1701, or any.
// Each side is narrowed to one host, UDP to port 1701.
func (sa *ikeSA) narrowTS(localTS, remoteTS []wire.TrafficSelector) (local, remote wire.TrafficSelector, ok bool) {
	us, peer := sa.sock.local.Addr(), sa.remote.Addr()
	for _, l := range localTS {
		nl, okL := narrowOne(l, us, false)
		if !okL {
			continue
		}
		for _, r := range remoteTS {
			nr, okR := narrowOne(r, peer, true)
			if !okR || (nl.Protocol != 0 && nr.Protocol != 0 && nl.Protocol != nr.Protocol) {
				continue
			}
			return nl, nr, true
		}
	}
	return wire.TrafficSelector{}, wire.TrafficSelector{}, false
}

func narrowOne(s wire.TrafficSelector, addr netip.Addr, singleOK bool) (wire.TrafficSelector, bool) {
	if s.TSType != wire.TS_IPV4_ADDR_RANGE && s.TSType != wire.TS_IPV6_ADDR_RANGE {
		return s, false
	}
	var host netip.Addr
	switch {
	case addr.Is4() == s.Start.Is4() && s.Start.Compare(addr) <= 0 && addr.Compare(s.End) <= 0:
		host = addr
	case singleOK && s.Start == s.End:
		host = s.Start
	default:
		return s, false
	}
	lo, hi := s.StartPort, s.EndPort
	switch s.Protocol {
	case 0, protoL2TP:
	case protoUDP:
		if lo <= portL2TP && portL2TP <= hi {
			lo, hi = portL2TP, portL2TP
		}
	default:
		return s, false
	}
	return wire.NewTS(s.Protocol, host, host, lo, hi), true
}

func tsString(ts []wire.TrafficSelector) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += " "
		}
		s += t.String()
	}
	return s
}

// handleCreateChild answers CREATE_CHILD_SA (RFC 7296 §1.3): a new or
// rekeyed CHILD_SA, or an IKE SA rekey.
func (sa *ikeSA) handleCreateChild(inner []wire.Payload) []wire.Payload {
	st := &sa.r.stats
	if sa.state != stEstablished {
		if sa.state == stRekeyed && sa.rekeyingIKE {
			sa.refusedIKERekey(inner) // collision.go
		}
		return []wire.Payload{wire.NewNotify(wire.TEMPORARY_FAILURE, nil)}
	}
	saP, ok1 := wire.First[*wire.SA](inner)
	nonce, ok2 := wire.First[*wire.Nonce](inner)
	if !ok1 || !ok2 || len(saP.Proposals) == 0 {
		st.inc(Malformed)
		return []wire.Payload{wire.NewNotify(wire.INVALID_SYNTAX, nil)}
	}
	ke, _ := wire.First[*wire.KE](inner)
	if saP.Proposals[0].Protocol == wire.ProtoIKE {
		return sa.handleRekeyIKE(saP, nonce, ke)
	}
	if sa.rekeyingIKE { // RFC 7296 §2.25.2: not while we rekey the IKE SA
		return []wire.Payload{wire.NewNotify(wire.TEMPORARY_FAILURE, nil)}
	}
	var old *child
	if n := wire.FindNotify(inner, wire.REKEY_SA); n != nil {
		spi, ok := n.ESPSPI()
		if ok {
			old = sa.childByOut(spi)
		}
		if old != nil && (old.deleting || old.state == chRetired) { // §2.25.1: we are closing it, or have
			return sa.refuseRekey(old, n.SPI) // collision.go
		}
		if old == nil {
			return []wire.Payload{&wire.Notify{Protocol: wire.ProtoESP, SPI: n.SPI, NotifyType: wire.CHILD_SA_NOT_FOUND}}
		}
	}
	nr := randBytes(nonceLen)
	res, nfy := sa.negotiateChild(inner, nonce.Data, nr, proposal.WithDH, ke, old)
	if nfy != nil {
		return []wire.Payload{nfy}
	}
	switch {
	case old != nil && old.rekeying: // §2.8.1: so are we
		sa.notePeerChildRekey(old, res.ch, nonce.Data, nr)
	case old != nil:
		sa.logger().Info("CHILD_SA rekeyed by the peer", "old_spi_in", spi32(old.inSPI), "new_spi_in", spi32(res.ch.inSPI))
	}
	return res.payloads(nr)
}

func (sa *ikeSA) childByOut(spi uint32) *child {
	for _, ch := range sa.children {
		if ch.outSPI == spi {
			return ch
		}
	}
	return nil
}

func (sa *ikeSA) childByIn(spi uint32) *child {
	for _, ch := range sa.children {
		if ch.inSPI == spi {
			return ch
		}
	}
	return nil
}

// handleRekeyIKE answers an IKE SA rekey (RFC 7296 §1.3.2, §2.18): the
// new SA takes over the CHILD_SAs; the old one waits for the peer's DELETE.
func (sa *ikeSA) handleRekeyIKE(saP *wire.SA, nonce *wire.Nonce, ke *wire.KE) []wire.Payload {
	c := sa.r.cfg.Load()
	st := &sa.r.stats
	if sa.childBusy() || sa.peerRekey != nil { // RFC 7296 §2.25.2
		return []wire.Payload{wire.NewNotify(wire.TEMPORARY_FAILURE, nil)}
	}
	chosen, ok := proposal.Select(c.IKEProps, saP.Proposals, proposal.WithDH)
	if !ok || len(chosen.SPI) != 8 {
		st.inc(NoProposal)
		return []wire.Payload{wire.NewNotify(wire.NO_PROPOSAL_CHOSEN, nil)}
	}
	if ke == nil || ke.Group != chosen.DH {
		st.inc(InvalidKE)
		return []wire.Payload{wire.NewInvalidKE(chosen.DH)}
	}
	dh, err := ikecrypto.GenerateKey(ikecrypto.DHGroup(chosen.DH), nil)
	if err != nil {
		return []wire.Payload{wire.NewNotify(wire.NO_PROPOSAL_CHOSEN, nil)}
	}
	gir, err := dh.Shared(ke.Data)
	if err != nil {
		st.inc(Malformed)
		return []wire.Payload{wire.NewNotify(wire.INVALID_SYNTAX, nil)}
	}
	nr := randBytes(nonceLen)
	spii := binary.BigEndian.Uint64(chosen.SPI)
	spir := sa.r.newSPI()
	nsa, err := sa.rekeyed(chosen, gir, nonce.Data, nr, spii, spir, false)
	if err != nil {
		return []wire.Payload{wire.NewNotify(wire.NO_PROPOSAL_CHOSEN, nil)}
	}
	if sa.rekeyingIKE { // §2.8.2: so are we
		sa.notePeerIKERekey(nsa, nonce.Data, nr)
	} else {
		sa.handOver(nsa)
		nsa.logger().Info("IKE SA rekeyed by the peer", "old_spi_i", spiHex(sa.spiI), "old_spi_r", spiHex(sa.spiR),
			"proposal", chosen.String())
	}
	return []wire.Payload{
		&wire.SA{Proposals: []wire.Proposal{chosen.Wire(binary.BigEndian.AppendUint64(nil, spir))}},
		&wire.Nonce{Data: nr},
		&wire.KE{Group: chosen.DH, Data: dh.Public()},
	}
}

// rekeyed builds the IKE SA that replaces sa (ni: the rekey initiator's
// nonce), without CHILD_SAs and unregistered: handOver (or, after a rekey
// collision, collision.go) makes it the IKE SA.
func (sa *ikeSA) rekeyed(chosen proposal.Chosen, gir, ni, nr []byte, spii, spir uint64, weInit bool) (*ikeSA, error) {
	c := sa.r.cfg.Load()
	suite := chosen.Suite(0)
	skeyseed, err := ikecrypto.RekeySKEYSEED(sa.suite.PRF, sa.keys.SKd, gir, ni, nr)
	if err != nil {
		return nil, err
	}
	keys, err := ikecrypto.DeriveIKEKeys(suite, skeyseed, ni, nr, spii, spir)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	n := &ikeSA{r: sa.r, spiI: spii, spiR: spir, weInit: weInit, state: stEstablished, sock: sa.sock, remote: sa.remote,
		natPeer: sa.natPeer, natUs: sa.natUs, dpKey: sa.dpKey, chosen: chosen, ni: ni, nr: nr, fragOK: sa.fragOK, peerHashes: sa.peerHashes,
		peerID: sa.peerID, peerIDStr: sa.peerIDStr, localIDStr: sa.localIDStr, authInfo: sa.authInfo,
		certExpired: sa.certExpired, peerCert: sa.peerCert, created: sa.created,
		establishedAt: now, lastRecv: now, lastActive: now, lastESP: sa.lastESP,
		rekeyAt: now.Add(jitter(time.Duration(c.Lifetime.IKE))), expireAt: now.Add(time.Duration(c.Lifetime.IKE) * 11 / 10),
		reqHashes: map[[32]byte]bool{}}
	if err := n.setKeys(suite, keys); err != nil {
		return nil, err
	}
	return n, nil
}

// childTimers: deferred outbound switches, grace-window removals, CHILD_SA
// rekeys and expiry (mu held).
func (sa *ikeSA) childTimers(now time.Time) {
	keep := sa.children[:0]
	var remove []uint32
	for _, ch := range sa.children {
		if !ch.activateAt.IsZero() && !now.Before(ch.activateAt) {
			ch.activateAt = time.Time{}
			sa.activate(ch)
		}
		if !ch.removeAt.IsZero() && !now.Before(ch.removeAt) {
			remove = append(remove, ch.inSPI)
			continue
		}
		keep = append(keep, ch)
	}
	sa.children = keep
	if len(remove) > 0 {
		sa.r.dp.RemoveChild(remove...)
	}
	for _, ch := range sa.children {
		sa.redundantTimer(ch, now) // collision.go
		if ch.state != chActive || ch.rekeying {
			continue
		}
		soft := ch.in != nil && ch.in.St.RekeyNeeded.Load() || ch.out != nil && ch.out.St.RekeyNeeded.Load()
		if (soft || !now.Before(ch.rekeyAt)) && sa.pending == nil && sa.state == stEstablished {
			sa.rekeyChild(ch)
			continue
		}
		if !now.Before(ch.expireAt) || ch.out != nil && ch.out.St.Expired.Load() {
			sa.deleteChild(ch, "lifetime expired (rekey failed)")
		}
	}
}

// activate makes a rekeyed CHILD_SA (installed inbound only) the one we
// send with and retires the SA it replaced.
func (sa *ikeSA) activate(ch *child) {
	if err := sa.r.dp.ActivateOut(ch.inSPI); err != nil {
		sa.logger().Error("IKE: switching the outbound SA failed", "spi_in", spi32(ch.inSPI), "err", err)
		return
	}
	for _, o := range sa.children {
		if o.replacedBy == ch && o.state == chRekeyed {
			sa.retire(o)
		}
	}
}

// retire stops sending with a CHILD_SA; its inbound SA is removed after the
// grace window.
func (sa *ikeSA) retire(ch *child) {
	if ch.state == chRetired {
		return
	}
	ch.state = chRetired
	ch.removeAt = time.Now().Add(time.Duration(sa.r.cfg.Load().DeleteGrace))
	sa.r.dp.RetireChild(ch.inSPI)
}

// deleteChild tells the peer we delete a CHILD_SA and retires it.
func (sa *ikeSA) deleteChild(ch *child, why string) {
	sa.retire(ch)
	sa.logger().Info("deleting CHILD_SA", "spi_in", spi32(ch.inSPI), "why", why)
	ch.deleting = true
	done := func() { ch.deleting = false }
	sa.request(wire.INFORMATIONAL, []wire.Payload{wire.NewDeleteESP(ch.inSPI)}, "DELETE CHILD_SA",
		func([]wire.Payload) { done() }, done)
}

// rekeyChild starts a CHILD_SA rekey of ours (RFC 7296 §1.3.3).
func (sa *ikeSA) rekeyChild(ch *child) {
	c := sa.r.cfg.Load()
	ch.rekeying = true
	inSPI := sa.r.dp.AllocSPI()
	spiB := binary.BigEndian.AppendUint32(nil, inSPI)
	ni := randBytes(nonceLen)
	props := make([]wire.Proposal, 0, len(c.ESPProps))
	for i, p := range c.ESPProps {
		props = append(props, p.Wire(uint8(i+1), wire.ProtoESP, spiB, true))
	}
	var dh *ikecrypto.DHPrivate
	ps := []wire.Payload{&wire.Notify{Protocol: wire.ProtoESP, SPI: binary.BigEndian.AppendUint32(nil, ch.inSPI), NotifyType: wire.REKEY_SA}}
	if ch.mode == table.ModeTransport {
		ps = append(ps, wire.NewNotify(wire.USE_TRANSPORT_MODE, nil))
	}
	ps = append(ps, &wire.SA{Proposals: props}, &wire.Nonce{Data: ni})
	if len(c.ESPProps) > 0 && len(c.ESPProps[0].DH) > 0 {
		dh, _ = ikecrypto.GenerateKey(ikecrypto.DHGroup(c.ESPProps[0].DH[0]), nil)
		if dh != nil {
			ps = append(ps, &wire.KE{Group: wire.DHGroup(dh.Group()), Data: dh.Public()})
		}
	}
	// We initiate this exchange: TSi is our side.
	ps = append(ps, &wire.TS{Selectors: []wire.TrafficSelector{ch.local}},
		&wire.TS{Responder: true, Selectors: []wire.TrafficSelector{ch.remote}})
	var refused wire.NotifyType
	retry := func(why string, args ...any) {
		sa.r.dp.ReleaseSPI(inSPI)
		if sa.childRekeyFailed(ch, refused, why) { // collision.go
			return
		}
		ch.rekeying = false
		ch.rekeyAt = time.Now().Add(30 * time.Second)
		sa.logger().Warn("CHILD_SA rekey failed; retrying in 30s", append([]any{"why", why}, args...)...)
	}
	sa.request(wire.CREATE_CHILD_SA, ps, "CHILD_SA rekey", func(inner []wire.Payload) {
		for _, p := range inner {
			if n, ok := p.(*wire.Notify); ok && n.NotifyType.IsError() {
				refused = n.NotifyType
				retry("peer refused", "notify", n.NotifyType.String())
				return
			}
		}
		rsa, ok1 := wire.First[*wire.SA](inner)
		nonce, ok2 := wire.First[*wire.Nonce](inner)
		if !ok1 || !ok2 {
			retry("malformed response")
			return
		}
		chosen, ok := proposal.Select(c.ESPProps, rsa.Proposals, proposal.WithDH)
		if !ok || len(rsa.Proposals) != 1 || len(chosen.SPI) != 4 {
			retry("response proposal is not one of ours")
			return
		}
		var gir []byte
		if chosen.DH != wire.DH_NONE {
			ke, ok := wire.First[*wire.KE](inner)
			if !ok || dh == nil || ke.Group != chosen.DH {
				retry("PFS group mismatch")
				return
			}
			var err error
			if gir, err = dh.Shared(ke.Data); err != nil {
				retry("bad KE", "err", err)
				return
			}
		}
		keys, err := ikecrypto.DeriveChildKeys(chosen.Suite(wire.PRFID(sa.suite.PRF)), sa.keys.SKd, gir, ni, nonce.Data)
		if err != nil {
			retry("keys", "err", err)
			return
		}
		nch := &child{inSPI: inSPI, outSPI: binary.BigEndian.Uint32(chosen.SPI), chosen: chosen, mode: ch.mode,
			local: ch.local, remote: ch.remote}
		// The peer rekeyed ch too: the nonces decide which new SA stays.
		lost := ch.collision != nil && lostCollision(ni, nonce.Data, ch.collision.ni, ch.collision.nr)
		// We initiated: the initiator-to-responder keys protect our outbound
		// traffic. The responder installed its inbound SA before answering,
		// so we switch at once (unless ours lost a collision).
		if n := sa.install(nch, keys.RespToInit, keys.InitToResp, !lost); n != nil {
			if !sa.childRekeyFailed(ch, 0, "install failed") {
				ch.rekeying = false
				ch.rekeyAt = time.Now().Add(30 * time.Second)
			}
			return
		}
		ch.rekeying = false
		if ch.collision != nil {
			sa.resolveChildCollision(ch, nch, lost) // collision.go
			return
		}
		sa.r.stats.inc(ChildRekeys)
		ch.replacedBy = nch
		sa.logger().Info("CHILD_SA rekeyed", "old_spi_in", spi32(ch.inSPI), "new_spi_in", spi32(inSPI))
		if ch.state == chRetired { // the peer deleted it meanwhile
			return
		}
		ch.state = chRekeyed
		sa.deleteChild(ch, "rekeyed")
	}, func() { sa.r.dp.ReleaseSPI(inSPI) })
}

// rekeyIKE starts an IKE SA rekey of ours (RFC 7296 §1.3.2): we become the
// original initiator of the new SA.
func (sa *ikeSA) rekeyIKE() {
	c := sa.r.cfg.Load()
	newSPI := sa.r.newSPI()
	spiB := binary.BigEndian.AppendUint64(nil, newSPI)
	ni := randBytes(nonceLen)
	props := make([]wire.Proposal, 0, len(c.IKEProps))
	for i, p := range c.IKEProps {
		props = append(props, p.Wire(uint8(i+1), wire.ProtoIKE, spiB, true))
	}
	group := c.IKEProps[0].DH[0]
	if contains(c.IKEProps, sa.chosen.DH) {
		group = sa.chosen.DH // the group the peer already agreed to
	}
	dh, err := ikecrypto.GenerateKey(ikecrypto.DHGroup(group), nil)
	if err != nil {
		return
	}
	sa.rekeyingIKE = true
	ps := []wire.Payload{&wire.SA{Proposals: props}, &wire.Nonce{Data: ni}, &wire.KE{Group: group, Data: dh.Public()}}
	retry := func(why string, args ...any) {
		sa.rekeyingIKE = false
		if sa.peerRekey != nil { // the peer's rekey stands (collision.go)
			sa.ikeRekeyAbandoned(why)
			return
		}
		sa.rekeyAt = time.Now().Add(30 * time.Second)
		sa.logger().Warn("IKE SA rekey failed; retrying in 30s", append([]any{"why", why}, args...)...)
	}
	sa.request(wire.CREATE_CHILD_SA, ps, "IKE SA rekey", func(inner []wire.Payload) {
		for _, p := range inner {
			if n, ok := p.(*wire.Notify); ok && n.NotifyType.IsError() {
				retry("peer refused", "notify", n.NotifyType.String())
				return
			}
		}
		rsa, ok1 := wire.First[*wire.SA](inner)
		nonce, ok2 := wire.First[*wire.Nonce](inner)
		ke, ok3 := wire.First[*wire.KE](inner)
		if !ok1 || !ok2 || !ok3 {
			retry("malformed response")
			return
		}
		chosen, ok := proposal.Select(c.IKEProps, rsa.Proposals, proposal.WithDH)
		if !ok || len(chosen.SPI) != 8 || chosen.DH != group || ke.Group != group {
			retry("response proposal is not one of ours")
			return
		}
		gir, err := dh.Shared(ke.Data)
		if err != nil {
			retry("bad KE", "err", err)
			return
		}
		nsa, err := sa.rekeyed(chosen, gir, ni, nonce.Data, newSPI, binary.BigEndian.Uint64(chosen.SPI), true)
		if err != nil {
			retry("keys", "err", err)
			return
		}
		if sa.peerRekey != nil && !sa.resolveIKECollision(nsa, ni, nonce.Data) { // collision.go
			return
		}
		sa.handOver(nsa)
		nsa.logger().Info("IKE SA rekeyed", "old_spi_i", spiHex(sa.spiI), "old_spi_r", spiHex(sa.spiR), "proposal", chosen.String())
		sa.request(wire.INFORMATIONAL, []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}}, "DELETE old IKE SA",
			func([]wire.Payload) { sa.terminate("rekeyed", false) }, nil)
	}, nil)
}

func contains(ps []proposal.Proposal, g wire.DHGroup) bool {
	for _, p := range ps {
		for _, x := range p.DH {
			if x == g {
				return true
			}
		}
	}
	return false
}

func spi32(v uint32) string { return fmt.Sprintf("%08x", v) }
