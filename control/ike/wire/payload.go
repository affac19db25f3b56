package wire

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
)

// Payload is one IKE payload: a typed struct below, or *Unknown. The generic
// payload header (RFC 7296 §3.2) is not part of the struct: Parse reads it,
// Append writes it (Next Payload from the following payload, C bit clear for
// every known type as §3.2 requires, Payload Length computed).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Payload interface {
	Type() PayloadType
	// AppendBody appends the payload body (everything after the generic
	// header) to dst.
	AppendBody(dst []byte) []byte
}

// KE is the Key Exchange payload (RFC 7296 §3.4).
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Diffie-Hellman Group Num    |           RESERVED            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       Key Exchange Data                       ~
type KE struct {
	Group DHGroup
	Data  []byte
}

func (*KE) Type() PayloadType { return PayloadKE }
func (p *KE) AppendBody(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(p.Group))
	return append(append(dst, 0, 0), p.Data...)
}

func parseKE(b []byte) (*KE, error) {
	if len(b) < 4 {
		return nil, syntaxErr("KE body of %d octets", len(b))
	}
	return &KE{Group: DHGroup(binary.BigEndian.Uint16(b)), Data: b[4:]}, nil
}

// ID is an IDi or IDr payload (RFC 7296 §3.5).
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   ID Type     |                 RESERVED                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                   Identification Data                         ~
type ID struct {
	Responder bool // IDr (36) rather than IDi (35)
	IDType    IDType
	Data      []byte
	wire      []byte // the body as received, for Body
}

func (p *ID) Type() PayloadType {
	if p.Responder {
		return PayloadIDr
	}
	return PayloadIDi
}

func (p *ID) AppendBody(dst []byte) []byte {
	return append(append(dst, byte(p.IDType), 0, 0, 0), p.Data...)
}

// Body is the ID payload body "from the first octet after the generic
// payload header" (IDType | RESERVED | Data), the RestOfInitIDPayload /
// RestOfRespIDPayload that RFC 7296 §2.15 feeds to prf(SK_pi/SK_pr, ...)
// for the AUTH payload. For a parsed ID it is the octets as received
// (RESERVED included, whatever the peer put there); otherwise the encoding.
func (p *ID) Body() []byte {
	if p.wire != nil {
		return p.wire
	}
	return p.AppendBody(nil)
}

func parseID(b []byte, responder bool) (*ID, error) {
	if len(b) < 4 {
		return nil, syntaxErr("ID body of %d octets", len(b))
	}
	p := &ID{Responder: responder, IDType: IDType(b[0]), Data: b[4:], wire: b}
	switch {
	case p.IDType == ID_IPV4_ADDR && len(p.Data) != 4, p.IDType == ID_IPV6_ADDR && len(p.Data) != 16:
		return nil, syntaxErr("%v of %d octets", p.IDType, len(p.Data))
	}
	return p, nil
}

// NewID builds an identity from strongSwan's notation (swanctl.conf "id"):
// an IPv4 or IPv6 address; "@#hex" for ID_KEY_ID with those octets (the
// seed's APs send "@#<AP MAC>"); "@name" for ID_FQDN; "user@domain" for
// ID_RFC822_ADDR; any other string without '=' for ID_FQDN. Distinguished
// names are not parsed here: build ID{IDType: ID_DER_ASN1_DN, Data: der}.
func NewID(s string, responder bool) (*ID, error) {
	id := &ID{Responder: responder}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		if a.Is4() {
			id.IDType, id.Data = ID_IPV4_ADDR, a.AsSlice()
		} else {
			id.IDType, id.Data = ID_IPV6_ADDR, a.AsSlice()
		}
		return id, nil
	}
	switch {
	case strings.HasPrefix(s, "@#"):
		d, err := hex.DecodeString(strings.ReplaceAll(s[2:], ":", ""))
		if err != nil {
			return nil, fmt.Errorf("ike: key id %q: %w", s, err)
		}
		id.IDType, id.Data = ID_KEY_ID, d
	case strings.HasPrefix(s, "@"):
		id.IDType, id.Data = ID_FQDN, []byte(s[1:])
	case strings.Contains(s, "@"):
		id.IDType, id.Data = ID_RFC822_ADDR, []byte(s)
	case s != "" && !strings.Contains(s, "="):
		id.IDType, id.Data = ID_FQDN, []byte(s)
	default:
		return nil, fmt.Errorf("ike: identity %q: distinguished names need DER", s)
	}
	return id, nil
}

// String prints the identity the way strongSwan does: addresses, names,
// "@#hex" for key IDs, the type and hex for the rest.
func (p *ID) String() string {
	switch p.IDType {
	case ID_IPV4_ADDR, ID_IPV6_ADDR:
		if a, ok := netip.AddrFromSlice(p.Data); ok {
			return a.String()
		}
	case ID_FQDN, ID_RFC822_ADDR:
		return string(p.Data)
	case ID_KEY_ID:
		return "@#" + hex.EncodeToString(p.Data)
	case ID_DER_ASN1_DN:
		if s, ok := dnString(p.Data); ok {
			return s
		}
	}
	return fmt.Sprintf("%v:%x", p.IDType, p.Data)
}

var dnShort = map[string]string{"2.5.4.3": "CN", "2.5.4.5": "serialNumber", "2.5.4.6": "C", "2.5.4.7": "L",
	"2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU", "1.2.840.113549.1.9.1": "E"}

// dnString prints a DER Distinguished Name in strongSwan's order and style:
// "C=CH, O=strongSwan, CN=moon".
func dnString(der []byte) (string, bool) {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(der, &rdns); err != nil || len(rest) != 0 {
		return "", false
	}
	var parts []string
	for _, set := range rdns {
		for _, a := range set {
			k, ok := dnShort[a.Type.String()]
			if !ok {
				k = a.Type.String()
			}
			parts = append(parts, fmt.Sprintf("%s=%v", k, a.Value))
		}
	}
	return strings.Join(parts, ", "), true
}

// CERT is the Certificate payload (RFC 7296 §3.6).
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Cert Encoding |                                               |
//	+-+-+-+-+-+-+-+-+                                               |
//	~                       Certificate Data                        ~
type CERT struct {
	Encoding CertEncoding
	Data     []byte // a DER certificate for CertX509Signature
}

func (*CERT) Type() PayloadType              { return PayloadCERT }
func (p *CERT) AppendBody(dst []byte) []byte { return append(append(dst, byte(p.Encoding)), p.Data...) }

// CERTREQ is the Certificate Request payload (RFC 7296 §3.7).
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Cert Encoding |                                               |
//	+-+-+-+-+-+-+-+-+                                               |
//	~                    Certification Authority                    ~
type CERTREQ struct {
	Encoding  CertEncoding
	Authority []byte
}

func (*CERTREQ) Type() PayloadType { return PayloadCERTREQ }
func (p *CERTREQ) AppendBody(dst []byte) []byte {
	return append(append(dst, byte(p.Encoding)), p.Authority...)
}

// Authorities splits an X.509 request's Certification Authority field into
// its SHA-1 hashes of trusted CA public keys (RFC 7296 §3.7: "a concatenated
// list of SHA-1 hashes of the public keys of trusted CAs"). It returns nil if
// the length is not a multiple of 20.
func (p *CERTREQ) Authorities() [][]byte {
	if len(p.Authority)%20 != 0 {
		return nil
	}
	var out [][]byte
	for b := p.Authority; len(b) > 0; b = b[20:] {
		out = append(out, b[:20])
	}
	return out
}

// AUTH is the Authentication payload (RFC 7296 §3.8).
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Auth Method   |                RESERVED                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                      Authentication Data                      ~
//
// With AuthDigitalSignature (RFC 7427 §3) the Authentication Data is
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| ASN.1 Length  | AlgorithmIdentifier ASN.1 object              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~         AlgorithmIdentifier ASN.1 object continuing           ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                         Signature Value                       ~
//
// which Data carries unchanged; Signature and NewSignatureAuth split and
// join it.
type AUTH struct {
	Method AuthMethod
	Data   []byte
}

func (*AUTH) Type() PayloadType { return PayloadAUTH }
func (p *AUTH) AppendBody(dst []byte) []byte {
	return append(append(dst, byte(p.Method), 0, 0, 0), p.Data...)
}

// Signature splits RFC 7427 Authentication Data into the DER
// AlgorithmIdentifier (without its one-octet length prefix) and the
// signature value. ok is false if Method is not AuthDigitalSignature or the
// length prefix runs past the data.
func (p *AUTH) Signature() (algID, sig []byte, ok bool) {
	if p.Method != AuthDigitalSignature || len(p.Data) < 1 || int(p.Data[0]) > len(p.Data)-1 {
		return nil, nil, false
	}
	n := int(p.Data[0])
	return p.Data[1 : 1+n], p.Data[1+n:], true
}

// NewSignatureAuth builds an RFC 7427 AUTH payload from a DER
// AlgorithmIdentifier (at most 255 octets) and a signature value.
func NewSignatureAuth(algID, sig []byte) *AUTH {
	if len(algID) > 255 {
		panic("ike: AlgorithmIdentifier longer than 255 octets")
	}
	d := make([]byte, 0, 1+len(algID)+len(sig))
	d = append(append(append(d, byte(len(algID))), algID...), sig...)
	return &AUTH{Method: AuthDigitalSignature, Data: d}
}

func parseAUTH(b []byte) (*AUTH, error) {
	if len(b) < 4 {
		return nil, syntaxErr("AUTH body of %d octets", len(b))
	}
	return &AUTH{Method: AuthMethod(b[0]), Data: b[4:]}, nil
}

// Nonce is the Nonce payload, Ni or Nr (RFC 7296 §3.9). Its data MUST be
// 16 to 256 octets; Parse enforces that.
type Nonce struct{ Data []byte }

func (*Nonce) Type() PayloadType              { return PayloadNonce }
func (p *Nonce) AppendBody(dst []byte) []byte { return append(dst, p.Data...) }

// Nonce length bounds (RFC 7296 §3.9: "between 16 and 256 octets, inclusive").
const (
	MinNonceLen = 16
	MaxNonceLen = 256
)

// Notify is the Notify payload (RFC 7296 §3.10).
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Protocol ID  |   SPI Size    |      Notify Message Type      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                Security Parameter Index (SPI)                 ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       Notification Data                       ~
//
// SPI Size is len(SPI). Protocol is zero and SPI empty for notifications
// about the IKE SA; REKEY_SA, CHILD_SA_NOT_FOUND and INVALID_SELECTORS carry
// ESP/AH and the 4-octet SPI.
type Notify struct {
	Protocol   ProtocolID
	SPI        []byte
	NotifyType NotifyType
	Data       []byte
}

func (*Notify) Type() PayloadType { return PayloadNotify }
func (p *Notify) AppendBody(dst []byte) []byte {
	if len(p.SPI) > 255 {
		panic("ike: Notify SPI longer than 255 octets")
	}
	dst = append(dst, byte(p.Protocol), byte(len(p.SPI)))
	dst = binary.BigEndian.AppendUint16(dst, uint16(p.NotifyType))
	return append(append(dst, p.SPI...), p.Data...)
}

func parseNotify(b []byte) (*Notify, error) {
	if len(b) < 4 || len(b) < 4+int(b[1]) {
		return nil, syntaxErr("Notify body of %d octets", len(b))
	}
	n := 4 + int(b[1])
	return &Notify{Protocol: ProtocolID(b[0]), NotifyType: NotifyType(binary.BigEndian.Uint16(b[2:])), SPI: b[4:n], Data: b[n:]}, nil
}

// NewNotify is a Notify about the IKE SA (no protocol, no SPI).
func NewNotify(t NotifyType, data []byte) *Notify { return &Notify{NotifyType: t, Data: data} }

// NewInvalidKE is INVALID_KE_PAYLOAD naming the group the responder wants
// (RFC 7296 §3.10.1: "two-octet ... DH Group # in big endian order").
func NewInvalidKE(g DHGroup) *Notify {
	return NewNotify(INVALID_KE_PAYLOAD, binary.BigEndian.AppendUint16(nil, uint16(g)))
}

// Group reads the DH group of an INVALID_KE_PAYLOAD notify.
func (p *Notify) Group() (DHGroup, bool) {
	if p.NotifyType != INVALID_KE_PAYLOAD || len(p.Data) != 2 {
		return 0, false
	}
	return DHGroup(binary.BigEndian.Uint16(p.Data)), true
}

// NewSignatureHashAlgorithms is the SIGNATURE_HASH_ALGORITHMS notify (RFC
// 7427 §4: a list of 16-bit hash algorithm identifiers).
func NewSignatureHashAlgorithms(algs ...HashAlgorithm) *Notify {
	d := make([]byte, 0, 2*len(algs))
	for _, a := range algs {
		d = binary.BigEndian.AppendUint16(d, uint16(a))
	}
	return NewNotify(SIGNATURE_HASH_ALGORITHMS, d)
}

// HashAlgorithms reads a SIGNATURE_HASH_ALGORITHMS notify; ok is false for
// another type or an odd length.
func (p *Notify) HashAlgorithms() (algs []HashAlgorithm, ok bool) {
	if p.NotifyType != SIGNATURE_HASH_ALGORITHMS || len(p.Data)%2 != 0 {
		return nil, false
	}
	for d := p.Data; len(d) > 0; d = d[2:] {
		algs = append(algs, HashAlgorithm(binary.BigEndian.Uint16(d)))
	}
	return algs, true
}

// ESPSPI reads the 4-octet SPI of an ESP/AH notify (REKEY_SA,
// CHILD_SA_NOT_FOUND, INVALID_SELECTORS).
func (p *Notify) ESPSPI() (uint32, bool) {
	if len(p.SPI) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(p.SPI), true
}

// Delete is the Delete payload (RFC 7296 §3.11).
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Protocol ID   |   SPI Size    |          Num of SPIs          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~               Security Parameter Index(es) (SPI)              ~
//
// Deleting the IKE SA is Protocol ProtoIKE with no SPIs; ESP and AH list
// 4-octet SPIs.
type Delete struct {
	Protocol ProtocolID
	SPISize  uint8
	SPIs     [][]byte // each SPISize octets
}

func (*Delete) Type() PayloadType { return PayloadDelete }
func (p *Delete) AppendBody(dst []byte) []byte {
	dst = append(dst, byte(p.Protocol), p.SPISize)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(p.SPIs)))
	for _, s := range p.SPIs {
		if len(s) != int(p.SPISize) {
			panic("ike: Delete SPI length differs from SPISize")
		}
		dst = append(dst, s...)
	}
	return dst
}

// NewDeleteESP deletes ESP SAs by their inbound SPIs (RFC 7296 §3.11: the
// SPI the sending endpoint expects in inbound packets).
func NewDeleteESP(spis ...uint32) *Delete {
	d := &Delete{Protocol: ProtoESP, SPISize: 4}
	for _, s := range spis {
		d.SPIs = append(d.SPIs, binary.BigEndian.AppendUint32(nil, s))
	}
	return d
}

func parseDelete(b []byte) (*Delete, error) {
	if len(b) < 4 {
		return nil, syntaxErr("Delete body of %d octets", len(b))
	}
	p := &Delete{Protocol: ProtocolID(b[0]), SPISize: b[1]}
	n, size := int(binary.BigEndian.Uint16(b[2:])), int(b[1])
	if len(b)-4 != n*size {
		return nil, syntaxErr("Delete with %d SPIs of %d octets in %d octets", n, size, len(b)-4)
	}
	if size == 0 && n > 0 {
		return nil, syntaxErr("Delete with %d empty SPIs", n)
	}
	if n > 0 {
		p.SPIs = make([][]byte, n)
		for i := range p.SPIs {
			p.SPIs[i] = b[4+i*size : 4+(i+1)*size]
		}
	}
	return p, nil
}

// VendorID is the Vendor ID payload (RFC 7296 §3.12).
type VendorID struct{ Data []byte }

func (*VendorID) Type() PayloadType              { return PayloadVendorID }
func (p *VendorID) AppendBody(dst []byte) []byte { return append(dst, p.Data...) }

// Encrypted is the Encrypted and Authenticated payload SK (RFC 7296 §3.14).
// It is always the last payload; its generic header's Next Payload is the
// type of the first payload inside.
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Initialization Vector                     |
//	|         (length is block size for encryption algorithm)       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Encrypted IKE Payloads                     ~
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               |             Padding (0-255 octets)            |
//	+-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
//	|                                               |  Pad Length   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Integrity Checksum Data                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Encrypted struct {
	Next PayloadType // first inner payload
	Data []byte      // IV | encrypted payloads, padding, pad length | ICV
}

func (*Encrypted) Type() PayloadType              { return PayloadSK }
func (p *Encrypted) AppendBody(dst []byte) []byte { return append(dst, p.Data...) }

// Split cuts Data into IV, ciphertext and ICV for an algorithm with the
// given IV and ICV lengths; ok is false if Data is too short.
func (p *Encrypted) Split(ivLen, icvLen int) (iv, ct, icv []byte, ok bool) {
	return splitSK(p.Data, ivLen, icvLen)
}

// EncryptedFragment is the Encrypted and Authenticated Fragment payload SKF
// (RFC 7383 §2.5). Next is the first inner payload type in fragment 1 and
// zero in the others.
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        Fragment Number        |        Total Fragments        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Initialization Vector                     |
//	~                      Encrypted content                        ~
//	~                    Integrity Checksum Data                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type EncryptedFragment struct {
	Next   PayloadType
	Number uint16 // 1..Total
	Total  uint16 // >= 1
	Data   []byte // IV | encrypted content | ICV
}

func (*EncryptedFragment) Type() PayloadType { return PayloadSKF }
func (p *EncryptedFragment) AppendBody(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, p.Number)
	dst = binary.BigEndian.AppendUint16(dst, p.Total)
	return append(dst, p.Data...)
}

// Split cuts Data like Encrypted.Split.
func (p *EncryptedFragment) Split(ivLen, icvLen int) (iv, ct, icv []byte, ok bool) {
	return splitSK(p.Data, ivLen, icvLen)
}

func splitSK(d []byte, ivLen, icvLen int) (iv, ct, icv []byte, ok bool) {
	if ivLen < 0 || icvLen < 0 || len(d) < ivLen+icvLen {
		return nil, nil, nil, false
	}
	return d[:ivLen], d[ivLen : len(d)-icvLen], d[len(d)-icvLen:], true
}

func parseSKF(b []byte) (*EncryptedFragment, error) {
	if len(b) < 4 {
		return nil, syntaxErr("SKF body of %d octets", len(b))
	}
	p := &EncryptedFragment{Number: binary.BigEndian.Uint16(b), Total: binary.BigEndian.Uint16(b[2:]), Data: b[4:]}
	// RFC 7383 §2.5: neither field is zero, Number <= Total.
	if p.Number == 0 || p.Total == 0 || p.Number > p.Total {
		return nil, syntaxErr("SKF fragment %d of %d", p.Number, p.Total)
	}
	return p, nil
}

// Config is the Configuration payload CP (RFC 7296 §3.15); attributes are
// kept as type and raw value.
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   CFG Type    |                    RESERVED                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                   Configuration Attributes                    ~
//
// each attribute (§3.15.1):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|         Attribute Type      |            Length             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                             Value                             ~
type Config struct {
	CFGType    CFGType
	Attributes []ConfigAttribute
}

// ConfigAttribute is one configuration attribute; Type excludes the R bit.
type ConfigAttribute struct {
	Type  uint16
	Value []byte
}

func (*Config) Type() PayloadType { return PayloadCP }
func (p *Config) AppendBody(dst []byte) []byte {
	dst = append(dst, byte(p.CFGType), 0, 0, 0)
	for _, a := range p.Attributes {
		dst = binary.BigEndian.AppendUint16(dst, a.Type&0x7fff)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(a.Value)))
		dst = append(dst, a.Value...)
	}
	return dst
}

func parseConfig(b []byte) (*Config, error) {
	if len(b) < 4 {
		return nil, syntaxErr("CP body of %d octets", len(b))
	}
	p := &Config{CFGType: CFGType(b[0])}
	for b = b[4:]; len(b) > 0; {
		if len(b) < 4 {
			return nil, syntaxErr("CP attribute header of %d octets", len(b))
		}
		n := int(binary.BigEndian.Uint16(b[2:]))
		if len(b)-4 < n {
			return nil, syntaxErr("CP attribute of %d octets in %d", n, len(b)-4)
		}
		p.Attributes = append(p.Attributes, ConfigAttribute{Type: binary.BigEndian.Uint16(b) & 0x7fff, Value: b[4 : 4+n]})
		b = b[4+n:]
	}
	return p, nil
}

// EAP is the Extensible Authentication payload (RFC 7296 §3.16); Data is the
// EAP message (RFC 3748), kept raw.
type EAP struct{ Data []byte }

func (*EAP) Type() PayloadType              { return PayloadEAP }
func (p *EAP) AppendBody(dst []byte) []byte { return append(dst, p.Data...) }

// Unknown is a payload of a type this package does not know, kept so the
// message round-trips (RFC 7296 §2.5: skipped when not critical).
type Unknown struct {
	PayloadType PayloadType
	Critical    bool
	Body        []byte
}

func (p *Unknown) Type() PayloadType            { return p.PayloadType }
func (p *Unknown) AppendBody(dst []byte) []byte { return append(dst, p.Body...) }
