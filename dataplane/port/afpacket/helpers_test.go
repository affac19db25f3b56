//go:build linux

package afpacket

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tunterm/tunterm/dataplane/port"
)

// Test topology: two network namespaces joined by a veth pair.
//
//	ns tt-afp-<pid>-<n>a               ns tt-afp-<pid>-<n>b
//	  tt-afp-a 198.18.0.1/24  <====>  tt-afp-b 198.18.0.2/24
//	  (the Port under test)             (the peer: a plain packet socket)
//
// Frames are addressed to MACs nobody owns so neither kernel stack answers,
// and IPv6 is off so nothing chats on the link.

var (
	macA     = net.HardwareAddr{0x02, 0x74, 0x74, 0, 0, 0x0a}
	macB     = net.HardwareAddr{0x02, 0x74, 0x74, 0, 0, 0x0b}
	macNoOne = net.HardwareAddr{0x02, 0x74, 0x74, 0, 0, 0x99}
	ipA      = net.IPv4(198, 18, 0, 1).To4()
	ipB      = net.IPv4(198, 18, 0, 2).To4()
	marker   = []byte("TTAFP")
)

const (
	nsDir   = "/var/run/netns"
	vethA   = "tt-afp-a"
	vethB   = "tt-afp-b"
	waitFor = 5 * time.Second // bound of a positive poll: a loaded CI machine may be slow
)

// requireAFPacket skips the test, loudly, when AF_PACKET sockets cannot be
// created (not root, no CAP_NET_RAW). Everything else failing is a failure.
func requireAFPacket(t testing.TB) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("\n%s\n!!! SKIPPING %s: cannot create an AF_PACKET socket: %v\n!!! These tests need root (CAP_NET_RAW, CAP_NET_ADMIN, CAP_SYS_ADMIN) and run in CI as root.\n%s",
			strings.Repeat("!", 78), t.Name(), err, strings.Repeat("!", 78))
	}
	unix.Close(fd)
}

// inNS runs fn with the calling goroutine locked to an OS thread that is
// switched into ns, then switches back. If switching back fails the thread
// stays locked, so the runtime discards it when the goroutine ends.
func inNS(t testing.TB, ns netns.NsHandle, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("netns.Get: %v", err)
	}
	restored := false
	defer func() {
		if netns.Set(orig) == nil {
			restored = true
		}
		orig.Close()
		if restored {
			runtime.UnlockOSThread()
		}
	}()
	if err := netns.Set(ns); err != nil {
		t.Fatalf("setns: %v", err)
	}
	fn()
}

var nsSeq atomic.Int32
var staleOnce sync.Once

// removeStale deletes tt-afp- namespaces left by test processes that died
// before their cleanup ran (names carry the pid).
func removeStale() {
	ents, _ := os.ReadDir(nsDir)
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "tt-afp-%d-", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			_ = netns.DeleteNamed(e.Name())
		}
	}
}

type testNet struct {
	nsA, nsB     netns.NsHandle
	hA, hB       *netlink.Handle
	idxA, idxB   int
	nameA, nameB string // namespace names
}

// newTestNet builds the topology; t.Cleanup tears it down even on failure.
func newTestNet(t testing.TB, mtu int) *testNet {
	t.Helper()
	requireAFPacket(t)
	staleOnce.Do(removeStale)
	n := nsSeq.Add(1)
	tn := &testNet{
		nameA: fmt.Sprintf("tt-afp-%d-%da", os.Getpid(), n),
		nameB: fmt.Sprintf("tt-afp-%d-%db", os.Getpid(), n),
	}
	tn.nsA = newNamedNS(t, tn.nameA)
	tn.nsB = newNamedNS(t, tn.nameB)
	for _, ns := range []netns.NsHandle{tn.nsA, tn.nsB} {
		inNS(t, ns, func() {
			for _, k := range []string{"all", "default"} {
				// Absent without IPv6; then there is nothing to silence.
				_ = os.WriteFile(filepath.Join("/proc/sys/net/ipv6/conf", k, "disable_ipv6"), []byte("1"), 0)
			}
		})
	}
	var err error
	if tn.hA, err = netlink.NewHandleAt(tn.nsA); err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(tn.hA.Close)
	if tn.hB, err = netlink.NewHandleAt(tn.nsB); err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(tn.hB.Close)
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: vethA, MTU: mtu, HardwareAddr: macA},
		PeerName:         vethB,
		PeerHardwareAddr: macB,
		PeerMTU:          uint32(mtu),
		PeerNamespace:    netlink.NsFd(int(tn.nsB)),
	}
	if err := tn.hA.LinkAdd(veth); err != nil {
		t.Fatalf("add veth %s/%s: %v", vethA, vethB, err)
	}
	t.Cleanup(func() {
		if l, err := tn.hA.LinkByName(vethA); err == nil {
			_ = tn.hA.LinkDel(l)
		}
	})
	la := tn.setup(t, tn.hA, vethA, "198.18.0.1/24")
	lb := tn.setup(t, tn.hB, vethB, "198.18.0.2/24")
	tn.idxA, tn.idxB = la.Attrs().Index, lb.Attrs().Index
	deadline := time.Now().Add(waitFor)
	for {
		a, errA := tn.hA.LinkByName(vethA)
		b, errB := tn.hB.LinkByName(vethB)
		if errA == nil && errB == nil && a.Attrs().OperState == netlink.OperUp && b.Attrs().OperState == netlink.OperUp {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("veth did not come up: %v %v", errA, errB)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return tn
}

func (tn *testNet) setup(t testing.TB, h *netlink.Handle, name, cidr string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	a, _ := netlink.ParseAddr(cidr)
	if err := h.AddrAdd(l, a); err != nil {
		t.Fatalf("addr %s on %s: %v", cidr, name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatalf("up %s: %v", name, err)
	}
	return l
}

// newNamedNS creates a named namespace without leaving the caller in it.
func newNamedNS(t testing.TB, name string) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("netns.Get: %v", err)
	}
	ns, err := netns.NewNamed(name) // moves this thread into it
	if rerr := netns.Set(orig); rerr == nil {
		runtime.UnlockOSThread()
	} else {
		t.Errorf("restore netns: %v", rerr) // thread stays locked and dies with the test
	}
	orig.Close()
	if err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	return ns
}

// openPort opens a Port on ifindex inside ns; Close is registered.
func openPort(t testing.TB, ns netns.NsHandle, ifindex int, pool *port.Pool, o Options) *Port {
	t.Helper()
	var p *Port
	var err error
	inNS(t, ns, func() { p, err = Open(ifindex, pool, o) })
	if err != nil {
		t.Fatalf("Open(%d) = %v", ifindex, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// rawSock is a plain (non-ring) packet socket: the peer, or a bystander.
type rawSock struct {
	fd  int
	buf []byte
}

func openRaw(t testing.TB, ns netns.NsHandle, ifindex int, ignoreOutgoing bool) *rawSock {
	t.Helper()
	var fd int
	var err error
	inNS(t, ns, func() {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	})
	if err != nil {
		t.Fatalf("raw socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if ignoreOutgoing {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
			t.Fatalf("PACKET_IGNORE_OUTGOING: %v", err)
		}
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		t.Fatalf("bind raw: %v", err)
	}
	return &rawSock{fd: fd, buf: make([]byte, 65536)}
}

func (r *rawSock) send(t testing.TB, frame []byte) {
	t.Helper()
	for {
		_, err := unix.Write(r.fd, frame)
		if err == unix.EAGAIN || err == unix.ENOBUFS {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		if err != nil {
			t.Fatalf("peer send %d bytes: %v", len(frame), err)
		}
		return
	}
}

// recv returns the next frame within timeout (a copy), skipping frames the
// socket's own host sent.
func (r *rawSock) recv(timeout time.Duration) ([]byte, bool) { return r.recvFrom(timeout, false) }

// recvFrom is recv that also returns outgoing frames when outgoing is set.
func (r *rawSock) recvFrom(timeout time.Duration, outgoing bool) ([]byte, bool) {
	deadline := time.Now().Add(timeout)
	for {
		n, from, err := unix.Recvfrom(r.fd, r.buf, 0)
		if err == nil {
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING && !outgoing {
				continue
			}
			return bytes.Clone(r.buf[:n]), true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, false
		}
		pfd := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN}}
		_, _ = unix.Poll(pfd, int(left/time.Millisecond)+1)
	}
}

// tag is one VLAN tag: TPID (0x8100, 0x88a8) and TCI.
type tag struct{ tpid, tci uint16 }

// udpFrame builds, with gopacket, an Ethernet/[VLAN...]/IPv4/UDP frame of
// exactly size bytes whose payload carries marker and seq. The UDP source
// port varies with seq so hash fanout sees many flows.
func udpFrame(t testing.TB, dst, src net.HardwareAddr, seq uint32, size int, tags ...tag) []byte {
	t.Helper()
	hdr := 14 + 4*len(tags) + 20 + 8
	if size < hdr+len(marker)+4 {
		t.Fatalf("udpFrame: size %d too small", size)
	}
	ls := []gopacket.SerializableLayer{}
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4}
	if len(tags) > 0 {
		eth.EthernetType = layers.EthernetType(tags[0].tpid)
	}
	ls = append(ls, eth)
	for i, tg := range tags {
		next := layers.EthernetTypeIPv4
		if i+1 < len(tags) {
			next = layers.EthernetType(tags[i+1].tpid)
		}
		ls = append(ls, &layers.Dot1Q{Priority: uint8(tg.tci >> 13), DropEligible: tg.tci&0x1000 != 0,
			VLANIdentifier: tg.tci & 0x0fff, Type: next})
	}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: ipB, DstIP: ipA}
	udp := &layers.UDP{SrcPort: layers.UDPPort(40000 + seq%4096), DstPort: 4789}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, size-hdr)
	copy(payload, marker)
	binary.BigEndian.PutUint32(payload[len(marker):], seq)
	for i := len(marker) + 4; i < len(payload); i++ {
		payload[i] = byte(int(seq)*7 + i)
	}
	ls = append(ls, ip, udp, gopacket.Payload(payload))
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	if len(sb.Bytes()) != size {
		t.Fatalf("udpFrame: built %d bytes, want %d", len(sb.Bytes()), size)
	}
	return bytes.Clone(sb.Bytes())
}

const etherTypeExp = 0x88b5 // IEEE 802 local experimental EtherType 1

// expFrame builds a frame of EtherType 0x88b5 carrying marker and seq.
func expFrame(t testing.TB, seq uint32, size int) []byte {
	t.Helper()
	payload := make([]byte, size-14)
	copy(payload, marker)
	binary.BigEndian.PutUint32(payload[len(marker):], seq)
	sb := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{},
		&layers.Ethernet{SrcMAC: macB, DstMAC: macNoOne, EthernetType: etherTypeExp}, gopacket.Payload(payload))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(sb.Bytes())
}

// seqOf finds our marker in a test frame, strictly (Ethernet [tags] then
// IPv4/UDP or 0x88b5, marker first in the payload), so that an ICMP error
// quoting one of our frames is not mistaken for it.
func seqOf(f []byte) (uint32, bool) {
	off := 12
	for off+2 <= len(f) {
		et := binary.BigEndian.Uint16(f[off:])
		switch et {
		case 0x8100, 0x88a8:
			off += 4
			continue
		case etherTypeExp:
			p := f[off+2:]
			if len(p) >= len(marker)+4 && bytes.Equal(p[:len(marker)], marker) {
				return binary.BigEndian.Uint32(p[len(marker):]), true
			}
			return 0, false
		case 0x0800:
			ip := f[off+2:]
			if len(ip) < 20 || ip[9] != 17 {
				return 0, false
			}
			p := ip[int(ip[0]&0xf)*4:]
			if len(p) < 8+len(marker)+4 || !bytes.Equal(p[8:8+len(marker)], marker) {
				return 0, false
			}
			return binary.BigEndian.Uint32(p[8+len(marker):]), true
		}
		return 0, false
	}
	return 0, false
}

// rxFrame is a received frame copied out of its chunk.
type rxFrame struct {
	seq  uint32
	data []byte
	ts   int64
}

// receive polls and receives from p until want marked frames arrived or
// timeout passed, returning every chunk to the pool. Unmarked frames are
// returned as noise.
func receive(t testing.TB, p *Port, pool *port.Pool, want int, timeout time.Duration) (got []rxFrame, noise int) {
	t.Helper()
	var b port.Batch
	deadline := time.Now().Add(timeout)
	for len(got) < want && time.Now().Before(deadline) {
		if err := p.Poll(10 * time.Millisecond); err != nil {
			t.Fatalf("Poll: %v", err)
		}
		p.Receive(&b)
		for i := range b.Frames() {
			f := &b.F[i]
			if f.Off != port.Headroom || len(f.Buf) != port.ChunkSize {
				t.Errorf("frame at Off %d in a %d-byte chunk, want %d, %d", f.Off, len(f.Buf), port.Headroom, port.ChunkSize)
			}
			if s, ok := seqOf(f.Bytes()); ok {
				got = append(got, rxFrame{s, bytes.Clone(f.Bytes()), f.TS})
			} else {
				noise++
			}
			pool.Put(f)
		}
		b.N = 0
	}
	return got, noise
}
