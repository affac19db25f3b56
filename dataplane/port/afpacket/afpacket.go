//go:build linux

// Package afpacket is the AF_PACKET fallback port: a TPACKET_V3 memory-mapped
// receive ring and sendmmsg(2) transmit on one interface. The daemon picks it
// when an AF_XDP socket cannot be attached (no driver support, old kernel,
// veth without XDP); it is slower (one copy each way, ~0.4-0.6 Mpps per core
// on our reference hosts) but needs nothing beyond CAP_NET_RAW.
//
// # Receive
//
// The kernel fills fixed-size blocks of the ring with frames and hands a whole
// block to user space (block_status = TP_STATUS_USER) when it is full or when
// the block retire timer (Options.Timeout) fires. Receive walks the current
// block, copies each frame into a pool chunk at port.Headroom, and gives the
// block back (TP_STATUS_KERNEL) as soon as its last frame is copied. A
// partially read block stays with us across calls. Because of the retire
// timer, an idle-ish link adds up to Options.Timeout of latency; that is the
// price of TPACKET_V3 batching.
//
// The kernel strips 802.1Q/802.1ad tags into the tpacket3 header on receive;
// Receive puts the tag back so the dataplane sees the frame as it was on the
// wire (the upstream trunk is tagged).
//
// # Transmit
//
// Transmit hands the whole batch to the kernel with one sendmmsg(2) straight
// from the pool chunks, with PACKET_QDISC_BYPASS. We do not use a TPACKET TX
// ring: it would add a copy into the ring (the kernel copies out of our chunks
// either way), frames would stay in flight until TP_STATUS_AVAILABLE so chunks
// could not go back to the pool before Transmit returns, and the reference
// harness measured no gain (afpgen with sendmmsg and trafgen with a TX ring
// both sit at ~0.55-0.63 Mpps here). sendmmsg completes synchronously:
// when it returns, every chunk is free again.
//
// # Concurrency
//
// A Port is owned by one worker goroutine: Receive, Transmit, Poll and Close
// must not be called concurrently with each other. Stats is safe for
// concurrent use (a collector may call it while the worker runs). The socket
// belongs to the network namespace it was opened in; after Open it may be
// used from any OS thread.
package afpacket

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/tunterm/tunterm/dataplane/port"
)

var _ port.Port = (*Port)(nil)

// ErrClosed is returned by Poll after Close.
var ErrClosed = errors.New("afpacket: port closed")

// Defaults for zero Options fields.
const (
	DefaultBlockSize  = 256 << 10
	DefaultBlockCount = 64
	DefaultFrameSize  = 2048
	DefaultTimeout    = time.Millisecond
)

// FanoutMode selects how a fanout group spreads frames over its sockets.
type FanoutMode uint16

// Fanout modes (PACKET_FANOUT_*).
const (
	FanoutHash FanoutMode = unix.PACKET_FANOUT_HASH // by flow hash: keeps flows on one worker
	FanoutLB   FanoutMode = unix.PACKET_FANOUT_LB   // round robin
	FanoutCPU  FanoutMode = unix.PACKET_FANOUT_CPU  // by receiving CPU
	FanoutQM   FanoutMode = unix.PACKET_FANOUT_QM   // by NIC queue
)

// FanoutGroup makes several ports on one interface (one per worker) share
// its traffic instead of each seeing all of it.
type FanoutGroup struct {
	// ID names the group within the network namespace; every member uses
	// the same ID, Mode and flags.
	ID   uint16
	Mode FanoutMode
	// Defrag reassembles IP fragments before hashing so that all fragments
	// of a datagram reach the same worker (PACKET_FANOUT_FLAG_DEFRAG).
	Defrag bool
	// Rollover moves frames to another member when this one's ring is full
	// (PACKET_FANOUT_FLAG_ROLLOVER). It breaks flow affinity under load.
	Rollover bool
}

// Options tune a Port. The zero value is usable.
type Options struct {
	// BlockSize is the size of one ring block, a multiple of the page size
	// (default 256 KiB). BlockCount is the number of blocks (default 64).
	BlockSize, BlockCount int
	// FrameSize is the nominal frame slot size TPACKET_V3 validates the
	// ring geometry with (default 2048; a multiple of 16 dividing
	// BlockSize). V3 packs frames back to back, so it does not bound the
	// frame length.
	FrameSize int
	// Timeout is the block retire timeout: how long the kernel keeps a
	// partly filled block before handing it over (default 1ms, rounded up
	// to whole milliseconds).
	Timeout time.Duration
	// Fanout, when set, joins the socket to a PACKET_FANOUT group.
	Fanout *FanoutGroup
	// Filter is an optional classic BPF program run by the kernel before a
	// frame enters the ring; it returns the number of bytes to keep (0
	// drops). Frames cut short by it are dropped by Receive as truncated.
	Filter []bpf.RawInstruction
	// Promisc adds a PACKET_MR_PROMISC membership (the upstream trunk must
	// see frames for every MAC it bridges). It ends with the socket.
	Promisc bool
	// KeepQdisc sends through the qdisc layer instead of setting
	// PACKET_QDISC_BYPASS (slower; lets tc shape and taps see our frames).
	KeepQdisc bool
	// SendBuffer is SO_SNDBUF (default 4 MiB; forced when privileged).
	SendBuffer int
}

func (o *Options) setDefaults() error {
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.BlockCount == 0 {
		o.BlockCount = DefaultBlockCount
	}
	if o.FrameSize == 0 {
		o.FrameSize = DefaultFrameSize
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.SendBuffer == 0 {
		o.SendBuffer = 4 << 20
	}
	pg := os.Getpagesize()
	switch {
	case o.BlockSize < 0 || o.BlockSize%pg != 0:
		return fmt.Errorf("block size %d: not a positive multiple of the page size %d", o.BlockSize, pg)
	case o.BlockSize > 1<<30:
		return fmt.Errorf("block size %d: too large", o.BlockSize)
	case o.BlockCount < 1 || o.BlockCount > 1<<16:
		return fmt.Errorf("block count %d: out of range [1, 65536]", o.BlockCount)
	case int64(o.BlockSize)*int64(o.BlockCount) > 1<<32:
		return fmt.Errorf("ring of %d x %d bytes: too large", o.BlockCount, o.BlockSize)
	case o.FrameSize < tpacket3HdrLen+sockaddrLLLen || o.FrameSize%16 != 0 || o.FrameSize > o.BlockSize:
		return fmt.Errorf("frame size %d: must be a multiple of 16 in [%d, block size]", o.FrameSize, tpacket3HdrLen+sockaddrLLLen)
	case o.Timeout < 0:
		return fmt.Errorf("timeout %v: negative", o.Timeout)
	case len(o.Filter) > bpfMaxInsns:
		return fmt.Errorf("filter of %d instructions: too long", len(o.Filter))
	}
	return nil
}

// Port is an AF_PACKET port on one interface. It is owned by one worker
// goroutine (see the package comment); Stats alone may be called from others.
type Port struct {
	fd   int
	name string
	pool *port.Pool

	// RX ring and the read cursor (owner only).
	ring      []byte
	blockSize int
	nblocks   int
	blk       int    // block the cursor is in, or the next one to wait for
	inBlk     bool   // we own blk (it was TP_STATUS_USER) and are reading it
	left      uint32 // frames left to read in blk
	pkt       int    // ring offset of the next frame's tpacket3_hdr
	pfd       [1]unix.PollFd

	// TX scratch (owner only): one mmsghdr and iovec per batch slot.
	msgs [port.BatchSize]mmsghdr
	iovs [port.BatchSize]unix.Iovec

	ctr counters // flushed once per batch, read by Stats

	mu     sync.Mutex // guards kern and closed against Stats
	kern   kernelStats
	closed bool
}

// mmsghdr is struct mmsghdr; Go pads it to the C layout (64 bytes on 64-bit).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Probe checks that an AF_PACKET socket can be opened and bound to ifindex,
// and that the kernel speaks TPACKET_V3, so the daemon can fail at startup
// with a clear message instead of inside Open.
func Probe(ifindex int) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("afpacket: probe ifindex %d: socket(AF_PACKET): %w (needs CAP_NET_RAW)", ifindex, err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fmt.Errorf("afpacket: probe ifindex %d: TPACKET_V3: %w", ifindex, err)
	}
	// Protocol 0: the socket is bound but receives nothing.
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		return fmt.Errorf("afpacket: probe ifindex %d: bind: %w", ifindex, err)
	}
	return nil
}

// Open creates a port on interface ifindex of the calling thread's network
// namespace. Received frames are copied into chunks from pool, which must be
// owned by the same worker as the port.
func Open(ifindex int, pool *port.Pool, o Options) (*Port, error) {
	if pool == nil {
		return nil, errors.New("afpacket: open: nil pool")
	}
	if err := o.setDefaults(); err != nil {
		return nil, fmt.Errorf("afpacket: open ifindex %d: %w", ifindex, err)
	}
	p := &Port{fd: -1, pool: pool, blockSize: o.BlockSize, nblocks: o.BlockCount}
	if err := p.open(ifindex, &o); err != nil {
		p.release()
		return nil, fmt.Errorf("afpacket: open ifindex %d: %w", ifindex, err)
	}
	return p, nil
}

func (p *Port) open(ifindex int, o *Options) error {
	// Protocol 0: nothing is queued to the socket until bind names one, so
	// no frame slips in before the ring and filters are in place.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket(AF_PACKET): %w", err)
	}
	p.fd = fd
	p.pfd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN | unix.POLLERR}

	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fmt.Errorf("PACKET_VERSION TPACKET_V3: %w", err)
	}
	// Best effort (Linux >= 4.20): Receive also drops PACKET_OUTGOING
	// frames itself, this only saves the kernel copying them.
	_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	if !o.KeepQdisc {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			return fmt.Errorf("PACKET_QDISC_BYPASS: %w", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, o.SendBuffer); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, o.SendBuffer)
	}
	// Drop everything until bind, fanout and membership are done, so a
	// fanout member never sees the whole interface for a moment.
	if err := attachFilter(fd, []bpf.RawInstruction{{Op: bpfRetK, K: 0}}); err != nil {
		return fmt.Errorf("SO_ATTACH_FILTER: %w", err)
	}

	req := unix.TpacketReq3{
		Block_size:     uint32(o.BlockSize),
		Block_nr:       uint32(o.BlockCount),
		Frame_size:     uint32(o.FrameSize),
		Frame_nr:       uint32(o.BlockSize / o.FrameSize * o.BlockCount),
		Retire_blk_tov: uint32((o.Timeout + time.Millisecond - 1) / time.Millisecond),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fmt.Errorf("PACKET_RX_RING %d x %d: %w", o.BlockCount, o.BlockSize, err)
	}
	ring, err := unix.Mmap(fd, 0, o.BlockSize*o.BlockCount, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("mmap ring: %w", err)
	}
	p.ring = ring

	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return err
	}
	ifr.SetUint32(uint32(ifindex))
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFNAME, ifr); err != nil {
		return fmt.Errorf("SIOCGIFNAME: %w", err)
	}
	p.name = ifr.Name()

	if o.Promisc {
		mr := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mr); err != nil {
			return fmt.Errorf("PACKET_ADD_MEMBERSHIP promisc: %w", err)
		}
	}
	if f := o.Fanout; f != nil {
		if err := joinFanout(fd, f); err != nil {
			return err
		}
	}
	if len(o.Filter) > 0 {
		if err := attachFilter(fd, o.Filter); err != nil {
			return fmt.Errorf("SO_ATTACH_FILTER: %w", err)
		}
	} else if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0); err != nil {
		return fmt.Errorf("SO_DETACH_FILTER: %w", err)
	}
	// Start the statistics from here: PACKET_STATISTICS resets on read.
	_, _ = unix.GetsockoptTpacketStatsV3(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	return nil
}

const (
	bpfRetK     = 0x06 // BPF_RET | BPF_K
	bpfMaxInsns = 4096 // BPF_MAXINSNS
)

func attachFilter(fd int, prog []bpf.RawInstruction) error {
	f := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		f[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
		&unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]})
}

func joinFanout(fd int, f *FanoutGroup) error {
	flags := uint32(0)
	if f.Defrag {
		flags |= unix.PACKET_FANOUT_FLAG_DEFRAG
	}
	if f.Rollover {
		flags |= unix.PACKET_FANOUT_FLAG_ROLLOVER
	}
	arg := func(fl uint32) int { return int(uint32(f.ID) | (uint32(f.Mode)|fl)<<16) }
	// A fanout group has one protocol hook, so the per-socket
	// PACKET_IGNORE_OUTGOING does not apply to its members; the group
	// flag does (Linux >= 6.8). Older kernels refuse it: join without it,
	// Receive still drops outgoing frames itself.
	err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, arg(flags|unix.PACKET_FANOUT_FLAG_IGNORE_OUTGOING))
	if errors.Is(err, unix.EINVAL) {
		err = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, arg(flags))
	}
	if err != nil {
		return fmt.Errorf("PACKET_FANOUT id %d mode %d: %w", f.ID, f.Mode, err)
	}
	return nil
}

// Name implements port.Port: the interface name.
func (p *Port) Name() string { return p.name }

// Close releases the ring and the socket. It is idempotent. After Close,
// Receive returns 0, Transmit returns every chunk to the pool (counted as
// TxClosed) and Poll returns ErrClosed; Stats keeps the final counts.
func (p *Port) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.foldKernelStats()
	p.closed = true
	return p.release()
}

// release undoes open; used by Close and on a failed Open.
func (p *Port) release() error {
	var errs []error
	if p.ring != nil {
		if err := unix.Munmap(p.ring); err != nil {
			errs = append(errs, fmt.Errorf("munmap: %w", err))
		}
		p.ring = nil
	}
	p.inBlk, p.left = false, 0
	if p.fd >= 0 {
		if err := unix.Close(p.fd); err != nil {
			errs = append(errs, fmt.Errorf("close: %w", err))
		}
		p.fd = -1
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("afpacket: close %s: %w", p.name, err)
	}
	return nil
}
