package esp

import (
	"encoding/binary"
	"reflect"
	"unsafe"

	"github.com/tunterm/tunterm/dataplane/internal/prefetch"
)

// Prefetching an SA's state.
//
// With thousands of SAs and traffic spread over all of them, every packet's
// SA is cold: Open reads the SA, its State, the AES key schedule and the
// GHASH table (about a dozen cache lines for AES-GCM) one after another, and
// each of those reads waits for memory. A worker that calls Prefetch for
// every packet of a batch before opening the first one lets those misses
// overlap: the requests of one Prefetch do not depend on each other, and
// those of different packets not at all.

// cryptoObject returns the object behind a crypto interface value (the
// *gcm.GCM behind a cipher.AEAD, say) and its type, or (nil, nil) when the
// dynamic type is not a non-nil pointer. The object is immutable after its
// constructor, so reading it from any goroutine is safe.
func cryptoObject(x any) (unsafe.Pointer, reflect.Type) {
	if x == nil {
		return nil, nil
	}
	v := reflect.ValueOf(x)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil, nil
	}
	return v.UnsafePointer(), v.Type().Elem()
}

// decSchedule finds, in the type of an AES-based crypto object, the AES
// decryption key schedule (crypto/internal/fips140/aes keeps it in an array
// field named dec next to enc): its offset and end, or (0, 0). GCM and CTR
// only ever encrypt blocks, so Prefetch skips those 240 bytes: the two or
// three of a *gcm.GCM's twelve cache lines that hold nothing else. Should a
// Go release rename or move the field, nothing breaks: Prefetch then reads
// the whole object again.
func decSchedule(t reflect.Type) (off, end uintptr) {
	if t.Kind() != reflect.Struct {
		return 0, 0
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Name == "dec" && f.Type.Kind() == reflect.Array {
			return f.Offset, f.Offset + f.Type.Size()
		}
		if o, e := decSchedule(f.Type); e > 0 {
			return f.Offset + o, f.Offset + e
		}
	}
	return 0, 0
}

// setHot picks, for a new SA, the crypto object its Open and Seal read for
// every packet, and the part of it they never read.
func (sa *SA) setHot() {
	var t reflect.Type
	encryptOnly := false
	switch sa.kind {
	case kindAEAD:
		sa.hot, t = cryptoObject(sa.aead)
		encryptOnly = sa.cipher != ChaCha20Poly1305
	case kindCTR:
		sa.hot, t = cryptoObject(sa.ctr.gcm) // holds the same key schedule as block
		encryptOnly = true
	case kindCBC:
		sa.hot, t = cryptoObject(sa.block) // CBC decrypts: both schedules
	}
	if sa.hot == nil {
		return
	}
	sa.hotSize = t.Size()
	if encryptOnly {
		sa.coldOff, sa.coldEnd = decSchedule(t)
	}
}

// Prefetch brings into the cache, without changing anything, the memory
// Open(pkt) or Seal will read besides the packet itself: the per-packet
// part of the SA's State, the replay window's word for pkt's sequence
// number and the cipher's key schedule and tables. The crypto object and
// the State are asked for with prefetch.ForRead (on amd64 PREFETCHT0,
// which does not wait for them); the window's word is read. It returns a
// value derived from what it read, which means nothing (callers sum it
// into a sink so the loads are not optimised away). pkt starts at the ESP
// header; with a pkt too short to hold one (nil before a Seal) the window
// is left alone. Call it only from the SA's worker (it reads the window
// without synchronisation).
func (sa *SA) Prefetch(pkt []byte) uint64 {
	// The crypto object first: its address is in the SA, which the caller
	// has just read, while the window's word waits for the State.
	h := prefetch.ForRead(sa.hot, sa.coldOff) +
		prefetch.ForRead(unsafe.Add(sa.hot, sa.coldEnd), sa.hotSize-sa.coldEnd)
	st := sa.St
	h += prefetch.ForRead(unsafe.Pointer(st), stateHotLen)
	if len(pkt) >= BaseHeaderLen && !st.noReplay {
		seq := uint64(binary.BigEndian.Uint32(pkt[4:8]))
		w := &st.win
		h += w.ring[(seq>>blockShift)&w.mask]
	}
	return h
}
