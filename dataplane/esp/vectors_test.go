package esp

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/tunterm/tunterm/dataplane/stats"
)

// The vectors below come from the RFCs and drafts named in each file under
// testdata/vectors; every file says where its hex was transcribed from.

// splitTrailer splits an ESP plaintext (payload || padding || Pad Length ||
// Next Header) as printed by the RFCs.
func splitTrailer(t *testing.T, pt []byte) (payload []byte, next uint8) {
	t.Helper()
	n := len(pt)
	if n < 2 || int(pt[n-2])+2 > n {
		t.Fatalf("vector plaintext %x has no valid trailer", pt)
	}
	return pt[:n-2-int(pt[n-2])], pt[n-1]
}

// TestRFC3602CBC runs RFC 3602 §4 cases #1-#4 through the SA's CBC objects
// (the SetIV path Seal and Open use).
func TestRFC3602CBC(t *testing.T) {
	var v struct {
		Source string
		CBC    []struct {
			Name, Key, IV, Plaintext, Ciphertext string
			PlaintextASCII                       string `json:"plaintext_ascii"`
		}
	}
	loadVectors(t, "rfc3602_aes_cbc.json", &v)
	for _, tc := range v.CBC {
		t.Run(tc.Name, func(t *testing.T) {
			pt := unhex(t, tc.Plaintext)
			if tc.PlaintextASCII != "" {
				pt = []byte(tc.PlaintextASCII)
			}
			want := unhex(t, tc.Ciphertext)
			sa := mustSA(t, Config{SPI: 1, Cipher: AESCBC128, EncKey: unhex(t, tc.Key), allowNoInteg: true})
			st := sa.St
			got := bytes.Clone(pt)
			st.cbcEIV.SetIV(unhex(t, tc.IV))
			st.cbcEnc.CryptBlocks(got, got)
			if !bytes.Equal(got, want) {
				t.Errorf("CBC encrypt(%x) = %x, want %x", pt, got, want)
			}
			st.cbcDIV.SetIV(unhex(t, tc.IV))
			st.cbcDec.CryptBlocks(got, got)
			if !bytes.Equal(got, pt) {
				t.Errorf("CBC decrypt(%x) = %x, want %x", want, got, pt)
			}
		})
	}
}

// TestRFC3602ESP opens the RFC 3602 §4 ESP packets #5-#8 (encryption only)
// and reproduces them byte for byte with Seal.
func TestRFC3602ESP(t *testing.T) {
	var v struct {
		Source string
		ESP    []struct {
			Name, Key, SPI, IV, Payload, Packet string
			Seq                                 uint64
			NextHeader                          uint8 `json:"next_header"`
		}
	}
	loadVectors(t, "rfc3602_aes_cbc.json", &v)
	if len(v.ESP) != 4 {
		t.Fatalf("%d ESP cases, want 4", len(v.ESP))
	}
	for _, tc := range v.ESP {
		t.Run(tc.Name, func(t *testing.T) {
			cfg := Config{
				SPI:          binary.BigEndian.Uint32(unhex(t, tc.SPI)),
				Cipher:       AESCBC128,
				EncKey:       unhex(t, tc.Key),
				allowNoInteg: true,
			}
			pkt, payload := unhex(t, tc.Packet), unhex(t, tc.Payload)

			sa := mustSA(t, cfg)
			got, next, r := sa.Open(bytes.Clone(pkt))
			if r != stats.OK || !bytes.Equal(got, payload) || next != tc.NextHeader {
				t.Errorf("Open(%x) = %x, %d, %v, want %x, %d, ok", pkt, got, next, r, payload, tc.NextHeader)
			}

			sa = mustSA(t, cfg)
			sa.setNextSeq(tc.Seq)
			sa.setIV(unhex(t, tc.IV))
			if got := sealCopy(t, sa, payload, tc.NextHeader); !bytes.Equal(got, pkt) {
				t.Errorf("Seal(%x) = %x, want %x", payload, got, pkt)
			}
		})
	}
}

// TestRFC3686CTR runs the RFC 3686 §6 vectors through the CTR engine, once
// with the block loop and once through the GCM path.
func TestRFC3686CTR(t *testing.T) {
	var v struct {
		Source  string
		Vectors []struct{ Name, Key, IV, Nonce, Plaintext, Ciphertext string }
	}
	loadVectors(t, "rfc3686_aes_ctr.json", &v)
	if len(v.Vectors) != 9 {
		t.Fatalf("%d vectors, want 9", len(v.Vectors))
	}
	for _, tc := range v.Vectors {
		for _, direct := range []int{ctrDirect, 31} {
			t.Run(tc.Name+"/direct="+strconv.Itoa(direct), func(t *testing.T) {
				block, err := aes.NewCipher(unhex(t, tc.Key))
				if err != nil {
					t.Fatal(err)
				}
				c, err := newAESCTR(block)
				if err != nil {
					t.Fatal(err)
				}
				var s ctrScratch
				copy(s.blk[0:4], unhex(t, tc.Nonce))
				copy(s.blk[4:12], unhex(t, tc.IV))
				pt, want := unhex(t, tc.Plaintext), unhex(t, tc.Ciphertext)
				got := bytes.Clone(pt)
				c.xorAbove(&s, got, direct)
				if !bytes.Equal(got, want) {
					t.Errorf("CTR(%x) = %x, want %x", pt, got, want)
				}
			})
		}
	}
}

// TestRFC3686SA checks that an aes-ctr SA builds its counter block from the
// key material's trailing 4 bytes (the RFC 3686 nonce) and the IV: sealing a
// 34-byte payload (+ 2 trailer bytes = 36) under test vector #3 / #9's key,
// nonce and IV must produce the RFC's keystream (plaintext XOR ciphertext)
// XORed onto our ESP plaintext.
func TestRFC3686SA(t *testing.T) {
	var v struct {
		Vectors []struct{ Name, Key, IV, Nonce, Plaintext, Ciphertext string }
	}
	loadVectors(t, "rfc3686_aes_ctr.json", &v)
	for _, i := range []int{2, 8} { // #3 (AES-128) and #9 (AES-256), 36 bytes each
		tc := v.Vectors[i]
		t.Run(tc.Name, func(t *testing.T) {
			key, c := unhex(t, tc.Key), AESCTR128
			if len(key) == 32 {
				c = AESCTR256
			}
			sa := mustSA(t, Config{SPI: 0x1000, Cipher: c, EncKey: append(key, unhex(t, tc.Nonce)...),
				Integ: HMACSHA256_128, IntegKey: bytes.Repeat([]byte{0x5a}, 32)})
			iv := unhex(t, tc.IV)
			sa.setIV(iv)
			payload := []byte("thirty-four bytes of ESP payload!!")
			pkt := sealCopy(t, sa, payload, 17)
			espPT := append(bytes.Clone(payload), 0, 17) // no padding needed
			want := unhex(t, tc.Ciphertext)
			subtleXOR(want, unhex(t, tc.Plaintext))
			subtleXOR(want, espPT)
			if got := pkt[16 : 16+36]; !bytes.Equal(got, want) || !bytes.Equal(pkt[8:16], iv) {
				t.Errorf("Seal(%x) ciphertext = %x, want %x", payload, got, want)
			}
			got, next, r := mustSA(t, Config{SPI: 0x1000, Cipher: c, EncKey: append(key, unhex(t, tc.Nonce)...),
				Integ: HMACSHA256_128, IntegKey: bytes.Repeat([]byte{0x5a}, 32)}).Open(pkt)
			if r != stats.OK || !bytes.Equal(got, payload) || next != 17 {
				t.Errorf("Open(%x) = %x, %d, %v, want %x, 17, ok", pkt, got, next, r, payload)
			}
		})
	}
}

func subtleXOR(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}

type hmacCase struct {
	Name, Key, Data  string
	SHA256, SHA384   string
	SHA512           string
	PRF, ICV         string
	Digest, Digest96 string
}

// checkMAC runs data through the SA's ICV code (sa.icv) with the HMAC of
// integ keyed with key and compares the untruncated output with full and the
// ICVLen-truncated output with trunc (either may be empty).
func checkMAC(t *testing.T, integ Integ, key, data, full, trunc []byte) {
	t.Helper()
	sa := mustSA(t, Config{SPI: 1, Cipher: AESCBC128, EncKey: make([]byte, 16),
		Integ: integ, IntegKey: make([]byte, integ.KeyLen())})
	sa.St.mac = newMAC(integ, key) // RFC keys have arbitrary lengths
	sa.icv(sa.St, data, 0)
	if len(full) > 0 && !bytes.Equal(sa.St.sum[:len(full)], full) {
		t.Errorf("%s(%x) = %x, want %x", integ, data, sa.St.sum[:len(full)], full)
	}
	if len(trunc) > 0 && !bytes.Equal(sa.St.sum[:integ.ICVLen()], trunc) {
		t.Errorf("%s ICV(%x) = %x, want %x", integ, data, sa.St.sum[:integ.ICVLen()], trunc)
	}
}

// TestRFC4231HMAC runs RFC 4231 §4 test cases 1-7 for SHA-256, SHA-384 and
// SHA-512.
func TestRFC4231HMAC(t *testing.T) {
	var v struct{ Cases []hmacCase }
	loadVectors(t, "rfc4231_hmac_sha2.json", &v)
	if len(v.Cases) != 7 {
		t.Fatalf("%d cases, want 7", len(v.Cases))
	}
	for _, tc := range v.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			key, data := unhex(t, tc.Key), unhex(t, tc.Data)
			checkMAC(t, HMACSHA256_128, key, data, unhex(t, tc.SHA256), nil)
			checkMAC(t, HMACSHA384_192, key, data, unhex(t, tc.SHA384), nil)
			checkMAC(t, HMACSHA512_256, key, data, unhex(t, tc.SHA512), nil)
		})
	}
}

// TestRFC4868Auth runs the RFC 4868 §2.7.2.1-§2.7.2.3 authenticator
// vectors (AUTH256-1..4, AUTH384-1..4, AUTH512-1..4): the full HMAC and the
// ICV truncated to 128, 192 and 256 bits.
func TestRFC4868Auth(t *testing.T) {
	var v struct{ SHA256, SHA384, SHA512 []hmacCase }
	loadVectors(t, "rfc4868_hmac_auth.json", &v)
	if len(v.SHA256) != 4 || len(v.SHA384) != 4 || len(v.SHA512) != 4 {
		t.Fatalf("%d+%d+%d cases, want 4+4+4", len(v.SHA256), len(v.SHA384), len(v.SHA512))
	}
	for _, set := range []struct {
		integ Integ
		cases []hmacCase
	}{{HMACSHA256_128, v.SHA256}, {HMACSHA384_192, v.SHA384}, {HMACSHA512_256, v.SHA512}} {
		for _, tc := range set.cases {
			t.Run(tc.Name, func(t *testing.T) {
				key := unhex(t, tc.Key)
				if len(key) != set.integ.KeyLen() {
					t.Fatalf("key is %d bytes, want %d", len(key), set.integ.KeyLen())
				}
				checkMAC(t, set.integ, key, unhex(t, tc.Data), unhex(t, tc.PRF), unhex(t, tc.ICV))
			})
		}
	}
}

// TestRFC2202HMACSHA1 runs the RFC 2202 §3 HMAC-SHA-1 cases, truncated to 96
// bits as HMAC-SHA-1-96 (RFC 2404) does.
func TestRFC2202HMACSHA1(t *testing.T) {
	var v struct{ Cases []hmacCase }
	loadVectors(t, "rfc2202_hmac_sha1.json", &v)
	for _, tc := range v.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			d := unhex(t, tc.Digest)
			checkMAC(t, HMACSHA1_96, unhex(t, tc.Key), unhex(t, tc.Data), d, d[:12])
			if tc.Digest96 != "" && !bytes.Equal(unhex(t, tc.Digest96), d[:12]) {
				t.Errorf("digest-96 %s is not the first 12 bytes of %s", tc.Digest96, tc.Digest)
			}
		})
	}
}

// TestRFC7634ESP opens the RFC 7634 Appendix A ChaCha20-Poly1305 ESP packet
// and reproduces it with Seal.
func TestRFC7634ESP(t *testing.T) {
	var v struct {
		Source                                               string
		Key, SPI, IV, Nonce, AAD, Plaintext, Ciphertext, Tag string
		Seq                                                  uint64
	}
	loadVectors(t, "rfc7634_chacha20poly1305_esp.json", &v)
	spi := unhex(t, v.SPI)
	var seq [4]byte
	binary.BigEndian.PutUint32(seq[:], uint32(v.Seq))
	if aad := append(bytes.Clone(spi), seq[:]...); !bytes.Equal(aad, unhex(t, v.AAD)) {
		t.Fatalf("AAD %x, vector says %s", aad, v.AAD)
	}
	var pkt []byte
	for _, p := range [][]byte{spi, seq[:], unhex(t, v.IV), unhex(t, v.Ciphertext), unhex(t, v.Tag)} {
		pkt = append(pkt, p...)
	}
	payload, wantNext := splitTrailer(t, unhex(t, v.Plaintext))
	cfg := Config{SPI: binary.BigEndian.Uint32(spi), Cipher: ChaCha20Poly1305, EncKey: unhex(t, v.Key)}

	sa := mustSA(t, cfg)
	got, next, r := sa.Open(bytes.Clone(pkt))
	if r != stats.OK || !bytes.Equal(got, payload) || next != wantNext {
		t.Errorf("Open(%x) = %x, %d, %v, want %x, %d, ok", pkt, got, next, r, payload, wantNext)
	}

	sa = mustSA(t, cfg)
	sa.setNextSeq(v.Seq)
	sa.setIV(unhex(t, v.IV))
	if got := sealCopy(t, sa, payload, wantNext); !bytes.Equal(got, pkt) {
		t.Errorf("Seal(%x) = %x, want %x", payload, got, pkt)
	}
}

// TestMcGrewGCM opens the draft-mcgrew-gcm-test-01 §4 AES-GCM ESP packets
// (32-bit and 64-bit sequence numbers) and reproduces them with Seal, with
// each AES-GCM implementation this machine has.
func TestMcGrewGCM(t *testing.T) {
	var v struct {
		Source string
		Cases  []struct {
			Name, Key, SPI, Seq, Nonce, Plaintext, AAD string
			CtextTag                                   string `json:"ctext_tag"`
			Packet                                     string
		}
	}
	loadVectors(t, "draft_mcgrew_gcm_test_01.json", &v)
	if len(v.Cases) != 14 {
		t.Fatalf("%d cases, want 14", len(v.Cases))
	}
	for _, impl := range gcmImpls() {
		for _, tc := range v.Cases {
			t.Run(impl+"/"+tc.Name, func(t *testing.T) {
				useGCM(t, impl)
				key, nonce, pt := unhex(t, tc.Key), unhex(t, tc.Nonce), unhex(t, tc.Plaintext)
				seqb, pkt := unhex(t, tc.Seq), unhex(t, tc.Packet)

				// The vector itself, with plain crypto/cipher.
				block, err := aes.NewCipher(key)
				if err != nil {
					t.Fatal(err)
				}
				g, _ := cipher.NewGCM(block)
				if got, err := g.Open(nil, nonce, unhex(t, tc.CtextTag), unhex(t, tc.AAD)); err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("crypto/cipher GCM Open = %x, %v: vector inconsistent", got, err)
				}
				var c Cipher
				switch len(key) {
				case 16:
					c = AESGCM128
				case 32:
					c = AESGCM256
				default:
					t.Skipf("%d-byte AES key: no aes-gcm-%d Cipher", len(key), len(key)*8)
				}
				var seq uint64
				esn := len(seqb) == 8
				if esn {
					seq = binary.BigEndian.Uint64(seqb)
				} else {
					seq = uint64(binary.BigEndian.Uint32(seqb))
				}
				cfg := Config{
					SPI:          binary.BigEndian.Uint32(unhex(t, tc.SPI)),
					Cipher:       c,
					EncKey:       append(key, nonce[:4]...),
					ESN:          esn,
					allowZeroSPI: true, // case #4
				}
				payload, wantNext := splitTrailer(t, pt)

				sa := mustSA(t, cfg)
				if seq > 1 {
					sa.setReplayTop(seq - 1) // the receiver has seen the packet before
				}
				got, next, r := sa.Open(bytes.Clone(pkt))
				if r != stats.OK || !bytes.Equal(got, payload) || next != wantNext {
					t.Errorf("Open(%x) = %x, %d, %v, want %x, %d, ok", pkt, got, next, r, payload, wantNext)
				}

				sa = mustSA(t, cfg)
				sa.setNextSeq(seq)
				sa.setIV(nonce[4:])
				if got := sealCopy(t, sa, payload, wantNext); !bytes.Equal(got, pkt) {
					t.Errorf("Seal(%x) = %x, want %x", payload, got, pkt)
				}
			})
		}
	}
}
