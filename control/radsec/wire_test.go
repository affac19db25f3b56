package radsec

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/tunterm/tunterm/control/radsec/radsectest"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 2865 §7.1: Access-Request for nemo/arctangent, secret xyzzy5461, and
// its Access-Accept.
const (
	rfc2865Secret  = "xyzzy5461"
	rfc2865Request = `01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
		98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d
		93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8
		01 10 05 06 00 00 00 03`
	rfc2865Accept = `02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf
		9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00
		0e 06 c0 a8 01 03`
	// RFC 5997 §6.1: Status-Server with Message-Authenticator, secret
	// xyzzy5461.
	rfc5997StatusServer = `0c da 00 26 8a 54 f4 68 6f b3 94 c5 28 66 e3 02
		18 5d 06 23 50 12 5a 66 5e 2e 1e 84 11 f3 e2 43
		82 20 97 c8 4f a3`
)

func TestRFC2865Example(t *testing.T) {
	req, acc := unhex(t, rfc2865Request), unhex(t, rfc2865Accept)
	secret := []byte(rfc2865Secret)
	r, why := checkAPRequest(req, secret, false)
	if why != dropNone {
		t.Fatalf("checkAPRequest(RFC 2865 §7.1) = %v, want accepted", why)
	}
	var reqAuth [authLen]byte
	copy(reqAuth[:], req[4:20])
	if got := md5Authenticator(acc, &reqAuth, secret); !bytes.Equal(got[:], acc[4:20]) {
		t.Errorf("Response Authenticator of the RFC 2865 §7.1 Access-Accept = %x, want %x", got, acc[4:20])
	}
	if _, why := checkServerResponse(acc, req, secret, false, nil); why != dropNone {
		t.Errorf("checkServerResponse(RFC 2865 §7.1 Access-Accept) = %v, want accepted", why)
	}
	if _, why := checkServerResponse(acc, req, secret, true, nil); why != dropSrvMissingMA {
		t.Errorf("checkServerResponse(RFC 2865 §7.1 Access-Accept, require MA) = %v, want %v", why, dropSrvMissingMA)
	}
	// Moved to another hop, the password still reads "arctangent" to
	// layeh.com/radius.
	if _, why := checkAPRequest(req, secret, true); why != dropAPMissingMA {
		t.Errorf("checkAPRequest(no Message-Authenticator, required) = %v, want %v", why, dropAPMissingMA)
	}
	wire, auth, err := encodeRequest(r, secret, 7, []byte("s3cret"), []byte("ps"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := radius.Parse(wire, []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if got := rfc2865.UserPassword_GetString(p); got != "arctangent" || p.Authenticator != auth || p.Identifier != 7 {
		t.Errorf("re-encoded: password %q, authenticator %x (want %x), id %d", got, p.Authenticator, auth, p.Identifier)
	}
	if present, ok := radsectest.CheckMA(wire, wire[4:20], []byte("s3cret")); !present || !ok {
		t.Errorf("re-encoded: Message-Authenticator present %v valid %v", present, ok)
	}
}

func TestRFC5997Example(t *testing.T) {
	b := unhex(t, rfc5997StatusServer)
	var auth [authLen]byte
	copy(auth[:], b[4:20])
	off, n := findMA(b)
	if n != 1 || off != 22 {
		t.Fatalf("findMA = %d, %d, want 22, 1", off, n)
	}
	if !checkMA(b, off, &auth, []byte(rfc2865Secret)) {
		t.Error("checkMA(RFC 5997 §6.1) = false")
	}
	if checkMA(b, off, &auth, []byte("wrong")) {
		t.Error("checkMA(RFC 5997 §6.1, wrong secret) = true")
	}
	r, why := checkAPRequest(b, []byte(rfc2865Secret), true)
	if why != dropNone || r.code != codeStatusServer {
		t.Fatalf("checkAPRequest(RFC 5997 §6.1) = %v", why)
	}
	ans := encodeStatusAnswer(r, []byte(rfc2865Secret))
	if _, err := radsectest.CheckResponse(ans, b, []byte(rfc2865Secret)); err != nil || ans[0] != codeAccessAccept {
		t.Errorf("our answer %x: %v", ans, err)
	}
	// Our own probe encodes the same way.
	probe, pauth, err := encodeStatusServer(0xda, []byte(rfc2865Secret))
	if err != nil || len(probe) != 38 {
		t.Fatalf("encodeStatusServer = %x, %v", probe, err)
	}
	if present, ok := radsectest.CheckMA(probe, pauth[:], []byte(rfc2865Secret)); !present || !ok {
		t.Error("our Status-Server's Message-Authenticator does not verify")
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// recryptPassword against layeh.com/radius's User-Password code.
func TestRecryptPassword(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 64, 100, 127, 128} {
		pw := bytes.Repeat([]byte{'p'}, n)
		s1, s2 := []byte("ap-secret"), []byte("server-secret-that-is-longer")
		var a1, a2 [authLen]byte
		copy(a1[:], randBytes(16))
		copy(a2[:], randBytes(16))
		enc, err := radius.NewUserPassword(pw, s1, a1[:])
		if err != nil {
			t.Fatal(err)
		}
		v := bytes.Clone(enc)
		if !recryptPassword(v, s1, &a1, s2, &a2) {
			t.Fatalf("recryptPassword(%d bytes) = false", len(v))
		}
		got, err := radius.UserPassword(v, s2, a2[:])
		if err != nil || !bytes.Equal(got, pw) {
			t.Errorf("len %d: decrypted %q, %v, want %q", n, got, err, pw)
		}
		recryptPassword(v, s2, &a2, s1, &a1)
		if !bytes.Equal(v, enc) {
			t.Errorf("len %d: recrypt there and back = %x, want %x", n, v, enc)
		}
	}
	for _, n := range []int{0, 15, 17, 144} {
		var a [authLen]byte
		if recryptPassword(make([]byte, n), nil, &a, nil, &a) {
			t.Errorf("recryptPassword(%d bytes) = true, want false", n)
		}
	}
}

// recryptSalted against layeh.com/radius's Tunnel-Password code (the same
// construction as RFC 2548's MS-MPPE keys).
func TestRecryptSalted(t *testing.T) {
	for _, n := range []int{0, 1, 14, 15, 16, 32, 33, 200, 239} { // 239: the longest that fits an attribute
		pw := randBytes(n)
		salt := []byte{0x80 | byte(n), 0x11}
		s1, s2 := []byte("server"), []byte("radsec")
		var a1, a2 [authLen]byte
		copy(a1[:], randBytes(16))
		copy(a2[:], randBytes(16))
		enc, err := radius.NewTunnelPassword(pw, salt, s1, a1[:])
		if err != nil {
			t.Fatal(err)
		}
		v := bytes.Clone(enc)
		if !recryptSalted(v, s1, &a1, s2, &a2) {
			t.Fatalf("recryptSalted(%d bytes) = false", len(v))
		}
		got, gotSalt, err := radius.TunnelPassword(v, s2, a2[:])
		if err != nil || !bytes.Equal(got, pw) || !bytes.Equal(gotSalt, salt) {
			t.Errorf("len %d: decrypted %x salt %x, %v; want %x salt %x", n, got, gotSalt, err, pw, salt)
		}
	}
}

// Our Message-Authenticator against the independent one in radsectest.
func TestMessageAuthenticator(t *testing.T) {
	for range 50 {
		p := radius.New(radius.CodeAccessRequest, []byte("k"))
		p.Add(1, randBytes(int(randBytes(1)[0])%200))
		p.Add(attrMessageAuthenticator, make([]byte, 16))
		p.Add(79, randBytes(int(randBytes(1)[0])%250))
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		off, n := findMA(b)
		if n != 1 {
			t.Fatalf("findMA = %d, %d", off, n)
		}
		var auth [authLen]byte
		copy(auth[:], randBytes(16))
		signMA(b, off, &auth, []byte("secret"))
		if present, ok := radsectest.CheckMA(b, auth[:], []byte("secret")); !present || !ok {
			t.Fatalf("signMA(%x) does not verify independently", b)
		}
	}
}

func TestEncodeRequest(t *testing.T) {
	apSecret := []byte("radsec")
	t.Run("Accounting-Request authenticator (RFC 2866 §3)", func(t *testing.T) {
		b, _ := radsectest.Encode(radsectest.AccountingRequest("radsec", "bob"), false)
		r, why := checkAPRequest(b, apSecret, true)
		if why != dropNone {
			t.Fatal(why)
		}
		wire, _, err := encodeRequest(r, apSecret, 1, []byte("acct"), []byte("ps"))
		if err != nil || !radius.IsAuthenticRequest(wire, []byte("acct")) {
			t.Errorf("encodeRequest(Accounting-Request) = %x, %v: not authentic to layeh.com/radius", wire, err)
		}
		if _, n := findMA(wire); n != 0 {
			t.Errorf("Message-Authenticator added to an Accounting-Request that had none")
		}
	})
	t.Run("CHAP-Challenge added", func(t *testing.T) {
		req := chapRequest("bob", "pw")
		b, _ := radsectest.Encode(req, true)
		r, why := checkAPRequest(b, apSecret, true)
		if why != dropNone {
			t.Fatal(why)
		}
		wire, _, err := encodeRequest(r, apSecret, 1, []byte("s"), nil)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := radius.Parse(wire, []byte("s"))
		if got := rfc2865.CHAPChallenge_Get(p); !bytes.Equal(got, req.Authenticator[:]) {
			t.Errorf("CHAP-Challenge = %x, want the AP's authenticator %x", got, req.Authenticator)
		}
	})
	t.Run("too big with our attributes", func(t *testing.T) {
		p := radsectest.AccessRequest("radsec", "bob", "x")
		for len(p.Attributes) < 20 {
			p.Add(26, randBytes(200))
		}
		for range 18 {
			p.Add(26, randBytes(6))
		}
		b, err := radsectest.Encode(p, true)
		if err != nil {
			t.Fatal(err)
		}
		for len(b) < MaxPacketLen-5 {
			p.Add(26, randBytes(min(200, MaxPacketLen-5-len(b)-2)))
			b, _ = radsectest.Encode(p, true)
		}
		r, why := checkAPRequest(b, apSecret, true)
		if why != dropNone {
			t.Fatalf("checkAPRequest(%d bytes) = %v", len(b), why)
		}
		if _, _, err := encodeRequest(r, apSecret, 1, []byte("s"), make([]byte, 8)); err != errTooBig {
			t.Errorf("encodeRequest(%d bytes + Proxy-State) = %v, want errTooBig", len(b), err)
		}
	})
}

func TestRecryptVSA(t *testing.T) {
	var a1, a2 [authLen]byte
	other := []byte{0, 0, 0x37, 0x2b, 1, 6, 1, 2, 3, 4} // vendor 14123 (Aruba): untouched
	if _, ok := recryptVSA(other, []byte("a"), &a1, []byte("b"), &a2); ok {
		t.Error("recryptVSA changed a non-Microsoft attribute")
	}
	broken := []byte{0, 0, 1, 0x37, 16, 60, 1, 2}
	if _, ok := recryptVSA(broken, []byte("a"), &a1, []byte("b"), &a2); ok {
		t.Error("recryptVSA changed a malformed attribute")
	}
}
