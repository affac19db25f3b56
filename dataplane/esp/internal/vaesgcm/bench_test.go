package vaesgcm

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"testing"
)

// BenchmarkOpen and BenchmarkSeal (Seal in place, as ESP uses it; Open
// into a second buffer so that the ciphertext stays authentic; 8-byte AAD):
// this package against crypto/cipher's GCM on the same key, for ESP
// payloads of 128- and 1400-byte inner frames (plus ESP trailer) and 8 KiB.
func BenchmarkOpen(b *testing.B) { benchAEAD(b, true) }
func BenchmarkSeal(b *testing.B) { benchAEAD(b, false) }

func benchAEAD(b *testing.B, open bool) {
	need(b)
	key := make([]byte, 32)
	g, _ := New(key)
	block, _ := aes.NewCipher(key)
	std, _ := cipher.NewGCM(block)
	for _, n := range []int{148, 1420, 8192} {
		for _, impl := range []struct {
			name string
			a    cipher.AEAD
		}{{"vaes", g}, {"stdlib", std}} {
			b.Run(fmt.Sprintf("%d/%s", n, impl.name), func(b *testing.B) {
				nonce, aad := make([]byte, 12), make([]byte, 8)
				buf := impl.a.Seal(nil, nonce, make([]byte, n), aad)
				b.SetBytes(int64(n))
				out := make([]byte, 0, n+TagSize)
				for b.Loop() {
					if open {
						if _, err := impl.a.Open(out, nonce, buf, aad); err != nil {
							b.Fatal(err)
						}
					} else {
						impl.a.Seal(buf[:0], nonce, buf[:n], aad)
					}
				}
			})
		}
	}
}
