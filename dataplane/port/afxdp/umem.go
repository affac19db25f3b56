package afxdp

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/tunterm/tunterm/dataplane/port"
)

// umemHeadroom is the headroom registered with the UMEM. The kernel always
// leaves XDP_PACKET_HEADROOM (256) in front of a received frame on top of
// it, so a frame lands at chunk offset umemHeadroom+256 = port.Headroom.
const umemHeadroom = port.Headroom - unix.XDP_PACKET_HEADROOM

// Compile-time check that port.Headroom leaves room for the kernel's
// XDP_PACKET_HEADROOM (a negative constant would not convert).
const _ = uint(umemHeadroom)

// maxPorts bounds the sockets sharing one UMEM (the owner table is a byte
// per chunk).
const maxPorts = 255

// ownerPool marks a chunk that is not in any kernel ring: the worker or the
// pool has it.
const ownerPool = 0

// UMEM is the packet memory of one worker: a page-aligned anonymous mmap of
// port.ChunkSize chunks, registered with the kernel by the first socket
// opened on it and shared (XDP_SHARED_UMEM) by every further socket, so a
// frame received on one interface can be transmitted on another without a
// copy. Pool is the worker's single allocator over it.
//
// Every chunk is in exactly one place: the pool's free list, the worker's
// hands (a port.Frame), or one port's kernel rings (fill → rx, tx →
// completion). The UMEM records which port's rings hold each chunk so that
// Port.Close can take back everything the kernel still held.
//
// A UMEM, its Pool and its Ports are owned by one worker goroutine and are
// not safe for concurrent use, except for Port.Stats.
type UMEM struct {
	mem    []byte
	pool   *port.Pool
	owner  []uint8         // per chunk: ownerPool, or the slot+1 of the port whose rings hold it
	ports  [maxPorts]*Port // open ports by slot
	nopen  int             // open ports
	zc     bool            // the registration is in zero-copy mode (set by the first socket)
	wakeup bool            // the registration uses need-wakeup (set by the first socket)
	closed bool
}

// ErrClosed is returned when using a closed UMEM.
var ErrClosed = errors.New("afxdp: closed")

// NewUMEM maps frames chunks of port.ChunkSize bytes.
func NewUMEM(frames int) (*UMEM, error) {
	if frames <= 0 || frames > 1<<22 {
		return nil, fmt.Errorf("afxdp: NewUMEM(%d): frame count out of range", frames)
	}
	mem, err := unix.Mmap(-1, 0, frames*port.ChunkSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("afxdp: mmap UMEM of %d frames: %w", frames, err)
	}
	return &UMEM{mem: mem, pool: port.NewPoolOver(mem), owner: make([]uint8, frames)}, nil
}

// Mem returns the UMEM region (for a port.Depot shared by several workers;
// then give each port its worker's pool in Options.Pool and leave Pool()
// unused).
func (u *UMEM) Mem() []byte { return u.mem }

// Pool returns the allocator over the UMEM's chunks: the worker's single
// pool for every port opened on this UMEM. It is valid until Close.
func (u *UMEM) Pool() *port.Pool { return u.pool }

// Frames is the number of chunks.
func (u *UMEM) Frames() int { return len(u.owner) }

// Close unmaps the UMEM. Every Port opened on it must be closed first; the
// Pool and every Frame from it are invalid afterwards.
func (u *UMEM) Close() error {
	if u.closed {
		return nil
	}
	if u.nopen > 0 {
		return fmt.Errorf("afxdp: UMEM.Close with %d ports still open", u.nopen)
	}
	u.closed = true
	err := unix.Munmap(u.mem)
	u.mem = nil
	if err != nil {
		return fmt.Errorf("afxdp: munmap UMEM: %w", err)
	}
	return nil
}

// anchor returns an open port whose socket the next socket can share the
// UMEM registration through: one not bound to the same interface and queue
// (the kernel would then try to share that socket's fill and completion
// rings, and we want each socket to have its own).
func (u *UMEM) anchor(ifindex, queue int) (*Port, bool) {
	same := false
	for _, p := range u.ports {
		if p == nil {
			continue
		}
		if p.ifindex == ifindex && p.queue == queue {
			same = true
			continue
		}
		return p, true
	}
	return nil, same
}

func (u *UMEM) freeSlot() int {
	for i, p := range u.ports {
		if p == nil {
			return i
		}
	}
	return -1
}
