package esp

// Anti-replay window (RFC 4303 §3.4.3 and Appendix A), kept as an RFC 6479
// ring of 64-bit blocks: advancing the window clears whole blocks instead of
// shifting a bitmap, so Check and Update cost O(1) (O(W/64) block clears at
// worst on a big jump) and never allocate.
//
// Sequence numbers are handled as 64-bit values. Without ESN the high half is
// always 0; with ESN (RFC 4304) inferSeq reconstructs it from the 32 bits on
// the wire.
//
// A window is owned by its SA's one worker; it has no locking.

// Window size limits. Sizes are rounded up to a multiple of 64.
const (
	DefaultReplayWindow = 64
	MinReplayWindow     = 64
	MaxReplayWindow     = 4096
)

const (
	blockBits    = 64
	blockShift   = 6
	maxRingBlock = 128 // power of two ≥ MaxReplayWindow/64 + 1
)

type window struct {
	top  uint64   // highest authenticated sequence number (0: none yet)
	size uint64   // W, a multiple of 64
	mask uint64   // len(ring)-1
	ring []uint64 // power-of-two ring, ≥ W/64+1 blocks
}

func newWindow(size int) window {
	n := size/blockBits + 1
	r := 1
	for r < n {
		r <<= 1
	}
	return window{size: uint64(size), mask: uint64(r - 1), ring: make([]uint64, r)}
}

// reset empties the window and makes top the highest sequence number seen.
func (w *window) reset(top uint64) {
	clear(w.ring)
	w.top = top
}

// check reports whether seq may be accepted: not 0, not left of the window,
// not already seen. It changes nothing.
func (w *window) check(seq uint64) bool {
	if seq == 0 {
		return false // never sent (RFC 4303 §3.3.3)
	}
	if seq > w.top {
		return true
	}
	if w.top-seq >= w.size {
		return false // too old
	}
	return w.ring[(seq>>blockShift)&w.mask]&(1<<(seq&(blockBits-1))) == 0
}

// update records seq as seen, sliding the window right if seq is new. Call
// it only after the packet passed its integrity check (RFC 4303 §3.4.3).
func (w *window) update(seq uint64) {
	if seq > w.top {
		cur, next := w.top>>blockShift, seq>>blockShift
		diff := next - cur
		if diff > w.mask+1 {
			diff = w.mask + 1
		}
		for i := uint64(1); i <= diff; i++ {
			w.ring[(cur+i)&w.mask] = 0
		}
		w.top = seq
	} else if w.top-seq >= w.size {
		return // left of the window: its block may be reused
	}
	w.ring[(seq>>blockShift)&w.mask] |= 1 << (seq & (blockBits - 1))
}

// inferSeq reconstructs the 64-bit ESN from its low 32 bits per RFC 4303
// Appendix A2.2, relative to the window's top T = Th||Tl and size W:
//
//	Case A, Tl >= W-1 (window inside one 2^32 subspace):
//	    Seql >= Tl-W+1  -> Seqh = Th     (inside or right of the window)
//	    otherwise       -> Seqh = Th+1   (wrapped into the next subspace)
//	Case B, Tl <  W-1 (window straddles a subspace boundary):
//	    Seql >= Tl-W+1 (mod 2^32) -> Seqh = Th-1 (left part of the window)
//	    otherwise                 -> Seqh = Th
//
// ok is false when the inferred number cannot exist: Case B with Th = 0 (the
// number would precede the SA's first packet) or Case A with Th = 2^32-1 (the
// 64-bit space is exhausted). The caller drops such packets as replays.
func (w *window) inferSeq(seql uint32) (seq uint64, ok bool) {
	th, tl := uint32(w.top>>32), uint32(w.top)
	ws := uint32(w.size)
	bottom := tl - ws + 1 // mod 2^32
	hi := th
	if tl >= ws-1 {
		if seql < bottom {
			if th == ^uint32(0) {
				return 0, false
			}
			hi = th + 1
		}
	} else if seql >= bottom {
		if th == 0 {
			return 0, false
		}
		hi = th - 1
	}
	return uint64(hi)<<32 | uint64(seql), true
}
