package radsec

import (
	"bytes"
	"testing"

	"layeh.com/radius"

	"github.com/tunterm/tunterm/control/radsec/radsectest"
)

var fuzzAPSecret = []byte("radsec")

func fuzzSeeds(f *testing.F) {
	f.Add(unhex(f, rfc2865Request))
	f.Add(unhex(f, rfc5997StatusServer))
	for _, p := range []*radius.Packet{
		radsectest.AccessRequest("radsec", "bob", radsectest.Password),
		radsectest.AccessRequest("radsec", "bob", "a-long-password-of-three-blocks-xxxxxxxxx"),
		withProxyState(radsectest.AccessRequest("radsec", "bob", "x"), "ap"),
		chapRequest("bob", "x"),
		radius.New(radius.CodeStatusServer, fuzzAPSecret),
	} {
		b, _ := radsectest.Encode(p, true)
		f.Add(b)
	}
	b, _ := radsectest.Encode(radsectest.AccountingRequest("radsec", "bob"), false)
	f.Add(b)
	f.Add([]byte{})
	f.Add(make([]byte, 20))
}

// FuzzHandlePacket feeds arbitrary bytes to the AP side, as one framed
// RADIUS packet, and, when they pass, through a whole exchange: the
// request we would send a server, a server's answer built by
// layeh.com/radius, and the answer we would send the AP. Invariants: no
// panic; a drop reason iff no request; everything we emit is at most 4096
// bytes, parses, and verifies with an independent implementation.
func FuzzHandlePacket(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= 4 {
			// The connection's reader frames by Length; give the
			// checker what it would get.
			if l := packetLen(b); l >= HeaderLen && l <= len(b) {
				b = b[:l]
			}
		}
		inputs := [][]byte{b}
		// And the same bytes made authentic (Length fixed, authenticators
		// and Message-Authenticator computed by radsectest), to get past
		// the checks into the re-encoding.
		if len(b) >= HeaderLen {
			if attrs, err := radius.ParseAttributes(b[HeaderLen:min(len(b), MaxPacketLen)]); err == nil {
				p := &radius.Packet{Code: radius.Code(b[0]), Identifier: b[1], Secret: fuzzAPSecret, Attributes: attrs}
				copy(p.Authenticator[:], b[4:HeaderLen])
				if signed, err := radsectest.Encode(p, b[0] != codeAccountingRequest || len(b)%2 == 0); err == nil {
					inputs = append(inputs, signed)
				}
			}
		}
		for i, requireMA := range []bool{true, false, true, false} {
			if i >= 2 && len(inputs) == 1 {
				break
			}
			b := inputs[i/2]
			r, why := checkAPRequest(b, fuzzAPSecret, requireMA)
			if (r == nil) != (why != dropNone) {
				t.Fatalf("checkAPRequest(%x) = %v, %v: want exactly one", b, r, why)
			}
			if r == nil {
				continue
			}
			if r.code == codeStatusServer {
				ans := encodeStatusAnswer(r, fuzzAPSecret)
				if _, err := radsectest.CheckResponse(ans, b, fuzzAPSecret); err != nil {
					t.Fatalf("Status-Server answer %x to %x: %v", ans, b, err)
				}
				continue
			}
			srvSecret := []byte("server-secret")
			ps := []byte{1, 2, 3, 4, 5, 6, 7, 8}
			wire, auth, err := encodeRequest(r, fuzzAPSecret, 42, srvSecret, ps)
			if err != nil {
				if err != errTooBig {
					t.Fatalf("encodeRequest(%x) = %v", b, err)
				}
				continue
			}
			if len(wire) > MaxPacketLen || packetLen(wire) != len(wire) || !bytes.Equal(wire[4:20], auth[:]) {
				t.Fatalf("encodeRequest(%x) = %x: bad length or authenticator", b, wire)
			}
			q, err := radius.Parse(wire, srvSecret)
			if err != nil {
				t.Fatalf("layeh.com/radius cannot parse our request %x: %v", wire, err)
			}
			if r.code == codeAccountingRequest && !radius.IsAuthenticRequest(wire, srvSecret) {
				t.Fatalf("our Accounting-Request %x is not authentic", wire)
			}
			if r.code == codeAccessRequest {
				if present, ok := radsectest.CheckMA(wire, auth[:], srvSecret); !present || !ok {
					t.Fatalf("our Access-Request %x: Message-Authenticator present %v valid %v", wire, present, ok)
				}
			}
			// A server answers, echoing Proxy-State (RFC 2865 §5.33).
			code := radius.CodeAccessAccept
			if r.code == codeAccountingRequest {
				code = radius.CodeAccountingResponse
			}
			resp := q.Response(code)
			for _, a := range q.Attributes {
				if a.Type == attrProxyState {
					resp.Add(attrProxyState, a.Attribute)
				}
			}
			rb, err := radsectest.Encode(resp, code != radius.CodeAccountingResponse)
			if err != nil {
				continue // too big with the echoed attributes
			}
			sr, why := checkServerResponse(rb, wire, srvSecret, true, ps)
			if why != dropNone {
				t.Fatalf("checkServerResponse(%x) = %v", rb, why)
			}
			ans, err := encodeResponse(sr, r, fuzzAPSecret, srvSecret, &auth)
			if err != nil {
				continue
			}
			if _, err := radsectest.CheckResponse(ans, b, fuzzAPSecret); err != nil {
				t.Fatalf("answer %x to the AP's %x: %v", ans, b, err)
			}
		}
	})
}

// FuzzServerResponse feeds arbitrary bytes as a server's answer to a
// fixed request. Invariants: no panic; a drop reason iff no response; an
// accepted answer is encoded for the AP within 4096 bytes and verifies.
func FuzzServerResponse(f *testing.F) {
	apReq, _ := radsectest.Encode(withProxyState(radsectest.AccessRequest("radsec", "bob", "x"), "ap"), true)
	r, why := checkAPRequest(apReq, fuzzAPSecret, true)
	if why != dropNone {
		f.Fatal(why)
	}
	srvSecret := []byte("s")
	ps := []byte("tunterm!")
	wire, auth, err := encodeRequest(r, fuzzAPSecret, 1, srvSecret, ps)
	if err != nil {
		f.Fatal(err)
	}
	q, _ := radius.Parse(wire, srvSecret)
	for _, code := range []radius.Code{radius.CodeAccessAccept, radius.CodeAccessReject, radius.CodeAccessChallenge} {
		resp := q.Response(code)
		resp.Add(attrProxyState, radius.Attribute("ap"))
		resp.Add(attrProxyState, radius.Attribute(ps))
		resp.Add(attrVendorSpecific, append([]byte{0, 0, 1, 0x37, msMPPESendKey, 20, 0x80, 1}, make([]byte, 16)...))
		b, _ := radsectest.Encode(resp, true)
		f.Add(b)
	}
	f.Add(wire)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, requireMA := range []bool{true, false} {
			sr, why := checkServerResponse(b, wire, srvSecret, requireMA, ps)
			if (sr == nil) != (why != dropNone) {
				t.Fatalf("checkServerResponse(%x) = %v, %v: want exactly one", b, sr, why)
			}
			if sr == nil {
				continue
			}
			ans, err := encodeResponse(sr, r, fuzzAPSecret, srvSecret, &auth)
			if err != nil {
				if err != errTooBig {
					t.Fatal(err)
				}
				continue
			}
			if len(ans) > MaxPacketLen {
				t.Fatalf("answer of %d bytes", len(ans))
			}
			if _, err := radsectest.CheckResponse(ans, apReq, fuzzAPSecret); err != nil {
				t.Fatalf("answer %x: %v", ans, err)
			}
		}
	})
}
