// Package vaesgcm is AES-GCM (NIST SP 800-38D) for x86-64 processors with
// VAES and VPCLMULQDQ, which encrypt and multiply two blocks per
// instruction on 256-bit registers. Go's crypto/aes uses the 128-bit AES-NI
// and PCLMULQDQ instructions only (golang/go#42726). On this project's AMD
// EPYC VM this is 1.5–1.7 times as fast on 1400-byte ESP packets and about
// twice on long messages (BenchmarkOpen, BenchmarkSeal; docs/performance.md).
//
// It offers what ESP needs: 16- and 32-byte keys, the 12-byte nonce and the
// 16-byte tag, through cipher.AEAD, and behaves like crypto/cipher's GCM
// (which the tests compare it with).
package vaesgcm

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"unsafe"
)

const (
	// NonceSize is the only nonce length New's AEAD takes.
	NonceSize = 12
	// TagSize is the length of the tag Seal appends.
	TagSize = 16
	// maxText is the longest plaintext GCM takes: 2^32 - 2 blocks (SP
	// 800-38D §5.2.1.1), so that the 32-bit counter never wraps onto J0.
	maxText = (1<<32 - 2) * 16
)

var (
	// ErrUnsupported: the processor lacks VAES, VPCLMULQDQ or AVX2, or the
	// build is not for amd64.
	ErrUnsupported = errors.New("vaesgcm: the CPU lacks VAES/VPCLMULQDQ/AVX2")
	// ErrKeySize: the key is neither 16 nor 32 bytes long.
	ErrKeySize = errors.New("vaesgcm: key must be 16 or 32 bytes")

	errOpen = errors.New("cipher: message authentication failed")
)

// GCM is an AES-GCM AEAD. It is immutable after New and safe for concurrent
// use. Seal and Open read its round keys (240 bytes) for every message, and
// of its 256 bytes of GHASH key powers more the longer the message: all of
// them from 256 bytes on. Eight cache lines in all (504 bytes), which
// matters when thousands of SAs take turns.
type GCM struct {
	rk   [15][16]byte // AES round keys, nr+1 of them used
	htab table
	nr   int // AES rounds: 10 or 14
}

// table is what GHASH needs of the hash key H; the assembly knows its
// layout.
type table struct {
	pow [16][16]byte // H^16 .. H^1, byte-reversed and multiplied by x
}

// Supported reports whether New works on this machine.
func Supported() bool { return supported }

// New returns AES-GCM with the given 16- or 32-byte key, the 12-byte nonce
// and the 16-byte tag.
func New(key []byte) (*GCM, error) {
	if !supported {
		return nil, ErrUnsupported
	}
	if len(key) != 16 && len(key) != 32 {
		return nil, ErrKeySize
	}
	g := new(GCM)
	g.nr = expandKey(key, &g.rk)
	var zero [16]byte
	var ks [32]byte
	ctrXOR(&g.rk, g.nr, &zero, nil, nil, 0, &ks) // ks[:16] = H = AES_K(0^128)
	ghashInit((*[16]byte)(ks[:16]), &g.htab)
	return g, nil
}

// rcon are the round constants of the AES key schedule (FIPS 197 §5.2).
var rcon = [10]uint32{0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36}

// expandKey writes the encryption round keys of key (FIPS 197 §5.2) to rk
// and returns the number of rounds.
func expandKey(key []byte, rk *[15][16]byte) int {
	nk := len(key) / 4
	nr := nk + 6
	var w [60]uint32
	for i := range nk {
		w[i] = binary.BigEndian.Uint32(key[4*i:])
	}
	for i := nk; i < 4*(nr+1); i++ {
		t := w[i-1]
		switch {
		case i%nk == 0:
			t = subWord(t<<8|t>>24) ^ rcon[i/nk-1]<<24
		case nk > 6 && i%nk == 4:
			t = subWord(t)
		}
		w[i] = w[i-nk] ^ t
	}
	for i := range 4 * (nr + 1) {
		binary.BigEndian.PutUint32(rk[i/4][4*(i%4):], w[i])
	}
	return nr
}

// NonceSize returns 12.
func (g *GCM) NonceSize() int { return NonceSize }

// Overhead returns 16, the tag's length.
func (g *GCM) Overhead() int { return TagSize }

// Seal encrypts and authenticates plaintext, authenticates aad, and appends
// the result to dst. To reuse plaintext's storage, use plaintext[:0] as dst;
// any other overlap panics, as with crypto/cipher.
func (g *GCM) Seal(dst, nonce, plaintext, aad []byte) []byte {
	if len(nonce) != NonceSize {
		panic("vaesgcm: incorrect nonce length given to GCM")
	}
	if uint64(len(plaintext)) > maxText {
		panic("vaesgcm: message too large for GCM")
	}
	ret, out := sliceForAppend(dst, len(plaintext)+TagSize)
	if inexactOverlap(out, plaintext) {
		panic("vaesgcm: invalid buffer overlap of output and input")
	}
	if anyOverlap(out, aad) {
		panic("vaesgcm: invalid buffer overlap of output and additional data")
	}
	var ks [32]byte
	ct := out[:len(plaintext)]
	g.xorKeyStream(nonce, ct, plaintext, &ks)
	var acc [16]byte
	g.hash(&acc, aad, ct)
	le := binary.LittleEndian
	le.PutUint64(out[len(plaintext):], le.Uint64(acc[0:])^le.Uint64(ks[0:]))
	le.PutUint64(out[len(plaintext)+8:], le.Uint64(acc[8:])^le.Uint64(ks[8:]))
	return ret
}

// Open authenticates ciphertext (which ends with the tag) and aad and, when
// they are authentic, decrypts ciphertext and appends the plaintext to dst.
// To reuse ciphertext's storage, use ciphertext[:0] as dst. On failure it
// returns an error and zeroes the plaintext's place in dst (as crypto/cipher
// does).
func (g *GCM) Open(dst, nonce, ciphertext, aad []byte) ([]byte, error) {
	if len(nonce) != NonceSize {
		panic("vaesgcm: incorrect nonce length given to GCM")
	}
	if len(ciphertext) < TagSize {
		return nil, errOpen
	}
	if uint64(len(ciphertext)) > maxText+TagSize {
		return nil, errOpen
	}
	tag := ciphertext[len(ciphertext)-TagSize:]
	ct := ciphertext[:len(ciphertext)-TagSize]
	ret, out := sliceForAppend(dst, len(ct))
	if inexactOverlap(out, ct) {
		panic("vaesgcm: invalid buffer overlap of output and input")
	}
	if anyOverlap(out, aad) {
		panic("vaesgcm: invalid buffer overlap of output and additional data")
	}
	var acc [16]byte
	var ks [32]byte
	g.hash(&acc, aad, ct)
	g.xorKeyStream(nonce, out, ct, &ks)
	// The tag is AES_K(J0) xor GHASH; compared in constant time (the
	// difference of all 16 bytes is computed before the one branch, on
	// the outcome, which is public).
	le := binary.LittleEndian
	d0 := le.Uint64(acc[0:]) ^ le.Uint64(ks[0:]) ^ le.Uint64(tag[0:])
	d1 := le.Uint64(acc[8:]) ^ le.Uint64(ks[8:]) ^ le.Uint64(tag[8:])
	if d0|d1 != 0 {
		clear(out)
		return nil, errOpen
	}
	return ret, nil
}

// xorKeyStream XORs src with the GCM keystream for nonce into dst
// (len(dst) == len(src)) and leaves the tag mask AES_K(J0) in ks[:16].
func (g *GCM) xorKeyStream(nonce, dst, src []byte, ks *[32]byte) {
	var j0 [16]byte
	copy(j0[:], nonce)
	j0[15] = 1
	full := len(src) / 16
	ctrXOR(&g.rk, g.nr, &j0, unsafe.SliceData(dst), unsafe.SliceData(src), full, ks)
	if rest := src[16*full:]; len(rest) > 0 {
		xorShort(dst[16*full:], rest, (*[16]byte)(ks[16:]))
	}
}

// xorShort sets dst[i] = src[i] ^ k[i] for the 1..15 bytes of src: a
// partial last block, which in ESP is 4, 8 or 12 bytes (its ciphertext
// ends on a 4-byte boundary). Two words and then bytes, without the call
// and checks of subtle.XORBytes, which cost more than the XOR on the
// short packets where every nanosecond counts.
func xorShort(dst, src []byte, k *[16]byte) {
	n := len(src)
	_ = dst[n-1]
	i := 0
	le := binary.LittleEndian
	if n >= 8 {
		le.PutUint64(dst, le.Uint64(src)^le.Uint64(k[:]))
		i = 8
	}
	if n-i >= 4 {
		le.PutUint32(dst[i:], le.Uint32(src[i:])^le.Uint32(k[i:]))
		i += 4
	}
	for ; i < n; i++ {
		dst[i] = src[i] ^ k[i]
	}
}

// hash sets *acc, zero on entry, to GHASH_H(aad, ct) (SP 800-38D §7.1
// step 5, S before the tag mask): in one call of the assembly for an aad of
// up to 16 bytes, as ESP's 8 or 12.
func (g *GCM) hash(acc *[16]byte, aad, ct []byte) {
	var first [16]byte
	a := aad
	if len(a) > 16 {
		k := (len(a) - 1) / 16 // whole blocks before the last one
		ghash(&g.htab, acc, nil, &a[0], k, nil, 0)
		a = a[16*k:]
	}
	copy(first[:], a) // zero-padded; all zero for no aad, which adds nothing to a zero acc
	full := len(ct) / 16
	// The last partial block of ct, zero-padded, and the lengths block.
	var last [32]byte
	n := copy(last[:], ct[16*full:])
	end := 0
	if n > 0 {
		end = 16
	}
	binary.BigEndian.PutUint64(last[end:], uint64(len(aad))*8)
	binary.BigEndian.PutUint64(last[end+8:], uint64(len(ct))*8)
	m := end/16 + 1
	if 1+full+m <= 16 { // up to 224 bytes of ct: one reduction (ghashShort)
		ghashShort(&g.htab, acc, &first, unsafe.SliceData(ct), full, &last[0], m)
		return
	}
	ghash(&g.htab, acc, &first, unsafe.SliceData(ct), full, &last[0], m)
}

// sliceForAppend extends in by n bytes and returns the whole slice and the
// n new bytes (as crypto/cipher does).
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}

// anyOverlap reports whether x and y share memory.
func anyOverlap(x, y []byte) bool {
	return len(x) > 0 && len(y) > 0 &&
		uintptr(unsafe.Pointer(&x[0])) <= uintptr(unsafe.Pointer(&y[len(y)-1])) &&
		uintptr(unsafe.Pointer(&y[0])) <= uintptr(unsafe.Pointer(&x[len(x)-1]))
}

// inexactOverlap reports whether x and y share memory other than at the
// same starting address.
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 || &x[0] == &y[0] {
		return false
	}
	return anyOverlap(x, y)
}

var _ cipher.AEAD = (*GCM)(nil)
