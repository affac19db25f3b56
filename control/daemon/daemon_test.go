package daemon_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tunterm/tunterm/dataplane/port"
	"github.com/tunterm/tunterm/dataplane/port/afpacket"
)

// These tests run the real tunterm binary in network namespaces: ns A (the
// APs) -- down0 [tunterm] up0 -- ns C (the corporate trunk). Frames are the
// demo captures (testdata/demo, built by scapy).

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tunterm-daemon-test")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "tunterm")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/tunterm").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building tunterm: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type lab struct {
	t         *testing.T
	a, dut, c string // namespace names
	cfg       string
	cmd       *exec.Cmd
	mu        sync.Mutex
	log       bytes.Buffer
	logLines  chan string
	logDone   chan struct{} // closed when the output reader met EOF
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newLab builds the namespaces. upKind "veth" or "bridge" (a NIC without
// native XDP, to force the AF_PACKET fallback).
func newLab(t *testing.T, upKind string) *lab {
	if os.Geteuid() != 0 {
		t.Skip("!!! NOT TESTED: the daemon tests need root (netns, XDP, AF_XDP) !!!")
	}
	p := fmt.Sprintf("tt-d%d-", os.Getpid()%10000)
	l := &lab{t: t, a: p + "a", dut: p + "dut", c: p + "c"}
	for _, n := range []string{l.a, l.dut, l.c} {
		exec.Command("ip", "netns", "del", n).Run()
		sh(t, "ip", "netns", "add", n)
	}
	t.Cleanup(func() {
		l.stop(syscall.SIGKILL)
		for _, n := range []string{l.a, l.dut, l.c} {
			exec.Command("ip", "netns", "del", n).Run()
		}
	})
	sh(t, "ip", "link", "add", "ap0", "netns", l.a, "type", "veth", "peer", "name", "down0", "netns", l.dut)
	if upKind == "bridge" { // a NIC without native XDP
		sh(t, "ip", "-n", l.dut, "link", "add", "up0", "type", "bridge")
	} else {
		sh(t, "ip", "link", "add", "corp0", "netns", l.c, "type", "veth", "peer", "name", "up0", "netns", l.dut)
		sh(t, "ip", "-n", l.c, "link", "set", "corp0", "up")
	}
	sh(t, "ip", "-n", l.dut, "link", "set", "down0", "address", "02:00:00:00:00:01")
	sh(t, "ip", "-n", l.a, "link", "set", "ap0", "address", "02:00:00:00:00:fe")
	sh(t, "ip", "-n", l.a, "link", "set", "ap0", "up")
	sh(t, "ip", "-n", l.dut, "link", "set", "down0", "up")
	sh(t, "ip", "-n", l.dut, "link", "set", "up0", "up")
	sh(t, "ip", "-n", l.a, "addr", "add", "198.18.0.2/24", "dev", "ap0")
	sh(t, "ip", "-n", l.dut, "addr", "add", "198.18.0.1/24", "dev", "down0")
	return l
}

func (l *lab) writeConfig(extra string) {
	b, err := os.ReadFile("../../testdata/demo/tunterm.yaml")
	if err != nil {
		l.t.Fatal(err)
	}
	s := strings.NewReplacer("interface: eth0", "interface: down0", "interface: eth1", "interface: up0",
		"gateway: 198.18.0.254,", "").Replace(string(b))
	if l.cfg == "" {
		l.cfg = filepath.Join(l.t.TempDir(), "tunterm.yaml")
	}
	if err := os.WriteFile(l.cfg, []byte(s+extra), 0o644); err != nil {
		l.t.Fatal(err)
	}
}

func (l *lab) start() {
	l.logLines = make(chan string, 1024)
	l.logDone = make(chan struct{})
	l.cmd = exec.Command("ip", "netns", "exec", l.dut, bin, "run", "--config", l.cfg, "--stats", "300ms")
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw, _ := os.Pipe()
	l.cmd.Stdout, l.cmd.Stderr = pw, pw
	if err := l.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	pw.Close()
	go func() {
		defer close(l.logDone)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			l.mu.Lock()
			l.log.WriteString(sc.Text() + "\n")
			l.mu.Unlock()
			select {
			case l.logLines <- sc.Text():
			default:
			}
		}
	}()
	l.waitLog("dataplane running", 15*time.Second)
}

// waitLog waits for a log line containing s.
func (l *lab) waitLog(s string, d time.Duration) string {
	l.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case line := <-l.logLines:
			if strings.Contains(line, s) {
				return line
			}
		case <-deadline:
			l.mu.Lock()
			defer l.mu.Unlock()
			l.t.Fatalf("no %q in tunterm's log within %v:\n%s", s, d, l.log.String())
		}
	}
}

func (l *lab) logText() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.log.String()
}

// waitText waits up to d for s anywhere in the log so far (waitLog
// consumes the lines it reads: use this for a line that may have gone by).
func (l *lab) waitText(s string, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(l.logText(), s) {
			return true
		}
	}
	return strings.Contains(l.logText(), s)
}

func (l *lab) stop(sig syscall.Signal) error {
	if l.cmd == nil || l.cmd.Process == nil {
		return nil
	}
	syscall.Kill(-l.cmd.Process.Pid, sig)
	err := l.cmd.Wait()
	l.cmd = nil
	// Wait returns when the process has exited; its last lines (the final
	// counters) may still be in the pipe, on their way to l.log.
	select {
	case <-l.logDone:
	case <-time.After(5 * time.Second):
	}
	return err
}

func (l *lab) signal(sig syscall.Signal) { syscall.Kill(-l.cmd.Process.Pid, sig) }

func (l *lab) xdpAttached() bool {
	out := sh(l.t, "ip", "-n", l.dut, "-d", "link", "show")
	return strings.Contains(out, "prog/xdp")
}

// inNS runs f on a thread switched into namespace name.
func inNS(t *testing.T, name string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		ns, err := netns.GetFromName(name)
		if err != nil {
			t.Errorf("netns %s: %v", name, err)
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			t.Errorf("setns %s: %v", name, err)
			return
		}
		f()
	}()
	<-done
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// sendPcap sends every frame of a capture out of ifname in namespace ns.
func sendPcap(t *testing.T, ns, ifname, path string, pick func(i int) bool) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for i := 1; ; i++ {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		if pick == nil || pick(i) {
			frames = append(frames, data)
		}
	}
	inNS(t, ns, func() {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			t.Errorf("socket: %v", err)
			return
		}
		defer unix.Close(fd)
		ifi, err := netInterface(ifname)
		if err != nil {
			t.Error(err)
			return
		}
		for _, fr := range frames {
			if err := unix.Sendto(fd, fr, 0, &unix.SockaddrLinklayer{Ifindex: ifi, Halen: 6}); err != nil {
				t.Errorf("send: %v", err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
}

// capture receives frames on ifname in ns for d while during runs. It uses
// tunterm's AF_PACKET port, which puts back the VLAN tags the kernel strips.
func capture(t *testing.T, ns, ifname string, d time.Duration, during func()) [][]byte {
	var got [][]byte
	ready := make(chan struct{})
	fin := make(chan struct{})
	go inNS(t, ns, func() {
		defer close(fin)
		ifi, err := netInterface(ifname)
		if err != nil {
			t.Error(err)
			close(ready)
			return
		}
		pool := port.NewPool(256)
		p, err := afpacket.Open(ifi, pool, afpacket.Options{Promisc: true})
		if err != nil {
			t.Errorf("capture on %s: %v", ifname, err)
			close(ready)
			return
		}
		defer p.Close()
		close(ready)
		var b port.Batch
		for end := time.Now().Add(d); time.Now().Before(end); {
			if p.Receive(&b) == 0 {
				p.Poll(20 * time.Millisecond)
				continue
			}
			for i := range b.Frames() {
				got = append(got, append([]byte(nil), b.F[i].Bytes()...))
				pool.Put(&b.F[i])
			}
			b.N = 0
		}
	})
	<-ready
	during()
	<-fin
	return got
}

// netInterface looks name up in the calling thread's network namespace.
func netInterface(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, err
	}
	return ifi.Index, nil
}

// payloads returns the UDP payloads of tagged frames, with their VLAN.
func payloads(frames [][]byte) []string {
	var out []string
	for _, f := range frames {
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		q, _ := p.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
		if q == nil {
			continue
		}
		if u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && u.DstPort == 9999 {
			out = append(out, fmt.Sprintf("vlan %d %s", q.VLANIdentifier, u.Payload))
		}
		if _, ok := p.Layer(layers.LayerTypeDHCPv4).(*layers.DHCPv4); ok {
			out = append(out, fmt.Sprintf("vlan %d dhcp", q.VLANIdentifier))
		}
		if _, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP); ok {
			out = append(out, fmt.Sprintf("vlan %d arp", q.VLANIdentifier))
		}
	}
	return out
}

// TestDaemonLive: start, both directions, reload, link flap, stop.
func TestDaemonLive(t *testing.T) {
	l := newLab(t, "veth")
	l.writeConfig("workers: 2\n")
	l.start()
	if !l.xdpAttached() {
		t.Fatalf("no XDP program attached after start:\n%s", sh(t, "ip", "-n", l.dut, "-d", "link", "show"))
	}
	// Two workers on a machine with fewer than three CPUs: tunterm
	// raises GOMAXPROCS so the control plane has a P of its own.
	if n := runtime.NumCPU(); n < 3 && !strings.Contains(l.logText(), fmt.Sprintf("GOMAXPROCS raised: one P per worker plus one for the control plane\" from=%d to=3", n)) {
		t.Errorf("no GOMAXPROCS line (from=%d to=3) in the log:\n%s", n, l.logText())
	}
	// AP -> corporate: the demo's downstream capture (frames 2-4 are good,
	// 5 replays 4, 6 has a wrong cookie, 7 a flipped ICV).
	got := capture(t, l.c, "corp0", 2*time.Second, func() {
		sendPcap(t, l.a, "ap0", "../../testdata/demo/downstream-in.pcap", nil)
	})
	// Two workers own the two APs: order is kept per SA (dhcp before arp,
	// both ap1's), not across APs.
	want := []string{"vlan 100 dhcp", "vlan 100 arp", "vlan 200 query"}
	p := payloads(got)
	if len(p) != 3 || !slices.Contains(p, want[2]) || fmt.Sprint(slices.DeleteFunc(slices.Clone(p), func(s string) bool { return s == want[2] })) != fmt.Sprint(want[:2]) {
		t.Fatalf("corporate side got %v, want %v (ap1's two frames in order)\nlog:\n%s", p, want, l.logText())
	}
	line := l.waitLog("cookie_mismatch", 5*time.Second)
	// The counters line is per interval: the replay and the ICV failure
	// (frames 5 and 7, around frame 6) may be in the next one.
	for _, r := range []string{"downstream/replay=1", "downstream/integrity=1"} {
		if !l.waitText(r, 5*time.Second) {
			t.Errorf("log lacks %s: %s", r, line)
		}
	}
	// corporate -> AP: the answer to ap1's client comes out as ESP to ap1.
	got = capture(t, l.a, "ap0", time.Second, func() {
		sendPcap(t, l.c, "corp0", "../../testdata/demo/upstream-in.pcap", func(i int) bool { return i == 1 })
	})
	esp := 0
	for _, f := range got {
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		if e, ok := p.Layer(layers.LayerTypeIPSecESP).(*layers.IPSecESP); ok && e.SPI == 0x2001 {
			esp++
		}
	}
	if esp != 1 {
		t.Fatalf("AP side got %d ESP frames with SPI 0x2001, want 1", esp)
	}

	// SIGHUP with an unchanged file keeps SA state: the first good frame
	// again is now a replay.
	l.signal(syscall.SIGHUP)
	l.waitLog("configuration reloaded", 5*time.Second)
	got = capture(t, l.c, "corp0", time.Second, func() {
		sendPcap(t, l.a, "ap0", "../../testdata/demo/downstream-in.pcap", func(i int) bool { return i == 2 })
	})
	if p := payloads(got); len(p) != 0 {
		t.Errorf("after reload a replayed frame was forwarded: %v", p)
	}
	l.waitLog("downstream/replay=1", 5*time.Second)

	// A broken file is refused and the running tables stay.
	os.WriteFile(l.cfg, []byte("tunnels: [{name: x}]\n"), 0o644)
	l.signal(syscall.SIGHUP)
	l.waitLog("reload failed", 5*time.Second)

	// Link down and up: logged, and traffic resumes.
	sh(t, "ip", "-n", l.dut, "link", "set", "up0", "down")
	l.waitLog("link down", 5*time.Second)
	sh(t, "ip", "-n", l.dut, "link", "set", "up0", "up")
	l.waitLog("link up", 5*time.Second)
	// "link up" is up0 running again; corp0, its peer, gets its carrier
	// back at once but its queue from the kernel's link watcher, later:
	// until then what it sends is dropped. Send until a frame comes
	// through.
	got = nil
	for end := time.Now().Add(10 * time.Second); len(got) == 0 && time.Now().Before(end); {
		got = capture(t, l.a, "ap0", time.Second, func() {
			sendPcap(t, l.c, "corp0", "../../testdata/demo/upstream-in.pcap", func(i int) bool { return i == 1 })
		})
	}
	if len(got) == 0 {
		t.Errorf("no traffic after the link came back")
	}

	if err := l.stop(syscall.SIGTERM); err != nil {
		t.Errorf("tunterm exited with %v after SIGTERM\n%s", err, l.logText())
	}
	if l.xdpAttached() {
		t.Errorf("XDP program left attached after exit:\n%s", sh(t, "ip", "-n", l.dut, "-d", "link", "show"))
	}
	// The kernel's drops, split by cause, close the log (nothing was
	// overloaded here).
	if !strings.Contains(l.logText(), "nic_rx_dropped=0 nic_rx_ring_full=0 nic_rx_no_buffer=0") {
		t.Errorf("final counters lack the kernel's drops by cause:\n%s", l.logText())
	}
	// Every counters line gives the worker's longest gap between polls;
	// an idle worker naps in nanosleep(50 µs), which the kernel never
	// cuts short, so some interval's gap is at least that.
	gaps := regexp.MustCompile(`msg=counters .*max_poll_gap_us=(\d+)`).FindAllStringSubmatch(l.logText(), -1)
	most := 0
	for _, g := range gaps {
		n, _ := strconv.Atoi(g[1])
		most = max(most, n)
	}
	if len(gaps) == 0 || most < 50 {
		t.Errorf("counters lines with max_poll_gap_us: %d, largest %d µs; want some, one at least 50 µs (a nap)", len(gaps), most)
	}
}

// TestDaemonFallback: an upstream NIC without native XDP and xdp_mode
// native: tunterm says why and runs on AF_PACKET.
func TestDaemonFallback(t *testing.T) {
	l := newLab(t, "bridge")
	l.writeConfig("workers: 1\nports: {xdp_mode: native}\n")
	l.start()
	log := l.logText()
	if !strings.Contains(log, "falling back to AF_PACKET") || !strings.Contains(log, "driver=afpacket") {
		t.Fatalf("no AF_PACKET fallback in the log:\n%s", log)
	}
	if l.xdpAttached() {
		t.Errorf("XDP left attached after the fallback")
	}
	// AP -> corporate through AF_PACKET: the bridge has no peer to capture
	// on, so check the counters instead.
	sendPcap(t, l.a, "ap0", "../../testdata/demo/downstream-in.pcap", nil)
	l.waitLog("downstream/cookie_mismatch=1", 5*time.Second)
	if !strings.Contains(l.logText(), "tx_up_pps=") {
		t.Errorf("no counters logged")
	}
	if err := l.stop(syscall.SIGINT); err != nil {
		t.Errorf("exit after SIGINT: %v\n%s", err, l.logText())
	}
}

// TestDaemonBadConfig: clear errors and a non-zero exit.
func TestDaemonBadConfig(t *testing.T) {
	l := newLab(t, "veth")
	l.writeConfig("ports: {driver: dpdk}\n")
	out, err := exec.Command("ip", "netns", "exec", l.dut, bin, "run", "--config", l.cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "ports.driver") {
		t.Fatalf("bad driver: err %v, output %s", err, out)
	}
	l.writeConfig("")
	os.WriteFile(l.cfg, bytes.Replace(must(os.ReadFile(l.cfg)), []byte("down0"), []byte("nosuch0"), 1), 0o644)
	out, err = exec.Command("ip", "netns", "exec", l.dut, bin, "run", "--config", l.cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nosuch0") {
		t.Fatalf("missing interface: err %v, output %s", err, out)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
