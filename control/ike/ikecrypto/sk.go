package ikecrypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
)

// SK protects the Encrypted payload (SK, RFC 7296 §3.14) and the Encrypted
// Fragment payload (SKF, RFC 7383 §2.5) in one direction with one set of keys:
// SK_ei/SK_ai for messages from the original initiator, SK_er/SK_ar for the
// other direction.
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ---
//	| Next Payload  |C|  RESERVED   |         Payload Length        |  assoc
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ --- ---
//	|                     Initialization Vector                     |   ^
//	|         (length is block size for encryption algorithm)       |   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+   |
//	~                    Encrypted IKE Payloads                     ~  body
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+   |
//	|               |             Padding (0-255 octets)            |   |
//	+-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+   |
//	|                                               |  Pad Length   |   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+   |
//	~                    Integrity Checksum Data                    ~   v
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ---
//
// Seal and Open take "assoc", every octet of the message before the IV: the
// 28-octet IKE header, any unencrypted payloads, and the SK payload's generic
// header (for SKF also Fragment Number and Total Fragments). With AES-CBC and
// AES-CTR the ICV is the truncated HMAC of assoc | body-without-ICV, "the
// entire message starting with the Fixed IKE header through the Pad Length"
// (RFC 7296 §3.14); with AES-GCM (RFC 5282 §5.1) and ChaCha20-Poly1305
// (RFC 7634 §4) assoc is the AEAD's associated data. The length fields inside
// assoc (IKE header Length, SK Payload Length) must already count the sealed
// body: use SealedLen.
//
// An SK is immutable after NewSK and safe for concurrent use.
type SK struct {
	encr   encrInfo
	block  cipher.Block // AES (CBC, CTR)
	aead   cipher.AEAD  // GCM, ChaCha20-Poly1305
	salt   []byte       // CTR nonce / AEAD salt
	integ  integInfo
	ikey   []byte
	ivCtr  atomic.Uint64 // IV source for CTR and AEAD ciphers (unique per key)
	random io.Reader     // IV source for CBC
}

// NewSK builds the SK payload transform for suite s (Encr, EncrKeyBits,
// Integ) with encKey = SK_e (cipher key then salt) and integKey = SK_a (empty
// for AEAD ciphers). It copies the keys.
func NewSK(s Suite, encKey, integKey []byte) (*SK, error) {
	if err := s.checkESP(); err != nil {
		return nil, err
	}
	if len(encKey) != s.EncrKeyLen() {
		return nil, fmt.Errorf("%s encryption key of %d octets, want %d: %w",
			s.Encr, len(encKey), s.EncrKeyLen(), ErrKeyLength)
	}
	if len(integKey) != s.IntegKeyLen() {
		return nil, fmt.Errorf("%s integrity key of %d octets, want %d: %w",
			s.Integ, len(integKey), s.IntegKeyLen(), ErrKeyLength)
	}
	c := &SK{encr: encrs[s.Encr], random: rand.Reader}
	k := encKey[:len(encKey)-c.encr.saltLen]
	c.salt = append([]byte(nil), encKey[len(k):]...)
	var err error
	switch s.Encr {
	case EncrAESCBC, EncrAESCTR:
		c.block, err = aes.NewCipher(k)
	case EncrAESGCM16:
		var b cipher.Block
		if b, err = aes.NewCipher(k); err == nil {
			c.aead, err = cipher.NewGCM(b)
		}
	case EncrChaCha20Poly1305:
		c.aead, err = chacha20poly1305.New(k)
	}
	if err != nil {
		return nil, fmt.Errorf("ikecrypto: %s: %w", s.Encr, err)
	}
	if !c.encr.aead {
		c.integ = integs[s.Integ]
		c.ikey = append([]byte(nil), integKey...)
	}
	return c, nil
}

// IVLen is the length of the IV at the start of the body.
func (c *SK) IVLen() int { return c.encr.ivLen }

// ICVLen is the length of the Integrity Checksum Data at the end of the body.
func (c *SK) ICVLen() int {
	if c.encr.aead {
		return c.encr.icvLen
	}
	return c.integ.icvLen
}

// padLen is the number of padding octets for n octets of payloads: CBC pads
// payloads | padding | Pad Length to the 16-octet block (RFC 7296 §3.14); the
// counter-mode ciphers need no padding (RFC 5930 §2, RFC 5282 §3, RFC 7634 §3).
func (c *SK) padLen(n int) int {
	b := c.encr.block
	return (b - (n+1)%b) % b
}

// SealedLen is the length of the body Seal produces for n octets of inner
// payloads: IV, ciphertext (payloads, padding, Pad Length) and ICV.
func (c *SK) SealedLen(n int) int {
	return c.encr.ivLen + n + c.padLen(n) + 1 + c.ICVLen()
}

// Seal encrypts and protects payloads (the inner payload chain) and appends
// the SK body, IV | ciphertext | ICV, to dst. assoc is every octet of the
// message before the IV, length fields already final. The IV is random for
// CBC and a per-SK counter for the other ciphers.
func (c *SK) Seal(dst, assoc, payloads []byte) ([]byte, error) {
	iv := make([]byte, c.encr.ivLen)
	if c.block != nil && c.encr.ivLen == aes.BlockSize {
		if _, err := io.ReadFull(c.random, iv); err != nil {
			return nil, fmt.Errorf("ikecrypto: IV: %w", err)
		}
	} else {
		binary.BigEndian.PutUint64(iv, c.ivCtr.Add(1))
	}
	return c.sealIV(dst, assoc, payloads, iv, nil), nil
}

// sealIV is Seal with a given IV and, if padding is non-nil, given padding
// octets (tests reproduce strongSwan's messages with it).
func (c *SK) sealIV(dst, assoc, payloads, iv, padding []byte) []byte {
	pad := c.padLen(len(payloads))
	total := c.SealedLen(len(payloads))
	start := len(dst)
	dst = append(dst, make([]byte, total)...)
	body := dst[start:]
	copy(body, iv)
	pt := body[len(iv) : len(iv)+len(payloads)+pad+1]
	copy(pt, payloads)
	clear(pt[len(payloads) : len(pt)-1]) // padding: any value (RFC 7296 §3.14)
	copy(pt[len(payloads):len(pt)-1], padding)
	pt[len(pt)-1] = byte(pad)

	if c.aead != nil {
		nonce := c.nonce(iv)
		c.aead.Seal(pt[:0], nonce, pt, assoc)
		return dst
	}
	c.crypt(true, iv, pt)
	icv := c.mac(assoc, body[:len(body)-c.integ.icvLen])
	copy(body[len(body)-c.integ.icvLen:], icv)
	return dst
}

// Open checks and decrypts an SK body (IV | ciphertext | ICV) and returns the
// inner payload chain, padding and Pad Length removed, in a new slice. assoc
// is every octet of the received message before the IV. Any failure returns
// nil and an error wrapping ErrAuthentication (bad ICV or tag) or ErrMalformed
// (lengths, Pad Length); integrity is checked before anything is decrypted.
func (c *SK) Open(assoc, body []byte) ([]byte, error) {
	ivLen, icvLen := c.encr.ivLen, c.ICVLen()
	if len(body) < ivLen+1+icvLen {
		return nil, fmt.Errorf("body of %d octets, need at least %d: %w", len(body), ivLen+1+icvLen, ErrMalformed)
	}
	iv := body[:ivLen]
	ct := body[ivLen : len(body)-icvLen]
	var pt []byte
	if c.aead != nil {
		var err error
		pt, err = c.aead.Open(nil, c.nonce(iv), body[ivLen:], assoc)
		if err != nil {
			return nil, fmt.Errorf("%s tag: %w", c.encr.name, ErrAuthentication)
		}
	} else {
		if len(ct)%c.encr.block != 0 {
			return nil, fmt.Errorf("ciphertext of %d octets not a multiple of %d: %w", len(ct), c.encr.block, ErrMalformed)
		}
		want := c.mac(assoc, body[:len(body)-icvLen])
		if !hmac.Equal(want, body[len(body)-icvLen:]) {
			return nil, fmt.Errorf("%s ICV: %w", c.integ.name, ErrAuthentication)
		}
		pt = append([]byte(nil), ct...)
		c.crypt(false, iv, pt)
	}
	pad := int(pt[len(pt)-1])
	if pad+1 > len(pt) {
		return nil, fmt.Errorf("Pad Length %d with %d octets of plaintext: %w", pad, len(pt), ErrMalformed)
	}
	return pt[: len(pt)-1-pad : len(pt)-1-pad], nil
}

// nonce is salt | IV (RFC 5282 §4, RFC 7634 §2).
func (c *SK) nonce(iv []byte) []byte {
	n := make([]byte, 0, len(c.salt)+len(iv))
	return append(append(n, c.salt...), iv...)
}

// crypt runs AES-CBC or AES-CTR over buf in place.
func (c *SK) crypt(encrypt bool, iv, buf []byte) {
	if c.encr.ivLen == aes.BlockSize { // CBC
		if encrypt {
			cipher.NewCBCEncrypter(c.block, iv).CryptBlocks(buf, buf)
		} else {
			cipher.NewCBCDecrypter(c.block, iv).CryptBlocks(buf, buf)
		}
		return
	}
	// RFC 3686 §4 counter block: nonce (4) | IV (8) | block counter (4),
	// the counter starting at 1.
	var cb [aes.BlockSize]byte
	copy(cb[:4], c.salt)
	copy(cb[4:12], iv)
	cb[15] = 1
	cipher.NewCTR(c.block, cb[:]).XORKeyStream(buf, buf)
}

// mac is the truncated HMAC over assoc | data.
func (c *SK) mac(assoc, data []byte) []byte {
	m := hmac.New(c.integ.hash, c.ikey)
	m.Write(assoc)
	m.Write(data)
	return m.Sum(nil)[:c.integ.icvLen]
}
