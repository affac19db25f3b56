// Package steer loads tunterm's XDP programs and attaches them to the NICs.
//
// Two programs, compiled from ../xdp_downstream.c and ../xdp_upstream.c by
// bpf2go (see gen.go), sit in front of the AF_XDP sockets:
//
//	downstream NIC (APs)  xdp_downstream: ESP, ESP-in-UDP/4500, L2TPv3 data
//	                      (IP proto 115, UDP/1701) and IPv4 non-first
//	                      fragments addressed to a tunnel address -> AF_XDP;
//	                      IKE, NAT-keepalives, L2TP control, RadSec, ARP,
//	                      ICMP, anything else -> kernel (XDP_PASS).
//	upstream trunk        xdp_upstream: every frame -> AF_XDP, except the
//	                      IEEE 802.1D link-local group 01:80:C2:00:00:0X.
//
// A frame goes to the socket registered for its RX queue (RegisterXSK); a
// queue without a socket falls back to the kernel, so the box stays
// reachable while workers start or restart. Each program counts its
// verdicts per CPU by Class (Counters).
//
// Programs are attached with bpf_link only: the link lives in this process,
// so when the process exits, however it exits (SIGKILL included), the kernel
// removes the program from the interface. Nothing is pinned.
package steer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// Spec limits, mirrored in the C sources.
const (
	// MaxAddrs is the number of tunnel addresses per family (IPv4, IPv6).
	MaxAddrs = 16
	// MaxQueues is the number of XSKMAP slots: RX queues 0..MaxQueues-1 can
	// have a socket.
	MaxQueues = 256
	// MinFrameLen is the shortest frame Run accepts: the kernel's
	// BPF_PROG_RUN wants at least an Ethernet header.
	MinFrameLen = 14
)

// XDP actions, as returned by Run (enum xdp_action in linux/bpf.h).
const (
	XDPAborted  uint32 = 0
	XDPDrop     uint32 = 1
	XDPPass     uint32 = 2
	XDPTx       uint32 = 3
	XDPRedirect uint32 = 4
)

// Errors.
var (
	ErrClosed        = errors.New("steer: program is closed")
	ErrAttached      = errors.New("steer: program is already attached")
	ErrFrameTooShort = errors.New("steer: frame shorter than an Ethernet header")
	ErrNoAddrs       = errors.New("steer: upstream program has no tunnel addresses")
)

// Role says which program a Program runs.
type Role uint8

const (
	// Downstream is xdp_downstream, for the NIC facing the access points.
	Downstream Role = iota + 1
	// Upstream is xdp_upstream, for the corporate trunk.
	Upstream
)

func (r Role) String() string {
	switch r {
	case Downstream:
		return "downstream"
	case Upstream:
		return "upstream"
	}
	return "role(" + strconv.Itoa(int(r)) + ")"
}

// Mode is how a program is attached to an interface.
type Mode uint8

const (
	// Auto tries Native, then Generic. It is the zero value.
	Auto Mode = iota
	// Native runs the program in the driver (XDP_FLAGS_DRV_MODE).
	Native
	// Generic runs it after the kernel has built an skb (XDP_FLAGS_SKB_MODE):
	// works on every interface, slower, and AF_XDP then always copies.
	Generic
)

func (m Mode) String() string {
	switch m {
	case Auto:
		return "auto"
	case Native:
		return "native"
	case Generic:
		return "generic"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseMode parses "auto", "native" or "generic" (the String forms).
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{Auto, Native, Generic} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("steer: unknown XDP mode %q (want auto, native or generic)", s)
}

func (m Mode) flags() link.XDPAttachFlags {
	if m == Generic {
		return link.XDPGenericMode
	}
	return link.XDPDriverMode
}

// Program is one loaded XDP program with its maps, attached to at most one
// interface (its XSKMAP is indexed by RX queue, which means something only
// for one interface).
//
// Concurrency: all methods are safe for concurrent use. Attach, Detach,
// SetAddrs and Close serialise against each other; Run, Counters and
// RegisterXSK may run concurrently with each other and wait only for those.
//
// Cleanup: Close detaches and frees the program and its maps; it is
// idempotent, and every other method returns ErrClosed afterwards. If the
// process dies without Close, the kernel does the same: the bpf_link and
// every map and program are held only by this process's file descriptors.
type Program struct {
	role Role

	mu      sync.RWMutex
	closed  bool
	link    link.Link // nil when detached
	ifindex int
	mode    Mode

	prog     *ebpf.Program
	xsks     *ebpf.Map // XSKMAP: RX queue -> AF_XDP socket
	counters *ebpf.Map // PERCPU_ARRAY: Class -> packets
	v4, v6   *ebpf.Map // HASH: tunnel address -> 1 (downstream only)
	objects  []io.Closer
}

// Load loads the program for role into the kernel and, for Downstream, writes
// addrs (at most MaxAddrs per family) as the tunnel addresses. With no
// addresses the downstream program passes every frame to the kernel. Upstream
// takes no addresses. On error nothing stays loaded.
//
// Load lifts RLIMIT_MEMLOCK where the kernel still charges BPF memory to it
// (before Linux 5.11); that affects the whole process.
func Load(role Role, addrs []netip.Addr) (*Program, error) {
	v4, v6, err := normalize(addrs)
	if err != nil {
		return nil, err
	}
	if role == Upstream && len(addrs) > 0 {
		return nil, ErrNoAddrs
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("steer: load %s: %w", role, err)
	}

	p := &Program{role: role}
	switch role {
	case Downstream:
		var o downstreamObjects
		if err := loadDownstreamObjects(&o, nil); err != nil {
			return nil, fmt.Errorf("steer: load xdp_downstream: %w", err)
		}
		p.prog, p.xsks, p.counters, p.v4, p.v6 = o.XdpDownstream, o.Xsks, o.SteerCounters, o.TunnelV4, o.TunnelV6
		p.objects = []io.Closer{o.XdpDownstream, o.Xsks, o.SteerCounters, o.TunnelV4, o.TunnelV6}
		if err := p.writeAddrs(v4, v6); err != nil {
			p.closeObjects()
			return nil, err
		}
	case Upstream:
		var o upstreamObjects
		if err := loadUpstreamObjects(&o, nil); err != nil {
			return nil, fmt.Errorf("steer: load xdp_upstream: %w", err)
		}
		p.prog, p.xsks, p.counters = o.XdpUpstream, o.Xsks, o.SteerCounters
		p.objects = []io.Closer{o.XdpUpstream, o.Xsks, o.SteerCounters}
	default:
		return nil, fmt.Errorf("steer: load: invalid %s", role)
	}
	return p, nil
}

// Role returns the program's role.
func (p *Program) Role() Role { return p.role }

// SetAddrs replaces the downstream program's tunnel addresses, for a config
// reload. New addresses are inserted before stale ones are deleted, so an
// address in both the old and the new set is never missing. On error the
// map may hold part of the new set; call SetAddrs again.
func (p *Program) SetAddrs(addrs []netip.Addr) error {
	v4, v6, err := normalize(addrs)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.role != Downstream {
		if len(addrs) > 0 {
			return ErrNoAddrs
		}
		return nil
	}
	return p.writeAddrs(v4, v6)
}

func (p *Program) writeAddrs(v4 map[[4]byte]bool, v6 map[[16]byte]bool) error {
	if err := syncSet(p.v4, v4); err != nil {
		return fmt.Errorf("steer: write IPv4 tunnel addresses: %w", err)
	}
	if err := syncSet(p.v6, v6); err != nil {
		return fmt.Errorf("steer: write IPv6 tunnel addresses: %w", err)
	}
	return nil
}

// syncSet makes the keys of hash map m equal want: insert, then delete.
func syncSet[K comparable](m *ebpf.Map, want map[K]bool) error {
	for k := range want {
		if err := m.Put(k, uint8(1)); err != nil {
			return err
		}
	}
	var (
		stale []K
		k     K
		v     uint8
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, k := range stale {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
	return nil
}

// normalize validates addrs and splits them by family, deduplicated, in the
// byte order the packet carries. IPv4-mapped IPv6 addresses count as IPv4;
// zones are dropped.
func normalize(addrs []netip.Addr) (v4 map[[4]byte]bool, v6 map[[16]byte]bool, err error) {
	v4, v6 = map[[4]byte]bool{}, map[[16]byte]bool{}
	for _, a := range addrs {
		if !a.IsValid() {
			return nil, nil, errors.New("steer: invalid tunnel address")
		}
		a = a.Unmap().WithZone("")
		if a.IsUnspecified() || a.IsMulticast() {
			return nil, nil, fmt.Errorf("steer: %s cannot be a tunnel address", a)
		}
		if a.Is4() {
			v4[a.As4()] = true
		} else {
			v6[a.As16()] = true
		}
	}
	if len(v4) > MaxAddrs || len(v6) > MaxAddrs {
		return nil, nil, fmt.Errorf("steer: %d IPv4 and %d IPv6 tunnel addresses, at most %d of each",
			len(v4), len(v6), MaxAddrs)
	}
	return v4, v6, nil
}

// Attach attaches the program to interface ifindex (in the calling thread's
// network namespace) through a bpf_link. Auto tries Native and falls back to
// Generic; Attachment reports which one took. A Program is attached to one
// interface at a time: Detach first to move it.
func (p *Program) Attach(ifindex int, mode Mode) (err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	name := ifaceName(ifindex)
	if p.link != nil {
		return fmt.Errorf("steer: attach xdp_%s to %s: %w (to %s)", p.role, name, ErrAttached, ifaceName(p.ifindex))
	}

	try := func(m Mode) (link.Link, error) {
		l, err := link.AttachXDP(link.XDPOptions{Program: p.prog, Interface: ifindex, Flags: m.flags()})
		if err != nil {
			return nil, fmt.Errorf("steer: attach xdp_%s to %s in %s mode: %w", p.role, name, m, err)
		}
		return l, nil
	}

	var l link.Link
	switch mode {
	case Native, Generic:
		l, err = try(mode)
	case Auto:
		mode = Native
		l, err = try(Native)
		if err != nil {
			errNative := err
			mode = Generic
			if l, err = try(Generic); err != nil {
				return fmt.Errorf("%w (auto mode; native failed first: %v)", err, errNative)
			}
		}
	default:
		return fmt.Errorf("steer: attach xdp_%s to %s: invalid %s", p.role, name, mode)
	}
	if err != nil {
		return err
	}
	p.link, p.ifindex, p.mode = l, ifindex, mode
	return nil
}

// Attachment returns the interface and mode the program is attached in
// (never Auto), or ok false when it is not attached.
func (p *Program) Attachment() (ifindex int, mode Mode, ok bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.ifindex, p.mode, p.link != nil
}

// Detach removes the program from its interface. It is idempotent; the
// program and its maps stay loaded, and Attach may be called again.
func (p *Program) Detach() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.detach()
}

func (p *Program) detach() error {
	if p.link == nil {
		return nil
	}
	l, name := p.link, ifaceName(p.ifindex)
	p.link, p.ifindex, p.mode = nil, 0, Auto
	if err := l.Close(); err != nil {
		return fmt.Errorf("steer: detach xdp_%s from %s: %w", p.role, name, err)
	}
	return nil
}

// Close detaches the program and frees it and its maps. It is idempotent.
// AF_XDP sockets registered with RegisterXSK stay open: they belong to the
// caller.
func (p *Program) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	return errors.Join(p.detach(), p.closeObjects())
}

func (p *Program) closeObjects() error {
	var errs []error
	for _, c := range p.objects {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	p.objects = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("steer: close xdp_%s: %w", p.role, err)
	}
	return nil
}

// RegisterXSK puts AF_XDP socket fd into the XSKMAP slot of RX queue queue;
// frames the program steers on that queue go to it from then on. The socket
// must already be bound to that queue of the attached interface (the kernel
// refuses unbound sockets). The map holds its own reference: the caller
// still owns fd, and closing the socket removes it from the map.
func (p *Program) RegisterXSK(queue int, fd int) error {
	if queue < 0 || queue >= MaxQueues {
		return fmt.Errorf("steer: register AF_XDP socket: queue %d out of range [0,%d)", queue, MaxQueues)
	}
	if fd < 0 {
		return fmt.Errorf("steer: register AF_XDP socket on queue %d: invalid fd %d", queue, fd)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	if err := p.xsks.Put(uint32(queue), uint32(fd)); err != nil {
		return fmt.Errorf("steer: register AF_XDP socket fd %d on queue %d: %w", fd, queue, err)
	}
	return nil
}

// UnregisterXSK empties the XSKMAP slot of queue: its frames go to the
// kernel again. Unregistering an empty slot is not an error.
func (p *Program) UnregisterXSK(queue int) error {
	if queue < 0 || queue >= MaxQueues {
		return fmt.Errorf("steer: unregister AF_XDP socket: queue %d out of range [0,%d)", queue, MaxQueues)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	if err := p.xsks.Delete(uint32(queue)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("steer: unregister AF_XDP socket on queue %d: %w", queue, err)
	}
	return nil
}

// Counters returns the verdict counters summed over CPUs, one entry for every
// Class (zeros included). Counters only grow while the program is loaded.
// It makes one syscall per class: meant for scrapes, not the hot path.
func (p *Program) Counters() (map[Class]uint64, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return nil, ErrClosed
	}
	out := make(map[Class]uint64, NumClasses)
	var perCPU []uint64
	for c := range NumClasses {
		if err := p.counters.Lookup(uint32(c), &perCPU); err != nil {
			return nil, fmt.Errorf("steer: read counter %s: %w", c, err)
		}
		var sum uint64
		for _, n := range perCPU {
			sum += n
		}
		out[c] = sum
	}
	return out, nil
}

// Run runs the program once on frame with BPF_PROG_RUN and returns its
// verdict, an XDP action (XDPPass, XDPRedirect). The run counts in
// Counters like a received frame. The frame is seen on RX queue 0 and is
// not modified; a redirect verdict means only that queue 0 has a socket,
// nothing is delivered to it. For tests and self-checks, not for traffic.
func (p *Program) Run(frame []byte) (verdict uint32, err error) {
	if len(frame) < MinFrameLen {
		return 0, fmt.Errorf("steer: run xdp_%s on %d bytes: %w", p.role, len(frame), ErrFrameTooShort)
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return 0, ErrClosed
	}
	verdict, err = p.prog.Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		return 0, fmt.Errorf("steer: run xdp_%s on %d bytes: %w", p.role, len(frame), err)
	}
	return verdict, nil
}

// ifaceName names an interface for error messages: "eth1 (ifindex 3)".
func ifaceName(ifindex int) string {
	if ifi, err := net.InterfaceByIndex(ifindex); err == nil {
		return fmt.Sprintf("%s (ifindex %d)", ifi.Name, ifindex)
	}
	return fmt.Sprintf("ifindex %d", ifindex)
}
