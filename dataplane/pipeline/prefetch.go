package pipeline

import (
	"encoding/binary"
	"unsafe"

	"github.com/tunterm/tunterm/dataplane/hdr"
	"github.com/tunterm/tunterm/dataplane/internal/prefetch"
	"github.com/tunterm/tunterm/dataplane/port"
	"github.com/tunterm/tunterm/dataplane/table"
)

// preSA is a frame's SA as found by prefetchSA, and the offset of its ESP
// header in the frame.
type preSA struct {
	sa  *table.SA
	off int
}

// prefetchSA asks, for every ESP frame of an AP->corporate batch, for
// the state its decryption will read to be brought into the cache: the
// SA's lookup slot and the SA, its peer, the ESP SA's crypto object, State
// and replay-window word (esp.SA.Prefetch, PrefetchWindow), and the lookup
// slot, tunnel, cookie and counters of the peer's first session
// (table.Peer.First, the session the decrypted packet most likely
// names). With thousands of tunnels and traffic spread over them every
// frame's SA is cold. The work goes in stages, each a loop over the batch
// that asks for the lines the next stage reads (prefetch.ForRead, which
// does not wait): a stage's reads then find their lines arrived, and the
// cache misses of all the batch's frames overlap instead of coming one
// after another inside Open, or stalling a loop once the core's reorder
// window is full of waiting loads (performance.md, "the SA lookups
// software-pipelined"). It changes nothing; what fromDown later finds is
// authoritative.
func (w *Worker) prefetchSA(t *table.Tables, in *port.Batch) {
	var h uint64
	pre := &w.pre
	// 1. The headers (asked for by Process): the SPI lookup slots.
	for i := range in.Frames() {
		b := in.F[i].Bytes()
		off := espOffset(b)
		pre[i] = preSA{off: off}
		if off != 0 {
			h += t.SPI.Prefetch(binary.BigEndian.Uint32(b[off:]))
		}
	}
	// 2. The slots: the SAs.
	for i := range in.Frames() {
		if off := pre[i].off; off != 0 {
			sa := t.SPI.Get(binary.BigEndian.Uint32(in.F[i].Bytes()[off:]))
			pre[i].sa = sa
			if sa != nil {
				h += prefetch.ForRead(unsafe.Pointer(sa), unsafe.Sizeof(*sa))
			}
		}
	}
	// 3. The SAs: their peers and ESP SAs.
	for i := range in.Frames() {
		if sa := pre[i].sa; sa != nil {
			h += prefetch.ForRead(unsafe.Pointer(sa.Peer), unsafe.Sizeof(*sa.Peer)) +
				prefetch.ForRead(unsafe.Pointer(sa.ESP), unsafe.Sizeof(*sa.ESP))
		}
	}
	// 4. The peers and ESP SAs, for the SAs this worker owns: the crypto
	// objects and States, the peers' states and first sessions.
	for i := range in.Frames() {
		p := &pre[i]
		sa := p.sa
		if sa == nil {
			continue
		}
		if sa.Peer.Owner != w.ID {
			p.sa = nil
			continue
		}
		h += sa.ESP.Prefetch()
		if ps := sa.Peer.St; ps != nil {
			h += prefetch.ForRead(unsafe.Pointer(ps), unsafe.Sizeof(*ps))
		}
		if s := sa.Peer.First.Load(); s != nil {
			h += prefetch.ForRead(unsafe.Pointer(s), unsafe.Sizeof(*s))
		}
	}
	// 5. The States and sessions: the replay-window words; the sessions'
	// lookup slots, tunnels, counters and cookies.
	for i := range in.Frames() {
		p := &pre[i]
		sa := p.sa
		if sa == nil {
			continue
		}
		h += sa.ESP.PrefetchWindow(in.F[i].Bytes()[p.off:])
		if s := sa.Peer.First.Load(); s != nil {
			h += t.SID.Prefetch(s.LocalID)
			if s.Tunnel != nil && s.St != nil { // never nil from the programmer; a hint must not panic
				h += prefetch.ForRead(unsafe.Pointer(&s.Tunnel.Native), tunnelTail) +
					prefetch.ForRead(unsafe.Pointer(s.St), unsafe.Sizeof(*s.St))
			}
			if len(s.LocalCookie) > 0 {
				h += prefetch.ForRead(unsafe.Pointer(&s.LocalCookie[0]), 1)
			}
		}
		p.sa = nil
	}
	w.hint += h
}

// tunnelTail is the size of what follows a Tunnel's VLAN set (Native,
// Proto, MTU), which every frame of its sessions reads.
const tunnelTail = unsafe.Sizeof(table.Tunnel{}) - unsafe.Offsetof(table.Tunnel{}.Native)

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
