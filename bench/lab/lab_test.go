package main

// The CI smoke test of `make run`: the whole lab for a few seconds, as root,
// asserting that traffic flowed both ways through tunterm with nothing
// dropped and that teardown left no namespace, process or XDP program.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// needLab skips, loudly, when this machine cannot run the lab at all.
func needLab(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIPPING LAB TEST: -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING LAB TEST: needs root (network namespaces, XDP, AF_XDP); CI runs it as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("SKIPPING LAB TEST: no iproute2 `ip` (apt-get install iproute2)")
	}
	ns := fmt.Sprintf("tt-labprobe-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("SKIPPING LAB TEST: cannot create a network namespace: %v %s", err, out)
	}
	exec.Command("ip", "netns", "del", ns).Run()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2), asm.Return()}})
	if err != nil {
		t.Skipf("SKIPPING LAB TEST: cannot load an XDP program: %v", err)
	}
	p.Close()
}

// logWriter copies the lab's output into the test log, line by line.
type logWriter struct {
	t   *testing.T
	mu  sync.Mutex
	buf bytes.Buffer
	all bytes.Buffer
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all.Write(p)
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			return len(p), nil
		}
		w.t.Log(string(w.buf.Next(i + 1)[:i]))
	}
}

func TestLab(t *testing.T) {
	needLab(t)
	const prefix = "tt-labtest-"
	out := &logWriter{t: t}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := t.TempDir()
	sum, err := Run(ctx, Options{Duration: 8 * time.Second, Rate: 20000, Size: "512", Method: "afpacket",
		Workers: DefaultWorkers, Bin: bin, Build: true, Prefix: prefix, Dir: t.TempDir(), Out: out})
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	// The senders are paced at 20000 pps; on a loaded CI machine they may
	// fall behind, which is not what this test is about.
	if sum.DownSent < 20000 || sum.UpSent < 20000 {
		t.Errorf("sent %d frames AP -> corporate and %d corporate -> AP in 8 s at 20000 pps, want > 20000 each", sum.DownSent, sum.UpSent)
	}
	if !sum.OK() {
		t.Errorf("lab summary: %s", sum.Problems())
	}
	if !strings.Contains(out.all.String(), "RESULT: ok") {
		t.Error("the lab did not print RESULT: ok")
	}
	if !strings.Contains(out.all.String(), "[  2s] tunterm") {
		t.Error("the lab printed no progress line")
	}
	// Teardown, checked independently of the lab's own checks.
	ls, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(ls), prefix) {
		t.Errorf("namespaces left after teardown:\n%s", ls)
	}
	ps, _ := exec.Command("pgrep", "-af", bin).CombinedOutput()
	if s := strings.TrimSpace(string(ps)); s != "" {
		t.Errorf("processes left after teardown:\n%s", s)
	}
}

func TestXDPAttached(t *testing.T) {
	out := `1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00 promiscuity 0 allmulti 0 minmtu 0 maxmtu 0
2: down0@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1600 xdp qdisc noqueue state UP mode DEFAULT group default qlen 1000
    link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff link-netns tt-lab-ap promiscuity 0 allmulti 0 minmtu 68 maxmtu 65535
    veth
    prog/xdp id 77 name xdp_downstream tag 0123456789abcdef jited
3: up0@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 xdpgeneric qdisc noqueue state UP mode DEFAULT group default qlen 1000
4: corp1@if3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000
    link/ether 02:00:00:00:00:09 brd ff:ff:ff:ff:ff:ff link-netns tt-lab-dut promiscuity 0 allmulti 0 minmtu 68 maxmtu 65535
`
	got := strings.Join(xdpAttached("ns", out), " ")
	if want := "ns/down0 ns/up0"; got != want {
		t.Errorf("xdpAttached = %q, want %q", got, want)
	}
}

func TestParseKV(t *testing.T) {
	line := `time=2025-01-01T00:00:00Z level=INFO msg=counters rx_down_pps=20000 tx_up_mbps=81.9 not_forwarded="downstream/handoff_full=32 upstream/too_big=1"`
	m := parseKV(line)
	for k, want := range map[string]string{"msg": "counters", "rx_down_pps": "20000", "tx_up_mbps": "81.9",
		"not_forwarded": "downstream/handoff_full=32 upstream/too_big=1"} {
		if m[k] != want {
			t.Errorf("parseKV(...)[%q] = %q, want %q", k, m[k], want)
		}
	}
}
