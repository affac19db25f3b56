package ikecrypto

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vectorDir holds the shared vectors (repository testdata/ike); every file
// names its source in its header.
var vectorDir = filepath.Join("..", "..", "..", "testdata", "ike")

// record is one "case NAME" block of a vector file: "key hexvalue" lines.
type record struct {
	name string
	f    map[string][]byte
}

func readRecords(t testing.TB, file string) []record {
	t.Helper()
	f, err := os.Open(filepath.Join(vectorDir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		if k == "case" {
			recs = append(recs, record{name: v, f: map[string][]byte{}})
			continue
		}
		if len(recs) == 0 {
			t.Fatalf("%s: %q before the first case", file, line)
		}
		b, err := hex.DecodeString(v)
		if err != nil {
			t.Fatalf("%s: %s: %v", file, k, err)
		}
		recs[len(recs)-1].f[k] = b
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		t.Fatalf("%s: no cases", file)
	}
	return recs
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// RFC 4231 §4: the three IKE PRFs are HMAC-SHA-256/384/512 (RFC 4868 §2.1.2).
func TestPRFRFC4231(t *testing.T) {
	for _, r := range readRecords(t, "rfc4231-hmac-sha2.txt") {
		for _, p := range []struct {
			id    PRFID
			field string
		}{{PRFHMACSHA256, "prf5"}, {PRFHMACSHA384, "prf6"}, {PRFHMACSHA512, "prf7"}} {
			t.Run("case"+r.name+"/"+p.id.String(), func(t *testing.T) {
				got, err := PRF(p.id, r.f["key"], r.f["data"])
				if err != nil {
					t.Fatal(err)
				}
				if want := r.f[p.field]; !bytes.Equal(got, want) {
					t.Errorf("PRF(%x, %x) = %x, want %x", r.f["key"], r.f["data"], got, want)
				}
				// The data may arrive in pieces (prf(Ni | Nr, ...)).
				d := r.f["data"]
				got2, _ := PRF(p.id, r.f["key"], d[:len(d)/2], d[len(d)/2:])
				if !bytes.Equal(got2, got) {
					t.Errorf("PRF over two pieces = %x, want %x", got2, got)
				}
			})
		}
	}
}

// prfPlusReference is RFC 7296 §2.13 written out literally: build T1, T2, ...
// as separate HMACs over freshly concatenated inputs and join them.
func prfPlusReference(id PRFID, k, s []byte, n int) []byte {
	var out, prev []byte
	for i := 1; len(out) < n; i++ {
		in := append(append(append([]byte{}, prev...), s...), byte(i))
		m := hmac.New(prfs[id].hash, k)
		m.Write(in)
		prev = m.Sum(nil)
		out = append(out, prev...)
	}
	return out[:n]
}

func TestPRFPlus(t *testing.T) {
	key := mustHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	seed := []byte("Ni | Nr | SPIi | SPIr")
	for _, id := range []PRFID{PRFHMACSHA256, PRFHMACSHA384, PRFHMACSHA512} {
		for _, n := range []int{0, 1, id.Size() - 1, id.Size(), id.Size() + 1, 3*id.Size() + 7, 255 * id.Size()} {
			got, err := PRFPlus(id, key, seed, n)
			if err != nil {
				t.Fatalf("PRFPlus(%s, %d): %v", id, n, err)
			}
			if want := prfPlusReference(id, key, seed, n); !bytes.Equal(got, want) {
				t.Errorf("PRFPlus(%s, %d) = %x, want %x", id, n, got, want)
			}
		}
		// T1 = prf(K, S | 0x01): the first block is one PRF call.
		t1, _ := PRF(id, key, seed, []byte{1})
		got, _ := PRFPlus(id, key, seed, id.Size())
		if !bytes.Equal(got, t1) {
			t.Errorf("%s: T1 = %x, want prf(K, S|0x01) = %x", id, got, t1)
		}
		if _, err := PRFPlus(id, key, seed, 255*id.Size()+1); !errors.Is(err, ErrPRFPlusLength) {
			t.Errorf("PRFPlus(%s, 255*%d+1) error = %v, want ErrPRFPlusLength", id, id.Size(), err)
		}
	}
	if _, err := PRFPlus(PRFID(2), key, seed, 1); !errors.Is(err, ErrUnsupported) {
		t.Errorf("PRFPlus(prf 2) error = %v, want ErrUnsupported", err)
	}
}

// RFC 5903 §8: private keys i and r, their KE payloads, and g^ir whose x
// coordinate is the shared secret (§7).
func TestDHRFC5903(t *testing.T) {
	groups := map[string]DHGroup{"group19": DHECP256, "group20": DHECP384, "group21": DHECP521}
	for _, r := range readRecords(t, "rfc5903-ecp.txt") {
		g := groups[r.name]
		t.Run(r.name, func(t *testing.T) {
			for _, side := range []struct{ priv, x, y, ke, px, py string }{
				{"i", "gix", "giy", "kei", "grx", "gry"},
				{"r", "grx", "gry", "ker", "gix", "giy"},
			} {
				k, err := g.curve().NewPrivateKey(r.f[side.priv])
				if err != nil {
					t.Fatal(err)
				}
				d := newECPrivate(g, k)
				pub := append(append([]byte{}, r.f[side.x]...), r.f[side.y]...)
				if !bytes.Equal(d.Public(), pub) {
					t.Errorf("Public(%s) = %x, want %x", side.priv, d.Public(), pub)
				}
				// The RFC's KE payload: 4-octet generic header, DH Group
				// Num, RESERVED, then the public value.
				ke := r.f[side.ke]
				if int(ke[4])<<8|int(ke[5]) != int(g) || !bytes.Equal(ke[8:], d.Public()) {
					t.Errorf("KE payload %x does not carry group %d and %x", ke, g, d.Public())
				}
				if len(d.Public()) != g.PublicLen() {
					t.Errorf("len(Public) = %d, want PublicLen %d", len(d.Public()), g.PublicLen())
				}
				peer := append(append([]byte{}, r.f[side.px]...), r.f[side.py]...)
				s, err := d.Shared(peer)
				if err != nil {
					t.Fatalf("Shared(%x) = %v", peer, err)
				}
				if !bytes.Equal(s, r.f["girx"]) || len(s) != g.SharedLen() {
					t.Errorf("Shared(%x) = %x, want %x", peer, s, r.f["girx"])
				}
			}
		})
	}
}

// RFC 7748 §6.1 through the group 31 encoding of RFC 8031 §3.1.
func TestDHRFC7748(t *testing.T) {
	for _, r := range readRecords(t, "rfc7748-x25519.txt") {
		for _, side := range []struct{ priv, pub, peer string }{{"a", "a_pub", "b_pub"}, {"b", "b_pub", "a_pub"}} {
			k, err := ecdh.X25519().NewPrivateKey(r.f[side.priv])
			if err != nil {
				t.Fatal(err)
			}
			d := newECPrivate(DHCurve25519, k)
			if !bytes.Equal(d.Public(), r.f[side.pub]) {
				t.Errorf("Public(%s) = %x, want %x", side.priv, d.Public(), r.f[side.pub])
			}
			s, err := d.Shared(r.f[side.peer])
			if err != nil || !bytes.Equal(s, r.f["k"]) {
				t.Errorf("Shared(%x) = %x, %v, want %x", r.f[side.peer], s, err, r.f["k"])
			}
		}
	}
}

// piDigits computes floor(pi * 2^bits) with Machin's formula
// pi = 16 atan(1/5) - 4 atan(1/239), in fixed point with guard bits.
func piFixed(bits uint) *big.Int {
	const guard = 64
	one := new(big.Int).Lsh(big.NewInt(1), bits+guard)
	atanInv := func(x int64) *big.Int {
		// atan(1/x) = sum (-1)^k / ((2k+1) x^(2k+1))
		sum := new(big.Int)
		term := new(big.Int).Div(one, big.NewInt(x))
		x2 := big.NewInt(x * x)
		for k := int64(0); term.Sign() != 0; k++ {
			t := new(big.Int).Div(term, big.NewInt(2*k+1))
			if k%2 == 0 {
				sum.Add(sum, t)
			} else {
				sum.Sub(sum, t)
			}
			term.Div(term, x2)
		}
		return sum
	}
	pi := new(big.Int).Mul(atanInv(5), big.NewInt(16))
	pi.Sub(pi, new(big.Int).Mul(atanInv(239), big.NewInt(4)))
	return pi.Rsh(pi, guard)
}

// RFC 3526 §3: the group 14 prime as printed, its defining formula, the
// generator, and an exchange between two keys.
func TestMODP2048(t *testing.T) {
	r := readRecords(t, "rfc3526-modp2048.txt")[0]
	if got := modpP.FillBytes(make([]byte, 256)); !bytes.Equal(got, r.f["p"]) {
		t.Errorf("p = %x, want (RFC 3526) %x", got, r.f["p"])
	}
	if !bytes.Equal(modpG.Bytes(), r.f["g"]) {
		t.Errorf("g = %x, want %x", modpG.Bytes(), r.f["g"])
	}
	// p = 2^2048 - 2^1984 - 1 + 2^64 * { [2^1918 pi] + 124476 }
	p := new(big.Int).Lsh(big.NewInt(1), 2048)
	p.Sub(p, new(big.Int).Lsh(big.NewInt(1), 1984))
	p.Sub(p, big.NewInt(1))
	p.Add(p, new(big.Int).Lsh(new(big.Int).Add(piFixed(1918), big.NewInt(124476)), 64))
	if p.Cmp(modpP) != 0 {
		t.Errorf("p from the RFC 3526 formula = %x, want %x", p, modpP)
	}

	a, err := GenerateKey(DHMODP2048, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateKey(DHMODP2048, nil)
	if len(a.Public()) != 256 || a.Group() != DHMODP2048 {
		t.Fatalf("public value of %d octets, want 256", len(a.Public()))
	}
	sa, err1 := a.Shared(b.Public())
	sb, err2 := b.Shared(a.Public())
	if err1 != nil || err2 != nil || !bytes.Equal(sa, sb) || len(sa) != 256 {
		t.Fatalf("Shared = %x (%v), %x (%v), want equal 256-octet values", sa, err1, sb, err2)
	}
	// Independent check: (g^b)^a mod p with math/big directly.
	want := new(big.Int).Exp(new(big.Int).SetBytes(b.Public()), a.x, r2i(r.f["p"]))
	if !bytes.Equal(sa, want.FillBytes(make([]byte, 256))) {
		t.Errorf("Shared = %x, want %x", sa, want)
	}

	pm1 := new(big.Int).Sub(modpP, big.NewInt(1))
	for _, bad := range []struct {
		name string
		v    []byte
	}{
		{"zero", make([]byte, 256)},
		{"one", big.NewInt(1).FillBytes(make([]byte, 256))},
		{"p-1", pm1.FillBytes(make([]byte, 256))},
		{"p", modpP.FillBytes(make([]byte, 256))},
		{"all ones", bytes.Repeat([]byte{0xff}, 256)},
		{"short", b.Public()[1:]},
		{"long", append([]byte{0}, b.Public()...)},
	} {
		if s, err := a.Shared(bad.v); !errors.Is(err, ErrInvalidPublic) || s != nil {
			t.Errorf("Shared(%s) = %x, %v, want ErrInvalidPublic", bad.name, s, err)
		}
	}
}

func r2i(b []byte) *big.Int { return new(big.Int).SetBytes(b) }

func TestDHRoundTripAndInvalid(t *testing.T) {
	for _, g := range []DHGroup{DHECP256, DHECP384, DHECP521, DHCurve25519} {
		t.Run(g.curve().(interface{ String() string }).String(), func(t *testing.T) {
			a, err := GenerateKey(g, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := GenerateKey(g, nil)
			sa, err1 := a.Shared(b.Public())
			sb, err2 := b.Shared(a.Public())
			if err1 != nil || err2 != nil || !bytes.Equal(sa, sb) || len(sa) != g.SharedLen() {
				t.Fatalf("Shared = %x (%v), %x (%v)", sa, err1, sb, err2)
			}
			// A peer built directly on crypto/ecdh agrees.
			pk, _ := g.curve().GenerateKey(nil)
			wire := pk.PublicKey().Bytes()
			if g != DHCurve25519 {
				wire = wire[1:]
			}
			s1, err := a.Shared(wire)
			pubA := a.Public()
			if g != DHCurve25519 {
				pubA = append([]byte{4}, pubA...)
			}
			pa, _ := g.curve().NewPublicKey(pubA)
			s2, _ := pk.ECDH(pa)
			if err != nil || !bytes.Equal(s1, s2) {
				t.Errorf("Shared with a crypto/ecdh peer = %x, %v, want %x", s1, err, s2)
			}
			bad := [][]byte{nil, b.Public()[1:], append([]byte{4}, b.Public()...)}
			if g != DHCurve25519 {
				off := append([]byte{}, b.Public()...)
				off[len(off)-1] ^= 1 // not on the curve
				bad = append(bad, off, make([]byte, g.PublicLen()))
			} else {
				bad = append(bad, make([]byte, 32)) // low order: all-zero output
			}
			for _, v := range bad {
				if s, err := a.Shared(v); !errors.Is(err, ErrInvalidPublic) || s != nil {
					t.Errorf("Shared(%x) = %x, %v, want ErrInvalidPublic", v, s, err)
				}
			}
		})
	}
	if _, err := GenerateKey(DHGroup(5), nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("GenerateKey(5) error = %v, want ErrUnsupported", err)
	}
}
