package radsec

import (
	"crypto/rand"
	"errors"

	"layeh.com/radius"
)

// This file turns packets from one hop into packets for the next. Each
// function is pure (no I/O, no shared state) so that the fuzzers can drive
// it directly. layeh.com/radius is the codec (parse and marshal); the
// per-hop cryptography (authenticators, Message-Authenticator, hidden
// attributes) is in wire.go.

// apRequest is a request from an AP that passed checkAPRequest. It is
// immutable once built and may be encoded for several servers.
type apRequest struct {
	code  byte
	id    byte
	auth  [authLen]byte
	hadMA bool
	// attrs are the AP's attributes, Message-Authenticator removed, values
	// still hidden with the AP-side secret.
	attrs radius.Attributes
}

// serverResponse is a server's answer that passed checkServerResponse.
type serverResponse struct {
	code  byte
	hadMA bool
	// attrs are the server's attributes without Message-Authenticator and
	// without our Proxy-State; hidden values are still under the server's
	// secret and our Request Authenticator.
	attrs radius.Attributes
}

var errTooBig = errors.New("radsec: packet would exceed 4096 bytes")

// checkAPRequest checks a packet read from an AP's TLS connection (framing
// already checked: len(b) == Length, 20..4096) with the TLS-side secret.
//
//   - Access-Request: Message-Authenticator (RFC 3579 §3.2) verified; it is
//     required when requireMA (BlastRADIUS hardening) or when EAP-Message is
//     present (RFC 3579 §3.1). User-Password must be 16..128 bytes in
//     blocks of 16 (RFC 2865 §5.2).
//   - Accounting-Request: Request Authenticator verified (RFC 2866 §3), and
//     Message-Authenticator if present (computed with a zero authenticator).
//   - Status-Server: Message-Authenticator required (RFC 5997 §3).
//
// Anything else is unsupported.
func checkAPRequest(b []byte, secret []byte, requireMA bool) (*apRequest, drop) {
	if len(b) < HeaderLen || packetLen(b) != len(b) {
		return nil, dropAPMalformed
	}
	if len(b) > MaxPacketLen {
		return nil, dropAPOversized
	}
	if !walkAttrs(b, nil) {
		return nil, dropAPMalformed
	}
	code := b[0]
	switch code {
	case codeAccessRequest, codeAccountingRequest, codeStatusServer:
	default:
		return nil, dropAPUnsupportedCode
	}
	r := &apRequest{code: code, id: b[1]}
	copy(r.auth[:], b[4:HeaderLen])
	off, n := findMA(b)
	if n > 1 || (n == 1 && off == 0) {
		return nil, dropAPMalformed
	}
	r.hadMA = n == 1
	var zero [authLen]byte
	switch code {
	case codeAccessRequest, codeStatusServer:
		if !r.hadMA {
			if requireMA || code == codeStatusServer || hasAttr(b, attrEAPMessage) {
				return nil, dropAPMissingMA
			}
		} else if !checkMA(b, off, &r.auth, secret) {
			return nil, dropAPBadMA
		}
	case codeAccountingRequest:
		if !checkMD5Authenticator(b, &zero, secret) {
			return nil, dropAPBadAuthenticator
		}
		if r.hadMA && !checkMA(b, off, &zero, secret) {
			return nil, dropAPBadMA
		}
	}
	attrs, err := radius.ParseAttributes(b[HeaderLen:])
	if err != nil {
		return nil, dropAPMalformed
	}
	r.attrs = attrs[:0]
	for _, a := range attrs {
		switch a.Type {
		case attrMessageAuthenticator:
			continue
		case attrUserPassword:
			if code != codeAccessRequest || len(a.Attribute) < passwordBlockBytes ||
				len(a.Attribute) > maxPasswordCipher || len(a.Attribute)%passwordBlockBytes != 0 {
				return nil, dropAPMalformed
			}
		}
		r.attrs = append(r.attrs, a)
	}
	return r, dropNone
}

func hasAttr(b []byte, typ byte) bool {
	found := false
	walkAttrs(b, func(_ int, t byte, _ []byte) bool {
		found = t == typ
		return !found
	})
	return found
}

// encodeRequest builds the packet to send a server for r: our Identifier
// id, a fresh Request Authenticator, Message-Authenticator first (always for
// Access-Request, as BlastRADIUS hardening asks, and when the AP sent one in
// an Accounting-Request), User-Password re-hidden with the server's secret,
// CHAP-Challenge added when CHAP used the AP's authenticator as its
// challenge (RFC 2865 §2.2), and our Proxy-State last (RFC 2865 §5.33).
// It returns the packet and its Request Authenticator.
func encodeRequest(r *apRequest, apSecret []byte, id byte, secret []byte, proxyState []byte) ([]byte, [authLen]byte, error) {
	var auth [authLen]byte
	withMA := r.code != codeAccountingRequest || r.hadMA
	if r.code != codeAccountingRequest {
		if _, err := rand.Read(auth[:]); err != nil {
			return nil, auth, err
		}
	}
	attrs := make(radius.Attributes, 0, len(r.attrs)+3)
	if withMA {
		attrs = append(attrs, &radius.AVP{Type: attrMessageAuthenticator, Attribute: make([]byte, authLen)})
	}
	chap, chapChallenge := false, false
	for _, a := range r.attrs {
		switch a.Type {
		case attrUserPassword:
			v := append([]byte(nil), a.Attribute...)
			recryptPassword(v, apSecret, &r.auth, secret, &auth)
			a = &radius.AVP{Type: a.Type, Attribute: v}
		case attrTunnelPassword:
			if r.code == codeAccessRequest && len(a.Attribute) > 1 {
				v := append([]byte(nil), a.Attribute...)
				if recryptSalted(v[1:], apSecret, &r.auth, secret, &auth) {
					a = &radius.AVP{Type: a.Type, Attribute: v}
				}
			}
		case attrCHAPPassword:
			chap = true
		case attrCHAPChallenge:
			chapChallenge = true
		}
		attrs = append(attrs, a)
	}
	if chap && !chapChallenge && r.code == codeAccessRequest {
		attrs = append(attrs, &radius.AVP{Type: attrCHAPChallenge, Attribute: append([]byte(nil), r.auth[:]...)})
	}
	if proxyState != nil {
		attrs = append(attrs, &radius.AVP{Type: attrProxyState, Attribute: proxyState})
	}
	p := radius.Packet{Code: radius.Code(r.code), Identifier: id, Authenticator: auth, Attributes: attrs}
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, auth, errTooBig
	}
	const maOff = HeaderLen + 2 // the first attribute's value
	switch r.code {
	case codeAccessRequest, codeStatusServer:
		signMA(b, maOff, &auth, secret)
	case codeAccountingRequest:
		var zero [authLen]byte
		if withMA {
			signMA(b, maOff, &zero, secret)
		}
		auth = md5Authenticator(b, &zero, secret)
		copy(b[4:HeaderLen], auth[:])
	}
	return b, auth, nil
}

// encodeStatusServer builds a Status-Server probe (RFC 5997 §3): only a
// Message-Authenticator, like the example of RFC 5997 §6.1.
func encodeStatusServer(id byte, secret []byte) ([]byte, [authLen]byte, error) {
	return encodeRequest(&apRequest{code: codeStatusServer}, nil, id, secret, nil)
}

// checkServerResponse checks b, a datagram from a server, as the answer to
// req, the packet we sent it. Octets past Length are ignored (RFC 2865 §3).
// The Response Authenticator must be right; Message-Authenticator, when
// present, must be right, and must be present in Access-Accept, -Reject and
// -Challenge when requireMA. Our Proxy-State (nil for probes) must be the
// last one and is removed (RFC 2865 §5.33).
func checkServerResponse(b, req []byte, secret []byte, requireMA bool, proxyState []byte) (*serverResponse, drop) {
	if len(b) < HeaderLen {
		return nil, dropSrvMalformed
	}
	l := packetLen(b)
	if l < HeaderLen || l > len(b) || l > MaxPacketLen {
		return nil, dropSrvMalformed
	}
	b = b[:l]
	if !walkAttrs(b, nil) {
		return nil, dropSrvMalformed
	}
	code := b[0]
	switch req[0] {
	case codeAccessRequest:
		if code != codeAccessAccept && code != codeAccessReject && code != codeAccessChallenge {
			return nil, dropSrvBadCode
		}
	case codeAccountingRequest:
		if code != codeAccountingResponse {
			return nil, dropSrvBadCode
		}
	case codeStatusServer: // Access-Accept from an auth port, Accounting-Response from an accounting port
		if code != codeAccessAccept && code != codeAccountingResponse {
			return nil, dropSrvBadCode
		}
	}
	var reqAuth [authLen]byte
	copy(reqAuth[:], req[4:HeaderLen])
	if !checkMD5Authenticator(b, &reqAuth, secret) {
		return nil, dropSrvBadAuthenticator
	}
	off, n := findMA(b)
	if n > 1 || (n == 1 && off == 0) {
		return nil, dropSrvMalformed
	}
	if n == 1 {
		if !checkMA(b, off, &reqAuth, secret) {
			return nil, dropSrvBadMA
		}
	} else if requireMA && code != codeAccountingResponse {
		return nil, dropSrvMissingMA
	}
	attrs, err := radius.ParseAttributes(b[HeaderLen:])
	if err != nil {
		return nil, dropSrvMalformed
	}
	last := -1
	for i, a := range attrs {
		if a.Type == attrProxyState {
			last = i
		}
	}
	if proxyState != nil {
		if last < 0 || string(attrs[last].Attribute) != string(proxyState) {
			return nil, dropSrvProxyState
		}
	} else {
		last = -1
	}
	resp := &serverResponse{code: code, hadMA: n == 1, attrs: attrs[:0]}
	for i, a := range attrs {
		if i == last || a.Type == attrMessageAuthenticator {
			continue
		}
		resp.attrs = append(resp.attrs, a)
	}
	return resp, dropNone
}

// encodeResponse builds the answer to the AP's request r from the server's
// response: the AP's Identifier, hidden attributes moved from (server
// secret, our Request Authenticator ourAuth) to (AP-side secret, the AP's
// Request Authenticator), Message-Authenticator first in every Access-*
// answer, and the Response Authenticator computed with the AP-side secret.
func encodeResponse(resp *serverResponse, r *apRequest, apSecret, srvSecret []byte, ourAuth *[authLen]byte) ([]byte, error) {
	withMA := resp.code != codeAccountingResponse || resp.hadMA
	attrs := make(radius.Attributes, 0, len(resp.attrs)+1)
	if withMA {
		attrs = append(attrs, &radius.AVP{Type: attrMessageAuthenticator, Attribute: make([]byte, authLen)})
	}
	for _, a := range resp.attrs {
		switch a.Type {
		case attrTunnelPassword:
			if len(a.Attribute) > 1 {
				v := append([]byte(nil), a.Attribute...)
				if recryptSalted(v[1:], srvSecret, ourAuth, apSecret, &r.auth) {
					a = &radius.AVP{Type: a.Type, Attribute: v}
				}
			}
		case attrVendorSpecific:
			if v, ok := recryptVSA(a.Attribute, srvSecret, ourAuth, apSecret, &r.auth); ok {
				a = &radius.AVP{Type: a.Type, Attribute: v}
			}
		}
		attrs = append(attrs, a)
	}
	p := radius.Packet{Code: radius.Code(resp.code), Identifier: r.id, Authenticator: r.auth, Attributes: attrs}
	b, err := p.MarshalBinary()
	if err != nil {
		return nil, errTooBig
	}
	if withMA {
		signMA(b, HeaderLen+2, &r.auth, apSecret)
	}
	sum := md5Authenticator(b, &r.auth, apSecret)
	copy(b[4:HeaderLen], sum[:])
	return b, nil
}

// encodeStatusAnswer answers an AP's Status-Server ourselves (RFC 5997
// §3: Access-Accept with a Message-Authenticator): RadSec peers use it as a
// keepalive, and it says nothing about the servers behind us.
func encodeStatusAnswer(r *apRequest, apSecret []byte) []byte {
	b, _ := encodeResponse(&serverResponse{code: codeAccessAccept}, r, apSecret, nil, nil)
	return b
}

// recryptVSA re-hides the Microsoft attributes of a Vendor-Specific value
// (RFC 2865 §5.26: Vendor-Id(4), then Vendor-Type(1) Vendor-Length(1)
// Value, possibly several) that RFC 2548 hides with the shared secret. It
// returns a copy when something changed.
func recryptVSA(v []byte, fromSecret []byte, fromAuth *[authLen]byte, toSecret []byte, toAuth *[authLen]byte) ([]byte, bool) {
	if len(v) < vsaHeaderLen || v[0] != 0 || v[1] != 0 || v[2] != vendorMicrosoft>>8 || v[3] != vendorMicrosoft&0xff {
		return nil, false
	}
	// Check the sub-attribute layout first: leave anything else alone.
	for off := 4; off < len(v); {
		if len(v)-off < 2 || v[off+1] < 2 || off+int(v[off+1]) > len(v) {
			return nil, false
		}
		off += int(v[off+1])
	}
	out := append([]byte(nil), v...)
	changed := false
	for off := 4; off < len(out); off += int(out[off+1]) {
		val := out[off+2 : off+int(out[off+1])]
		switch out[off] {
		case msCHAPMPPEKeys:
			changed = recryptPassword(val, fromSecret, fromAuth, toSecret, toAuth) || changed
		case msMPPESendKey, msMPPERecvKey:
			changed = recryptSalted(val, fromSecret, fromAuth, toSecret, toAuth) || changed
		}
	}
	return out, changed
}
