package afxdp

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ring is one of the four single-producer/single-consumer rings an AF_XDP
// socket shares with the kernel (Documentation/networking/af_xdp.rst):
//
//	mmap'ed region:  | producer u32 | consumer u32 | flags u32 | ... | desc[size] |
//	                   (each at the offset XDP_MMAP_OFFSETS reports)
//
// The producer and consumer words are written by one side and read by the
// other, so they are only ever touched through sync/atomic: an atomic Load of
// the peer's index orders the descriptor reads after it (acquire), an atomic
// Store of our own index orders our descriptor writes before it (release).
// We keep a cached copy of the peer's index and refresh it only when the
// cached value does not already satisfy the request, and we publish our own
// index once per batch.
//
// A ring is owned by the goroutine that owns its Port.
type ring struct {
	mem   []byte         // the whole mmap'ed region
	prod  *atomic.Uint32 // producer index (ours for fill/tx, the kernel's for rx/comp)
	cons  *atomic.Uint32 // consumer index (the kernel's for fill/tx, ours for rx/comp)
	flags *atomic.Uint32 // XDP_RING_NEED_WAKEUP
	mask  uint32
	size  uint32

	// Our side's index (not yet published, or published) and the peer's
	// index as last loaded.
	cachedProd uint32
	cachedCons uint32
}

// mapRing mmaps a ring of n descriptors of descSize bytes at page offset pgoff
// of fd and points the ring at its producer, consumer and flags words.
func mapRing(fd int, off unix.XDPRingOffset, n uint32, descSize uintptr, pgoff int64) (ring, error) {
	length := int(off.Desc) + int(n)*int(descSize)
	mem, err := unix.Mmap(fd, pgoff, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return ring{}, err
	}
	r := ring{
		mem:   mem,
		prod:  (*atomic.Uint32)(unsafe.Pointer(&mem[off.Producer])),
		cons:  (*atomic.Uint32)(unsafe.Pointer(&mem[off.Consumer])),
		flags: (*atomic.Uint32)(unsafe.Pointer(&mem[off.Flags])),
		mask:  n - 1,
		size:  n,
	}
	r.cachedProd = r.prod.Load()
	r.cachedCons = r.cons.Load()
	return r, nil
}

func (r *ring) unmap() {
	if r.mem != nil {
		unix.Munmap(r.mem)
		*r = ring{}
	}
}

// needWakeup reports whether the kernel asked to be woken (XDP_USE_NEED_WAKEUP).
func (r *ring) needWakeup() bool { return r.flags.Load()&unix.XDP_RING_NEED_WAKEUP != 0 }

// --- producer side (fill, tx) ---------------------------------------------

// free returns how many descriptors can be produced, at least want if that
// many are free. It reloads the kernel's consumer index only when the cached
// one does not show want free slots.
func (r *ring) free(want uint32) uint32 {
	if n := r.size - (r.cachedProd - r.cachedCons); n >= want {
		return n
	}
	r.cachedCons = r.cons.Load()
	return r.size - (r.cachedProd - r.cachedCons)
}

// publish makes every descriptor written so far visible to the kernel.
func (r *ring) publish() { r.prod.Store(r.cachedProd) }

// --- consumer side (rx, completion) ---------------------------------------

// avail returns how many descriptors can be consumed, at most max. It
// reloads the kernel's producer index only when the cached one shows fewer
// than max.
func (r *ring) avail(max uint32) uint32 {
	n := r.cachedProd - r.cachedCons
	if n < max {
		r.cachedProd = r.prod.Load()
		n = r.cachedProd - r.cachedCons
	}
	if n > max {
		n = max
	}
	return n
}

// release hands n consumed descriptor slots back to the kernel.
func (r *ring) release(n uint32) {
	r.cachedCons += n
	r.cons.Store(r.cachedCons)
}

// addrRing is a fill or completion ring: descriptors are UMEM addresses.
type addrRing struct {
	ring
	desc []uint64
}

// descRing is an rx or tx ring: descriptors are struct xdp_desc.
type descRing struct {
	ring
	desc []unix.XDPDesc
}

func mapAddrRing(fd int, off unix.XDPRingOffset, n uint32, pgoff int64) (addrRing, error) {
	r, err := mapRing(fd, off, n, unsafe.Sizeof(uint64(0)), pgoff)
	if err != nil {
		return addrRing{}, err
	}
	return addrRing{r, unsafe.Slice((*uint64)(unsafe.Pointer(&r.mem[off.Desc])), n)}, nil
}

func mapDescRing(fd int, off unix.XDPRingOffset, n uint32, pgoff int64) (descRing, error) {
	r, err := mapRing(fd, off, n, unsafe.Sizeof(unix.XDPDesc{}), pgoff)
	if err != nil {
		return descRing{}, err
	}
	return descRing{r, unsafe.Slice((*unix.XDPDesc)(unsafe.Pointer(&r.mem[off.Desc])), n)}, nil
}
