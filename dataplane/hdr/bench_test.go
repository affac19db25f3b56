package hdr_test

import (
	"strconv"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/tunterm/tunterm/dataplane/hdr"
)

func BenchmarkParseEth(b *testing.B) {
	pay := gopacket.Payload(udp4(b, 64))
	frames := []struct {
		name string
		ls   []gopacket.SerializableLayer
	}{
		{"untagged", []gopacket.SerializableLayer{
			&layers.Ethernet{SrcMAC: macAP, DstMAC: macGW, EthernetType: layers.EthernetTypeIPv4}, pay}},
		{"dot1q", []gopacket.SerializableLayer{
			&layers.Ethernet{SrcMAC: macAP, DstMAC: macGW, EthernetType: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4}, pay}},
		{"qinq", []gopacket.SerializableLayer{
			&layers.Ethernet{SrcMAC: macAP, DstMAC: macGW, EthernetType: layers.EthernetTypeQinQ},
			&layers.Dot1Q{VLANIdentifier: 300, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4}, pay}},
	}
	for _, fr := range frames {
		frame := serialize(b, fr.ls...)
		b.Run(fr.name, func(b *testing.B) {
			e, _ := hdr.ParseEth(frame)
			b.SetBytes(int64(e.HdrLen))
			b.ReportAllocs()
			for b.Loop() {
				sinkEth, sinkBool = hdr.ParseEth(frame)
			}
		})
	}
}

func BenchmarkIPv6UpperLayer(b *testing.B) {
	pkts := []struct {
		name string
		pkt  []byte
	}{
		{"no-ext", ipv6Packet(b, hdr.ProtoESP, gopacket.Payload(payload(64)))},
		{"hbh-rt-frag-dst", ipv6Packet(b, hdr.ProtoHopByHop, hopByHop(layers.IPProtocolIPv6Routing), routing0(hdr.ProtoFragment, 1),
			fragment(hdr.ProtoDstOpts, 0, false, 1), opts(hdr.ProtoESP, 1), gopacket.Payload(payload(64)))},
	}
	for _, p := range pkts {
		ip := hdr.IPv6(p.pkt)
		b.Run(p.name, func(b *testing.B) {
			_, off, _, _ := ip.UpperLayer()
			b.SetBytes(int64(off))
			b.ReportAllocs()
			for b.Loop() {
				sinkU8, sinkInt, sinkBool, sinkBool = ip.UpperLayer()
			}
		})
	}
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{20, 1500} {
		data := payload(n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				sinkU16 = hdr.Checksum(data, 0)
			}
		})
	}
}
