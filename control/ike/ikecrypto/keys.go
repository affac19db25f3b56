package ikecrypto

import (
	"crypto/hmac"
	"encoding/binary"
	"fmt"
)

// PRF computes prf(key, data[0] | data[1] | ...) with the HMAC-SHA2 PRF id
// (RFC 7296 §2.13, RFC 4868 §2.1.2). HMAC takes keys of any length, as
// RFC 7296 §2.14 requires for SKEYSEED = prf(Ni | Nr, g^ir).
func PRF(id PRFID, key []byte, data ...[]byte) ([]byte, error) {
	info, ok := prfs[id]
	if !ok {
		return nil, fmt.Errorf("PRF %s: %w", id, ErrUnsupported)
	}
	m := hmac.New(info.hash, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(make([]byte, 0, info.size)), nil
}

// PRFPlus computes the first n octets of prf+(key, seed) (RFC 7296 §2.13):
//
//	prf+ (K,S) = T1 | T2 | T3 | T4 | ...
//	T1 = prf (K, S | 0x01)
//	T2 = prf (K, T1 | S | 0x02)
//	T3 = prf (K, T2 | S | 0x03)
//
// The counter is one octet, so at most 255 blocks can be produced; asking for
// more returns ErrPRFPlusLength.
func PRFPlus(id PRFID, key, seed []byte, n int) ([]byte, error) {
	info, ok := prfs[id]
	if !ok {
		return nil, fmt.Errorf("PRF %s: %w", id, ErrUnsupported)
	}
	if n < 0 || n > 255*info.size {
		return nil, fmt.Errorf("%d octets from %s: %w", n, id, ErrPRFPlusLength)
	}
	out := make([]byte, 0, (n+info.size-1)/info.size*info.size)
	m := hmac.New(info.hash, key)
	var t []byte
	for i := 1; len(out) < n; i++ {
		m.Reset()
		m.Write(t)
		m.Write(seed)
		m.Write([]byte{byte(i)})
		out = m.Sum(out)
		t = out[len(out)-info.size:]
	}
	return out[:n], nil
}

// SKEYSEED computes SKEYSEED = prf(Ni | Nr, g^ir) for a new IKE SA
// (RFC 7296 §2.14). gir is the DH shared secret as Shared returns it.
func SKEYSEED(id PRFID, ni, nr, gir []byte) ([]byte, error) {
	key := make([]byte, 0, len(ni)+len(nr))
	key = append(append(key, ni...), nr...)
	return PRF(id, key, gir)
}

// RekeySKEYSEED computes SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) for
// an IKE SA rekeyed with CREATE_CHILD_SA (RFC 7296 §2.18). oldPRF is the old
// IKE SA's PRF ("it is the old IKE SA's PRF that is used to generate
// SKEYSEED"); the new SA's keys then come from DeriveIKEKeys with the new
// SA's suite, nonces and SPIs.
//
// strongSwan 5.9 also runs prf+ with the old SA's PRF; the two agree whenever
// the rekey keeps the PRF, so a responder should select the old PRF.
func RekeySKEYSEED(oldPRF PRFID, oldSKd, gir, ni, nr []byte) ([]byte, error) {
	return PRF(oldPRF, oldSKd, gir, ni, nr)
}

// IKEKeys are the seven secrets of an IKE SA (RFC 7296 §2.14). SKai/SKar are
// empty with an AEAD cipher (RFC 5282 §7.1).
type IKEKeys struct {
	SKd, SKai, SKar, SKei, SKer, SKpi, SKpr []byte
}

// DeriveIKEKeys computes
//
//	{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
//	                = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)
//
// (RFC 7296 §2.14) with the lengths of suite s: SK_d, SK_pi and SK_pr the PRF
// output length, SK_a the integrity key length (none for AEAD ciphers), SK_e
// the cipher key plus salt (RFC 5282 §7.1, RFC 5930 §2, RFC 7634 §3). The SPIs
// are the 8-octet values of the IKE header, in network order.
func DeriveIKEKeys(s Suite, skeyseed, ni, nr []byte, spii, spir uint64) (IKEKeys, error) {
	if err := s.CheckIKE(); err != nil {
		return IKEKeys{}, err
	}
	prfLen, aLen, eLen := s.PRF.Size(), s.IntegKeyLen(), s.EncrKeyLen()
	seed := make([]byte, 0, len(ni)+len(nr)+16)
	seed = append(append(seed, ni...), nr...)
	seed = binary.BigEndian.AppendUint64(seed, spii)
	seed = binary.BigEndian.AppendUint64(seed, spir)
	km, err := PRFPlus(s.PRF, skeyseed, seed, 3*prfLen+2*aLen+2*eLen)
	if err != nil {
		return IKEKeys{}, err
	}
	var k IKEKeys
	next := func(n int) []byte {
		b := km[:n:n]
		km = km[n:]
		return b
	}
	k.SKd = next(prfLen)
	k.SKai = next(aLen)
	k.SKar = next(aLen)
	k.SKei = next(eLen)
	k.SKer = next(eLen)
	k.SKpi = next(prfLen)
	k.SKpr = next(prfLen)
	return k, nil
}

// DirKeys are the ESP keys of one direction: EncKey is laid out like Linux
// xfrm and dataplane/esp.Config.EncKey (cipher key, then the 4-octet salt for
// GCM, CTR and ChaCha20-Poly1305); IntegKey is empty for AEAD ciphers.
type DirKeys struct {
	EncKey, IntegKey []byte
}

// ChildKeys are the keys of a CHILD_SA pair. InitToResp protects traffic from
// the IKE initiator to the responder (the responder's inbound SA, whose SPI
// the responder chose), RespToInit the other direction.
type ChildKeys struct {
	InitToResp, RespToInit DirKeys
}

// DeriveChildKeys computes the keying material of a CHILD_SA (RFC 7296
// §2.17):
//
//	KEYMAT = prf+(SK_d, Ni | Nr)                  (no PFS)
//	KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr)     (with PFS: gir non-nil)
//
// taken in the order of §2.17: "All keys for SAs carrying data from the
// initiator to the responder are taken before SAs going from the responder to
// the initiator", and within a direction the encryption key before the
// integrity key. s is the ESP suite; its PRF must be the IKE SA's. ni and nr
// are the nonces of the exchange that created the CHILD_SA (for the first
// CHILD_SA, those of IKE_SA_INIT).
func DeriveChildKeys(s Suite, skd, gir, ni, nr []byte) (ChildKeys, error) {
	if err := s.CheckESP(); err != nil {
		return ChildKeys{}, err
	}
	eLen, aLen := s.EncrKeyLen(), s.IntegKeyLen()
	seed := make([]byte, 0, len(gir)+len(ni)+len(nr))
	seed = append(append(append(seed, gir...), ni...), nr...)
	km, err := PRFPlus(s.PRF, skd, seed, 2*(eLen+aLen))
	if err != nil {
		return ChildKeys{}, err
	}
	var k ChildKeys
	next := func(n int) []byte {
		b := km[:n:n]
		km = km[n:]
		return b
	}
	k.InitToResp.EncKey = next(eLen)
	k.InitToResp.IntegKey = next(aLen)
	k.RespToInit.EncKey = next(eLen)
	k.RespToInit.IntegKey = next(aLen)
	return k, nil
}
