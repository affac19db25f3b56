package pipeline

import (
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// TestESPOffset checks where espOffset finds the ESP header in frames
// built with gopacket, and that it finds none where fromDown would not
// decrypt.
func TestESPOffset(t *testing.T) {
	mac1, mac2 := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
	a4, b4 := net.IP{198, 18, 0, 2}, net.IP{198, 18, 0, 1}
	a6, b6 := net.ParseIP("2001:db8::2"), net.ParseIP("2001:db8::1")
	esp := gopacket.Payload(append([]byte{0, 0, 0x12, 0x34, 0, 0, 0, 1}, make([]byte, 48)...))
	ike := gopacket.Payload(append([]byte{0, 0, 0, 0}, make([]byte, 60)...))
	build := func(ls ...gopacket.SerializableLayer) []byte {
		t.Helper()
		for _, l := range ls {
			switch l := l.(type) {
			case *layers.UDP:
				for _, n := range ls {
					if ip, ok := n.(gopacket.NetworkLayer); ok {
						if err := l.SetNetworkLayerForChecksum(ip); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	eth4 := func() *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeIPv4}
	}
	eth6 := func() *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeIPv6}
	}
	ip4 := func(p layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 64, Protocol: p, SrcIP: a4, DstIP: b4}
	}
	ip6 := func(p layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: p, SrcIP: a6, DstIP: b6}
	}
	withOpt := ip4(layers.IPProtocolESP)
	withOpt.Options = []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}} // NOPs, EOL: 4 bytes
	vlan := &layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeDot1Q}
	for _, c := range []struct {
		name  string
		frame []byte
		want  int
	}{
		{"IPv4 ESP", build(eth4(), ip4(layers.IPProtocolESP), esp), 34},
		{"IPv4 with options ESP", build(eth4(), withOpt, esp), 38},
		{"IPv4 UDP/4500 ESP", build(eth4(), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 4500, DstPort: 4500}, esp), 42},
		{"IPv4 UDP/4500 IKE", build(eth4(), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 4500, DstPort: 4500}, ike), 0},
		{"IPv4 UDP/1701", build(eth4(), ip4(layers.IPProtocolUDP), &layers.UDP{SrcPort: 1701, DstPort: 1701}, esp), 0},
		{"IPv4 L2TP", build(eth4(), ip4(layers.IPProtocol(115)), esp), 0},
		{"IPv6 ESP", build(eth6(), ip6(layers.IPProtocolESP), esp), 54},
		{"IPv6 UDP/4500 ESP", build(eth6(), ip6(layers.IPProtocolUDP), &layers.UDP{SrcPort: 4500, DstPort: 4500}, esp), 62},
		{"802.1Q IPv4 ESP", build(vlan, &layers.Dot1Q{VLANIdentifier: 5, Type: layers.EthernetTypeIPv4}, ip4(layers.IPProtocolESP), esp), 0},
		{"IPv4 of zeros", build(eth4(), gopacket.Payload(make([]byte, 80))), 0},
		{"ARP", build(&layers.Ethernet{SrcMAC: mac1, DstMAC: mac2, EthernetType: layers.EthernetTypeARP}, gopacket.Payload(make([]byte, 80))), 0},
		{"short", build(eth4(), ip4(layers.IPProtocolESP), gopacket.Payload{0, 0, 0x12, 0x34}), 0},
	} {
		if got := espOffset(c.frame); got != c.want {
			t.Errorf("%s: espOffset = %d, want %d", c.name, got, c.want)
		}
		if c.want != 0 && c.frame[c.want+2] != 0x12 {
			t.Errorf("%s: no SPI at %d", c.name, c.want)
		}
	}
	// Every prefix of every frame: no panic, and 0 or an offset inside.
	for _, f := range [][]byte{build(eth4(), withOpt, esp), build(eth6(), ip6(layers.IPProtocolUDP), &layers.UDP{SrcPort: 4500, DstPort: 4500}, esp)} {
		for n := range len(f) {
			if off := espOffset(f[:n]); off != 0 && off+8 > n {
				t.Errorf("espOffset(%d-byte prefix) = %d", n, off)
			}
		}
	}
}
