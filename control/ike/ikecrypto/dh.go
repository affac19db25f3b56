package ikecrypto

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"io"
	"math/big"
)

// modp2048P is the prime of the 2048-bit MODP group 14 (RFC 3526 §3):
// 2^2048 - 2^1984 - 1 + 2^64 * { [2^1918 pi] + 124476 }. The generator is 2.
const modp2048P = "" +
	"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1" +
	"29024E088A67CC74020BBEA63B139B22514A08798E3404DD" +
	"EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245" +
	"E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
	"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D" +
	"C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F" +
	"83655D23DCA3AD961C62F356208552BB9ED529077096966D" +
	"670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B" +
	"E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9" +
	"DE2BCBF6955817183995497CEA956AE515D2261898FA0510" +
	"15728E5A8AACAA68FFFFFFFFFFFFFFFF"

var (
	modpP, modpPMinus1 *big.Int
	modpG              = big.NewInt(2)
)

func init() {
	modpP, _ = new(big.Int).SetString(modp2048P, 16)
	modpPMinus1 = new(big.Int).Sub(modpP, big.NewInt(1))
}

// modpExpBits is the length of the secret MODP exponent. RFC 3526 §8 puts the
// group's strength at 110-160 bits and asks for an exponent of at least twice
// that; 512 bits leaves a wide margin and keeps g^x cheap.
const modpExpBits = 512

func (g DHGroup) known() bool {
	switch g {
	case DHMODP2048, DHECP256, DHECP384, DHECP521, DHCurve25519:
		return true
	}
	return false
}

func (g DHGroup) curve() ecdh.Curve {
	switch g {
	case DHECP256:
		return ecdh.P256()
	case DHECP384:
		return ecdh.P384()
	case DHECP521:
		return ecdh.P521()
	case DHCurve25519:
		return ecdh.X25519()
	}
	return nil
}

// PublicLen is the length of the group's Key Exchange Data (RFC 7296 §3.4):
// 256 for MODP 2048 (the prime's length), 64/96/132 for ECP groups 19/20/21
// (x | y, RFC 5903 §7), 32 for Curve25519 (RFC 8031 §3.1); 0 if unknown.
func (g DHGroup) PublicLen() int {
	switch g {
	case DHMODP2048:
		return 256
	case DHECP256:
		return 64
	case DHECP384:
		return 96
	case DHECP521:
		return 132
	case DHCurve25519:
		return 32
	}
	return 0
}

// SharedLen is the length of g^ir as Shared returns it: the prime's length
// for MODP (RFC 7296 §2.14), the x coordinate for ECP (RFC 5903 §7), 32 for
// Curve25519 (RFC 8031 §3.1).
func (g DHGroup) SharedLen() int {
	switch g {
	case DHECP256, DHECP384, DHECP521:
		return g.PublicLen() / 2
	}
	return g.PublicLen()
}

// DHPrivate is one side's ephemeral Diffie-Hellman key. It is immutable after
// GenerateKey and safe for concurrent use.
type DHPrivate struct {
	group DHGroup
	ec    *ecdh.PrivateKey // ECP and Curve25519
	x     *big.Int         // MODP secret exponent
	pub   []byte
}

// GenerateKey makes an ephemeral key for group g with randomness from r
// (crypto/rand.Reader if nil).
func GenerateKey(g DHGroup, r io.Reader) (*DHPrivate, error) {
	if r == nil {
		r = rand.Reader
	}
	if c := g.curve(); c != nil {
		k, err := c.GenerateKey(r)
		if err != nil {
			return nil, fmt.Errorf("ikecrypto: DH group %d: %w", g, err)
		}
		return newECPrivate(g, k), nil
	}
	if g != DHMODP2048 {
		return nil, fmt.Errorf("DH group %d: %w", g, ErrUnsupported)
	}
	buf := make([]byte, modpExpBits/8)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("ikecrypto: DH group %d: %w", g, err)
	}
	buf[0] |= 0x80 // full-length exponent, well above 1
	return newMODPPrivate(new(big.Int).SetBytes(buf)), nil
}

func newECPrivate(g DHGroup, k *ecdh.PrivateKey) *DHPrivate {
	pub := k.PublicKey().Bytes()
	if g != DHCurve25519 {
		pub = pub[1:] // drop the SEC 1 0x04 prefix: x | y (RFC 5903 §7)
	}
	return &DHPrivate{group: g, ec: k, pub: pub}
}

func newMODPPrivate(x *big.Int) *DHPrivate {
	y := new(big.Int).Exp(modpG, x, modpP)
	return &DHPrivate{group: DHMODP2048, x: x, pub: y.FillBytes(make([]byte, 256))}
}

// Group is the key's DH group.
func (k *DHPrivate) Group() DHGroup { return k.group }

// Public returns the Key Exchange Data to send in the KE payload (RFC 7296
// §3.4): for MODP g^x big-endian and zero-padded to the prime's length; for
// ECP x | y, each coordinate padded to the field size, without the SEC 1
// point-format octet (RFC 5903 §7); for Curve25519 the 32-octet u-coordinate
// (RFC 8031 §3.1). The caller must not modify it.
func (k *DHPrivate) Public() []byte { return k.pub }

// Shared computes g^ir from the peer's Key Exchange Data after validating it:
// MODP values must be exactly the prime's length with 1 < y < p-1 (RFC 7296
// §3.4 padding; the checks of RFC 6989 §2.1 / NIST SP 800-56A for a safe
// prime); ECP values must be x | y of the group's length and a point on the
// curve (RFC 5903 §7, RFC 6989 §2.3, checked by crypto/ecdh); Curve25519
// values must be 32 octets and not give the all-zero output (RFC 8031 §2.3).
// The result is zero-padded to SharedLen: the x coordinate only for ECP.
func (k *DHPrivate) Shared(peer []byte) ([]byte, error) {
	g := k.group
	if len(peer) != g.PublicLen() {
		return nil, fmt.Errorf("group %d public value of %d octets, want %d: %w",
			g, len(peer), g.PublicLen(), ErrInvalidPublic)
	}
	if k.ec != nil {
		in := peer
		if g != DHCurve25519 {
			in = make([]byte, 1+len(peer))
			in[0] = 4 // uncompressed point (SEC 1 §2.3.3)
			copy(in[1:], peer)
		}
		pk, err := k.ec.Curve().NewPublicKey(in)
		if err != nil {
			return nil, fmt.Errorf("group %d: %v: %w", g, err, ErrInvalidPublic)
		}
		s, err := k.ec.ECDH(pk)
		if err != nil {
			return nil, fmt.Errorf("group %d: %v: %w", g, err, ErrInvalidPublic)
		}
		return s, nil
	}
	y := new(big.Int).SetBytes(peer)
	if y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(modpPMinus1) >= 0 {
		return nil, fmt.Errorf("group %d public value not in 2..p-2: %w", g, ErrInvalidPublic)
	}
	s := new(big.Int).Exp(y, k.x, modpP)
	return s.FillBytes(make([]byte, 256)), nil
}
