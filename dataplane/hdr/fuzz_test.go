package hdr_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/tunterm/tunterm/dataplane/hdr"
)

// Fuzz targets: no panic, every offset and slice inside the input, and the
// results agree with gopacket or with the header bytes themselves.

func FuzzParseEth(f *testing.F) {
	for _, tc := range ethCases(f) {
		frame := serialize(f, tc.ls...)
		f.Add(frame)
		f.Add(frame[:tc.want.HdrLen])
		f.Add(frame[:tc.want.HdrLen-1])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, ok := hdr.ParseEth(data)
		if !ok {
			// A 22-byte frame holds the largest header ParseEth reads.
			if len(data) >= 22 {
				t.Fatalf("ParseEth(%x) = %+v, false, want ok for %d bytes", data, e, len(data))
			}
			return
		}
		if e.Tags > 2 || e.HdrLen != hdr.EthLen+hdr.VLANLen*int(e.Tags) || e.HdrLen > len(data) {
			t.Fatalf("ParseEth(%x) = %+v: header length outside the frame or inconsistent with tags", data, e)
		}
		if et := binary.BigEndian.Uint16(data[e.HdrLen-2:]); e.EtherType != et {
			t.Fatalf("ParseEth(%x) EtherType = %#04x, want the bytes before the payload %#04x", data, e.EtherType, et)
		}
		if e.VLAN > 0xfff || e.InnerVLAN > 0xfff || e.PCP > 7 || (e.Tags == 0 && (e.VLAN != 0 || e.PCP != 0 || e.QinQ)) ||
			(e.Tags < 2 && e.InnerVLAN != 0) {
			t.Fatalf("ParseEth(%x) = %+v: tag fields out of range", data, e)
		}
		if gp := gopacketEth(t, data); gp != e {
			t.Fatalf("ParseEth(%x) = %+v, want gopacket's %+v", data, e, gp)
		}
		// A longer frame parses the same.
		if e2, ok2 := hdr.ParseEth(append(append([]byte(nil), data...), 0x81, 0x00)); !ok2 || e2 != e {
			t.Fatalf("ParseEth(%x + 8100) = %+v, %v, want %+v", data, e2, ok2, e)
		}

		// InsertVLAN then RemoveVLAN restores the frame.
		vid := binary.BigEndian.Uint16(data[len(data)-2:]) & 0x0fff
		buf := make([]byte, hdr.VLANLen+len(data))
		copy(buf[hdr.VLANLen:], data)
		off := hdr.InsertVLAN(buf, hdr.VLANLen, vid)
		ins, ok := hdr.ParseEth(buf[off:])
		if off != 0 || !ok || ins.VLAN != vid || ins.PCP != 0 || ins.QinQ || ins.Tags == 0 {
			t.Fatalf("ParseEth(InsertVLAN(%x, %d)) = %d, %+v, %v", data, vid, off, ins, ok)
		}
		if off = hdr.RemoveVLAN(buf, off); off != hdr.VLANLen || !bytes.Equal(buf[off:], data) {
			t.Fatalf("RemoveVLAN(InsertVLAN(%x, %d)) = %x", data, vid, buf[off:])
		}
	})
}

func FuzzIPv4(f *testing.F) {
	f.Add(udp4(f, 0))
	f.Add(udp4(f, 33))
	f.Add(serialize(f, &layers.IPv4{Version: 4, TTL: 1, Protocol: layers.IPProtocolUDP, SrcIP: ip4Src, DstIP: ip4Dst,
		Flags: layers.IPv4MoreFragments, FragOffset: 3,
		Options: []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}}, gopacket.Payload(payload(9))))
	f.Add([]byte{0x4f, 0, 0, 60})
	f.Fuzz(func(t *testing.T, data []byte) {
		b := hdr.IPv4(data)
		valid := b.Valid()
		want := len(data) >= 20 && data[0]>>4 == 4 && int(data[0]&0xf)*4 >= 20 &&
			int(data[0]&0xf)*4 <= int(binary.BigEndian.Uint16(data[2:])) && int(binary.BigEndian.Uint16(data[2:])) <= len(data)
		if valid != want {
			t.Fatalf("IPv4(%x).Valid() = %v, want %v", data, valid, want)
		}
		if !valid {
			return
		}
		hl, tl := b.HeaderLen(), b.TotalLen()
		if hl < 20 || hl > tl || tl > len(data) || len(b.Payload()) != tl-hl || len(b.Src()) != 4 || len(b.Dst()) != 4 {
			t.Fatalf("IPv4(%x): header %d total %d payload %d outside the packet", data, hl, tl, len(b.Payload()))
		}
		if got, want := b.ChecksumOK(), refChecksum(data[:hl], 0) == 0; got != want {
			t.Fatalf("IPv4(%x).ChecksumOK() = %v, want %v", data, got, want)
		}
		p := gopacket.NewPacket(data, layers.LayerTypeIPv4, gopacket.Default)
		if g, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
			frag := g.Flags&layers.IPv4MoreFragments != 0 || g.FragOffset != 0
			if int(g.IHL)*4 != hl || int(g.Length) != tl || uint8(g.Protocol) != b.Protocol() || frag != b.IsFragment() || g.TTL != b.TTL() {
				t.Fatalf("IPv4(%x) = hl %d tl %d proto %d frag %v, gopacket reads %d %d %d %v",
					data, hl, tl, b.Protocol(), b.IsFragment(), g.IHL*4, g.Length, g.Protocol, frag)
			}
		}
	})
}

// refUpper is an independent, recursive reading of RFC 8200 §4 for
// FuzzIPv6UpperLayer, bounded like UpperLayer to 15 extension headers.
func refUpper(b []byte, end int, proto uint8, off, depth int, frag bool) (uint8, int, bool, bool) {
	switch proto {
	case hdr.ProtoHopByHop, hdr.ProtoRouting, hdr.ProtoDstOpts, hdr.ProtoFragment:
	default:
		return proto, off, frag, true
	}
	if depth == 16 || end-off < 8 {
		return proto, off, frag, false
	}
	n := 8
	if proto == hdr.ProtoFragment {
		offset, m := binary.BigEndian.Uint16(b[off+2:])>>3, b[off+3]&1
		frag = frag || offset != 0 || m != 0
	} else {
		n = (int(b[off+1]) + 1) * 8
	}
	if end-off < n {
		return proto, off, frag, false
	}
	if proto == hdr.ProtoFragment && binary.BigEndian.Uint16(b[off+2:])>>3 != 0 {
		// Non-first fragment: fragment data follows, not headers (RFC 8200 §4.5).
		return b[off], off + n, true, true
	}
	return refUpper(b, end, b[off], off+n, depth+1, frag)
}

func FuzzIPv6UpperLayer(f *testing.F) {
	f.Add(udp6(f, 4))
	f.Add(ipv6Packet(f, hdr.ProtoHopByHop, hopByHop(layers.IPProtocolIPv6Routing), routing0(hdr.ProtoFragment, 1),
		fragment(hdr.ProtoDstOpts, 0, false, 1), opts(hdr.ProtoESP, 1), gopacket.Payload(payload(8))))
	f.Add(ipv6Packet(f, hdr.ProtoFragment, fragment(hdr.ProtoUDP, 9, true, 1), gopacket.Payload(payload(8))))
	f.Add(ipv6Packet(f, hdr.ProtoDstOpts, opts(hdr.ProtoDstOpts, 0), opts(hdr.ProtoDstOpts, 0), opts(hdr.ProtoUDP, 0)))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := hdr.IPv6(data)
		valid := b.Valid()
		if want := len(data) >= 40 && data[0]>>4 == 6 && 40+int(binary.BigEndian.Uint16(data[4:])) <= len(data); valid != want {
			t.Fatalf("IPv6(%x).Valid() = %v, want %v", data, valid, want)
		}
		if !valid {
			return
		}
		end := hdr.IPv6Len + b.PayloadLen()
		proto, off, frag, ok := b.UpperLayer()
		if off < hdr.IPv6Len || off > end {
			t.Fatalf("IPv6(%x).UpperLayer() offset %d outside [40, %d]", data, off, end)
		}
		rp, roff, rfrag, rok := refUpper(data, end, data[6], hdr.IPv6Len, 0, false)
		if ok != rok || (ok && (proto != rp || off != roff || frag != rfrag)) {
			t.Fatalf("IPv6(%x).UpperLayer() = %d, %d, %v, %v, want %d, %d, %v, %v", data, proto, off, frag, ok, rp, roff, rfrag, rok)
		}
	})
}

func FuzzUDP(f *testing.F) {
	f.Add([]byte{0x11, 0x94, 0x11, 0x94, 0x00, 0x0a, 0x00, 0x00, 0xff, 0xff}, []byte{198, 18, 0, 1, 198, 18, 0, 2})
	f.Add(udp6(f, 3)[40:], append(append([]byte(nil), ip6Src.To16()...), ip6Dst.To16()...))
	f.Fuzz(func(t *testing.T, data, addrs []byte) {
		u := hdr.UDP(data)
		valid := u.Valid()
		if want := len(data) >= 8 && int(binary.BigEndian.Uint16(data[4:])) >= 8 && int(binary.BigEndian.Uint16(data[4:])) <= len(data); valid != want {
			t.Fatalf("UDP(%x).Valid() = %v, want %v", data, valid, want)
		}
		if !valid {
			return
		}
		if l := u.Length(); l < 8 || l > len(data) || len(u.Payload()) != l-8 {
			t.Fatalf("UDP(%x): length %d, payload %d bytes", data, l, len(u.Payload()))
		}
		_, _, _ = u.SrcPort(), u.DstPort(), u.Checksum()
		alen := 4
		if len(addrs) >= 32 {
			alen = 16
		} else if len(addrs) < 8 {
			return
		}
		src, dst := addrs[:alen], addrs[alen:2*alen]
		d := append([]byte(nil), data[:u.Length()]...)
		hdr.SetUDPChecksum(d, src, dst)
		if c := hdr.UDP(d).Checksum(); c == 0 {
			t.Fatalf("SetUDPChecksum(%x, %x, %x) wrote 0", data, src, dst)
		}
		if c := refChecksum(append(pseudo(src, dst, len(d)), d...), 0); c != 0 {
			t.Fatalf("SetUDPChecksum(%x, %x, %x) = %x: receiver's checksum %#04x, want 0", data, src, dst, d, c)
		}
	})
}

func FuzzL2TP(f *testing.F) {
	for _, tc := range l2tpPutCases {
		f.Add(tc.wantIP, uint8(len(tc.cookie)), tc.sublayer, tc.seqValid)
		f.Add(tc.wantUDP, uint8(len(tc.cookie)), tc.sublayer, tc.seqValid)
	}
	f.Add([]byte{0xc8, 0x03}, uint8(0), false, false)
	f.Fuzz(func(t *testing.T, data []byte, cookieLen uint8, sublayer, seqValid bool) {
		sid, ok := hdr.L2TPIPSession(data)
		if ok != (len(data) >= 4) || (ok && sid != binary.BigEndian.Uint32(data)) {
			t.Fatalf("L2TPIPSession(%x) = %d, %v", data, sid, ok)
		}
		sid, control, version, ok := hdr.L2TPUDPHeader(data)
		wantControl := len(data) >= 2 && data[0]&0x80 != 0
		wantOK := len(data) >= 8 || (wantControl && len(data) >= 2)
		if ok != wantOK || control != wantControl || (len(data) >= 2 && version != data[1]&0x0f) ||
			(ok && !control && sid != binary.BigEndian.Uint32(data[4:])) {
			t.Fatalf("L2TPUDPHeader(%x) = %d, %v, %d, %v", data, sid, control, version, ok)
		}
		if len(data) >= 4 {
			sv, seq := hdr.L2TPSublayer(data)
			if sv != (data[0]&0x40 != 0) || seq > 0xffffff {
				t.Fatalf("L2TPSublayer(%x) = %v, %#x", data, sv, seq)
			}
		}

		// Round trip through the encoders, cookie and sequence from the input.
		cookie := []byte(nil)
		switch cookieLen % 3 {
		case 1:
			cookie = make([]byte, 4)
		case 2:
			cookie = make([]byte, 8)
		}
		copy(cookie, data)
		var seq, id uint32
		if len(data) >= 8 {
			id, seq = binary.BigEndian.Uint32(data), binary.BigEndian.Uint32(data[4:])
		}
		buf := make([]byte, hdr.L2TPUDPHdrLen+8+hdr.L2TPSublayerLen)
		for _, enc := range []struct {
			name string
			put  func([]byte, uint32, []byte, bool, bool, uint32) int
			hl   int
		}{{"PutL2TPIP", hdr.PutL2TPIP, hdr.L2TPIPHdrLen}, {"PutL2TPUDP", hdr.PutL2TPUDP, hdr.L2TPUDPHdrLen}} {
			n := enc.put(buf, id, cookie, sublayer, seqValid, seq)
			want := enc.hl + len(cookie)
			if sublayer {
				want += hdr.L2TPSublayerLen
			}
			if n != want || !bytes.Equal(buf[enc.hl:enc.hl+len(cookie)], cookie) {
				t.Fatalf("%s(%#x, %x, %v, %v, %#x) = %d, %x", enc.name, id, cookie, sublayer, seqValid, seq, n, buf[:n])
			}
			if sublayer {
				if sv, s := hdr.L2TPSublayer(buf[n-4:]); sv != seqValid || s != seq&0xffffff {
					t.Fatalf("L2TPSublayer(%s output %x) = %v, %#x, want %v, %#x", enc.name, buf[:n], sv, s, seqValid, seq&0xffffff)
				}
			}
		}
	})
}
