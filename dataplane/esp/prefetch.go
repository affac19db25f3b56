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

// Prefetch asks for the memory Open or Seal will read besides the packet
// and the replay window to be brought into the cache, without changing
// anything and without waiting for it: the cipher's key schedule and
// tables and the per-packet part of the SA's State (prefetch.ForRead; on
// amd64 PREFETCHT0, which retires at once). It returns a value that means
// nothing (callers sum it into a sink). A worker calls it for every
// packet of a batch, then, once those lines have arrived, PrefetchWindow.
func (sa *SA) Prefetch() uint64 {
	// The crypto object first: its address is in the SA, which the caller
	// has just read.
	return prefetch.ForRead(sa.hot, sa.coldOff) +
		prefetch.ForRead(unsafe.Add(sa.hot, sa.coldEnd), sa.hotSize-sa.coldEnd) +
		prefetch.ForRead(unsafe.Pointer(sa.St), stateHotLen)
}

// PrefetchWindow asks for the replay window's word for pkt's sequence
// number, without waiting for it; it reads the State to find the word, so
// it belongs after Prefetch, once the State is in the cache. pkt starts at
// the ESP header; with a pkt too short to hold one, or an SA without
// anti-replay, it does nothing. It returns a value that means nothing.
// Call it only from the SA's worker (it reads the window without
// synchronisation).
func (sa *SA) PrefetchWindow(pkt []byte) uint64 {
	st := sa.St
	if len(pkt) < BaseHeaderLen || st.noReplay {
		return 0
	}
	seq := uint64(binary.BigEndian.Uint32(pkt[4:8]))
	w := &st.win
	return prefetch.ForRead(unsafe.Pointer(&w.ring[(seq>>blockShift)&w.mask]), unsafe.Sizeof(w.ring[0]))
}
