package radsec

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/subtle"
	"encoding/binary"
)

// A RADIUS packet (RFC 2865 §3), the same on UDP and inside TLS (RFC 6614
// §2.3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Code      |  Identifier   |            Length             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	|                         Authenticator                         |
//	|                           (16 bytes)                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Type         |  Length       |  Value ...  (attributes, RFC 2865 §5)
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Length covers the whole packet: 20..4096 (RFC 2865 §3).

// Spec constants.
const (
	HeaderLen    = 20   // RFC 2865 §3
	MaxPacketLen = 4096 // RFC 2865 §3
	authLen      = 16   // Authenticator and Message-Authenticator value
	maLen        = 2 + authLen

	// RADIUS codes (RFC 2865 §3, RFC 2866 §3, RFC 5997 §2).
	codeAccessRequest      = 1
	codeAccessAccept       = 2
	codeAccessReject       = 3
	codeAccountingRequest  = 4
	codeAccountingResponse = 5
	codeAccessChallenge    = 11
	codeStatusServer       = 12

	// Attribute types.
	attrUserPassword         = 2  // RFC 2865 §5.2
	attrCHAPPassword         = 3  // RFC 2865 §5.3
	attrVendorSpecific       = 26 // RFC 2865 §5.26
	attrProxyState           = 33 // RFC 2865 §5.33
	attrCHAPChallenge        = 60 // RFC 2865 §5.40
	attrTunnelPassword       = 69 // RFC 2868 §3.5
	attrEAPMessage           = 79 // RFC 3579 §3.1
	attrMessageAuthenticator = 80 // RFC 3579 §3.2

	// Microsoft vendor attributes whose values are encrypted with the
	// shared secret and the Request Authenticator (RFC 2548).
	vendorMicrosoft    = 311
	msCHAPMPPEKeys     = 12 // RFC 2548 §2.4.1: User-Password scheme
	msMPPESendKey      = 16 // RFC 2548 §2.4.2: salted scheme
	msMPPERecvKey      = 17 // RFC 2548 §2.4.3: salted scheme
	vsaHeaderLen       = 4 + 2
	saltLen            = 2
	maxPasswordCipher  = 128 // RFC 2865 §5.2
	passwordBlockBytes = 16
)

// packetLen returns the Length field of a header (b has at least 4 bytes).
func packetLen(b []byte) int { return int(binary.BigEndian.Uint16(b[2:4])) }

// walkAttrs calls f with the offset of each attribute of the packet b
// (length already checked) and reports whether the attribute list is well
// formed (RFC 2865 §5: Length ≥ 2, within the packet). f returning false
// stops the walk.
func walkAttrs(b []byte, f func(off int, typ byte, val []byte) bool) bool {
	for off := HeaderLen; off < len(b); {
		if len(b)-off < 2 {
			return false
		}
		l := int(b[off+1])
		if l < 2 || off+l > len(b) {
			return false
		}
		if f != nil && !f(off, b[off], b[off+2:off+l]) {
			return true
		}
		off += l
	}
	return true
}

// findMA returns the offset of the Message-Authenticator value in b (0 when
// absent) and how many there are. Well-formedness is the caller's check.
func findMA(b []byte) (off, n int) {
	walkAttrs(b, func(o int, typ byte, val []byte) bool {
		if typ == attrMessageAuthenticator {
			n++
			if off == 0 && len(val) == authLen {
				off = o + 2
			}
		}
		return true
	})
	return off, n
}

// messageAuthenticator computes the HMAC-MD5 of RFC 3579 §3.2 over b, whose
// Message-Authenticator value at off counts as zeros and whose
// Authenticator field counts as auth: for Access-Request and Status-Server
// that is the packet's own, for Accounting-Request zeros, for a response
// the Request Authenticator of the request.
func messageAuthenticator(b []byte, off int, auth *[authLen]byte, secret []byte) [authLen]byte {
	var zero [authLen]byte
	h := hmac.New(md5.New, secret)
	h.Write(b[:4])
	h.Write(auth[:])
	h.Write(b[HeaderLen:off])
	h.Write(zero[:])
	h.Write(b[off+authLen:])
	var sum [authLen]byte
	h.Sum(sum[:0])
	return sum
}

// checkMA reports whether the Message-Authenticator at off is right.
func checkMA(b []byte, off int, auth *[authLen]byte, secret []byte) bool {
	sum := messageAuthenticator(b, off, auth, secret)
	return hmac.Equal(sum[:], b[off:off+authLen])
}

// signMA writes the Message-Authenticator at off.
func signMA(b []byte, off int, auth *[authLen]byte, secret []byte) {
	sum := messageAuthenticator(b, off, auth, secret)
	copy(b[off:], sum[:])
}

// md5Authenticator is MD5(Code+Identifier+Length+auth+Attributes+secret):
// the Response Authenticator (RFC 2865 §3) with auth the Request
// Authenticator, or the Accounting-Request Authenticator (RFC 2866 §3) with
// auth zeros.
func md5Authenticator(b []byte, auth *[authLen]byte, secret []byte) [authLen]byte {
	h := md5.New()
	h.Write(b[:4])
	h.Write(auth[:])
	h.Write(b[HeaderLen:])
	h.Write(secret)
	var sum [authLen]byte
	h.Sum(sum[:0])
	return sum
}

func checkMD5Authenticator(b []byte, auth *[authLen]byte, secret []byte) bool {
	sum := md5Authenticator(b, auth, secret)
	return subtle.ConstantTimeCompare(sum[:], b[4:HeaderLen]) == 1
}

// recryptPassword moves a value hidden with the User-Password scheme (RFC
// 2865 §5.2; also MS-CHAP-MPPE-Keys, RFC 2548 §2.4.1) from one hop's secret
// and Request Authenticator to the next's, in place, length and padding
// unchanged:
//
//	b1 = MD5(S + RA)       c(1) = p1 xor b1
//	b2 = MD5(S + c(1))     c(2) = p2 xor b2  ...
//
// It reports false when the length is not a multiple of 16 in 16..128.
func recryptPassword(v []byte, fromSecret []byte, fromAuth *[authLen]byte, toSecret []byte, toAuth *[authLen]byte) bool {
	if len(v) < passwordBlockBytes || len(v) > maxPasswordCipher || len(v)%passwordBlockBytes != 0 {
		return false
	}
	var prevIn, prevOut [passwordBlockBytes]byte
	copy(prevIn[:], fromAuth[:])
	copy(prevOut[:], toAuth[:])
	for i := 0; i < len(v); i += passwordBlockBytes {
		kin := md5Concat(fromSecret, prevIn[:], nil)
		kout := md5Concat(toSecret, prevOut[:], nil)
		copy(prevIn[:], v[i:i+passwordBlockBytes])
		for j := range passwordBlockBytes {
			v[i+j] ^= kin[j] ^ kout[j]
		}
		copy(prevOut[:], v[i:i+passwordBlockBytes])
	}
	return true
}

// recryptSalted moves a value hidden with the salted scheme of
// Tunnel-Password (RFC 2868 §3.5) and MS-MPPE-Send/Recv-Key (RFC 2548
// §2.4.2) — Salt(2) then the cipher text — to the next hop, in place:
//
//	b(1) = MD5(S + R + A)   c(1) = p(1) xor b(1)
//	b(i) = MD5(S + c(i-1))  c(i) = p(i) xor b(i)
//
// where A is the salt and R the Request Authenticator. The salt is kept.
func recryptSalted(v []byte, fromSecret []byte, fromAuth *[authLen]byte, toSecret []byte, toAuth *[authLen]byte) bool {
	if len(v) < saltLen+passwordBlockBytes || (len(v)-saltLen)%passwordBlockBytes != 0 {
		return false
	}
	salt, c := v[:saltLen], v[saltLen:]
	var prevIn, prevOut [passwordBlockBytes]byte
	for i := 0; i < len(c); i += passwordBlockBytes {
		var kin, kout [authLen]byte
		if i == 0 {
			kin = md5Concat(fromSecret, fromAuth[:], salt)
			kout = md5Concat(toSecret, toAuth[:], salt)
		} else {
			kin = md5Concat(fromSecret, prevIn[:], nil)
			kout = md5Concat(toSecret, prevOut[:], nil)
		}
		copy(prevIn[:], c[i:i+passwordBlockBytes])
		for j := range passwordBlockBytes {
			c[i+j] ^= kin[j] ^ kout[j]
		}
		copy(prevOut[:], c[i:i+passwordBlockBytes])
	}
	return true
}

func md5Concat(a, b, c []byte) [authLen]byte {
	h := md5.New()
	h.Write(a)
	h.Write(b)
	h.Write(c)
	var sum [authLen]byte
	h.Sum(sum[:0])
	return sum
}
