package hdr_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/tunterm/tunterm/dataplane/hdr"
)

// Raw extension headers, laid out by hand from RFC 8200 §4 where gopacket
// has no encoder.

// routing0 is a Type 0 Routing header (RFC 8200 §4.4, deprecated by RFC
// 5095 but still the layout gopacket decodes) with n addresses:
//
//	| Next Header | Hdr Ext Len=2n | Routing Type=0 | Segments Left=n |
//	|                          Reserved                              |
//	|                     Address[1..n] (16 bytes each)              |
func routing0(next uint8, n int) gopacket.Payload {
	b := []byte{next, uint8(2 * n), 0, uint8(n), 0, 0, 0, 0}
	for i := 0; i < n; i++ {
		b = append(b, net.ParseIP("2001:db8:f::1").To16()...)
		b[len(b)-1] = byte(i)
	}
	return b
}

// srh is a Segment Routing header (Routing Type 4, RFC 8754 §2) with one
// segment; gopacket cannot decode it.
func srh(next uint8) gopacket.Payload {
	b := []byte{next, 2, 4, 0, 0, 0, 0, 0}
	return append(b, net.ParseIP("2001:db8:5::1").To16()...)
}

// fragment is a Fragment header (RFC 8200 §4.5):
//
//	| Next Header | Reserved | Fragment Offset (13) |Res|M|
//	|                    Identification                    |
func fragment(next uint8, offset uint16, m bool, id uint32) gopacket.Payload {
	b := make([]byte, 8)
	b[0] = next
	v := offset << 3
	if m {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[2:], v)
	binary.BigEndian.PutUint32(b[4:], id)
	return b
}

// opts is a Hop-by-Hop or Destination Options header (RFC 8200 §4.3, §4.6)
// of 8*(extLen+1) bytes holding one PadN option.
func opts(next uint8, extLen uint8) gopacket.Payload {
	b := make([]byte, 8*(int(extLen)+1))
	b[0], b[1] = next, extLen
	b[2], b[3] = 1, uint8(len(b)-4) // PadN
	return b
}

func hopByHop(next layers.IPProtocol) *layers.IPv6HopByHop {
	// Router Alert (RFC 2711) and a 2-byte PadN fill the 8-byte header
	// exactly (gopacket v1.1.19 miscomputes trailing padding itself).
	h := &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{
		{OptionType: 5, OptionLength: 2, OptionData: []byte{0, 0}, OptionAlignment: [2]uint8{2, 0}},
		{OptionType: 1, OptionLength: 0},
	}}
	h.NextHeader = next
	return h
}

// destOpts is a gopacket Destination Options header with one option of
// dataLen bytes; dataLen+4 must be a multiple of 8.
func destOpts(next layers.IPProtocol, dataLen int) *layers.IPv6Destination {
	d := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{{
		OptionType: 0x1e, OptionLength: uint8(dataLen), OptionData: payload(dataLen), // RFC 3692 experiment
	}}}
	d.NextHeader = next
	return d
}

// ipv6Packet builds a fixed IPv6 header with next header next in front of
// the given layers.
func ipv6Packet(t testing.TB, next uint8, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocol(next), SrcIP: ip6Src, DstIP: ip6Dst}
	return serialize(t, append([]gopacket.SerializableLayer{ip}, ls...)...)
}

func udpLayer(t testing.TB) []gopacket.SerializableLayer {
	u := &layers.UDP{SrcPort: 1701, DstPort: 1701}
	if err := u.SetNetworkLayerForChecksum(&layers.IPv6{SrcIP: ip6Src, DstIP: ip6Dst}); err != nil {
		t.Fatal(err)
	}
	return []gopacket.SerializableLayer{u, gopacket.Payload(payload(20))}
}

// gopacketUpper walks gopacket's decode of pkt the way UpperLayer should:
// the offset after the last extension header, its Next Header, and whether
// a Fragment header is a real fragment.
func gopacketUpper(t *testing.T, pkt []byte) (proto uint8, off int, frag bool) {
	t.Helper()
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv6, gopacket.Default)
	for _, l := range p.Layers() {
		switch l := l.(type) {
		case *layers.IPv6:
			proto, off = uint8(l.NextHeader), len(l.Contents)
		case *layers.IPv6HopByHop:
			proto, off = uint8(l.NextHeader), off+len(l.Contents)
		case *layers.IPv6Destination:
			proto, off = uint8(l.NextHeader), off+len(l.Contents)
		case *layers.IPv6Routing:
			proto, off = uint8(l.NextHeader), off+len(l.Contents)
		case *layers.IPv6Fragment:
			proto, off = uint8(l.NextHeader), off+len(l.Contents)
			frag = frag || l.FragmentOffset != 0 || l.MoreFragments
		}
	}
	// gopacket cannot decode some upper layers (L2TPv3 over IP); that is
	// fine as long as it walked the whole extension chain.
	switch proto {
	case hdr.ProtoHopByHop, hdr.ProtoRouting, hdr.ProtoFragment, hdr.ProtoDstOpts:
		if e := p.ErrorLayer(); e != nil && !frag {
			t.Fatalf("gopacket cannot decode the extension headers of %x: %v", pkt, e.Error())
		}
	}
	return proto, off, frag
}

func TestIPv6UpperLayer(t *testing.T) {
	setPL := func(b []byte, n int) []byte { binary.BigEndian.PutUint16(b[4:], uint16(n)); return b }
	var chain15, chain16 []gopacket.SerializableLayer
	for i := 0; i < 15; i++ {
		chain15 = append(chain15, opts(hdr.ProtoDstOpts, 0))
	}
	chain16 = append(append(chain16, chain15...), opts(hdr.ProtoDstOpts, 0))
	chain15[14] = opts(hdr.ProtoUDP, 0)
	chain16[15] = opts(hdr.ProtoUDP, 0)
	tests := []struct {
		name      string
		pkt       func(*testing.T) []byte
		gopacket  bool // cross-check with gopacket's decode
		wantProto uint8
		wantOff   int
		wantFrag  bool
		wantOK    bool
	}{
		{name: "UDP, no extension headers", gopacket: true, wantProto: hdr.ProtoUDP, wantOff: 40, wantOK: true,
			pkt: func(t *testing.T) []byte { return ipv6Packet(t, hdr.ProtoUDP, udpLayer(t)...) }},
		{name: "ESP, no extension headers", gopacket: true, wantProto: hdr.ProtoESP, wantOff: 40, wantOK: true,
			pkt: func(t *testing.T) []byte { return ipv6Packet(t, hdr.ProtoESP, gopacket.Payload(payload(40))) }},
		{name: "Hop-by-Hop (router alert) -> UDP", gopacket: true, wantProto: hdr.ProtoUDP, wantOff: 48, wantOK: true,
			pkt: func(t *testing.T) []byte {
				return ipv6Packet(t, hdr.ProtoHopByHop, append([]gopacket.SerializableLayer{hopByHop(layers.IPProtocolUDP)}, udpLayer(t)...)...)
			}},
		{name: "Hop-by-Hop -> Destination Options (16 bytes) -> UDP", gopacket: true, wantProto: hdr.ProtoUDP, wantOff: 64, wantOK: true,
			pkt: func(t *testing.T) []byte {
				return ipv6Packet(t, hdr.ProtoHopByHop, append([]gopacket.SerializableLayer{
					hopByHop(layers.IPProtocolIPv6Destination), destOpts(layers.IPProtocolUDP, 12)}, udpLayer(t)...)...)
			}},
		{name: "Destination Options (gopacket) -> L2TP", gopacket: true, wantProto: hdr.ProtoL2TP, wantOff: 48, wantOK: true,
			pkt: func(t *testing.T) []byte {
				return ipv6Packet(t, hdr.ProtoDstOpts, destOpts(115, 4), gopacket.Payload(payload(24)))
			}},
		{name: "Routing type 0 (one address) -> ESP", gopacket: true, wantProto: hdr.ProtoESP, wantOff: 64, wantOK: true,
			pkt: func(t *testing.T) []byte {
				return ipv6Packet(t, hdr.ProtoRouting, routing0(hdr.ProtoESP, 1), gopacket.Payload(payload(32)))
			}},
		{name: "Routing type 0 (three addresses) -> UDP", gopacket: true, wantProto: hdr.ProtoUDP, wantOff: 96, wantOK: true,
			pkt: func(t *testing.T) []byte {
				return ipv6Packet(t, hdr.ProtoRouting, append([]gopacket.SerializableLayer{routing0(hdr.ProtoUDP, 3)}, udpLayer(t)...)...)
			}},
		{name: "Segment Routing header (type 4) -> ESP", wantProto: hdr.ProtoESP, wantOff: 64, wantOK: true,
			pkt: func(t *testing.T) []byte {
				return ipv6Packet(t, hdr.ProtoRouting, srh(hdr.ProtoESP), gopacket.Payload(payload(32)))
			}},
		{name: "HBH -> Routing -> atomic Fragment -> Destination Options -> ESP", wantProto: hdr.ProtoESP, wantOff: 96, wantOK: true,
			pkt: func(t *testing.T) []byte {
				return ipv6Packet(t, hdr.ProtoHopByHop, hopByHop(layers.IPProtocolIPv6Routing), routing0(hdr.ProtoFragment, 1),
					fragment(hdr.ProtoDstOpts, 0, false, 1), opts(hdr.ProtoESP, 1), gopacket.Payload(payload(32)))
			}},
		{name: "atomic fragment (offset 0, M=0) -> UDP is not a fragment", gopacket: true, wantProto: hdr.ProtoUDP, wantOff: 48, wantOK: true,
			pkt: func(t *testing.T) []byte {
				return ipv6Packet(t, hdr.ProtoFragment, append([]gopacket.SerializableLayer{fragment(hdr.ProtoUDP, 0, false, 0xdeadbeef)}, udpLayer(t)...)...)
			}},
		{name: "atomic fragment with reserved bits set", gopacket: true, wantProto: hdr.ProtoUDP, wantOff: 48, wantOK: true,
			pkt: func(t *testing.T) []byte {
				f := fragment(hdr.ProtoUDP, 0, false, 7)
				f[1], f[3] = 0xff, 0x06 // Reserved and Res are ignored on receipt
				return ipv6Packet(t, hdr.ProtoFragment, append([]gopacket.SerializableLayer{f}, udpLayer(t)...)...)
			}},
		{name: "first fragment (offset 0, M=1) -> UDP", gopacket: true, wantProto: hdr.ProtoUDP, wantOff: 48, wantFrag: true, wantOK: true,
			pkt: func(t *testing.T) []byte {
				return ipv6Packet(t, hdr.ProtoFragment, append([]gopacket.SerializableLayer{fragment(hdr.ProtoUDP, 0, true, 1)}, udpLayer(t)...)...)
			}},
		{name: "middle fragment (offset 185, M=1) -> ESP", gopacket: true, wantProto: hdr.ProtoESP, wantOff: 48, wantFrag: true, wantOK: true,
			pkt: func(t *testing.T) []byte {
				return ipv6Packet(t, hdr.ProtoFragment, fragment(hdr.ProtoESP, 185, true, 1), gopacket.Payload(payload(64)))
			}},
		{name: "last fragment (offset 1, M=0) -> L2TP", gopacket: true, wantProto: hdr.ProtoL2TP, wantOff: 48, wantFrag: true, wantOK: true,
			pkt: func(t *testing.T) []byte {
				return ipv6Packet(t, hdr.ProtoFragment, fragment(hdr.ProtoL2TP, 1, false, 1), gopacket.Payload(payload(64)))
			}},
		{name: "max fragment offset 8191", gopacket: true, wantProto: hdr.ProtoUDP, wantOff: 48, wantFrag: true, wantOK: true,
			pkt: func(t *testing.T) []byte {
				return ipv6Packet(t, hdr.ProtoFragment, fragment(hdr.ProtoUDP, 8191, false, 1), gopacket.Payload(payload(16)))
			}},
		{name: "HBH -> first fragment -> Destination Options -> ESP", wantProto: hdr.ProtoESP, wantOff: 64, wantFrag: true, wantOK: true,
			pkt: func(t *testing.T) []byte {
				return ipv6Packet(t, hdr.ProtoHopByHop, hopByHop(layers.IPProtocolIPv6Fragment), fragment(hdr.ProtoDstOpts, 0, true, 9),
					opts(hdr.ProtoESP, 0), gopacket.Payload(payload(16)))
			}},
		{name: "non-first fragment of a packet whose fragmentable part starts with Destination Options",
			wantProto: hdr.ProtoDstOpts, wantOff: 48, wantFrag: true, wantOK: true,
			pkt: func(t *testing.T) []byte {
				// The fragment data is the middle of the original payload, not a header: 0x11 0xff reads as Hdr Ext Len 255.
				return ipv6Packet(t, hdr.ProtoFragment, fragment(hdr.ProtoDstOpts, 100, true, 1), gopacket.Payload(bytes.Repeat([]byte{0x11, 0xff}, 16)))
			}},
		{name: "No Next Header", gopacket: true, wantProto: hdr.ProtoNoNext, wantOff: 40, wantOK: true,
			pkt: func(t *testing.T) []byte { return ipv6Packet(t, hdr.ProtoNoNext, gopacket.Payload(payload(8))) }},
		{name: "Destination Options -> No Next Header", wantProto: hdr.ProtoNoNext, wantOff: 48, wantOK: true,
			pkt: func(t *testing.T) []byte { return ipv6Packet(t, hdr.ProtoDstOpts, opts(hdr.ProtoNoNext, 0)) }},
		{name: "AH ends the walk", wantProto: hdr.ProtoAH, wantOff: 40, wantOK: true,
			pkt: func(t *testing.T) []byte { return ipv6Packet(t, hdr.ProtoAH, gopacket.Payload(payload(24))) }},
		{name: "15 Destination Options headers -> UDP", gopacket: true, wantProto: hdr.ProtoUDP, wantOff: 40 + 15*8, wantOK: true,
			pkt: func(t *testing.T) []byte {
				return ipv6Packet(t, hdr.ProtoDstOpts, append(append([]gopacket.SerializableLayer(nil), chain15...), udpLayer(t)...)...)
			}},
		{name: "16 extension headers exceed the walk bound", wantProto: hdr.ProtoUDP, wantOff: 40 + 16*8, wantOK: false,
			pkt: func(t *testing.T) []byte {
				return ipv6Packet(t, hdr.ProtoDstOpts, append(append([]gopacket.SerializableLayer(nil), chain16...), udpLayer(t)...)...)
			}},

		// Truncated chains: the packet is Valid but the Payload Length ends
		// inside an extension header.
		{name: "Hop-by-Hop, payload length 0", wantOK: false,
			pkt: func(t *testing.T) []byte { return setPL(ipv6Packet(t, hdr.ProtoHopByHop, opts(hdr.ProtoUDP, 0)), 0) }},
		{name: "Hop-by-Hop, payload length 7", wantOK: false,
			pkt: func(t *testing.T) []byte { return setPL(ipv6Packet(t, hdr.ProtoHopByHop, opts(hdr.ProtoUDP, 0)), 7) }},
		{name: "16-byte Destination Options, payload length 15", wantOK: false,
			pkt: func(t *testing.T) []byte { return setPL(ipv6Packet(t, hdr.ProtoDstOpts, opts(hdr.ProtoUDP, 1)), 15) }},
		{name: "Destination Options claims 2048 bytes", wantOK: false,
			pkt: func(t *testing.T) []byte {
				o := opts(hdr.ProtoUDP, 0)
				o[1] = 255
				return ipv6Packet(t, hdr.ProtoDstOpts, o, gopacket.Payload(payload(100)))
			}},
		{name: "Routing header cut by payload length, bytes present beyond it", wantOK: false,
			pkt: func(t *testing.T) []byte {
				return setPL(ipv6Packet(t, hdr.ProtoRouting, routing0(hdr.ProtoUDP, 1), gopacket.Payload(payload(16))), 16)
			}},
		{name: "Fragment header, payload length 7", wantOK: false,
			pkt: func(t *testing.T) []byte {
				return setPL(ipv6Packet(t, hdr.ProtoFragment, fragment(hdr.ProtoUDP, 0, false, 1)), 7)
			}},
		{name: "Hop-by-Hop complete, Routing header truncated", wantOK: false,
			pkt: func(t *testing.T) []byte {
				return ipv6Packet(t, hdr.ProtoHopByHop, opts(hdr.ProtoRouting, 0), routing0(hdr.ProtoUDP, 1)[:20])
			}},
		{name: "HBH -> Fragment truncated", wantOK: false,
			pkt: func(t *testing.T) []byte {
				return ipv6Packet(t, hdr.ProtoHopByHop, opts(hdr.ProtoFragment, 0), fragment(hdr.ProtoUDP, 0, false, 1)[:4])
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkt := tc.pkt(t)
			b := hdr.IPv6(pkt)
			if !b.Valid() {
				t.Fatalf("IPv6(%x).Valid() = false, want true", pkt)
			}
			if tc.gopacket {
				gp, goff, gfrag := gopacketUpper(t, pkt)
				if gp != tc.wantProto || goff != tc.wantOff || gfrag != tc.wantFrag {
					t.Fatalf("case disagrees with gopacket: gopacket walks %x to proto %d off %d frag %v", pkt, gp, goff, gfrag)
				}
			}
			proto, off, frag, ok := b.UpperLayer()
			if ok != tc.wantOK || (tc.wantOK && (proto != tc.wantProto || off != tc.wantOff || frag != tc.wantFrag)) {
				t.Errorf("IPv6(%x).UpperLayer() = %d, %d, %v, %v, want %d, %d, %v, %v",
					pkt, proto, off, frag, ok, tc.wantProto, tc.wantOff, tc.wantFrag, tc.wantOK)
			}
			if end := hdr.IPv6Len + b.PayloadLen(); off < hdr.IPv6Len || off > end {
				t.Errorf("IPv6(%x).UpperLayer() offset %d outside [40, %d]", pkt, off, end)
			}
		})
	}
}

func TestIPv6Valid(t *testing.T) {
	base := func(t *testing.T) []byte { return ipv6Packet(t, hdr.ProtoUDP, udpLayer(t)...) } // 68 bytes
	setPL := func(b []byte, n int) []byte { binary.BigEndian.PutUint16(b[4:], uint16(n)); return b }
	tests := []struct {
		name string
		pkt  func(*testing.T) []byte
		want bool
	}{
		{"gopacket UDP packet", base, true},
		{"trailing bytes beyond payload length", func(t *testing.T) []byte { return append(base(t), 1, 2, 3) }, true},
		{"header only, payload length 0", func(t *testing.T) []byte { return setPL(base(t)[:40], 0) }, true},
		{"payload length 0, bytes follow", func(t *testing.T) []byte { return setPL(base(t), 0) }, true},
		{"empty", func(*testing.T) []byte { return nil }, false},
		{"39 bytes", func(t *testing.T) []byte { return setPL(base(t)[:39], 0) }, false},
		{"version 4", func(t *testing.T) []byte { b := base(t); b[0] = 0x45; return b }, false},
		{"version 7", func(t *testing.T) []byte { b := base(t); b[0] = 0x70; return b }, false},
		{"payload length one past the buffer", func(t *testing.T) []byte { b := base(t); return setPL(b, len(b)-40+1) }, false},
		{"payload length 65535", func(t *testing.T) []byte { return setPL(base(t), 65535) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.pkt(t)
			if got := hdr.IPv6(b).Valid(); got != tc.want {
				t.Errorf("IPv6(%x).Valid() = %v, want %v", b, got, tc.want)
			}
		})
	}
}

func TestIPv6Accessors(t *testing.T) {
	ip := &layers.IPv6{Version: 6, TrafficClass: 0xb8, FlowLabel: 0xabcde, HopLimit: 3, NextHeader: layers.IPProtocolESP,
		SrcIP: net.ParseIP("fe80::1"), DstIP: net.ParseIP("ff02::1:ff00:1")}
	pkt := serialize(t, ip, gopacket.Payload(payload(100)))
	g := gopacket.NewPacket(pkt, layers.LayerTypeIPv6, gopacket.Default).Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	b := hdr.IPv6(pkt)
	if !b.Valid() {
		t.Fatalf("IPv6(%x).Valid() = false", pkt)
	}
	if got, want := b.PayloadLen(), int(g.Length); got != want {
		t.Errorf("IPv6(%x).PayloadLen() = %d, want %d", pkt, got, want)
	}
	if got, want := b.NextHeader(), uint8(g.NextHeader); got != want {
		t.Errorf("IPv6(%x).NextHeader() = %d, want %d", pkt, got, want)
	}
	if got, want := b.HopLimit(), g.HopLimit; got != want {
		t.Errorf("IPv6(%x).HopLimit() = %d, want %d", pkt, got, want)
	}
	if got, want := b.Src(), []byte(g.SrcIP); !bytes.Equal(got, want) || cap(got) != 16 {
		t.Errorf("IPv6(%x).Src() = %x (cap %d), want %x", pkt, got, cap(got), want)
	}
	if got, want := b.Dst(), []byte(g.DstIP); !bytes.Equal(got, want) || cap(got) != 16 {
		t.Errorf("IPv6(%x).Dst() = %x (cap %d), want %x", pkt, got, cap(got), want)
	}
}

func TestPutIPv6(t *testing.T) {
	tests := []struct {
		name       string
		src, dst   string
		next       uint8
		payloadLen int
		hopLimit   uint8
	}{
		{"ESP", "2001:db8::1", "2001:db8::2", hdr.ProtoESP, 120, 64},
		{"L2TP, hop limit 255", "2001:db8:1::1", "2001:db8:ffff::fffe", hdr.ProtoL2TP, 1400, 255},
		{"UDP, hop limit 1", "fe80::1", "ff02::2", hdr.ProtoUDP, 8, 1},
		{"no payload", "::", "::1", hdr.ProtoNoNext, 0, 0},
		{"max payload length", "2001:db8::1", "2001:db8::2", hdr.ProtoUDP, 65535, 64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := net.ParseIP(tc.src).To16(), net.ParseIP(tc.dst).To16()
			ref := &layers.IPv6{Version: 6, Length: uint16(tc.payloadLen), NextHeader: layers.IPProtocol(tc.next),
				HopLimit: tc.hopLimit, SrcIP: src, DstIP: dst}
			buf := gopacket.NewSerializeBuffer()
			if err := ref.SerializeTo(buf, gopacket.SerializeOptions{}); err != nil {
				t.Fatal(err)
			}
			want := buf.Bytes()

			pkt := bytes.Repeat([]byte{0xa5}, 40+tc.payloadLen)
			hdr.PutIPv6(pkt, src, dst, tc.next, tc.payloadLen, tc.hopLimit)
			if !bytes.Equal(pkt[:40], want) {
				t.Errorf("PutIPv6(%s, %s, %d, %d, %d) = %x, want %x", tc.src, tc.dst, tc.next, tc.payloadLen, tc.hopLimit, pkt[:40], want)
			}
			if !bytes.Equal(pkt[40:], bytes.Repeat([]byte{0xa5}, tc.payloadLen)) {
				t.Errorf("PutIPv6 wrote beyond 40 bytes")
			}
			if tc.payloadLen > 0 { // gopacket refuses payload length 0 without a jumbogram option
				g, ok := gopacket.NewPacket(pkt, layers.LayerTypeIPv6, gopacket.Default).Layer(layers.LayerTypeIPv6).(*layers.IPv6)
				if !ok || g.Version != 6 || g.TrafficClass != 0 || g.FlowLabel != 0 || int(g.Length) != tc.payloadLen ||
					uint8(g.NextHeader) != tc.next || g.HopLimit != tc.hopLimit || !g.SrcIP.Equal(src) || !g.DstIP.Equal(dst) {
					t.Errorf("gopacket decodes PutIPv6 output %x as %+v", pkt[:40], g)
				}
			}
			if !hdr.IPv6(pkt).Valid() {
				t.Errorf("IPv6(%x).Valid() = false after PutIPv6", pkt[:40])
			}
		})
	}
}
