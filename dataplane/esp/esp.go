package esp

import (
	"crypto/subtle"
	"encoding/binary"

	"github.com/tunterm/tunterm/dataplane/stats"
)

// Open authenticates and decrypts one ESP packet in place. pkt runs from the
// SPI to the end of the ICV (the caller has removed the outer IP and UDP
// headers and looked the SA up by SPI).
//
// On success it returns the payload — the inner packet, aliasing pkt (a
// plain sub-slice, so cap arithmetic locates it in the caller's buffer) —
// and the Next Header value. On failure it returns nil, 0 and the drop
// reason, and pkt's contents are unspecified (a failed AEAD open wipes the
// ciphertext).
//
// Steps (RFC 4303 §3.4): length and alignment (Malformed); hard lifetime
// (SAExpired); anti-replay check with ESN inference (Replay, Appendix A);
// ICV or AEAD tag verification in constant time (Integrity); decryption;
// anti-replay window update (only now, §3.4.3); trailer: Pad Length
// (Malformed) and the 1, 2, 3, ... padding (BadPadding, §2.4).
func (sa *SA) Open(pkt []byte) (payload []byte, next uint8, r stats.Reason) {
	st := sa.St
	n := len(pkt)
	ctLen := n - sa.hdrLen - sa.icvLen
	// The ciphertext (payload, padding, Pad Length, Next Header) ends on a
	// 4-byte boundary, a block boundary for CBC (RFC 4303 §2.4, RFC 3602 §2.4).
	if ctLen < sa.align || ctLen&(sa.align-1) != 0 {
		st.MalformedErrors.Add(1)
		return nil, 0, stats.Malformed
	}
	if st.Expired.Load() {
		st.ExpiredErrors.Add(1)
		return nil, 0, stats.SAExpired
	}

	seql := binary.BigEndian.Uint32(pkt[4:8])
	seq := uint64(seql)
	if sa.esn {
		var ok bool
		if seq, ok = st.win.inferSeq(seql); !ok {
			st.ReplayErrors.Add(1)
			return nil, 0, stats.Replay
		}
	}
	if !st.noReplay && !st.win.check(seq) {
		st.ReplayErrors.Add(1)
		return nil, 0, stats.Replay
	}

	ctEnd := n - sa.icvLen
	ct := pkt[sa.hdrLen:ctEnd]
	iv := pkt[BaseHeaderLen:sa.hdrLen]
	switch sa.kind {
	case kindAEAD:
		// RFC 4106 §4 / RFC 7634 §2: nonce = salt || IV. AAD = SPI || seq
		// (RFC 4106 §5, RFC 7634 §2.1), with the high half of the ESN
		// between them.
		copy(st.nonce[4:], iv)
		aad := pkt[:BaseHeaderLen]
		if sa.esn {
			copy(st.aad[0:4], pkt[0:4])
			binary.BigEndian.PutUint32(st.aad[4:8], uint32(seq>>32))
			copy(st.aad[8:12], pkt[4:8])
			aad = st.aad[:]
		}
		if _, err := sa.aead.Open(ct[:0], st.nonce[:], pkt[sa.hdrLen:], aad); err != nil {
			st.IntegrityErrors.Add(1)
			return nil, 0, stats.Integrity
		}
	default:
		if sa.integ != IntegNone {
			sa.icv(st, pkt[:ctEnd], seq)
			if subtle.ConstantTimeCompare(st.sum[:sa.icvLen], pkt[ctEnd:]) != 1 {
				st.IntegrityErrors.Add(1)
				return nil, 0, stats.Integrity
			}
		}
		if sa.kind == kindCBC {
			// RFC 3602 §3: the IV is the first block of the payload.
			st.cbcDIV.SetIV(iv)
			st.cbcDec.CryptBlocks(ct, ct)
		} else {
			copy(st.ctr.blk[4:12], iv)
			sa.ctr.xor(&st.ctr, ct)
		}
	}
	st.win.update(seq)

	// Trailer (RFC 4303 §2.4, §2.5).
	padLen := int(ct[ctLen-2])
	next = ct[ctLen-1]
	end := ctLen - TrailerLen - padLen
	if end < 0 {
		st.MalformedErrors.Add(1)
		return nil, 0, stats.Malformed
	}
	for i, b := range ct[end : ctLen-TrailerLen] {
		if b != byte(i+1) {
			st.PaddingErrors.Add(1)
			return nil, 0, stats.BadPadding
		}
	}
	sa.account(st, end)
	return ct[:end], next, stats.OK
}

// Seal turns the payload buf[off:off+n] into an ESP packet in place and
// returns it as buf[start:end]. It needs off >= HeaderLen() (room for the
// header and IV in front) and len(buf) >= off+n+MaxTrailer() (room for
// padding, Pad Length, Next Header and ICV behind); otherwise it returns
// stats.Malformed and writes nothing.
//
// The sequence number starts at 1 and never wraps: once the last one (2^32-1,
// or 2^64-1 with ESN) is used, State.Overflow is set and Seal refuses with
// stats.SeqOverflow (RFC 4303 §3.3.3). Hard lifetime: stats.SAExpired.
//
// IVs: GCM, CTR and ChaCha20-Poly1305 send the 64-bit sequence number, which
// is unique per key (RFC 4106 §3.1, RFC 3686 §3, RFC 7634 §2). CBC sends the
// sequence number encrypted under a random per-SA key, which is unpredictable
// as RFC 3602 §3 requires.
func (sa *SA) Seal(buf []byte, off, n int, next uint8) (start, end int, r stats.Reason) {
	st := sa.St
	if off < sa.hdrLen || n < 0 || off > len(buf) || n > len(buf)-off-sa.MaxTrailer() {
		st.MalformedErrors.Add(1)
		return 0, 0, stats.Malformed
	}
	if st.Overflow.Load() {
		st.OverflowErrors.Add(1)
		return 0, 0, stats.SeqOverflow
	}
	if st.Expired.Load() {
		st.ExpiredErrors.Add(1)
		return 0, 0, stats.SAExpired
	}
	last := uint64(1<<32 - 1)
	if sa.esn {
		last = 1<<64 - 1
	}
	if st.seqOut >= last { // only after setNextSeq in tests
		st.Overflow.Store(true)
		st.OverflowErrors.Add(1)
		return 0, 0, stats.SeqOverflow
	}
	st.seqOut++
	seq := st.seqOut
	if seq == last {
		st.Overflow.Store(true)
		st.RekeyNeeded.Store(true)
	}

	start = off - sa.hdrLen
	pad := sa.padLen(n)
	ctEnd := off + n + pad + TrailerLen
	end = ctEnd + sa.icvLen

	h := buf[start:off]
	binary.BigEndian.PutUint32(h[0:4], sa.spi)
	binary.BigEndian.PutUint32(h[4:8], uint32(seq))
	iv := h[BaseHeaderLen:]
	t := buf[off+n : ctEnd]
	for i := range pad {
		t[i] = byte(i + 1) // RFC 4303 §2.4 default padding
	}
	t[pad] = byte(pad)
	t[pad+1] = next
	ct := buf[off:ctEnd]

	switch sa.kind {
	case kindAEAD:
		sa.seqIV(st, iv, seq)
		copy(st.nonce[4:], iv)
		aad := h[:BaseHeaderLen]
		if sa.esn {
			copy(st.aad[0:4], h[0:4])
			binary.BigEndian.PutUint32(st.aad[4:8], uint32(seq>>32))
			copy(st.aad[8:12], h[4:8])
			aad = st.aad[:]
		}
		sa.aead.Seal(ct[:0], st.nonce[:], ct, aad) // tag lands in buf[ctEnd:end]
	case kindCTR:
		sa.seqIV(st, iv, seq)
		copy(st.ctr.blk[4:12], iv)
		sa.ctr.xor(&st.ctr, ct)
	case kindCBC:
		if st.testIV {
			copy(iv, st.ivOverride)
		} else {
			clear(st.iv[:8])
			binary.BigEndian.PutUint64(st.iv[8:], seq)
			sa.ivGen.Encrypt(iv, st.iv[:])
		}
		st.cbcEIV.SetIV(iv)
		st.cbcEnc.CryptBlocks(ct, ct)
	}
	if sa.integ != IntegNone { // not st.mac: it sits on one of State's cold lines
		sa.icv(st, buf[start:ctEnd], seq)
		copy(buf[ctEnd:end], st.sum[:sa.icvLen])
	}
	sa.account(st, n)
	return start, end, stats.OK
}

// seqIV writes the 8-byte IV of a counter-based transform: the sequence
// number, or the test override.
func (sa *SA) seqIV(st *State, iv []byte, seq uint64) {
	if st.testIV {
		copy(iv, st.ivOverride)
		return
	}
	binary.BigEndian.PutUint64(iv, seq)
}

// icv computes the untruncated HMAC of b (ESP header through Next Header)
// into st.sum. With ESN the high 32 bits of the sequence number follow b
// (RFC 4303 §3.3.2.1, §3.4.4.1) without being sent.
func (sa *SA) icv(st *State, b []byte, seq uint64) {
	st.mac.Reset()
	st.mac.Write(b)
	if sa.esn {
		binary.BigEndian.PutUint32(st.seqHi[:], uint32(seq>>32))
		st.mac.Write(st.seqHi[:])
	}
	st.mac.Sum(st.sum[:0])
}

// account counts one packet of n payload bytes and applies the lifetimes.
func (sa *SA) account(st *State, n int) {
	// One writer (the SA's worker): a plain load and store is enough and
	// avoids two locked read-modify-writes per packet; readers still see
	// whole values.
	p := st.Packets.Load() + 1
	st.Packets.Store(p)
	b := st.Bytes.Load() + uint64(n)
	st.Bytes.Store(b)
	if (sa.softPackets != 0 && p >= sa.softPackets) || (sa.softBytes != 0 && b >= sa.softBytes) {
		if !st.RekeyNeeded.Load() {
			st.RekeyNeeded.Store(true)
		}
	}
	if (sa.hardPackets != 0 && p >= sa.hardPackets) || (sa.hardBytes != 0 && b >= sa.hardBytes) {
		st.Expired.Store(true)
		st.RekeyNeeded.Store(true)
	}
}
