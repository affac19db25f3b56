package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"testing"

	"github.com/tunterm/tunterm/dataplane/stats"
)

var benchSuites = []suite{
	{AESGCM256, IntegNone},
	{AESCTR256, HMACSHA512_256},
	{AESCBC256, HMACSHA256_128},
	{ChaCha20Poly1305, IntegNone},
}

var benchSizes = []int{128, 512, 1400}

func reportPPS(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

// BenchmarkSeal measures Seal of one payload of each size (bytes/s counts
// payload bytes).
func BenchmarkSeal(b *testing.B) {
	for _, s := range benchSuites {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("cipher=%s/size=%d", s, n), func(b *testing.B) {
				tx := mustSA(b, testConfig(s, false, 1))
				h := tx.HeaderLen()
				buf := make([]byte, h+n+tx.MaxTrailer())
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if _, _, r := tx.Seal(buf, h, n, 4); r != stats.OK {
						b.Fatal(r)
					}
				}
				reportPPS(b)
			})
		}
	}
}

// BenchmarkOpen measures Open. Each iteration copies a pristine packet into
// the work buffer first (Open decrypts in place); BenchmarkRawGCM's open
// does the same copy, so the two compare fairly. The replay window is reset
// every 64 packets.
func BenchmarkOpen(b *testing.B) {
	const k = 64
	for _, s := range benchSuites {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("cipher=%s/size=%d", s, n), func(b *testing.B) {
				tx, rx := pair(b, s, false)
				var pkts [k][]byte
				for i := range pkts {
					pkts[i] = sealCopy(b, tx, make([]byte, n), 4)
				}
				work := make([]byte, len(pkts[0]))
				b.SetBytes(int64(n))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if i == k {
						i = 0
						rx.setReplayTop(0)
					}
					copy(work, pkts[i])
					if _, _, r := rx.Open(work); r != stats.OK {
						b.Fatal(r)
					}
					i++
				}
				reportPPS(b)
			})
		}
	}
}

// BenchmarkRawGCM is plain crypto/cipher AES-256-GCM, in place, with an
// 8-byte AAD, on the same sizes: the floor BenchmarkOpen/Seal for
// aes-gcm-256 can be compared with.
func BenchmarkRawGCM(b *testing.B) {
	block, _ := aes.NewCipher(make([]byte, 32))
	g, _ := cipher.NewGCM(block)
	nonce, aad := make([]byte, 12), make([]byte, 8)
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("op=seal/size=%d", n), func(b *testing.B) {
			buf := make([]byte, n+16)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				g.Seal(buf[:0], nonce, buf[:n], aad)
			}
			reportPPS(b)
		})
		b.Run(fmt.Sprintf("op=open/size=%d", n), func(b *testing.B) {
			pristine := g.Seal(nil, nonce, make([]byte, n), aad)
			work := make([]byte, len(pristine))
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				copy(work, pristine)
				if _, err := g.Open(work[:0], nonce, work, aad); err != nil {
					b.Fatal(err)
				}
			}
			reportPPS(b)
		})
	}
}

// BenchmarkCTR compares the AES-CTR engine (keystream borrowed from GCM)
// with a Block.Encrypt loop and with cipher.NewCTR (which allocates).
func BenchmarkCTR(b *testing.B) {
	block, _ := aes.NewCipher(make([]byte, 32))
	c, _ := newAESCTR(block)
	var s ctrScratch
	for _, n := range benchSizes {
		p := make([]byte, n)
		b.Run(fmt.Sprintf("impl=gcm/size=%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				c.xor(&s, p)
			}
		})
		b.Run(fmt.Sprintf("impl=blocks/size=%d", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				c.xorBlocks(&s, p, 0)
			}
		})
		b.Run(fmt.Sprintf("impl=newctr/size=%d", n), func(b *testing.B) {
			iv := make([]byte, 16)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				cipher.NewCTR(block, iv).XORKeyStream(p, p)
			}
		})
	}
}
