package ikecrypto

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/tunterm/tunterm/dataplane/esp"
)

// skSuites are the IKE SA encryption/integrity combinations of issue 4.
var skSuites = []Suite{
	{Encr: EncrAESCBC, EncrKeyBits: 128, Integ: IntegHMACSHA1_96},
	{Encr: EncrAESCBC, EncrKeyBits: 128, Integ: IntegHMACSHA256128},
	{Encr: EncrAESCBC, EncrKeyBits: 256, Integ: IntegHMACSHA384192},
	{Encr: EncrAESCBC, EncrKeyBits: 256, Integ: IntegHMACSHA512256},
	{Encr: EncrAESCTR, EncrKeyBits: 128, Integ: IntegHMACSHA256128},
	{Encr: EncrAESCTR, EncrKeyBits: 256, Integ: IntegHMACSHA512256},
	{Encr: EncrAESGCM16, EncrKeyBits: 128},
	{Encr: EncrAESGCM16, EncrKeyBits: 256},
	{Encr: EncrChaCha20Poly1305},
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func newTestSK(t testing.TB, s Suite) *SK {
	sk, err := NewSK(s, randBytes(s.EncrKeyLen()), randBytes(s.IntegKeyLen()))
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// skMessage builds an IKE header and SK generic header for n octets of inner
// payloads, with the length fields final, as a responder would.
func skMessage(sk *SK, n int) []byte {
	body := sk.SealedLen(n)
	h := make([]byte, 28+4)
	binary.BigEndian.PutUint64(h[0:], 0x0102030405060708)
	binary.BigEndian.PutUint64(h[8:], 0x1112131415161718)
	h[16] = 46   // Next Payload: SK
	h[17] = 0x20 // version 2.0
	h[18] = 35   // IKE_AUTH
	h[19] = 0x20 // Response
	binary.BigEndian.PutUint32(h[20:], 1)
	binary.BigEndian.PutUint32(h[24:], uint32(len(h)+body))
	h[28] = 36 // first inner payload: IDr
	binary.BigEndian.PutUint16(h[30:], uint16(4+body))
	return h
}

func TestSKRoundTrip(t *testing.T) {
	for _, s := range skSuites {
		t.Run(s.String(), func(t *testing.T) {
			sk := newTestSK(t, s)
			for _, n := range []int{0, 1, 15, 16, 17, 100, 1000} {
				pt := randBytes(n)
				assoc := skMessage(sk, n)
				body, err := sk.Seal(nil, assoc, pt)
				if err != nil {
					t.Fatal(err)
				}
				if len(body) != sk.SealedLen(n) {
					t.Fatalf("Seal(%d) = %d octets, SealedLen %d", n, len(body), sk.SealedLen(n))
				}
				if ct := len(body) - sk.IVLen() - sk.ICVLen(); s.Encr == EncrAESCBC && ct%16 != 0 {
					t.Errorf("CBC ciphertext of %d octets", ct)
				}
				got, err := sk.Open(assoc, body)
				if err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("Open(Seal(%x)) = %x, %v", pt, got, err)
				}
				// Seal appends to dst.
				pre := []byte("prefix")
				b2, _ := sk.Seal(append([]byte{}, pre...), assoc, pt)
				if !bytes.HasPrefix(b2, pre) {
					t.Errorf("Seal did not append to dst")
				}
				if got, err := sk.Open(assoc, b2[len(pre):]); err != nil || !bytes.Equal(got, pt) {
					t.Errorf("Open of the appended body = %x, %v", got, err)
				}
				// Two seals of the same plaintext differ (fresh IV).
				if b3, _ := sk.Seal(nil, assoc, pt); bytes.Equal(b3, body) {
					t.Errorf("two Seals produced the same body")
				}
			}
		})
	}
}

func TestSKTamper(t *testing.T) {
	for _, s := range skSuites {
		t.Run(s.String(), func(t *testing.T) {
			sk := newTestSK(t, s)
			pt := []byte("IDr AUTH SA TSi TSr payloads")
			assoc := skMessage(sk, len(pt))
			body, _ := sk.Seal(nil, assoc, pt)
			for i := range assoc {
				a := append([]byte{}, assoc...)
				a[i] ^= 1
				if got, err := sk.Open(a, body); !errors.Is(err, ErrAuthentication) || got != nil {
					t.Fatalf("Open with assoc octet %d flipped = %x, %v, want ErrAuthentication", i, got, err)
				}
			}
			for i := range body {
				b := append([]byte{}, body...)
				b[i] ^= 0x40
				if got, err := sk.Open(assoc, b); err == nil || got != nil {
					t.Fatalf("Open with body octet %d flipped = %x, %v, want an error", i, got, err)
				}
			}
			if _, err := sk.Open(assoc, body[:len(body)-1]); err == nil {
				t.Errorf("Open accepted a truncated body")
			}
			if _, err := sk.Open(assoc, body[:sk.IVLen()+sk.ICVLen()]); !errors.Is(err, ErrMalformed) {
				t.Errorf("Open(IV|ICV) error = %v, want ErrMalformed", err)
			}
			// The other direction's keys cannot open it.
			other := newTestSK(t, s)
			if _, err := other.Open(assoc, body); !errors.Is(err, ErrAuthentication) {
				t.Errorf("Open with other keys error = %v, want ErrAuthentication", err)
			}
		})
	}
}

// A Pad Length larger than the plaintext is refused after a valid ICV.
func TestSKBadPadLength(t *testing.T) {
	for _, s := range skSuites {
		sk := newTestSK(t, s)
		assoc := skMessage(sk, 15)
		iv := make([]byte, sk.IVLen())
		// 16 octets of plaintext whose last octet, the Pad Length, claims
		// 200 octets of padding; protected with valid keys.
		raw := append(bytes.Repeat([]byte{0}, 15), 200)
		var forged []byte
		if sk.aead != nil {
			forged = sk.aead.Seal(append([]byte{}, iv...), sk.nonce(iv), raw, assoc)
		} else {
			ct := append([]byte{}, raw...)
			sk.crypt(true, iv, ct)
			forged = append(append([]byte{}, iv...), ct...)
			forged = append(forged, sk.mac(assoc, forged)...)
		}
		if got, err := sk.Open(assoc, forged); !errors.Is(err, ErrMalformed) || got != nil {
			t.Errorf("%s: Open with Pad Length 200 = %x, %v, want ErrMalformed", s, got, err)
		}
	}
}

func TestNewSKErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		s    Suite
		e, i int
		want error
	}{
		{"unknown cipher", Suite{Encr: 3, EncrKeyBits: 128, Integ: IntegHMACSHA256128}, 16, 32, ErrUnsupported},
		{"aes-192", Suite{Encr: EncrAESCBC, EncrKeyBits: 192, Integ: IntegHMACSHA256128}, 24, 32, ErrInvalidSuite},
		{"cbc without integrity", Suite{Encr: EncrAESCBC, EncrKeyBits: 128}, 16, 0, ErrInvalidSuite},
		{"gcm with integrity", Suite{Encr: EncrAESGCM16, EncrKeyBits: 128, Integ: IntegHMACSHA256128}, 20, 32, ErrInvalidSuite},
		{"chacha key length", Suite{Encr: EncrChaCha20Poly1305, EncrKeyBits: 128}, 20, 0, ErrInvalidSuite},
		{"short enc key", Suite{Encr: EncrAESGCM16, EncrKeyBits: 128}, 16, 0, ErrKeyLength},
		{"short integ key", Suite{Encr: EncrAESCTR, EncrKeyBits: 128, Integ: IntegHMACSHA1_96}, 20, 16, ErrKeyLength},
	} {
		if _, err := NewSK(c.s, make([]byte, c.e), make([]byte, c.i)); !errors.Is(err, c.want) {
			t.Errorf("%s: NewSK error = %v, want %v", c.name, err, c.want)
		}
	}
}

// Key lengths per RFC 5282 §7.1 (GCM: key + 4-octet salt), RFC 5930 §2
// (CTR: key + 4-octet nonce), RFC 7634 §3 (36 octets), RFC 4868 §2.1.1.
func TestKeyLengths(t *testing.T) {
	for _, c := range []struct {
		s          Suite
		enc, integ int
		prf        int
	}{
		{Suite{Encr: EncrAESCBC, EncrKeyBits: 128, Integ: IntegHMACSHA1_96, PRF: PRFHMACSHA256}, 16, 20, 32},
		{Suite{Encr: EncrAESCBC, EncrKeyBits: 256, Integ: IntegHMACSHA256128, PRF: PRFHMACSHA384}, 32, 32, 48},
		{Suite{Encr: EncrAESCTR, EncrKeyBits: 128, Integ: IntegHMACSHA384192, PRF: PRFHMACSHA512}, 20, 48, 64},
		{Suite{Encr: EncrAESCTR, EncrKeyBits: 256, Integ: IntegHMACSHA512256, PRF: PRFHMACSHA512}, 36, 64, 64},
		{Suite{Encr: EncrAESGCM16, EncrKeyBits: 128, PRF: PRFHMACSHA256}, 20, 0, 32},
		{Suite{Encr: EncrAESGCM16, EncrKeyBits: 256, PRF: PRFHMACSHA384}, 36, 0, 48},
		{Suite{Encr: EncrChaCha20Poly1305, PRF: PRFHMACSHA256}, 36, 0, 32},
	} {
		if c.s.EncrKeyLen() != c.enc || c.s.IntegKeyLen() != c.integ || c.s.PRF.Size() != c.prf {
			t.Errorf("%s: key lengths %d/%d/%d, want %d/%d/%d", c.s, c.s.EncrKeyLen(), c.s.IntegKeyLen(),
				c.s.PRF.Size(), c.enc, c.integ, c.prf)
		}
		c.s.DH = DHCurve25519
		k, err := DeriveIKEKeys(c.s, randBytes(32), randBytes(32), randBytes(32), 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range []struct {
			b []byte
			n int
		}{{k.SKd, c.prf}, {k.SKai, c.integ}, {k.SKar, c.integ}, {k.SKei, c.enc}, {k.SKer, c.enc}, {k.SKpi, c.prf}, {k.SKpr, c.prf}} {
			if len(l.b) != l.n {
				t.Errorf("%s: IKE key of %d octets, want %d", c.s, len(l.b), l.n)
			}
		}
	}
}

// espCipher maps an ESP suite to dataplane/esp's names ("" if the dataplane
// does not implement it).
func espCipher(s Suite) (esp.Cipher, esp.Integ, bool) {
	var cn string
	switch s.Encr {
	case EncrAESGCM16:
		cn = fmt.Sprintf("aes-gcm-%d", s.EncrKeyBits)
	case EncrAESCTR:
		cn = fmt.Sprintf("aes-ctr-%d", s.EncrKeyBits)
	case EncrAESCBC:
		cn = fmt.Sprintf("aes-cbc-%d", s.EncrKeyBits)
	case EncrChaCha20Poly1305:
		cn = "chacha20-poly1305"
	}
	c, err := esp.ParseCipher(cn)
	if err != nil {
		return 0, 0, false
	}
	in := ""
	if !s.Encr.AEAD() {
		in = s.Integ.String()
	}
	i, err := esp.ParseInteg(in)
	if err != nil {
		return 0, 0, false
	}
	return c, i, true
}

// The CHILD_SA keys drop into the dataplane: lengths match esp.Cipher.KeyLen
// and esp.Integ.KeyLen, and an SA pair built from them carries a packet.
func TestChildKeysFitDataplane(t *testing.T) {
	suites := append([]Suite{}, skSuites...)
	n := 0
	for _, s := range suites {
		s.PRF = PRFHMACSHA256
		c, i, ok := espCipher(s)
		if !ok {
			t.Logf("%s: not in dataplane/esp", s)
			continue
		}
		n++
		ck, err := DeriveChildKeys(s, randBytes(32), nil, randBytes(32), randBytes(32))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []DirKeys{ck.InitToResp, ck.RespToInit} {
			if len(d.EncKey) != c.KeyLen() || len(d.IntegKey) != i.KeyLen() {
				t.Errorf("%s: keys %d/%d, dataplane wants %d/%d", s, len(d.EncKey), len(d.IntegKey), c.KeyLen(), i.KeyLen())
			}
		}
		// The responder's outbound SA and the initiator's inbound SA share
		// the responder-to-initiator keys; a packet goes through.
		cfg := esp.Config{SPI: 0x1001, Cipher: c, EncKey: ck.RespToInit.EncKey, Integ: i, IntegKey: ck.RespToInit.IntegKey}
		out, err := esp.NewSA(cfg)
		if err != nil {
			t.Fatalf("%s: NewSA: %v", s, err)
		}
		in, err := esp.NewSA(cfg)
		if err != nil {
			t.Fatal(err)
		}
		payload := []byte("an inner IPv4 packet, more or less")
		buf := make([]byte, out.HeaderLen()+len(payload)+out.MaxTrailer())
		copy(buf[out.HeaderLen():], payload)
		start, end, r := out.Seal(buf, out.HeaderLen(), len(payload), 4)
		if r != 0 {
			t.Fatalf("%s: Seal = %v", s, r)
		}
		got, next, r := in.Open(buf[start:end])
		if r != 0 || next != 4 || !bytes.Equal(got, payload) {
			t.Errorf("%s: Open = %q, %d, %v", s, got, next, r)
		}
	}
	if n < 6 {
		t.Errorf("only %d suites map to dataplane/esp", n)
	}
}

func TestDeriveChildKeysPFS(t *testing.T) {
	s := Suite{Encr: EncrAESCTR, EncrKeyBits: 256, Integ: IntegHMACSHA512256, PRF: PRFHMACSHA512, DH: DHCurve25519}
	skd, gir, ni, nr := randBytes(64), randBytes(32), randBytes(32), randBytes(32)
	ck, err := DeriveChildKeys(s, skd, gir, ni, nr)
	if err != nil {
		t.Fatal(err)
	}
	seed := append(append(append([]byte{}, gir...), ni...), nr...)
	km := prfPlusReference(s.PRF, skd, seed, 2*(36+64))
	want := ChildKeys{
		InitToResp: DirKeys{km[0:36], km[36:100]},
		RespToInit: DirKeys{km[100:136], km[136:200]},
	}
	if !bytes.Equal(ck.InitToResp.EncKey, want.InitToResp.EncKey) || !bytes.Equal(ck.InitToResp.IntegKey, want.InitToResp.IntegKey) ||
		!bytes.Equal(ck.RespToInit.EncKey, want.RespToInit.EncKey) || !bytes.Equal(ck.RespToInit.IntegKey, want.RespToInit.IntegKey) {
		t.Errorf("DeriveChildKeys = %x, want %x", ck, want)
	}
	if _, err := DeriveChildKeys(Suite{Encr: EncrAESGCM16, EncrKeyBits: 256}, skd, nil, ni, nr); !errors.Is(err, ErrUnsupported) {
		t.Errorf("DeriveChildKeys without PRF error = %v, want ErrUnsupported", err)
	}
}

func TestSuiteCheck(t *testing.T) {
	good := Suite{Encr: EncrAESGCM16, EncrKeyBits: 256, PRF: PRFHMACSHA384, DH: DHECP384}
	if err := good.CheckIKE(); err != nil {
		t.Errorf("CheckIKE(%s) = %v", good, err)
	}
	for _, c := range []struct {
		s    Suite
		want error
	}{
		{Suite{Encr: EncrAESGCM16, EncrKeyBits: 256, PRF: PRFHMACSHA384}, ErrInvalidSuite},
		{Suite{Encr: EncrAESGCM16, EncrKeyBits: 256, PRF: PRFHMACSHA384, DH: 2}, ErrUnsupported},
		{Suite{Encr: EncrAESGCM16, EncrKeyBits: 256, PRF: 2, DH: DHECP384}, ErrUnsupported},
	} {
		if err := c.s.CheckIKE(); !errors.Is(err, c.want) {
			t.Errorf("CheckIKE(%s) = %v, want %v", c.s, err, c.want)
		}
	}
}

func FuzzOpenSK(f *testing.F) {
	keys := make([]*SK, len(skSuites))
	for i, s := range skSuites {
		k, err := NewSK(s, bytes.Repeat([]byte{byte(i + 1)}, s.EncrKeyLen()), bytes.Repeat([]byte{0x5a}, s.IntegKeyLen()))
		if err != nil {
			f.Fatal(err)
		}
		keys[i] = k
		assoc := skMessage(k, 5)
		body, _ := k.Seal(nil, assoc, []byte("hello"))
		f.Add(uint8(i), assoc, body)
	}
	f.Add(uint8(0), []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, which uint8, assoc, body []byte) {
		sk := keys[int(which)%len(keys)]
		pt, err := sk.Open(assoc, body)
		if (err != nil) != (pt == nil) {
			t.Fatalf("Open = %x, %v: error must come with a nil result", pt, err)
		}
		if err != nil {
			if !errors.Is(err, ErrAuthentication) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("Open error %v wraps neither ErrAuthentication nor ErrMalformed", err)
			}
			return
		}
		if len(pt) > len(body) {
			t.Fatalf("plaintext of %d octets from a body of %d", len(pt), len(body))
		}
	})
}

// RFC 7383 §2.5: an Encrypted Fragment payload is protected like SK, with
// the IKE header and the whole SKF header (Fragment Number, Total Fragments)
// as associated data / ICV coverage.
func TestSKFragment(t *testing.T) {
	for _, s := range skSuites {
		sk := newTestSK(t, s)
		pt := randBytes(300)
		body := sk.SealedLen(len(pt))
		assoc := make([]byte, 28+8)
		copy(assoc, skMessage(sk, len(pt))[:28])
		assoc[16] = 53 // SKF
		binary.BigEndian.PutUint32(assoc[24:], uint32(len(assoc)+body))
		assoc[28] = 36
		binary.BigEndian.PutUint16(assoc[30:], uint16(8+body))
		binary.BigEndian.PutUint16(assoc[32:], 2) // Fragment Number
		binary.BigEndian.PutUint16(assoc[34:], 3) // Total Fragments
		sealed, err := sk.Seal(nil, assoc, pt)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := sk.Open(assoc, sealed); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%s: Open(fragment) = %v", s, err)
		}
		a2 := append([]byte{}, assoc...)
		a2[33] = 1 // another Fragment Number
		if _, err := sk.Open(a2, sealed); !errors.Is(err, ErrAuthentication) {
			t.Errorf("%s: Open with a changed Fragment Number = %v, want ErrAuthentication", s, err)
		}
	}
}
