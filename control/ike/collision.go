package ike

import (
	"bytes"
	"time"

	"github.com/tunterm/tunterm/control/ike/wire"
)

// Rekey collisions (RFC 7296 §2.8.1, §2.8.2, §2.25).
//
// Both ends may start rekeying the same SA before either has answered:
//
//	us                                      the AP
//	req1: N(REKEY_SA), SA, Ni1  ──►
//	                             ◄──  req2: N(REKEY_SA), SA, Ni2
//	resp2: SA, Nr2  ──►                    (we note the collision and
//	                             ◄──  resp1: SA, Nr1    answer as usual)
//
// Now there are three SAs: the old one and two new ones. The new SA created
// with the lowest of the four nonces (octet by octet; a nonce that is a
// prefix of the other is the lower) is redundant: the end that initiated
// that exchange deletes it, and the end that initiated the other exchange
// deletes the old SA. For the IKE SA the survivor also takes over the
// CHILD_SAs (§2.8.2).
//
// A peer that has finished its rekey before our request arrives refuses ours
// (TEMPORARY_FAILURE: it is closing the old SA; CHILD_SA_NOT_FOUND: already
// closed): its SA is then the only new one and replaces the old one as if
// there had been no collision. We answer the same way when we have finished
// first, and TEMPORARY_FAILURE to CHILD_SA requests while we rekey the IKE
// SA and to an IKE SA rekey while an exchange of ours creates, rekeys or
// deletes a CHILD_SA (§2.25.1, §2.25.2).
//
// The state lives on the old SA: child.collision for a CHILD_SA, and
// ikeSA.peerRekey for the IKE SA, whose new SA from the peer's exchange is
// registered at once (the peer may delete it there) but holds no CHILD_SAs
// and stays stRekeyed until the nonces have decided.

// childCollision is the peer's rekey of a CHILD_SA we were rekeying.
type childCollision struct {
	peer   *child // the CHILD_SA the peer's exchange created
	ni, nr []byte // that exchange's nonces: the peer's, ours
}

// ikeCollision is the peer's rekey of an IKE SA we were rekeying.
type ikeCollision struct {
	sa     *ikeSA // the IKE SA the peer's exchange created
	ni, nr []byte // that exchange's nonces: the peer's, ours
}

// lowerNonce is the lower of an exchange's two nonces.
func lowerNonce(a, b []byte) []byte {
	if bytes.Compare(a, b) <= 0 {
		return a
	}
	return b
}

// lostCollision reports whether the lowest of the four nonces is in the
// exchange we initiated (ourNi, peerNr), whose new SA we must then delete.
// bytes.Compare is the octet-by-octet comparison §2.8.1 asks for.
func lostCollision(ourNi, peerNr, peerNi, ourNr []byte) bool {
	return bytes.Compare(lowerNonce(ourNi, peerNr), lowerNonce(peerNi, ourNr)) < 0
}

// notePeerChildRekey: the peer rekeyed old, which we are rekeying too; we
// answered as usual with n, and decide when our response arrives.
func (sa *ikeSA) notePeerChildRekey(old, n *child, ni, nr []byte) {
	old.collision = &childCollision{peer: n, ni: ni, nr: nr}
	sa.r.stats.inc(ChildCollisions)
	sa.logger().Info("CHILD_SA rekey collision: the peer rekeys the CHILD_SA we are rekeying; the nonces decide (RFC 7296 §2.8.1)",
		"old_spi_in", spi32(old.inSPI), "peer_new_spi_in", spi32(n.inSPI))
}

// refuseRekey answers the peer's rekey of a CHILD_SA we are closing
// (TEMPORARY_FAILURE, §2.25.1) or have closed (CHILD_SA_NOT_FOUND); if we
// rekeyed it ourselves, this is a collision we finished first: the peer
// drops its rekey and keeps ours.
func (sa *ikeSA) refuseRekey(old *child, spi []byte) []wire.Payload {
	nfy := &wire.Notify{Protocol: wire.ProtoESP, SPI: spi, NotifyType: wire.CHILD_SA_NOT_FOUND}
	if old.deleting {
		nfy = wire.NewNotify(wire.TEMPORARY_FAILURE, nil)
	}
	if old.replacedBy != nil {
		sa.r.stats.inc(ChildCollisions)
		sa.logger().Info("CHILD_SA rekey collision: the peer rekeys a CHILD_SA we have rekeyed already; refused, ours stays",
			"old_spi_in", spi32(old.inSPI), "new_spi_in", spi32(old.replacedBy.inSPI), "notify", nfy.NotifyType.String())
	}
	return []wire.Payload{nfy}
}

// resolveChildCollision: our rekey of old created ours while the peer's
// created old.collision.peer; ours was installed sending (lost == false) or
// receiving only.
func (sa *ikeSA) resolveChildCollision(old, ours *child, lost bool) {
	col := old.collision
	old.collision = nil
	peer := col.peer
	sa.r.stats.inc(ChildRekeys) // one CHILD_SA rekeyed, by two exchanges
	if lost {
		// Ours is redundant; old.replacedBy is the peer's, which we send
		// with once the peer deletes old (childDeletedByPeer), or after
		// rekeyOutWait.
		sa.logger().Info("CHILD_SA rekey collision lost: deleting our redundant CHILD_SA; the peer's replaces the old one and the peer deletes it",
			"old_spi_in", spi32(old.inSPI), "new_spi_in", spi32(peer.inSPI), "redundant_spi_in", spi32(ours.inSPI))
		sa.deleteChild(ours, "redundant (rekey collision lost)")
		return
	}
	sa.logger().Info("CHILD_SA rekey collision won: ours replaces the old one, which we delete; the peer deletes its redundant one",
		"old_spi_in", spi32(old.inSPI), "new_spi_in", spi32(ours.inSPI), "redundant_spi_in", spi32(peer.inSPI))
	old.replacedBy = ours
	if peer.state != chRetired {
		// Never sent with; it decrypts until the peer deletes it.
		peer.state, peer.replacedBy, peer.activateAt = chRekeyed, ours, time.Time{}
		peer.redundantAt = time.Now().Add(rekeyOutWait)
		sa.r.dp.RetireChild(peer.inSPI)
	}
	if old.state != chRetired { // else the peer deleted it already
		old.state = chRekeyed
		sa.deleteChild(old, "rekeyed (rekey collision won)")
	}
}

// childRekeyFailed handles a CHILD_SA rekey of ours that did not produce an
// SA (notify: the peer's error, if it sent one). It reports whether there is
// nothing to retry: the peer rekeyed ch meanwhile (it did not notice the
// collision, §2.8.1), deleted it (§2.25.1) or does not know it
// (CHILD_SA_NOT_FOUND, §2.25: delete it silently). The caller releases the
// SPI it allocated.
func (sa *ikeSA) childRekeyFailed(ch *child, notify wire.NotifyType, why string) bool {
	args := []any{"why", why}
	if notify != 0 {
		args = append(args, "notify", notify.String())
	}
	switch {
	case ch.collision != nil:
		peer := ch.collision.peer
		ch.collision = nil
		sa.r.stats.inc(ChildRekeys)
		sa.logger().Info("CHILD_SA rekey collision: ours failed (the peer finished its rekey first); the peer's CHILD_SA replaces the old one",
			append([]any{"old_spi_in", spi32(ch.inSPI), "new_spi_in", spi32(peer.inSPI)}, args...)...)
	case ch.state == chRetired:
		sa.logger().Info("CHILD_SA rekey abandoned: the peer deleted the CHILD_SA", append([]any{"spi_in", spi32(ch.inSPI)}, args...)...)
	case notify == wire.CHILD_SA_NOT_FOUND:
		sa.logger().Warn("CHILD_SA rekey: the peer does not know the CHILD_SA; removing it", "spi_in", spi32(ch.inSPI))
		sa.retire(ch)
	default:
		return false
	}
	ch.rekeying = false
	return true
}

// redundantTimer deletes the peer's redundant CHILD_SA of a collision we
// won if the peer has not deleted it within rekeyOutWait.
func (sa *ikeSA) redundantTimer(ch *child, now time.Time) {
	if ch.redundantAt.IsZero() || now.Before(ch.redundantAt) {
		return
	}
	ch.redundantAt = time.Time{}
	if ch.state == chRekeyed {
		sa.deleteChild(ch, "redundant after a rekey collision; the peer did not delete it")
	}
}

// childBusy reports whether an exchange of ours rekeys or deletes a
// CHILD_SA: an IKE SA rekey from the peer then gets TEMPORARY_FAILURE
// (§2.25.2).
func (sa *ikeSA) childBusy() bool {
	for _, ch := range sa.children {
		if ch.rekeying || ch.deleting {
			return true
		}
	}
	return false
}

// handOver makes n, sa's rekeyed successor, the IKE SA: it takes the
// CHILD_SAs (§2.18) and sa waits for its DELETE. n is not yet visible to
// other goroutines.
func (sa *ikeSA) handOver(n *ikeSA) {
	n.children, sa.children = sa.children, nil
	sa.state, sa.rekeyedAt = stRekeyed, time.Now()
	sa.r.replace(sa, n)
	sa.r.stats.inc(IKERekeys)
}

// handOverTo makes the IKE SA the peer's rekey created (registered, so
// visible: its fields are set after sa.mu is released, under its own mu)
// the IKE SA, with the CHILD_SAs; the peer deletes sa.
func (sa *ikeSA) handOverTo(n *ikeSA) {
	kids := sa.children
	sa.children = nil
	sa.state, sa.rekeyedAt = stRekeyed, time.Now()
	sa.r.replace(sa, n)
	sa.r.stats.inc(IKERekeys)
	sa.after = append(sa.after, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.state == stDead { // deleted meanwhile: so are the CHILD_SAs
			var spis []uint32
			for _, ch := range kids {
				spis = append(spis, ch.inSPI)
			}
			if len(spis) > 0 {
				sa.r.dp.RemoveChild(spis...)
			}
			return
		}
		n.children = append(n.children, kids...)
		n.state = stEstablished
	})
}

// notePeerIKERekey: the peer rekeyed the IKE SA while our rekey is
// outstanding; n (its new SA, built from ni, nr) waits, registered but
// without CHILD_SAs, for our response.
func (sa *ikeSA) notePeerIKERekey(n *ikeSA, ni, nr []byte) {
	n.state, n.rekeyedAt = stRekeyed, time.Now()
	sa.peerRekey = &ikeCollision{sa: n, ni: ni, nr: nr}
	sa.r.register(n, nil)
	sa.r.stats.inc(IKECollisions)
	sa.logger().Info("IKE SA rekey collision: the peer rekeys the IKE SA while we do; the nonces decide (RFC 7296 §2.8.2)",
		"peer_new_spi_i", spiHex(n.spiI), "peer_new_spi_r", spiHex(n.spiR))
}

// resolveIKECollision: our rekey created ours (not yet registered) from the
// nonces ni, nr. It reports whether ours survives (the caller then hands
// over to it and deletes sa); if not, ours is deleted and the peer's takes
// over.
func (sa *ikeSA) resolveIKECollision(ours *ikeSA, ni, nr []byte) bool {
	col := sa.peerRekey
	sa.peerRekey = nil
	peer := col.sa
	if !lostCollision(ni, nr, col.ni, col.nr) {
		// The peer's stays stRekeyed until the peer deletes it (30 s at most).
		sa.logger().Info("IKE SA rekey collision won: ours takes over the CHILD_SAs, we delete the old IKE SA; the peer deletes its redundant one",
			"new_spi_i", spiHex(ours.spiI), "new_spi_r", spiHex(ours.spiR), "redundant_spi_i", spiHex(peer.spiI), "redundant_spi_r", spiHex(peer.spiR))
		return true
	}
	sa.logger().Info("IKE SA rekey collision lost: deleting our redundant IKE SA; the peer's takes over the CHILD_SAs and the peer deletes the old one",
		"new_spi_i", spiHex(peer.spiI), "new_spi_r", spiHex(peer.spiR), "redundant_spi_i", spiHex(ours.spiI), "redundant_spi_r", spiHex(ours.spiR))
	ours.state, ours.rekeyedAt = stRekeyed, time.Now()
	// Registered before its DELETE leaves, or the peer's answer could find
	// no IKE SA; from then on ours is visible, so the DELETE is sent under
	// its own mutex once sa's is released.
	sa.r.register(ours, nil)
	sa.after = append(sa.after, func() {
		ours.mu.Lock()
		if ours.state != stDead {
			ours.request(wire.INFORMATIONAL, []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}}, "DELETE redundant IKE SA",
				func([]wire.Payload) { ours.terminate("redundant after an IKE SA rekey collision", false) }, nil)
		}
		after := ours.after
		ours.after = nil
		ours.mu.Unlock()
		for _, f := range after {
			f()
		}
	})
	sa.handOverTo(peer)
	return false
}

// ikeRekeyAbandoned: our IKE SA rekey failed, or the peer deleted the old
// IKE SA, while the peer's rekey is pending: the peer's takes over.
func (sa *ikeSA) ikeRekeyAbandoned(why string) {
	peer := sa.peerRekey.sa
	sa.peerRekey = nil
	sa.logger().Info("IKE SA rekey collision: ours abandoned; the peer's takes over the CHILD_SAs", "why", why,
		"new_spi_i", spiHex(peer.spiI), "new_spi_r", spiHex(peer.spiR))
	sa.handOverTo(peer)
}

// refusedIKERekey: the peer rekeys the IKE SA we have rekeyed already (a
// collision we finished first, §2.8.2); it gets TEMPORARY_FAILURE (we are
// closing this SA) and keeps ours.
func (sa *ikeSA) refusedIKERekey(inner []wire.Payload) {
	if saP, ok := wire.First[*wire.SA](inner); !ok || len(saP.Proposals) == 0 || saP.Proposals[0].Protocol != wire.ProtoIKE {
		return
	}
	sa.r.stats.inc(IKECollisions)
	sa.logger().Info("IKE SA rekey collision: the peer rekeys an IKE SA we have rekeyed already; refused (TEMPORARY_FAILURE), ours stays")
}
