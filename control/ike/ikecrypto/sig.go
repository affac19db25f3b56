package ikecrypto

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"
)

// AuthMethod is the Auth Method of an AUTH payload (RFC 7296 §3.8, IANA
// "IKEv2 Authentication Method").
type AuthMethod uint8

// Authentication methods.
const (
	AuthRSASig           AuthMethod = 1  // RSA Digital Signature: PKCS#1 v1.5 with SHA-1 (RFC 7296 §3.8)
	AuthPSK              AuthMethod = 2  // Shared Key Message Integrity Code (RFC 7296 §2.15)
	AuthECDSA256         AuthMethod = 9  // ECDSA with SHA-256 on P-256 (RFC 4754)
	AuthECDSA384         AuthMethod = 10 // ECDSA with SHA-384 on P-384 (RFC 4754)
	AuthECDSA521         AuthMethod = 11 // ECDSA with SHA-512 on P-521 (RFC 4754)
	AuthDigitalSignature AuthMethod = 14 // Digital Signature (RFC 7427)
)

// HashAlgorithm is a hash ID of the SIGNATURE_HASH_ALGORITHMS notification
// (RFC 7427 §4, IANA "IKEv2 Hash Algorithms").
type HashAlgorithm uint16

// Hash algorithms.
const (
	HashSHA1     HashAlgorithm = 1
	HashSHA2_256 HashAlgorithm = 2
	HashSHA2_384 HashAlgorithm = 3
	HashSHA2_512 HashAlgorithm = 4
	HashIdentity HashAlgorithm = 5 // RFC 8420 (EdDSA), not implemented here
)

// SigScheme is a signature algorithm of Digital Signature authentication
// (RFC 7427), named by the AlgorithmIdentifier sent in the AUTH payload.
type SigScheme uint8

// Signature schemes.
const (
	_ SigScheme = iota
	SigRSAPKCS1SHA256
	SigRSAPKCS1SHA384
	SigRSAPKCS1SHA512
	SigRSAPSSSHA256 // MGF1 with the same hash, salt length = hash length
	SigRSAPSSSHA384
	SigRSAPSSSHA512
	SigECDSASHA256 // DER Ecdsa-Sig-Value (RFC 7427 §3, RFC 3279 §2.2.3)
	SigECDSASHA384
	SigECDSASHA512
	numSigSchemes
)

// The AlgorithmIdentifier DER blobs of RFC 7427 Appendix A: PKCS#1 v1.5
// (A.1), ECDSA (A.3) and RSASSA-PSS with explicit parameters (A.4.3):
// hashAlgorithm, maskGenAlgorithm mgf1 with the same hash, saltLength = the
// hash length. The hash AlgorithmIdentifiers carry NULL parameters, as in
// RFC 7427 and as strongSwan sends them (see the strongswan-p7 vectors).
var sigSchemes = [numSigSchemes]struct {
	name  string
	hash  crypto.Hash
	pss   bool
	ecdsa bool
	algID []byte
}{
	SigRSAPKCS1SHA256: {"rsa-pkcs1-sha256", crypto.SHA256, false, false, unhex("300d06092a864886f70d01010b0500")},
	SigRSAPKCS1SHA384: {"rsa-pkcs1-sha384", crypto.SHA384, false, false, unhex("300d06092a864886f70d01010c0500")},
	SigRSAPKCS1SHA512: {"rsa-pkcs1-sha512", crypto.SHA512, false, false, unhex("300d06092a864886f70d01010d0500")},
	SigRSAPSSSHA256:   {"rsa-pss-sha256", crypto.SHA256, true, false, pssAlgID(1, 32)},
	SigRSAPSSSHA384:   {"rsa-pss-sha384", crypto.SHA384, true, false, pssAlgID(2, 48)},
	SigRSAPSSSHA512:   {"rsa-pss-sha512", crypto.SHA512, true, false, pssAlgID(3, 64)},
	SigECDSASHA256:    {"ecdsa-sha256", crypto.SHA256, false, true, unhex("300a06082a8648ce3d040302")},
	SigECDSASHA384:    {"ecdsa-sha384", crypto.SHA384, false, true, unhex("300a06082a8648ce3d040303")},
	SigECDSASHA512:    {"ecdsa-sha512", crypto.SHA512, false, true, unhex("300a06082a8648ce3d040304")},
}

// pssAlgID builds the RSASSA-PSS AlgorithmIdentifier (RFC 4055 §3.1) for the
// SHA-2 hash with OID 2.16.840.1.101.3.4.2.h and the given salt length.
func pssAlgID(h byte, salt byte) []byte {
	hashID := []byte{0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, h, 0x05, 0x00}
	var p []byte
	p = append(p, 0xa0, byte(len(hashID)))
	p = append(p, hashID...)
	mgf := append([]byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08}, hashID...)
	p = append(p, 0xa1, byte(len(mgf)+2), 0x30, byte(len(mgf)))
	p = append(p, mgf...)
	p = append(p, 0xa2, 0x03, 0x02, 0x01, salt)
	body := append([]byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a, 0x30, byte(len(p))}, p...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

func unhex(s string) []byte {
	b := make([]byte, len(s)/2)
	for i := range b {
		b[i] = byte(hexVal(s[2*i])<<4 | hexVal(s[2*i+1]))
	}
	return b
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	panic("ikecrypto: bad hex constant")
}

func (s SigScheme) valid() bool { return s > 0 && s < numSigSchemes }

func (s SigScheme) String() string {
	if s.valid() {
		return sigSchemes[s].name
	}
	return fmt.Sprintf("sigscheme(%d)", uint8(s))
}

// AlgorithmIdentifier returns the DER AlgorithmIdentifier of s (RFC 7427
// Appendix A). The caller must not modify it.
func (s SigScheme) AlgorithmIdentifier() []byte {
	if s.valid() {
		return sigSchemes[s].algID
	}
	return nil
}

// Hash is the hash algorithm of s, as a SIGNATURE_HASH_ALGORITHMS value.
func (s SigScheme) Hash() HashAlgorithm {
	switch sigSchemes[s].hash {
	case crypto.SHA256:
		return HashSHA2_256
	case crypto.SHA384:
		return HashSHA2_384
	case crypto.SHA512:
		return HashSHA2_512
	}
	return 0
}

// SignAuth builds the Authentication Data of an AUTH payload with method 14
// (RFC 7427 §3):
//
//	| ASN.1 Length | AlgorithmIdentifier ASN.1 object | Signature Value |
//
// signing the signed octets (SignedOctets) with key using scheme s. key must
// be an *rsa.PrivateKey for the RSA schemes and an *ecdsa.PrivateKey for the
// ECDSA ones. r supplies randomness (crypto/rand.Reader if nil).
func SignAuth(key crypto.Signer, s SigScheme, octets []byte, r io.Reader) ([]byte, error) {
	if !s.valid() {
		return nil, fmt.Errorf("signature scheme %d: %w", s, ErrUnsupported)
	}
	sig, err := sign(key, s, octets, r)
	if err != nil {
		return nil, err
	}
	id := sigSchemes[s].algID
	out := make([]byte, 0, 1+len(id)+len(sig))
	out = append(append(append(out, byte(len(id))), id...), sig...)
	return out, nil
}

func sign(key crypto.Signer, s SigScheme, octets []byte, r io.Reader) ([]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	info := sigSchemes[s]
	h := info.hash.New()
	h.Write(octets)
	digest := h.Sum(nil)
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if info.ecdsa {
			break
		}
		if info.pss {
			return rsa.SignPSS(r, k, info.hash, digest, &rsa.PSSOptions{SaltLength: info.hash.Size(), Hash: info.hash})
		}
		return rsa.SignPKCS1v15(nil, k, info.hash, digest)
	case *ecdsa.PrivateKey:
		if !info.ecdsa {
			break
		}
		return ecdsa.SignASN1(r, k, digest)
	}
	return nil, fmt.Errorf("%T cannot sign with %s: %w", key, s, ErrUnsupported)
}

// ParseSignatureAuth splits method-14 Authentication Data into the scheme its
// AlgorithmIdentifier names and the signature value. RSASSA-PSS parameters
// are accepted only in the form of RFC 7427 A.4.3 for SHA-256/384/512 (MGF1
// with the same hash, salt length = hash length), with or without NULL hash
// parameters.
func ParseSignatureAuth(data []byte) (SigScheme, []byte, error) {
	if len(data) < 1 || int(data[0])+1 > len(data) {
		return 0, nil, fmt.Errorf("signature AUTH data of %d octets: %w", len(data), ErrMalformed)
	}
	id, sig := data[1:1+int(data[0])], data[1+int(data[0]):]
	for s := SigScheme(1); s < numSigSchemes; s++ {
		if bytes.Equal(id, sigSchemes[s].algID) {
			return s, sig, nil
		}
	}
	if s, ok := parsePSS(id); ok {
		return s, sig, nil
	}
	return 0, nil, fmt.Errorf("AlgorithmIdentifier %x: %w", id, ErrUnsupported)
}

var (
	oidPSS    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

type pssParams struct {
	Hash       pkix.AlgorithmIdentifier `asn1:"explicit,tag:0"`
	MGF        pkix.AlgorithmIdentifier `asn1:"explicit,tag:1"`
	SaltLength int                      `asn1:"explicit,tag:2"`
	Trailer    int                      `asn1:"optional,explicit,tag:3,default:1"`
}

func parsePSS(der []byte) (SigScheme, bool) {
	var ai pkix.AlgorithmIdentifier
	if rest, err := asn1.Unmarshal(der, &ai); err != nil || len(rest) != 0 || !ai.Algorithm.Equal(oidPSS) {
		return 0, false
	}
	var p pssParams
	if rest, err := asn1.Unmarshal(ai.Parameters.FullBytes, &p); err != nil || len(rest) != 0 || p.Trailer != 1 {
		return 0, false
	}
	var mgfHash pkix.AlgorithmIdentifier
	if !p.MGF.Algorithm.Equal(oidMGF1) {
		return 0, false
	}
	if rest, err := asn1.Unmarshal(p.MGF.Parameters.FullBytes, &mgfHash); err != nil || len(rest) != 0 ||
		!mgfHash.Algorithm.Equal(p.Hash.Algorithm) {
		return 0, false
	}
	for _, c := range []struct {
		oid asn1.ObjectIdentifier
		s   SigScheme
	}{{oidSHA256, SigRSAPSSSHA256}, {oidSHA384, SigRSAPSSSHA384}, {oidSHA512, SigRSAPSSSHA512}} {
		if p.Hash.Algorithm.Equal(c.oid) && p.SaltLength == sigSchemes[c.s].hash.Size() {
			return c.s, true
		}
	}
	return 0, false
}

// VerifyAuth checks the Authentication Data of an AUTH payload against the
// signed octets (SignedOctets of the peer) with the peer's public key (from
// its certificate). It handles method 14 (RFC 7427, any scheme above), method
// 1 (RSA PKCS#1 v1.5 with SHA-1, RFC 7296 §3.8) and methods 9/10/11 (ECDSA
// with a fixed-length r | s signature, RFC 4754 §7) and returns the scheme
// used (0 for the classic methods). Errors wrap ErrSignature,
// ErrUnsupported or ErrMalformed.
func VerifyAuth(pub crypto.PublicKey, method AuthMethod, data, octets []byte) (SigScheme, error) {
	switch method {
	case AuthDigitalSignature:
		s, sig, err := ParseSignatureAuth(data)
		if err != nil {
			return 0, err
		}
		info := sigSchemes[s]
		digest := hashOf(info.hash, octets)
		switch k := pub.(type) {
		case *rsa.PublicKey:
			if info.ecdsa {
				break
			}
			if info.pss {
				err = rsa.VerifyPSS(k, info.hash, digest, sig, &rsa.PSSOptions{SaltLength: info.hash.Size(), Hash: info.hash})
			} else {
				err = rsa.VerifyPKCS1v15(k, info.hash, digest, sig)
			}
			if err != nil {
				return 0, fmt.Errorf("%s: %w", s, ErrSignature)
			}
			return s, nil
		case *ecdsa.PublicKey:
			if !info.ecdsa {
				break
			}
			if !ecdsa.VerifyASN1(k, digest, sig) {
				return 0, fmt.Errorf("%s: %w", s, ErrSignature)
			}
			return s, nil
		}
		return 0, fmt.Errorf("%s with a %T: %w", s, pub, ErrUnsupported)
	case AuthRSASig:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return 0, fmt.Errorf("auth method 1 with a %T: %w", pub, ErrUnsupported)
		}
		if rsa.VerifyPKCS1v15(k, crypto.SHA1, hashOf(crypto.SHA1, octets), data) != nil {
			return 0, fmt.Errorf("auth method 1: %w", ErrSignature)
		}
		return 0, nil
	case AuthECDSA256, AuthECDSA384, AuthECDSA521:
		k, ok := pub.(*ecdsa.PublicKey)
		curve, h := classicECDSA(method)
		if !ok || k.Curve != curve {
			return 0, fmt.Errorf("auth method %d with a %T: %w", method, pub, ErrUnsupported)
		}
		n := (curve.Params().BitSize + 7) / 8
		if len(data) != 2*n {
			return 0, fmt.Errorf("auth method %d signature of %d octets, want %d: %w", method, len(data), 2*n, ErrMalformed)
		}
		r, s := new(big.Int).SetBytes(data[:n]), new(big.Int).SetBytes(data[n:])
		if !ecdsa.Verify(k, hashOf(h, octets), r, s) {
			return 0, fmt.Errorf("auth method %d: %w", method, ErrSignature)
		}
		return 0, nil
	}
	return 0, fmt.Errorf("auth method %d: %w", method, ErrUnsupported)
}

// SignClassic builds the Authentication Data of method 1 (RSA PKCS#1 v1.5
// with SHA-1, for peers without RFC 7427) or methods 9/10/11 (RFC 4754: r | s,
// each zero-padded to the curve's order length; the method follows the
// key's curve). It returns the data and the method to put in the AUTH
// payload.
func SignClassic(key crypto.Signer, octets []byte, r io.Reader) (AuthMethod, []byte, error) {
	if r == nil {
		r = rand.Reader
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		sig, err := rsa.SignPKCS1v15(nil, k, crypto.SHA1, hashOf(crypto.SHA1, octets))
		return AuthRSASig, sig, err
	case *ecdsa.PrivateKey:
		for _, m := range []AuthMethod{AuthECDSA256, AuthECDSA384, AuthECDSA521} {
			curve, h := classicECDSA(m)
			if k.Curve != curve {
				continue
			}
			rr, ss, err := ecdsa.Sign(r, k, hashOf(h, octets))
			if err != nil {
				return 0, nil, err
			}
			n := (curve.Params().BitSize + 7) / 8
			out := make([]byte, 2*n)
			rr.FillBytes(out[:n])
			ss.FillBytes(out[n:])
			return m, out, nil
		}
	}
	return 0, nil, fmt.Errorf("classic signature with a %T: %w", key, ErrUnsupported)
}

// classicECDSA is the curve and hash of RFC 4754 §3 for methods 9/10/11.
func classicECDSA(m AuthMethod) (elliptic.Curve, crypto.Hash) {
	switch m {
	case AuthECDSA256:
		return elliptic.P256(), crypto.SHA256
	case AuthECDSA384:
		return elliptic.P384(), crypto.SHA384
	case AuthECDSA521:
		return elliptic.P521(), crypto.SHA512
	}
	return nil, 0
}

func hashOf(h crypto.Hash, b []byte) []byte {
	d := h.New()
	d.Write(b)
	return d.Sum(nil)
}
