package esp

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"math/rand/v2"
	"testing"
)

// TestCTREquivalence compares the GCM-borrowing CTR engine with the standard
// library's cipher.NewCTR for every length 0..2000 and random keys, nonces
// and IVs, and checks that it writes nothing outside its slice.
func TestCTREquivalence(t *testing.T) {
	rng := rand.New(rand.NewPCG(3686, 1))
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, keyLen := range []int{16, 24, 32} {
		for n := 0; n <= 2000; n++ {
			key, nonce, iv := rnd(keyLen), rnd(4), rnd(8)
			block, _ := aes.NewCipher(key)
			c, err := newAESCTR(block)
			if err != nil {
				t.Fatal(err)
			}
			pt := rnd(n)

			// Reference: RFC 3686 counter block with the counter at 1.
			ctrBlock := append(append(append([]byte{}, nonce...), iv...), 0, 0, 0, 1)
			want := make([]byte, n)
			cipher.NewCTR(block, ctrBlock).XORKeyStream(want, pt)

			var s ctrScratch
			copy(s.blk[0:4], nonce)
			copy(s.blk[4:12], iv)
			buf := bytes.Repeat([]byte{0xc3}, n+40)
			p := buf[20 : 20+n]
			copy(p, pt)
			c.xor(&s, p)
			if !bytes.Equal(p, want) {
				t.Fatalf("key %d bytes: CTR(%d bytes) differs from cipher.NewCTR", keyLen, n)
			}
			if !bytes.Equal(buf[:20], bytes.Repeat([]byte{0xc3}, 20)) || !bytes.Equal(buf[20+n:], bytes.Repeat([]byte{0xc3}, 20)) {
				t.Fatalf("key %d bytes: CTR(%d bytes) wrote outside its slice", keyLen, n)
			}
			// And back.
			c.xor(&s, p)
			if !bytes.Equal(p, pt) {
				t.Fatalf("key %d bytes: CTR(CTR(%d bytes)) is not the identity", keyLen, n)
			}
		}
	}
}
