package steer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Test network: namespace tt-steer-<pid>-<n> holds tt-steer-a
// (198.18.0.1/30), the "NIC" the programs attach to; its veth peer
// tt-steer-b (198.18.0.2/30) sits in a second namespace, the "wire" side,
// so traffic between them really crosses the veth. One queue each.
const (
	vethA = "tt-steer-a"
	vethB = "tt-steer-b"
)

var nsSeq atomic.Int32

type testNS struct{ name string }

func runCmd(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newNS creates a network namespace deleted when the test ends, pass or fail.
func newNS(t testing.TB) *testNS {
	t.Helper()
	requireBPF(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("these tests need iproute2's ip: %v", err)
	}
	ns := &testNS{name: fmt.Sprintf("tt-steer-%d-%d", os.Getpid(), nsSeq.Add(1))}
	runCmd(t, "ip", "netns", "add", ns.name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", ns.name, err, out)
		}
	})
	ns.ip(t, "link", "set", "lo", "up")
	return ns
}

// newVeth creates the veth pair, up, with IPv6 off so that nothing but the
// test's own frames crosses it, and returns the two namespaces.
func newVeth(t testing.TB) (ns, peer *testNS) {
	t.Helper()
	ns, peer = newNS(t), newNS(t)
	ns.ip(t, "link", "add", vethA, "numtxqueues", "1", "numrxqueues", "1", "type", "veth",
		"peer", "name", vethB, "numtxqueues", "1", "numrxqueues", "1", "netns", peer.name)
	for _, side := range []struct {
		ns        *testNS
		dev, addr string
	}{{ns, vethA, "198.18.0.1/30"}, {peer, vethB, "198.18.0.2/30"}} {
		runCmd(t, "ip", "netns", "exec", side.ns.name, "sysctl", "-qw", "net.ipv6.conf."+side.dev+".disable_ipv6=1")
		side.ns.ip(t, "addr", "add", side.addr, "dev", side.dev)
		side.ns.ip(t, "link", "set", side.dev, "up")
	}
	return ns, peer
}

func (ns *testNS) ip(t testing.TB, args ...string) string {
	t.Helper()
	return runCmd(t, "ip", append([]string{"-n", ns.name}, args...)...)
}

// do runs fn on a thread switched into the namespace, and switches back. If
// switching back fails the thread stays locked, so the runtime retires it.
func (ns *testNS) do(t testing.TB, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("open own netns: %v", err)
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns.name)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("open netns %s: %v", ns.name, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("setns %s: %v", ns.name, err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			t.Errorf("setns back from %s: %v (thread retired)", ns.name, err)
			return
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

func (ns *testNS) iface(t testing.TB, name string) (ifi *net.Interface) {
	t.Helper()
	ns.do(t, func() {
		var err error
		if ifi, err = net.InterfaceByName(name); err != nil {
			t.Fatalf("interface %s in %s: %v", name, ns.name, err)
		}
	})
	return ifi
}

var (
	reXDPMode = regexp.MustCompile(`mtu \d+ (xdp\w*) `)
	reXDPProg = regexp.MustCompile(`prog/xdp id (\d+)`)
)

// xdpState reads what `ip -d link show` says is attached to dev: the mode
// keyword ("xdp" is native, "xdpgeneric") and the program ID, or "" and 0.
func (ns *testNS) xdpState(t testing.TB, dev string) (mode string, id int) {
	t.Helper()
	out := ns.ip(t, "-d", "link", "show", "dev", dev)
	if m := reXDPMode.FindStringSubmatch(out); m != nil {
		mode = m[1]
	}
	if m := reXDPProg.FindStringSubmatch(out); m != nil {
		id, _ = strconv.Atoi(m[1])
	}
	return mode, id
}

func progID(t testing.TB, p *Program) int {
	t.Helper()
	info, err := p.prog.Info()
	if err != nil {
		t.Fatalf("program info: %v", err)
	}
	id, ok := info.ID()
	if !ok {
		t.Fatalf("kernel reports no program ID")
	}
	return int(id)
}

// newXSK opens an AF_XDP socket bound (copy mode) to queue of interface
// ifindex in ns, with a UMEM and rings but no frames in the fill ring: the
// kernel accepts it in an XSKMAP and redirects to it, and drops what it
// cannot place. The returned close func is idempotent and also runs at
// cleanup.
func newXSK(t testing.TB, ns *testNS, ifindex, queue int) (fd int, closeFn func()) {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, 16*4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatalf("mmap UMEM: %v", err)
	}
	t.Cleanup(func() { _ = unix.Munmap(mem) })
	ns.do(t, func() {
		fd, err = unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	})
	if err != nil {
		t.Fatalf("socket(AF_XDP): %v", err)
	}
	var once sync.Once
	closeFn = func() { once.Do(func() { unix.Close(fd) }) }
	t.Cleanup(closeFn)

	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&mem[0]))), Len: uint64(len(mem)), Size: 4096}
	if _, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_UMEM_REG,
		uintptr(unsafe.Pointer(&reg)), unsafe.Sizeof(reg), 0); errno != 0 {
		t.Fatalf("setsockopt(XDP_UMEM_REG): %v", errno)
	}
	for _, opt := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, opt, 64); err != nil {
			t.Fatalf("setsockopt(SOL_XDP, %d): %v", opt, err)
		}
	}
	ns.do(t, func() {
		err = unix.Bind(fd, &unix.SockaddrXDP{Flags: unix.XDP_COPY, Ifindex: uint32(ifindex), QueueID: uint32(queue)})
	})
	if err != nil {
		t.Fatalf("bind AF_XDP socket to ifindex %d queue %d: %v", ifindex, queue, err)
	}
	return fd, closeFn
}

// inject sends frame out of interface dev in ns with an AF_PACKET socket:
// it arrives at dev's veth peer as if from the wire.
func (ns *testNS) inject(t testing.TB, dev string, frame []byte) {
	t.Helper()
	ifi := ns.iface(t, dev)
	var fd int
	var err error
	ns.do(t, func() { fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0) })
	if err != nil {
		t.Fatalf("socket(AF_PACKET): %v", err)
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6, Protocol: htons(binary.BigEndian.Uint16(frame[12:14]))}
	copy(sa.Addr[:], frame[:6])
	if err := unix.Sendto(fd, frame, 0, sa); err != nil {
		t.Fatalf("send %d bytes on %s: %v", len(frame), dev, err)
	}
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return *(*uint16)(unsafe.Pointer(&b[0]))
}

// tail keeps the last bytes a child process wrote, for failure messages.
type tail struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.buf.Len() > 8192 {
		w.buf.Next(w.buf.Len() - 8192)
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
