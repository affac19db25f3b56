// Package proposal reads IKE and ESP proposals written the way strongSwan
// operators write them ("aes256ctr-sha512-prfsha512-curve25519",
// "aes256gcm16-esn") and selects, from the proposals a peer offers in an SA
// payload, the transforms both sides accept (RFC 7296 §2.7, §3.3).
//
// A Proposal lists, per transform type, the algorithms we accept in our
// order of preference. Selection walks our proposals in the configured
// order and, within each, the peer's proposals in its order; the first pair
// that has a common algorithm for every required transform type wins, and
// for each type our most preferred common algorithm is chosen (strongSwan's
// responder default, prefer_configured_proposals = yes).
//
// Everything here is a pure function of its arguments and safe for
// concurrent use.
package proposal

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tunterm/tunterm/control/ike/ikecrypto"
	"github.com/tunterm/tunterm/control/ike/wire"
)

// Kind says which SA a proposal negotiates.
type Kind uint8

// Proposal kinds.
const (
	IKE Kind = iota // an IKE SA: ENCR, [INTEG], PRF, DH
	ESP             // a CHILD_SA: ENCR, [INTEG], [DH for PFS], ESN
)

func (k Kind) String() string {
	if k == ESP {
		return "ESP"
	}
	return "IKE"
}

// Encr is an encryption algorithm with its key length in bits.
type Encr struct {
	ID   wire.EncrID
	Bits uint16
}

// Proposal is one configured proposal: the acceptable algorithms of each
// transform type, most preferred first.
type Proposal struct {
	Kind  Kind
	Encr  []Encr
	Integ []wire.IntegID
	PRF   []wire.PRFID
	DH    []wire.DHGroup
	ESN   []wire.ESNID // ESP only; never empty after Parse
	text  string
}

// ErrSyntax wraps every Parse error.
var ErrSyntax = errors.New("proposal")

type token struct {
	t    wire.TransformType
	id   uint16
	bits uint16
	aead bool
}

// tokens are strongSwan's keywords (src/libstrongswan/crypto/proposal/
// proposal_keywords_static.txt) for the algorithms tunterm implements.
var tokens = map[string]token{
	"aes128":           {wire.TransformENCR, uint16(wire.ENCR_AES_CBC), 128, false},
	"aes":              {wire.TransformENCR, uint16(wire.ENCR_AES_CBC), 128, false},
	"aes256":           {wire.TransformENCR, uint16(wire.ENCR_AES_CBC), 256, false},
	"aes128ctr":        {wire.TransformENCR, uint16(wire.ENCR_AES_CTR), 128, false},
	"aes256ctr":        {wire.TransformENCR, uint16(wire.ENCR_AES_CTR), 256, false},
	"aes128gcm16":      {wire.TransformENCR, uint16(wire.ENCR_AES_GCM_16), 128, true},
	"aes128gcm128":     {wire.TransformENCR, uint16(wire.ENCR_AES_GCM_16), 128, true},
	"aes256gcm16":      {wire.TransformENCR, uint16(wire.ENCR_AES_GCM_16), 256, true},
	"aes256gcm128":     {wire.TransformENCR, uint16(wire.ENCR_AES_GCM_16), 256, true},
	"chacha20poly1305": {wire.TransformENCR, uint16(wire.ENCR_CHACHA20_POLY1305), 0, true},
	"sha1":             {wire.TransformINTEG, uint16(wire.AUTH_HMAC_SHA1_96), 0, false},
	"sha":              {wire.TransformINTEG, uint16(wire.AUTH_HMAC_SHA1_96), 0, false},
	"sha256":           {wire.TransformINTEG, uint16(wire.AUTH_HMAC_SHA2_256_128), 0, false},
	"sha2_256":         {wire.TransformINTEG, uint16(wire.AUTH_HMAC_SHA2_256_128), 0, false},
	"sha384":           {wire.TransformINTEG, uint16(wire.AUTH_HMAC_SHA2_384_192), 0, false},
	"sha2_384":         {wire.TransformINTEG, uint16(wire.AUTH_HMAC_SHA2_384_192), 0, false},
	"sha512":           {wire.TransformINTEG, uint16(wire.AUTH_HMAC_SHA2_512_256), 0, false},
	"sha2_512":         {wire.TransformINTEG, uint16(wire.AUTH_HMAC_SHA2_512_256), 0, false},
	"prfsha256":        {wire.TransformPRF, uint16(wire.PRF_HMAC_SHA2_256), 0, false},
	"prfsha384":        {wire.TransformPRF, uint16(wire.PRF_HMAC_SHA2_384), 0, false},
	"prfsha512":        {wire.TransformPRF, uint16(wire.PRF_HMAC_SHA2_512), 0, false},
	"modp2048":         {wire.TransformDH, uint16(wire.MODP_2048), 0, false},
	"ecp256":           {wire.TransformDH, uint16(wire.ECP_256), 0, false},
	"ecp384":           {wire.TransformDH, uint16(wire.ECP_384), 0, false},
	"ecp521":           {wire.TransformDH, uint16(wire.ECP_521), 0, false},
	"curve25519":       {wire.TransformDH, uint16(wire.CURVE_25519), 0, false},
	"x25519":           {wire.TransformDH, uint16(wire.CURVE_25519), 0, false},
	"esn":              {wire.TransformESN, uint16(wire.ESN), 0, false},
	"noesn":            {wire.TransformESN, uint16(wire.NO_ESN), 0, false},
}

// known lists the keywords for error messages.
const known = "aes128 aes256 aes128ctr aes256ctr aes128gcm16 aes256gcm16 chacha20poly1305 " +
	"sha1 sha256 sha384 sha512 prfsha256 prfsha384 prfsha512 modp2048 ecp256 ecp384 ecp521 curve25519 esn noesn"

// integPRF is the PRF strongSwan adds to an IKE proposal that names none:
// the one of the same hash as an integrity algorithm.
var integPRF = map[wire.IntegID]wire.PRFID{
	wire.AUTH_HMAC_SHA2_256_128: wire.PRF_HMAC_SHA2_256,
	wire.AUTH_HMAC_SHA2_384_192: wire.PRF_HMAC_SHA2_384,
	wire.AUTH_HMAC_SHA2_512_256: wire.PRF_HMAC_SHA2_512,
}

// Parse reads one proposal in strongSwan's syntax: algorithm keywords joined
// by '-', any order, several per type allowed. The rules follow strongSwan's
// proposal_create_from_string: AEAD and classic ciphers are not mixed; a
// classic cipher needs an integrity algorithm; an IKE proposal needs a DH
// group and a PRF (taken from the integrity algorithms when none is named);
// an ESP proposal takes no PRF, and without esn/noesn means noesn.
func Parse(s string, k Kind) (Proposal, error) {
	p := Proposal{Kind: k, text: s}
	if strings.TrimSpace(s) == "" {
		return p, fmt.Errorf("%w: empty", ErrSyntax)
	}
	var aead, classic bool
	seen := map[string]bool{}
	for _, w := range strings.Split(strings.ToLower(strings.TrimSpace(s)), "-") {
		t, ok := tokens[w]
		if !ok {
			return p, fmt.Errorf("%w %q: unknown algorithm %q (known: %s)", ErrSyntax, s, w, known)
		}
		if seen[w] {
			continue
		}
		seen[w] = true
		switch t.t {
		case wire.TransformENCR:
			if t.aead {
				aead = true
			} else {
				classic = true
			}
			p.Encr = append(p.Encr, Encr{wire.EncrID(t.id), t.bits})
		case wire.TransformINTEG:
			p.Integ = append(p.Integ, wire.IntegID(t.id))
		case wire.TransformPRF:
			if k == ESP {
				return p, fmt.Errorf("%w %q: %s is a PRF, which ESP proposals do not take", ErrSyntax, s, w)
			}
			p.PRF = append(p.PRF, wire.PRFID(t.id))
		case wire.TransformDH:
			p.DH = append(p.DH, wire.DHGroup(t.id))
		case wire.TransformESN:
			if k == IKE {
				return p, fmt.Errorf("%w %q: %s is for ESP proposals only", ErrSyntax, s, w)
			}
			p.ESN = append(p.ESN, wire.ESNID(t.id))
		}
	}
	switch {
	case len(p.Encr) == 0:
		return p, fmt.Errorf("%w %q: no encryption algorithm (aes256ctr, aes256gcm16, ...)", ErrSyntax, s)
	case aead && classic:
		return p, fmt.Errorf("%w %q: AEAD (gcm, chacha20poly1305) and classic ciphers cannot be mixed in one proposal", ErrSyntax, s)
	case aead && len(p.Integ) > 0:
		return p, fmt.Errorf("%w %q: an AEAD cipher takes no integrity algorithm", ErrSyntax, s)
	case classic && len(p.Integ) == 0:
		return p, fmt.Errorf("%w %q: %s needs an integrity algorithm (sha256, sha512, ...)", ErrSyntax, s, encrName(p.Encr[0]))
	}
	if k == IKE {
		if len(p.PRF) == 0 {
			for _, i := range p.Integ {
				if f, ok := integPRF[i]; ok {
					p.PRF = append(p.PRF, f)
				}
			}
		}
		if len(p.PRF) == 0 {
			return p, fmt.Errorf("%w %q: a PRF is required (prfsha256, prfsha384, prfsha512)", ErrSyntax, s)
		}
		if len(p.DH) == 0 {
			return p, fmt.Errorf("%w %q: a DH group is required in IKE proposals (curve25519, ecp256, modp2048, ...)", ErrSyntax, s)
		}
	} else if len(p.ESN) == 0 {
		p.ESN = []wire.ESNID{wire.NO_ESN}
	}
	return p, nil
}

// MustParse is Parse for constants; it panics on error.
func MustParse(s string, k Kind) Proposal {
	p, err := Parse(s, k)
	if err != nil {
		panic(err)
	}
	return p
}

// ParseList parses several proposals.
func ParseList(ss []string, k Kind) ([]Proposal, error) {
	out := make([]Proposal, 0, len(ss))
	for _, s := range ss {
		p, err := Parse(s, k)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func encrName(e Encr) string {
	t := wire.Encr(e.ID, e.Bits)
	return t.String()
}

// String is the proposal as written in the configuration.
func (p Proposal) String() string { return p.text }

// Wire encodes the proposal for an SA payload we send as initiator (number,
// protocol and SPI are the caller's). withDH adds the DH groups (IKE, or
// ESP with PFS in CREATE_CHILD_SA).
func (p Proposal) Wire(num uint8, proto wire.ProtocolID, spi []byte, withDH bool) wire.Proposal {
	wp := wire.Proposal{Number: num, Protocol: proto, SPI: spi}
	for _, e := range p.Encr {
		wp.Transforms = append(wp.Transforms, wire.Encr(e.ID, e.Bits))
	}
	for _, i := range p.Integ {
		wp.Transforms = append(wp.Transforms, wire.Integ(i))
	}
	for _, f := range p.PRF {
		wp.Transforms = append(wp.Transforms, wire.PRF(f))
	}
	if withDH {
		for _, g := range p.DH {
			wp.Transforms = append(wp.Transforms, wire.DH(g))
		}
	}
	for _, e := range p.ESN {
		wp.Transforms = append(wp.Transforms, wire.ESNT(e))
	}
	return wp
}

// Chosen is the result of a selection: one algorithm per type.
type Chosen struct {
	Kind   Kind
	Number uint8  // the peer's proposal number
	SPI    []byte // the peer's SPI from that proposal
	Encr   Encr
	Integ  wire.IntegID // AUTH_NONE for AEAD ciphers
	PRF    wire.PRFID   // IKE only
	DH     wire.DHGroup // DH_NONE when none
	ESN    wire.ESNID   // ESP only
	hasESN bool
}

// Wire is the single-transform proposal a responder returns (RFC 7296
// §3.3: the accepted proposal with one transform of each type), carrying
// spi (ours).
func (c Chosen) Wire(spi []byte) wire.Proposal {
	proto := wire.ProtoIKE
	if c.Kind == ESP {
		proto = wire.ProtoESP
	}
	wp := wire.Proposal{Number: c.Number, Protocol: proto, SPI: spi}
	wp.Transforms = append(wp.Transforms, wire.Encr(c.Encr.ID, c.Encr.Bits))
	if c.Integ != wire.AUTH_NONE {
		wp.Transforms = append(wp.Transforms, wire.Integ(c.Integ))
	}
	if c.Kind == IKE {
		wp.Transforms = append(wp.Transforms, wire.PRF(c.PRF))
	}
	if c.DH != wire.DH_NONE {
		wp.Transforms = append(wp.Transforms, wire.DH(c.DH))
	}
	if c.Kind == ESP && c.hasESN {
		wp.Transforms = append(wp.Transforms, wire.ESNT(c.ESN))
	}
	return wp
}

// Suite is the ikecrypto suite of the choice; for ESP the PRF is ikePRF
// (the IKE SA's).
func (c Chosen) Suite(ikePRF wire.PRFID) ikecrypto.Suite {
	s := ikecrypto.Suite{Encr: ikecrypto.EncrID(c.Encr.ID), EncrKeyBits: int(c.Encr.Bits),
		Integ: ikecrypto.IntegID(c.Integ), PRF: ikecrypto.PRFID(c.PRF), DH: ikecrypto.DHGroup(c.DH)}
	if c.Kind == ESP {
		s.PRF = ikecrypto.PRFID(ikePRF)
	}
	return s
}

// String prints the choice like strongSwan's "selected proposal" line:
// "IKE:AES_CTR_256/HMAC_SHA2_512_256/PRF_HMAC_SHA2_512/CURVE_25519".
func (c Chosen) String() string {
	wp := c.Wire(nil)
	return wp.String()
}

// Mode says how DH transforms take part in an ESP selection.
type Mode uint8

const (
	// NoDH ignores DH transforms on both sides: a CHILD_SA created in
	// IKE_AUTH uses the IKE SA's keys (RFC 7296 §1.2; strongSwan strips the
	// groups there).
	NoDH Mode = iota
	// WithDH selects a DH group too: IKE SAs, and CREATE_CHILD_SA, where a
	// proposal of ours without groups matches only a peer offering none
	// (or NONE), and one with groups only a peer offering one of them.
	WithDH
)

// Select picks the first acceptable combination (see the package doc). The
// peer's proposals must be of the Kind's protocol; others are skipped.
func Select(ours []Proposal, peer []wire.Proposal, m Mode) (Chosen, bool) {
	for i := range ours {
		o := &ours[i]
		for j := range peer {
			if c, ok := match(o, &peer[j], m); ok {
				return c, true
			}
		}
	}
	return Chosen{}, false
}

func match(o *Proposal, p *wire.Proposal, m Mode) (Chosen, bool) {
	want := wire.ProtoIKE
	if o.Kind == ESP {
		want = wire.ProtoESP
	}
	if p.Protocol != want {
		return Chosen{}, false
	}
	c := Chosen{Kind: o.Kind, Number: p.Number, SPI: p.SPI}
	// Every transform type the peer sends must be matched (RFC 7296 §3.3.6:
	// "the responder MUST ... accept all transform types", choosing one of
	// each); types the peer leaves out we require only when mandatory.
	var has [6]bool
	for _, t := range p.Transforms {
		if int(t.Type) < len(has) {
			has[t.Type] = true
		} else {
			return Chosen{}, false // an unknown transform type: not acceptable
		}
	}
	found := false
	for _, e := range o.Encr {
		if p.Has(wire.Encr(e.ID, e.Bits)) {
			c.Encr, found = e, true
			break
		}
	}
	if !found {
		return Chosen{}, false
	}
	aead := c.Encr.ID.AEAD()
	if aead {
		// An AEAD cipher is acceptable only without integrity, or with NONE
		// offered (RFC 5282 §8).
		if has[wire.TransformINTEG] && !p.Has(wire.Integ(wire.AUTH_NONE)) {
			return Chosen{}, false
		}
	} else {
		found = false
		for _, i := range o.Integ {
			if p.Has(wire.Integ(i)) {
				c.Integ, found = i, true
				break
			}
		}
		if !found {
			return Chosen{}, false
		}
	}
	if o.Kind == IKE {
		found = false
		for _, f := range o.PRF {
			if p.Has(wire.PRF(f)) {
				c.PRF, found = f, true
				break
			}
		}
		if !found {
			return Chosen{}, false
		}
	} else if has[wire.TransformPRF] {
		return Chosen{}, false
	}
	if o.Kind == IKE || m == WithDH {
		ourDH := o.DH
		if len(ourDH) == 0 {
			ourDH = []wire.DHGroup{wire.DH_NONE}
		}
		found = false
		for _, g := range ourDH {
			if g == wire.DH_NONE && !has[wire.TransformDH] || p.Has(wire.DH(g)) {
				c.DH, found = g, true
				break
			}
		}
		if !found || (o.Kind == IKE && c.DH == wire.DH_NONE) {
			return Chosen{}, false
		}
	}
	if o.Kind == ESP {
		if has[wire.TransformESN] {
			found = false
			for _, e := range o.ESN {
				if p.Has(wire.ESNT(e)) {
					c.ESN, c.hasESN, found = e, true, true
					break
				}
			}
			if !found {
				return Chosen{}, false
			}
		} else if !contains(o.ESN, wire.NO_ESN) {
			return Chosen{}, false // we insist on ESN; the peer offers none
		}
	} else if has[wire.TransformESN] {
		return Chosen{}, false
	}
	return c, true
}

func contains[T comparable](l []T, v T) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// HasDH reports whether a DH group was selected (IKE, or ESP with PFS).
func (c Chosen) HasDH() bool { return c.DH != wire.DH_NONE }
