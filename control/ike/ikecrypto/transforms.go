package ikecrypto

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
)

// Transform IDs from the IANA "Internet Key Exchange Version 2 (IKEv2)
// Parameters" registry (RFC 7296 §3.3.2). control/ike/wire carries the same
// numbers on the wire; the values here are the ones this package implements.

// EncrID is a Transform Type 1 (Encryption Algorithm) ID.
type EncrID uint16

// Encryption transforms. AES ciphers take a Key Length attribute of 128 or
// 256 bits (RFC 7296 §3.3.5); ChaCha20-Poly1305 has a fixed 256-bit key and no
// attribute (RFC 7634 §3).
const (
	EncrAESCBC           EncrID = 12 // ENCR_AES_CBC (RFC 3602)
	EncrAESCTR           EncrID = 13 // ENCR_AES_CTR (RFC 3686; in IKEv2 RFC 5930)
	EncrAESGCM16         EncrID = 20 // ENCR_AES_GCM_16, 16-octet ICV (RFC 4106; in IKEv2 RFC 5282)
	EncrChaCha20Poly1305 EncrID = 28 // ENCR_CHACHA20_POLY1305 (RFC 7634)
)

// PRFID is a Transform Type 2 (Pseudorandom Function) ID.
type PRFID uint16

// Pseudorandom functions (RFC 4868 §2.1.2).
const (
	PRFHMACSHA256 PRFID = 5 // PRF_HMAC_SHA2_256
	PRFHMACSHA384 PRFID = 6 // PRF_HMAC_SHA2_384
	PRFHMACSHA512 PRFID = 7 // PRF_HMAC_SHA2_512
)

// IntegID is a Transform Type 3 (Integrity Algorithm) ID. IntegNone (0) is the
// only value allowed with an AEAD cipher (RFC 5282 §8, RFC 7634 §3).
type IntegID uint16

// Integrity algorithms.
const (
	IntegNone          IntegID = 0  // NONE
	IntegHMACSHA1_96   IntegID = 2  // AUTH_HMAC_SHA1_96 (RFC 2404)
	IntegHMACSHA256128 IntegID = 12 // AUTH_HMAC_SHA2_256_128 (RFC 4868)
	IntegHMACSHA384192 IntegID = 13 // AUTH_HMAC_SHA2_384_192 (RFC 4868)
	IntegHMACSHA512256 IntegID = 14 // AUTH_HMAC_SHA2_512_256 (RFC 4868)
)

// DHGroup is a Transform Type 4 (Key Exchange Method) ID.
type DHGroup uint16

// Diffie-Hellman groups.
const (
	DHNone       DHGroup = 0  // NONE (CHILD_SA without PFS)
	DHMODP2048   DHGroup = 14 // 2048-bit MODP group (RFC 3526 §3)
	DHECP256     DHGroup = 19 // 256-bit random ECP group, NIST P-256 (RFC 5903)
	DHECP384     DHGroup = 20 // 384-bit random ECP group, NIST P-384 (RFC 5903)
	DHECP521     DHGroup = 21 // 521-bit random ECP group, NIST P-521 (RFC 5903)
	DHCurve25519 DHGroup = 31 // Curve25519 (RFC 8031)
)

// Errors. Every error this package returns wraps one of them.
var (
	ErrUnsupported    = errors.New("ikecrypto: unsupported transform")
	ErrInvalidSuite   = errors.New("ikecrypto: invalid transform combination")
	ErrKeyLength      = errors.New("ikecrypto: wrong key length")
	ErrInvalidPublic  = errors.New("ikecrypto: invalid Diffie-Hellman public value")
	ErrAuthentication = errors.New("ikecrypto: message authentication failed")
	ErrMalformed      = errors.New("ikecrypto: malformed encrypted payload")
	ErrPRFPlusLength  = errors.New("ikecrypto: prf+ output longer than 255 iterations")
	ErrSignature      = errors.New("ikecrypto: signature verification failed")
)

// encrInfo describes an encryption transform in IKE (SK payload) and ESP; the
// key material layout is the same in both (RFC 5282 §7.1, RFC 5930 §2,
// RFC 7634 §2-3): the cipher key, then the salt/nonce octets.
type encrInfo struct {
	name    string
	saltLen int  // trailing salt/nonce octets of the key material
	ivLen   int  // IV octets on the wire
	block   int  // padding alignment in the SK payload
	icvLen  int  // AEAD tag (0: the integrity transform provides the ICV)
	fixed   int  // fixed key length in bits, 0 if a Key Length attribute is required
	aead    bool // provides integrity itself
}

var encrs = map[EncrID]encrInfo{
	// RFC 3602 §2.3-2.4 / RFC 7296 §3.14: random 16-octet IV, pad to the block.
	EncrAESCBC: {name: "aes-cbc", ivLen: 16, block: 16},
	// RFC 5930 §2: 4-octet nonce from the keying material, 8-octet IV,
	// block size 1, no padding needed.
	EncrAESCTR: {name: "aes-ctr", saltLen: 4, ivLen: 8, block: 1},
	// RFC 5282 §3, §7.1: 4-octet salt, 8-octet IV, 16-octet ICV, no padding
	// needed.
	EncrAESGCM16: {name: "aes-gcm-16", saltLen: 4, ivLen: 8, block: 1, icvLen: 16, aead: true},
	// RFC 7634 §2-3: 32-octet key + 4-octet salt, 8-octet IV, 16-octet tag.
	EncrChaCha20Poly1305: {name: "chacha20-poly1305", saltLen: 4, ivLen: 8, block: 1, icvLen: 16, fixed: 256, aead: true},
}

type prfInfo struct {
	name string
	hash func() hash.Hash
	size int // output length = preferred key length (RFC 4868 §2.1.2)
}

var prfs = map[PRFID]prfInfo{
	PRFHMACSHA256: {"prf-hmac-sha2-256", sha256.New, 32},
	PRFHMACSHA384: {"prf-hmac-sha2-384", sha512.New384, 48},
	PRFHMACSHA512: {"prf-hmac-sha2-512", sha512.New, 64},
}

type integInfo struct {
	name   string
	hash   func() hash.Hash
	keyLen int // RFC 2404 §2, RFC 4868 §2.1.1: key length = hash output
	icvLen int // truncated output (RFC 2404 §2, RFC 4868 §2.1.1)
}

var integs = map[IntegID]integInfo{
	IntegHMACSHA1_96:   {"hmac-sha1-96", sha1.New, 20, 12},
	IntegHMACSHA256128: {"hmac-sha2-256-128", sha256.New, 32, 16},
	IntegHMACSHA384192: {"hmac-sha2-384-192", sha512.New384, 48, 24},
	IntegHMACSHA512256: {"hmac-sha2-512-256", sha512.New, 64, 32},
}

func (e EncrID) String() string {
	if i, ok := encrs[e]; ok {
		return i.name
	}
	return fmt.Sprintf("encr(%d)", uint16(e))
}

func (p PRFID) String() string {
	if i, ok := prfs[p]; ok {
		return i.name
	}
	return fmt.Sprintf("prf(%d)", uint16(p))
}

func (i IntegID) String() string {
	if i == IntegNone {
		return "none"
	}
	if n, ok := integs[i]; ok {
		return n.name
	}
	return fmt.Sprintf("integ(%d)", uint16(i))
}

// AEAD reports whether e is a combined-mode cipher (GCM, ChaCha20-Poly1305).
func (e EncrID) AEAD() bool { return encrs[e].aead }

// KeyLen is the length of the keying material for e with a Key Length
// attribute of keyBits (ignored for ChaCha20-Poly1305), the trailing
// salt/nonce included: 16/32 (CBC), 20/36 (CTR, GCM), 36 (ChaCha20-Poly1305).
// This is both the SK_ei/SK_er length and the ESP encryption key length, laid
// out like Linux xfrm (key, then salt).
func (e EncrID) KeyLen(keyBits int) (int, error) {
	info, ok := encrs[e]
	if !ok {
		return 0, fmt.Errorf("encryption transform %s: %w", e, ErrUnsupported)
	}
	if info.fixed != 0 {
		if keyBits != 0 && keyBits != info.fixed {
			return 0, fmt.Errorf("%s takes no key length %d: %w", e, keyBits, ErrInvalidSuite)
		}
		keyBits = info.fixed
	} else if keyBits != 128 && keyBits != 256 {
		return 0, fmt.Errorf("%s key length %d (want 128 or 256): %w", e, keyBits, ErrInvalidSuite)
	}
	return keyBits/8 + info.saltLen, nil
}

// KeyLen is the HMAC key length (RFC 2404, RFC 4868 §2.1.1); 0 for IntegNone
// and unknown IDs.
func (i IntegID) KeyLen() int { return integs[i].keyLen }

// ICVLen is the truncated ICV length; 0 for IntegNone and unknown IDs.
func (i IntegID) ICVLen() int { return integs[i].icvLen }

// Size is the PRF output length, which is also its preferred key length and
// so the length of SK_d, SK_pi and SK_pr (RFC 7296 §2.14, RFC 4868 §2.1.2).
// It is 0 for an unknown ID.
func (p PRFID) Size() int { return prfs[p].size }

// Suite is a negotiated IKE SA transform set: one of each type, the way an
// IKE SA proposal selects them (RFC 7296 §3.3). For a CHILD_SA (ESP) the PRF is
// the IKE SA's and DH is the PFS group or DHNone.
type Suite struct {
	Encr        EncrID
	EncrKeyBits int // Key Length attribute; 0 for ChaCha20-Poly1305
	Integ       IntegID
	PRF         PRFID
	DH          DHGroup
}

func (s Suite) String() string {
	return fmt.Sprintf("%s-%d/%s/%s/dh%d", s.Encr, s.EncrKeyBits, s.Integ, s.PRF, s.DH)
}

// CheckIKE validates s as an IKE SA suite: every transform known, an
// integrity algorithm with and only with a non-AEAD cipher (RFC 7296 §3.3,
// RFC 5282 §8), and a DH group.
func (s Suite) CheckIKE() error {
	if err := s.checkESP(); err != nil {
		return err
	}
	if _, ok := prfs[s.PRF]; !ok {
		return fmt.Errorf("PRF %s: %w", s.PRF, ErrUnsupported)
	}
	if s.DH == DHNone {
		return fmt.Errorf("IKE SA without a Diffie-Hellman group: %w", ErrInvalidSuite)
	}
	if !s.DH.known() {
		return fmt.Errorf("DH group %d: %w", s.DH, ErrUnsupported)
	}
	return nil
}

// CheckESP validates s as a CHILD_SA (ESP) suite. PRF is the IKE SA's; DH is
// DHNone or the PFS group.
func (s Suite) CheckESP() error {
	if err := s.checkESP(); err != nil {
		return err
	}
	if _, ok := prfs[s.PRF]; !ok {
		return fmt.Errorf("PRF %s: %w", s.PRF, ErrUnsupported)
	}
	if s.DH != DHNone && !s.DH.known() {
		return fmt.Errorf("DH group %d: %w", s.DH, ErrUnsupported)
	}
	return nil
}

func (s Suite) checkESP() error {
	if _, err := s.Encr.KeyLen(s.EncrKeyBits); err != nil {
		return err
	}
	if s.Encr.AEAD() {
		if s.Integ != IntegNone {
			return fmt.Errorf("%s is an AEAD cipher and takes no integrity algorithm, got %s: %w",
				s.Encr, s.Integ, ErrInvalidSuite)
		}
		return nil
	}
	if _, ok := integs[s.Integ]; !ok {
		return fmt.Errorf("%s needs an integrity algorithm, got %s: %w", s.Encr, s.Integ, ErrInvalidSuite)
	}
	return nil
}

// EncrKeyLen is the SK_e / ESP encryption key length, salt included, or 0 if
// the cipher or key length is invalid.
func (s Suite) EncrKeyLen() int {
	n, _ := s.Encr.KeyLen(s.EncrKeyBits)
	return n
}

// IntegKeyLen is the SK_a / ESP integrity key length (0 for AEAD ciphers).
func (s Suite) IntegKeyLen() int { return s.Integ.KeyLen() }
