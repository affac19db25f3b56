package main

// The lab: three network namespaces joined by two veth pairs, and the
// processes started in them.
//
//	<prefix><pid>-gen          <prefix><pid>-dut                   <prefix><pid>-sink
//	gen0 02:00:00:00:00:fe ── down0 02:00:00:00:00:01    up0 ── sink0
//	                           198.18.0.1/15
//	down: ttgen send (ESP)     tunterm run | xskfwd                ttgen sink
//	up:   ttgen sink                                               ttgen send (802.1Q)
//
// Every process is started with `ip netns exec` in its own process group
// (so that a signal reaches all of it) and with PDEATHSIG=SIGKILL (so that
// it dies with the harness, however the harness dies). XDP programs are all
// attached through bpf_link by those processes, so they go away with them;
// Close checks that none is left and deletes the namespaces. Namespaces of
// harnesses that died without cleaning up are swept at the next start.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Topology constants. Addresses stay in 198.18.0.0/15 (RFC 2544 benchmark
// space); the MACs are the ones ttgen's conventions use.
const (
	genIf    = "gen0"
	downIf   = "down0"
	upIf     = "up0"
	sinkIf   = "sink0"
	genMAC   = "02:00:00:00:00:fe" // = ttgen's AP-side source MAC and the config's gateway_mac
	downMAC  = "02:00:00:00:00:01"
	upMAC    = "02:00:00:00:01:01"
	sinkMAC  = "02:00:00:00:01:02"
	dutAddr  = "198.18.0.1/15"
	labMTU   = 1600 // fits the largest frame ttgen builds (IMIX 1500-byte inner frames in ESP: ~1610 bytes)
	nsSuffix = "-gen -dut -sink"
)

// Lab is a running topology and the processes started in it.
//
// Concurrency: Start and Close may be called from any goroutine; a proc's
// methods from any goroutine.
type Lab struct {
	prefix         string // e.g. tt-bl-1234-
	gen, dut, sink string // namespace names
	queues         int
	dutNL          *netlink.Handle // netlink socket in the dut namespace (interface counters)

	mu     sync.Mutex
	procs  []*proc
	closed bool
}

// sweepStale deletes namespaces named <prefix><pid>-* whose harness process
// no longer exists.
func sweepStale(prefix string) []string {
	var swept []string
	for _, name := range prefixedNamespaces(prefix, false) {
		if err := ipCmd("netns", "del", name); err == nil {
			swept = append(swept, name)
		}
	}
	return swept
}

func alive(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	return err == nil
}

// leftNamespaces lists namespaces with prefix that belong to this process or
// to a process that no longer exists: what a clean teardown leaves none of.
func leftNamespaces(prefix string) []string { return prefixedNamespaces(prefix, true) }

// prefixedNamespaces lists the namespaces named <prefix><pid>-* whose
// process no longer exists and, when mine is set, also those of this
// process and those whose name holds no pid.
func prefixedNamespaces(prefix string, mine bool) []string {
	var out []string
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(name, prefix), "-", 2)[0])
		if err != nil || pid == os.Getpid() {
			if mine {
				out = append(out, name)
			}
			continue
		}
		if !alive(pid) {
			out = append(out, name)
		}
	}
	return out
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// NewLab builds the topology: namespaces <prefix><pid>-{gen,dut,sink},
// IPv6 off in each (no ND/MLD noise on the measured links), two veth pairs
// with queues rx/tx queues each, fixed MACs, MTU labMTU, the tunnel address
// on down0. On error whatever was created is deleted again.
func NewLab(prefix string, queues int) (l *Lab, err error) {
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("iproute2's ip is needed: %w", err)
	}
	sweepStale(prefix)
	base := fmt.Sprintf("%s%d", prefix, os.Getpid())
	l = &Lab{prefix: base + "-", gen: base + "-gen", dut: base + "-dut", sink: base + "-sink", queues: queues}
	defer func() {
		if err != nil {
			l.Close()
			l = nil
		}
	}()
	for _, ns := range []string{l.gen, l.dut, l.sink} {
		if err := ipCmd("netns", "add", ns); err != nil {
			return nil, err
		}
		if err := ipCmd("-n", ns, "link", "set", "lo", "up"); err != nil {
			return nil, err
		}
		out, err := exec.Command("ip", "netns", "exec", ns, "sh", "-c",
			"echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("disable IPv6 in %s: %w: %s", ns, err, out)
		}
	}
	q := strconv.Itoa(queues)
	for _, v := range []struct{ a, ans, b, bns string }{{genIf, l.gen, downIf, l.dut}, {upIf, l.dut, sinkIf, l.sink}} {
		if err := ipCmd("link", "add", v.a, "numtxqueues", q, "numrxqueues", q, "netns", v.ans, "type", "veth",
			"peer", "name", v.b, "numtxqueues", q, "numrxqueues", q, "netns", v.bns); err != nil {
			return nil, err
		}
	}
	for _, x := range []struct{ ns, dev, mac string }{{l.gen, genIf, genMAC}, {l.dut, downIf, downMAC}, {l.dut, upIf, upMAC}, {l.sink, sinkIf, sinkMAC}} {
		if err := ipCmd("-n", x.ns, "link", "set", x.dev, "address", x.mac, "mtu", strconv.Itoa(labMTU), "up"); err != nil {
			return nil, err
		}
	}
	if err := ipCmd("-n", l.dut, "addr", "add", dutAddr, "dev", downIf); err != nil {
		return nil, err
	}
	h, err := netns.GetFromName(l.dut)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", l.dut, err)
	}
	defer h.Close()
	if l.dutNL, err = netlink.NewHandleAt(h); err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", l.dut, err)
	}
	return l, nil
}

// ifStat is an interface's packet counters.
type ifStat struct {
	Rx, RxDropped, Tx, TxDropped uint64
}

// dutStats reads the counters of a DUT interface. On veth, rx counts every
// frame the peer delivered and rx_dropped those the XDP program could not
// hand to an AF_XDP socket (its rings full): the NIC-level drops.
func (l *Lab) dutStats(dev string) (ifStat, error) {
	lk, err := l.dutNL.LinkByName(dev)
	if err != nil {
		return ifStat{}, err
	}
	st := lk.Attrs().Statistics
	if st == nil {
		return ifStat{}, fmt.Errorf("%s: no statistics", dev)
	}
	return ifStat{st.RxPackets, st.RxDropped, st.TxPackets, st.TxDropped}, nil
}

// Namespaces returns the lab's namespace names.
func (l *Lab) Namespaces() []string { return []string{l.gen, l.dut, l.sink} }

// XDPAttached lists "ns/dev" of the lab's interfaces that have an XDP
// program attached.
func (l *Lab) XDPAttached() []string {
	var on []string
	for _, x := range []struct{ ns, dev string }{{l.gen, genIf}, {l.dut, downIf}, {l.dut, upIf}, {l.sink, sinkIf}} {
		out, err := exec.Command("ip", "-n", x.ns, "link", "show", "dev", x.dev).CombinedOutput()
		if err == nil && strings.Contains(string(out), "prog/xdp") {
			on = append(on, x.ns+"/"+x.dev)
		}
	}
	return on
}

// waitNoXDP waits up to timeout for every XDP program to be gone (a
// bpf_link is released when its process's files are, a moment after exit).
func (l *Lab) waitNoXDP(timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		on := l.XDPAttached()
		if len(on) == 0 || time.Now().After(deadline) {
			return on
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close stops every process still running (SIGTERM to its group, SIGKILL
// after 3 s), checks that no XDP program is left, and deletes the
// namespaces. It is idempotent and reports what it could not clean.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs := l.procs
	l.mu.Unlock()
	var errs []error
	for _, p := range procs {
		p.stop(syscall.SIGTERM, 3*time.Second)
	}
	if on := l.waitNoXDP(2 * time.Second); len(on) > 0 {
		errs = append(errs, fmt.Errorf("XDP still attached at teardown: %s (deleting the namespaces removes it)", strings.Join(on, " ")))
	}
	if l.dutNL != nil {
		l.dutNL.Close()
	}
	for _, ns := range []string{l.gen, l.dut, l.sink} {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err != nil {
			continue
		}
		if err := ipCmd("netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// line is one line of a process's output and when the harness read it.
type line struct {
	t time.Time
	s string
}

// proc is a process started in a namespace.
type proc struct {
	name string
	cmd  *exec.Cmd
	pgid int
	done chan struct{} // closed when the process has exited and its output is read

	mu      sync.Mutex
	stdout  []line
	stderr  []line
	waitErr error
	hook    func(stderr bool, l line) // called for every line, in the reader goroutine
}

// Start runs bin with args in namespace ns, pinned to cpu with taskset when
// cpu >= 0, in its own process group. hook, if set, sees every output line
// as it is read.
func (l *Lab) Start(name, ns string, cpu int, hook func(stderr bool, l line), bin string, args ...string) (*proc, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("lab is closed")
	}
	argv := []string{"netns", "exec", ns}
	if cpu >= 0 {
		argv = append(argv, "taskset", "-c", strconv.Itoa(cpu))
	}
	argv = append(argv, bin)
	argv = append(argv, args...)
	cmd := exec.Command("ip", argv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), hook: hook}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.pgid = cmd.Process.Pid
	live := l.procs[:0] // forget the ones that ended
	for _, q := range l.procs {
		if !q.Exited() {
			live = append(live, q)
		}
	}
	l.procs = append(live, p)
	var wg sync.WaitGroup
	wg.Add(2)
	go p.read(stdout, false, &wg)
	go p.read(stderr, true, &wg)
	go func() {
		wg.Wait()
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) read(r io.Reader, isErr bool, wg *sync.WaitGroup) {
	defer wg.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		ln := line{time.Now(), sc.Text()}
		p.mu.Lock()
		if isErr {
			p.stderr = append(p.stderr, ln)
		} else {
			p.stdout = append(p.stdout, ln)
		}
		hook := p.hook
		p.mu.Unlock()
		if hook != nil {
			hook(isErr, ln)
		}
	}
}

// Pid is the process's pid (= its process group).
func (p *proc) Pid() int { return p.pgid }

// Exited reports whether the process has ended.
func (p *proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Lines returns a copy of the output read so far.
func (p *proc) Lines(stderr bool) []line {
	p.mu.Lock()
	defer p.mu.Unlock()
	if stderr {
		return append([]line(nil), p.stderr...)
	}
	return append([]line(nil), p.stdout...)
}

// Tail returns the last n lines of stderr and stdout, for error messages.
func (p *proc) Tail(n int) string {
	var b strings.Builder
	for _, s := range []bool{true, false} {
		ls := p.Lines(s)
		if len(ls) > n {
			ls = ls[len(ls)-n:]
		}
		for _, l := range ls {
			b.WriteString("\n    " + l.s)
		}
	}
	return b.String()
}

// Err returns how the process ended (nil while it runs or if it exited 0).
func (p *proc) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// Wait waits for the process to end, at most until ctx is done.
func (p *proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop sends sig to the process group and waits up to grace for the
// process to end; then it kills the group. It returns once the process is
// gone. Stopping a process that has ended does nothing.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) {
	if p.Exited() {
		return
	}
	syscall.Kill(-p.pgid, sig)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	syscall.Kill(-p.pgid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// waitLine waits until a stderr or stdout line containing want has been read,
// the process ended, ctx is done or timeout passed.
func (p *proc) waitLine(ctx context.Context, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		for _, s := range []bool{true, false} {
			for _, l := range p.Lines(s) {
				if strings.Contains(l.s, want) {
					return nil
				}
			}
		}
		if p.Exited() {
			return fmt.Errorf("%s exited (%v) before saying %q:%s", p.name, p.Err(), want, p.Tail(8))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not say %q within %v:%s", p.name, want, timeout, p.Tail(8))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
