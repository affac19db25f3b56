package steer

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket/layers"
)

// ipKeyword is what `ip link` prints for a program attached in mode m.
func ipKeyword(m Mode) string {
	if m == Generic {
		return "xdpgeneric"
	}
	return "xdp"
}

func attachIn(t testing.TB, ns *testNS, p *Program, dev string, m Mode) error {
	t.Helper()
	ifi := ns.iface(t, dev)
	var err error
	ns.do(t, func() { err = p.Attach(ifi.Index, m) })
	return err
}

func wantAttached(t testing.TB, ns *testNS, dev string, p *Program, m Mode) {
	t.Helper()
	mode, id := ns.xdpState(t, dev)
	if want := progID(t, p); mode != ipKeyword(m) || id != want {
		t.Fatalf("ip link shows %s with %q id %d, want %q id %d", dev, mode, id, ipKeyword(m), want)
	}
}

func wantDetached(t testing.TB, ns *testNS, dev string) {
	t.Helper()
	if mode, id := ns.xdpState(t, dev); mode != "" || id != 0 {
		t.Fatalf("ip link shows %s with %q id %d, want no XDP program", dev, mode, id)
	}
}

// TestAttach attaches through bpf_link in each mode on a veth in a fresh
// namespace and checks with `ip -d link` that the program is there, that
// Detach and Close remove it, and that both are idempotent.
func TestAttach(t *testing.T) {
	for _, tc := range []struct {
		mode, want Mode
		role       Role
	}{
		{Native, Native, Downstream},
		{Generic, Generic, Downstream},
		{Auto, Native, Downstream}, // veth supports native XDP
		{Native, Native, Upstream},
		{Generic, Generic, Upstream},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.role, tc.mode), func(t *testing.T) {
			ns, _ := newVeth(t)
			p := load(t, tc.role)
			if tc.role == Downstream {
				if err := p.SetAddrs([]netip.Addr{tun4}); err != nil {
					t.Fatal(err)
				}
			}
			wantDetached(t, ns, vethA)
			if err := attachIn(t, ns, p, vethA, tc.mode); err != nil {
				t.Fatalf("Attach(%s, %s) = %v", vethA, tc.mode, err)
			}
			ifindex := ns.iface(t, vethA).Index
			if i, m, ok := p.Attachment(); i != ifindex || m != tc.want || !ok {
				t.Errorf("Attachment() = %d, %s, %v, want %d, %s, true", i, m, ok, ifindex, tc.want)
			}
			wantAttached(t, ns, vethA, p, tc.want)

			err := attachIn(t, ns, p, "lo", tc.mode)
			if !errors.Is(err, ErrAttached) || !strings.Contains(err.Error(), vethA) {
				t.Errorf("second Attach = %v, want %v naming %s", err, ErrAttached, vethA)
			}
			wantDetached(t, ns, "lo")

			for i := range 2 {
				if err := p.Detach(); err != nil {
					t.Fatalf("Detach() #%d = %v", i+1, err)
				}
			}
			wantDetached(t, ns, vethA)
			if _, _, ok := p.Attachment(); ok {
				t.Errorf("Attachment() ok after Detach")
			}

			if err := attachIn(t, ns, p, vethA, tc.mode); err != nil {
				t.Fatalf("Attach after Detach = %v", err)
			}
			wantAttached(t, ns, vethA, p, tc.want)
			if err := p.Close(); err != nil {
				t.Fatalf("Close() = %v", err)
			}
			wantDetached(t, ns, vethA)
			if err := p.Close(); err != nil {
				t.Fatalf("second Close() = %v", err)
			}
		})
	}
}

// TestAttachErrors: refusals name the interface and the mode; Auto falls
// back to generic where the driver has no native XDP (loopback).
func TestAttachErrors(t *testing.T) {
	ns, _ := newVeth(t)
	p := load(t, Downstream, tun4)

	err := attachIn(t, ns, p, "lo", Native)
	if err == nil {
		t.Fatalf("Attach(lo, native) = nil, want error (loopback has no native XDP)")
	}
	for _, want := range []string{"lo (ifindex 1)", "native", "xdp_downstream"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Attach(lo, native) = %q, want it to mention %q", err, want)
		}
	}
	if _, _, ok := p.Attachment(); ok {
		t.Errorf("Attachment() ok after failed Attach")
	}
	wantDetached(t, ns, "lo")

	if err := attachIn(t, ns, p, "lo", Auto); err != nil {
		t.Fatalf("Attach(lo, auto) = %v, want generic fallback", err)
	}
	if _, m, _ := p.Attachment(); m != Generic {
		t.Errorf("Attach(lo, auto) chose %s, want generic", m)
	}
	wantAttached(t, ns, "lo", p, Generic)
	if err := p.Detach(); err != nil {
		t.Fatal(err)
	}
	wantDetached(t, ns, "lo")

	var errMissing, errAuto, errMode error
	ns.do(t, func() {
		errMissing = p.Attach(99999, Generic)
		errAuto = p.Attach(99999, Auto)
		errMode = p.Attach(1, Mode(7))
	})
	for _, c := range []struct {
		err  error
		want []string
	}{
		{errMissing, []string{"ifindex 99999", "generic"}},
		{errAuto, []string{"ifindex 99999", "generic", "native failed first"}},
		{errMode, []string{"mode(7)", "lo"}},
	} {
		if c.err == nil {
			t.Errorf("Attach = nil, want error mentioning %q", c.want)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(c.err.Error(), w) {
				t.Errorf("Attach error %q, want it to mention %q", c.err, w)
			}
		}
	}
}

const childEnv = "TT_STEER_KILL_CHILD" // "<interface>:<mode>"

// TestKillSafetyChild is the process TestKillSafety kills: it attaches,
// reports the program ID and waits to die. It does nothing in a normal run.
func TestKillSafetyChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("helper process for TestKillSafety")
	}
	dev, modeName, _ := strings.Cut(spec, ":")
	mode, err := ParseMode(modeName)
	if err != nil {
		t.Fatal(err)
	}
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load(Downstream, []netip.Addr{tun4})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Attach(ifi.Index, mode); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ATTACHED %d\n", progID(t, p))
	time.Sleep(2 * time.Minute) // SIGKILL arrives long before
	t.Fatal("not killed")
}

// TestKillSafety: a process that attached and is SIGKILLed leaves nothing
// behind — the bpf_link dies with its file descriptor, taking the program
// off the interface, and the program itself is freed.
func TestKillSafety(t *testing.T) {
	for _, mode := range []Mode{Native, Generic} {
		t.Run(mode.String(), func(t *testing.T) {
			ns, _ := newVeth(t)
			load(t, Downstream) // skip loudly here, not in the child, if BPF is unavailable

			cmd := exec.Command("ip", "netns", "exec", ns.name, os.Args[0],
				"-test.run=^TestKillSafetyChild$", "-test.count=1", "-test.timeout=3m")
			cmd.Env = append(os.Environ(), childEnv+"="+vethA+":"+mode.String())
			stderr := &tail{}
			cmd.Stderr = stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatalf("start child: %v", err)
			}
			exited := make(chan error, 1)
			t.Cleanup(func() { // also on failure: never leave the child behind
				_ = cmd.Process.Kill()
				<-exited
			})

			ids := make(chan int, 1)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					if rest, ok := strings.CutPrefix(sc.Text(), "ATTACHED "); ok {
						id, _ := strconv.Atoi(rest)
						ids <- id
					}
				}
				exited <- cmd.Wait()
			}()
			var id int
			select {
			case id = <-ids:
			case err := <-exited:
				exited <- err
				t.Fatalf("child exited before attaching: %v\n%s", err, stderr)
			case <-time.After(60 * time.Second):
				t.Fatalf("child did not attach within 60s\n%s", stderr)
			}
			mode0, id0 := ns.xdpState(t, vethA)
			if mode0 != ipKeyword(mode) || id0 != id {
				t.Fatalf("with child running, ip link shows %q id %d, want %q id %d", mode0, id0, ipKeyword(mode), id)
			}

			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatalf("SIGKILL child: %v", err)
			}
			err = <-exited
			exited <- err // for the cleanup
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child ended with %v, want killed by SIGKILL", err)
			}

			deadline := time.Now().Add(10 * time.Second)
			for {
				m, i := ns.xdpState(t, vethA)
				if m == "" && i == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("10s after SIGKILL, ip link still shows %q id %d on %s", m, i, vethA)
				}
				time.Sleep(20 * time.Millisecond)
			}
			for {
				prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
				if errors.Is(err, os.ErrNotExist) {
					break
				}
				if err == nil {
					prog.Close()
				}
				if time.Now().After(deadline) {
					t.Fatalf("10s after SIGKILL, program id %d still exists (err %v)", id, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestRegisterXSK: with a real (bound) AF_XDP socket in the XSKMAP slot of
// queue 0, steered frames get XDP_REDIRECT and count to_xsk; frames for the
// kernel still pass; after UnregisterXSK, or once the socket is closed, the
// slot is empty again and steered frames fall back to the kernel.
func TestRegisterXSK(t *testing.T) {
	esp := frame(t, plain, ip(tun4, protoESP), espBody(5))
	ike := frame(t, plain, ip(tun4, protoUDP), udp(500, portIKE), pay(ikeHeader()...))
	lldp := frame(t, l2{dst: net.HardwareAddr{0x01, 0x80, 0xc2, 0, 0, 0x0e}}, pay(make([]byte, 46)...))

	t.Run("downstream", func(t *testing.T) {
		ns, _ := newVeth(t)
		ifA := ns.iface(t, vethA).Index
		p := load(t, Downstream, tun4)
		fd, closeXSK := newXSK(t, ns, ifA, 0)
		if err := p.RegisterXSK(0, fd); err != nil {
			t.Fatalf("RegisterXSK(0, %d) = %v", fd, err)
		}
		runWant(t, p, esp, XDPRedirect, map[Class]uint64{ClassESP: 1, ClassToXSK: 1})
		runWant(t, p, ike, XDPPass, map[Class]uint64{ClassIKE: 1})
		if err := p.UnregisterXSK(0); err != nil {
			t.Fatalf("UnregisterXSK(0) = %v", err)
		}
		runClass(t, p, esp, ClassESP) // xsk_missing, XDP_PASS
		if err := p.RegisterXSK(0, fd); err != nil {
			t.Fatalf("RegisterXSK(0, %d) again = %v", fd, err)
		}
		runWant(t, p, esp, XDPRedirect, map[Class]uint64{ClassESP: 1, ClassToXSK: 1})
		closeXSK() // the kernel takes a closed socket out of every XSKMAP
		runClass(t, p, esp, ClassESP)
	})
	t.Run("upstream", func(t *testing.T) {
		ns, _ := newVeth(t)
		ifA := ns.iface(t, vethA).Index
		p := load(t, Upstream)
		fd, _ := newXSK(t, ns, ifA, 0)
		if err := p.RegisterXSK(0, fd); err != nil {
			t.Fatalf("RegisterXSK(0, %d) = %v", fd, err)
		}
		runWant(t, p, esp, XDPRedirect, map[Class]uint64{ClassTrunk: 1, ClassToXSK: 1})
		runWant(t, p, lldp, XDPPass, map[Class]uint64{ClassLinkLocal: 1})
	})
}

// waitCounters polls until every class in want has grown by at least its
// count since before (live traffic is processed asynchronously).
func waitCounters(t testing.TB, p *Program, before, want map[Class]uint64) map[Class]uint64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d := delta(before, counters(t, p))
		done := true
		for c, n := range want {
			done = done && d[c] >= n
		}
		if done {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5s counted %s, want at least %s", fmtDelta(d), fmtDelta(want))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// udpIn opens a UDP socket in ns: bound to laddr, connected to raddr if set.
func udpIn(t testing.TB, ns *testNS, laddr, raddr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	var err error
	ns.do(t, func() {
		la := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(laddr))
		if raddr == "" {
			c, err = net.ListenUDP("udp4", la)
		} else {
			c, err = net.DialUDP("udp4", la, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(raddr)))
		}
	})
	if err != nil {
		t.Fatalf("UDP socket %s -> %q in %s: %v", laddr, raddr, ns.name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recvUDP reads one datagram, or returns nil after wait.
func recvUDP(t testing.TB, c *net.UDPConn, wait time.Duration) []byte {
	t.Helper()
	buf := make([]byte, 2048)
	_ = c.SetReadDeadline(time.Now().Add(wait))
	n, err := c.Read(buf)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		t.Fatalf("read %s: %v", c.LocalAddr(), err)
	}
	return buf[:n]
}

// TestLiveTraffic attaches to tt-steer-a and sends real traffic from the
// peer namespace: the attached program (native and generic) redirects
// dataplane frames to a registered AF_XDP socket — a kernel socket on the
// same port never sees them — and leaves ARP, IKE, NAT-keepalives and the
// rest to the kernel, whose sockets receive them and whose ICMP answers.
func TestLiveTraffic(t *testing.T) {
	for _, mode := range []Mode{Native, Generic} {
		t.Run("downstream/"+mode.String(), func(t *testing.T) {
			ns, peer := newVeth(t)
			a := ns.iface(t, vethA)
			p := load(t, Downstream, tun4)
			if err := attachIn(t, ns, p, vethA, mode); err != nil {
				t.Fatalf("Attach = %v", err)
			}
			fd, _ := newXSK(t, ns, a.Index, 0)
			if err := p.RegisterXSK(0, fd); err != nil {
				t.Fatalf("RegisterXSK = %v", err)
			}

			// Kernel sockets on the tunnel address, as charon would have.
			ike500 := udpIn(t, ns, "198.18.0.1:500", "")
			ike4500 := udpIn(t, ns, "198.18.0.1:4500", "")
			// The AP side.
			ap500 := udpIn(t, peer, "198.18.0.2:500", "198.18.0.1:500")
			ap4500 := udpIn(t, peer, "198.18.0.2:4500", "198.18.0.1:4500")
			closed := udpIn(t, peer, "198.18.0.2:40000", "198.18.0.1:9")

			step := func(name string, send func(), want map[Class]uint64) {
				t.Helper()
				before := counters(t, p)
				send()
				d := waitCounters(t, p, before, want)
				if d[ClassToXSK] != want[ClassToXSK] || d[ClassXSKMissing] != want[ClassXSKMissing] {
					t.Errorf("%s: counted %s, want %s", name, fmtDelta(d), fmtDelta(want))
				}
			}
			write := func(c *net.UDPConn, b []byte) func() {
				return func() {
					if _, err := c.Write(b); err != nil {
						t.Fatalf("send from %s: %v", c.LocalAddr(), err)
					}
				}
			}

			// First packet also resolves ARP through XDP_PASS.
			step("ike-500", write(ap500, ikeHeader()), map[Class]uint64{ClassIKE: 1, ClassOtherPass: 1})
			if got := recvUDP(t, ike500, 2*time.Second); len(got) != 28 {
				t.Errorf("kernel socket :500 got %x, want the IKE header", got)
			}
			esp := []byte(espBody(0x1000))
			step("esp-udp", write(ap4500, esp), map[Class]uint64{ClassESPUDP: 1, ClassToXSK: 1})
			step("ike-4500", write(ap4500, ikeNATT()), map[Class]uint64{ClassIKE: 1})
			step("keepalive", write(ap4500, []byte{0xff}), map[Class]uint64{ClassNATKeepalive: 1})
			if got := recvUDP(t, ike4500, 2*time.Second); len(got) != 32 || got[0] != 0 {
				t.Errorf("kernel socket :4500 got %x first, want the marked IKE message (ESP must not reach it)", got)
			}
			if got := recvUDP(t, ike4500, 2*time.Second); len(got) != 1 || got[0] != 0xff {
				t.Errorf("kernel socket :4500 got %x second, want the keepalive", got)
			}
			if got := recvUDP(t, ike4500, 100*time.Millisecond); got != nil {
				t.Errorf("kernel socket :4500 got %x, want nothing more", got)
			}

			// A closed port: the kernel answers ICMP port unreachable.
			step("closed-port", write(closed, []byte("hello")), map[Class]uint64{ClassOtherPass: 1})
			_ = closed.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := closed.Read(make([]byte, 16)); !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("read after sending to a closed port = %v, want ECONNREFUSED (ICMP from the kernel)", err)
			}

			// Raw frames for the protocols without kernel sockets here.
			to := l2{dst: a.HardwareAddr}
			inject := func(f []byte) func() { return func() { peer.inject(t, vethB, f) } }
			step("esp", inject(frame(t, to, ip(tun4, protoESP), espBody(5))), map[Class]uint64{ClassESP: 1, ClassToXSK: 1})
			step("l2tp-ip", inject(frame(t, to, ip(tun4, protoL2TP), l2tpIP(5))), map[Class]uint64{ClassL2TPIP: 1, ClassToXSK: 1})
			step("l2tp-udp", inject(frame(t, to, ip(tun4, protoUDP), udp(1701, portL2TP), l2tpUDP(3, 5))), map[Class]uint64{ClassL2TPUDP: 1, ClassToXSK: 1})
			step("l2tp-control", inject(frame(t, to, ip(tun4, protoL2TP), l2tpIP(0))), map[Class]uint64{ClassL2TPControl: 1})
			step("fragment", inject(frame(t, to, ip4(tun4, protoUDP, func(h *layers.IPv4) { h.FragOffset = 100 }), pay(make([]byte, 40)...))),
				map[Class]uint64{ClassFragment: 1, ClassToXSK: 1})
			step("not-ours", inject(frame(t, to, ip(other4, protoESP), espBody(5))), map[Class]uint64{ClassNotOurs: 1})

			// No socket on the queue: steered frames fall back to the kernel.
			if err := p.UnregisterXSK(0); err != nil {
				t.Fatal(err)
			}
			step("esp-udp-no-xsk", write(ap4500, esp), map[Class]uint64{ClassESPUDP: 1, ClassXSKMissing: 1})
			if got := recvUDP(t, ike4500, 2*time.Second); len(got) != len(esp) {
				t.Errorf("without an AF_XDP socket, kernel socket :4500 got %x, want the ESP packet", got)
			}
		})
	}
	t.Run("upstream/native", func(t *testing.T) {
		ns, peer := newVeth(t)
		a := ns.iface(t, vethA)
		p := load(t, Upstream)
		if err := attachIn(t, ns, p, vethA, Native); err != nil {
			t.Fatalf("Attach = %v", err)
		}
		fd, _ := newXSK(t, ns, a.Index, 0)
		if err := p.RegisterXSK(0, fd); err != nil {
			t.Fatal(err)
		}
		before := counters(t, p)
		peer.inject(t, vethB, frame(t, l2{dst: a.HardwareAddr, vlans: []uint16{10}}, ip(other4, protoTCP), &layers.TCP{DstPort: 443}))
		peer.inject(t, vethB, frame(t, l2{dst: net.HardwareAddr{0x01, 0x80, 0xc2, 0, 0, 0x0e}}, pay(make([]byte, 46)...)))
		want := map[Class]uint64{ClassTrunk: 1, ClassToXSK: 1, ClassLinkLocal: 1}
		if d := waitCounters(t, p, before, want); !maps.Equal(d, want) {
			t.Errorf("counted %s, want %s", fmtDelta(d), fmtDelta(want))
		}
	})
}
