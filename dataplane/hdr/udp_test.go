package hdr_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/tunterm/tunterm/dataplane/hdr"
)

// refChecksum is RFC 1071 §4.1 written the obvious way: add 16-bit words
// into a 32-bit accumulator, pad an odd byte with zero, fold the carries,
// complement.
func refChecksum(b []byte, initial uint32) uint16 {
	sum := uint64(initial)
	for len(b) >= 2 {
		sum += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

func TestChecksumReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 2001)
	for n := 0; n <= 2000; n++ {
		for _, fill := range []string{"random", "zeros", "ones"} {
			b := buf[:n]
			for i := range b {
				switch fill {
				case "random":
					b[i] = byte(rng.Uint32())
				case "zeros":
					b[i] = 0
				case "ones":
					b[i] = 0xff
				}
			}
			for _, initial := range []uint32{0, 0xffff, 0xffffffff, rng.Uint32()} {
				if got, want := hdr.Checksum(b, initial), refChecksum(b, initial); got != want {
					t.Fatalf("Checksum(%x, %#x) = %#04x, want %#04x (%s, %d bytes)", b, initial, got, want, fill, n)
				}
			}
		}
	}
	// Unaligned starting points into a larger buffer.
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for off := 0; off < 16; off++ {
		b := buf[off : off+1500]
		if got, want := hdr.Checksum(b, 0), refChecksum(b, 0); got != want {
			t.Errorf("Checksum(buf[%d:%d], 0) = %#04x, want %#04x", off, off+1500, got, want)
		}
	}
}

// TestChecksumRFC1071 is the worked example of RFC 1071 §3: the words
// 0001 f203 f4f5 f6f7 sum to ddf2, so the checksum is 220d.
func TestChecksumRFC1071(t *testing.T) {
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got, want := hdr.Checksum(b, 0), uint16(^uint16(0xddf2)); got != want {
		t.Errorf("Checksum(%x, 0) = %#04x, want %#04x", b, got, want)
	}
}

// TestChecksumGopacketIPv4 recomputes the header checksums gopacket wrote.
func TestChecksumGopacketIPv4(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200; i++ {
		ip := layers.IPv4{Version: 4, TOS: uint8(rng.Uint32()), Id: uint16(rng.Uint32()), TTL: uint8(rng.Uint32()),
			Protocol: layers.IPProtocol(rng.Uint32()), FragOffset: uint16(rng.Uint32()) & 0x1fff,
			Flags: layers.IPv4Flag(rng.Uint32() & 7),
			SrcIP: net.IPv4(byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())),
			DstIP: net.IPv4(byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()))}
		pkt := serialize(t, &ip, gopacket.Payload(payload(rng.IntN(100))))
		h := append([]byte(nil), pkt[:20]...)
		want := binary.BigEndian.Uint16(h[10:])
		h[10], h[11] = 0, 0
		if got := hdr.Checksum(h, 0); got != want {
			t.Errorf("Checksum(%x, 0) = %#04x, want gopacket's %#04x", h, got, want)
		}
		if !hdr.IPv4(pkt).ChecksumOK() {
			t.Errorf("IPv4(%x).ChecksumOK() = false, want true", pkt[:20])
		}
	}
}

// udpCase is a UDP datagram gopacket built over IPv4 or IPv6.
type udpCase struct {
	name     string
	src, dst net.IP
	n        int
}

func udpCases() []udpCase {
	return []udpCase{
		{"IPv4 empty", ip4Src, ip4Dst, 0},
		{"IPv4 odd length", ip4Src, ip4Dst, 33},
		{"IPv4 1472", net.IP{10, 1, 2, 3}, net.IP{172, 31, 255, 254}, 1472},
		{"IPv4 all-ones addresses", net.IP{255, 255, 255, 255}, net.IP{255, 255, 255, 255}, 100},
		{"IPv6 empty", ip6Src, ip6Dst, 0},
		{"IPv6 odd length", ip6Src, ip6Dst, 1},
		{"IPv6 1452", net.ParseIP("fe80::1:2:3:4"), net.ParseIP("ff02::1"), 1452},
		{"IPv6 all-ones addresses", net.ParseIP("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), net.ParseIP("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 999},
	}
}

// gopacketUDP returns the UDP datagram (header + payload) gopacket builds
// for tc with its checksum.
func gopacketUDP(t *testing.T, src, dst net.IP, pay []byte) []byte {
	t.Helper()
	u := &layers.UDP{SrcPort: 4500, DstPort: 1701}
	var ip gopacket.SerializableLayer
	if v4 := src.To4(); v4 != nil {
		l := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: v4, DstIP: dst.To4()}
		u.SetNetworkLayerForChecksum(l)
		ip = l
	} else {
		l := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: src, DstIP: dst}
		u.SetNetworkLayerForChecksum(l)
		ip = l
	}
	pkt := serialize(t, ip, u, gopacket.Payload(pay))
	return pkt[len(pkt)-len(pay)-8:]
}

func addrBytes(ip net.IP) []byte {
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip.To16()
}

func TestSetUDPChecksum(t *testing.T) {
	for _, tc := range udpCases() {
		t.Run(tc.name, func(t *testing.T) {
			d := gopacketUDP(t, tc.src, tc.dst, payload(tc.n))
			want := binary.BigEndian.Uint16(d[6:])
			if want == 0 {
				want = 0xffff // gopacket sends a computed zero as is; RFC 768 says 0xffff
			}
			src, dst := addrBytes(tc.src), addrBytes(tc.dst)
			got := append([]byte(nil), d...)
			got[6], got[7] = 0x5a, 0x5a // SetUDPChecksum must ignore the old value
			hdr.SetUDPChecksum(got, src, dst)
			if c := hdr.UDP(got).Checksum(); c != want {
				t.Errorf("SetUDPChecksum(%x, %x, %x) wrote %#04x, want gopacket's %#04x", d, src, dst, c, want)
			}
			// A receiver's check: the sum over pseudo-header and datagram is -0.
			if c := hdr.Checksum(got, hdr.PseudoSum(src, dst, hdr.ProtoUDP, len(got))); c != 0 {
				t.Errorf("Checksum(%x, PseudoSum(%x, %x, 17, %d)) = %#04x, want 0", got, src, dst, len(got), c)
			}
		})
	}
}

// TestPseudoSum compares PseudoSum with the checksum of the pseudo-header
// laid out byte by byte from RFC 768 (IPv4) and RFC 8200 §8.1 (IPv6).
func TestPseudoSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 500; i++ {
		alen := 4
		if i%2 == 1 {
			alen = 16
		}
		src, dst := make([]byte, alen), make([]byte, alen)
		for j := range src {
			src[j], dst[j] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		proto := uint8(rng.Uint32())
		data := make([]byte, rng.IntN(1600))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		length := len(data)
		var ph []byte
		if alen == 4 {
			// src, dst, zero, protocol, UDP length
			ph = append(append(append([]byte(nil), src...), dst...), 0, proto, byte(length>>8), byte(length))
		} else {
			// src, dst, 32-bit upper-layer length, 3 zero bytes, next header
			ph = append(append(append([]byte(nil), src...), dst...),
				byte(length>>24), byte(length>>16), byte(length>>8), byte(length), 0, 0, 0, proto)
		}
		want := refChecksum(append(ph, data...), 0)
		if got := hdr.Checksum(data, hdr.PseudoSum(src, dst, proto, length)); got != want {
			t.Fatalf("Checksum(data, PseudoSum(%x, %x, %d, %d)) = %#04x, want %#04x", src, dst, proto, length, got, want)
		}
	}
	// IPv6 jumbogram length (RFC 2675): the upper 16 bits count too.
	src, dst := ip6Src.To16(), ip6Dst.To16()
	ph := append(append(append([]byte(nil), src...), dst...), 0x00, 0x01, 0x23, 0x45, 0, 0, 0, hdr.ProtoUDP)
	if got, want := hdr.Checksum(nil, hdr.PseudoSum(src, dst, hdr.ProtoUDP, 0x12345)), refChecksum(ph, 0); got != want {
		t.Errorf("Checksum(nil, PseudoSum(%x, %x, 17, 0x12345)) = %#04x, want %#04x", src, dst, got, want)
	}
}

// TestSetUDPChecksumZero builds a datagram whose checksum computes to zero:
// RFC 768 requires it to be sent as all ones.
func TestSetUDPChecksumZero(t *testing.T) {
	for _, tc := range []udpCase{{"IPv4", ip4Src, ip4Dst, 10}, {"IPv6", ip6Src, ip6Dst, 10}} {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := addrBytes(tc.src), addrBytes(tc.dst)
			pay := payload(tc.n)
			pay[len(pay)-2], pay[len(pay)-1] = 0, 0
			d := gopacketUDP(t, tc.src, tc.dst, pay)
			// Setting the last (even-aligned) word to the checksum computed
			// with it zero makes the one's complement sum 0xffff: checksum 0.
			c := binary.BigEndian.Uint16(d[6:])
			binary.BigEndian.PutUint16(d[len(d)-2:], c)
			d[6], d[7] = 0, 0
			if got := refChecksum(append(pseudo(src, dst, len(d)), d...), 0); got != 0 {
				t.Fatalf("test setup: checksum is %#04x, want 0", got)
			}
			hdr.SetUDPChecksum(d, src, dst)
			if got := hdr.UDP(d).Checksum(); got != 0xffff {
				t.Errorf("SetUDPChecksum(%x) wrote %#04x, want 0xffff (RFC 768)", d, got)
			}
		})
	}
}

func pseudo(src, dst []byte, length int) []byte {
	ph := append(append([]byte(nil), src...), dst...)
	if len(src) == 4 {
		return append(ph, 0, hdr.ProtoUDP, byte(length>>8), byte(length))
	}
	return append(ph, byte(length>>24), byte(length>>16), byte(length>>8), byte(length), 0, 0, 0, hdr.ProtoUDP)
}

func TestUDPValid(t *testing.T) {
	base := func() []byte { return []byte{0x11, 0x94, 0x06, 0xa5, 0x00, 0x0c, 0x00, 0x00, 1, 2, 3, 4} }
	setLen := func(b []byte, n int) []byte { binary.BigEndian.PutUint16(b[4:], uint16(n)); return b }
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{"12-byte datagram", base(), true},
		{"header only, length 8", setLen(base()[:8], 8), true},
		{"length shorter than the buffer", setLen(base(), 10), true},
		{"empty", nil, false},
		{"7 bytes", base()[:7], false},
		{"length 7", setLen(base(), 7), false},
		{"length 0 (IPv6 jumbogram, RFC 2675)", setLen(base(), 0), false},
		{"length one past the buffer", setLen(base(), 13), false},
		{"length 65535", setLen(base(), 65535), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := hdr.UDP(tc.b).Valid(); got != tc.want {
				t.Errorf("UDP(%x).Valid() = %v, want %v", tc.b, got, tc.want)
			}
		})
	}
}

func TestUDPAccessors(t *testing.T) {
	for _, tc := range udpCases() {
		t.Run(tc.name, func(t *testing.T) {
			d := gopacketUDP(t, tc.src, tc.dst, payload(tc.n))
			d = append(d, 0xee, 0xee) // bytes beyond Length are not payload
			g := gopacket.NewPacket(d, layers.LayerTypeUDP, gopacket.Default).Layer(layers.LayerTypeUDP).(*layers.UDP)
			u := hdr.UDP(d)
			if !u.Valid() {
				t.Fatalf("UDP(%x).Valid() = false", d)
			}
			if u.SrcPort() != uint16(g.SrcPort) || u.DstPort() != uint16(g.DstPort) || u.Length() != int(g.Length) || u.Checksum() != g.Checksum {
				t.Errorf("UDP(%x) = ports %d>%d length %d checksum %#04x, want %d>%d %d %#04x",
					d, u.SrcPort(), u.DstPort(), u.Length(), u.Checksum(), g.SrcPort, g.DstPort, g.Length, g.Checksum)
			}
			if !bytes.Equal(u.Payload(), payload(tc.n)) {
				t.Errorf("UDP(%x).Payload() = %x, want %x", d, u.Payload(), payload(tc.n))
			}
		})
	}
}

func TestPutUDP(t *testing.T) {
	tests := []struct {
		sport, dport uint16
		length       int
	}{{4500, 4500, 8}, {500, 500, 300}, {1701, 1701, 1480}, {0, 65535, 65535}}
	for _, tc := range tests {
		u := &layers.UDP{SrcPort: layers.UDPPort(tc.sport), DstPort: layers.UDPPort(tc.dport), Length: uint16(tc.length)}
		buf := gopacket.NewSerializeBuffer()
		if err := u.SerializeTo(buf, gopacket.SerializeOptions{}); err != nil {
			t.Fatal(err)
		}
		b := bytes.Repeat([]byte{0xa5}, 10)
		hdr.PutUDP(b, tc.sport, tc.dport, tc.length)
		if !bytes.Equal(b[:8], buf.Bytes()) || b[8] != 0xa5 {
			t.Errorf("PutUDP(%d, %d, %d) = %x, want %x", tc.sport, tc.dport, tc.length, b[:8], buf.Bytes())
		}
	}
}

func TestESP(t *testing.T) {
	tests := []struct {
		name     string
		b        []byte
		valid    bool
		spi, seq uint32
	}{
		{"SPI 0x1000 seq 1", []byte{0, 0, 0x10, 0, 0, 0, 0, 1, 0xaa, 0xbb}, true, 0x1000, 1},
		{"all ones", bytes.Repeat([]byte{0xff}, 8), true, 0xffffffff, 0xffffffff},
		{"non-ESP marker (RFC 3948)", []byte{0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78}, true, 0, 0x12345678},
		{"7 bytes", []byte{0, 0, 0x10, 0, 0, 0, 0}, false, 0, 0},
		{"empty", nil, false, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := hdr.ESP(tc.b)
			if got := e.Valid(); got != tc.valid {
				t.Fatalf("ESP(%x).Valid() = %v, want %v", tc.b, got, tc.valid)
			}
			if !tc.valid {
				return
			}
			g := gopacket.NewPacket(tc.b, layers.LayerTypeIPSecESP, gopacket.Default).Layer(layers.LayerTypeIPSecESP).(*layers.IPSecESP)
			if g.SPI != tc.spi || g.Seq != tc.seq {
				t.Fatalf("case disagrees with gopacket: SPI %#x seq %d", g.SPI, g.Seq)
			}
			if e.SPI() != tc.spi || e.Seq() != tc.seq {
				t.Errorf("ESP(%x) SPI, Seq = %#x, %d, want %#x, %d", tc.b, e.SPI(), e.Seq(), tc.spi, tc.seq)
			}
		})
	}
}
