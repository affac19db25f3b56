package hdr

import "encoding/binary"

// UDP header (RFC 768):
//
//	 0      7 8     15 16    23 24    31
//	+--------+--------+--------+--------+
//	|   Source Port   | Destination Port|
//	+--------+--------+--------+--------+
//	|     Length      |    Checksum     |
//	+--------+--------+--------+--------+
type UDP []byte

// UDP ports and lengths.
const (
	UDPLen       = 8
	PortIKE      = 500
	PortIKENATT  = 4500 // IKE and ESP-in-UDP (RFC 3948)
	PortL2TP     = 1701
	NonESPMarker = 4 // zero SPI that marks IKE on port 4500 (RFC 3948 §2.2)
)

// Valid reports whether b has a UDP header whose Length is at least 8 and fits
// in b.
func (b UDP) Valid() bool {
	if len(b) < UDPLen {
		return false
	}
	l := int(binary.BigEndian.Uint16(b[4:]))
	return l >= UDPLen && l <= len(b)
}

// SrcPort is the source port.
func (b UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[0:]) }

// DstPort is the destination port.
func (b UDP) DstPort() uint16 { return binary.BigEndian.Uint16(b[2:]) }

// Length is the Length field (header + payload).
func (b UDP) Length() int { return int(binary.BigEndian.Uint16(b[4:])) }

// Checksum is the checksum field (0 = none over IPv4).
func (b UDP) Checksum() uint16 { return binary.BigEndian.Uint16(b[6:]) }

// Payload returns the datagram's payload, Length-bounded.
func (b UDP) Payload() []byte { return b[UDPLen:b.Length()] }

// PutUDP writes a UDP header with a zero checksum into b[:8]; length includes
// the header.
func PutUDP(b []byte, sport, dport uint16, length int) {
	_ = b[7]
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(length))
	b[6], b[7] = 0, 0
}

// SetUDPChecksum computes and stores the checksum of the complete datagram d
// (header + payload) for the given IP addresses (4 or 16 bytes). A computed
// zero is sent as 0xffff (RFC 768).
func SetUDPChecksum(d []byte, src, dst []byte) {
	d[6], d[7] = 0, 0
	c := Checksum(d, PseudoSum(src, dst, ProtoUDP, len(d)))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(d[6:], c)
}

// ESP header (RFC 4303 §2):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               Security Parameters Index (SPI)                 |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                      Sequence Number                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    IV, Payload Data ... ICV                   |
type ESP []byte

// ESPHeaderLen is the length of SPI + sequence number.
const ESPHeaderLen = 8

// Valid reports whether b holds at least the ESP header.
func (b ESP) Valid() bool { return len(b) >= ESPHeaderLen }

// SPI is the Security Parameters Index.
func (b ESP) SPI() uint32 { return binary.BigEndian.Uint32(b[0:]) }

// Seq is the low 32 bits of the sequence number.
func (b ESP) Seq() uint32 { return binary.BigEndian.Uint32(b[4:]) }
