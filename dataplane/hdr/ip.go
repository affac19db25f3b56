package hdr

import (
	"encoding/binary"
	"math/bits"
)

// IPv4 header (RFC 791 §3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type IPv4 []byte

// IP protocol numbers used by the dataplane (IANA "Assigned Internet Protocol
// Numbers").
const (
	ProtoHopByHop = 0
	ProtoICMP     = 1
	ProtoIPIP     = 4 // IPv4 in IP (ESP tunnel mode inner IPv4)
	ProtoTCP      = 6
	ProtoUDP      = 17
	ProtoIPv6     = 41 // IPv6 in IP (ESP tunnel mode inner IPv6)
	ProtoRouting  = 43
	ProtoFragment = 44
	ProtoESP      = 50
	ProtoAH       = 51
	ProtoICMPv6   = 58
	ProtoNoNext   = 59
	ProtoDstOpts  = 60
	ProtoL2TP     = 115 // L2TPv3 over IP (RFC 3931 §4.1.1.1)

	IPv4MinLen = 20
	IPv6Len    = 40
)

// Valid reports whether b holds a complete IPv4 header whose total length
// fits in b: version 4, IHL >= 5, IHL*4 <= total length <= len(b).
// After Valid, every accessor is in bounds.
func (b IPv4) Valid() bool {
	if len(b) < IPv4MinLen || b[0]>>4 != 4 {
		return false
	}
	hl := int(b[0]&0xf) * 4
	tl := int(binary.BigEndian.Uint16(b[2:]))
	return hl >= IPv4MinLen && hl <= tl && tl <= len(b)
}

// HeaderLen is IHL*4, including options.
func (b IPv4) HeaderLen() int { return int(b[0]&0xf) * 4 }

// TotalLen is the Total Length field.
func (b IPv4) TotalLen() int { return int(binary.BigEndian.Uint16(b[2:])) }

// Protocol is the payload's IP protocol number.
func (b IPv4) Protocol() uint8 { return b[9] }

// TTL is the time to live.
func (b IPv4) TTL() uint8 { return b[8] }

// Src returns the source address bytes.
func (b IPv4) Src() []byte { return b[12:16:16] }

// Dst returns the destination address bytes.
func (b IPv4) Dst() []byte { return b[16:20:20] }

// IsFragment reports whether the packet is a fragment: More Fragments set or
// a non-zero fragment offset.
func (b IPv4) IsFragment() bool { return binary.BigEndian.Uint16(b[6:])&0x3fff != 0 }

// Payload returns the bytes after the header up to the total length.
func (b IPv4) Payload() []byte { return b[b.HeaderLen():b.TotalLen()] }

// ChecksumOK verifies the header checksum.
func (b IPv4) ChecksumOK() bool { return Checksum(b[:b.HeaderLen()], 0) == 0 }

// PutIPv4 writes a 20-byte IPv4 header without options into b[:20]: total
// length totalLen, the given protocol, TTL, ID and addresses, DF clear, and a
// correct header checksum.
func PutIPv4(b []byte, src, dst []byte, proto uint8, totalLen int, ttl uint8, id uint16) {
	_ = b[19]
	b[0] = 0x45
	b[1] = 0
	binary.BigEndian.PutUint16(b[2:], uint16(totalLen))
	binary.BigEndian.PutUint16(b[4:], id)
	b[6], b[7] = 0, 0
	b[8] = ttl
	b[9] = proto
	b[10], b[11] = 0, 0
	copy(b[12:16], src)
	copy(b[16:20], dst)
	binary.BigEndian.PutUint16(b[10:], Checksum(b[:20], 0))
}

// IPv6 fixed header (RFC 8200 §3):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Source Address (128 bits)                    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               Destination Address (128 bits)                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type IPv6 []byte

// Valid reports whether b holds a complete fixed IPv6 header and the payload
// length fits in b.
func (b IPv6) Valid() bool {
	return len(b) >= IPv6Len && b[0]>>4 == 6 &&
		IPv6Len+int(binary.BigEndian.Uint16(b[4:])) <= len(b)
}

// PayloadLen is the Payload Length field (extension headers included).
func (b IPv6) PayloadLen() int { return int(binary.BigEndian.Uint16(b[4:])) }

// NextHeader is the Next Header field of the fixed header.
func (b IPv6) NextHeader() uint8 { return b[6] }

// HopLimit is the hop limit.
func (b IPv6) HopLimit() uint8 { return b[7] }

// Src returns the source address bytes.
func (b IPv6) Src() []byte { return b[8:24:24] }

// Dst returns the destination address bytes.
func (b IPv6) Dst() []byte { return b[24:40:40] }

// UpperLayer walks the extension header chain of a Valid IPv6 packet (RFC 8200
// §4: Hop-by-Hop, Routing, Fragment, Destination Options) and returns the
// upper-layer protocol and the offset of its header from the start of b. After
// a non-first fragment's Fragment header the walk stops: proto is that
// header's Next Header and off the start of the fragment data.
// frag reports a Fragment header with a non-zero offset or the M flag set
// (an atomic fragment, offset 0 and M clear, is not a fragment). ok is false
// when an extension header is truncated. The walk stops at the first
// protocol that is not one of those four (ESP, AH, UDP, No Next Header ...).
func (b IPv6) UpperLayer() (proto uint8, off int, frag bool, ok bool) {
	end := IPv6Len + b.PayloadLen()
	proto, off = b[6], IPv6Len
	for i := 0; i < 16; i++ { // bound the walk; real chains are short
		switch proto {
		case ProtoHopByHop, ProtoRouting, ProtoDstOpts:
			if off+8 > end {
				return proto, off, frag, false
			}
			n := 8 + int(b[off+1])*8
			if off+n > end {
				return proto, off, frag, false
			}
			proto = b[off]
			off += n
		case ProtoFragment:
			if off+8 > end {
				return proto, off, frag, false
			}
			fo := binary.BigEndian.Uint16(b[off+2:])
			if fo&0xfff9 != 0 {
				frag = true
			}
			proto = b[off]
			off += 8
			if fo&0xfff8 != 0 {
				// A non-first fragment: what follows is fragment data,
				// not headers (RFC 8200 §4.5).
				return proto, off, true, true
			}
		default:
			return proto, off, frag, true
		}
	}
	return proto, off, frag, false
}

// PutIPv6 writes a 40-byte IPv6 header into b[:40] with the given payload
// length, next header, hop limit and addresses.
func PutIPv6(b []byte, src, dst []byte, next uint8, payloadLen int, hopLimit uint8) {
	_ = b[39]
	b[0], b[1], b[2], b[3] = 0x60, 0, 0, 0
	binary.BigEndian.PutUint16(b[4:], uint16(payloadLen))
	b[6] = next
	b[7] = hopLimit
	copy(b[8:24], src)
	copy(b[24:40], dst)
}

// Checksum returns the Internet checksum (RFC 1071) of b folded together with
// the 32-bit partial sum initial (use 0, or a pseudo-header sum).
func Checksum(b []byte, initial uint32) uint16 {
	s := uint64(initial)
	var carry uint64
	for len(b) >= 8 {
		s, carry = bits.Add64(s, binary.BigEndian.Uint64(b), carry)
		b = b[8:]
	}
	s += carry
	if len(b) >= 4 {
		s, carry = bits.Add64(s, uint64(binary.BigEndian.Uint32(b)), 0)
		s += carry
		b = b[4:]
	}
	if len(b) >= 2 {
		s, carry = bits.Add64(s, uint64(binary.BigEndian.Uint16(b)), 0)
		s += carry
		b = b[2:]
	}
	if len(b) == 1 {
		s, carry = bits.Add64(s, uint64(b[0])<<8, 0)
		s += carry
	}
	// Fold 64 -> 16 bits.
	s = (s >> 32) + (s & 0xffffffff)
	s = (s >> 32) + (s & 0xffffffff)
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return ^uint16(s)
}

// PseudoSum returns the unfolded one's-complement sum of an IPv4 or IPv6
// pseudo-header (RFC 768, RFC 8200 §8.1) for use as Checksum's initial value.
func PseudoSum(src, dst []byte, proto uint8, length int) uint32 {
	var s uint32
	for i := 0; i+1 < len(src); i += 2 {
		s += uint32(src[i])<<8 | uint32(src[i+1])
		s += uint32(dst[i])<<8 | uint32(dst[i+1])
	}
	s += uint32(proto) + uint32(length&0xffff) + uint32(length>>16)
	return s
}
