package vaesgcm

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// need skips, loudly, on a CPU without VAES/VPCLMULQDQ: there is nothing of
// this package to test there (esp then uses crypto/cipher).
func need(t testing.TB) {
	t.Helper()
	if !Supported() {
		t.Skip("SKIP: this CPU has no VAES/VPCLMULQDQ/AVX2; esp uses crypto/cipher here")
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// TestKeyExpansion: the last round key of the FIPS 197 Appendix A.1
// (AES-128) and A.3 (AES-256) key expansions.
func TestKeyExpansion(t *testing.T) {
	need(t)
	for _, tc := range []struct {
		key, last string
		nr        int
	}{
		{"2b7e151628aed2a6abf7158809cf4f3c", "d014f9a8c9ee2589e13f0cc8b6630ca6", 10},
		{"603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", "fe4890d1e6188d0b046df344706c631e", 14},
	} {
		var rk [15][16]byte
		nr := expandKey(unhex(t, tc.key), &rk)
		if nr != tc.nr || !bytes.Equal(rk[nr][:], unhex(t, tc.last)) {
			t.Errorf("key %s: %d rounds, last round key %x; want %d, %s", tc.key, nr, rk[nr], tc.nr, tc.last)
		}
	}
}

// TestMcGrewVectors opens and reproduces the AES-GCM ciphertexts and tags of
// draft-mcgrew-gcm-test-01 (the ESP test vectors in testdata/vectors).
func TestMcGrewVectors(t *testing.T) {
	need(t)
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "testdata", "vectors", "draft_mcgrew_gcm_test_01.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Cases []struct {
			Name, Key, Nonce, Plaintext, AAD string
			CtextTag                         string `json:"ctext_tag"`
		}
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tc := range v.Cases {
		key := unhex(t, tc.Key)
		if len(key) != 16 && len(key) != 32 {
			continue
		}
		n++
		g, err := New(key)
		if err != nil {
			t.Fatal(err)
		}
		nonce, pt, aad, want := unhex(t, tc.Nonce), unhex(t, tc.Plaintext), unhex(t, tc.AAD), unhex(t, tc.CtextTag)
		if got := g.Seal(nil, nonce, pt, aad); !bytes.Equal(got, want) {
			t.Errorf("%s: Seal = %x, want %x", tc.Name, got, want)
		}
		if got, err := g.Open(nil, nonce, want, aad); err != nil || !bytes.Equal(got, pt) {
			t.Errorf("%s: Open = %x, %v, want %x", tc.Name, got, err, pt)
		}
	}
	if n < 10 {
		t.Fatalf("only %d AES-128/256 cases in the vectors file", n)
	}
}

// TestAgainstCryptoCipher: for every length 0..700 and 1000..1600 in steps
// of 37, AAD of 0..40 bytes, both key sizes, Seal gives what crypto/cipher's
// GCM gives, in place and not, and Open inverts it. Lengths cover every
// path of the assembly: 16-block CTR strides, 2- and 1-block remainders,
// 8-block GHASH strides and every tail length, and ghashShort (up to 224
// bytes) for every number of blocks, odd and even, with one and two last
// blocks, and with a non-zero acc (AAD over 16 bytes).
func TestAgainstCryptoCipher(t *testing.T) {
	need(t)
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := make([]int, 0, 800)
	for n := range 701 {
		lengths = append(lengths, n)
	}
	for n := 1000; n <= 1600; n += 37 {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 9000, 65536+5)
	for _, keyLen := range []int{16, 32} {
		key := make([]byte, keyLen)
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		g, err := New(key)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := aes.NewCipher(key)
		ref, _ := cipher.NewGCM(block)
		for _, n := range lengths {
			nonce := make([]byte, 12)
			aad := make([]byte, rng.IntN(41))
			pt := make([]byte, n)
			for _, b := range [][]byte{nonce, aad, pt} {
				for i := range b {
					b[i] = byte(rng.Uint32())
				}
			}
			want := ref.Seal(nil, nonce, pt, aad)
			prefix := []byte{0xde, 0xad}
			if got := g.Seal(bytes.Clone(prefix), nonce, pt, aad); !bytes.Equal(got[2:], want) || !bytes.Equal(got[:2], prefix) {
				t.Fatalf("AES-%d, %d bytes, %d AAD: Seal = %x, crypto/cipher %x", keyLen*8, n, len(aad), got, want)
			}
			buf := make([]byte, n, n+TagSize)
			copy(buf, pt)
			if got := g.Seal(buf[:0], nonce, buf, aad); !bytes.Equal(got, want) {
				t.Fatalf("AES-%d, %d bytes: in-place Seal differs from crypto/cipher", keyLen*8, n)
			}
			got, err := g.Open(nil, nonce, want, aad)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("AES-%d, %d bytes: Open = %x, %v, want %x", keyLen*8, n, got, err, pt)
			}
			inPlace := bytes.Clone(want)
			if got, err := g.Open(inPlace[:0], nonce, inPlace, aad); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("AES-%d, %d bytes: in-place Open = %x, %v", keyLen*8, n, got, err)
			}
		}
	}
}

// TestForgeries: a flipped bit anywhere in ciphertext, tag, AAD or nonce is
// refused, and a refused in-place Open zeroes the plaintext's place (as
// crypto/cipher does) rather than leave plaintext there.
func TestForgeries(t *testing.T) {
	need(t)
	g, err := New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	nonce, aad := bytes.Repeat([]byte{1}, 12), []byte("spi+seq.")
	pt := bytes.Repeat([]byte("tunterm!"), 40)
	sealed := g.Seal(nil, nonce, pt, aad)
	for bit := range 8 * len(sealed) {
		c := bytes.Clone(sealed)
		c[bit/8] ^= 1 << (bit % 8)
		if got, err := g.Open(c[:0], nonce, c, aad); err == nil {
			t.Fatalf("bit %d of the ciphertext flipped: Open accepted %x", bit, got)
		}
		if !bytes.Equal(c[:len(pt)], make([]byte, len(pt))) {
			t.Fatalf("bit %d: a refused in-place Open left %x", bit, c[:len(pt)])
		}
	}
	for bit := range 8 * len(aad) {
		a := bytes.Clone(aad)
		a[bit/8] ^= 1 << (bit % 8)
		if _, err := g.Open(nil, nonce, sealed, a); err == nil {
			t.Fatalf("bit %d of the AAD flipped: Open accepted", bit)
		}
	}
	for bit := range 8 * len(nonce) {
		n := bytes.Clone(nonce)
		n[bit/8] ^= 1 << (bit % 8)
		if _, err := g.Open(nil, n, sealed, aad); err == nil {
			t.Fatalf("bit %d of the nonce flipped: Open accepted", bit)
		}
	}
	if _, err := g.Open(nil, nonce, sealed[:15], aad); err == nil {
		t.Fatal("Open accepted 15 bytes (shorter than a tag)")
	}
}

// TestCounterWraps: GCM's counter is the last 32 bits of the counter block
// only (inc32). With J0 a few blocks short of 2^32 (no nonce gives that, so
// ctrXOR is called directly), the keystream of J0+1 .. J0+n, the tag mask
// AES_K(J0) and the partial block's AES_K(J0+n+1) match crypto/aes block by
// block, for counts that take every path of the assembly.
func TestCounterWraps(t *testing.T) {
	need(t)
	key := bytes.Repeat([]byte{3}, 32)
	g, _ := New(key)
	block, _ := aes.NewCipher(key)
	inc := func(cb *[16]byte) {
		c := uint32(cb[12])<<24 | uint32(cb[13])<<16 | uint32(cb[14])<<8 | uint32(cb[15])
		c++
		cb[12], cb[13], cb[14], cb[15] = byte(c>>24), byte(c>>16), byte(c>>8), byte(c)
	}
	for _, n := range []int{0, 1, 2, 3, 13, 14, 15, 16, 17, 31, 32, 35, 47} {
		j0 := [16]byte{0: 9, 11: 9, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xf0}
		src := make([]byte, 16*n+1)
		for i := range src {
			src[i] = byte(i * 7)
		}
		got := make([]byte, len(src))
		var extra [32]byte
		ctrXOR(&g.rk, g.nr, &j0, &got[0], &src[0], n, &extra)
		want := make([]byte, len(src))
		var wantExtra [32]byte
		cb := j0
		block.Encrypt(wantExtra[:16], cb[:])
		for i := range n {
			inc(&cb)
			var ks [16]byte
			block.Encrypt(ks[:], cb[:])
			for j := range 16 {
				want[16*i+j] = src[16*i+j] ^ ks[j]
			}
		}
		inc(&cb)
		block.Encrypt(wantExtra[16:], cb[:])
		if !bytes.Equal(got, want) {
			t.Errorf("%d blocks over the wrap: keystream differs from AES block by block", n)
		}
		if extra != wantExtra {
			t.Errorf("%d blocks: tag mask and tail keystream %x, want %x", n, extra, wantExtra)
		}
	}
}

// TestOverlapPanics: like crypto/cipher, an output that overlaps the input
// other than exactly is refused.
func TestOverlapPanics(t *testing.T) {
	need(t)
	g, _ := New(make([]byte, 16))
	buf := make([]byte, 100)
	defer func() {
		if recover() == nil {
			t.Fatal("Seal into a shifted overlap of its input did not panic")
		}
	}()
	g.Seal(buf[1:1], make([]byte, 12), buf[:50], nil)
}

func TestBadKeySize(t *testing.T) {
	need(t)
	for _, n := range []int{0, 15, 24, 33} {
		if _, err := New(make([]byte, n)); err != ErrKeySize {
			t.Errorf("%d-byte key: %v, want ErrKeySize", n, err)
		}
	}
}
