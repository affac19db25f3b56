package wire

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// SA is the Security Association payload (RFC 7296 §3.3): one or more
// proposals, most preferred first.
type SA struct{ Proposals []Proposal }

func (*SA) Type() PayloadType { return PayloadSA }

// Proposal is a Proposal Substructure (RFC 7296 §3.3.1).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| 0 (last) or 2 |   RESERVED    |         Proposal Length       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Proposal Num  |  Protocol ID  |    SPI Size   |Num  Transforms|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                        SPI (variable)                         ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                        <Transforms>                           ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// SPI is empty in the initial IKE SA negotiation, 8 octets for an IKE SA
// rekey, 4 for ESP and AH.
type Proposal struct {
	Number     uint8
	Protocol   ProtocolID
	SPI        []byte
	Transforms []Transform
}

// Transform is a Transform Substructure (RFC 7296 §3.3.2).
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| 0 (last) or 3 |   RESERVED    |        Transform Length       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Transform Type |   RESERVED    |          Transform ID         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                      Transform Attributes                     ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// ID is an EncrID, PRFID, IntegID, DHGroup or ESNID depending on Type.
type Transform struct {
	Type       TransformType
	ID         uint16
	Attributes []Attribute
}

// Attribute is a Data Attribute (RFC 7296 §3.3.5). With TV set (AF=1) the
// value is the 16-bit Value; otherwise (AF=0, TLV) it is Data.
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|A|       Attribute Type        |    AF=0  Attribute Length     |
//	|F|                             |    AF=1  Attribute Value      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                   AF=0  Attribute Value                       |
//	|                   AF=1  Not Transmitted                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Attribute struct {
	Type  uint16 // without the AF bit
	TV    bool
	Value uint16
	Data  []byte
}

// Transform constructors; keyBits 0 means no Key Length attribute (AES-CBC,
// AES-CTR and AES-GCM need one, RFC 7296 §3.3.5; ChaCha20-Poly1305 has none,
// RFC 7634 §3).
func Encr(id EncrID, keyBits uint16) Transform {
	t := Transform{Type: TransformENCR, ID: uint16(id)}
	if keyBits != 0 {
		t.Attributes = []Attribute{{Type: AttrKeyLength, TV: true, Value: keyBits}}
	}
	return t
}
func PRF(id PRFID) Transform     { return Transform{Type: TransformPRF, ID: uint16(id)} }
func Integ(id IntegID) Transform { return Transform{Type: TransformINTEG, ID: uint16(id)} }
func DH(g DHGroup) Transform     { return Transform{Type: TransformDH, ID: uint16(g)} }

// ESNT is the ESN transform (named apart from the ESN constant).
func ESNT(e ESNID) Transform { return Transform{Type: TransformESN, ID: uint16(e)} }

// KeyLength returns the Key Length attribute in bits.
func (t *Transform) KeyLength() (uint16, bool) {
	for _, a := range t.Attributes {
		if a.Type == AttrKeyLength && a.TV {
			return a.Value, true
		}
	}
	return 0, false
}

// String is strongSwan's name for the transform: AES_CTR_256,
// HMAC_SHA2_512_256, PRF_HMAC_SHA2_512, CURVE_25519, NO_EXT_SEQ.
func (t *Transform) String() string {
	var s string
	switch t.Type {
	case TransformENCR:
		s = EncrID(t.ID).String()
		if k, ok := t.KeyLength(); ok {
			s += "_" + strconv.Itoa(int(k))
		}
	case TransformPRF:
		s = PRFID(t.ID).String()
	case TransformINTEG:
		s = IntegID(t.ID).String()
	case TransformDH:
		s = DHGroup(t.ID).String()
	case TransformESN:
		s = ESNID(t.ID).String()
	default:
		s = "UNKNOWN_" + strconv.Itoa(int(t.Type)) + "_" + strconv.Itoa(int(t.ID))
	}
	return s
}

// Has reports whether the proposal offers the transform (type, ID and key
// length if any).
func (p *Proposal) Has(want Transform) bool {
	wk, _ := want.KeyLength()
	for i := range p.Transforms {
		t := &p.Transforms[i]
		if t.Type == want.Type && t.ID == want.ID {
			if k, _ := t.KeyLength(); k == wk {
				return true
			}
		}
	}
	return false
}

// String prints the proposal the way strongSwan logs it: protocol, then the
// transforms grouped ENCR, INTEG, PRF, DH, ESN, joined by '/', e.g.
// "IKE:AES_CTR_256/HMAC_SHA2_512_256/PRF_HMAC_SHA2_512/CURVE_25519".
func (p *Proposal) String() string {
	var b strings.Builder
	b.WriteString(p.Protocol.String())
	b.WriteByte(':')
	first := true
	for _, tt := range []TransformType{TransformENCR, TransformINTEG, TransformPRF, TransformDH, TransformESN} {
		for i := range p.Transforms {
			if p.Transforms[i].Type != tt {
				continue
			}
			if !first {
				b.WriteByte('/')
			}
			first = false
			b.WriteString(p.Transforms[i].String())
		}
	}
	for i := range p.Transforms { // types outside the five
		if p.Transforms[i].Type < TransformENCR || p.Transforms[i].Type > TransformESN {
			if !first {
				b.WriteByte('/')
			}
			first = false
			b.WriteString(p.Transforms[i].String())
		}
	}
	return b.String()
}

// AppendBody writes the proposals, marking all but the last "2 (more)" and
// the transforms "3 (more)" (RFC 7296 §3.3.1, §3.3.2).
func (p *SA) AppendBody(dst []byte) []byte {
	for i := range p.Proposals {
		pr := &p.Proposals[i]
		more := byte(2)
		if i == len(p.Proposals)-1 {
			more = 0
		}
		if len(pr.SPI) > 255 || len(pr.Transforms) > 255 {
			panic("ike: proposal SPI or transform count over 255")
		}
		start := len(dst)
		dst = append(dst, more, 0, 0, 0, pr.Number, byte(pr.Protocol), byte(len(pr.SPI)), byte(len(pr.Transforms)))
		dst = append(dst, pr.SPI...)
		for j := range pr.Transforms {
			t := &pr.Transforms[j]
			more := byte(3)
			if j == len(pr.Transforms)-1 {
				more = 0
			}
			ts := len(dst)
			dst = append(dst, more, 0, 0, 0, byte(t.Type), 0)
			dst = binary.BigEndian.AppendUint16(dst, t.ID)
			for _, a := range t.Attributes {
				if a.TV {
					dst = binary.BigEndian.AppendUint16(dst, 0x8000|a.Type)
					dst = binary.BigEndian.AppendUint16(dst, a.Value)
				} else {
					dst = binary.BigEndian.AppendUint16(dst, a.Type&0x7fff)
					dst = binary.BigEndian.AppendUint16(dst, uint16(len(a.Data)))
					dst = append(dst, a.Data...)
				}
			}
			putLen16(dst[ts+2:], len(dst)-ts)
		}
		putLen16(dst[start+2:], len(dst)-start)
	}
	return dst
}

func putLen16(b []byte, n int) {
	if n > 0xffff {
		panic("ike: substructure longer than 65535 octets")
	}
	binary.BigEndian.PutUint16(b, uint16(n))
}

// parseSA checks that the Payload Length is consistent with the internal
// lengths and counts (RFC 7296 §3.3: "an implementation MUST check that the
// total Payload Length is consistent with the payload's internal lengths and
// counts").
func parseSA(b []byte) (*SA, error) {
	sa := &SA{}
	if len(b) == 0 {
		return nil, syntaxErr("SA without proposals")
	}
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, syntaxErr("proposal header of %d octets", len(b))
		}
		l := int(binary.BigEndian.Uint16(b[2:]))
		if l < 8 || l > len(b) {
			return nil, syntaxErr("proposal length %d with %d octets left", l, len(b))
		}
		last := len(b) == l
		if (last && b[0] != 0) || (!last && b[0] != 2) {
			return nil, syntaxErr("proposal 'last or more' %d inconsistent with its length", b[0])
		}
		pb := b[:l]
		b = b[l:]
		pr := Proposal{Number: pb[4], Protocol: ProtocolID(pb[5])}
		spiSize, n := int(pb[6]), int(pb[7])
		if 8+spiSize > l {
			return nil, syntaxErr("proposal SPI of %d octets in %d", spiSize, l-8)
		}
		pr.SPI = pb[8 : 8+spiSize]
		tb := pb[8+spiSize:]
		if n > 0 {
			pr.Transforms = make([]Transform, 0, n)
		}
		for len(tb) > 0 {
			if len(tb) < 8 {
				return nil, syntaxErr("transform header of %d octets", len(tb))
			}
			tl := int(binary.BigEndian.Uint16(tb[2:]))
			if tl < 8 || tl > len(tb) {
				return nil, syntaxErr("transform length %d with %d octets left", tl, len(tb))
			}
			tlast := len(tb) == tl
			if (tlast && tb[0] != 0) || (!tlast && tb[0] != 3) {
				return nil, syntaxErr("transform 'last or more' %d inconsistent with its length", tb[0])
			}
			t := Transform{Type: TransformType(tb[4]), ID: binary.BigEndian.Uint16(tb[6:])}
			for ab := tb[8:tl]; len(ab) > 0; {
				if len(ab) < 4 {
					return nil, syntaxErr("attribute of %d octets", len(ab))
				}
				a := Attribute{Type: binary.BigEndian.Uint16(ab) & 0x7fff, TV: ab[0]&0x80 != 0}
				if a.TV {
					a.Value = binary.BigEndian.Uint16(ab[2:])
					ab = ab[4:]
				} else {
					al := int(binary.BigEndian.Uint16(ab[2:]))
					if al > len(ab)-4 {
						return nil, syntaxErr("attribute value of %d octets in %d", al, len(ab)-4)
					}
					a.Data = ab[4 : 4+al]
					ab = ab[4+al:]
				}
				t.Attributes = append(t.Attributes, a)
			}
			pr.Transforms = append(pr.Transforms, t)
			tb = tb[tl:]
		}
		if len(pr.Transforms) != n {
			return nil, syntaxErr("proposal says %d transforms, holds %d", n, len(pr.Transforms))
		}
		sa.Proposals = append(sa.Proposals, pr)
	}
	return sa, nil
}
