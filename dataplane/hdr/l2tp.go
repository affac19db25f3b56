package hdr

import "encoding/binary"

// L2TPv3 data messages (RFC 3931 §4.1).
//
// Over IP (protocol 115, §4.1.1.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Session ID (non-zero for data)                |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               Cookie (optional, maximum 64 bits)...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     L2-Specific Sublayer (optional)           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Tunnel Payload ...
//
// A Session ID of zero over IP introduces a control message (§4.1.1.2).
//
// Over UDP (port 1701, §4.1.2.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|T|x|x|x|x|x|x|x|x|x|x|x|  Ver  |             Reserved          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Session ID                                    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               Cookie (optional, maximum 64 bits)...
//
// T = 1 marks a control message; Ver must be 3.
//
// Default L2-Specific Sublayer (§4.6):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|x|S|x|x|x|x|x|x|              Sequence Number                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	L2TPIPHdrLen    = 4 // session ID
	L2TPUDPHdrLen   = 8 // flags/version, reserved, session ID
	L2TPSublayerLen = 4
	L2TPVersion3    = 3
	l2tpTBit        = 0x8000
	l2tpSBit        = 0x40000000
)

// L2TPIPSession returns the session ID at the start of an L2TPv3-over-IP
// payload; 0 means a control message.
func L2TPIPSession(b []byte) (sid uint32, ok bool) {
	if len(b) < L2TPIPHdrLen {
		return 0, false
	}
	return binary.BigEndian.Uint32(b), true
}

// L2TPUDPHeader parses the header of an L2TPv3-over-UDP payload. control is
// the T bit; version is the Ver field (3 for L2TPv3). sid is only meaningful
// for data messages with version 3.
func L2TPUDPHeader(b []byte) (sid uint32, control bool, version uint8, ok bool) {
	if len(b) < 2 {
		return 0, false, 0, false
	}
	fv := binary.BigEndian.Uint16(b)
	control = fv&l2tpTBit != 0
	version = uint8(fv & 0x0f)
	if control {
		return 0, true, version, true
	}
	if len(b) < L2TPUDPHdrLen {
		return 0, false, version, false
	}
	return binary.BigEndian.Uint32(b[4:]), false, version, true
}

// L2TPSublayer decodes a default L2-Specific Sublayer: S bit and sequence.
func L2TPSublayer(b []byte) (seqValid bool, seq uint32) {
	v := binary.BigEndian.Uint32(b)
	return v&l2tpSBit != 0, v & 0x00ffffff
}

// PutL2TPIP writes an L2TPv3-over-IP data header at b: session ID, cookie and,
// when sublayer is set, the default L2-Specific Sublayer (S bit set when
// seqValid). It returns the number of bytes written.
func PutL2TPIP(b []byte, sid uint32, cookie []byte, sublayer, seqValid bool, seq uint32) int {
	binary.BigEndian.PutUint32(b, sid)
	n := L2TPIPHdrLen + copy(b[L2TPIPHdrLen:], cookie)
	if sublayer {
		n += putSublayer(b[n:], seqValid, seq)
	}
	return n
}

// PutL2TPUDP writes an L2TPv3-over-UDP data header at b (T=0, Ver=3), then the
// cookie and optional default sublayer. It returns the number of bytes
// written.
func PutL2TPUDP(b []byte, sid uint32, cookie []byte, sublayer, seqValid bool, seq uint32) int {
	binary.BigEndian.PutUint32(b, L2TPVersion3<<16)
	binary.BigEndian.PutUint32(b[4:], sid)
	n := L2TPUDPHdrLen + copy(b[L2TPUDPHdrLen:], cookie)
	if sublayer {
		n += putSublayer(b[n:], seqValid, seq)
	}
	return n
}

func putSublayer(b []byte, seqValid bool, seq uint32) int {
	v := seq & 0x00ffffff
	if seqValid {
		v |= l2tpSBit
	}
	binary.BigEndian.PutUint32(b, v)
	return L2TPSublayerLen
}
