package radsectest

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"errors"

	"layeh.com/radius"
)

// RADIUS constants used here (RFC 2865, 2866, 3579, 5997).
const (
	AttrUserName             = 1
	AttrUserPassword         = 2
	AttrCHAPPassword         = 3
	AttrReplyMessage         = 18
	AttrState                = 24
	AttrVendorSpecific       = 26
	AttrProxyState           = 33
	AttrCHAPChallenge        = 60
	AttrTunnelPassword       = 69
	AttrEAPMessage           = 79
	AttrMessageAuthenticator = 80
	VendorMicrosoft          = 311
	MSMPPESendKey            = 16
	MSMPPERecvKey            = 17
)

// maValue computes the Message-Authenticator of RFC 3579 §3.2 the long
// way: copy the packet, put auth in the Authenticator field, zero the
// Message-Authenticator value, HMAC-MD5 the whole. It returns the value
// found in pkt too, nil when there is none.
func maValue(pkt []byte, auth []byte, secret []byte) (got, want []byte) {
	c := bytes.Clone(pkt)
	copy(c[4:20], auth)
	for off := 20; off+2 <= len(c); {
		l := int(c[off+1])
		if l < 2 || off+l > len(c) {
			return nil, nil
		}
		if c[off] == AttrMessageAuthenticator && l == 18 {
			got = bytes.Clone(pkt[off+2 : off+18])
			clear(c[off+2 : off+18])
			break
		}
		off += l
	}
	if got == nil {
		return nil, nil
	}
	h := hmac.New(md5.New, secret)
	h.Write(c)
	return got, h.Sum(nil)
}

// CheckMA reports whether pkt carries a Message-Authenticator and whether
// it is right, computed with auth as the Authenticator.
func CheckMA(pkt, auth, secret []byte) (present, ok bool) {
	got, want := maValue(pkt, auth, secret)
	return got != nil, got != nil && hmac.Equal(got, want)
}

// Encode marshals p, with a Message-Authenticator first when withMA, and
// fills in the authenticators as RFC 2865 §3, RFC 2866 §3 and RFC 3579
// §3.2 say for p.Code:
//   - Access-Request, Status-Server: p.Authenticator as is (random);
//   - Accounting-Request: computed, Message-Authenticator over zeros;
//   - responses: p.Authenticator must be the request's; the Response
//     Authenticator replaces it.
func Encode(p *radius.Packet, withMA bool) ([]byte, error) {
	q := *p
	q.Attributes = append(radius.Attributes(nil), p.Attributes...)
	q.Attributes.Del(AttrMessageAuthenticator)
	if withMA {
		q.Attributes = append(radius.Attributes{{Type: AttrMessageAuthenticator, Attribute: make([]byte, 16)}}, q.Attributes...)
	}
	var zero [16]byte
	if q.Code == radius.CodeAccountingRequest {
		q.Authenticator = zero
	}
	b, err := q.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if withMA {
		_, want := maValue(b, q.Authenticator[:], q.Secret)
		copy(b[22:38], want)
	}
	switch q.Code {
	case radius.CodeAccessRequest, radius.CodeStatusServer:
		return b, nil
	}
	h := md5.New()
	h.Write(b)
	h.Write(q.Secret)
	copy(b[4:20], h.Sum(nil))
	return b, nil
}

// ErrNotAuthentic is returned for answers whose authenticators are wrong.
var ErrNotAuthentic = errors.New("radsectest: answer is not authentic")

// CheckResponse checks resp as the answer to req: the Response
// Authenticator (layeh.com/radius's check) and the Message-Authenticator
// when present. It reports whether one was present.
func CheckResponse(resp, req, secret []byte) (hadMA bool, err error) {
	if !radius.IsAuthenticResponse(resp, req, secret) {
		return false, ErrNotAuthentic
	}
	present, ok := CheckMA(resp, req[4:20], secret)
	if present && !ok {
		return true, ErrNotAuthentic
	}
	return present, nil
}

// VendorAttr returns the value of the first sub-attribute typ of vendor
// in p's Vendor-Specific attributes (RFC 2865 §5.26).
func VendorAttr(p *radius.Packet, vendor uint32, typ byte) []byte {
	for _, a := range p.Attributes {
		if a.Type != AttrVendorSpecific {
			continue
		}
		id, v, err := radius.VendorSpecific(a.Attribute)
		if err != nil || id != vendor {
			continue
		}
		for len(v) >= 2 && int(v[1]) >= 2 && int(v[1]) <= len(v) {
			if v[0] == typ {
				return v[2:v[1]]
			}
			v = v[v[1]:]
		}
	}
	return nil
}
