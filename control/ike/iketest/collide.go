package iketest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"

	"github.com/tunterm/tunterm/control/ike/ikecrypto"
	"github.com/tunterm/tunterm/control/ike/proposal"
	"github.com/tunterm/tunterm/control/ike/wire"
)

// Rekey collisions (RFC 7296 §2.8.1, §2.8.2): a test starts a rekey of ours
// (PrepareRekeyChild, PrepareRekeyIKE), holds the responder's concurrent
// CREATE_CHILD_SA request (Hold, Held), sends ours and answers the
// responder's in the order it wants, and Finish resolves the collision as
// strongSwan does: the new SA created with the lowest of the four nonces is
// deleted by the end that initiated its exchange, the other initiator
// deletes the old SA. Config.Nonce decides which nonces are lower.

// Request is a request of the responder that the reader held (Hold).
type Request struct {
	Header wire.Header
	// Payloads are its decrypted payloads.
	Payloads []wire.Payload
	raw      []byte
}

// Hold makes the reader keep the responder's requests of these exchange
// types for the test (Held, Answer) instead of answering them; a
// retransmission of a held request is dropped. Hold() ends holding; held
// requests stay.
func (i *Initiator) Hold(types ...wire.ExchangeType) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.hold = map[wire.ExchangeType]bool{}
	for _, x := range types {
		i.hold[x] = true
	}
}

// Held returns the next held request, waiting up to d.
func (i *Initiator) Held(d time.Duration) (*Request, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-i.held:
		return r, nil
	case <-t.C:
		return nil, ErrTimeout
	}
}

// Answer answers a held request as the reader would have.
func (i *Initiator) Answer(r *Request) { i.answer(r.Header, r.raw) }

// holdRequest reports whether the reader holds a request (reader goroutine).
func (i *Initiator) holdRequest(h wire.Header, b []byte) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if !i.hold[h.Exchange] || i.Silent.Load() || h.SPIi != i.SPIi || h.SPIr != i.SPIr || i.skIn == nil {
		return false
	}
	if i.lastResp != nil && h.SPIi == i.lastSPIi && h.MessageID == i.lastID {
		return false // answered already: the reader resends the answer
	}
	k := [2]uint64{h.SPIi, uint64(h.MessageID)}
	if i.heldSeen[k] {
		return true
	}
	_, inner, err := i.Open([][]byte{b})
	if err != nil {
		return false
	}
	if i.heldSeen == nil {
		i.heldSeen = map[[2]uint64]bool{}
	}
	i.heldSeen[k] = true
	select {
	case i.held <- &Request{Header: h, Payloads: inner, raw: b}:
	default:
	}
	return true
}

// nonce is a nonce for a CREATE_CHILD_SA exchange (Config.Nonce).
func (i *Initiator) nonce(initiator bool) []byte {
	if i.cfg.Nonce != nil {
		return i.cfg.Nonce(initiator)
	}
	return rnd(32)
}

// lostCollision reports whether the lowest of the four nonces (octet by
// octet, RFC 7296 §2.8.1) is in our exchange (ourNi, peerNr).
func lostCollision(ourNi, peerNr, peerNi, ourNr []byte) bool {
	lower := func(a, b []byte) []byte {
		if bytes.Compare(a, b) <= 0 {
			return a
		}
		return b
	}
	return bytes.Compare(lower(ourNi, peerNr), lower(peerNi, ourNr)) < 0
}

// ChildRekey is a CHILD_SA rekey of ours (PrepareRekeyChild): Send sends
// the request, Finish processes the response. Meanwhile the reader notes a
// rekey of Old by the responder (a collision).
type ChildRekey struct {
	i     *Initiator
	Old   *Child
	id    uint32
	msgs  [][]byte
	sent  bool
	ni    []byte
	dh    *ikecrypto.DHPrivate
	inSPI uint32
	espP  proposal.Proposal
	skIn  *ikecrypto.SK

	// The responder's rekey of Old (under i.mu): its new CHILD_SA and the
	// exchange's nonces (its, ours).
	peer           *Child
	peerNi, peerNr []byte

	// After Finish: New is the CHILD_SA our exchange created (nil if the
	// responder refused it); Collision: the responder rekeyed Old
	// meanwhile; then Lost: New held the lowest nonce and Finish deleted
	// it, or Abandoned: the responder had finished first and refused ours
	// (TEMPORARY_FAILURE or CHILD_SA_NOT_FOUND). Survivor replaces Old.
	New                        *Child
	Collision, Lost, Abandoned bool
	Survivor                   *Child
}

// PrepareRekeyChild builds a rekey of c (CREATE_CHILD_SA with REKEY_SA,
// RFC 7296 §1.3.3; PFS when the ESP proposal names a group) and takes its
// Message ID: from now on the rekey is under way, though not yet sent.
func (i *Initiator) PrepareRekeyChild(c *Child) (*ChildRekey, error) {
	espP, err := proposal.Parse(i.cfg.ESP, proposal.ESP)
	if err != nil {
		return nil, err
	}
	ps := []wire.Payload{&wire.Notify{Protocol: wire.ProtoESP, SPI: binary.BigEndian.AppendUint32(nil, c.In.SPI), NotifyType: wire.REKEY_SA}}
	cps, inSPI, _, err := i.childRequest(len(espP.DH) > 0)
	if err != nil {
		return nil, err
	}
	p := &ChildRekey{i: i, Old: c, ni: i.nonce(true), inSPI: inSPI, espP: espP}
	// [N(USE_TRANSPORT_MODE)] SA, then Ni [KEi], then TSi TSr.
	n := len(cps) - 2
	ps = append(ps, cps[:n]...)
	ps = append(ps, &wire.Nonce{Data: p.ni})
	if len(espP.DH) > 0 {
		if p.dh, err = ikecrypto.GenerateKey(ikecrypto.DHGroup(espP.DH[0]), nil); err != nil {
			return nil, err
		}
		ps = append(ps, &wire.KE{Group: espP.DH[0], Data: p.dh.Public()})
	}
	ps = append(ps, cps[n:]...)
	i.mu.Lock()
	h := i.reqHeader(wire.CREATE_CHILD_SA)
	p.id = h.MessageID
	p.skIn = i.skIn
	if i.childRekeys == nil {
		i.childRekeys = map[*Child]*ChildRekey{}
	}
	i.childRekeys[c] = p
	i.mu.Unlock()
	p.msgs = i.Seal(h, ps)
	return p, nil
}

// Send sends the request (once; Finish retransmits).
func (p *ChildRekey) Send() error {
	p.sent = true
	return p.i.sendAll(p.msgs)
}

func (p *ChildRekey) cancel() {
	p.i.mu.Lock()
	delete(p.i.childRekeys, p.Old)
	p.i.mu.Unlock()
}

// Finish waits for the response (sending the request if Send did not) and
// returns the CHILD_SA it created. Without a collision the caller deletes
// Old, as with RekeyChild. After a collision Finish has done its part: it
// deleted New if New lost (the responder deletes Old and the reader
// activates Survivor then), else it activated New and deleted Old.
func (p *ChildRekey) Finish() (*Child, error) {
	i := p.i
	got, err := i.roundTripAfter(p.msgs, wire.CREATE_CHILD_SA, p.id, p.sent)
	i.mu.Lock()
	delete(i.childRekeys, p.Old)
	peer, peerNi, peerNr := p.peer, p.peerNi, p.peerNr
	i.mu.Unlock()
	p.Collision = peer != nil
	if err != nil {
		return nil, err
	}
	_, inner, err := openWith(p.skIn, got)
	if err != nil {
		return nil, err
	}
	for _, pl := range inner {
		if n, ok := pl.(*wire.Notify); ok && n.NotifyType.IsError() {
			if p.Collision && (n.NotifyType == wire.TEMPORARY_FAILURE || n.NotifyType == wire.CHILD_SA_NOT_FOUND) {
				p.Abandoned, p.Survivor = true, peer
				return nil, nil
			}
			return nil, &NotifyError{n.NotifyType}
		}
	}
	nr, ok := wire.First[*wire.Nonce](inner)
	if !ok {
		return nil, errors.New("iketest: no Nr")
	}
	var gir []byte
	if p.dh != nil {
		ke, ok := wire.First[*wire.KE](inner)
		if !ok {
			return nil, errors.New("iketest: no KEr")
		}
		if gir, err = p.dh.Shared(ke.Data); err != nil {
			return nil, err
		}
	}
	ch, err := i.childResponse(inner, p.inSPI, p.espP, p.ni, nr.Data, gir, proposal.WithDH)
	if err != nil {
		return nil, err
	}
	i.mu.Lock()
	i.Children = append(i.Children, ch)
	i.mu.Unlock()
	p.New, p.Survivor = ch, ch
	if !p.Collision {
		return ch, nil
	}
	if lostCollision(p.ni, nr.Data, peerNi, peerNr) {
		p.Lost, p.Survivor = true, peer
		_, err := i.DeleteChild(ch)
		return ch, err
	}
	ch.Active.Store(true)
	_, err = i.DeleteChild(p.Old)
	return ch, err
}

// IKERekey is an IKE SA rekey of ours (PrepareRekeyIKE): Send sends the
// request, Finish processes the response. Meanwhile the reader notes a
// rekey of the IKE SA by the responder (a collision).
type IKERekey struct {
	i     *Initiator
	id    uint32
	msgs  [][]byte
	sent  bool
	ni    []byte
	dh    *ikecrypto.DHPrivate
	spi   uint64
	ikeP  proposal.Proposal
	group wire.DHGroup
	keys  ikecrypto.IKEKeys // the old SA's
	suite ikecrypto.Suite
	skIn  *ikecrypto.SK

	peer *pendingIKE // the responder's rekey (under i.mu)

	// After Finish: SPIi and SPIr name the IKE SA our exchange created;
	// Collision: the responder rekeyed the IKE SA meanwhile, its new SA
	// being PeerSPIi/PeerSPIr; then Lost: ours held the lowest nonce and
	// Finish deleted it (the responder deletes the old SA, and the reader
	// then switches to the responder's), or Abandoned: the responder had
	// finished first and refused ours (TEMPORARY_FAILURE).
	SPIi, SPIr                 uint64
	PeerSPIi, PeerSPIr         uint64
	Collision, Lost, Abandoned bool
}

// PrepareRekeyIKE builds an IKE SA rekey (RFC 7296 §1.3.2) and takes its
// Message ID: from now on the rekey is under way, though not yet sent.
func (i *Initiator) PrepareRekeyIKE() (*IKERekey, error) {
	ikeP, err := proposal.Parse(i.cfg.IKE, proposal.IKE)
	if err != nil {
		return nil, err
	}
	p := &IKERekey{i: i, spi: rand64(), ni: i.nonce(true), ikeP: ikeP}
	i.mu.Lock()
	p.group, p.keys, p.suite, p.skIn = i.Chosen.DH, i.keys, i.suite, i.skIn
	i.mu.Unlock()
	if p.dh, err = ikecrypto.GenerateKey(ikecrypto.DHGroup(p.group), nil); err != nil {
		return nil, err
	}
	ps := []wire.Payload{
		&wire.SA{Proposals: []wire.Proposal{ikeP.Wire(1, wire.ProtoIKE, binary.BigEndian.AppendUint64(nil, p.spi), true)}},
		&wire.Nonce{Data: p.ni}, &wire.KE{Group: p.group, Data: p.dh.Public()}}
	i.mu.Lock()
	h := i.reqHeader(wire.CREATE_CHILD_SA)
	p.id = h.MessageID
	i.ikeRekey = p
	i.mu.Unlock()
	p.msgs = i.Seal(h, ps)
	return p, nil
}

// Send sends the request (once; Finish retransmits).
func (p *IKERekey) Send() error {
	p.sent = true
	return p.i.sendAll(p.msgs)
}

func (p *IKERekey) cancel() {
	p.i.mu.Lock()
	if p.i.ikeRekey == p {
		p.i.ikeRekey = nil
	}
	p.i.mu.Unlock()
}

// Finish waits for the response (sending the request if Send did not).
// Without a collision, or having won one, it deletes the old IKE SA and the
// Initiator speaks on the new one; having lost one, it deletes the new one.
func (p *IKERekey) Finish() error {
	i := p.i
	got, err := i.roundTripAfter(p.msgs, wire.CREATE_CHILD_SA, p.id, p.sent)
	i.mu.Lock()
	if i.ikeRekey == p {
		i.ikeRekey = nil
	}
	peer := p.peer
	i.mu.Unlock()
	if p.Collision = peer != nil; p.Collision {
		p.PeerSPIi, p.PeerSPIr = peer.spii, peer.spir
	}
	if err != nil {
		return err
	}
	_, inner, err := openWith(p.skIn, got)
	if err != nil {
		return err
	}
	for _, pl := range inner {
		if n, ok := pl.(*wire.Notify); ok && n.NotifyType.IsError() {
			if p.Collision && n.NotifyType == wire.TEMPORARY_FAILURE {
				p.Abandoned = true
				return nil
			}
			return &NotifyError{n.NotifyType}
		}
	}
	saP, ok1 := wire.First[*wire.SA](inner)
	nr, ok2 := wire.First[*wire.Nonce](inner)
	ke, ok3 := wire.First[*wire.KE](inner)
	if !ok1 || !ok2 || !ok3 {
		return errors.New("iketest: bad IKE rekey response")
	}
	chosen, ok := proposal.Select([]proposal.Proposal{p.ikeP}, saP.Proposals, proposal.WithDH)
	if !ok || len(chosen.SPI) != 8 {
		return errors.New("iketest: bad IKE rekey proposal")
	}
	gir, err := p.dh.Shared(ke.Data)
	if err != nil {
		return err
	}
	seed, err := ikecrypto.RekeySKEYSEED(p.suite.PRF, p.keys.SKd, gir, p.ni, nr.Data)
	if err != nil {
		return err
	}
	nsuite := chosen.Suite(0)
	p.SPIi, p.SPIr = p.spi, binary.BigEndian.Uint64(chosen.SPI)
	nkeys, err := ikecrypto.DeriveIKEKeys(nsuite, seed, p.ni, nr.Data, p.SPIi, p.SPIr)
	if err != nil {
		return err
	}
	if p.Collision && lostCollision(p.ni, nr.Data, peer.ni, peer.nr) {
		// Ours is redundant: delete it, on itself (we are its original
		// initiator).
		p.Lost = true
		out, in, err := skPair(nsuite, nkeys, true)
		if err != nil {
			return err
		}
		h := wire.Header{SPIi: p.SPIi, SPIr: p.SPIr, Exchange: wire.INFORMATIONAL, Flags: wire.FlagInitiator}
		got, err := i.roundTrip([][]byte{sealPayloads(out, h, []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}})}, wire.INFORMATIONAL, 0)
		if err != nil {
			return err
		}
		_, _, err = openWith(in, got)
		return err
	}
	// Delete the old SA on the old keys, then switch.
	if err := i.DeleteIKE(); err != nil {
		return err
	}
	i.mu.Lock()
	i.SPIi, i.SPIr, i.keys, i.suite, i.Chosen, i.msgID, i.peerID, i.notOrig = p.SPIi, p.SPIr, nkeys, nsuite, chosen, 0, 0, false
	i.mu.Unlock()
	return i.setKeys(true)
}

// skPair returns the SK transforms of an IKE SA for our messages (out) and
// the responder's (in); weInit: we are its original initiator.
func skPair(s ikecrypto.Suite, k ikecrypto.IKEKeys, weInit bool) (out, in *ikecrypto.SK, err error) {
	a, err := ikecrypto.NewSK(s, k.SKei, k.SKai)
	if err != nil {
		return nil, nil, err
	}
	b, err := ikecrypto.NewSK(s, k.SKer, k.SKar)
	if err != nil {
		return nil, nil, err
	}
	if weInit {
		return a, b, nil
	}
	return b, a, nil
}

// sealPayloads encrypts one unfragmented message.
func sealPayloads(sk *ikecrypto.SK, h wire.Header, inner []wire.Payload) []byte {
	body, first := wire.AppendPayloads(nil, inner)
	return seal(sk, h, &wire.Encrypted{Next: first}, body)
}

// answerPendingIKE answers a request of the responder on the IKE SA its
// rekey created before it took over (mu held): a DELETE means that SA lost
// a rekey collision.
func (i *Initiator) answerPendingIKE(p *pendingIKE, h wire.Header, b []byte) {
	out, in, err := skPair(p.suite, p.keys, false)
	if err != nil {
		return
	}
	_, inner, err := openWith(in, [][]byte{b})
	if err != nil {
		return
	}
	i.Requests.Add(1)
	deleted := false
	for _, pl := range inner {
		if d, ok := pl.(*wire.Delete); ok && d.Protocol == wire.ProtoIKE {
			deleted = true
		}
	}
	i.SendRaw(sealPayloads(out, h.ResponseHeader(), nil))
	if deleted {
		i.pendingIKE = nil
		i.RedundantIKEDeleted.Add(1)
	}
}

// sendAll sends the datagrams of one message.
func (i *Initiator) sendAll(msgs [][]byte) error {
	for _, m := range msgs {
		if err := i.SendRaw(m); err != nil {
			return err
		}
	}
	return nil
}

// reqHeader takes the next message ID for a request of ours (i.mu held).
func (i *Initiator) reqHeader(x wire.ExchangeType) wire.Header {
	h := wire.Header{SPIi: i.SPIi, SPIr: i.SPIr, Exchange: x, Flags: wire.FlagInitiator, MessageID: i.msgID}
	i.msgID++
	if i.notOrig {
		h.Flags = 0
	}
	return h
}
