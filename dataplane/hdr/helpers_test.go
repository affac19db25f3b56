package hdr_test

import (
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Test addresses: documentation/benchmark ranges (RFC 2544, RFC 3849).
var (
	macAP  = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
	macGW  = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0xfe}
	ip4Src = net.IP{198, 18, 0, 2}
	ip4Dst = net.IP{198, 18, 0, 1}
	ip6Src = net.ParseIP("2001:db8::2")
	ip6Dst = net.ParseIP("2001:db8::1")
)

// serialize builds a packet with gopacket, fixing lengths and computing
// checksums: the independent encoder the tests compare hdr against.
func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatalf("gopacket.SerializeLayers: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// payload returns n bytes of a recognisable pattern.
func payload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return p
}

// udp4 is a small IPv4/UDP packet built by gopacket.
func udp4(tb testing.TB, n int) []byte {
	tb.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ip4Src, DstIP: ip4Dst, Id: 0x1234}
	u := &layers.UDP{SrcPort: 4500, DstPort: 4500}
	if err := u.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	return serialize(tb, ip, u, gopacket.Payload(payload(n)))
}

// udp6 is a small IPv6/UDP packet built by gopacket.
func udp6(tb testing.TB, n int) []byte {
	tb.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: ip6Src, DstIP: ip6Dst}
	u := &layers.UDP{SrcPort: 1701, DstPort: 1701}
	if err := u.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	return serialize(tb, ip, u, gopacket.Payload(payload(n)))
}
