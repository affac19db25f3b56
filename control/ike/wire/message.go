package wire

import (
	"encoding/binary"
	"fmt"
)

// Message is an IKE message: the header and the payload chain. An SK or SKF
// payload, if any, is the last element of Payloads.
type Message struct {
	Header
	Payloads []Payload
	raw      []byte
}

// Raw is the message exactly as Parse received it (the "RealMessage1/2" of
// the AUTH signed octets, RFC 7296 §2.15), or nil for a built message, whose
// bytes are whatever Append returned.
func (m *Message) Raw() []byte { return m.raw }

// Parse decodes one IKE message (the UDP payload, without the non-ESP
// marker). The message aliases b. The Length field must equal len(b).
func Parse(b []byte) (*Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if int64(h.Length) != int64(len(b)) {
		return nil, syntaxErr("Length %d, datagram %d octets", h.Length, len(b))
	}
	ps, err := parseChain(h.NextPayload, b[HeaderLen:], true)
	if err != nil {
		return nil, err
	}
	return &Message{Header: h, Payloads: ps, raw: b}, nil
}

// ParsePayloads decodes a chain of payloads starting with type first: the
// decrypted content of an SK payload (padding and Pad Length removed, see
// StripPadding) or of reassembled SKF fragments (RFC 7383 §2.6). An SK or
// SKF payload inside is an error (RFC 7296 §3.14: "MUST NOT contain another
// Encrypted payload"). The payloads alias b.
func ParsePayloads(first PayloadType, b []byte) ([]Payload, error) {
	return parseChain(first, b, false)
}

func parseChain(next PayloadType, b []byte, outer bool) ([]Payload, error) {
	var ps []Payload
	for next != PayloadNone {
		if len(b) < genericLen {
			return nil, syntaxErr("%v payload header in %d octets", next, len(b))
		}
		t := next
		next = PayloadType(b[0])
		critical := b[1]&0x80 != 0
		l := int(binary.BigEndian.Uint16(b[2:]))
		if l < genericLen || l > len(b) {
			return nil, syntaxErr("%v Payload Length %d with %d octets left", t, l, len(b))
		}
		body := b[genericLen:l]
		b = b[l:]
		if !t.known() {
			if critical {
				return nil, &CriticalError{Type: t}
			}
			ps = append(ps, &Unknown{PayloadType: t, Critical: critical, Body: body})
			continue
		}
		if t == PayloadSK || t == PayloadSKF {
			if !outer {
				return nil, syntaxErr("%v payload inside an encrypted payload", t)
			}
			// RFC 7296 §3.14, RFC 7383 §2.5: the encrypted payload is the
			// last one; its Next Payload names the first inner payload.
			if len(b) != 0 {
				return nil, syntaxErr("%d octets after the %v payload", len(b), t)
			}
			if t == PayloadSK {
				ps = append(ps, &Encrypted{Next: next, Data: body})
			} else {
				f, err := parseSKF(body)
				if err != nil {
					return nil, err
				}
				f.Next = next
				ps = append(ps, f)
			}
			return ps, nil
		}
		p, err := parseBody(t, body)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	if len(b) != 0 {
		return nil, syntaxErr("%d octets after the last payload", len(b))
	}
	return ps, nil
}

func parseBody(t PayloadType, b []byte) (Payload, error) {
	switch t {
	case PayloadSA:
		return parseSA(b)
	case PayloadKE:
		return parseKE(b)
	case PayloadIDi, PayloadIDr:
		return parseID(b, t == PayloadIDr)
	case PayloadCERT:
		if len(b) < 1 {
			return nil, syntaxErr("empty CERT")
		}
		return &CERT{Encoding: CertEncoding(b[0]), Data: b[1:]}, nil
	case PayloadCERTREQ:
		if len(b) < 1 {
			return nil, syntaxErr("empty CERTREQ")
		}
		return &CERTREQ{Encoding: CertEncoding(b[0]), Authority: b[1:]}, nil
	case PayloadAUTH:
		return parseAUTH(b)
	case PayloadNonce:
		if len(b) < MinNonceLen || len(b) > MaxNonceLen {
			return nil, syntaxErr("nonce of %d octets", len(b))
		}
		return &Nonce{Data: b}, nil
	case PayloadNotify:
		return parseNotify(b)
	case PayloadDelete:
		return parseDelete(b)
	case PayloadVendorID:
		return &VendorID{Data: b}, nil
	case PayloadTSi, PayloadTSr:
		return parseTS(b, t == PayloadTSr)
	case PayloadCP:
		return parseConfig(b)
	case PayloadEAP:
		return &EAP{Data: b}, nil
	}
	panic(fmt.Sprintf("ike: parseBody(%v) for a type known() does not list", t))
}

// Append appends the encoded message to dst. The header's NextPayload and
// Length are computed. An SK or SKF payload must be the last one (a
// programmer error otherwise: Append panics), as must any payload longer
// than 65535 octets.
func (m *Message) Append(dst []byte) []byte {
	start := len(dst)
	first := PayloadNone
	if len(m.Payloads) > 0 {
		first = m.Payloads[0].Type()
	}
	dst = m.Header.append(dst, first)
	dst = appendChain(dst, m.Payloads, true)
	binary.BigEndian.PutUint32(dst[start+24:], uint32(len(dst)-start))
	return dst
}

// Marshal is Append(nil).
func (m *Message) Marshal() []byte { return m.Append(nil) }

// AppendPayloads appends a chain of payloads for the inside of an SK payload
// and returns it with the type of its first payload (the Next of the SK).
func AppendPayloads(dst []byte, ps []Payload) ([]byte, PayloadType) {
	first := PayloadNone
	if len(ps) > 0 {
		first = ps[0].Type()
	}
	return appendChain(dst, ps, false), first
}

func appendChain(dst []byte, ps []Payload, outer bool) []byte {
	for i, p := range ps {
		next := PayloadNone
		if i+1 < len(ps) {
			next = ps[i+1].Type()
		}
		var flags byte
		switch p := p.(type) {
		case *Encrypted, *EncryptedFragment:
			if !outer || i != len(ps)-1 {
				panic("ike: SK/SKF payload that is not the last outer payload")
			}
			if e, ok := p.(*Encrypted); ok {
				next = e.Next
			} else {
				next = p.(*EncryptedFragment).Next
			}
		case *Unknown:
			if p.Critical {
				flags = 0x80
			}
		}
		off := len(dst)
		dst = append(dst, byte(next), flags, 0, 0)
		dst = p.AppendBody(dst)
		putLen16(dst[off+2:], len(dst)-off)
	}
	return dst
}

// SplitEncrypted finds the SK or SKF payload of an encoded message and
// returns the octets before its encrypted data, which are the associated
// data of an AEAD cipher (RFC 5282 §5.1: "from the first octet of the Fixed
// Header ... through the last octet of the Encrypted Payload header";
// RFC 7383 §2.5.3: through the Total Fragments field of an SKF) and, with
// IV and ciphertext, the input of a non-AEAD integrity check (RFC 7296
// §3.14), and the rest of the message: IV | ciphertext | ICV. It walks the
// generic headers only, so it works on a message being built, before the
// ciphertext is filled in.
func SplitEncrypted(msg []byte) (head, data []byte, err error) {
	h, err := ParseHeader(msg)
	if err != nil {
		return nil, nil, err
	}
	if int64(h.Length) != int64(len(msg)) {
		return nil, nil, syntaxErr("Length %d, datagram %d octets", h.Length, len(msg))
	}
	off, next := HeaderLen, h.NextPayload
	for next != PayloadNone {
		if len(msg)-off < genericLen {
			break
		}
		l := int(binary.BigEndian.Uint16(msg[off+2:]))
		if l < genericLen || l > len(msg)-off {
			break
		}
		switch next {
		case PayloadSK:
			if off+l != len(msg) {
				return nil, nil, syntaxErr("SK payload is not last")
			}
			return msg[:off+genericLen], msg[off+genericLen:], nil
		case PayloadSKF:
			if off+l != len(msg) || l < genericLen+4 {
				return nil, nil, syntaxErr("SKF payload is not last or too short")
			}
			return msg[:off+genericLen+4], msg[off+genericLen+4:], nil
		}
		next = PayloadType(msg[off])
		off += l
	}
	return nil, nil, syntaxErr("no SK or SKF payload")
}

// StripPadding removes the Padding and Pad Length octet from decrypted SK
// content (RFC 7296 §3.14), returning the inner payload chain.
func StripPadding(plain []byte) ([]byte, error) {
	if len(plain) < 1 || int(plain[len(plain)-1]) > len(plain)-1 {
		return nil, syntaxErr("pad length larger than the decrypted data")
	}
	return plain[:len(plain)-1-int(plain[len(plain)-1])], nil
}

// NewResponse is the response to req carrying payloads (header from
// ResponseHeader).
func NewResponse(req *Message, payloads ...Payload) *Message {
	return &Message{Header: req.ResponseHeader(), Payloads: payloads}
}

// First returns the first payload of type T in ps, e.g.
// sa, ok := wire.First[*wire.SA](m.Payloads).
func First[T Payload](ps []Payload) (T, bool) {
	for _, p := range ps {
		if v, ok := p.(T); ok {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// Cookie returns the data of the COOKIE notify a retried IKE_SA_INIT carries
// as its first payload (RFC 7296 §2.6: "the first payload"; data "between 1
// and 64 octets in length, inclusive"). ok is false if there is none or its
// length is out of range.
func (m *Message) Cookie() (data []byte, ok bool) {
	if len(m.Payloads) == 0 {
		return nil, false
	}
	n, isN := m.Payloads[0].(*Notify)
	if !isN || n.NotifyType != COOKIE || len(n.Data) < 1 || len(n.Data) > MaxCookieLen {
		return nil, false
	}
	return n.Data, true
}

// MaxCookieLen is the longest COOKIE notification data (RFC 7296 §2.6).
const MaxCookieLen = 64

// Find returns the first payload of type t, or nil.
func (m *Message) Find(t PayloadType) Payload { return find(m.Payloads, t) }

func find(ps []Payload, t PayloadType) Payload {
	for _, p := range ps {
		if p.Type() == t {
			return p
		}
	}
	return nil
}

// FindAll returns every payload of type t.
func (m *Message) FindAll(t PayloadType) []Payload {
	var out []Payload
	for _, p := range m.Payloads {
		if p.Type() == t {
			out = append(out, p)
		}
	}
	return out
}

// Notify returns the first Notify of type t, or nil.
func (m *Message) Notify(t NotifyType) *Notify { return FindNotify(m.Payloads, t) }

// FindNotify returns the first Notify of type t in ps, or nil.
func FindNotify(ps []Payload, t NotifyType) *Notify {
	for _, p := range ps {
		if n, ok := p.(*Notify); ok && n.NotifyType == t {
			return n
		}
	}
	return nil
}

// Sealer is the outbound side of an IKE SA's SK keys (ikecrypto.SK).
type Sealer interface {
	SealedLen(n int) int
	Seal(dst, assoc, plain []byte) ([]byte, error)
}

// Seal builds a message whose only payload is the SK or SKF payload p
// holding body, encrypted and integrity-protected with sk: the ciphertext
// placeholder gets its final length first, so that the header and payload
// lengths the integrity check covers are right.
func Seal(sk Sealer, h Header, p Payload, body []byte) ([]byte, error) {
	n := sk.SealedLen(len(body))
	switch p := p.(type) {
	case *Encrypted:
		p.Data = make([]byte, n)
	case *EncryptedFragment:
		p.Data = make([]byte, n)
	default:
		return nil, fmt.Errorf("ike wire: Seal: %T is not an SK or SKF payload", p)
	}
	msg := (&Message{Header: h, Payloads: []Payload{p}}).Marshal()
	head, _, err := SplitEncrypted(msg)
	if err != nil {
		return nil, err
	}
	sealed, err := sk.Seal(nil, head, body)
	if err != nil {
		return nil, err
	}
	copy(msg[len(head):], sealed)
	return msg, nil
}

// SealFragments seals body, whose first inner payload is of type first, as
// RFC 7383 fragments (SKF payloads) of at most room plaintext octets each.
func SealFragments(sk Sealer, h Header, first PayloadType, body []byte, room int) ([][]byte, error) {
	if room <= 0 {
		return nil, fmt.Errorf("ike wire: SealFragments: room %d", room)
	}
	n := (len(body) + room - 1) / room
	out := make([][]byte, 0, n)
	for i := range n {
		f := &EncryptedFragment{Number: uint16(i + 1), Total: uint16(n)}
		if i == 0 {
			f.Next = first
		}
		msg, err := Seal(sk, h, f, body[i*room:min(len(body), (i+1)*room)])
		if err != nil {
			return nil, err
		}
		out = append(out, msg)
	}
	return out, nil
}
