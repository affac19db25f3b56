package hdr_test

import (
	"bytes"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/tunterm/tunterm/dataplane/hdr"
)

// ethCase is a frame built by gopacket and the hand-derived result of
// ParseEth on it.
type ethCase struct {
	name string
	ls   []gopacket.SerializableLayer
	want hdr.Eth
}

func ethCases(tb testing.TB) []ethCase {
	tb.Helper()
	eth := func(t layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: macAP, DstMAC: macGW, EthernetType: t}
	}
	tag := func(vid uint16, pcp uint8, dei bool, next layers.EthernetType) *layers.Dot1Q {
		return &layers.Dot1Q{VLANIdentifier: vid, Priority: pcp, DropEligible: dei, Type: next}
	}
	ip4 := gopacket.Payload(udp4(tb, 32))
	ip6 := gopacket.Payload(udp6(tb, 32))
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: macAP, SourceProtAddress: ip4Src.To4(),
		DstHwAddress: make([]byte, 6), DstProtAddress: ip4Dst.To4()}
	// A spanning-tree BPDU: 802.3 length field, LLC 42/42/03, 35-byte config BPDU.
	bpdu := gopacket.Payload(payload(35))
	return []ethCase{
		{"untagged IPv4", []gopacket.SerializableLayer{eth(layers.EthernetTypeIPv4), ip4},
			hdr.Eth{EtherType: hdr.EtherTypeIPv4, HdrLen: 14}},
		{"untagged IPv6", []gopacket.SerializableLayer{eth(layers.EthernetTypeIPv6), ip6},
			hdr.Eth{EtherType: hdr.EtherTypeIPv6, HdrLen: 14}},
		{"untagged ARP", []gopacket.SerializableLayer{eth(layers.EthernetTypeARP), arp},
			hdr.Eth{EtherType: hdr.EtherTypeARP, HdrLen: 14}},
		{"802.1Q VID 100", []gopacket.SerializableLayer{eth(layers.EthernetTypeDot1Q),
			tag(100, 0, false, layers.EthernetTypeIPv4), ip4},
			hdr.Eth{VLAN: 100, Tags: 1, EtherType: hdr.EtherTypeIPv4, HdrLen: 18}},
		{"802.1Q VID 4094 PCP 7 DEI", []gopacket.SerializableLayer{eth(layers.EthernetTypeDot1Q),
			tag(4094, 7, true, layers.EthernetTypeIPv6), ip6},
			hdr.Eth{VLAN: 4094, PCP: 7, Tags: 1, EtherType: hdr.EtherTypeIPv6, HdrLen: 18}},
		{"802.1Q VID 1 PCP 5", []gopacket.SerializableLayer{eth(layers.EthernetTypeDot1Q),
			tag(1, 5, false, layers.EthernetTypeARP), arp},
			hdr.Eth{VLAN: 1, PCP: 5, Tags: 1, EtherType: hdr.EtherTypeARP, HdrLen: 18}},
		{"802.1Q reserved VID 4095", []gopacket.SerializableLayer{eth(layers.EthernetTypeDot1Q),
			tag(4095, 0, false, layers.EthernetTypeIPv4), ip4},
			hdr.Eth{VLAN: 4095, Tags: 1, EtherType: hdr.EtherTypeIPv4, HdrLen: 18}},
		{"priority tag VID 0 PCP 6", []gopacket.SerializableLayer{eth(layers.EthernetTypeDot1Q),
			tag(0, 6, false, layers.EthernetTypeIPv4), ip4},
			hdr.Eth{VLAN: 0, PCP: 6, Tags: 1, EtherType: hdr.EtherTypeIPv4, HdrLen: 18}},
		{"802.1ad S-tag only", []gopacket.SerializableLayer{eth(layers.EthernetTypeQinQ),
			tag(300, 3, false, layers.EthernetTypeIPv4), ip4},
			hdr.Eth{VLAN: 300, PCP: 3, Tags: 1, QinQ: true, EtherType: hdr.EtherTypeIPv4, HdrLen: 18}},
		{"802.1ad S-tag + 802.1Q C-tag", []gopacket.SerializableLayer{eth(layers.EthernetTypeQinQ),
			tag(300, 4, true, layers.EthernetTypeDot1Q), tag(100, 1, false, layers.EthernetTypeIPv6), ip6},
			hdr.Eth{VLAN: 300, PCP: 4, Tags: 2, QinQ: true, InnerVLAN: 100, EtherType: hdr.EtherTypeIPv6, HdrLen: 22}},
		{"802.1Q in 802.1Q (old-style QinQ)", []gopacket.SerializableLayer{eth(layers.EthernetTypeDot1Q),
			tag(10, 0, false, layers.EthernetTypeDot1Q), tag(20, 0, false, layers.EthernetTypeIPv4), ip4},
			hdr.Eth{VLAN: 10, Tags: 2, InnerVLAN: 20, EtherType: hdr.EtherTypeIPv4, HdrLen: 22}},
		{"three tags: third TPID is the EtherType", []gopacket.SerializableLayer{eth(layers.EthernetTypeQinQ),
			tag(300, 0, false, layers.EthernetTypeDot1Q), tag(100, 0, false, layers.EthernetTypeDot1Q),
			tag(7, 0, false, layers.EthernetTypeIPv4), ip4},
			hdr.Eth{VLAN: 300, Tags: 2, QinQ: true, InnerVLAN: 100, EtherType: hdr.EtherTypeVLAN, HdrLen: 22}},
		{"802.3 length + LLC (STP BPDU)", []gopacket.SerializableLayer{eth(layers.EthernetTypeLLC),
			&layers.LLC{DSAP: 0x42, SSAP: 0x42, Control: 0x03}, bpdu},
			hdr.Eth{EtherType: 3 + 35, HdrLen: 14}},
		{"802.1Q + 802.3 length + LLC", []gopacket.SerializableLayer{eth(layers.EthernetTypeDot1Q),
			tag(100, 0, false, layers.EthernetType(3+35)), &layers.LLC{DSAP: 0x42, SSAP: 0x42, Control: 0x03}, bpdu},
			hdr.Eth{VLAN: 100, Tags: 1, EtherType: 3 + 35, HdrLen: 18}},
	}
}

// gopacketEth derives what ParseEth should return from gopacket's decode of
// frame, looking at no more than two tags like ParseEth does.
func gopacketEth(t *testing.T, frame []byte) hdr.Eth {
	t.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	el, ok := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if !ok {
		t.Fatalf("gopacket did not decode Ethernet from %x: %v", frame, p.ErrorLayer())
	}
	e := hdr.Eth{HdrLen: len(el.Contents), EtherType: uint16(el.EthernetType)}
	if el.EthernetType == layers.EthernetTypeLLC {
		e.EtherType = el.Length // the 802.3 length, returned unchanged
	}
	// Only tags right after the Ethernet header count: in an 802.3 frame
	// gopacket may find a Dot1Q after LLC and SNAP (type 0x8100 in the
	// SNAP header), which is payload, not a tag of this frame.
	for _, l := range p.Layers()[1:] {
		q, ok := l.(*layers.Dot1Q)
		if !ok || e.Tags == 2 {
			break
		}
		if e.Tags == 0 {
			e.VLAN, e.PCP, e.QinQ = q.VLANIdentifier, q.Priority, el.EthernetType == layers.EthernetTypeQinQ
		} else {
			e.InnerVLAN = q.VLANIdentifier
		}
		e.Tags++
		e.HdrLen += len(q.Contents)
		e.EtherType = uint16(q.Type)
	}
	return e
}

func TestParseEth(t *testing.T) {
	for _, tc := range ethCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			frame := serialize(t, tc.ls...)
			if gp := gopacketEth(t, frame); gp != tc.want {
				t.Fatalf("test case disagrees with gopacket: gopacket decodes %x as %+v, case wants %+v", frame, gp, tc.want)
			}
			got, ok := hdr.ParseEth(frame)
			if !ok || got != tc.want {
				t.Errorf("ParseEth(%x) = %+v, %v, want %+v, true", frame, got, ok, tc.want)
			}
		})
	}
}

// TestParseEthTruncated cuts every frame at every length: ParseEth must
// succeed exactly when the MAC header and its tags are complete, and then
// return the same result as for the whole frame.
func TestParseEthTruncated(t *testing.T) {
	for _, tc := range ethCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			frame := serialize(t, tc.ls...)
			for n := 0; n <= len(frame); n++ {
				got, ok := hdr.ParseEth(frame[:n])
				wantOK := n >= tc.want.HdrLen
				if ok != wantOK || (ok && got != tc.want) {
					t.Errorf("ParseEth(%x) = %+v, %v, want ok=%v (header is %d bytes)", frame[:n], got, ok, wantOK, tc.want.HdrLen)
				}
			}
		})
	}
}

func TestMACHelpers(t *testing.T) {
	tests := []struct {
		name                       string
		mac                        []byte
		multicast, zero, linkLocal bool
		u64                        uint64
	}{
		{"unicast", []byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}, false, false, false, 0x020000000002},
		{"zero", []byte{0, 0, 0, 0, 0, 0}, false, true, false, 0},
		{"broadcast", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true, false, false, 0xffffffffffff},
		{"STP 01:80:c2:00:00:00", []byte{0x01, 0x80, 0xc2, 0, 0, 0}, true, false, true, 0x0180c2000000},
		{"LACP 01:80:c2:00:00:02", []byte{0x01, 0x80, 0xc2, 0, 0, 0x02}, true, false, true, 0x0180c2000002},
		{"LLDP 01:80:c2:00:00:0e", []byte{0x01, 0x80, 0xc2, 0, 0, 0x0e}, true, false, true, 0x0180c200000e},
		{"GARP 01:80:c2:00:00:20 (not reserved)", []byte{0x01, 0x80, 0xc2, 0, 0, 0x20}, true, false, false, 0x0180c2000020},
		{"IPv4 multicast 01:00:5e:00:00:01", []byte{0x01, 0x00, 0x5e, 0, 0, 1}, true, false, false, 0x01005e000001},
		{"IPv6 multicast 33:33:00:00:00:01", []byte{0x33, 0x33, 0, 0, 0, 1}, true, false, false, 0x333300000001},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := hdr.IsMulticastMAC(tc.mac); got != tc.multicast {
				t.Errorf("IsMulticastMAC(%x) = %v, want %v", tc.mac, got, tc.multicast)
			}
			if got := hdr.IsZeroMAC(tc.mac); got != tc.zero {
				t.Errorf("IsZeroMAC(%x) = %v, want %v", tc.mac, got, tc.zero)
			}
			if got := hdr.IsLinkLocalControl(tc.mac); got != tc.linkLocal {
				t.Errorf("IsLinkLocalControl(%x) = %v, want %v", tc.mac, got, tc.linkLocal)
			}
			if got := hdr.MACUint64(tc.mac); got != tc.u64 {
				t.Errorf("MACUint64(%x) = %#x, want %#x", tc.mac, got, tc.u64)
			}
		})
	}
}

func TestPutEth(t *testing.T) {
	want := serialize(t, &layers.Ethernet{SrcMAC: macAP, DstMAC: macGW, EthernetType: layers.EthernetTypeIPv6})[:14]
	b := bytes.Repeat([]byte{0xee}, 20)
	hdr.PutEth(b, macGW, macAP, hdr.EtherTypeIPv6)
	if !bytes.Equal(b[:14], want) || !bytes.Equal(b[14:], bytes.Repeat([]byte{0xee}, 6)) {
		t.Errorf("PutEth(%x, %x, %#x) wrote %x, want %x followed by untouched bytes", []byte(macGW), []byte(macAP), hdr.EtherTypeIPv6, b, want)
	}
	if d, s := hdr.Dst(b), hdr.Src(b); !bytes.Equal(d, macGW) || !bytes.Equal(s, macAP) || cap(d) != 6 || cap(s) != 6 {
		t.Errorf("Dst, Src(%x) = %x (cap %d), %x (cap %d), want %x, %x with cap 6", b, d, cap(d), s, cap(s), []byte(macGW), []byte(macAP))
	}
}

// firstTag decodes frame with gopacket and returns its Ethernet layer, the
// first Dot1Q tag (nil when untagged) and the bytes after all tags.
func firstTag(t *testing.T, frame []byte) (*layers.Ethernet, *layers.Dot1Q, []layers.Dot1Q) {
	t.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	el, ok := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if !ok {
		t.Fatalf("gopacket did not decode Ethernet from %x", frame)
	}
	var tags []layers.Dot1Q
	for _, l := range p.Layers() {
		if q, ok := l.(*layers.Dot1Q); ok {
			tags = append(tags, *q)
		}
	}
	if len(tags) == 0 {
		return el, nil, nil
	}
	return el, &tags[0], tags
}

func TestInsertRemoveVLAN(t *testing.T) {
	ip4 := gopacket.Payload(udp4(t, 40))
	tests := []struct {
		name string
		ls   []gopacket.SerializableLayer
		vid  uint16
	}{
		{"untagged, VID 100", []gopacket.SerializableLayer{
			&layers.Ethernet{SrcMAC: macAP, DstMAC: macGW, EthernetType: layers.EthernetTypeIPv4}, ip4}, 100},
		{"untagged, VID 1", []gopacket.SerializableLayer{
			&layers.Ethernet{SrcMAC: macAP, DstMAC: macGW, EthernetType: layers.EthernetTypeIPv4}, ip4}, 1},
		{"untagged, VID 4094", []gopacket.SerializableLayer{
			&layers.Ethernet{SrcMAC: macAP, DstMAC: macGW, EthernetType: layers.EthernetTypeIPv4}, ip4}, 4094},
		{"802.1Q PCP 5 VID 200, push VID 300", []gopacket.SerializableLayer{
			&layers.Ethernet{SrcMAC: macAP, DstMAC: macGW, EthernetType: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 200, Priority: 5, Type: layers.EthernetTypeIPv4}, ip4}, 300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frame := serialize(t, tc.ls...)
			before, _ := hdr.ParseEth(frame)
			const head = 64
			buf := make([]byte, head+len(frame))
			copy(buf[head:], frame)

			off := hdr.InsertVLAN(buf, head, tc.vid)
			if off != head-hdr.VLANLen {
				t.Fatalf("InsertVLAN(buf, %d, %d) = %d, want %d", head, tc.vid, off, head-hdr.VLANLen)
			}
			out := buf[off:]
			el, q, tags := firstTag(t, out)
			if !bytes.Equal(el.DstMAC, macGW) || !bytes.Equal(el.SrcMAC, macAP) || el.EthernetType != layers.EthernetTypeDot1Q {
				t.Errorf("InsertVLAN(%x, %d): gopacket reads dst %v src %v type %v, want %v %v Dot1Q", frame, tc.vid, el.DstMAC, el.SrcMAC, el.EthernetType, macGW, macAP)
			}
			if q == nil || q.VLANIdentifier != tc.vid || q.Priority != 0 || q.DropEligible {
				t.Errorf("InsertVLAN(%x, %d): gopacket reads outer tag %+v, want VID %d PCP 0 DEI 0", frame, tc.vid, q, tc.vid)
			}
			if len(tags) != int(before.Tags)+1 {
				t.Errorf("InsertVLAN(%x, %d): gopacket reads %d tags, want %d", frame, tc.vid, len(tags), before.Tags+1)
			}
			if !bytes.Equal(out[16:], frame[12:]) {
				t.Errorf("InsertVLAN(%x, %d) = %x: bytes after the new tag changed, want %x", frame, tc.vid, out, frame[12:])
			}
			after, ok := hdr.ParseEth(out)
			want := hdr.Eth{VLAN: tc.vid, Tags: before.Tags + 1, InnerVLAN: before.VLAN, EtherType: before.EtherType, HdrLen: before.HdrLen + 4}
			if !ok || after != want {
				t.Errorf("ParseEth(%x) after InsertVLAN = %+v, %v, want %+v", out, after, ok, want)
			}

			if got := hdr.RemoveVLAN(buf, off); got != head {
				t.Fatalf("RemoveVLAN(buf, %d) = %d, want %d", off, got, head)
			}
			if !bytes.Equal(buf[head:], frame) {
				t.Errorf("RemoveVLAN(InsertVLAN(%x)) = %x, want the original frame", frame, buf[head:])
			}
		})
	}
}

func TestRemoveVLAN(t *testing.T) {
	ip6 := gopacket.Payload(udp6(t, 24))
	tests := []struct {
		name string
		ls   []gopacket.SerializableLayer
		want []gopacket.SerializableLayer // the frame after removing the outer tag
	}{
		{"802.1Q", []gopacket.SerializableLayer{
			&layers.Ethernet{SrcMAC: macAP, DstMAC: macGW, EthernetType: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 100, Priority: 3, Type: layers.EthernetTypeIPv6}, ip6},
			[]gopacket.SerializableLayer{
				&layers.Ethernet{SrcMAC: macAP, DstMAC: macGW, EthernetType: layers.EthernetTypeIPv6}, ip6}},
		{"802.1ad over 802.1Q", []gopacket.SerializableLayer{
			&layers.Ethernet{SrcMAC: macAP, DstMAC: macGW, EthernetType: layers.EthernetTypeQinQ},
			&layers.Dot1Q{VLANIdentifier: 300, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 100, Priority: 2, Type: layers.EthernetTypeIPv6}, ip6},
			[]gopacket.SerializableLayer{
				&layers.Ethernet{SrcMAC: macAP, DstMAC: macGW, EthernetType: layers.EthernetTypeDot1Q},
				&layers.Dot1Q{VLANIdentifier: 100, Priority: 2, Type: layers.EthernetTypeIPv6}, ip6}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			frame := serialize(t, tc.ls...)
			want := serialize(t, tc.want...)
			buf := append([]byte(nil), frame...)
			off := hdr.RemoveVLAN(buf, 0)
			got := buf[off:]
			if off != hdr.VLANLen || !bytes.Equal(got, want) {
				t.Errorf("RemoveVLAN(%x, 0) = %d, %x, want %d, %x", frame, off, got, hdr.VLANLen, want)
			}
		})
	}
}

func TestSetVLAN(t *testing.T) {
	ip4 := gopacket.Payload(udp4(t, 20))
	tests := []struct {
		name  string
		outer layers.EthernetType
		tag   layers.Dot1Q
		vid   uint16
	}{
		{"802.1Q PCP 5 DEI 1", layers.EthernetTypeDot1Q, layers.Dot1Q{VLANIdentifier: 200, Priority: 5, DropEligible: true, Type: layers.EthernetTypeIPv4}, 1234},
		{"priority tag to native VLAN", layers.EthernetTypeDot1Q, layers.Dot1Q{VLANIdentifier: 0, Priority: 6, Type: layers.EthernetTypeIPv4}, 100},
		{"802.1ad PCP 7 to 4094", layers.EthernetTypeQinQ, layers.Dot1Q{VLANIdentifier: 1, Priority: 7, Type: layers.EthernetTypeIPv4}, 4094},
		{"VLAN to 0", layers.EthernetTypeDot1Q, layers.Dot1Q{VLANIdentifier: 4094, Priority: 1, Type: layers.EthernetTypeIPv4}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tag := tc.tag
			frame := serialize(t, &layers.Ethernet{SrcMAC: macAP, DstMAC: macGW, EthernetType: tc.outer}, &tag, ip4)
			out := append([]byte(nil), frame...)
			hdr.SetVLAN(out, tc.vid)
			el, q, _ := firstTag(t, out)
			if el.EthernetType != tc.outer || q == nil || q.VLANIdentifier != tc.vid || q.Priority != tc.tag.Priority ||
				q.DropEligible != tc.tag.DropEligible || q.Type != tc.tag.Type {
				t.Errorf("SetVLAN(%x, %d): gopacket reads %v %+v, want %v VID %d PCP %d DEI %v", frame, tc.vid, el.EthernetType, q, tc.outer, tc.vid, tc.tag.Priority, tc.tag.DropEligible)
			}
			if !bytes.Equal(out[:14], frame[:14]) || !bytes.Equal(out[16:], frame[16:]) {
				t.Errorf("SetVLAN(%x, %d) = %x: bytes outside the TCI changed", frame, tc.vid, out)
			}
		})
	}
}
