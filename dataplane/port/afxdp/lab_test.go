package afxdp

// A two-namespace veth lab for the tests:
//
//	peer ns (tt-xsk-<pid>-<n>-p)          dut ns (tt-xsk-<pid>-<n>-d)
//	  g0 02:00:00:00:00:01  <── veth ──>  d0 02:00:00:00:00:02
//	  s0 02:00:00:00:01:02  <── veth ──>  d1 02:00:00:00:01:01
//
// The AF_XDP sockets under test live in the dut namespace; the peer side
// injects frames with AF_PACKET and captures what we send. No IP addresses
// are configured (frames carry 198.18.0.0/15 addresses only). Both
// namespaces are deleted by t.Cleanup, and stale ones from killed runs are
// swept when the next run starts.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const nsPrefix = "tt-xsk-"

var (
	macG0 = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	macD0 = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	macD1 = net.HardwareAddr{2, 0, 0, 0, 1, 1}
	macS0 = net.HardwareAddr{2, 0, 0, 0, 1, 2}
)

type lab struct {
	t              testing.TB
	dut, peer      netns.NsHandle
	d0, d1, g0, s0 int // ifindexes (d* in dut, g0/s0 in peer)
}

var labSeq atomic.Int32

// requireXSK skips the test, loudly, when this machine cannot create AF_XDP
// sockets at all (not root, or a kernel without CONFIG_XDP_SOCKETS).
func requireXSK(t testing.TB) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("!!! SKIPPING AF_XDP TEST: cannot create an AF_XDP socket (%v); run as root on a kernel with CONFIG_XDP_SOCKETS !!!", err)
	}
	unix.Close(fd)
}

// inNS runs f on a fresh OS thread switched into ns. The thread is never
// unlocked, so it exits with the goroutine instead of going back to the
// scheduler in a foreign namespace.
func inNS(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// newNamedNS creates a named network namespace without moving the calling
// thread, and turns IPv6 off in it so the kernel sends no ND/MLD noise.
func newNamedNS(name string) (netns.NsHandle, error) {
	var h netns.NsHandle
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		var err error
		h, err = netns.NewNamed(name)
		if err == nil {
			for _, k := range []string{"all", "default"} {
				os.WriteFile("/proc/sys/net/ipv6/conf/"+k+"/disable_ipv6", []byte("1"), 0)
			}
		}
		errc <- err
	}()
	return h, <-errc
}

// sweepStale deletes tt-xsk-<pid>-* namespaces left by test processes that
// no longer exist (a killed run cannot run its t.Cleanup).
func sweepStale() {
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, nsPrefix) {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(name, nsPrefix), "-", 2)[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err == nil {
			continue
		}
		netns.DeleteNamed(name)
	}
}

var sweepOnce sync.Once

func newLab(t testing.TB) *lab {
	t.Helper()
	requireXSK(t)
	sweepOnce.Do(sweepStale)
	l := &lab{t: t}
	base := fmt.Sprintf("%s%d-%d-", nsPrefix, os.Getpid(), labSeq.Add(1))
	for _, x := range []struct {
		h    *netns.NsHandle
		name string
	}{{&l.dut, base + "d"}, {&l.peer, base + "p"}} {
		h, err := newNamedNS(x.name)
		if err != nil {
			t.Fatalf("netns %s: %v", x.name, err)
		}
		*x.h = h
		name := x.name
		t.Cleanup(func() {
			h.Close()
			if err := netns.DeleteNamed(name); err != nil {
				t.Errorf("delete netns %s: %v", name, err)
			}
		})
	}
	l.veth("tt-xsk-d0", macD0, "tt-xsk-g0", macG0)
	l.veth("tt-xsk-d1", macD1, "tt-xsk-s0", macS0)
	l.d0, l.d1 = l.ifindex(l.dut, "tt-xsk-d0"), l.ifindex(l.dut, "tt-xsk-d1")
	l.g0, l.s0 = l.ifindex(l.peer, "tt-xsk-g0"), l.ifindex(l.peer, "tt-xsk-s0")
	return l
}

// veth creates a veth pair with dutName in the dut namespace and peerName
// in the peer namespace, both up, without offloads that would coalesce.
func (l *lab) veth(dutName string, dutMAC net.HardwareAddr, peerName string, peerMAC net.HardwareAddr) {
	l.t.Helper()
	v := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: dutName, HardwareAddr: dutMAC, Namespace: netlink.NsFd(l.dut), MTU: 1500},
		PeerName:         peerName,
		PeerHardwareAddr: peerMAC,
		PeerNamespace:    netlink.NsFd(l.peer),
	}
	if err := netlink.LinkAdd(v); err != nil {
		l.t.Fatalf("veth %s/%s: %v", dutName, peerName, err)
	}
	for _, x := range []struct {
		ns   netns.NsHandle
		name string
	}{{l.dut, dutName}, {l.peer, peerName}} {
		if err := l.setLink(x.ns, x.name, true); err != nil {
			l.t.Fatal(err)
		}
	}
}

func (l *lab) setLink(ns netns.NsHandle, name string, up bool) error {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink handle: %w", err)
	}
	defer h.Delete()
	lk, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if up {
		err = h.LinkSetUp(lk)
	} else {
		err = h.LinkSetDown(lk)
	}
	if err != nil {
		return fmt.Errorf("link %s up=%v: %w", name, up, err)
	}
	return nil
}

func (l *lab) ifindex(ns netns.NsHandle, name string) int {
	l.t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		l.t.Fatal(err)
	}
	defer h.Delete()
	lk, err := h.LinkByName(name)
	if err != nil {
		l.t.Fatalf("link %s: %v", name, err)
	}
	return lk.Attrs().Index
}

// --- XDP programs ------------------------------------------------------------

const (
	xdpPass = 2
	xdpTX   = 3
)

// xsk is an XDP program redirecting every frame to the XSKMAP entry of its
// rx queue (XDP_PASS when the queue has no socket), attached with a BPF link
// so it goes away when the link is closed or the test process dies.
type xsk struct {
	m    *ebpf.Map
	prog *ebpf.Program
	lk   link.Link
}

// attachRedirect attaches the redirect program to ifindex in ns, in driver
// (native) or generic (skb) mode.
func (l *lab) attachRedirect(ns netns.NsHandle, ifindex int, mode link.XDPAttachFlags) *xsk {
	l.t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 4})
	if err != nil {
		l.t.Fatalf("XSKMAP: %v", err)
	}
	l.t.Cleanup(func() { m.Close() })
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, 16, asm.Word), // ctx->rx_queue_index
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Imm(asm.R3, xdpPass), // action when the entry is empty
			asm.FnRedirectMap.Call(),
			asm.Return(),
		}})
	if err != nil {
		l.t.Fatalf("redirect program: %v", err)
	}
	l.t.Cleanup(func() { prog.Close() })
	x := &xsk{m: m, prog: prog}
	x.lk = l.attach(ns, ifindex, prog, mode)
	return x
}

// attachReflector attaches an XDP_TX program (every frame goes back out of
// the interface it came in on) in driver mode.
func (l *lab) attachReflector(ns netns.NsHandle, ifindex int) {
	l.t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpTX), asm.Return()}})
	if err != nil {
		l.t.Fatalf("reflector program: %v", err)
	}
	l.t.Cleanup(func() { prog.Close() })
	l.attach(ns, ifindex, prog, link.XDPDriverMode)
}

func (l *lab) attach(ns netns.NsHandle, ifindex int, prog *ebpf.Program, mode link.XDPAttachFlags) link.Link {
	l.t.Helper()
	var lk link.Link
	err := inNS(ns, func() (err error) {
		lk, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: mode})
		return err
	})
	if err != nil {
		l.t.Fatalf("attach XDP to ifindex %d (flags %v): %v", ifindex, mode, err)
	}
	l.t.Cleanup(func() { lk.Close() })
	return lk
}

func (x *xsk) register(t testing.TB, p *Port) {
	t.Helper()
	if err := x.m.Put(uint32(p.Queue()), uint32(p.FD())); err != nil {
		t.Fatalf("XSKMAP put queue %d fd %d: %v", p.Queue(), p.FD(), err)
	}
}

// open opens a port in the dut namespace and closes it at cleanup.
func (l *lab) open(ifindex int, u *UMEM, o Options) (*Port, error) {
	var p *Port
	err := inNS(l.dut, func() (err error) {
		p, err = Open(ifindex, u, o)
		return err
	})
	if err == nil {
		l.t.Cleanup(func() { p.Close() })
	}
	return p, err
}

func (l *lab) mustOpen(ifindex int, u *UMEM, o Options) *Port {
	l.t.Helper()
	p, err := l.open(ifindex, u, o)
	if err != nil {
		l.t.Fatalf("Open(%d, %+v): %v", ifindex, o, err)
	}
	return p
}

func newUMEM(t testing.TB, frames int) *UMEM {
	t.Helper()
	u, err := NewUMEM(frames)
	if err != nil {
		t.Fatalf("NewUMEM(%d): %v", frames, err)
	}
	// Registered first, so it runs after the ports' cleanups.
	t.Cleanup(func() {
		if err := u.Close(); err != nil {
			t.Errorf("UMEM.Close: %v", err)
		}
	})
	return u
}

// --- AF_PACKET peer side -----------------------------------------------------

// packetSock is an AF_PACKET socket on a peer interface: it injects frames
// and captures frames the interface receives (not the ones it sends).
type packetSock struct {
	fd      int
	ifindex int
	buf     []byte
}

func (l *lab) packet(ns netns.NsHandle, ifindex int) *packetSock {
	l.t.Helper()
	s := &packetSock{ifindex: ifindex, buf: make([]byte, 1<<16)}
	err := inNS(ns, func() error {
		proto := int(htons(unix.ETH_P_ALL))
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		s.fd = fd
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		tv := unix.NsecToTimeval(int64(20 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex})
	})
	if err != nil {
		l.t.Fatalf("AF_PACKET socket on ifindex %d: %v", ifindex, err)
	}
	l.t.Cleanup(func() { unix.Close(s.fd) })
	return s
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (s *packetSock) send(t testing.TB, frame []byte) {
	t.Helper()
	for {
		_, err := unix.Write(s.fd, frame)
		if err == nil {
			return
		}
		if errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN) {
			time.Sleep(time.Millisecond)
			continue
		}
		t.Fatalf("inject: %v", err)
	}
}

// capture collects received frames carrying our marker until want of them
// arrived or the timeout passed.
func (s *packetSock) capture(want int, timeout time.Duration) [][]byte {
	var got [][]byte
	deadline := time.Now().Add(timeout)
	for len(got) < want && time.Now().Before(deadline) {
		n, from, err := unix.Recvfrom(s.fd, s.buf, 0)
		if err != nil {
			continue
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if bytes.Contains(s.buf[:n], marker) {
			got = append(got, bytes.Clone(s.buf[:n]))
		}
	}
	return got
}

// --- frames ------------------------------------------------------------------

var marker = []byte("tt-xsk-test")

// testFrame builds an Ethernet/IPv4/UDP frame of size bytes (no FCS),
// 198.18.0.1 → 198.18.1.2, whose payload carries the marker and seq.
func testFrame(t testing.TB, src, dst net.HardwareAddr, seq, size int) []byte {
	t.Helper()
	payload := make([]byte, size-14-20-8)
	copy(payload, marker)
	binary.BigEndian.PutUint32(payload[len(marker):], uint32(seq))
	for i := len(marker) + 4; i < len(payload); i++ {
		payload[i] = byte(i + seq)
	}
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IP{198, 18, 0, 1}, DstIP: net.IP{198, 18, 1, 2}}
	udp := &layers.UDP{SrcPort: 1024, DstPort: 9}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload(payload))
	if err != nil {
		t.Fatal(err)
	}
	if len(buf.Bytes()) != size {
		t.Fatalf("frame is %d bytes, want %d", len(buf.Bytes()), size)
	}
	return bytes.Clone(buf.Bytes())
}

// seqOf returns the sequence number of a test frame, -1 if it is not one.
func seqOf(frame []byte) int {
	i := bytes.Index(frame, marker)
	if i < 0 || i+len(marker)+4 > len(frame) {
		return -1
	}
	return int(binary.BigEndian.Uint32(frame[i+len(marker):]))
}
