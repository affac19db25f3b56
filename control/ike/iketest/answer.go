package iketest

import (
	"encoding/binary"

	"github.com/tunterm/tunterm/control/ike/ikecrypto"
	"github.com/tunterm/tunterm/control/ike/proposal"
	"github.com/tunterm/tunterm/control/ike/wire"
	"github.com/tunterm/tunterm/dataplane/esp"
)

// The AP as the responder of the responder's requests: liveness checks,
// DELETEs (answered with the paired SPIs, RFC 7296 §1.4.1) and rekeys
// (CREATE_CHILD_SA for a CHILD_SA, §1.3.3, or the IKE SA, §1.3.2).

// ChildList returns the CHILD_SAs so far (safe while the reader answers
// rekeys).
func (i *Initiator) ChildList() []*Child {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]*Child(nil), i.Children...)
}

// IKESPIs returns the current IKE SA's SPIs (safe while the reader answers
// an IKE SA rekey).
func (i *Initiator) IKESPIs() (spii, spir uint64) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.SPIi, i.SPIr
}

// answer handles a request from the responder (reader goroutine).
func (i *Initiator) answer(h wire.Header, b []byte) {
	if i.Silent.Load() {
		return
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if h.SPIi != i.SPIi || h.SPIr != i.SPIr || i.skIn == nil {
		if p := i.pendingIKE; p != nil && h.SPIi == p.spii && h.SPIr == p.spir {
			i.answerPendingIKE(p, h, b) // collide.go
		}
		return
	}
	if i.lastResp != nil && h.SPIi == i.lastSPIi && h.MessageID == i.lastID {
		for _, m := range i.lastResp { // a retransmission: the same answer
			i.SendRaw(m)
		}
		return
	}
	_, inner, err := i.Open([][]byte{b})
	if err != nil {
		return
	}
	i.Requests.Add(1)
	var resp []wire.Payload
	switchIKE := false
	switch h.Exchange {
	case wire.CREATE_CHILD_SA:
		resp = i.answerCreate(inner)
	case wire.INFORMATIONAL:
		for _, p := range inner {
			d, ok := p.(*wire.Delete)
			if !ok {
				continue
			}
			if d.Protocol == wire.ProtoIKE {
				if i.pendingIKE != nil {
					switchIKE = true // the old SA of a rekey
				} else {
					i.Deleted.Store(true)
				}
				continue
			}
			var ours []uint32
			for _, s := range d.SPIs {
				spi := binary.BigEndian.Uint32(s)
				for _, c := range i.Children {
					if c.Out.SPI == spi && !c.Deleted.Load() {
						c.Deleted.Store(true)
						ours = append(ours, c.In.SPI)
						for _, n := range i.Children {
							if n.Replaces == c {
								n.Active.Store(true)
							}
						}
					}
				}
			}
			if len(ours) > 0 {
				resp = append(resp, wire.NewDeleteESP(ours...))
			}
		}
	}
	msgs := i.Seal(h.ResponseHeader(), resp)
	for _, m := range msgs {
		i.SendRaw(m)
	}
	i.lastSPIi, i.lastID, i.lastResp = h.SPIi, h.MessageID, msgs
	if switchIKE {
		p := i.pendingIKE
		i.pendingIKE = nil
		i.SPIi, i.SPIr, i.keys, i.suite, i.Chosen, i.msgID, i.peerID, i.notOrig = p.spii, p.spir, p.keys, p.suite, p.chosen, 0, 0, true
		i.setKeys(false)
		i.IKERekeysAnswered.Add(1)
	}
}

func notify(t wire.NotifyType) []wire.Payload { return []wire.Payload{wire.NewNotify(t, nil)} }

// answerCreate answers a CREATE_CHILD_SA request of the responder (mu held).
func (i *Initiator) answerCreate(inner []wire.Payload) []wire.Payload {
	saP, ok1 := wire.First[*wire.SA](inner)
	ni, ok2 := wire.First[*wire.Nonce](inner)
	if !ok1 || !ok2 || len(saP.Proposals) == 0 {
		return notify(wire.INVALID_SYNTAX)
	}
	ke, hasKE := wire.First[*wire.KE](inner)
	nr := i.nonce(false)
	if saP.Proposals[0].Protocol == wire.ProtoIKE {
		ikeP, err := proposal.Parse(i.cfg.IKE, proposal.IKE)
		if err != nil {
			return notify(wire.NO_PROPOSAL_CHOSEN)
		}
		chosen, ok := proposal.Select([]proposal.Proposal{ikeP}, saP.Proposals, proposal.WithDH)
		if !ok || !hasKE || ke.Group != chosen.DH || len(chosen.SPI) != 8 {
			return notify(wire.NO_PROPOSAL_CHOSEN)
		}
		dh, err := ikecrypto.GenerateKey(ikecrypto.DHGroup(chosen.DH), nil)
		if err != nil {
			return notify(wire.NO_PROPOSAL_CHOSEN)
		}
		gir, err := dh.Shared(ke.Data)
		if err != nil {
			return notify(wire.INVALID_SYNTAX)
		}
		seed, err := ikecrypto.RekeySKEYSEED(i.suite.PRF, i.keys.SKd, gir, ni.Data, nr)
		if err != nil {
			return notify(wire.NO_PROPOSAL_CHOSEN)
		}
		spi := rand64()
		p := &pendingIKE{spii: binary.BigEndian.Uint64(chosen.SPI), spir: spi, suite: chosen.Suite(0), chosen: chosen}
		if p.keys, err = ikecrypto.DeriveIKEKeys(p.suite, seed, ni.Data, nr, p.spii, p.spir); err != nil {
			return notify(wire.NO_PROPOSAL_CHOSEN)
		}
		p.ni, p.nr = ni.Data, nr
		i.pendingIKE = p
		if i.ikeRekey != nil { // we rekey it too (RFC 7296 §2.8.2): Finish decides
			i.ikeRekey.peer = p
		}
		return []wire.Payload{&wire.SA{Proposals: []wire.Proposal{chosen.Wire(binary.BigEndian.AppendUint64(nil, spi))}},
			&wire.Nonce{Data: nr}, &wire.KE{Group: chosen.DH, Data: dh.Public()}}
	}
	// A CHILD_SA: REKEY_SA names the SA by the responder's inbound SPI,
	// our outbound one.
	var old *Child
	if n := wire.FindNotify(inner, wire.REKEY_SA); n != nil && len(n.SPI) == 4 {
		spi := binary.BigEndian.Uint32(n.SPI)
		for _, c := range i.Children {
			if c.Out.SPI == spi && !c.Deleted.Load() && !c.Closed.Load() {
				old = c
			}
		}
		if old == nil {
			return []wire.Payload{&wire.Notify{Protocol: wire.ProtoESP, SPI: n.SPI, NotifyType: wire.CHILD_SA_NOT_FOUND}}
		}
		if old.closing.Load() { // RFC 7296 §2.25.1
			return notify(wire.TEMPORARY_FAILURE)
		}
	}
	espP, err := proposal.Parse(i.cfg.ESP, proposal.ESP)
	if err != nil {
		return notify(wire.NO_PROPOSAL_CHOSEN)
	}
	mode := proposal.NoDH
	if hasKE {
		mode = proposal.WithDH
	}
	chosen, ok := proposal.Select([]proposal.Proposal{espP}, saP.Proposals, mode)
	if !ok || len(chosen.SPI) != 4 {
		return notify(wire.NO_PROPOSAL_CHOSEN)
	}
	var gir []byte
	var kePl wire.Payload
	if chosen.DH != wire.DH_NONE {
		if !hasKE || ke.Group != chosen.DH {
			return notify(wire.NO_PROPOSAL_CHOSEN)
		}
		dh, err := ikecrypto.GenerateKey(ikecrypto.DHGroup(chosen.DH), nil)
		if err != nil {
			return notify(wire.NO_PROPOSAL_CHOSEN)
		}
		if gir, err = dh.Shared(ke.Data); err != nil {
			return notify(wire.INVALID_SYNTAX)
		}
		kePl = &wire.KE{Group: chosen.DH, Data: dh.Public()}
	}
	keys, err := ikecrypto.DeriveChildKeys(chosen.Suite(wire.PRFID(i.suite.PRF)), i.keys.SKd, gir, ni.Data, nr)
	if err != nil {
		return notify(wire.NO_PROPOSAL_CHOSEN)
	}
	cph, integ, err := espAlgs(chosen)
	if err != nil {
		return notify(wire.NO_PROPOSAL_CHOSEN)
	}
	esn := chosen.ESN == wire.ESN
	inSPI := uint32(rand64()>>32) | 0x100
	// The responder initiated this exchange: its outbound (our inbound)
	// uses the initiator-to-responder keys.
	ch := &Child{Chosen: chosen, UDPEncap: i.NATDetected, Transport: wire.FindNotify(inner, wire.USE_TRANSPORT_MODE) != nil,
		Replaces: old,
		In:       esp.Config{SPI: inSPI, Cipher: cph, EncKey: keys.InitToResp.EncKey, Integ: integ, IntegKey: keys.InitToResp.IntegKey, ESN: esn},
		Out: esp.Config{SPI: binary.BigEndian.Uint32(chosen.SPI), Cipher: cph, EncKey: keys.RespToInit.EncKey, Integ: integ,
			IntegKey: keys.RespToInit.IntegKey, ESN: esn}}
	if old == nil {
		ch.Active.Store(true)
	}
	var resp []wire.Payload
	if ch.Transport {
		resp = append(resp, wire.NewNotify(wire.USE_TRANSPORT_MODE, nil))
	}
	resp = append(resp, &wire.SA{Proposals: []wire.Proposal{chosen.Wire(binary.BigEndian.AppendUint32(nil, inSPI))}},
		&wire.Nonce{Data: nr})
	if kePl != nil {
		resp = append(resp, kePl)
	}
	for _, p := range inner {
		if t, ok := p.(*wire.TS); ok {
			resp = append(resp, t) // host-to-host selectors: accepted as they are
			if t.Responder {
				ch.TSi = t.Selectors // ours
			} else {
				ch.TSr = t.Selectors
			}
		}
	}
	i.Children = append(i.Children, ch)
	i.ChildRekeysAnswered.Add(1)
	if p := i.childRekeys[old]; old != nil && p != nil { // we rekey it too (§2.8.1): Finish decides
		p.peer, p.peerNi, p.peerNr = ch, ni.Data, nr
	}
	return resp
}
