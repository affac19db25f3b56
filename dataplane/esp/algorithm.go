package esp

import (
	"errors"
	"fmt"
)

// Cipher is an ESP encryption transform. The zero value is not a cipher.
type Cipher uint8

// Encryption transforms. Key layouts follow Linux xfrm and Wireshark: for GCM,
// CTR and ChaCha20-Poly1305 the key material ENDS with the 4-byte salt
// (RFC 4106 §8.1, RFC 3686 §5.1, RFC 7634 §2), so aes-gcm-128 takes 16+4 bytes.
const (
	_                Cipher = iota
	AESGCM128               // AES-GCM, 16-byte ICV, 8-byte IV (RFC 4106)
	AESGCM256               // AES-GCM, 16-byte ICV, 8-byte IV (RFC 4106)
	AESCTR128               // AES-CTR, 8-byte IV (RFC 3686); needs an Integ
	AESCTR256               // AES-CTR, 8-byte IV (RFC 3686); needs an Integ
	AESCBC128               // AES-CBC, 16-byte IV (RFC 3602); needs an Integ
	AESCBC256               // AES-CBC, 16-byte IV (RFC 3602); needs an Integ
	ChaCha20Poly1305        // ChaCha20-Poly1305, 16-byte ICV, 8-byte IV (RFC 7634)
	numCiphers
)

// Integ is an ESP integrity transform for non-AEAD ciphers. The zero value,
// IntegNone, is the only valid choice for AEAD ciphers.
type Integ uint8

// Integrity transforms (RFC 2404, RFC 4868).
const (
	IntegNone      Integ = iota
	HMACSHA1_96          // HMAC-SHA-1 truncated to 96 bits (RFC 2404)
	HMACSHA256_128       // HMAC-SHA-256 truncated to 128 bits (RFC 4868 §2)
	HMACSHA384_192       // HMAC-SHA-384 truncated to 192 bits (RFC 4868 §2)
	HMACSHA512_256       // HMAC-SHA-512 truncated to 256 bits (RFC 4868 §2)
	numIntegs
)

// Errors returned by the parsers and NewSA. Every error wraps one of them.
var (
	ErrUnknownCipher = errors.New("unknown ESP cipher")
	ErrUnknownInteg  = errors.New("unknown ESP integrity algorithm")
	ErrInvalidConfig = errors.New("invalid ESP SA configuration")
)

type cipherInfo struct {
	name    string
	keyLen  int // total key material, salt included
	saltLen int // trailing salt/nonce bytes in the key material
	ivLen   int // IV bytes on the wire
	icvLen  int // AEAD tag (0 for non-AEAD: the Integ decides)
	align   int // ciphertext alignment: 4 (RFC 4303 §2.4) or the block size
}

var ciphers = [numCiphers]cipherInfo{
	AESGCM128:        {"aes-gcm-128", 16 + 4, 4, 8, 16, 4},
	AESGCM256:        {"aes-gcm-256", 32 + 4, 4, 8, 16, 4},
	AESCTR128:        {"aes-ctr-128", 16 + 4, 4, 8, 0, 4},
	AESCTR256:        {"aes-ctr-256", 32 + 4, 4, 8, 0, 4},
	AESCBC128:        {"aes-cbc-128", 16, 0, 16, 0, 16},
	AESCBC256:        {"aes-cbc-256", 32, 0, 16, 0, 16},
	ChaCha20Poly1305: {"chacha20-poly1305", 32 + 4, 4, 8, 16, 4},
}

type integInfo struct {
	name   string
	keyLen int
	icvLen int
}

var integs = [numIntegs]integInfo{
	IntegNone:      {"none", 0, 0},
	HMACSHA1_96:    {"hmac-sha1-96", 20, 12},
	HMACSHA256_128: {"hmac-sha2-256-128", 32, 16},
	HMACSHA384_192: {"hmac-sha2-384-192", 48, 24},
	HMACSHA512_256: {"hmac-sha2-512-256", 64, 32},
}

func (c Cipher) valid() bool { return c > 0 && c < numCiphers }

// ParseCipher returns the cipher with the given name: aes-gcm-128,
// aes-gcm-256, aes-ctr-128, aes-ctr-256, aes-cbc-128, aes-cbc-256 or
// chacha20-poly1305.
func ParseCipher(s string) (Cipher, error) {
	for c := Cipher(1); c < numCiphers; c++ {
		if ciphers[c].name == s {
			return c, nil
		}
	}
	return 0, fmt.Errorf("esp: cipher %q: %w", s, ErrUnknownCipher)
}

// String returns the name ParseCipher accepts.
func (c Cipher) String() string {
	if c.valid() {
		return ciphers[c].name
	}
	return fmt.Sprintf("cipher(%d)", uint8(c))
}

// KeyLen is the length of the key material, trailing salt included: 20/36
// for aes-gcm and aes-ctr, 16/32 for aes-cbc, 36 for chacha20-poly1305.
// It is 0 for an invalid Cipher.
func (c Cipher) KeyLen() int {
	if c.valid() {
		return ciphers[c].keyLen
	}
	return 0
}

// AEAD reports whether c provides integrity itself (GCM, ChaCha20-Poly1305).
func (c Cipher) AEAD() bool { return c.valid() && ciphers[c].icvLen != 0 }

func (i Integ) valid() bool { return i < numIntegs }

// ParseInteg returns the integrity algorithm with the given name:
// hmac-sha1-96, hmac-sha2-256-128, hmac-sha2-384-192 or hmac-sha2-512-256;
// "" (or "none") is IntegNone.
func ParseInteg(s string) (Integ, error) {
	if s == "" {
		return IntegNone, nil
	}
	for i := IntegNone; i < numIntegs; i++ {
		if integs[i].name == s {
			return i, nil
		}
	}
	return 0, fmt.Errorf("esp: integrity algorithm %q: %w", s, ErrUnknownInteg)
}

// String returns the name ParseInteg accepts ("none" for IntegNone).
func (i Integ) String() string {
	if i.valid() {
		return integs[i].name
	}
	return fmt.Sprintf("integ(%d)", uint8(i))
}

// KeyLen is the HMAC key length: 20, 32, 48 or 64 (0 for IntegNone).
func (i Integ) KeyLen() int {
	if i.valid() {
		return integs[i].keyLen
	}
	return 0
}

// ICVLen is the truncated ICV length: 12, 16, 24 or 32 (0 for IntegNone).
func (i Integ) ICVLen() int {
	if i.valid() {
		return integs[i].icvLen
	}
	return 0
}
