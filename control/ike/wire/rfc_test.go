package wire_test

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/tunterm/tunterm/control/ike/wire"
)

// Messages written octet by octet from the RFC 7296 §3 diagrams (and RFC
// 7383 §2.5, RFC 7427 §3), not produced by our encoder.

// IKE_SA_INIT request as the seed's APs send it: proposal
// aes256ctr-sha512-prfsha512-curve25519, KE, Ni, NAT-D, FRAG_SUP.
func saInitRequest(t testing.TB) []byte {
	return unhex(t, `
	0102030405060708 0000000000000000   # SPIi, SPIr (§3.1)
	21 20 22 08                         # Next Payload SA(33), MjVer 2 MnVer 0, IKE_SA_INIT(34), Flags I
	00000000 000000d8                   # Message ID 0, Length 216
	22 00 0030                          # SA: next KE(34), C=0, length 48 (§3.3)
	  00 00 002c 01 01 00 04            #   proposal: last, length 44, #1, IKE, SPI size 0, 4 transforms (§3.3.1)
	  03 00 000c 01 00 000d 800e0100    #   more, len 12, ENCR, AES_CTR(13), attr TV Key Length(14)=256 (§3.3.2, §3.3.5)
	  03 00 0008 03 00 000e             #   more, len 8, INTEG, HMAC_SHA2_512_256(14)
	  03 00 0008 02 00 0007             #   more, len 8, PRF, HMAC_SHA2_512(7)
	  00 00 0008 04 00 001f             #   last, len 8, DH, Curve25519(31)
	28 00 0028 001f 0000 `+rep(0xab, 32)+` # KE: next Nonce(40), length 40, group 31, reserved, data (§3.4)
	29 00 0024 `+rep(0xcd, 32)+`    # Nonce: next Notify(41), length 36 (§3.9)
	29 00 001c 00 00 4004 `+rep(0x11, 20)+` # N: proto 0, SPI size 0, NAT_DETECTION_SOURCE_IP(16388) (§3.10)
	29 00 001c 00 00 4005 `+rep(0x22, 20)+` # N: NAT_DETECTION_DESTINATION_IP(16389)
	00 00 0008 00 00 402e               # N: IKEV2_FRAGMENTATION_SUPPORTED(16430), last payload (RFC 7383 §2.3)
	`)
}

func TestParseRFCSAInit(t *testing.T) {
	b := saInitRequest(t)
	m := roundTrip(t, b)
	h := m.Header
	if h.SPIi != 0x0102030405060708 || h.SPIr != 0 || h.Exchange != wire.IKE_SA_INIT || h.MessageID != 0 ||
		h.Length != uint32(len(b)) || !h.IsInitiator() || h.IsResponse() || h.Version != wire.Version2 {
		t.Fatalf("header = %+v", h)
	}
	if got, want := m.String(), "IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) N(FRAG_SUP) ]"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	sa, ok := wire.First[*wire.SA](m.Payloads)
	if !ok || len(sa.Proposals) != 1 {
		t.Fatalf("SA = %+v", sa)
	}
	p := sa.Proposals[0]
	if p.Number != 1 || p.Protocol != wire.ProtoIKE || len(p.SPI) != 0 {
		t.Errorf("proposal = %+v", p)
	}
	if got, want := p.String(), "IKE:AES_CTR_256/HMAC_SHA2_512_256/PRF_HMAC_SHA2_512/CURVE_25519"; got != want {
		t.Errorf("proposal = %q, want %q", got, want)
	}
	for _, tr := range []wire.Transform{wire.Encr(wire.ENCR_AES_CTR, 256), wire.Integ(wire.AUTH_HMAC_SHA2_512_256),
		wire.PRF(wire.PRF_HMAC_SHA2_512), wire.DH(wire.CURVE_25519)} {
		if !p.Has(tr) {
			t.Errorf("proposal lacks %v", tr.String())
		}
	}
	if p.Has(wire.Encr(wire.ENCR_AES_CTR, 128)) {
		t.Errorf("proposal has AES_CTR_128")
	}
	ke, _ := wire.First[*wire.KE](m.Payloads)
	if ke.Group != wire.CURVE_25519 || !bytes.Equal(ke.Data, bytes.Repeat([]byte{0xab}, 32)) {
		t.Errorf("KE = %+v", ke)
	}
	if n, _ := wire.First[*wire.Nonce](m.Payloads); len(n.Data) != 32 || n.Data[0] != 0xcd {
		t.Errorf("Nonce = %x", n.Data)
	}
	src, dst := wire.NATD(m.Payloads)
	if len(src) != 1 || src[0][0] != 0x11 || dst == nil || dst[0] != 0x22 {
		t.Errorf("NATD = %x, %x", src, dst)
	}
	if m.Notify(wire.IKEV2_FRAGMENTATION_SUPPORTED) == nil || m.Notify(wire.COOKIE) != nil {
		t.Errorf("Notify lookups wrong")
	}
	if !bytes.Equal(m.Raw(), b) {
		t.Errorf("Raw() is not the parsed message")
	}
}

// Built from the same fields with the encoder, the request is the same octets.
func TestBuildSAInit(t *testing.T) {
	s, d := wire.NewNotify(wire.NAT_DETECTION_SOURCE_IP, bytes.Repeat([]byte{0x11}, 20)), wire.NewNotify(wire.NAT_DETECTION_DESTINATION_IP, bytes.Repeat([]byte{0x22}, 20))
	m := &wire.Message{
		Header: wire.Header{SPIi: 0x0102030405060708, Exchange: wire.IKE_SA_INIT, Flags: wire.FlagInitiator},
		Payloads: []wire.Payload{
			&wire.SA{Proposals: []wire.Proposal{{Number: 1, Protocol: wire.ProtoIKE, Transforms: []wire.Transform{
				wire.Encr(wire.ENCR_AES_CTR, 256), wire.Integ(wire.AUTH_HMAC_SHA2_512_256), wire.PRF(wire.PRF_HMAC_SHA2_512), wire.DH(wire.CURVE_25519)}}}},
			&wire.KE{Group: wire.CURVE_25519, Data: bytes.Repeat([]byte{0xab}, 32)},
			&wire.Nonce{Data: bytes.Repeat([]byte{0xcd}, 32)},
			s, d, wire.NewNotify(wire.IKEV2_FRAGMENTATION_SUPPORTED, nil),
		},
	}
	if got, want := m.Marshal(), saInitRequest(t); !bytes.Equal(got, want) {
		t.Fatalf("Marshal() =\n%x\nwant\n%x", got, want)
	}
	// Append leaves dst's prefix alone.
	if got := m.Append([]byte{0, 0, 0, 0}); !bytes.Equal(got[4:], saInitRequest(t)) || !bytes.Equal(got[:4], []byte{0, 0, 0, 0}) {
		t.Fatalf("Append(marker) = %x", got)
	}
}

// IKE_AUTH request: IDi, AUTH and the rest are inside SK; on the wire the
// message is the header and SK only (RFC 7296 §1.2, §3.14).
func TestParseRFCEncrypted(t *testing.T) {
	b := unhex(t, `
	0102030405060708 1112131415161718 # SPIs
	2e 20 23 08 00000001 0000003c     # Next SK(46), 2.0, IKE_AUTH(35), I, Message ID 1, Length 60
	23 00 0020                        # SK: next IDi(35) = first inner payload, length 32
	`+rep(0x01, 16)+`             # IV (AES block)
	`+rep(0x02, 8)+`              # ciphertext
	`+rep(0x03, 4)+`              # ICV (a short made-up ICV)
	`)
	m := roundTrip(t, b)
	sk, ok := m.Payloads[0].(*wire.Encrypted)
	if !ok || len(m.Payloads) != 1 || sk.Next != wire.PayloadIDi || len(sk.Data) != 28 {
		t.Fatalf("payloads = %+v", m.Payloads)
	}
	iv, ct, icv, ok := sk.Split(16, 4)
	if !ok || !bytes.Equal(iv, bytes.Repeat([]byte{1}, 16)) || !bytes.Equal(ct, bytes.Repeat([]byte{2}, 8)) || !bytes.Equal(icv, bytes.Repeat([]byte{3}, 4)) {
		t.Errorf("Split = %x %x %x %v", iv, ct, icv, ok)
	}
	if _, _, _, ok := sk.Split(16, 13); ok {
		t.Errorf("Split past the data succeeded")
	}
	head, data, err := wire.SplitEncrypted(b)
	if err != nil || !bytes.Equal(head, b[:32]) || !bytes.Equal(data, b[32:]) {
		t.Errorf("SplitEncrypted = %x, %x, %v", head, data, err)
	}
	if got, want := m.String(), "IKE_AUTH request 1 [ E ]"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	// The decrypted content: IDi (KEY_ID, as the seed's APs send "@#<MAC>"),
	// AUTH (PSK), SA (ESP), TSi, TSr, then padding and Pad Length.
	plain := unhex(t, `
	27 00 0010 0b 000000 001122334455 0000 # IDi: next AUTH(39), length 16, ID_KEY_ID, reserved, data (§3.5)
	21 00 0018 02 000000 `+rep(0x5a, 16)+` # AUTH: next SA, length 24, Shared Key MIC(2) (§3.8)
	2c 00 002c                            # SA: next TSi(44), length 44
	  00 00 0028 01 03 04 03 c0ffee01     #   proposal #1, length 40, ESP(3) SPI size 4, 3 transforms, SPI
	  03 00 000c 01 00 000d 800e0100      #   ENCR AES_CTR 256
	  03 00 0008 03 00 000e               #   INTEG HMAC_SHA2_512_256
	  00 00 0008 05 00 0001               #   ESN: ESNs(1)
	2d 00 0018 01 000000                  # TSi: next TSr(45), length 24, 1 TS (§3.13)
	  07 11 0010 06a5 06a5 c6120002 c6120002 # TS_IPV4_ADDR_RANGE, UDP(17), len 16, port 1701-1701, 198.18.0.2-198.18.0.2 (§3.13.1)
	00 00 0030 01 000000                  # TSr: last, length 48, 1 TS
	  08 73 0028 0000 ffff 20010db8000000000000000000000001 20010db8000000000000000000000001 # TS_IPV6_ADDR_RANGE, proto 115 (L2TP), len 40, any port
	0000 02                               # padding 2, Pad Length 2
	`)
	inner, err := wire.StripPadding(plain)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := wire.ParsePayloads(sk.Next, inner)
	if err != nil {
		t.Fatalf("ParsePayloads = %v", err)
	}
	if got, want := m.Format(ps), "IKE_AUTH request 1 [ IDi AUTH SA TSi TSr ]"; got != want {
		t.Errorf("Format(inner) = %q, want %q", got, want)
	}
	id := ps[0].(*wire.ID)
	if id.IDType != wire.ID_KEY_ID || id.String() != "@#0011223344550000" || !bytes.Equal(id.Body(), inner[4:16]) {
		t.Errorf("IDi = %v, body %x", id, id.Body())
	}
	if a := ps[1].(*wire.AUTH); a.Method != wire.AuthSharedKeyMIC || len(a.Data) != 16 {
		t.Errorf("AUTH = %+v", a)
	}
	sa := ps[2].(*wire.SA)
	if got, want := sa.Proposals[0].String(), "ESP:AES_CTR_256/HMAC_SHA2_512_256/EXT_SEQ"; got != want || !bytes.Equal(sa.Proposals[0].SPI, []byte{0xc0, 0xff, 0xee, 1}) {
		t.Errorf("ESP proposal = %q SPI %x, want %q", got, sa.Proposals[0].SPI, want)
	}
	tsi, tsr := ps[3].(*wire.TS), ps[4].(*wire.TS)
	want := wire.NewTS(17, netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.2"), 1701, 1701)
	if tsi.Responder || len(tsi.Selectors) != 1 || !reflect.DeepEqual(tsi.Selectors[0], want) {
		t.Errorf("TSi = %+v (%v), want %v", tsi, tsi.Selectors, want)
	}
	if got := tsi.Selectors[0].String(); got != "198.18.0.2/32[17/1701]" {
		t.Errorf("TSi string = %q", got)
	}
	if s := tsr.Selectors[0]; !tsr.Responder || s.TSType != wire.TS_IPV6_ADDR_RANGE || s.Protocol != 115 || s.String() != "2001:db8::1/128[115]" {
		t.Errorf("TSr = %+v %v", tsr, s)
	}
	out, first := wire.AppendPayloads(nil, ps)
	if first != wire.PayloadIDi || !bytes.Equal(out, inner) {
		t.Errorf("AppendPayloads = %v %x, want %x", first, out, inner)
	}
}

// SKF (RFC 7383 §2.5): Fragment Number and Total Fragments precede the IV;
// the associated data runs through them (§2.5.3).
func TestParseRFCFragment(t *testing.T) {
	b := unhex(t, `
	0102030405060708 1112131415161718
	35 20 23 08 00000001 00000034  # Next SKF(53), IKE_AUTH, Length 52
	25 00 0018 0002 0003           # SKF: next CERT(37) (first fragment would carry it; this is #2 as a test), length 24, fragment 2 of 3
	`+rep(0x07, 16)+`
	`)
	m := roundTrip(t, b)
	f := m.Payloads[0].(*wire.EncryptedFragment)
	if f.Number != 2 || f.Total != 3 || f.Next != wire.PayloadCERT || len(f.Data) != 16 {
		t.Fatalf("SKF = %+v", f)
	}
	head, data, err := wire.SplitEncrypted(b)
	if err != nil || len(head) != 36 || len(data) != 16 {
		t.Errorf("SplitEncrypted = %d, %d, %v", len(head), len(data), err)
	}
	if got := m.String(); got != "IKE_AUTH request 1 [ EF(2/3) ]" {
		t.Errorf("String() = %q", got)
	}
}

// INFORMATIONAL response deleting two ESP SAs and the other payloads the
// responder writes (RFC 7296 §3.11, §3.6, §3.7, §3.12, §3.15, §3.16).
func TestParseRFCMisc(t *testing.T) {
	b := unhex(t, `
	0102030405060708 1112131415161718
	2a 20 25 20 00000007 0000009f     # Next D(42), INFORMATIONAL(37), R, Message ID 7, Length 159
	29 00 0010 03 04 0002 c0ffee01 c0ffee02 # Delete: ESP, SPI size 4, 2 SPIs (§3.11)
	29 00 000c 03 04 4009 c0ffee03    # N: ESP, SPI size 4, REKEY_SA(16393) with SPI
	2a 00 000a 00 00 0011 0013        # N: INVALID_KE_PAYLOAD(17), data group 19 (§3.10.1)
	25 00 0008 01 04 0000             # Delete: IKE(1), SPI size 0, 0 SPIs
	26 00 000a 04 3082000100          # CERT: X.509 Signature(4), data
	2b 00 0019 04 `+rep(0x33, 20)+` # CERTREQ: X.509(4), one SHA-1 CA key hash (§3.7)
	2f 00 000e 7374726f6e675377616e  # Vendor ID "strongSwan", next CP(47)
	30 00 0014 01 000000 0001 0000 0003 0004 01020304 # CP: CFG_REQUEST, INTERNAL_IP4_ADDRESS(empty), INTERNAL_IP4_DNS(4 octets)
	ab 00 0009 01 02 0005 01         # EAP: next unknown 171, Request id 2 len 5 Identity
	00 00 0007 6869 21               # unknown type 171, non-critical: kept
	`)
	m := roundTrip(t, b)
	if got, want := m.String(), "INFORMATIONAL response 7 [ D N(REKEY_SA) N(INVAL_KE) D CERT CERTREQ V CPRQ(ADDR DNS) EAP/REQ/ID UNKN(171) ]"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	d := m.Payloads[0].(*wire.Delete)
	if d.Protocol != wire.ProtoESP || len(d.SPIs) != 2 || !bytes.Equal(d.SPIs[1], []byte{0xc0, 0xff, 0xee, 2}) {
		t.Errorf("Delete = %+v", d)
	}
	if !bytes.Equal(wire.NewDeleteESP(0xc0ffee01, 0xc0ffee02).AppendBody(nil), b[32:44]) {
		t.Errorf("NewDeleteESP encodes differently")
	}
	if spi, ok := m.Payloads[1].(*wire.Notify).ESPSPI(); !ok || spi != 0xc0ffee03 {
		t.Errorf("REKEY_SA SPI = %x %v", spi, ok)
	}
	if g, ok := m.Payloads[2].(*wire.Notify).Group(); !ok || g != wire.ECP_256 {
		t.Errorf("INVALID_KE group = %v %v", g, ok)
	}
	if !bytes.Equal(wire.NewInvalidKE(wire.ECP_256).AppendBody(nil), unhex(t, "00 00 0011 0013")) {
		t.Errorf("NewInvalidKE encodes differently")
	}
	if d := m.Payloads[3].(*wire.Delete); d.Protocol != wire.ProtoIKE || len(d.SPIs) != 0 {
		t.Errorf("IKE Delete = %+v", d)
	}
	if cr := m.Payloads[5].(*wire.CERTREQ); len(cr.Authorities()) != 1 {
		t.Errorf("CERTREQ authorities = %x", cr.Authorities())
	}
	cp := m.Payloads[7].(*wire.Config)
	if cp.CFGType != wire.CFG_REQUEST || len(cp.Attributes) != 2 || cp.Attributes[1].Type != wire.INTERNAL_IP4_DNS {
		t.Errorf("CP = %+v", cp)
	}
	if u := m.Payloads[9].(*wire.Unknown); u.PayloadType != 171 || u.Critical || string(u.Body) != "hi!" {
		t.Errorf("unknown = %+v", u)
	}
}

// RFC 7427 §3: AUTH data is a one-octet ASN.1 length, the DER
// AlgorithmIdentifier and the signature. The AlgorithmIdentifiers are the
// ones of RFC 7427 Appendix A.1.2 (sha256WithRSAEncryption) and A.3.1
// (ecdsa-with-SHA256), checked against Go's own DER encoder.
func TestAuthDigitalSignature(t *testing.T) {
	for _, tc := range []struct {
		name string
		der  string
		oid  asn1.ObjectIdentifier
		null bool
	}{
		{"sha256WithRSAEncryption", "300d06092a864886f70d01010b0500", asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, true},
		{"ecdsa-with-SHA256", "300a06082a8648ce3d040302", asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ai := pkix.AlgorithmIdentifier{Algorithm: tc.oid}
			if tc.null {
				ai.Parameters = asn1.NullRawValue
			}
			goDER, err := asn1.Marshal(ai)
			if err != nil || !bytes.Equal(goDER, unhex(t, tc.der)) {
				t.Fatalf("asn1.Marshal(%v) = %x, %v; RFC 7427 text says %s", tc.oid, goDER, err, tc.der)
			}
			body := unhex(t, "0e 000000")
			body = append(body, byte(len(goDER)))
			body = append(append(body, goDER...), 0xaa, 0xbb, 0xcc)
			msg := append(unhex(t, "0102030405060708 1112131415161718 27 20 23 08 00000001"), 0, 0, 0, byte(28+4+len(body)))
			msg = append(append(msg, 0, 0, 0, byte(4+len(body))), body...)
			m := roundTrip(t, msg)
			a := m.Payloads[0].(*wire.AUTH)
			alg, sig, ok := a.Signature()
			if a.Method != wire.AuthDigitalSignature || !ok || !bytes.Equal(alg, goDER) || !bytes.Equal(sig, []byte{0xaa, 0xbb, 0xcc}) {
				t.Fatalf("Signature() = %x, %x, %v", alg, sig, ok)
			}
			if !bytes.Equal(wire.NewSignatureAuth(goDER, sig).AppendBody(nil), body) {
				t.Errorf("NewSignatureAuth encodes differently")
			}
		})
	}
	if _, _, ok := (&wire.AUTH{Method: wire.AuthDigitalSignature, Data: []byte{5, 1, 2}}).Signature(); ok {
		t.Errorf("Signature() with a length past the data succeeded")
	}
}

func TestParseErrors(t *testing.T) {
	good := saInitRequest(t)
	hdr := func(next byte, rest string) []byte { // header + rest with a correct Length
		b := append(unhex(t, "0102030405060708 0000000000000000"), next, 0x20, 34, 8, 0, 0, 0, 0, 0, 0, 0, 0)
		b = append(b, unhex(t, rest)...)
		b[27] = byte(len(b))
		b[26] = byte(len(b) >> 8)
		return b
	}
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, wire.ErrInvalidSyntax},
		{"short header", good[:27], wire.ErrInvalidSyntax},
		{"major version 3", mut(func(b []byte) []byte { b[17] = 0x30; return b }), wire.ErrInvalidMajorVersion},
		{"major version 1", mut(func(b []byte) []byte { b[17] = 0x10; return b }), wire.ErrInvalidMajorVersion},
		{"Length > datagram", mut(func(b []byte) []byte { b[27]++; return b }), wire.ErrInvalidSyntax},
		{"Length < datagram", append(append([]byte(nil), good...), 0), wire.ErrInvalidSyntax},
		{"truncated payload header", hdr(41, "00 00"), wire.ErrInvalidSyntax},
		{"payload length < 4", hdr(41, "00 00 0003 00"), wire.ErrInvalidSyntax},
		{"payload length past message", hdr(43, "00 00 0009 0000"), wire.ErrInvalidSyntax},
		{"bytes after last payload", hdr(43, "00 00 0005 00 ff"), wire.ErrInvalidSyntax},
		{"unknown critical", hdr(43, "c8 00 0004 00 80 0004"), wire.ErrUnsupportedCritical},
		{"SK not last", hdr(46, "29 00 0008 00000000 00 00 0008 00 00 402e"), wire.ErrInvalidSyntax},
		{"nonce 15 octets", hdr(40, "00 00 0013 "+rep(1, 15)), wire.ErrInvalidSyntax},
		{"nonce 257 octets", hdr(40, "00 00 0105 "+rep(1, 257)), wire.ErrInvalidSyntax},
		{"notify SPI past payload", hdr(41, "00 00 0009 03 04 4009 01"), wire.ErrInvalidSyntax},
		{"delete count mismatch", hdr(42, "00 00 000c 03 04 0002 c0ffee01"), wire.ErrInvalidSyntax},
		{"delete empty SPIs", hdr(42, "00 00 0008 03 00 0002"), wire.ErrInvalidSyntax},
		{"SA without proposals", hdr(33, "00 00 0004"), wire.ErrInvalidSyntax},
		{"proposal marked more but last", hdr(33, "00 00 0014 02 00 0010 01 01 00 01 00 00 0008 01 00 000c"), wire.ErrInvalidSyntax},
		{"transform marked last but more", hdr(33, "00 00 001c 00 00 0018 01 01 00 02 00 00 0008 01 00 000c 00 00 0008 02 00 0007"), wire.ErrInvalidSyntax},
		{"transform count mismatch", hdr(33, "00 00 0014 00 00 0010 01 01 00 02 00 00 0008 01 00 000c"), wire.ErrInvalidSyntax},
		{"proposal length past SA", hdr(33, "00 00 0014 00 00 0011 01 01 00 01 00 00 0008 01 00 000c"), wire.ErrInvalidSyntax},
		{"proposal SPI past proposal", hdr(33, "00 00 000c 00 00 0008 01 03 04 00"), wire.ErrInvalidSyntax},
		{"TLV attribute past transform", hdr(33, "00 00 0018 00 00 0014 01 01 00 01 00 00 000c 01 00 000c 0001 0005"), wire.ErrInvalidSyntax},
		{"TS count mismatch", hdr(44, "00 00 0018 02 000000 07 00 0010 0000 ffff 00000000 ffffffff"), wire.ErrInvalidSyntax},
		{"TS IPv4 wrong length", hdr(44, "00 00 0014 01 000000 07 00 000c 0000 ffff 00000000"), wire.ErrInvalidSyntax},
		{"ID IPv4 of 3 octets", hdr(35, "00 00 000b 01 000000 c0a801"), wire.ErrInvalidSyntax},
		{"SKF fragment 0", hdr(53, "00 00 0008 0000 0001"), wire.ErrInvalidSyntax},
		{"SKF number > total", hdr(53, "00 00 0008 0003 0002"), wire.ErrInvalidSyntax},
		{"CP attribute past payload", hdr(47, "00 00 000c 01 000000 0001 0004"), wire.ErrInvalidSyntax},
		{"KE too short", hdr(34, "00 00 0007 001f 00"), wire.ErrInvalidSyntax},
		{"AUTH too short", hdr(39, "00 00 0006 02 00"), wire.ErrInvalidSyntax},
		{"empty CERT", hdr(37, "00 00 0004"), wire.ErrInvalidSyntax},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := wire.Parse(tc.b)
			if m != nil || !errors.Is(err, tc.want) {
				t.Fatalf("Parse(%x) = %v, %v, want nil, %v", tc.b, m, err, tc.want)
			}
			n := wire.NotifyForError(err)
			want := map[error]wire.NotifyType{wire.ErrInvalidSyntax: wire.INVALID_SYNTAX, wire.ErrInvalidMajorVersion: wire.INVALID_MAJOR_VERSION,
				wire.ErrUnsupportedCritical: wire.UNSUPPORTED_CRITICAL_PAYLOAD}[tc.want]
			if n == nil || n.NotifyType != want {
				t.Fatalf("NotifyForError(%v) = %+v, want %v", err, n, want)
			}
		})
	}
	// The unsupported critical payload's type is the notification data
	// (RFC 7296 §3.10.1).
	_, err := wire.Parse(hdr(43, "c8 00 0004 00 80 0004"))
	var ce *wire.CriticalError
	if !errors.As(err, &ce) || ce.Type != 200 || !bytes.Equal(wire.NotifyForError(err).Data, []byte{200}) {
		t.Errorf("critical error = %v", err)
	}
	// The header still parses for the answer.
	if h, err := wire.ParseHeader(mut(func(b []byte) []byte { b[17] = 0x30; return b })); h.SPIi != 0x0102030405060708 || !errors.Is(err, wire.ErrInvalidMajorVersion) {
		t.Errorf("ParseHeader(v3) = %+v, %v", h, err)
	}
	// A minor version other than 0 is ignored (§2.5) and kept.
	if m, err := wire.Parse(mut(func(b []byte) []byte { b[17] = 0x21; return b })); err != nil || m.Version != 0x21 {
		t.Errorf("Parse(v2.1) = %v", err)
	}
	// SK inside SK.
	if _, err := wire.ParsePayloads(wire.PayloadSK, unhex(t, "00 00 0004")); !errors.Is(err, wire.ErrInvalidSyntax) {
		t.Errorf("ParsePayloads(SK) = %v", err)
	}
	if _, err := wire.StripPadding([]byte{1, 2}); !errors.Is(err, wire.ErrInvalidSyntax) {
		t.Errorf("StripPadding(pad past data) = %v", err)
	}
}

func TestResponseHeader(t *testing.T) {
	req := &wire.Message{Header: wire.Header{SPIi: 1, SPIr: 2, Version: 0x21, Exchange: wire.CREATE_CHILD_SA, Flags: wire.FlagInitiator | 0x01, MessageID: 9}}
	r := wire.NewResponse(req, wire.NewNotify(wire.NO_PROPOSAL_CHOSEN, nil))
	if r.SPIi != 1 || r.SPIr != 2 || r.Exchange != wire.CREATE_CHILD_SA || r.MessageID != 9 || r.Flags != wire.FlagResponse || r.Version != wire.Version2 {
		t.Errorf("response to initiator = %+v", r.Header)
	}
	req.Flags = 0 // request from the original responder: we are the original initiator
	if r := wire.NewResponse(req); r.Flags != wire.FlagResponse|wire.FlagInitiator {
		t.Errorf("response to responder flags = %#x", r.Flags)
	}
	if got := r.String(); got != "CREATE_CHILD_SA response 9 [ N(NO_PROP) ]" {
		t.Errorf("String() = %q", got)
	}
}

func TestIdentity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		typ  wire.IDType
		data string
		out  string
	}{
		{"198.18.0.1", wire.ID_IPV4_ADDR, "c6120001", "198.18.0.1"},
		{"2001:db8::1", wire.ID_IPV6_ADDR, "20010db8000000000000000000000001", "2001:db8::1"},
		{"tunterm.example", wire.ID_FQDN, "74756e7465726d2e6578616d706c65", "tunterm.example"},
		{"@tunterm.example", wire.ID_FQDN, "74756e7465726d2e6578616d706c65", "tunterm.example"},
		{"ap1@example", wire.ID_RFC822_ADDR, "617031406578616d706c65", "ap1@example"},
		{"@#001122aabbcc", wire.ID_KEY_ID, "001122aabbcc", "@#001122aabbcc"},
		{"@#00:11:22:aa:bb:cc", wire.ID_KEY_ID, "001122aabbcc", "@#001122aabbcc"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			id, err := wire.NewID(tc.in, false)
			if err != nil || id.IDType != tc.typ || !bytes.Equal(id.Data, unhex(t, tc.data)) || id.String() != tc.out {
				t.Fatalf("NewID(%q) = %+v %v, want %v %s %q", tc.in, id, err, tc.typ, tc.data, tc.out)
			}
			if !bytes.Equal(id.Body(), append([]byte{byte(tc.typ), 0, 0, 0}, id.Data...)) {
				t.Errorf("Body() = %x", id.Body())
			}
		})
	}
	for _, bad := range []string{"", "C=CH, O=strongSwan", "@#zz"} {
		if _, err := wire.NewID(bad, true); err == nil {
			t.Errorf("NewID(%q) succeeded", bad)
		}
	}
	// Body is the received octets, RESERVED included (RFC 7296 §2.15).
	m, err := wire.Parse(unhex(t, "0102030405060708 1112131415161718 24 20 23 08 00000001 00000028 00 00 000c 02 010203 61622e63"))
	if err != nil {
		t.Fatal(err)
	}
	if id := m.Payloads[0].(*wire.ID); !id.Responder || !bytes.Equal(id.Body(), unhex(t, "02 010203 61622e63")) || id.String() != "ab.c" {
		t.Errorf("IDr body = %x", id.Body())
	}
}

func TestSignedOctets(t *testing.T) {
	if got := wire.AppendSignedOctets([]byte{9}, []byte{1, 2}, []byte{3}, []byte{4, 5}); !bytes.Equal(got, []byte{9, 1, 2, 3, 4, 5}) {
		t.Errorf("AppendSignedOctets = %x", got)
	}
}

func TestTSPrefix(t *testing.T) {
	s := wire.TSPrefix(netip.MustParsePrefix("198.18.10.0/24"), 0)
	if s.Start != netip.MustParseAddr("198.18.10.0") || s.End != netip.MustParseAddr("198.18.10.255") || s.String() != "198.18.10.0/24" {
		t.Errorf("TSPrefix = %+v %v", s, s)
	}
	s = wire.TSPrefix(netip.MustParsePrefix("2001:db8::/32"), 115)
	if s.TSType != wire.TS_IPV6_ADDR_RANGE || s.End != netip.MustParseAddr("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff") || s.String() != "2001:db8::/32[115]" {
		t.Errorf("TSPrefix6 = %+v %v", s, s)
	}
}

func TestCookie(t *testing.T) {
	req := &wire.Message{Payloads: []wire.Payload{wire.NewNotify(wire.COOKIE, []byte{1, 2, 3}), &wire.SA{}}}
	if c, ok := req.Cookie(); !ok || !bytes.Equal(c, []byte{1, 2, 3}) {
		t.Errorf("Cookie() = %x, %v", c, ok)
	}
	for _, ps := range [][]wire.Payload{
		nil,
		{&wire.SA{}, wire.NewNotify(wire.COOKIE, []byte{1})},       // not first
		{wire.NewNotify(wire.COOKIE, nil)},                         // empty
		{wire.NewNotify(wire.COOKIE, bytes.Repeat([]byte{1}, 65))}, // too long
	} {
		if c, ok := (&wire.Message{Payloads: ps}).Cookie(); ok {
			t.Errorf("Cookie() of %v = %x, want none", ps, c)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	msg := saInitRequest(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := wire.Parse(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	m, err := wire.Parse(saInitRequest(b))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	b.SetBytes(int64(m.Length))
	for b.Loop() {
		buf = m.Append(buf[:0])
	}
}

// An ID_DER_ASN1_DN built by Go's x509 encoder prints like strongSwan.
func TestIdentityDN(t *testing.T) {
	der, err := asn1.Marshal(pkix.Name{Country: []string{"CH"}, Organization: []string{"strongSwan"}, CommonName: "moon.strongswan.org"}.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	id := &wire.ID{IDType: wire.ID_DER_ASN1_DN, Data: der}
	if got, want := id.String(), "C=CH, O=strongSwan, CN=moon.strongswan.org"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (&wire.ID{IDType: wire.ID_DER_ASN1_DN, Data: []byte{1, 2}}).String(); got != "ID_DER_ASN1_DN:0102" {
		t.Errorf("String() of bad DER = %q", got)
	}
}
