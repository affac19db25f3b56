package hdr

import "encoding/binary"

// Ethernet II header (IEEE 802.3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Destination MAC (6 octets) ...                |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+    Source MAC (6 octets) ...  +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   EtherType / TPID (0x8100)   |  [PCP|DEI|VID] when tagged    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	EthLen  = 14 // destination, source, EtherType
	VLANLen = 4  // one 802.1Q tag (TPID + TCI)
	MACLen  = 6

	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeVLAN = 0x8100 // IEEE 802.1Q C-tag
	EtherTypeQinQ = 0x88A8 // IEEE 802.1ad S-tag
	EtherTypeIPv6 = 0x86DD
	EtherTypeLLDP = 0x88CC

	MaxVLAN = 4094
)

// Eth is the parsed layer-2 header of a frame: addresses, at most two VLAN
// tags, and the EtherType of the payload.
type Eth struct {
	// VLAN is the VLAN ID of the outermost 802.1Q (or 802.1ad) tag, 0 when the
	// frame is untagged (or priority-tagged with VID 0).
	VLAN uint16
	// PCP is the priority of the outermost tag.
	PCP uint8
	// Tags is the number of VLAN tags (0, 1 or 2).
	Tags uint8
	// QinQ is set when the outer tag uses the 802.1ad TPID 0x88A8.
	QinQ bool
	// InnerVLAN is the VLAN ID of the second tag when Tags == 2.
	InnerVLAN uint16
	// EtherType is the payload's EtherType after all tags.
	EtherType uint16
	// HdrLen is the length of the MAC header including tags.
	HdrLen int
}

// ParseEth parses the MAC header of frame. It accepts untagged frames, one
// 802.1Q tag, an 802.1ad outer tag, and an 802.1ad/802.1Q pair. Length/type
// values below 0x0600 (802.3 length fields, e.g. STP/LLC) are returned as the
// EtherType unchanged; callers treat them as non-IP.
func ParseEth(frame []byte) (e Eth, ok bool) {
	if len(frame) < EthLen {
		return e, false
	}
	t := binary.BigEndian.Uint16(frame[12:])
	if t != EtherTypeVLAN && t != EtherTypeQinQ { // untagged: the common outer case
		e.EtherType, e.HdrLen = t, EthLen
		return e, true
	}
	if len(frame) < EthLen+VLANLen {
		return e, false
	}
	tci := binary.BigEndian.Uint16(frame[14:])
	e.VLAN, e.PCP, e.QinQ, e.Tags = tci&0x0fff, uint8(tci>>13), t == EtherTypeQinQ, 1
	t2 := binary.BigEndian.Uint16(frame[16:])
	if t2 != EtherTypeVLAN && t2 != EtherTypeQinQ { // one tag: the common inner case
		e.EtherType, e.HdrLen = t2, EthLen+VLANLen
		return e, true
	}
	if len(frame) < EthLen+2*VLANLen {
		return e, false
	}
	e.InnerVLAN, e.Tags = binary.BigEndian.Uint16(frame[18:])&0x0fff, 2
	e.EtherType, e.HdrLen = binary.BigEndian.Uint16(frame[20:]), EthLen+2*VLANLen
	return e, true
}

// Dst returns the destination MAC of frame (len(frame) >= 6).
func Dst(frame []byte) []byte { return frame[0:6:6] }

// Src returns the source MAC of frame (len(frame) >= 12).
func Src(frame []byte) []byte { return frame[6:12:12] }

// IsMulticastMAC reports whether mac has the group bit set (this includes
// broadcast).
func IsMulticastMAC(mac []byte) bool { return mac[0]&1 != 0 }

// IsZeroMAC reports whether mac is 00:00:00:00:00:00.
func IsZeroMAC(mac []byte) bool {
	return mac[0]|mac[1]|mac[2]|mac[3]|mac[4]|mac[5] == 0
}

// IsLinkLocalControl reports whether mac is an IEEE 802.1D reserved
// link-local group address 01:80:C2:00:00:0X (STP, LACP, LLDP, 802.1X...),
// which bridges must not forward.
func IsLinkLocalControl(mac []byte) bool {
	return mac[0] == 0x01 && mac[1] == 0x80 && mac[2] == 0xc2 &&
		mac[3] == 0 && mac[4] == 0 && mac[5]&0xf0 == 0
}

// MACUint64 packs a 6-byte MAC into the low 48 bits of a uint64.
func MACUint64(mac []byte) uint64 {
	_ = mac[5]
	return uint64(mac[0])<<40 | uint64(mac[1])<<32 | uint64(mac[2])<<24 |
		uint64(mac[3])<<16 | uint64(mac[4])<<8 | uint64(mac[5])
}

// PutEth writes dst, src and etherType into b[:14].
func PutEth(b []byte, dst, src []byte, etherType uint16) {
	_ = b[13]
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:], etherType)
}

// InsertVLAN inserts an 802.1Q tag with VLAN ID vid (priority 0) after the MAC
// addresses of the frame that starts at buf[off:], moving the addresses left
// into the headroom. It returns the new start offset (off-4). The caller
// guarantees off >= 4 and that the frame has at least 12 bytes.
func InsertVLAN(buf []byte, off int, vid uint16) int {
	n := off - VLANLen
	copy(buf[n:n+12], buf[off:off+12])
	binary.BigEndian.PutUint16(buf[n+12:], EtherTypeVLAN)
	binary.BigEndian.PutUint16(buf[n+14:], vid&0x0fff)
	return n
}

// RemoveVLAN removes the outermost VLAN tag of the frame that starts at
// buf[off:], moving the MAC addresses right. It returns the new start offset
// (off+4). The caller guarantees the frame is tagged.
func RemoveVLAN(buf []byte, off int) int {
	n := off + VLANLen
	copy(buf[n:n+12], buf[off:off+12])
	return n
}

// SetVLAN rewrites the VLAN ID of the outermost tag of a tagged frame, keeping
// its priority bits.
func SetVLAN(frame []byte, vid uint16) {
	tci := binary.BigEndian.Uint16(frame[14:])
	binary.BigEndian.PutUint16(frame[14:], tci&0xf000|vid&0x0fff)
}
