package wire

import "strconv"

// Numbers on the wire. Each block names the RFC section (or the IANA "IKEv2
// Parameters" registry entry, which cites the RFC in brackets) that assigns
// it; consts_test.go checks every value against the value strings of
// Wireshark's independent isakmp dissector (tshark -G values).

// ExchangeType is the Exchange Type of the IKE header (RFC 7296 §3.1).
type ExchangeType uint8

const (
	IKE_SA_INIT     ExchangeType = 34 // RFC 7296 §3.1
	IKE_AUTH        ExchangeType = 35 // RFC 7296 §3.1
	CREATE_CHILD_SA ExchangeType = 36 // RFC 7296 §3.1
	INFORMATIONAL   ExchangeType = 37 // RFC 7296 §3.1
)

var exchangeNames = map[ExchangeType]string{
	IKE_SA_INIT: "IKE_SA_INIT", IKE_AUTH: "IKE_AUTH",
	CREATE_CHILD_SA: "CREATE_CHILD_SA", INFORMATIONAL: "INFORMATIONAL",
}

func (e ExchangeType) String() string { return name(exchangeNames, e) }

// Flags is the Flags octet of the IKE header (RFC 7296 §3.1):
//
//	+-+-+-+-+-+-+-+-+
//	|X|X|R|V|I|X|X|X|
//	+-+-+-+-+-+-+-+-+
//
// X bits MUST be sent as zero and ignored on receipt.
type Flags uint8

const (
	FlagResponse  Flags = 0x20 // R: this message is a response
	FlagVersion   Flags = 0x10 // V: sender could speak a higher major version
	FlagInitiator Flags = 0x08 // I: sent by the original initiator of the IKE SA
)

// Version2 is MjVer 2, MnVer 0 (RFC 7296 §3.1: "MUST set the Major Version
// to 2"; §2.5: minor version sent as zero, ignored on receipt).
const Version2 = 0x20

// PayloadType is a Next Payload value (RFC 7296 §3.2, IANA "IKEv2 Payload
// Types").
type PayloadType uint8

const (
	PayloadNone     PayloadType = 0  // No Next Payload, RFC 7296 §3.2
	PayloadSA       PayloadType = 33 // Security Association, §3.3
	PayloadKE       PayloadType = 34 // Key Exchange, §3.4
	PayloadIDi      PayloadType = 35 // Identification - Initiator, §3.5
	PayloadIDr      PayloadType = 36 // Identification - Responder, §3.5
	PayloadCERT     PayloadType = 37 // Certificate, §3.6
	PayloadCERTREQ  PayloadType = 38 // Certificate Request, §3.7
	PayloadAUTH     PayloadType = 39 // Authentication, §3.8
	PayloadNonce    PayloadType = 40 // Nonce (Ni, Nr), §3.9
	PayloadNotify   PayloadType = 41 // Notify, §3.10
	PayloadDelete   PayloadType = 42 // Delete, §3.11
	PayloadVendorID PayloadType = 43 // Vendor ID, §3.12
	PayloadTSi      PayloadType = 44 // Traffic Selector - Initiator, §3.13
	PayloadTSr      PayloadType = 45 // Traffic Selector - Responder, §3.13
	PayloadSK       PayloadType = 46 // Encrypted and Authenticated, §3.14
	PayloadCP       PayloadType = 47 // Configuration, §3.15
	PayloadEAP      PayloadType = 48 // Extensible Authentication, §3.16
	PayloadSKF      PayloadType = 53 // Encrypted and Authenticated Fragment, RFC 7383 §2.5
)

// Short names as strongSwan's payload_type_short_names prints them.
var payloadShort = map[PayloadType]string{
	PayloadNone: "--", PayloadSA: "SA", PayloadKE: "KE", PayloadIDi: "IDi", PayloadIDr: "IDr",
	PayloadCERT: "CERT", PayloadCERTREQ: "CERTREQ", PayloadAUTH: "AUTH", PayloadNonce: "No",
	PayloadNotify: "N", PayloadDelete: "D", PayloadVendorID: "V", PayloadTSi: "TSi",
	PayloadTSr: "TSr", PayloadSK: "E", PayloadCP: "CP", PayloadEAP: "EAP", PayloadSKF: "EF",
}

func (t PayloadType) String() string {
	if s, ok := payloadShort[t]; ok {
		return s
	}
	return "UNKN(" + strconv.Itoa(int(t)) + ")"
}

// known reports whether t is a payload this package parses; anything else is
// subject to the critical bit (RFC 7296 §2.5).
func (t PayloadType) known() bool {
	return t >= PayloadSA && t <= PayloadEAP || t == PayloadSKF
}

// ProtocolID is the IPsec protocol of a proposal, Notify or Delete (RFC 7296
// §3.3.1, IANA "IKEv2 Security Protocol Identifiers").
type ProtocolID uint8

const (
	ProtoNone ProtocolID = 0 // Notify about the IKE SA itself (§3.10)
	ProtoIKE  ProtocolID = 1
	ProtoAH   ProtocolID = 2
	ProtoESP  ProtocolID = 3
)

var protoNames = map[ProtocolID]string{ProtoNone: "NONE", ProtoIKE: "IKE", ProtoAH: "AH", ProtoESP: "ESP"}

func (p ProtocolID) String() string { return name(protoNames, p) }

// TransformType is the Transform Type of a transform substructure (RFC 7296
// §3.3.2 "Transform Type Values").
type TransformType uint8

const (
	TransformENCR  TransformType = 1 // Encryption Algorithm; IKE and ESP
	TransformPRF   TransformType = 2 // Pseudorandom Function; IKE
	TransformINTEG TransformType = 3 // Integrity Algorithm; IKE, AH, optional in ESP
	TransformDH    TransformType = 4 // Diffie-Hellman group; IKE, optional in AH and ESP
	TransformESN   TransformType = 5 // Extended Sequence Numbers; AH and ESP
)

var transformTypeNames = map[TransformType]string{
	TransformENCR: "ENCR", TransformPRF: "PRF", TransformINTEG: "INTEG", TransformDH: "DH", TransformESN: "ESN",
}

func (t TransformType) String() string { return name(transformTypeNames, t) }

// EncrID is a Transform Type 1 ID (RFC 7296 §3.3.2; IANA "Transform Type 1 -
// Encryption Algorithm Transform IDs").
type EncrID uint16

const (
	ENCR_DES_IV64          EncrID = 1  // RFC 7296 §3.3.2 (UNSPECIFIED)
	ENCR_DES               EncrID = 2  // RFC 7296 §3.3.2 [RFC 2405]
	ENCR_3DES              EncrID = 3  // RFC 7296 §3.3.2 [RFC 2451]
	ENCR_RC5               EncrID = 4  // RFC 7296 §3.3.2 [RFC 2451]
	ENCR_IDEA              EncrID = 5  // RFC 7296 §3.3.2 [RFC 2451]
	ENCR_CAST              EncrID = 6  // RFC 7296 §3.3.2 [RFC 2451]
	ENCR_BLOWFISH          EncrID = 7  // RFC 7296 §3.3.2 [RFC 2451]
	ENCR_3IDEA             EncrID = 8  // RFC 7296 §3.3.2 (UNSPECIFIED)
	ENCR_DES_IV32          EncrID = 9  // RFC 7296 §3.3.2 (UNSPECIFIED)
	ENCR_NULL              EncrID = 11 // RFC 7296 §3.3.2 [RFC 2410], ESP only
	ENCR_AES_CBC           EncrID = 12 // RFC 7296 §3.3.2 [RFC 3602]
	ENCR_AES_CTR           EncrID = 13 // RFC 7296 §3.3.2 [RFC 3686]; IKE use RFC 5930
	ENCR_AES_CCM_8         EncrID = 14 // IANA [RFC 4309], IKE use RFC 5282
	ENCR_AES_CCM_12        EncrID = 15 // IANA [RFC 4309]
	ENCR_AES_CCM_16        EncrID = 16 // IANA [RFC 4309]
	ENCR_AES_GCM_8         EncrID = 18 // IANA [RFC 4106], IKE use RFC 5282
	ENCR_AES_GCM_12        EncrID = 19 // IANA [RFC 4106]
	ENCR_AES_GCM_16        EncrID = 20 // IANA [RFC 4106]; strongSwan "aesXXXgcm16"
	ENCR_NULL_AUTH_GMAC    EncrID = 21 // IANA [RFC 4543], ESP only
	ENCR_CAMELLIA_CBC      EncrID = 23 // IANA [RFC 5529]
	ENCR_CAMELLIA_CTR      EncrID = 24 // IANA [RFC 5529]
	ENCR_CHACHA20_POLY1305 EncrID = 28 // IANA [RFC 7634]
)

var encrNames = map[EncrID]string{
	ENCR_DES_IV64: "DES_IV64", ENCR_DES: "DES_CBC", ENCR_3DES: "3DES_CBC", ENCR_RC5: "RC5_CBC",
	ENCR_IDEA: "IDEA_CBC", ENCR_CAST: "CAST_CBC", ENCR_BLOWFISH: "BLOWFISH_CBC", ENCR_3IDEA: "3IDEA",
	ENCR_DES_IV32: "DES_IV32", ENCR_NULL: "NULL", ENCR_AES_CBC: "AES_CBC", ENCR_AES_CTR: "AES_CTR",
	ENCR_AES_CCM_8: "AES_CCM_8", ENCR_AES_CCM_12: "AES_CCM_12", ENCR_AES_CCM_16: "AES_CCM_16",
	ENCR_AES_GCM_8: "AES_GCM_8", ENCR_AES_GCM_12: "AES_GCM_12", ENCR_AES_GCM_16: "AES_GCM_16",
	ENCR_NULL_AUTH_GMAC: "NULL_AES_GMAC", ENCR_CAMELLIA_CBC: "CAMELLIA_CBC", ENCR_CAMELLIA_CTR: "CAMELLIA_CTR",
	ENCR_CHACHA20_POLY1305: "CHACHA20_POLY1305",
}

// String is strongSwan's algorithm name (encryption_algorithm_names).
func (e EncrID) String() string { return name(encrNames, e) }

// AEAD reports whether e is a combined-mode cipher, which a proposal carries
// without an INTEG transform (RFC 7296 §3.3).
func (e EncrID) AEAD() bool {
	switch e {
	case ENCR_AES_CCM_8, ENCR_AES_CCM_12, ENCR_AES_CCM_16, ENCR_AES_GCM_8, ENCR_AES_GCM_12,
		ENCR_AES_GCM_16, ENCR_NULL_AUTH_GMAC, ENCR_CHACHA20_POLY1305:
		return true
	}
	return false
}

// PRFID is a Transform Type 2 ID (RFC 7296 §3.3.2; IANA "Transform Type 2 -
// Pseudorandom Function Transform IDs").
type PRFID uint16

const (
	PRF_HMAC_MD5      PRFID = 1 // RFC 7296 §3.3.2 [RFC 2104]
	PRF_HMAC_SHA1     PRFID = 2 // RFC 7296 §3.3.2 [RFC 2104]
	PRF_HMAC_TIGER    PRFID = 3 // RFC 7296 §3.3.2 (UNSPECIFIED)
	PRF_AES128_XCBC   PRFID = 4 // IANA [RFC 4434]
	PRF_HMAC_SHA2_256 PRFID = 5 // IANA [RFC 4868]
	PRF_HMAC_SHA2_384 PRFID = 6 // IANA [RFC 4868]
	PRF_HMAC_SHA2_512 PRFID = 7 // IANA [RFC 4868]
	PRF_AES128_CMAC   PRFID = 8 // IANA [RFC 4615]
)

var prfNames = map[PRFID]string{
	PRF_HMAC_MD5: "PRF_HMAC_MD5", PRF_HMAC_SHA1: "PRF_HMAC_SHA1", PRF_HMAC_TIGER: "PRF_HMAC_TIGER",
	PRF_AES128_XCBC: "PRF_AES128_XCBC", PRF_HMAC_SHA2_256: "PRF_HMAC_SHA2_256",
	PRF_HMAC_SHA2_384: "PRF_HMAC_SHA2_384", PRF_HMAC_SHA2_512: "PRF_HMAC_SHA2_512",
	PRF_AES128_CMAC: "PRF_AES128_CMAC",
}

func (p PRFID) String() string { return name(prfNames, p) }

// IntegID is a Transform Type 3 ID (RFC 7296 §3.3.2; IANA "Transform Type 3 -
// Integrity Algorithm Transform IDs").
type IntegID uint16

const (
	AUTH_NONE              IntegID = 0  // RFC 7296 §3.3.2
	AUTH_HMAC_MD5_96       IntegID = 1  // RFC 7296 §3.3.2 [RFC 2403]
	AUTH_HMAC_SHA1_96      IntegID = 2  // RFC 7296 §3.3.2 [RFC 2404]
	AUTH_DES_MAC           IntegID = 3  // RFC 7296 §3.3.2 (UNSPECIFIED)
	AUTH_KPDK_MD5          IntegID = 4  // RFC 7296 §3.3.2 (UNSPECIFIED)
	AUTH_AES_XCBC_96       IntegID = 5  // RFC 7296 §3.3.2 [RFC 3566]
	AUTH_HMAC_MD5_128      IntegID = 6  // IANA [RFC 4595]
	AUTH_HMAC_SHA1_160     IntegID = 7  // IANA [RFC 4595]
	AUTH_AES_CMAC_96       IntegID = 8  // IANA [RFC 4494]
	AUTH_AES_128_GMAC      IntegID = 9  // IANA [RFC 4543]
	AUTH_AES_192_GMAC      IntegID = 10 // IANA [RFC 4543]
	AUTH_AES_256_GMAC      IntegID = 11 // IANA [RFC 4543]
	AUTH_HMAC_SHA2_256_128 IntegID = 12 // IANA [RFC 4868]
	AUTH_HMAC_SHA2_384_192 IntegID = 13 // IANA [RFC 4868]
	AUTH_HMAC_SHA2_512_256 IntegID = 14 // IANA [RFC 4868]
)

var integNames = map[IntegID]string{
	AUTH_NONE: "NONE", AUTH_HMAC_MD5_96: "HMAC_MD5_96", AUTH_HMAC_SHA1_96: "HMAC_SHA1_96",
	AUTH_DES_MAC: "DES_MAC", AUTH_KPDK_MD5: "KPDK_MD5", AUTH_AES_XCBC_96: "AES_XCBC_96",
	AUTH_HMAC_MD5_128: "HMAC_MD5_128", AUTH_HMAC_SHA1_160: "HMAC_SHA1_160", AUTH_AES_CMAC_96: "AES_CMAC_96",
	AUTH_AES_128_GMAC: "AES_128_GMAC", AUTH_AES_192_GMAC: "AES_192_GMAC", AUTH_AES_256_GMAC: "AES_256_GMAC",
	AUTH_HMAC_SHA2_256_128: "HMAC_SHA2_256_128", AUTH_HMAC_SHA2_384_192: "HMAC_SHA2_384_192",
	AUTH_HMAC_SHA2_512_256: "HMAC_SHA2_512_256",
}

func (i IntegID) String() string { return name(integNames, i) }

// DHGroup is a Transform Type 4 ID (RFC 7296 §3.3.2; IANA "Transform Type 4 -
// Key Exchange Method Transform IDs"), also the group of a KE payload.
type DHGroup uint16

const (
	DH_NONE       DHGroup = 0  // RFC 7296 §3.3.2
	MODP_768      DHGroup = 1  // RFC 7296 §3.3.2, Appendix B.1
	MODP_1024     DHGroup = 2  // RFC 7296 §3.3.2, Appendix B.2
	MODP_1536     DHGroup = 5  // RFC 7296 §3.3.2 [RFC 3526]
	MODP_2048     DHGroup = 14 // RFC 7296 §3.3.2 [RFC 3526]; strongSwan "modp2048"
	MODP_3072     DHGroup = 15 // RFC 7296 §3.3.2 [RFC 3526]
	MODP_4096     DHGroup = 16 // RFC 7296 §3.3.2 [RFC 3526]
	MODP_6144     DHGroup = 17 // RFC 7296 §3.3.2 [RFC 3526]
	MODP_8192     DHGroup = 18 // RFC 7296 §3.3.2 [RFC 3526]
	ECP_256       DHGroup = 19 // IANA [RFC 5903]; strongSwan "ecp256"
	ECP_384       DHGroup = 20 // IANA [RFC 5903]; strongSwan "ecp384"
	ECP_521       DHGroup = 21 // IANA [RFC 5903]; strongSwan "ecp521"
	MODP_1024_160 DHGroup = 22 // IANA [RFC 5114]
	MODP_2048_224 DHGroup = 23 // IANA [RFC 5114]
	MODP_2048_256 DHGroup = 24 // IANA [RFC 5114]
	ECP_192       DHGroup = 25 // IANA [RFC 5114]
	ECP_224       DHGroup = 26 // IANA [RFC 5114]
	ECP_224_BP    DHGroup = 27 // IANA [RFC 6954]
	ECP_256_BP    DHGroup = 28 // IANA [RFC 6954]
	ECP_384_BP    DHGroup = 29 // IANA [RFC 6954]
	ECP_512_BP    DHGroup = 30 // IANA [RFC 6954]
	CURVE_25519   DHGroup = 31 // IANA [RFC 8031]; strongSwan "curve25519"
	CURVE_448     DHGroup = 32 // IANA [RFC 8031]
)

var dhNames = map[DHGroup]string{
	DH_NONE: "NONE", MODP_768: "MODP_768", MODP_1024: "MODP_1024", MODP_1536: "MODP_1536",
	MODP_2048: "MODP_2048", MODP_3072: "MODP_3072", MODP_4096: "MODP_4096", MODP_6144: "MODP_6144",
	MODP_8192: "MODP_8192", ECP_256: "ECP_256", ECP_384: "ECP_384", ECP_521: "ECP_521",
	MODP_1024_160: "MODP_1024_160", MODP_2048_224: "MODP_2048_224", MODP_2048_256: "MODP_2048_256",
	ECP_192: "ECP_192", ECP_224: "ECP_224", ECP_224_BP: "ECP_224_BP", ECP_256_BP: "ECP_256_BP",
	ECP_384_BP: "ECP_384_BP", ECP_512_BP: "ECP_512_BP", CURVE_25519: "CURVE_25519", CURVE_448: "CURVE_448",
}

func (g DHGroup) String() string { return name(dhNames, g) }

// ESNID is a Transform Type 5 ID (RFC 7296 §3.3.2).
type ESNID uint16

const (
	NO_ESN ESNID = 0 // No Extended Sequence Numbers
	ESN    ESNID = 1 // Extended Sequence Numbers
)

var esnNames = map[ESNID]string{NO_ESN: "NO_EXT_SEQ", ESN: "EXT_SEQ"}

func (e ESNID) String() string { return name(esnNames, e) }

// AttrKeyLength is the only transform attribute IKEv2 defines: Key Length in
// bits, TV format (RFC 7296 §3.3.5, "Key Length (in bits) | 14 | TV").
const AttrKeyLength = 14

// IDType is the ID Type of an IDi/IDr payload (RFC 7296 §3.5).
type IDType uint8

const (
	ID_IPV4_ADDR   IDType = 1  // a single four-octet IPv4 address
	ID_FQDN        IDType = 2  // a fully-qualified domain name string
	ID_RFC822_ADDR IDType = 3  // an email address string
	ID_IPV6_ADDR   IDType = 5  // a single sixteen-octet IPv6 address
	ID_DER_ASN1_DN IDType = 9  // DER encoding of an ASN.1 X.500 Distinguished Name
	ID_DER_ASN1_GN IDType = 10 // DER encoding of an ASN.1 X.509 GeneralName
	ID_KEY_ID      IDType = 11 // an opaque octet stream
)

var idNames = map[IDType]string{
	ID_IPV4_ADDR: "ID_IPV4_ADDR", ID_FQDN: "ID_FQDN", ID_RFC822_ADDR: "ID_RFC822_ADDR",
	ID_IPV6_ADDR: "ID_IPV6_ADDR", ID_DER_ASN1_DN: "ID_DER_ASN1_DN", ID_DER_ASN1_GN: "ID_DER_ASN1_GN",
	ID_KEY_ID: "ID_KEY_ID",
}

func (t IDType) String() string { return name(idNames, t) }

// CertEncoding is the Cert Encoding of CERT and CERTREQ payloads (RFC 7296
// §3.6).
type CertEncoding uint8

const (
	CertPKCS7          CertEncoding = 1  // PKCS #7 wrapped X.509 certificate
	CertPGP            CertEncoding = 2  // PGP Certificate
	CertDNSKey         CertEncoding = 3  // DNS Signed Key
	CertX509Signature  CertEncoding = 4  // X.509 Certificate - Signature
	CertKerberos       CertEncoding = 6  // Kerberos Token
	CertCRL            CertEncoding = 7  // Certificate Revocation List (CRL)
	CertARL            CertEncoding = 8  // Authority Revocation List (ARL)
	CertSPKI           CertEncoding = 9  // SPKI Certificate
	CertX509Attribute  CertEncoding = 10 // X.509 Certificate - Attribute
	CertRawRSAKey      CertEncoding = 11 // Raw RSA Key (deprecated by RFC 7296)
	CertHashURLX509    CertEncoding = 12 // Hash and URL of X.509 certificate
	CertHashURLX509Bdl CertEncoding = 13 // Hash and URL of X.509 bundle
)

// AuthMethod is the Auth Method of an AUTH payload (RFC 7296 §3.8, IANA
// "IKEv2 Authentication Method").
type AuthMethod uint8

const (
	AuthRSASignature     AuthMethod = 1  // RFC 7296 §3.8: RSA Digital Signature (PKCS#1 v1.5, SHA-1)
	AuthSharedKeyMIC     AuthMethod = 2  // RFC 7296 §3.8: Shared Key Message Integrity Code (PSK)
	AuthDSSSignature     AuthMethod = 3  // RFC 7296 §3.8: DSS Digital Signature
	AuthECDSA256         AuthMethod = 9  // IANA [RFC 4754]: ECDSA with SHA-256 on the P-256 curve
	AuthECDSA384         AuthMethod = 10 // IANA [RFC 4754]: ECDSA with SHA-384 on the P-384 curve
	AuthECDSA521         AuthMethod = 11 // IANA [RFC 4754]: ECDSA with SHA-512 on the P-521 curve
	AuthGSPAM            AuthMethod = 12 // IANA [RFC 6467]: Generic Secure Password Authentication Method
	AuthNULL             AuthMethod = 13 // IANA [RFC 7619]: NULL Authentication
	AuthDigitalSignature AuthMethod = 14 // RFC 7427 §3: Digital Signature (AlgorithmIdentifier prefix)
)

var authNames = map[AuthMethod]string{
	AuthRSASignature: "RSA_SIG", AuthSharedKeyMIC: "PSK", AuthDSSSignature: "DSS_SIG",
	AuthECDSA256: "ECDSA_256", AuthECDSA384: "ECDSA_384", AuthECDSA521: "ECDSA_521",
	AuthGSPAM: "GSPAM", AuthNULL: "NULL", AuthDigitalSignature: "DIGITAL_SIG",
}

func (a AuthMethod) String() string { return name(authNames, a) }

// HashAlgorithm is an entry of the SIGNATURE_HASH_ALGORITHMS notify (RFC 7427
// §4, IANA "IKEv2 Hash Algorithms").
type HashAlgorithm uint16

const (
	HashSHA1     HashAlgorithm = 1 // RFC 7427 §7
	HashSHA2_256 HashAlgorithm = 2 // RFC 7427 §7
	HashSHA2_384 HashAlgorithm = 3 // RFC 7427 §7
	HashSHA2_512 HashAlgorithm = 4 // RFC 7427 §7
	HashIdentity HashAlgorithm = 5 // IANA [RFC 8420] (EdDSA)
)

// TSType is the TS Type of a traffic selector (RFC 7296 §3.13.1).
type TSType uint8

const (
	TS_IPV4_ADDR_RANGE TSType = 7
	TS_IPV6_ADDR_RANGE TSType = 8
)

// CFGType is the CFG Type of a CP payload (RFC 7296 §3.15).
type CFGType uint8

const (
	CFG_REQUEST CFGType = 1
	CFG_REPLY   CFGType = 2
	CFG_SET     CFGType = 3
	CFG_ACK     CFGType = 4
)

var cfgShort = map[CFGType]string{CFG_REQUEST: "CPRQ", CFG_REPLY: "CPRP", CFG_SET: "CPS", CFG_ACK: "CPA"}

// Configuration attribute types the responder may meet (RFC 7296 §3.15.1).
const (
	INTERNAL_IP4_ADDRESS = 1
	INTERNAL_IP4_NETMASK = 2
	INTERNAL_IP4_DNS     = 3
	INTERNAL_IP6_ADDRESS = 8
	INTERNAL_IP6_DNS     = 10
)

// NotifyType is the Notify Message Type of a Notify payload (RFC 7296
// §3.10.1, IANA "IKEv2 Notify Message Error Types" / "Status Types"). Types
// below 16384 are errors.
type NotifyType uint16

const (
	// Error types, RFC 7296 §3.10.1 unless noted.
	UNSUPPORTED_CRITICAL_PAYLOAD NotifyType = 1
	INVALID_IKE_SPI              NotifyType = 4
	INVALID_MAJOR_VERSION        NotifyType = 5
	INVALID_SYNTAX               NotifyType = 7
	INVALID_MESSAGE_ID           NotifyType = 9
	INVALID_SPI                  NotifyType = 11
	NO_PROPOSAL_CHOSEN           NotifyType = 14
	INVALID_KE_PAYLOAD           NotifyType = 17
	AUTHENTICATION_FAILED        NotifyType = 24
	SINGLE_PAIR_REQUIRED         NotifyType = 34
	NO_ADDITIONAL_SAS            NotifyType = 35
	INTERNAL_ADDRESS_FAILURE     NotifyType = 36
	FAILED_CP_REQUIRED           NotifyType = 37
	TS_UNACCEPTABLE              NotifyType = 38
	INVALID_SELECTORS            NotifyType = 39
	UNACCEPTABLE_ADDRESSES       NotifyType = 40 // RFC 4555 (MOBIKE)
	UNEXPECTED_NAT_DETECTED      NotifyType = 41 // RFC 4555 (MOBIKE)
	TEMPORARY_FAILURE            NotifyType = 43
	CHILD_SA_NOT_FOUND           NotifyType = 44

	// Status types, RFC 7296 §3.10.1 unless noted.
	INITIAL_CONTACT               NotifyType = 16384
	SET_WINDOW_SIZE               NotifyType = 16385
	ADDITIONAL_TS_POSSIBLE        NotifyType = 16386
	IPCOMP_SUPPORTED              NotifyType = 16387
	NAT_DETECTION_SOURCE_IP       NotifyType = 16388
	NAT_DETECTION_DESTINATION_IP  NotifyType = 16389
	COOKIE                        NotifyType = 16390
	USE_TRANSPORT_MODE            NotifyType = 16391
	HTTP_CERT_LOOKUP_SUPPORTED    NotifyType = 16392
	REKEY_SA                      NotifyType = 16393
	ESP_TFC_PADDING_NOT_SUPPORTED NotifyType = 16394
	NON_FIRST_FRAGMENTS_ALSO      NotifyType = 16395
	MOBIKE_SUPPORTED              NotifyType = 16396 // RFC 4555
	ADDITIONAL_IP4_ADDRESS        NotifyType = 16397 // RFC 4555
	ADDITIONAL_IP6_ADDRESS        NotifyType = 16398 // RFC 4555
	NO_ADDITIONAL_ADDRESSES       NotifyType = 16399 // RFC 4555
	UPDATE_SA_ADDRESSES           NotifyType = 16400 // RFC 4555
	COOKIE2                       NotifyType = 16401 // RFC 4555
	NO_NATS_ALLOWED               NotifyType = 16402 // RFC 4555
	AUTH_LIFETIME                 NotifyType = 16403 // RFC 4478
	MULTIPLE_AUTH_SUPPORTED       NotifyType = 16404 // RFC 4739
	ANOTHER_AUTH_FOLLOWS          NotifyType = 16405 // RFC 4739
	REDIRECT_SUPPORTED            NotifyType = 16406 // RFC 5685
	REDIRECT                      NotifyType = 16407 // RFC 5685
	REDIRECTED_FROM               NotifyType = 16408 // RFC 5685
	EAP_ONLY_AUTHENTICATION       NotifyType = 16417 // RFC 5998
	CHILDLESS_IKEV2_SUPPORTED     NotifyType = 16418 // RFC 6023
	IKEV2_FRAGMENTATION_SUPPORTED NotifyType = 16430 // RFC 7383 §2.3
	SIGNATURE_HASH_ALGORITHMS     NotifyType = 16431 // RFC 7427 §4
)

// notifyNames holds the full name and strongSwan's short name
// (notify_type_short_names, used in its "[ SA KE No N(NATD_S_IP) ]" lines).
var notifyNames = map[NotifyType][2]string{
	UNSUPPORTED_CRITICAL_PAYLOAD:  {"UNSUPPORTED_CRITICAL_PAYLOAD", "CRIT"},
	INVALID_IKE_SPI:               {"INVALID_IKE_SPI", "INVAL_IKE_SPI"},
	INVALID_MAJOR_VERSION:         {"INVALID_MAJOR_VERSION", "INVAL_MAJOR"},
	INVALID_SYNTAX:                {"INVALID_SYNTAX", "INVAL_SYN"},
	INVALID_MESSAGE_ID:            {"INVALID_MESSAGE_ID", "INVAL_MID"},
	INVALID_SPI:                   {"INVALID_SPI", "INVAL_SPI"},
	NO_PROPOSAL_CHOSEN:            {"NO_PROPOSAL_CHOSEN", "NO_PROP"},
	INVALID_KE_PAYLOAD:            {"INVALID_KE_PAYLOAD", "INVAL_KE"},
	AUTHENTICATION_FAILED:         {"AUTHENTICATION_FAILED", "AUTH_FAILED"},
	SINGLE_PAIR_REQUIRED:          {"SINGLE_PAIR_REQUIRED", "SINGLE_PAIR"},
	NO_ADDITIONAL_SAS:             {"NO_ADDITIONAL_SAS", "NO_ADD_SAS"},
	INTERNAL_ADDRESS_FAILURE:      {"INTERNAL_ADDRESS_FAILURE", "INT_ADDR_FAIL"},
	FAILED_CP_REQUIRED:            {"FAILED_CP_REQUIRED", "FAIL_CP_REQ"},
	TS_UNACCEPTABLE:               {"TS_UNACCEPTABLE", "TS_UNACCEPT"},
	INVALID_SELECTORS:             {"INVALID_SELECTORS", "INVAL_SEL"},
	UNACCEPTABLE_ADDRESSES:        {"UNACCEPTABLE_ADDRESSES", "UNACCEPT_ADDR"},
	UNEXPECTED_NAT_DETECTED:       {"UNEXPECTED_NAT_DETECTED", "UNEXPECT_NAT"},
	TEMPORARY_FAILURE:             {"TEMPORARY_FAILURE", "TEMP_FAIL"},
	CHILD_SA_NOT_FOUND:            {"CHILD_SA_NOT_FOUND", "NO_CHILD_SA"},
	INITIAL_CONTACT:               {"INITIAL_CONTACT", "INIT_CONTACT"},
	SET_WINDOW_SIZE:               {"SET_WINDOW_SIZE", "SET_WINSIZE"},
	ADDITIONAL_TS_POSSIBLE:        {"ADDITIONAL_TS_POSSIBLE", "ADD_TS_POSS"},
	IPCOMP_SUPPORTED:              {"IPCOMP_SUPPORTED", "IPCOMP_SUP"},
	NAT_DETECTION_SOURCE_IP:       {"NAT_DETECTION_SOURCE_IP", "NATD_S_IP"},
	NAT_DETECTION_DESTINATION_IP:  {"NAT_DETECTION_DESTINATION_IP", "NATD_D_IP"},
	COOKIE:                        {"COOKIE", "COOKIE"},
	USE_TRANSPORT_MODE:            {"USE_TRANSPORT_MODE", "USE_TRANSP"},
	HTTP_CERT_LOOKUP_SUPPORTED:    {"HTTP_CERT_LOOKUP_SUPPORTED", "HTTP_CERT_LOOK"},
	REKEY_SA:                      {"REKEY_SA", "REKEY_SA"},
	ESP_TFC_PADDING_NOT_SUPPORTED: {"ESP_TFC_PADDING_NOT_SUPPORTED", "ESP_TFC_PAD_N"},
	NON_FIRST_FRAGMENTS_ALSO:      {"NON_FIRST_FRAGMENTS_ALSO", "NON_FIRST_FRAG"},
	MOBIKE_SUPPORTED:              {"MOBIKE_SUPPORTED", "MOBIKE_SUP"},
	ADDITIONAL_IP4_ADDRESS:        {"ADDITIONAL_IP4_ADDRESS", "ADD_4_ADDR"},
	ADDITIONAL_IP6_ADDRESS:        {"ADDITIONAL_IP6_ADDRESS", "ADD_6_ADDR"},
	NO_ADDITIONAL_ADDRESSES:       {"NO_ADDITIONAL_ADDRESSES", "NO_ADD_ADDR"},
	UPDATE_SA_ADDRESSES:           {"UPDATE_SA_ADDRESSES", "UPD_SA_ADDR"},
	COOKIE2:                       {"COOKIE2", "COOKIE2"},
	NO_NATS_ALLOWED:               {"NO_NATS_ALLOWED", "NO_NATS"},
	AUTH_LIFETIME:                 {"AUTH_LIFETIME", "AUTH_LFT"},
	MULTIPLE_AUTH_SUPPORTED:       {"MULTIPLE_AUTH_SUPPORTED", "MULT_AUTH"},
	ANOTHER_AUTH_FOLLOWS:          {"ANOTHER_AUTH_FOLLOWS", "AUTH_FOLLOWS"},
	REDIRECT_SUPPORTED:            {"REDIRECT_SUPPORTED", "REDIR_SUP"},
	REDIRECT:                      {"REDIRECT", "REDIR"},
	REDIRECTED_FROM:               {"REDIRECTED_FROM", "REDIR_FROM"},
	EAP_ONLY_AUTHENTICATION:       {"EAP_ONLY_AUTHENTICATION", "EAP_ONLY"},
	CHILDLESS_IKEV2_SUPPORTED:     {"CHILDLESS_IKEV2_SUPPORTED", "CHDLESS_SUP"},
	IKEV2_FRAGMENTATION_SUPPORTED: {"IKEV2_FRAGMENTATION_SUPPORTED", "FRAG_SUP"},
	SIGNATURE_HASH_ALGORITHMS:     {"SIGNATURE_HASH_ALGORITHMS", "HASH_ALG"},
}

// String is the RFC name of n, or its number.
func (n NotifyType) String() string {
	if s, ok := notifyNames[n]; ok {
		return s[0]
	}
	return strconv.Itoa(int(n))
}

// Short is strongSwan's short name of n, or its number.
func (n NotifyType) Short() string {
	if s, ok := notifyNames[n]; ok {
		return s[1]
	}
	return strconv.Itoa(int(n))
}

// IsError reports whether n is an error type (RFC 7296 §3.10.1: 0-16383).
func (n NotifyType) IsError() bool { return n < 16384 }

func name[K ~uint8 | ~uint16](m map[K]string, k K) string {
	if s, ok := m[k]; ok {
		return s
	}
	return strconv.Itoa(int(k))
}
