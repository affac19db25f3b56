package pipeline

import (
	"encoding/binary"

	"github.com/tunterm/tunterm/dataplane/hdr"
	"github.com/tunterm/tunterm/dataplane/port"
	"github.com/tunterm/tunterm/dataplane/table"
)

// prefetchOn switches prefetchSA. Only BenchmarkPipelineMany's paired A/B
// mode (TT_AB=1) turns it off, from the benchmark's one goroutine.
var prefetchOn = true

// preSA is a frame's SA as found by prefetchSA, and the offset of its ESP
// header in the frame.
type preSA struct {
	sa  *table.SA
	off int
}

// prefetchSA reads, for every ESP frame of an AP->corporate batch, the SA
// and the state its decryption will read (the SA's lookup slot, the SA, its
// peer, esp.SA.Prefetch), and the lookup slot, tunnel, cookie and counters
// of the peer's first session (table.Peer.First, the session the decrypted
// packet most likely names), before the batch is processed. With thousands
// of tunnels and traffic spread over them every frame's SA is cold; reading
// them in stages, each stage a loop over the batch whose loads do not
// depend on each other, lets the cache misses of different frames overlap
// instead of coming one after another inside Open. It changes nothing;
// what fromDown later finds is authoritative.
func (w *Worker) prefetchSA(t *table.Tables, in *port.Batch) {
	var h uint64
	pre := &w.pre
	for i := range in.Frames() {
		b := in.F[i].Bytes()
		off := espOffset(b)
		if off == 0 {
			pre[i] = preSA{}
			continue
		}
		pre[i] = preSA{t.SPI.Get(binary.BigEndian.Uint32(b[off:])), off}
	}
	for i := range in.Frames() {
		if sa := pre[i].sa; sa != nil {
			h += uint64(sa.Peer.Owner) + uint64(sa.ESP.SPI())
		}
	}
	for i := range in.Frames() {
		p := &pre[i]
		if sa := p.sa; sa != nil && sa.Peer.Owner == w.ID {
			h += sa.ESP.Prefetch(in.F[i].Bytes()[p.off:])
			if ps := sa.Peer.St; ps != nil {
				h += ps.NextHop.Load()
			}
			if s := sa.Peer.First.Load(); s != nil {
				h += uint64(s.LocalID) + uint64(len(s.LocalCookie))
			}
			continue
		}
		p.sa = nil
	}
	// The session the decrypted packet will name is most likely the
	// peer's first: read its lookup slot, tunnel, cookie and counters.
	for i := range in.Frames() {
		p := &pre[i]
		if p.sa == nil {
			continue
		}
		if s := p.sa.Peer.First.Load(); s != nil {
			if t.SID.Get(s.LocalID) != nil {
				h++
			}
			if s.Tunnel != nil && s.St != nil { // never nil from the programmer; a hint must not panic
				h += uint64(s.Tunnel.Proto) + s.St.RxPackets.Load()
			}
			if len(s.LocalCookie) > 0 {
				h += uint64(s.LocalCookie[0])
			}
		}
		p.sa = nil
	}
	w.hint += h
}

// espOffset returns the offset of the ESP header in an untagged Ethernet
// frame carrying ESP or ESP-in-UDP/4500 in IPv4 or in IPv6 without
// extension headers, or 0. It checks only what it needs to stay inside b.
func espOffset(b []byte) int {
	if len(b) < hdr.EthLen+hdr.IPv6Len+hdr.UDPLen+hdr.ESPHeaderLen {
		return 0 // shorter than any frame worth a prefetch
	}
	var proto uint8
	var off int
	switch binary.BigEndian.Uint16(b[12:14]) {
	case hdr.EtherTypeIPv4:
		proto, off = b[hdr.EthLen+9], hdr.EthLen+int(b[hdr.EthLen]&0x0f)*4
	case hdr.EtherTypeIPv6:
		proto, off = b[hdr.EthLen+6], hdr.EthLen+hdr.IPv6Len
	default:
		return 0
	}
	if off+hdr.UDPLen+hdr.ESPHeaderLen > len(b) {
		return 0
	}
	switch proto {
	case hdr.ProtoESP:
	case hdr.ProtoUDP:
		if binary.BigEndian.Uint16(b[off+2:]) != hdr.PortIKENATT {
			return 0
		}
		off += hdr.UDPLen
	default:
		return 0
	}
	if binary.BigEndian.Uint32(b[off:]) == 0 {
		return 0
	}
	return off
}
