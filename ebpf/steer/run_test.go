package steer

import (
	"errors"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

const (
	protoESP  = layers.IPProtocolESP
	protoL2TP = layers.IPProtocol(115) // RFC 3931 4.1.1
	protoUDP  = layers.IPProtocolUDP
	protoTCP  = layers.IPProtocolTCP

	portIKE  = layers.UDPPort(500)
	portNATT = layers.UDPPort(4500)
	portL2TP = layers.UDPPort(1701)
)

type runCase struct {
	name  string
	frame []byte
	want  Class
}

// familyCases are the classifications common to IPv4 and IPv6, for a
// downstream program whose tunnel address in that family is tun.
func familyCases(t *testing.T, tun, other netip.Addr, link l2) []runCase {
	ipp := func(proto layers.IPProtocol) gopacket.SerializableLayer { return ip(tun, proto) }
	return []runCase{
		{"esp", frame(t, link, ipp(protoESP), espBody(0x1000)), ClassESP},
		{"esp/spi-1", frame(t, link, ipp(protoESP), espBody(1)), ClassESP},
		{"esp/not-ours", frame(t, link, ip(other, protoESP), espBody(0x1000)), ClassNotOurs},
		{"esp-udp", frame(t, link, ipp(protoUDP), udp(4500, portNATT), espBody(0x1000)), ClassESPUDP},
		{"esp-udp/spi-low-byte", frame(t, link, ipp(protoUDP), udp(4500, portNATT), espBody(1)), ClassESPUDP},
		{"esp-udp/spi-high-byte", frame(t, link, ipp(protoUDP), udp(4500, portNATT), espBody(0x01000000)), ClassESPUDP},
		{"esp-udp/src-port-irrelevant", frame(t, link, ipp(protoUDP), udp(33000, portNATT), espBody(7)), ClassESPUDP},
		{"esp-udp/4-byte-body", frame(t, link, ipp(protoUDP), udp(4500, portNATT), pay(0, 0, 0, 9)), ClassESPUDP},
		{"esp-udp/not-ours", frame(t, link, ip(other, protoUDP), udp(4500, portNATT), espBody(7)), ClassNotOurs},
		{"ike/4500-marker", frame(t, link, ipp(protoUDP), udp(4500, portNATT), ikeNATT()), ClassIKE},
		{"ike/4500-marker-only", frame(t, link, ipp(protoUDP), udp(4500, portNATT), pay(0, 0, 0, 0)), ClassIKE},
		{"ike/500", frame(t, link, ipp(protoUDP), udp(500, portIKE), pay(ikeHeader()...)), ClassIKE},
		{"ike/500-esp-looking", frame(t, link, ipp(protoUDP), udp(500, portIKE), espBody(7)), ClassIKE},
		{"ike/not-ours", frame(t, link, ip(other, protoUDP), udp(500, portIKE), pay(ikeHeader()...)), ClassNotOurs},
		{"nat-keepalive", frame(t, link, ipp(protoUDP), udp(4500, portNATT), pay(0xff)), ClassNATKeepalive},
		{"nat-keepalive/padded", pad60(frame(t, link, ipp(protoUDP), udp(4500, portNATT), pay(0xff))), ClassNATKeepalive},
		{"udp4500/1-byte-not-ff", frame(t, link, ipp(protoUDP), udp(4500, portNATT), pay(0x00)), ClassOtherPass},
		{"udp4500/1-byte-not-ff-padded", pad60(frame(t, link, ipp(protoUDP), udp(4500, portNATT), pay(0xfe))), ClassOtherPass},
		{"udp4500/3-byte-body", frame(t, link, ipp(protoUDP), udp(4500, portNATT), pay(1, 2, 3)), ClassOtherPass},
		{"udp4500/3-byte-body-padded", pad60(frame(t, link, ipp(protoUDP), udp(4500, portNATT), pay(1, 2, 3))), ClassOtherPass},
		{"udp4500/empty", frame(t, link, ipp(protoUDP), udp(4500, portNATT)), ClassOtherPass},
		{"udp4500/empty-padded", pad60(frame(t, link, ipp(protoUDP), udp(4500, portNATT))), ClassOtherPass},
		{"udp4500/src-only", frame(t, link, ipp(protoUDP), udp(4500, 33000), espBody(7)), ClassOtherPass},
		{"l2tp-ip/data", frame(t, link, ipp(protoL2TP), l2tpIP(0x1234)), ClassL2TPIP},
		{"l2tp-ip/data-high-byte", frame(t, link, ipp(protoL2TP), l2tpIP(0x80000000)), ClassL2TPIP},
		{"l2tp-ip/control", frame(t, link, ipp(protoL2TP), l2tpIP(0)), ClassL2TPControl},
		{"l2tp-ip/not-ours", frame(t, link, ip(other, protoL2TP), l2tpIP(0x1234)), ClassNotOurs},
		{"l2tp-udp/data-v3", frame(t, link, ipp(protoUDP), udp(1701, portL2TP), l2tpUDP(0x0003, 0x1234)), ClassL2TPUDP},
		{"l2tp-udp/data-v3-s-bit", frame(t, link, ipp(protoUDP), udp(1701, portL2TP), l2tpUDP(0x0803, 0x1234)), ClassL2TPUDP},
		{"l2tp-udp/control-v3", frame(t, link, ipp(protoUDP), udp(1701, portL2TP), l2tpUDP(0xc803, 0)), ClassL2TPControl},
		{"l2tp-udp/control-t-only", frame(t, link, ipp(protoUDP), udp(1701, portL2TP), l2tpUDP(0x8003, 0)), ClassL2TPControl},
		{"l2tp-udp/control-v2", frame(t, link, ipp(protoUDP), udp(1701, portL2TP), l2tpUDP(0xc802, 0)), ClassL2TPControl},
		{"l2tp-udp/data-v2", frame(t, link, ipp(protoUDP), udp(1701, portL2TP), l2tpUDP(0x0002, 0x1234)), ClassOtherPass},
		{"l2tp-udp/1-byte", frame(t, link, ipp(protoUDP), udp(1701, portL2TP), pay(0x00)), ClassOtherPass},
		{"l2tp-udp/not-ours", frame(t, link, ip(other, protoUDP), udp(1701, portL2TP), l2tpUDP(3, 1)), ClassNotOurs},
		{"udp/dns", frame(t, link, ipp(protoUDP), udp(5353, 53), pay(1, 2, 3, 4, 5, 6)), ClassOtherPass},
		{"tcp/radsec-2083", frame(t, link, ipp(protoTCP), &layers.TCP{SrcPort: 40000, DstPort: 2083, SYN: true, Window: 1024}), ClassOtherPass},
		{"tcp/port-4500", frame(t, link, ipp(protoTCP), &layers.TCP{SrcPort: 40000, DstPort: 4500, SYN: true, Window: 1024}), ClassOtherPass},
		{"tcp/port-1701", frame(t, link, ipp(protoTCP), &layers.TCP{SrcPort: 40000, DstPort: 1701, SYN: true, Window: 1024}), ClassOtherPass},
		{"gre", frame(t, link, ipp(layers.IPProtocolGRE), pay(0, 0, 0x08, 0, 1, 2, 3, 4)), ClassOtherPass},
	}
}

func icmpCases(t *testing.T, link l2) []runCase {
	return []runCase{
		{"icmpv4/echo", frame(t, link, ip(tun4, layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 1}, pay(1, 2, 3, 4)), ClassOtherPass},
		{"icmpv4/frag-needed", frame(t, link, ip(tun4, layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 4)}, pay(make([]byte, 28)...)), ClassOtherPass},
		{"icmpv6/echo", frame(t, link, ip(tun6, layers.IPProtocolICMPv6),
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, pay(0, 1, 0, 1)), ClassOtherPass},
		{"icmpv6/neighbor-solicitation", frame(t, link, ip(tun6, layers.IPProtocolICMPv6),
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(135, 0)}, pay(append(make([]byte, 4), tun6.AsSlice()...)...)), ClassOtherPass},
	}
}

func ipv4Cases(t *testing.T, link l2) []runCase {
	frag := func(flags layers.IPv4Flag, off uint16) func(*layers.IPv4) {
		return func(h *layers.IPv4) { h.Flags, h.FragOffset = flags, off }
	}
	routerAlert := layers.IPv4Option{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}
	nop := layers.IPv4Option{OptionType: 1}
	ihl := func(n int) func(*layers.IPv4) { // n-5 words of options
		return func(h *layers.IPv4) {
			h.Options = []layers.IPv4Option{routerAlert}
			for range (n - 6) * 4 {
				h.Options = append(h.Options, nop)
			}
		}
	}
	cs := []runCase{
		{"frag/non-first-udp", frame(t, link, ip4(tun4, protoUDP, frag(layers.IPv4MoreFragments, 185)), pay(make([]byte, 40)...)), ClassFragment},
		{"frag/non-first-zero-body", frame(t, link, ip4(tun4, protoUDP, frag(layers.IPv4MoreFragments, 185)), pay(make([]byte, 8)...)), ClassFragment},
		{"frag/non-first-esp", frame(t, link, ip4(tun4, protoESP, frag(layers.IPv4MoreFragments, 1)), pay(make([]byte, 40)...)), ClassFragment},
		{"frag/non-first-tcp", frame(t, link, ip4(tun4, protoTCP, frag(layers.IPv4MoreFragments, 100)), pay(make([]byte, 40)...)), ClassFragment},
		{"frag/non-first-icmp", frame(t, link, ip4(tun4, layers.IPProtocolICMPv4, frag(0, 100)), pay(make([]byte, 40)...)), ClassFragment},
		{"frag/last", frame(t, link, ip4(tun4, protoUDP, frag(0, 0x1fff)), pay(make([]byte, 16)...)), ClassFragment},
		{"frag/last-df", frame(t, link, ip4(tun4, protoUDP, frag(layers.IPv4DontFragment, 7)), pay(1)), ClassFragment},
		{"frag/not-ours", frame(t, link, ip4(other4, protoUDP, frag(layers.IPv4MoreFragments, 185)), pay(make([]byte, 40)...)), ClassNotOurs},
		{"frag/first-esp-udp", frame(t, link, ip4(tun4, protoUDP, frag(layers.IPv4MoreFragments, 0)), udp(4500, portNATT), espBody(0x1000)), ClassESPUDP},
		{"frag/first-ike", frame(t, link, ip4(tun4, protoUDP, frag(layers.IPv4MoreFragments, 0)), udp(4500, portNATT), ikeNATT()), ClassIKE},
		{"frag/first-esp", frame(t, link, ip4(tun4, protoESP, frag(layers.IPv4MoreFragments, 0)), espBody(5)), ClassESP},
		{"frag/first-l2tp-control", frame(t, link, ip4(tun4, protoL2TP, frag(layers.IPv4MoreFragments, 0)), l2tpIP(0)), ClassL2TPControl},
		{"frag/first-tcp", frame(t, link, ip4(tun4, protoTCP, frag(layers.IPv4MoreFragments, 0)), &layers.TCP{SrcPort: 1, DstPort: 2083}), ClassOtherPass},
		{"df/esp", frame(t, link, ip4(tun4, protoESP, frag(layers.IPv4DontFragment, 0)), espBody(5)), ClassESP},
		{"ihl6/esp-udp", frame(t, link, ip4(tun4, protoUDP, ihl(6)), udp(4500, portNATT), espBody(5)), ClassESPUDP},
		{"ihl6/keepalive", frame(t, link, ip4(tun4, protoUDP, ihl(6)), udp(4500, portNATT), pay(0xff)), ClassNATKeepalive},
		{"ihl15/esp-udp", frame(t, link, ip4(tun4, protoUDP, ihl(15)), udp(4500, portNATT), espBody(5)), ClassESPUDP},
		{"ihl15/ike", frame(t, link, ip4(tun4, protoUDP, ihl(15)), udp(4500, portNATT), ikeNATT()), ClassIKE},
		{"ihl15/l2tp-ip", frame(t, link, ip4(tun4, protoL2TP, ihl(15)), l2tpIP(9)), ClassL2TPIP},
		{"ihl15/l2tp-ip-control", frame(t, link, ip4(tun4, protoL2TP, ihl(15)), l2tpIP(0)), ClassL2TPControl},
		{"ihl15/l2tp-udp", frame(t, link, ip4(tun4, protoUDP, ihl(15)), udp(1701, portL2TP), l2tpUDP(3, 9)), ClassL2TPUDP},
		{"ihl15/frag", frame(t, link, ip4(tun4, protoUDP, func(h *layers.IPv4) { ihl(15)(h); frag(0, 9)(h) }), pay(1, 2)), ClassFragment},
	}
	// Malformed headers under the IPv4 EtherType: the kernel's problem.
	bad := frame(t, link, ip(tun4, protoESP), espBody(5))
	l3 := 14 + 4*len(link.vlans)
	ihl4 := append([]byte(nil), bad...)
	ihl4[l3] = 0x44
	v6 := append([]byte(nil), bad...)
	v6[l3] = 0x65
	cs = append(cs,
		runCase{"bad/ihl4", ihl4, ClassOtherPass},
		runCase{"bad/version6", v6, ClassOtherPass},
	)
	for _, c := range cs { // the builder really produced the header lengths named
		for prefix, want := range map[string]byte{"ihl6/": 6, "ihl15/": 15} {
			if strings.HasPrefix(c.name, prefix) && c.frame[l3]&0x0f != want {
				t.Fatalf("%s: built IHL %d, want %d", c.name, c.frame[l3]&0x0f, want)
			}
		}
	}
	return cs
}

func ipv6Cases(t *testing.T, link l2) []runCase {
	ext := func(next layers.IPProtocol, ls ...gopacket.SerializableLayer) []byte {
		return frame(t, link, append([]gopacket.SerializableLayer{ip(tun6, next)}, ls...)...)
	}
	// A generic 8-octet extension header: next header ESP, length 0.
	extHdr := pay(50, 0, 0, 0, 0, 0, 0, 0)
	cs := []runCase{
		{"ext/hop-by-hop", ext(layers.IPProtocolIPv6HopByHop, extHdr, espBody(5)), ClassIPv6Ext},
		{"ext/routing", ext(layers.IPProtocolIPv6Routing, extHdr, espBody(5)), ClassIPv6Ext},
		{"ext/fragment", ext(layers.IPProtocolIPv6Fragment, pay(17, 0, 0, 1, 0, 0, 0, 1), udp(4500, portNATT), espBody(5)), ClassIPv6Ext},
		{"ext/fragment-non-first", ext(layers.IPProtocolIPv6Fragment, pay(17, 0, 0x05, 0xc8, 0, 0, 0, 1), pay(make([]byte, 32)...)), ClassIPv6Ext},
		{"ext/destination", ext(layers.IPProtocolIPv6Destination, extHdr, espBody(5)), ClassIPv6Ext},
		{"ext/ah", ext(layers.IPProtocolAH, pay(50, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), espBody(5)), ClassIPv6Ext},
		{"ext/mobility", ext(layers.IPProtocol(135), extHdr), ClassIPv6Ext},
		{"ext/not-ours", frame(t, link, ip(other6, layers.IPProtocolIPv6HopByHop), extHdr, espBody(5)), ClassNotOurs},
		{"no-next-header", ext(layers.IPProtocolNoNextHeader), ClassOtherPass},
	}
	bad := frame(t, link, ip(tun6, protoESP), espBody(5))
	v4 := append([]byte(nil), bad...)
	v4[14+4*len(link.vlans)] = 0x45
	return append(cs, runCase{"bad/version4", v4, ClassOtherPass})
}

func l2Cases(t *testing.T) []runCase {
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: macAP, SourceProtAddress: ap4.AsSlice(),
		DstHwAddress: make([]byte, 6), DstProtAddress: tun4.AsSlice()}
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	lldp := net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e}
	return []runCase{
		{"arp", frame(t, l2{dst: bcast}, arp), ClassOtherPass},
		{"arp/padded", pad60(frame(t, l2{dst: bcast}, arp)), ClassOtherPass},
		{"arp/vlan", frame(t, l2{dst: bcast, vlans: []uint16{100}}, arp), ClassOtherPass},
		{"lldp", frame(t, l2{dst: lldp}, pay(make([]byte, 46)...)), ClassOtherPass},
		{"qinq-8100/esp", frame(t, l2{vlans: []uint16{300, 100}}, ip(tun4, protoESP), espBody(5)), ClassOtherPass},
		{"qinq-88a8/esp", frame(t, l2{vlans: []uint16{300}, outer: layers.EthernetTypeQinQ}, ip(tun4, protoESP), espBody(5)), ClassOtherPass},
		{"vlan/non-ip", frame(t, l2{vlans: []uint16{7}}, pay(make([]byte, 46)...)), ClassOtherPass},
		{"ethernet-only-14", frame(t, plain, pay()), ClassOtherPass},
	}
}

// TestDownstreamClassify runs every classification through xdp_downstream
// with BPF_PROG_RUN, IPv4 and IPv6, untagged and 802.1Q-tagged, and checks
// the verdict and which counters moved.
func TestDownstreamClassify(t *testing.T) {
	p := load(t, Downstream, tun4, tun6)
	for _, link := range []struct {
		name string
		l2
	}{{"untagged", plain}, {"dot1q", tagged}} {
		groups := map[string][]runCase{
			"ipv4": append(familyCases(t, tun4, other4, link.l2), ipv4Cases(t, link.l2)...),
			"ipv6": append(familyCases(t, tun6, other6, link.l2), ipv6Cases(t, link.l2)...),
			"icmp": icmpCases(t, link.l2),
		}
		for _, g := range []string{"ipv4", "ipv6", "icmp"} {
			for _, tc := range groups[g] {
				t.Run(link.name+"/"+g+"/"+tc.name, func(t *testing.T) {
					runClass(t, p, tc.frame, tc.want)
				})
			}
		}
	}
	for _, tc := range l2Cases(t) {
		t.Run("l2/"+tc.name, func(t *testing.T) { runClass(t, p, tc.frame, tc.want) })
	}
}

// TestDownstreamAddressConfig: the same frames with no tunnel address, with
// one family only, after SetAddrs moves the address, and with an IPv4-mapped
// IPv6 address.
func TestDownstreamAddressConfig(t *testing.T) {
	esp4 := frame(t, plain, ip(tun4, protoESP), espBody(5))
	esp6 := frame(t, plain, ip(tun6, protoESP), espBody(5))
	frag4 := frame(t, plain, ip4(tun4, protoUDP, func(h *layers.IPv4) { h.FragOffset = 10 }), pay(1, 2, 3))
	natt4 := frame(t, plain, ip(tun4, protoUDP), udp(4500, portNATT), espBody(5))
	l2tp6 := frame(t, tagged, ip(tun6, protoL2TP), l2tpIP(5))
	espOther4 := frame(t, plain, ip(other4, protoESP), espBody(5))

	t.Run("none", func(t *testing.T) {
		p := load(t, Downstream)
		for _, f := range [][]byte{esp4, esp6, frag4, natt4, l2tp6} {
			runClass(t, p, f, ClassNotOurs)
		}
	})
	t.Run("ipv4-only", func(t *testing.T) {
		p := load(t, Downstream, tun4)
		runClass(t, p, esp4, ClassESP)
		runClass(t, p, esp6, ClassNotOurs)
		runClass(t, p, l2tp6, ClassNotOurs)
	})
	t.Run("ipv6-only", func(t *testing.T) {
		p := load(t, Downstream, tun6)
		runClass(t, p, esp4, ClassNotOurs)
		runClass(t, p, esp6, ClassESP)
		runClass(t, p, l2tp6, ClassL2TPIP)
	})
	t.Run("set-addrs", func(t *testing.T) {
		p := load(t, Downstream, tun4, tun6)
		runClass(t, p, esp4, ClassESP)
		runClass(t, p, espOther4, ClassNotOurs)
		if err := p.SetAddrs([]netip.Addr{other4}); err != nil {
			t.Fatalf("SetAddrs(%v) = %v", other4, err)
		}
		runClass(t, p, esp4, ClassNotOurs)
		runClass(t, p, esp6, ClassNotOurs)
		runClass(t, p, espOther4, ClassESP)
		if err := p.SetAddrs(nil); err != nil {
			t.Fatalf("SetAddrs(nil) = %v", err)
		}
		runClass(t, p, espOther4, ClassNotOurs)
		runClass(t, p, natt4, ClassNotOurs)
		mapped := netip.AddrFrom16(tun4.As16()) // ::ffff:198.18.0.1
		if err := p.SetAddrs([]netip.Addr{mapped, tun6, tun6}); err != nil {
			t.Fatalf("SetAddrs(%v) = %v", mapped, err)
		}
		runClass(t, p, natt4, ClassESPUDP)
		runClass(t, p, l2tp6, ClassL2TPIP)
	})
}

// TestSetAddrsFullSwap replaces a full set of addresses with a disjoint full
// set (the maps have room for both during the swap) and checks the maps
// hold exactly the new set.
func TestSetAddrsFullSwap(t *testing.T) {
	gen := func(base byte) []netip.Addr {
		var as []netip.Addr
		for i := range MaxAddrs {
			as = append(as, netip.AddrFrom4([4]byte{198, 18, base, byte(i + 1)}),
				netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: base, 14: byte(i + 1)}))
		}
		return as
	}
	a, b := gen(1), gen(2)
	p := load(t, Downstream, a...)
	if err := p.SetAddrs(b); err != nil {
		t.Fatalf("SetAddrs(second full set) = %v", err)
	}
	want := map[netip.Addr]bool{}
	for _, x := range b {
		want[x] = true
	}
	got := map[netip.Addr]bool{}
	var k4 [4]byte
	var k16 [16]byte
	var v uint8
	for it := p.v4.Iterate(); it.Next(&k4, &v); {
		got[netip.AddrFrom4(k4)] = true
	}
	for it := p.v6.Iterate(); it.Next(&k16, &v); {
		got[netip.AddrFrom16(k16)] = true
	}
	if !maps.Equal(got, want) {
		t.Errorf("maps hold %d addresses %v, want %d %v", len(got), got, len(want), want)
	}
	runClass(t, p, frame(t, plain, ip(b[0], protoESP), espBody(1)), ClassESP)
	runClass(t, p, frame(t, plain, ip(a[0], protoESP), espBody(1)), ClassNotOurs)
	runClass(t, p, frame(t, plain, ip(b[len(b)-1], protoESP), espBody(1)), ClassESP)
}

func TestAddrValidation(t *testing.T) {
	many := func(n int, v6 bool) []netip.Addr {
		var as []netip.Addr
		for i := range n {
			if v6 {
				as = append(as, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}))
			} else {
				as = append(as, netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}))
			}
		}
		return as
	}
	for _, tc := range []struct {
		name  string
		addrs []netip.Addr
		ok    bool
	}{
		{"nil", nil, true},
		{"16+16", append(many(16, false), many(16, true)...), true},
		{"dup-counts-once", append(many(16, false), many(16, false)...), true},
		{"17-v4", many(17, false), false},
		{"17-v6", many(17, true), false},
		{"invalid", []netip.Addr{{}}, false},
		{"unspecified-v4", []netip.Addr{netip.IPv4Unspecified()}, false},
		{"unspecified-v6", []netip.Addr{netip.IPv6Unspecified()}, false},
		{"multicast", []netip.Addr{netip.MustParseAddr("224.0.0.5")}, false},
		{"zone-dropped", []netip.Addr{netip.MustParseAddr("fe80::1%eth0")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := normalize(tc.addrs)
			if (err == nil) != tc.ok {
				t.Errorf("normalize(%v) = %v, want ok %v", tc.addrs, err, tc.ok)
			}
		})
	}
	p := load(t, Downstream, tun4)
	if err := p.SetAddrs(many(17, false)); err == nil {
		t.Errorf("SetAddrs(17 IPv4) = nil, want error")
	}
	runClass(t, p, frame(t, plain, ip(tun4, protoESP), espBody(1)), ClassESP) // unchanged
	if _, err := Load(Upstream, []netip.Addr{tun4}); !errors.Is(err, ErrNoAddrs) {
		t.Errorf("Load(Upstream, %v) = %v, want %v", tun4, err, ErrNoAddrs)
	}
	if _, err := Load(Role(9), nil); err == nil {
		t.Errorf("Load(Role(9)) = nil, want error")
	}
}

// truncation sweeps: every prefix of a frame from 14 octets up. Below need
// the program must count truncated (and pass); from need on, the frame's
// own class. Never an error.
func TestDownstreamTruncated(t *testing.T) {
	p := load(t, Downstream, tun4, tun6)
	frag := func(h *layers.IPv4) { h.FragOffset = 3 }
	opts15 := func(h *layers.IPv4) {
		h.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
		for range 36 {
			h.Options = append(h.Options, layers.IPv4Option{OptionType: 1})
		}
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		need  int
		want  Class
	}{
		{"v4/esp", frame(t, plain, ip(tun4, protoESP), espBody(5)), 14 + 20, ClassESP},
		{"v4/not-ours", frame(t, plain, ip(other4, protoUDP), udp(1, 4500), espBody(5)), 14 + 20, ClassNotOurs},
		{"v4/fragment", frame(t, plain, ip4(tun4, protoUDP, frag), pay(make([]byte, 24)...)), 14 + 20, ClassFragment},
		{"v4/tcp", frame(t, plain, ip(tun4, protoTCP), &layers.TCP{DstPort: 2083}), 14 + 20, ClassOtherPass},
		{"v4/esp-udp", frame(t, plain, ip(tun4, protoUDP), udp(4500, portNATT), espBody(5)), 14 + 20 + 8 + 4, ClassESPUDP},
		{"v4/ike-500", frame(t, plain, ip(tun4, protoUDP), udp(500, portIKE), pay(ikeHeader()...)), 14 + 20 + 8, ClassIKE},
		{"v4/ike-4500", frame(t, plain, ip(tun4, protoUDP), udp(4500, portNATT), ikeNATT()), 14 + 20 + 8 + 4, ClassIKE},
		{"v4/keepalive", frame(t, plain, ip(tun4, protoUDP), udp(4500, portNATT), pay(0xff)), 14 + 20 + 8 + 1, ClassNATKeepalive},
		{"v4/l2tp-ip", frame(t, plain, ip(tun4, protoL2TP), l2tpIP(7)), 14 + 20 + 4, ClassL2TPIP},
		{"v4/dot1q/l2tp-udp", frame(t, tagged, ip(tun4, protoUDP), udp(1701, portL2TP), l2tpUDP(3, 7)), 14 + 4 + 20 + 8 + 2, ClassL2TPUDP},
		{"v4/dot1q/l2tp-udp-control", frame(t, tagged, ip(tun4, protoUDP), udp(1701, portL2TP), l2tpUDP(0xc803, 0)), 14 + 4 + 20 + 8 + 2, ClassL2TPControl},
		{"v4/ihl15/esp-udp", frame(t, plain, ip4(tun4, protoUDP, opts15), udp(4500, portNATT), espBody(5)), 14 + 60 + 8 + 4, ClassESPUDP},
		{"v4/dot1q/ihl15/l2tp-ip-control", frame(t, tagged, ip4(tun4, protoL2TP, opts15), l2tpIP(0)), 14 + 4 + 60 + 4, ClassL2TPControl},
		{"v6/esp", frame(t, plain, ip(tun6, protoESP), espBody(5)), 14 + 40, ClassESP},
		{"v6/dot1q/not-ours", frame(t, tagged, ip(other6, protoESP), espBody(5)), 14 + 4 + 40, ClassNotOurs},
		{"v6/ext", frame(t, plain, ip(tun6, layers.IPProtocolIPv6HopByHop), pay(50, 0, 0, 0, 0, 0, 0, 0), espBody(5)), 14 + 40, ClassIPv6Ext},
		{"v6/esp-udp", frame(t, plain, ip(tun6, protoUDP), udp(4500, portNATT), espBody(5)), 14 + 40 + 8 + 4, ClassESPUDP},
		{"v6/dot1q/l2tp-ip", frame(t, tagged, ip(tun6, protoL2TP), l2tpIP(7)), 14 + 4 + 40 + 4, ClassL2TPIP},
		{"v6/l2tp-udp", frame(t, plain, ip(tun6, protoUDP), udp(1701, portL2TP), l2tpUDP(3, 7)), 14 + 40 + 8 + 2, ClassL2TPUDP},
		{"dot1q/arp", frame(t, l2{vlans: []uint16{5}}, &layers.ARP{AddrType: 1, Protocol: 0x0800, HwAddressSize: 6, ProtAddressSize: 4,
			SourceHwAddress: macAP, SourceProtAddress: ap4.AsSlice(), DstHwAddress: make([]byte, 6), DstProtAddress: tun4.AsSlice()}), 14 + 4, ClassOtherPass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.frame) < tc.need {
				t.Fatalf("frame is %d bytes, need %d", len(tc.frame), tc.need)
			}
			for n := MinFrameLen; n <= len(tc.frame); n++ {
				want := tc.want
				if n < tc.need {
					want = ClassTruncated
				}
				// A fresh copy of exactly n bytes: nothing readable past the cut.
				f := append(make([]byte, 0, n), tc.frame[:n]...)
				t.Run(strconv.Itoa(n), func(t *testing.T) { runClass(t, p, f, want) })
			}
		})
	}
	if _, err := p.Run(make([]byte, MinFrameLen-1)); !errors.Is(err, ErrFrameTooShort) {
		t.Errorf("Run(13 bytes) = %v, want %v", err, ErrFrameTooShort)
	}
}

// TestUpstreamClassify: the trunk program sends everything to AF_XDP except
// the IEEE 802.1D link-local group.
func TestUpstreamClassify(t *testing.T) {
	p := load(t, Upstream)
	mac := func(b ...byte) net.HardwareAddr { return net.HardwareAddr(b) }
	ipv4 := func(dst net.HardwareAddr) []byte {
		return frame(t, l2{dst: dst}, ip(other4, protoUDP), udp(1000, 2000), pay(make([]byte, 30)...))
	}
	arp := &layers.ARP{AddrType: 1, Protocol: 0x0800, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
		SourceHwAddress: macAP, SourceProtAddress: ap4.AsSlice(), DstHwAddress: make([]byte, 6), DstProtAddress: other4.AsSlice()}
	cases := []runCase{
		{"unicast", ipv4(macGW), ClassTrunk},
		{"dot1q", frame(t, l2{vlans: []uint16{42}}, ip(other4, protoTCP), &layers.TCP{DstPort: 443}), ClassTrunk},
		{"qinq", frame(t, l2{vlans: []uint16{300, 42}}, ip(other4, protoTCP), &layers.TCP{DstPort: 443}), ClassTrunk},
		{"arp-broadcast", frame(t, l2{dst: mac(0xff, 0xff, 0xff, 0xff, 0xff, 0xff)}, arp), ClassTrunk},
		{"ipv6-multicast", frame(t, l2{dst: mac(0x33, 0x33, 0, 0, 0, 1)}, ip(tun6, layers.IPProtocolICMPv6),
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(134, 0)}, pay(make([]byte, 12)...)), ClassTrunk},
		{"esp-to-tunnel-address", frame(t, plain, ip(tun4, protoESP), espBody(5)), ClassTrunk},
		{"ike-to-tunnel-address", frame(t, plain, ip(tun4, protoUDP), udp(500, 500), pay(ikeHeader()...)), ClassTrunk},
		{"14-bytes", ipv4(macGW)[:14], ClassTrunk},
		{"stp-00", ipv4(mac(0x01, 0x80, 0xc2, 0, 0, 0x00)), ClassLinkLocal},
		{"pause-01", ipv4(mac(0x01, 0x80, 0xc2, 0, 0, 0x01)), ClassLinkLocal},
		{"lacp-02", ipv4(mac(0x01, 0x80, 0xc2, 0, 0, 0x02)), ClassLinkLocal},
		{"pae-03", ipv4(mac(0x01, 0x80, 0xc2, 0, 0, 0x03)), ClassLinkLocal},
		{"lldp-0e", ipv4(mac(0x01, 0x80, 0xc2, 0, 0, 0x0e)), ClassLinkLocal},
		{"0f", ipv4(mac(0x01, 0x80, 0xc2, 0, 0, 0x0f)), ClassLinkLocal},
		{"lldp-14-bytes", ipv4(mac(0x01, 0x80, 0xc2, 0, 0, 0x0e))[:14], ClassLinkLocal},
		{"lldp-dot1q", frame(t, l2{dst: mac(0x01, 0x80, 0xc2, 0, 0, 0x0e), vlans: []uint16{1}}, pay(make([]byte, 40)...)), ClassLinkLocal},
		{"all-bridges-10", ipv4(mac(0x01, 0x80, 0xc2, 0, 0, 0x10)), ClassTrunk},
		{"mvrp-21", ipv4(mac(0x01, 0x80, 0xc2, 0, 0, 0x21)), ClassTrunk},
		{"cfm-30", ipv4(mac(0x01, 0x80, 0xc2, 0, 0, 0x30)), ClassTrunk},
		{"01:80:c2:00:01:00", ipv4(mac(0x01, 0x80, 0xc2, 0, 1, 0)), ClassTrunk},
		{"01:80:c2:01:00:00", ipv4(mac(0x01, 0x80, 0xc2, 1, 0, 0)), ClassTrunk},
		{"01:80:c3:00:00:00", ipv4(mac(0x01, 0x80, 0xc3, 0, 0, 0)), ClassTrunk},
		{"03:80:c2:00:00:00", ipv4(mac(0x03, 0x80, 0xc2, 0, 0, 0)), ClassTrunk},
		{"01:81:c2:00:00:00", ipv4(mac(0x01, 0x81, 0xc2, 0, 0, 0)), ClassTrunk},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runClass(t, p, tc.frame, tc.want) })
	}
	if err := p.SetAddrs([]netip.Addr{tun4}); !errors.Is(err, ErrNoAddrs) {
		t.Errorf("upstream SetAddrs(%v) = %v, want %v", tun4, err, ErrNoAddrs)
	}
	if err := p.SetAddrs(nil); err != nil {
		t.Errorf("upstream SetAddrs(nil) = %v", err)
	}
}

// TestRandomFrames throws random and mutated frames at both programs: the
// verdict is always XDP_PASS (no socket), never an error, and exactly one
// classification counter moves per frame.
func TestRandomFrames(t *testing.T) {
	down, up := load(t, Downstream, tun4, tun6), load(t, Upstream)
	seeds := [][]byte{
		frame(t, plain, ip(tun4, protoUDP), udp(4500, portNATT), espBody(5)),
		frame(t, tagged, ip(tun6, protoUDP), udp(1701, portL2TP), l2tpUDP(3, 5)),
		frame(t, plain, ip(tun4, protoL2TP), l2tpIP(5)),
		frame(t, tagged, ip(tun6, protoESP), espBody(5)),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		var f []byte
		if i%2 == 0 {
			f = make([]byte, MinFrameLen+rng.IntN(120))
			for j := range f {
				f[j] = byte(rng.Uint32())
			}
			if i%4 == 0 { // steer some toward the IP paths
				copy(f[12:], []byte{[]byte{0x08, 0x86, 0x81}[rng.IntN(3)], []byte{0x00, 0xdd}[rng.IntN(2)]})
			}
		} else {
			s := seeds[rng.IntN(len(seeds))]
			f = append([]byte(nil), s[:MinFrameLen+rng.IntN(len(s)-MinFrameLen+1)]...)
			for range 1 + rng.IntN(3) {
				f[rng.IntN(len(f))] ^= byte(1 + rng.IntN(255))
			}
		}
		for _, p := range []*Program{down, up} {
			checkOneClass(t, p, f)
		}
	}
}

func checkOneClass(t testing.TB, p *Program, f []byte) {
	t.Helper()
	before := counters(t, p)
	v, err := p.Run(f)
	if err != nil {
		t.Fatalf("%s Run(%x) = %v", p.Role(), f, err)
	}
	d := delta(before, counters(t, p))
	var classes, outcomes uint64
	toXSK := false
	for c, n := range d {
		if c.Outcome() {
			outcomes += n
		} else {
			classes += n
			toXSK = toXSK || c.ToXSK()
		}
	}
	if v != XDPPass || classes != 1 || (toXSK && (outcomes != 1 || d[ClassXSKMissing] != 1)) || (!toXSK && outcomes != 0) {
		t.Fatalf("%s Run(%x) = %d, counted %s; want XDP_PASS and one class", p.Role(), f, v, fmtDelta(d))
	}
}

func TestClasses(t *testing.T) {
	if NumClasses != 16 {
		t.Errorf("NumClasses = %d, want 16 (update the tests and the C comment when adding classes)", NumClasses)
	}
	seen := map[string]Class{}
	for c := range NumClasses {
		n := c.String()
		if strings.HasPrefix(n, "class(") {
			t.Errorf("Class(%d) has no name", c)
		}
		if prev, dup := seen[n]; dup {
			t.Errorf("Class(%d) and Class(%d) are both %q", prev, c, n)
		}
		seen[n] = c
	}
	if got := NumClasses.String(); got != "class(16)" {
		t.Errorf("NumClasses.String() = %q", got)
	}
	xsk := []Class{ClassESP, ClassESPUDP, ClassL2TPIP, ClassL2TPUDP, ClassFragment, ClassTrunk}
	for c := range NumClasses {
		want := false
		for _, x := range xsk {
			want = want || x == c
		}
		if c.ToXSK() != want {
			t.Errorf("%s.ToXSK() = %v, want %v", c, c.ToXSK(), want)
		}
	}
}

func TestModes(t *testing.T) {
	for _, m := range []Mode{Auto, Native, Generic} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v, want %v", m.String(), got, err, m)
		}
	}
	if _, err := ParseMode("offload"); err == nil {
		t.Errorf("ParseMode(offload) = nil error")
	}
}

// TestMapShapes checks the C constants against their Go mirrors.
func TestMapShapes(t *testing.T) {
	for _, role := range []Role{Downstream, Upstream} {
		p := load(t, role)
		check := func(name string, m *ebpf.Map, typ ebpf.MapType, entries uint32) {
			if m.Type() != typ || m.MaxEntries() != entries {
				t.Errorf("%s %s: %s with %d entries, want %s with %d", role, name, m.Type(), m.MaxEntries(), typ, entries)
			}
		}
		check("xsks", p.xsks, ebpf.XSKMap, MaxQueues)
		check("steer_counters", p.counters, ebpf.PerCPUArray, uint32(NumClasses))
		if role == Downstream {
			check("tunnel_v4", p.v4, ebpf.Hash, 2*MaxAddrs)
			check("tunnel_v6", p.v6, ebpf.Hash, 2*MaxAddrs)
		}
		c := counters(t, p)
		if len(c) != int(NumClasses) {
			t.Errorf("Counters() has %d classes, want %d", len(c), NumClasses)
		}
	}
}

func TestCloseIdempotent(t *testing.T) {
	requireBPF(t)
	p, err := Load(Downstream, []netip.Addr{tun4})
	if err != nil {
		if bpfUnavailable(err) {
			skipLoudly(t, err.Error())
		}
		t.Fatal(err)
	}
	for i := range 2 {
		if err := p.Close(); err != nil {
			t.Fatalf("Close() #%d = %v", i+1, err)
		}
	}
	if err := p.Detach(); err != nil {
		t.Errorf("Detach() after Close = %v", err)
	}
	f := frame(t, plain, ip(tun4, protoESP), espBody(5))
	for name, err := range map[string]error{
		"Attach":        p.Attach(1, Auto),
		"SetAddrs":      p.SetAddrs(nil),
		"RegisterXSK":   p.RegisterXSK(0, 0),
		"UnregisterXSK": p.UnregisterXSK(0),
		"Run":           func() error { _, err := p.Run(f); return err }(),
		"Counters":      func() error { _, err := p.Counters(); return err }(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want %v", name, err, ErrClosed)
		}
	}
}

func TestRegisterXSKErrors(t *testing.T) {
	p := load(t, Downstream, tun4)
	for _, q := range []int{-1, MaxQueues} {
		if err := p.RegisterXSK(q, 0); err == nil {
			t.Errorf("RegisterXSK(%d, 0) = nil, want out of range", q)
		}
	}
	if err := p.RegisterXSK(0, -1); err == nil {
		t.Errorf("RegisterXSK(0, -1) = nil, want error")
	}
	// Not an AF_XDP socket: the kernel refuses it.
	if err := p.RegisterXSK(0, int(p.counters.FD())); err == nil {
		t.Errorf("RegisterXSK(0, map fd) = nil, want error")
	}
	if err := p.UnregisterXSK(3); err != nil {
		t.Errorf("UnregisterXSK(empty slot) = %v", err)
	}
	runClass(t, p, frame(t, plain, ip(tun4, protoESP), espBody(5)), ClassESP)
}
