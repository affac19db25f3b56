package hdr_test

import (
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/tunterm/tunterm/dataplane/hdr"
)

// Sinks keep the compiler from discarding the calls being measured.
var (
	sinkEth   hdr.Eth
	sinkInt   int
	sinkBool  bool
	sinkU8    uint8
	sinkU16   uint16
	sinkBytes []byte
)

// TestZeroAllocs proves the hot-path header operations do not allocate
// (STYLE.md, hot path rule 2).
func TestZeroAllocs(t *testing.T) {
	frame := serialize(t, &layers.Ethernet{SrcMAC: macAP, DstMAC: macGW, EthernetType: layers.EthernetTypeQinQ},
		&layers.Dot1Q{VLANIdentifier: 300, Type: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4}, gopacket.Payload(udp4(t, 64)))
	ip4 := hdr.IPv4(udp4(t, 64))
	ip6 := hdr.IPv6(ipv6Packet(t, hdr.ProtoHopByHop, hopByHop(layers.IPProtocolIPv6Routing), routing0(hdr.ProtoFragment, 1),
		fragment(hdr.ProtoDstOpts, 0, false, 1), opts(hdr.ProtoESP, 1), gopacket.Payload(payload(64))))
	data := payload(1500)
	out := make([]byte, 20)
	src, dst := []byte{198, 18, 0, 1}, []byte{198, 18, 0, 2}

	tests := []struct {
		name string
		f    func()
	}{
		{"ParseEth", func() { sinkEth, sinkBool = hdr.ParseEth(frame) }},
		{"IPv4 accessors", func() {
			sinkBool = ip4.Valid() && ip4.ChecksumOK() && ip4.IsFragment()
			sinkInt = ip4.HeaderLen() + ip4.TotalLen()
			sinkU8 = ip4.Protocol() + ip4.TTL()
			sinkBytes = ip4.Src()
			sinkBytes = ip4.Dst()
			sinkBytes = ip4.Payload()
		}},
		{"IPv6.UpperLayer", func() { sinkU8, sinkInt, sinkBool, sinkBool = ip6.UpperLayer() }},
		{"Checksum", func() { sinkU16 = hdr.Checksum(data, 0) }},
		{"PutIPv4", func() { hdr.PutIPv4(out, src, dst, hdr.ProtoESP, 1400, 64, 1) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, tc.f); n != 0 {
				t.Errorf("%s: AllocsPerRun = %v, want 0", tc.name, n)
			}
		})
	}
}
