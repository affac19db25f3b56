package steer

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

// Addresses: tunnel and test-network addresses in 198.18.0.0/15 (RFC 2544),
// IPv6 in 2001:db8::/32 (RFC 3849).
var (
	tun4   = netip.MustParseAddr("198.18.0.1")
	other4 = netip.MustParseAddr("198.18.0.99")
	ap4    = netip.MustParseAddr("198.19.0.10")
	tun6   = netip.MustParseAddr("2001:db8::1")
	other6 = netip.MustParseAddr("2001:db8::99")
	ap6    = netip.MustParseAddr("2001:db8:ab::10")

	macAP = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a}
	macGW = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
)

// bpfUnavailable reports whether err means the kernel or our privileges do
// not allow BPF at all, as opposed to our program failing.
func bpfUnavailable(err error) bool {
	return errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EPERM) || errors.Is(err, os.ErrPermission)
}

func skipLoudly(t testing.TB, why string) {
	t.Helper()
	msg := "!!!!!!!! BPF UNAVAILABLE: " + why + " -- the XDP steering programs were NOT tested in this run !!!!!!!!"
	fmt.Fprintln(os.Stderr, msg)
	t.Skip(msg)
}

// requireBPF skips the test, loudly, unless this process can load BPF.
func requireBPF(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipLoudly(t, fmt.Sprintf("not root (euid %d); run the tests as root", os.Geteuid()))
	}
}

// load loads a program for role, skipping only when BPF is unavailable, and
// closes it when the test ends.
func load(t testing.TB, role Role, addrs ...netip.Addr) *Program {
	t.Helper()
	requireBPF(t)
	p, err := Load(role, addrs)
	if err != nil {
		if bpfUnavailable(err) {
			skipLoudly(t, err.Error())
		}
		t.Fatalf("Load(%s, %v) = %v", role, addrs, err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return p
}

func counters(t testing.TB, p *Program) map[Class]uint64 {
	t.Helper()
	c, err := p.Counters()
	if err != nil {
		t.Fatalf("Counters() = %v", err)
	}
	return c
}

// delta returns after-before for the classes that changed.
func delta(before, after map[Class]uint64) map[Class]uint64 {
	d := map[Class]uint64{}
	for c := range NumClasses {
		if n := after[c] - before[c]; n != 0 {
			d[c] = n
		}
	}
	return d
}

// wantDelta is the counter change one frame of class c causes when no
// AF_XDP socket is registered.
func wantDelta(c Class) map[Class]uint64 {
	d := map[Class]uint64{c: 1}
	if c.ToXSK() {
		d[ClassXSKMissing] = 1
	}
	return d
}

func fmtDelta(d map[Class]uint64) string {
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(d)) {
		parts = append(parts, fmt.Sprintf("%s+%d", c, d[c]))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// runClass runs frame through p once and checks the verdict and that exactly
// the counters of class want moved. Counters are compared as deltas, so
// cases need no reset and may share a program (not in parallel).
func runClass(t testing.TB, p *Program, frame []byte, want Class) {
	t.Helper()
	runWant(t, p, frame, XDPPass, wantDelta(want))
}

func runWant(t testing.TB, p *Program, frame []byte, wantVerdict uint32, want map[Class]uint64) {
	t.Helper()
	before := counters(t, p)
	v, err := p.Run(frame)
	if err != nil {
		t.Fatalf("Run(%d bytes %x) = %v", len(frame), frame, err)
	}
	got := delta(before, counters(t, p))
	if v != wantVerdict {
		t.Errorf("Run(%d bytes) verdict = %d, want %d (counted %s)", len(frame), v, wantVerdict, fmtDelta(got))
	}
	if !maps.Equal(got, want) {
		t.Errorf("Run(%d bytes %x) counted %s, want %s", len(frame), frame, fmtDelta(got), fmtDelta(want))
	}
}

// --- frame builders (gopacket) ---

type l2 struct {
	dst   net.HardwareAddr
	vlans []uint16 // 802.1Q tags, outermost first
	outer layers.EthernetType
}

var plain = l2{}
var tagged = l2{vlans: []uint16{100}}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return slices.Clone(buf.Bytes())
}

// frame wraps the network-layer stack ls in Ethernet (and VLAN tags per
// link). The EtherType follows the first layer; transport layers get their
// pseudo-header from the IP layer for checksums.
func frame(t testing.TB, link l2, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	var et layers.EthernetType
	var netLayer gopacket.NetworkLayer
	switch l := ls[0].(type) {
	case *layers.IPv4:
		et, netLayer = layers.EthernetTypeIPv4, l
	case *layers.IPv6:
		et, netLayer = layers.EthernetTypeIPv6, l
	case *layers.ARP:
		et = layers.EthernetTypeARP
	case *layers.Dot1Q:
		et = layers.EthernetTypeDot1Q
	default:
		et = layers.EthernetType(0x88b5) // IEEE local experimental
	}
	for _, l := range ls[1:] {
		switch l := l.(type) {
		case *layers.UDP:
			_ = l.SetNetworkLayerForChecksum(netLayer)
		case *layers.TCP:
			_ = l.SetNetworkLayerForChecksum(netLayer)
		case *layers.ICMPv6:
			_ = l.SetNetworkLayerForChecksum(netLayer)
		}
	}
	dst := link.dst
	if dst == nil {
		dst = macGW
	}
	var out []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: macAP, DstMAC: dst, EthernetType: et}
	out = append(out, eth)
	for i, id := range link.vlans {
		tag := &layers.Dot1Q{VLANIdentifier: id, Type: et}
		if i == 0 {
			eth.EthernetType = layers.EthernetTypeDot1Q
			if link.outer != 0 {
				eth.EthernetType = link.outer
			}
		}
		if i+1 < len(link.vlans) {
			tag.Type = layers.EthernetTypeDot1Q
		}
		out = append(out, tag)
	}
	return serialize(t, append(out, ls...)...)
}

// ip returns an IPv4 or IPv6 header from ap4/ap6 to dst carrying proto.
func ip(dst netip.Addr, proto layers.IPProtocol) gopacket.SerializableLayer {
	if dst.Is4() {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto,
			SrcIP: ap4.AsSlice(), DstIP: dst.AsSlice()}
	}
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto,
		SrcIP: ap6.AsSlice(), DstIP: dst.AsSlice()}
}

func ip4(dst netip.Addr, proto layers.IPProtocol, mod func(*layers.IPv4)) *layers.IPv4 {
	h := ip(dst, proto).(*layers.IPv4)
	if mod != nil {
		mod(h)
	}
	return h
}

func udp(src, dst layers.UDPPort) *layers.UDP { return &layers.UDP{SrcPort: src, DstPort: dst} }

func pay(b ...byte) gopacket.Payload { return gopacket.Payload(b) }

// espBody: RFC 4303 SPI, sequence number, then opaque ciphertext.
func espBody(spi uint32) gopacket.Payload {
	b := []byte{byte(spi >> 24), byte(spi >> 16), byte(spi >> 8), byte(spi), 0, 0, 0, 1}
	return append(b, make([]byte, 40)...)
}

// ikeHeader: an IKEv2 IKE_SA_INIT header (RFC 7296 3.1), 28 octets.
func ikeHeader() []byte {
	h := make([]byte, 28)
	copy(h, []byte{1, 2, 3, 4, 5, 6, 7, 8}) // initiator SPI
	h[16], h[17], h[18] = 33, 0x20, 34      // next payload SA, version 2.0, IKE_SA_INIT
	h[19] = 0x08                            // initiator
	h[27] = 28
	return h
}

// ikeNATT: IKE on port 4500 behind the 4-octet non-ESP marker (RFC 3948 2.2).
func ikeNATT() gopacket.Payload { return append([]byte{0, 0, 0, 0}, ikeHeader()...) }

// l2tpIP: RFC 3931 4.1.1.1 session header (session ID, then a cookie/payload).
func l2tpIP(session uint32) gopacket.Payload {
	b := []byte{byte(session >> 24), byte(session >> 16), byte(session >> 8), byte(session)}
	return append(b, make([]byte, 32)...)
}

// l2tpUDP: RFC 3931 4.1.2.1 header: flags+version, reserved, session ID.
func l2tpUDP(flags uint16, session uint32) gopacket.Payload {
	b := []byte{byte(flags >> 8), byte(flags), 0, 0,
		byte(session >> 24), byte(session >> 16), byte(session >> 8), byte(session)}
	return append(b, make([]byte, 32)...)
}

// pad60 pads a frame to the 60-octet Ethernet minimum, as a NIC delivers it.
func pad60(b []byte) []byte {
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}
