package hdr_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/tunterm/tunterm/dataplane/hdr"
)

// ipv4Packet builds ip + payload with gopacket.
func ipv4Packet(t *testing.T, ip layers.IPv4, n int) []byte {
	t.Helper()
	ip.Version, ip.SrcIP, ip.DstIP = 4, ip4Src, ip4Dst
	if ip.TTL == 0 {
		ip.TTL = 64
	}
	return serialize(t, &ip, gopacket.Payload(payload(n)))
}

func TestIPv4Valid(t *testing.T) {
	base := func(t *testing.T) []byte { return ipv4Packet(t, layers.IPv4{Protocol: layers.IPProtocolUDP}, 12) } // 32 bytes
	setTL := func(b []byte, tl int) []byte { binary.BigEndian.PutUint16(b[2:], uint16(tl)); return b }
	tests := []struct {
		name string
		pkt  func(*testing.T) []byte
		want bool
	}{
		{"gopacket packet", base, true},
		{"header only, total length 20", func(t *testing.T) []byte { return ipv4Packet(t, layers.IPv4{}, 0) }, true},
		{"with options (IHL 6)", func(t *testing.T) []byte {
			return ipv4Packet(t, layers.IPv4{Options: []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}}, 8)
		}, true},
		{"IHL 15, 40 bytes of options", func(t *testing.T) []byte {
			b := append(base(t)[:20], make([]byte, 40)...) // 40 x End of Option List
			b[0] = 0x4f
			return setTL(b, 60)
		}, true},
		{"trailing link padding beyond total length", func(t *testing.T) []byte { return append(base(t), 0, 0, 0, 0) }, true},
		{"empty", func(*testing.T) []byte { return nil }, false},
		{"19 bytes", func(t *testing.T) []byte { return setTL(base(t)[:19], 19) }, false},
		{"version 6", func(t *testing.T) []byte { b := base(t); b[0] = 0x65; return b }, false},
		{"version 0", func(t *testing.T) []byte { b := base(t); b[0] = 0x05; return b }, false},
		{"IHL 4", func(t *testing.T) []byte { b := base(t); b[0] = 0x44; return b }, false},
		{"IHL 0", func(t *testing.T) []byte { b := base(t); b[0] = 0x40; return b }, false},
		{"IHL 6 but total length 20", func(t *testing.T) []byte { b := base(t); b[0] = 0x46; return setTL(b, 20) }, false},
		{"total length 19 < IHL*4", func(t *testing.T) []byte { return setTL(base(t), 19) }, false},
		{"total length 0", func(t *testing.T) []byte { return setTL(base(t), 0) }, false},
		{"total length one past the buffer", func(t *testing.T) []byte { b := base(t); return setTL(b, len(b)+1) }, false},
		{"truncated by one byte", func(t *testing.T) []byte { b := base(t); return b[:len(b)-1] }, false},
		{"IHL 15 but only 59 bytes", func(t *testing.T) []byte {
			b := append(base(t)[:20], make([]byte, 39)...)
			b[0] = 0x4f
			return setTL(b, 59)
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.pkt(t)
			if got := hdr.IPv4(b).Valid(); got != tc.want {
				t.Errorf("IPv4(%x).Valid() = %v, want %v", b, got, tc.want)
			}
		})
	}
}

// TestIPv4Accessors compares every accessor with gopacket's decode of
// packets gopacket built.
func TestIPv4Accessors(t *testing.T) {
	tests := []struct {
		name     string
		ip       layers.IPv4
		n        int
		wantFrag bool
	}{
		{"UDP, no flags", layers.IPv4{Protocol: layers.IPProtocolUDP, Id: 7, TTL: 1}, 100, false},
		{"ESP, DF only is not a fragment", layers.IPv4{Protocol: layers.IPProtocolESP, Flags: layers.IPv4DontFragment, TTL: 255}, 64, false},
		{"L2TP, MF set, offset 0 (first fragment)", layers.IPv4{Protocol: 115, Flags: layers.IPv4MoreFragments}, 64, true},
		{"offset 185, MF clear (last fragment)", layers.IPv4{Protocol: layers.IPProtocolUDP, FragOffset: 185}, 64, true},
		{"offset 1 and MF", layers.IPv4{Protocol: layers.IPProtocolUDP, Flags: layers.IPv4MoreFragments, FragOffset: 1}, 64, true},
		{"max offset 8191", layers.IPv4{Protocol: layers.IPProtocolUDP, FragOffset: 0x1fff}, 8, true},
		{"DF and MF (invalid but a fragment)", layers.IPv4{Protocol: layers.IPProtocolUDP, Flags: layers.IPv4DontFragment | layers.IPv4MoreFragments}, 8, true},
		{"evil bit only is not a fragment", layers.IPv4{Protocol: layers.IPProtocolUDP, Flags: layers.IPv4EvilBit}, 8, false},
		{"router alert option (IHL 6)", layers.IPv4{Protocol: layers.IPProtocolIGMP,
			Options: []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}}, 8, false},
		{"record route option, padded (IHL 8)", layers.IPv4{Protocol: layers.IPProtocolUDP,
			Options: []layers.IPv4Option{{OptionType: 7, OptionLength: 11, OptionData: []byte{4, 0, 0, 0, 0, 0, 0, 0, 0}}}}, 30, false},
		{"no payload", layers.IPv4{Protocol: layers.IPProtocolNoNextHeader}, 0, false},
		{"1480-byte payload", layers.IPv4{Protocol: layers.IPProtocolESP, Flags: layers.IPv4DontFragment}, 1480, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkt := ipv4Packet(t, tc.ip, tc.n)
			// Ethernet minimum-size padding after the datagram must be ignored.
			frame := append(append([]byte(nil), pkt...), 0, 0, 0, 0, 0, 0)
			p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.Default)
			g, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			if !ok {
				t.Fatalf("gopacket did not decode %x: %v", pkt, p.ErrorLayer())
			}
			b := hdr.IPv4(frame)
			if !b.Valid() {
				t.Fatalf("IPv4(%x).Valid() = false, want true", frame)
			}
			if got, want := b.HeaderLen(), int(g.IHL)*4; got != want {
				t.Errorf("IPv4(%x).HeaderLen() = %d, want %d", frame, got, want)
			}
			if got, want := b.TotalLen(), int(g.Length); got != want || got != len(pkt) {
				t.Errorf("IPv4(%x).TotalLen() = %d, want %d", frame, got, want)
			}
			if got, want := b.Protocol(), uint8(g.Protocol); got != want {
				t.Errorf("IPv4(%x).Protocol() = %d, want %d", frame, got, want)
			}
			if got, want := b.TTL(), g.TTL; got != want {
				t.Errorf("IPv4(%x).TTL() = %d, want %d", frame, got, want)
			}
			if got, want := b.Src(), []byte(g.SrcIP.To4()); !bytes.Equal(got, want) || cap(got) != 4 {
				t.Errorf("IPv4(%x).Src() = %x (cap %d), want %x", frame, got, cap(got), want)
			}
			if got, want := b.Dst(), []byte(g.DstIP.To4()); !bytes.Equal(got, want) || cap(got) != 4 {
				t.Errorf("IPv4(%x).Dst() = %x (cap %d), want %x", frame, got, cap(got), want)
			}
			gFrag := g.Flags&layers.IPv4MoreFragments != 0 || g.FragOffset != 0
			if gFrag != tc.wantFrag {
				t.Fatalf("case disagrees with gopacket: flags %v offset %d", g.Flags, g.FragOffset)
			}
			if got := b.IsFragment(); got != tc.wantFrag {
				t.Errorf("IPv4(%x).IsFragment() = %v, want %v", frame, got, tc.wantFrag)
			}
			if got, want := b.Payload(), g.Payload; !bytes.Equal(got, want) {
				t.Errorf("IPv4(%x).Payload() = %x, want %x", frame, got, want)
			}
			if !b.ChecksumOK() {
				t.Errorf("IPv4(%x).ChecksumOK() = false, want true (gopacket checksum %#04x)", frame, g.Checksum)
			}
			// Any single bit flip in the header breaks the checksum (flips
			// that change the header's length or validity aside: ChecksumOK
			// is only defined after Valid).
			for i := 0; i < b.HeaderLen()*8; i++ {
				c := append(hdr.IPv4(nil), b...)
				c[i/8] ^= 1 << (i % 8)
				if !c.Valid() || c.HeaderLen() != b.HeaderLen() {
					continue
				}
				if c.ChecksumOK() {
					t.Errorf("IPv4(%x).ChecksumOK() = true after flipping bit %d, want false", c[:c.HeaderLen()], i)
				}
			}
		})
	}
}

func TestPutIPv4(t *testing.T) {
	tests := []struct {
		name     string
		src, dst []byte
		proto    uint8
		totalLen int
		ttl      uint8
		id       uint16
	}{
		{"ESP", []byte{198, 18, 0, 1}, []byte{198, 18, 0, 2}, hdr.ProtoESP, 120, 64, 0x1234},
		{"L2TP over IP, TTL 255", []byte{10, 0, 0, 1}, []byte{10, 255, 255, 254}, hdr.ProtoL2TP, 1400, 255, 0},
		{"UDP, ID 0xffff", []byte{192, 0, 2, 1}, []byte{203, 0, 113, 9}, hdr.ProtoUDP, 28, 1, 0xffff},
		{"all-ones addresses", []byte{255, 255, 255, 255}, []byte{255, 255, 255, 255}, 255, 20, 255, 0xffff},
		{"header only", []byte{0, 0, 0, 0}, []byte{0, 0, 0, 0}, 0, 20, 0, 0},
		{"jumbo 9000", []byte{198, 18, 0, 1}, []byte{198, 18, 0, 200}, hdr.ProtoUDP, 9000, 64, 42},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Reference header: gopacket's encoder with its own checksum.
			ref := &layers.IPv4{Version: 4, IHL: 5, Length: uint16(tc.totalLen), Id: tc.id, TTL: tc.ttl,
				Protocol: layers.IPProtocol(tc.proto), SrcIP: tc.src, DstIP: tc.dst}
			buf := gopacket.NewSerializeBuffer()
			if err := ref.SerializeTo(buf, gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
				t.Fatal(err)
			}
			want := buf.Bytes()

			pkt := bytes.Repeat([]byte{0xa5}, tc.totalLen) // dirty buffer: PutIPv4 must write every byte
			hdr.PutIPv4(pkt, tc.src, tc.dst, tc.proto, tc.totalLen, tc.ttl, tc.id)
			if !bytes.Equal(pkt[:20], want) {
				t.Errorf("PutIPv4(%x, %x, %d, %d, %d, %d) = %x, want %x", tc.src, tc.dst, tc.proto, tc.totalLen, tc.ttl, tc.id, pkt[:20], want)
			}
			if !bytes.Equal(pkt[20:], bytes.Repeat([]byte{0xa5}, tc.totalLen-20)) {
				t.Errorf("PutIPv4 wrote beyond 20 bytes")
			}
			p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.DecodeOptions{Lazy: false})
			g, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			if !ok {
				t.Fatalf("gopacket did not decode PutIPv4 output %x", pkt[:20])
			}
			if g.Version != 4 || g.IHL != 5 || g.Flags != 0 || g.FragOffset != 0 || g.TOS != 0 ||
				int(g.Length) != tc.totalLen || g.Id != tc.id || g.TTL != tc.ttl || uint8(g.Protocol) != tc.proto ||
				!bytes.Equal(g.SrcIP.To4(), tc.src) || !bytes.Equal(g.DstIP.To4(), tc.dst) {
				t.Errorf("gopacket decodes PutIPv4 output %x as %+v", pkt[:20], g)
			}
			if b := hdr.IPv4(pkt); !b.Valid() || !b.ChecksumOK() {
				t.Errorf("IPv4(%x): Valid %v ChecksumOK %v, want true, true", pkt[:20], b.Valid(), b.ChecksumOK())
			}
		})
	}
}
