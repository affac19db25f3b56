package esp

import (
	"encoding/binary"
	"reflect"
	"unsafe"
)

// Prefetching an SA's state.
//
// With thousands of SAs and traffic spread over all of them, every packet's
// SA is cold: Open reads the SA, its State, the AES key schedule and the
// GHASH table (about a dozen cache lines for AES-GCM) one after another, and
// each of those reads waits for memory. A worker that calls Prefetch for
// every packet of a batch before opening the first one lets those misses
// overlap: the loads of one Prefetch do not depend on each other, and those
// of different packets not at all.

// cryptoObject returns the object behind a crypto interface value (the
// *gcm.GCM behind a cipher.AEAD, say) and its size, or (nil, 0) when the
// dynamic type is not a non-nil pointer. The object is immutable after its
// constructor, so reading it from any goroutine is safe.
func cryptoObject(x any) (unsafe.Pointer, uintptr) {
	if x == nil {
		return nil, 0
	}
	v := reflect.ValueOf(x)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil, 0
	}
	return v.UnsafePointer(), v.Type().Elem().Size()
}

// hotObject picks, for a new SA, the crypto object its Open and Seal read
// for every packet.
func (sa *SA) hotObject() (unsafe.Pointer, uintptr) {
	switch sa.kind {
	case kindAEAD:
		return cryptoObject(sa.aead)
	case kindCTR:
		return cryptoObject(sa.ctr.gcm) // holds the same key schedule as block
	case kindCBC:
		return cryptoObject(sa.block)
	}
	return nil, 0
}

// Prefetch reads, without changing anything, the memory Open(pkt) will
// read besides pkt itself: the SA, its State, the replay window's word for
// pkt's sequence number and the cipher's key schedule and tables. It
// returns a value derived from what it read, which means nothing (callers
// sum it into a sink so the loads are not optimised away). pkt starts at
// the ESP header; a pkt too short to hold one is ignored. Call it only from
// the SA's worker (it reads the window without synchronisation).
func (sa *SA) Prefetch(pkt []byte) uint64 {
	st := sa.St
	h := st.Packets.Load()
	if len(pkt) >= BaseHeaderLen && !st.noReplay {
		seq := uint64(binary.BigEndian.Uint32(pkt[4:8]))
		w := &st.win
		h += w.ring[(seq>>blockShift)&w.mask]
	}
	p, n := sa.hot, sa.hotSize
	if n == 0 {
		return h
	}
	for off := uintptr(0); off < n; off += 64 {
		h += uint64(*(*byte)(unsafe.Add(p, off)))
	}
	return h + uint64(*(*byte)(unsafe.Add(p, n-1)))
}
