package ike

import (
	"encoding/binary"
	"time"

	"github.com/tunterm/tunterm/control/ike/wire"
)

// handleInformational answers an INFORMATIONAL request (RFC 7296 §1.4): an
// empty one is a liveness check; Delete payloads delete the IKE SA (after
// the response) or CHILD_SAs, answered with the SPIs of our paired SAs
// (§1.4.1).
func (sa *ikeSA) handleInformational(inner []wire.Payload) []wire.Payload {
	var ours []uint32
	for _, p := range inner {
		d, ok := p.(*wire.Delete)
		if !ok {
			continue
		}
		sa.r.stats.inc(DeletesRx)
		switch d.Protocol {
		case wire.ProtoIKE:
			sa.logger().Info("IKE SA deleted by the peer")
			if sa.peerRekey != nil { // §2.25.2: forget our rekey, the peer's stands
				sa.ikeRekeyAbandoned("the peer deleted the old IKE SA")
			}
			sa.dropAfter = true
		case wire.ProtoESP, wire.ProtoAH:
			for _, b := range d.SPIs {
				if len(b) != 4 {
					continue
				}
				ch := sa.childByOut(binary.BigEndian.Uint32(b))
				if ch == nil {
					continue
				}
				ours = append(ours, ch.inSPI)
				sa.childDeletedByPeer(ch)
			}
		}
	}
	if sa.dropAfter {
		return nil
	}
	if len(ours) > 0 {
		return []wire.Payload{wire.NewDeleteESP(ours...)}
	}
	return nil
}

// childDeletedByPeer: the peer deleted a CHILD_SA (it no longer accepts
// our packets on it). Its replacement, if it was rekeyed, takes over the
// outbound direction now; its inbound side decrypts for the grace window.
func (sa *ikeSA) childDeletedByPeer(ch *child) {
	sa.logger().Info("CHILD_SA deleted by the peer", "spi_in", spi32(ch.inSPI), "spi_out", spi32(ch.outSPI))
	if n := ch.replacedBy; n != nil && n.state == chActive {
		n.activateAt = time.Time{}
		if err := sa.r.dp.ActivateOut(n.inSPI); err != nil {
			sa.logger().Error("IKE: switching the outbound SA failed", "err", err)
		}
	}
	sa.retire(ch)
}
