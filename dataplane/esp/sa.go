package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"sync/atomic"
	"unsafe"

	"golang.org/x/crypto/chacha20poly1305"
)

// ESP wire constants (RFC 4303 §2).
const (
	SPILen        = 4
	SeqLen        = 4
	BaseHeaderLen = SPILen + SeqLen // ESP header without the IV
	TrailerLen    = 2               // Pad Length + Next Header
	MaxPadLen     = 255
	// NextHeaderNone marks a dummy packet (RFC 4303 §2.6); Open returns it
	// like any other value and the caller drops it.
	NextHeaderNone = 59
)

// Config describes one SA. NewSA copies what it keeps; the caller may wipe
// the key slices afterwards.
type Config struct {
	SPI uint32 // 0 is reserved (RFC 4303 §2.1) and rejected

	Cipher Cipher
	EncKey []byte // Cipher.KeyLen() bytes, trailing salt included

	// Integ is required for the non-AEAD ciphers (CTR, CBC) and must be
	// IntegNone for AEAD ciphers (GCM, ChaCha20-Poly1305).
	Integ    Integ
	IntegKey []byte // Integ.KeyLen() bytes

	// ESN enables 64-bit Extended Sequence Numbers (RFC 4304): only the low
	// 32 bits travel in the header, the high 32 bits are covered by the ICV
	// (RFC 4303 §3.3.2.1) or the AAD (RFC 4106 §5, RFC 7634 §2.1).
	ESN bool

	// NoAntiReplay turns the anti-replay check off (RFC 4303 §3.4.3 lets
	// the receiver choose; typical for manually keyed SAs, whose counters
	// cannot be reset, and for load generators replaying fixed frames).
	// The window still tracks the highest sequence number for ESN.
	NoAntiReplay bool

	// ReplayWindow is the anti-replay window size in packets: 0 means 64,
	// otherwise 64..4096, rounded up to a multiple of 64.
	ReplayWindow int

	// Soft limits (0 = none): reaching one sets State.RekeyNeeded.
	SoftBytes, SoftPackets uint64
	// Hard limits (0 = none): reaching one sets State.Expired, and from then
	// on Open and Seal refuse every packet with stats.SAExpired. Bytes count
	// payload (inner packet) bytes.
	HardBytes, HardPackets uint64

	// allowNoInteg permits CBC/CTR without integrity. Tests only: the
	// RFC 3602 §4 ESP vectors are encryption-only.
	allowNoInteg bool
	// allowZeroSPI permits SPI 0. Tests only: draft-mcgrew-gcm-test-01
	// case #4 uses it.
	allowZeroSPI bool
}

// SA is the ESP transform of one Security Association.
//
// Concurrency: the SA itself is immutable after NewSA and may be shared by
// any number of goroutines and table snapshots; SPI, HeaderLen, MaxTrailer
// and Overhead are safe for concurrent use. Open and Seal mutate *St (replay
// window, sequence counter, MAC and CBC state, scratch space) and must be
// called by one goroutine at a time — the worker that owns the SA. St's
// exported counters and flags are atomics and may be read by anyone.
type SA struct {
	spi    uint32
	cipher Cipher
	integ  Integ
	esn    bool

	ivLen, icvLen, align, hdrLen int

	softBytes, softPackets uint64
	hardBytes, hardPackets uint64

	kind  kind
	aead  cipher.AEAD  // kindAEAD: GCM or ChaCha20-Poly1305
	ctr   aesCTR       // kindCTR
	block cipher.Block // AES block for CTR and CBC
	ivGen cipher.Block // kindCBC: encrypts the sequence number into the IV

	// hot is the crypto object Open and Seal read for every packet (key
	// schedule, GHASH table), hotSize its size, for Prefetch; nil, 0 when
	// unknown. [coldOff, coldEnd) is the part of it they never read (the
	// AES decryption schedule of GCM and CTR), or empty.
	hot              unsafe.Pointer
	hotSize          uintptr
	coldOff, coldEnd uintptr

	// St is the SA's runtime state. It stays the same object for the SA's
	// life so that table snapshots can carry it over.
	St *State
}

// State is an SA's runtime state. It is owned by the SA's one worker; the
// exported counters and flags are written only by that worker and are
// readable by anyone with atomic loads.
type State struct {
	// What Open and Seal read or write for every packet comes first, in
	// the first two cache lines, which Prefetch reads (stateHotLen).

	// Packets and Bytes count packets accepted by Open or sent by Seal and
	// their payload bytes.
	Packets, Bytes atomic.Uint64

	// Expired is set when a hard limit is reached.
	Expired atomic.Bool
	// Overflow is set when Seal has used the last sequence number
	// (2^32-1, or 2^64-1 with ESN); Seal refuses from then on.
	Overflow atomic.Bool
	noReplay bool
	// testIV says that ivOverride is set; Seal checks this, on a hot
	// line, instead of ivOverride itself, on a cold one.
	testIV bool

	win    window   // inbound
	seqOut uint64   // outbound: last sequence number used (0 = none)
	nonce  [12]byte // salt || IV
	aad    [12]byte // SPI || seq_hi || seq_lo (ESN)

	// Drops by reason.
	MalformedErrors atomic.Uint64 // stats.Malformed
	ReplayErrors    atomic.Uint64 // stats.Replay
	IntegrityErrors atomic.Uint64 // stats.Integrity
	PaddingErrors   atomic.Uint64 // stats.BadPadding
	ExpiredErrors   atomic.Uint64 // stats.SAExpired
	OverflowErrors  atomic.Uint64 // stats.SeqOverflow

	// RekeyNeeded is set once when a soft limit is reached, when the SA
	// expires and when the outbound sequence number is exhausted.
	RekeyNeeded atomic.Bool

	// Stateful crypto objects and scratch space. They live here, on the
	// heap, so that passing slices of them to interface methods does not
	// allocate per packet.
	mac    hash.Hash // HMAC, Reset before each use
	cbcEnc cipher.BlockMode
	cbcDec cipher.BlockMode
	cbcEIV ivSetter
	cbcDIV ivSetter
	seqHi  [4]byte  // appended to the HMAC input with ESN
	sum    [64]byte // HMAC output
	iv     [16]byte // CBC IV
	ctr    ctrScratch

	// ivOverride, when testIV is set, replaces the IV Seal would derive. Tests only:
	// it reproduces RFC and draft vectors whose IV is not our choice.
	ivOverride []byte
}

// stateHotLen is how much of a State Open and Seal touch for every packet
// (everything up to and including aad).
const stateHotLen = unsafe.Offsetof(State{}.aad) + unsafe.Sizeof(State{}.aad)

type ivSetter interface{ SetIV([]byte) }

type kind uint8

const (
	kindAEAD kind = iota
	kindCTR
	kindCBC
)

// NewSA validates c and builds the SA. Errors name the offending Config field
// and wrap ErrInvalidConfig.
func NewSA(c Config) (*SA, error) {
	if !c.Cipher.valid() {
		return nil, fmt.Errorf("esp: Config.Cipher: %s: %w", c.Cipher, ErrInvalidConfig)
	}
	if !c.Integ.valid() {
		return nil, fmt.Errorf("esp: Config.Integ: %s: %w", c.Integ, ErrInvalidConfig)
	}
	if c.SPI == 0 && !c.allowZeroSPI {
		return nil, fmt.Errorf("esp: Config.SPI: 0 is reserved (RFC 4303 §2.1): %w", ErrInvalidConfig)
	}
	ci := ciphers[c.Cipher]
	if len(c.EncKey) != ci.keyLen {
		return nil, fmt.Errorf("esp: Config.EncKey: %s needs %d bytes (salt included), got %d: %w",
			c.Cipher, ci.keyLen, len(c.EncKey), ErrInvalidConfig)
	}
	if c.Cipher.AEAD() {
		if c.Integ != IntegNone {
			return nil, fmt.Errorf("esp: Config.Integ: %s is an AEAD cipher and takes no integrity algorithm, got %s: %w",
				c.Cipher, c.Integ, ErrInvalidConfig)
		}
	} else if c.Integ == IntegNone && !c.allowNoInteg {
		// Encryption without integrity is not offered: RFC 8221 allows
		// AUTH_NONE only with AEAD ciphers, and RFC 4303 §3.4.3 forbids
		// anti-replay without integrity.
		return nil, fmt.Errorf("esp: Config.Integ: %s needs an integrity algorithm (hmac-sha1-96, hmac-sha2-256-128, hmac-sha2-384-192, hmac-sha2-512-256): %w",
			c.Cipher, ErrInvalidConfig)
	}
	if len(c.IntegKey) != c.Integ.KeyLen() {
		return nil, fmt.Errorf("esp: Config.IntegKey: %s needs %d bytes, got %d: %w",
			c.Integ, c.Integ.KeyLen(), len(c.IntegKey), ErrInvalidConfig)
	}
	w := c.ReplayWindow
	switch {
	case w == 0:
		w = DefaultReplayWindow
	case w < MinReplayWindow || w > MaxReplayWindow:
		return nil, fmt.Errorf("esp: Config.ReplayWindow: %d not in %d..%d: %w",
			w, MinReplayWindow, MaxReplayWindow, ErrInvalidConfig)
	}
	w = (w + blockBits - 1) &^ (blockBits - 1)

	sa := &SA{
		spi:         c.SPI,
		cipher:      c.Cipher,
		integ:       c.Integ,
		esn:         c.ESN,
		ivLen:       ci.ivLen,
		icvLen:      ci.icvLen + c.Integ.ICVLen(),
		align:       ci.align,
		hdrLen:      BaseHeaderLen + ci.ivLen,
		softBytes:   c.SoftBytes,
		softPackets: c.SoftPackets,
		hardBytes:   c.HardBytes,
		hardPackets: c.HardPackets,
		St:          &State{win: newWindow(w), noReplay: c.NoAntiReplay},
	}
	st := sa.St
	key := c.EncKey[:ci.keyLen-ci.saltLen]
	copy(st.nonce[:4], c.EncKey[len(key):])
	copy(st.ctr.blk[:4], c.EncKey[len(key):])

	var err error
	switch c.Cipher {
	case ChaCha20Poly1305:
		sa.aead, err = chacha20poly1305.New(key)
	default:
		sa.block, err = aes.NewCipher(key)
	}
	if err != nil {
		return nil, fmt.Errorf("esp: Config.EncKey: %w: %w", err, ErrInvalidConfig)
	}
	switch c.Cipher {
	case ChaCha20Poly1305:
		sa.kind = kindAEAD
	case AESGCM128, AESGCM256:
		sa.kind = kindAEAD
		// RFC 4106 §6: 16-byte ICV; 12-byte nonce = salt || IV.
		if sa.aead, err = newGCM(key, sa.block); err != nil {
			return nil, fmt.Errorf("esp: %s: %w", c.Cipher, err)
		}
		sa.block = nil // the AEAD has its own key schedule; only CTR and CBC use block
	case AESCTR128, AESCTR256:
		sa.kind = kindCTR
		if sa.ctr, err = newAESCTR(sa.block); err != nil {
			return nil, fmt.Errorf("esp: %s: %w", c.Cipher, err)
		}
	case AESCBC128, AESCBC256:
		sa.kind = kindCBC
		var zero [aes.BlockSize]byte
		st.cbcEnc = cipher.NewCBCEncrypter(sa.block, zero[:])
		st.cbcDec = cipher.NewCBCDecrypter(sa.block, zero[:])
		var ok1, ok2 bool
		st.cbcEIV, ok1 = st.cbcEnc.(ivSetter)
		st.cbcDIV, ok2 = st.cbcDec.(ivSetter)
		if !ok1 || !ok2 {
			panic("esp: crypto/cipher CBC modes lost SetIV")
		}
		// RFC 3602 §3 wants unpredictable IVs. We encrypt the sequence
		// number under a random per-SA key (NIST SP 800-38A Appendix C):
		// unique per packet since AES is a permutation, unpredictable
		// without the key, and no per-packet call into crypto/rand.
		var ivKey [16]byte
		if _, err := rand.Read(ivKey[:]); err != nil {
			return nil, fmt.Errorf("esp: CBC IV key: %w", err)
		}
		sa.ivGen, _ = aes.NewCipher(ivKey[:])
		clear(ivKey[:])
	}

	st.mac = newMAC(c.Integ, c.IntegKey)
	sa.setHot()
	return sa, nil
}

// newMAC returns the HMAC of i keyed with key (RFC 2104; RFC 2404, RFC 4868
// §2.1), or nil for IntegNone.
func newMAC(i Integ, key []byte) hash.Hash {
	switch i {
	case HMACSHA1_96:
		return hmac.New(sha1.New, key)
	case HMACSHA256_128:
		return hmac.New(sha256.New, key)
	case HMACSHA384_192:
		return hmac.New(sha512.New384, key)
	case HMACSHA512_256:
		return hmac.New(sha512.New, key)
	}
	return nil
}

// SPI returns the SA's Security Parameters Index.
func (sa *SA) SPI() uint32 { return sa.spi }

// Cipher returns the SA's encryption transform.
func (sa *SA) Cipher() Cipher { return sa.cipher }

// Integ returns the SA's integrity transform.
func (sa *SA) Integ() Integ { return sa.integ }

// ESN reports whether the SA uses 64-bit Extended Sequence Numbers.
func (sa *SA) ESN() bool { return sa.esn }

// HeaderLen is the ESP header length: SPI, sequence number and IV (16 for
// GCM, CTR and ChaCha20-Poly1305; 24 for CBC).
func (sa *SA) HeaderLen() int { return sa.hdrLen }

// ICVLen is the length of the ICV (or AEAD tag) that ends each packet.
func (sa *SA) ICVLen() int { return sa.icvLen }

// MaxTrailer is the most bytes Seal writes after the payload: padding,
// Pad Length, Next Header and ICV.
func (sa *SA) MaxTrailer() int { return sa.align - 1 + TrailerLen + sa.icvLen }

// Overhead is the exact number of bytes Seal adds around an n-byte payload.
func (sa *SA) Overhead(n int) int {
	return sa.hdrLen + sa.padLen(n) + TrailerLen + sa.icvLen
}

// padLen is the padding Seal adds after n payload bytes: the least that
// makes payload + padding + 2 a multiple of the alignment (RFC 4303 §2.4).
func (sa *SA) padLen(n int) int {
	return (sa.align - (n+TrailerLen)%sa.align) % sa.align
}
