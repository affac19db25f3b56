package ikecrypto

import (
	"fmt"
	"testing"
)

// BenchmarkDH is one side of a handshake's key exchange: GenerateKey and
// Shared.
func BenchmarkDH(b *testing.B) {
	for _, g := range []DHGroup{DHCurve25519, DHECP256, DHECP384, DHECP521, DHMODP2048} {
		peer, _ := GenerateKey(g, nil)
		b.Run(fmt.Sprintf("group%d", g), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				k, err := GenerateKey(g, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := k.Shared(peer.Public()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkKeySchedule is SKEYSEED, the seven IKE keys and the first CHILD_SA
// keys of the seed's default proposal (aes256ctr-sha512-prfsha512).
func BenchmarkKeySchedule(b *testing.B) {
	s := Suite{Encr: EncrAESCTR, EncrKeyBits: 256, Integ: IntegHMACSHA512256, PRF: PRFHMACSHA512, DH: DHCurve25519}
	ni, nr, gir := randBytes(32), randBytes(32), randBytes(32)
	b.ReportAllocs()
	for b.Loop() {
		seed, _ := SKEYSEED(s.PRF, ni, nr, gir)
		k, err := DeriveIKEKeys(s, seed, ni, nr, 1, 2)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := DeriveChildKeys(s, k.SKd, nil, ni, nr); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSK(b *testing.B) {
	for _, s := range skSuites {
		sk := newTestSK(b, s)
		pt := randBytes(512)
		assoc := skMessage(sk, len(pt))
		body, _ := sk.Seal(nil, assoc, pt)
		b.Run(s.String()+"/seal", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(pt)))
			buf := make([]byte, 0, len(body))
			for b.Loop() {
				sk.Seal(buf[:0], assoc, pt)
			}
		})
		b.Run(s.String()+"/open", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(pt)))
			for b.Loop() {
				if _, err := sk.Open(assoc, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
