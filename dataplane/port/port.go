// Package port defines how the dataplane moves frames: fixed-size buffers from
// a per-worker Pool, descriptors (Frame) batched in a Batch, and the Port
// interface that the AF_XDP, AF_PACKET and in-memory implementations satisfy.
//
// Buffer model. Every frame lives in one chunk of a Pool (on AF_XDP the chunk
// is a UMEM frame). A chunk reserves Headroom bytes in front of the received
// frame so that pushing tunnel headers is a reslice, and keeps the rest as
// tailroom for the ESP trailer. Ownership of a chunk moves with its Frame
// descriptor: Receive hands frames to the worker; the worker passes each one to
// exactly one of Transmit or Pool.Put (drops included). Nothing is ever freed
// twice or leaked; Pool.InUse lets tests check that.
package port

import (
	"fmt"
	"sync"
)

// Buffer geometry. ChunkSize matches the usual AF_XDP frame size; Headroom
// covers the largest encapsulation we push in front of an inner frame:
// Ethernet 14 + IPv6 40 + UDP 8 + ESP 8 + IV 16 + inner IPv6 40 + UDP 8 +
// L2TPv3 8 + cookie 8 + sublayer 4 + VLAN 4 = 158, rounded up.
const (
	ChunkSize = 2048
	Headroom  = 256
	// Tailroom is kept free after the largest frame for the ESP trailer
	// (padding up to 15 + 2 + ICV up to 32) and cipher scratch space.
	Tailroom = 128
	// MaxFrame is the largest frame a port accepts into a chunk; longer
	// frames are dropped by the port (jumbo frames are not supported).
	MaxFrame = ChunkSize - Headroom - Tailroom
	// BatchSize is the most frames moved per poll.
	BatchSize = 64
)

// Frame describes one frame in a chunk. The frame's bytes are
// Buf[Off:Off+Len]; Buf is the whole chunk.
type Frame struct {
	Buf []byte // the whole chunk, len == ChunkSize
	Off int    // start of the frame in Buf
	Len int    // frame length
	// ID identifies the chunk within its Pool (an index, or a UMEM address).
	ID uint32
	// TS is the receive timestamp in nanoseconds (0 if the port has none);
	// copies and encapsulations keep it so captures stay in order.
	TS int64
}

// Bytes returns the frame's bytes.
func (f *Frame) Bytes() []byte { return f.Buf[f.Off : f.Off+f.Len] }

// Push grows the frame by n bytes at the front and returns the new head.
// The caller has checked f.Off >= n.
func (f *Frame) Push(n int) []byte {
	f.Off -= n
	f.Len += n
	return f.Buf[f.Off : f.Off+n]
}

// Pull removes n bytes from the front.
func (f *Frame) Pull(n int) { f.Off += n; f.Len -= n }

// Tail returns the bytes after the frame up to the end of the chunk.
func (f *Frame) Tail() int { return len(f.Buf) - f.Off - f.Len }

// Batch is a fixed array of frame descriptors; it never allocates.
type Batch struct {
	F [BatchSize]Frame
	N int
}

// Full reports whether the batch has no room left.
func (b *Batch) Full() bool { return b.N == BatchSize }

// Add appends f; the caller has checked !Full().
func (b *Batch) Add(f Frame) { b.F[b.N] = f; b.N++ }

// Frames returns the used part of the batch.
func (b *Batch) Frames() []Frame { return b.F[:b.N] }

// Pool hands out a worker's chunks. It is owned by one worker (not safe for
// concurrent use); the worker's ports draw from it and return to it.
//
// A standalone pool (NewPool, NewPoolOver) owns all its chunks. Pools made
// with Depot.NewPool share one region (one AF_XDP UMEM for every socket of
// every worker): each keeps a small LIFO cache and exchanges chunks with the
// depot in bulk, so a chunk received by one worker may be transmitted or
// freed by another.
type Pool struct {
	mem   []byte
	free  []uint32
	n     int // chunks in mem
	depot *Depot
	// own is how many chunks this pool holds or has handed out and not yet
	// returned (standalone: n).
	own int
}

// NewPool allocates n chunks of ChunkSize bytes.
func NewPool(n int) *Pool { return NewPoolOver(make([]byte, n*ChunkSize)) }

// NewPoolOver makes a pool of the chunks of mem (len(mem)/ChunkSize of them),
// e.g. an mmap'ed AF_XDP UMEM region: chunk id starts at byte id*ChunkSize.
func NewPoolOver(mem []byte) *Pool {
	n := len(mem) / ChunkSize
	p := &Pool{mem: mem[:n*ChunkSize], free: make([]uint32, n), n: n, own: n}
	for i := range p.free {
		p.free[i] = uint32(n - 1 - i)
	}
	return p
}

// Mem returns the memory the chunks live in.
func (p *Pool) Mem() []byte { return p.mem }

// Frame returns a descriptor for chunk id with the frame at byte offset off
// of the chunk and length n: how a port turns a received descriptor (for
// AF_XDP a UMEM address) back into a Frame.
func (p *Pool) Frame(id uint32, off, n int) Frame {
	return Frame{Buf: p.Chunk(id), Off: off, Len: n, ID: id}
}

// Get returns a fresh frame with Off = Headroom and Len = 0, or ok == false
// when the pool (and its depot) is empty.
func (p *Pool) Get() (f Frame, ok bool) {
	id, ok := p.GetID()
	if !ok {
		return f, false
	}
	return Frame{Buf: p.Chunk(id), Off: Headroom, ID: id}, true
}

// GetID takes a chunk without building a Frame (e.g. to post it to an
// AF_XDP fill ring); ok is false when none is left.
func (p *Pool) GetID() (id uint32, ok bool) {
	k := len(p.free)
	if k == 0 {
		if p.depot == nil || p.depot.take(p) == 0 {
			return 0, false
		}
		k = len(p.free)
	}
	id = p.free[k-1]
	p.free = p.free[:k-1]
	return id, true
}

// Put returns a frame's chunk to the pool.
func (p *Pool) Put(f *Frame) { p.PutID(f.ID) }

// PutID returns chunk id (e.g. from an AF_XDP completion ring).
func (p *Pool) PutID(id uint32) {
	if int(id) >= p.n || len(p.free) >= p.own {
		panic(fmt.Sprintf("port: Put of chunk %d: not from this pool or double free", id))
	}
	p.free = append(p.free, id)
	if p.depot != nil && len(p.free) >= 2*depotBulk {
		p.depot.give(p)
	}
}

// Chunk returns chunk id's memory.
func (p *Pool) Chunk(id uint32) []byte {
	o := int(id) * ChunkSize
	return p.mem[o : o+ChunkSize : o+ChunkSize]
}

// Size is the number of chunks in the region.
func (p *Pool) Size() int { return p.n }

// InUse is the number of chunks this pool handed out and that were not
// returned to it. With a depot, chunks may travel between workers, so only
// Depot.InUse is meaningful.
func (p *Pool) InUse() int { return p.own - len(p.free) }

// depotBulk is how many chunks a cache exchanges with the depot at once.
const depotBulk = 32

// Depot is the shared free list behind the per-worker pools of one region.
// Its methods are safe for concurrent use; pools touch it once per
// depotBulk chunks.
type Depot struct {
	mu   sync.Mutex
	mem  []byte
	n    int
	free []uint32
}

// NewDepot makes a depot of the chunks of mem.
func NewDepot(mem []byte) *Depot {
	n := len(mem) / ChunkSize
	d := &Depot{mem: mem[:n*ChunkSize], n: n, free: make([]uint32, n)}
	for i := range d.free {
		d.free[i] = uint32(n - 1 - i)
	}
	return d
}

// NewPool returns a worker's cache over the depot.
func (d *Depot) NewPool() *Pool {
	return &Pool{mem: d.mem, n: d.n, depot: d, free: make([]uint32, 0, 2*depotBulk), own: 1 << 30}
}

// InUse is the number of chunks outside the depot and every cache's free
// list: held by workers, ports or the kernel. Only exact when the pools are
// quiescent.
func (d *Depot) InUse(pools ...*Pool) int {
	d.mu.Lock()
	n := d.n - len(d.free)
	d.mu.Unlock()
	for _, p := range pools {
		n -= len(p.free)
	}
	return n
}

func (d *Depot) take(p *Pool) int {
	d.mu.Lock()
	k := min(depotBulk, len(d.free))
	p.free = append(p.free, d.free[len(d.free)-k:]...)
	d.free = d.free[:len(d.free)-k]
	d.mu.Unlock()
	return k
}

func (d *Depot) give(p *Pool) {
	k := len(p.free) - depotBulk
	d.mu.Lock()
	d.free = append(d.free, p.free[k:]...)
	d.mu.Unlock()
	p.free = p.free[:k]
}

// Port is one queue pair of a network interface as seen by one worker.
// Implementations are owned by that worker and need not be safe for
// concurrent use.
type Port interface {
	// Name is the interface name for logs and counters.
	Name() string
	// Receive appends up to BatchSize-b.N received frames to b and returns
	// how many it added. It never blocks.
	Receive(b *Batch) int
	// Transmit takes ownership of every frame in b and resets b.N to 0.
	// Frames the port cannot queue are returned to the pool and counted by
	// the port; Transmit reports how many it queued.
	Transmit(b *Batch) int
}
