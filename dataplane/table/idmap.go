package table

import (
	"unsafe"

	"github.com/tunterm/tunterm/dataplane/internal/prefetch"
)

// IDMap maps a 32-bit ID (an SPI, a session ID) to a value: an immutable
// open-addressing table built once per snapshot, cheaper on the hot path
// than a Go map (one multiplicative hash, linear probing over a flat array,
// no tombstones since it never changes after Build).
//
// The zero key is not storable (SPI 0 and session ID 0 are reserved by
// RFC 4303 §2.1 and RFC 3931 §4.1).
type IDMap[V any] struct {
	keys []uint32
	vals []V
	mask uint32
	n    int
}

// NewIDMap builds a table of the entries of m (keys must be non-zero).
func NewIDMap[V any](m map[uint32]V) IDMap[V] {
	size := uint32(8)
	for size < uint32(2*len(m)) {
		size <<= 1
	}
	t := IDMap[V]{keys: make([]uint32, size), vals: make([]V, size), mask: size - 1, n: len(m)}
	for k, v := range m {
		if k == 0 {
			panic("table: IDMap key 0")
		}
		i := idHash(k) & t.mask
		for t.keys[i] != 0 {
			i = (i + 1) & t.mask
		}
		t.keys[i], t.vals[i] = k, v
	}
	return t
}

func idHash(k uint32) uint32 { return (k * 0x9e3779b1) ^ (k >> 16) }

// Get returns the value for k, or the zero value.
func (t *IDMap[V]) Get(k uint32) (v V) {
	if t.n == 0 || k == 0 {
		return v
	}
	i := idHash(k) & t.mask
	for {
		switch t.keys[i] {
		case k:
			return t.vals[i]
		case 0:
			return v
		}
		i = (i + 1) & t.mask
	}
}

// Prefetch asks for the slot where the lookup of k starts, its key and its
// value, to be brought into cache without waiting for them
// (prefetch.ForRead), and returns a value that means nothing. A loop that
// calls Prefetch for every key of a batch before a loop of Gets lets the
// batch's cache misses overlap: the Gets' own loads depend on a compare
// each, so the processor can have only a few of them in flight.
func (t *IDMap[V]) Prefetch(k uint32) uint64 {
	if t.n == 0 {
		return 0
	}
	i := idHash(k) & t.mask
	return prefetch.ForRead(unsafe.Pointer(&t.keys[i]), 4) +
		prefetch.ForRead(unsafe.Pointer(&t.vals[i]), unsafe.Sizeof(t.vals[i]))
}

// Len is the number of entries.
func (t *IDMap[V]) Len() int { return t.n }
