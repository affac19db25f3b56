package esp

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
)

// AES-CTR for ESP (RFC 3686 §4): the keystream is AES_K(counter block) for
//
//	counter block = Nonce (4, the key's trailing salt) || IV (8) || Block Counter (4)
//
// with the block counter starting at 1 for the first 16 bytes of the payload.
//
// Go's cipher.NewCTR allocates on every call (one 512-byte object) and cannot
// be given a new IV, and a per-block Block.Encrypt loop is 4-5 times slower
// than the assembly CTR inside AES-GCM on 1400-byte packets (BenchmarkCTR).
// So aesCTR.xor borrows GCM's CTR: for a 12-byte
// nonce N, GCM (NIST SP 800-38D §7.1) encrypts its plaintext with counter
// blocks N||2, N||3, ... (N||1 is reserved for the tag). With N = Nonce||IV
// those are exactly the RFC 3686 counter blocks 2, 3, ...; block 1 is one
// Block.Encrypt call. GCM also computes GHASH over the ciphertext and appends
// a 16-byte tag, which we throw away: the GHASH work is the price of the
// assembly CTR, still far cheaper than the block loop (see BenchmarkCTR).
//
// The tag must land somewhere. xor never writes outside p: it saves the
// last 16 bytes of p, lets GCM write its tag over them, then restores them and
// XORs them with their keystream (at most two more Block.Encrypt calls). This
// keeps the buffer contract of Open (whose HMAC-SHA1-96 ICV is only 12 bytes)
// independent of the ICV size.

// ctrDirect is the length up to which the block loop is used: below it the
// GCM call's fixed cost (tag computation) is not worth it.
const ctrDirect = 64

// aesCTR is the immutable part of an AES-CTR transform; safe for concurrent
// use.
type aesCTR struct {
	block cipher.Block
	gcm   cipher.AEAD // same key; used only as a CTR keystream engine
}

func newAESCTR(block cipher.Block) (aesCTR, error) {
	g, err := cipher.NewGCM(block)
	if err != nil {
		return aesCTR{}, err
	}
	return aesCTR{block: block, gcm: g}, nil
}

// ctrScratch is per-worker scratch space (it lives in State, on the heap, so
// slices of it passed to interface methods do not allocate).
type ctrScratch struct {
	blk  [16]byte // counter block: nonce || IV || counter
	ks   [16]byte // one keystream block
	tail [16]byte // saved last 16 bytes of the payload
}

// xor XORs p in place with the RFC 3686 keystream of nonce||iv (4+8 bytes in
// s.blk[:12], set by the caller). It writes only inside p.
func (c *aesCTR) xor(s *ctrScratch, p []byte) { c.xorAbove(s, p, ctrDirect) }

// xorAbove is xor with the block loop used up to direct bytes (at least 31:
// the GCM path needs two blocks). Tests lower it to run the RFC 3686 vectors
// through the GCM path.
func (c *aesCTR) xorAbove(s *ctrScratch, p []byte, direct int) {
	n := len(p)
	if n <= max(direct, 31) {
		c.xorBlocks(s, p, 0)
		return
	}
	// Block 1 by hand; blocks 2.. by GCM over p[16:n-16]. GCM writes its
	// tag over p[n-16:n], so save those bytes first.
	copy(s.tail[:], p[n-16:])
	c.keystream(s, 1)
	c.gcm.Seal(p[16:16], s.blk[:12], p[16:n-16], nil)
	subtle.XORBytes(p[:16], p[:16], s.ks[:])
	copy(p[n-16:], s.tail[:])
	c.xorBlocks(s, p[n-16:], n-16)
}

// xorBlocks XORs q, which starts at byte offset off of the payload, with the
// keystream, one Block.Encrypt per (partial) block.
func (c *aesCTR) xorBlocks(s *ctrScratch, q []byte, off int) {
	for len(q) > 0 {
		blk := off / 16
		c.keystream(s, uint32(blk+1))
		k := s.ks[off-blk*16:]
		m := subtle.XORBytes(q, q, k) // min(len(q), len(k))
		q = q[m:]
		off += m
	}
}

// keystream puts AES_K(nonce || iv || counter) into s.ks.
func (c *aesCTR) keystream(s *ctrScratch, counter uint32) {
	binary.BigEndian.PutUint32(s.blk[12:], counter)
	c.block.Encrypt(s.ks[:], s.blk[:])
}
