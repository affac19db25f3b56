package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure a lab run.
type Options struct {
	Duration time.Duration // 0: until ctx is done
	Rate     int           // frames per second each way
	Size     string        // inner frame size
	Method   string        // ttgen send method
	Tunnels  int
	MACs     int
	Workers  int    // tunterm workers (0: the config's default, auto; see DefaultWorkers)
	Bin      string // directory of tunterm and ttgen
	Build    bool   // go build them into Bin first
	Prefix   string // namespace prefix
	Dir      string // work directory (config, logs)
	Out      io.Writer
}

// DefaultWorkers is the lab's tunterm worker count. The veths have one
// queue, so with workers: auto on a small VM every extra worker owns no
// queue and only takes hand-offs; when it is descheduled for a few tens of
// milliseconds (other load on the machine, e.g. a parallel go test) its
// 1024-entry hand-off ring overflows and tunterm drops frames as
// handoff_full. One worker keeps the demo honest about "no drops"; pass
// --workers 0 to see the multi-worker path.
const DefaultWorkers = 1

// Lab topology constants.
const (
	apMAC   = "02:00:00:00:00:fe" // = ttgen's source MAC and the config's gateway_mac
	dutMAC  = "02:00:00:00:00:01"
	apAddr  = "198.18.0.2/15"
	dutAddr = "198.18.0.1/15"
	// downMTU fits the largest outer frame ttgen builds (IMIX's 1500-byte
	// inner frames become ~1590-byte ESP packets).
	downMTU = 1600
)

// Summary is what a lab run saw.
type Summary struct {
	Seconds float64 // of two-way traffic
	// Frames sent by ttgen: learning frames, then each way.
	LearnSent, DownSent, UpSent uint64
	// Frames counted by the sinks: corporate side, AP side.
	CorpReceived, APReceived uint64
	// tunterm's final totals.
	RxDown, TxUp, RxUp, TxDown uint64
	HaveFinal                  bool
	// Drops and punts by "direction/reason", summed over counters lines.
	NotForwarded map[string]uint64
	// Teardown.
	LeftXDP    []string // "ns/dev" with an XDP program still attached
	LeftNS     []string // namespaces that could not be deleted
	StopErrors []string
}

// OK reports whether traffic flowed both ways, every frame arrived and
// teardown was clean.
func (s *Summary) OK() bool { return len(s.problems()) == 0 }

// Problems describes what is not OK.
func (s *Summary) Problems() string { return strings.Join(s.problems(), "; ") }

func (s *Summary) problems() []string {
	var p []string
	if s.DownSent == 0 || s.UpSent == 0 {
		p = append(p, fmt.Sprintf("no traffic (sent %d down, %d up)", s.DownSent, s.UpSent))
	}
	if !s.HaveFinal {
		p = append(p, "no final counters from tunterm")
	} else {
		if s.RxDown != s.TxUp {
			p = append(p, fmt.Sprintf("tunterm received %d frames from the APs and forwarded %d", s.RxDown, s.TxUp))
		}
		if s.RxUp != s.TxDown {
			p = append(p, fmt.Sprintf("tunterm received %d frames from the trunk and sent %d to the APs", s.RxUp, s.TxDown))
		}
		if want := s.LearnSent + s.DownSent; s.RxDown != want {
			p = append(p, fmt.Sprintf("tunterm received %d of the %d frames the APs sent", s.RxDown, want))
		}
		if s.RxUp != s.UpSent {
			p = append(p, fmt.Sprintf("tunterm received %d of the %d frames the trunk sent", s.RxUp, s.UpSent))
		}
	}
	if want := s.LearnSent + s.DownSent; s.CorpReceived != want {
		p = append(p, fmt.Sprintf("corporate sink received %d of %d frames", s.CorpReceived, want))
	}
	if s.APReceived != s.UpSent {
		p = append(p, fmt.Sprintf("AP sink received %d of %d frames", s.APReceived, s.UpSent))
	}
	if len(s.NotForwarded) > 0 {
		p = append(p, "tunterm did not forward: "+fmtDrops(s.NotForwarded))
	}
	if len(s.LeftXDP) > 0 {
		p = append(p, "XDP still attached: "+strings.Join(s.LeftXDP, " "))
	}
	if len(s.LeftNS) > 0 {
		p = append(p, "namespaces left: "+strings.Join(s.LeftNS, " "))
	}
	p = append(p, s.StopErrors...)
	return p
}

func fmtDrops(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for i, k := range ks {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s=%d", k, m[k])
	}
	return b.String()
}

// lab is one run's state.
type lab struct {
	o                   Options
	root                string
	tunterm, ttgen, cfg string
	nsAP, nsDUT, nsCorp string
	procs               []*proc
	log                 io.Writer
	tuntermLog          string
	logOff              int64
	last                map[string]string // latest tunterm counters line
	sum                 Summary
	sinkCorp, sinkAP    *proc
	sendDown, sendUp    *proc
	nsCreated           bool
}

// Run builds (optionally) and runs the lab until ctx is done or
// o.Duration has passed, then tears everything down. The error is for a
// lab that could not be set up or torn down; how the traffic went is in
// the Summary.
func Run(ctx context.Context, o Options) (*Summary, error) {
	if o.Rate <= 0 {
		o.Rate = 20000
	}
	if o.Size == "" {
		o.Size = "512"
	}
	if o.Method == "" {
		o.Method = "afpacket"
	}
	if o.Tunnels == 0 {
		o.Tunnels = 20
	}
	if o.MACs == 0 {
		o.MACs = 3
	}
	if o.Workers < 0 {
		o.Workers = 0
	}
	if o.Prefix == "" {
		o.Prefix = "tt-lab-"
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the lab needs root (network namespaces, XDP, AF_XDP)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, errors.New("the lab needs iproute2's ip command")
	}
	l := &lab{o: o, log: o.Out, nsAP: o.Prefix + "ap", nsDUT: o.Prefix + "dut", nsCorp: o.Prefix + "corp"}
	l.sum.NotForwarded = map[string]uint64{}
	var err error
	if l.root, err = repoRoot(); err != nil {
		return nil, err
	}
	bin := o.Bin
	if bin == "" {
		bin = "bin"
	}
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(l.root, bin)
	}
	if o.Dir == "" {
		o.Dir = filepath.Join(bin, "lab")
	}
	l.o.Dir = o.Dir
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	l.tunterm, l.ttgen = filepath.Join(bin, "tunterm"), filepath.Join(bin, "ttgen")
	l.cfg, l.tuntermLog = filepath.Join(o.Dir, "tunterm.yaml"), filepath.Join(o.Dir, "tunterm.log")
	if o.Build {
		for _, b := range []struct{ out, pkg string }{{l.tunterm, "./cmd/tunterm"}, {l.ttgen, "./cmd/ttgen"}} {
			l.say("building %s", b.out)
			cmd := exec.Command(goBinary(), "build", "-o", b.out, b.pkg)
			cmd.Dir = l.root
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
			}
		}
	}
	setupErr := l.setup(ctx)
	if setupErr == nil {
		l.traffic(ctx)
	}
	l.teardown()
	if setupErr != nil {
		return &l.sum, setupErr
	}
	l.report()
	if len(l.sum.LeftXDP) > 0 || len(l.sum.LeftNS) > 0 {
		return &l.sum, fmt.Errorf("teardown incomplete: %s", l.sum.Problems())
	}
	return &l.sum, nil
}

func (l *lab) say(format string, a ...any) { fmt.Fprintf(l.log, "lab: "+format+"\n", a...) }

// repoRoot finds the directory of tunterm's go.mod from the working
// directory up.
func repoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/tunterm/tunterm\n")) {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", errors.New("run the lab from inside the tunterm repository (no go.mod of github.com/tunterm/tunterm above here)")
		}
		d = p
	}
}

// goBinary is the go command that built us when it is still there (go
// test and go run may not have it on PATH), else go from PATH.
func goBinary() string {
	if r := runtime.GOROOT(); r != "" {
		if p := filepath.Join(r, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (l *lab) namespaces() []string { return []string{l.nsAP, l.nsDUT, l.nsCorp} }

// setup creates the namespaces and links, writes the config and starts
// tunterm, the sinks and the learning run.
func (l *lab) setup(ctx context.Context) error {
	// Leftovers of a run that was killed: our prefix, our namespaces.
	for _, ns := range l.namespaces() {
		if nsExists(ns) {
			l.say("removing namespace %s left by an earlier run (and the processes still in it)", ns)
			killIn(ns)
			_ = run("ip", "netns", "del", ns)
		}
	}
	l.nsCreated = true
	l.say("creating namespaces %s, %s, %s", l.nsAP, l.nsDUT, l.nsCorp)
	steps := [][]string{}
	for _, ns := range l.namespaces() {
		steps = append(steps, []string{"netns", "add", ns})
	}
	for _, ns := range l.namespaces() {
		// No IPv6: router solicitations, MLD and DAD would be untagged
		// noise on the trunk (counted as vlan_not_allowed).
		steps = append(steps,
			[]string{"netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"},
			[]string{"-n", ns, "link", "set", "lo", "up"})
	}
	steps = append(steps,
		[]string{"link", "add", "ap0", "netns", l.nsAP, "type", "veth", "peer", "name", "down0", "netns", l.nsDUT},
		[]string{"link", "add", "up0", "netns", l.nsDUT, "type", "veth", "peer", "name", "corp0", "netns", l.nsCorp},
		[]string{"-n", l.nsAP, "link", "set", "ap0", "address", apMAC, "mtu", strconv.Itoa(downMTU), "up"},
		[]string{"-n", l.nsDUT, "link", "set", "down0", "address", dutMAC, "mtu", strconv.Itoa(downMTU), "up"},
		[]string{"-n", l.nsDUT, "link", "set", "up0", "up"},
		[]string{"-n", l.nsCorp, "link", "set", "corp0", "up"},
		[]string{"-n", l.nsAP, "addr", "add", apAddr, "dev", "ap0"},
		[]string{"-n", l.nsDUT, "addr", "add", dutAddr, "dev", "down0"},
	)
	for _, s := range steps {
		if err := run("ip", s...); err != nil {
			return err
		}
	}
	cfgArgs := []string{"config", "--tunnels", strconv.Itoa(l.o.Tunnels), "--macs", strconv.Itoa(l.o.MACs),
		"--down-if", "down0", "--up-if", "up0", "--address", dutAddr, "--out", l.cfg}
	if l.o.Workers > 0 {
		cfgArgs = append(cfgArgs, "--workers", strconv.Itoa(l.o.Workers))
	}
	l.say("ttgen %s", strings.Join(cfgArgs, " "))
	if err := run(l.ttgen, cfgArgs...); err != nil {
		return err
	}

	l.say("starting tunterm in %s (log: %s)", l.nsDUT, l.tuntermLog)
	lf, err := os.Create(l.tuntermLog)
	if err != nil {
		return err
	}
	tt, err := l.start("tunterm", l.nsDUT, lf, nil, l.tunterm, "run", "--config", l.cfg, "--stats", "2s")
	lf.Close()
	if err != nil {
		return err
	}
	if err := l.waitLog(ctx, tt, "dataplane running", 20*time.Second); err != nil {
		return err
	}
	if line := l.findLog("XDP programs attached"); line != "" {
		l.say("tunterm: %s", kv(line, "downstream", "downstream_mode", "upstream", "upstream_mode"))
	}
	if line := l.findLog("dataplane running"); line != "" {
		l.say("tunterm: %s", kv(line, "driver", "workers"))
	}

	for _, s := range []struct {
		name, ns, dev string
		dst           **proc
	}{{"sink corp0", l.nsCorp, "corp0", &l.sinkCorp}, {"sink ap0", l.nsAP, "ap0", &l.sinkAP}} {
		p, err := l.start(s.name, s.ns, nil, newJSONLines(), l.ttgen, "sink", "--iface", s.dev, "--duration", "0", "--json")
		if err != nil {
			return err
		}
		*s.dst = p
	}
	for _, p := range []*proc{l.sinkCorp, l.sinkAP} {
		if err := p.waitStderr(ctx, "counting", 10*time.Second); err != nil {
			return err
		}
	}
	l.say("sinks attached: ttgen sink on corp0 (corporate side) and ap0 (AP side) count and drop what tunterm sends")

	learn := []string{"send", "--config", l.cfg, "--iface", "ap0", "--learn", "--dst-mac", dutMAC, "--method", l.o.Method, "--json"}
	l.say("ttgen %s", strings.Join(learn, " "))
	p, err := l.start("learn", l.nsAP, nil, newJSONLines(), append([]string{l.ttgen}, learn...)...)
	if err != nil {
		return err
	}
	if err := p.wait(30 * time.Second); err != nil {
		return fmt.Errorf("ttgen send --learn: %w\n%s", err, p.stderr.String())
	}
	l.sum.LearnSent = p.json.final("sent")
	l.say("learning: %d frames, one per client MAC (%d APs x %d)", l.sum.LearnSent, l.o.Tunnels, l.o.MACs)
	time.Sleep(200 * time.Millisecond)
	return nil
}

// traffic runs both senders and prints progress until ctx is done or the
// duration has passed.
func (l *lab) traffic(ctx context.Context) {
	common := []string{"--config", l.cfg, "--size", l.o.Size, "--rate", strconv.Itoa(l.o.Rate), "--duration", "0",
		"--method", l.o.Method, "--json"}
	down := append([]string{"send", "--dir", "down", "--iface", "ap0", "--dst-mac", dutMAC}, common...)
	up := append([]string{"send", "--dir", "up", "--iface", "corp0"}, common...)
	l.say("AP -> corporate: ttgen %s", strings.Join(down, " "))
	l.say("corporate -> AP: ttgen %s", strings.Join(up, " "))
	var err error
	if l.sendDown, err = l.start("send down", l.nsAP, nil, newJSONLines(), append([]string{l.ttgen}, down...)...); err != nil {
		l.sum.StopErrors = append(l.sum.StopErrors, err.Error())
		return
	}
	if l.sendUp, err = l.start("send up", l.nsCorp, nil, newJSONLines(), append([]string{l.ttgen}, up...)...); err != nil {
		l.sum.StopErrors = append(l.sum.StopErrors, err.Error())
		return
	}
	start := time.Now()
	var deadline <-chan time.Time
	if l.o.Duration > 0 {
		deadline = time.After(l.o.Duration)
		l.say("running for %v (%d pps each way, %s-byte inner frames)", l.o.Duration, l.o.Rate, l.o.Size)
	} else {
		l.say("running until Ctrl-C (%d pps each way, %s-byte inner frames)", l.o.Rate, l.o.Size)
	}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(l.log)
			l.say("interrupted: tearing down")
			l.sum.Seconds = time.Since(start).Seconds()
			return
		case <-deadline:
			l.say("%v passed: tearing down", l.o.Duration)
			l.sum.Seconds = time.Since(start).Seconds()
			return
		case now := <-tick.C:
			l.progress(now.Sub(start))
			for _, p := range []*proc{l.sendDown, l.sendUp, l.sinkCorp, l.sinkAP} {
				if p.exited() {
					l.say("%s exited early: %v\n%s", p.name, p.err, p.stderr.String())
					l.sum.StopErrors = append(l.sum.StopErrors, p.name+" exited early")
					l.sum.Seconds = time.Since(start).Seconds()
					return
				}
			}
		}
	}
}

// progress prints tunterm's latest counters and the sinks' rates.
func (l *lab) progress(el time.Duration) {
	for _, line := range l.newLogLines() {
		if strings.Contains(line, "msg=counters") {
			l.last = parseKV(line)
			for _, f := range strings.Fields(l.last["not_forwarded"]) {
				if k, v, ok := strings.Cut(f, "="); ok {
					n, _ := strconv.ParseUint(v, 10, 64)
					l.sum.NotForwarded[k] += n
				}
			}
		}
	}
	t := l.last
	drops := "none"
	if t["not_forwarded"] != "" {
		drops = t["not_forwarded"]
	}
	fmt.Fprintf(l.log, "[%3.0fs] tunterm   AP->corp  rx_down %6s pps  tx_up %6s pps (%s Mb/s) | corp->AP  rx_up %6s pps  tx_down %6s pps | FDB entries learned %s | not forwarded: %s\n",
		el.Seconds(), or(t["rx_down_pps"]), or(t["tx_up_pps"]), or(t["tx_up_mbps"]), or(t["rx_up_pps"]), or(t["tx_down_pps"]),
		or(t["macs_learned"]), drops)
	fmt.Fprintf(l.log, "       sinks     corporate side (corp0) %6.0f pps | AP side (ap0) %6.0f pps\n",
		l.sinkCorp.json.last("interval_pps"), l.sinkAP.json.last("interval_pps"))
}

func or(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// teardown stops everything (senders first, so that what is in flight
// arrives), checks that no XDP program is left and deletes the
// namespaces.
func (l *lab) teardown() {
	stop := func(p *proc, sig syscall.Signal) {
		if p == nil {
			return
		}
		if err := p.stop(sig, 10*time.Second); err != nil {
			l.sum.StopErrors = append(l.sum.StopErrors, fmt.Sprintf("stopping %s: %v", p.name, err))
		}
	}
	stop(l.sendDown, syscall.SIGINT)
	stop(l.sendUp, syscall.SIGINT)
	if l.sendDown != nil {
		l.sum.DownSent = l.sendDown.json.final("sent")
	}
	if l.sendUp != nil {
		l.sum.UpSent = l.sendUp.json.final("sent")
	}
	time.Sleep(500 * time.Millisecond) // let tunterm drain its rings
	stop(l.sinkCorp, syscall.SIGINT)
	stop(l.sinkAP, syscall.SIGINT)
	if l.sinkCorp != nil {
		l.sum.CorpReceived = l.sinkCorp.json.final("received")
	}
	if l.sinkAP != nil {
		l.sum.APReceived = l.sinkAP.json.final("received")
	}
	// Every other process (tunterm, a learning run cut short).
	for _, p := range l.procs {
		stop(p, syscall.SIGTERM)
	}
	for _, line := range l.newLogLines() {
		if strings.Contains(line, "msg=counters") {
			for _, f := range strings.Fields(parseKV(line)["not_forwarded"]) {
				if k, v, ok := strings.Cut(f, "="); ok {
					n, _ := strconv.ParseUint(v, 10, 64)
					l.sum.NotForwarded[k] += n
				}
			}
		}
		if strings.Contains(line, `msg="final counters"`) {
			m := parseKV(line)
			u := func(k string) uint64 { v, _ := strconv.ParseUint(m[k], 10, 64); return v }
			l.sum.RxDown, l.sum.TxUp, l.sum.RxUp, l.sum.TxDown = u("rx_down"), u("tx_up"), u("rx_up"), u("tx_down")
			l.sum.HaveFinal = true
		}
	}
	if !l.nsCreated {
		return
	}
	for _, ns := range l.namespaces() {
		if !nsExists(ns) {
			continue
		}
		out, err := exec.Command("ip", "-n", ns, "-d", "link", "show").CombinedOutput()
		if err != nil {
			continue
		}
		l.sum.LeftXDP = append(l.sum.LeftXDP, xdpAttached(ns, string(out))...)
	}
	for _, ns := range l.namespaces() {
		if nsExists(ns) {
			if err := run("ip", "netns", "del", ns); err != nil {
				l.sum.LeftNS = append(l.sum.LeftNS, ns)
			}
		}
	}
	for _, ns := range l.namespaces() {
		if nsExists(ns) && !contains(l.sum.LeftNS, ns) {
			l.sum.LeftNS = append(l.sum.LeftNS, ns)
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

var (
	linkRE = regexp.MustCompile(`^\d+: ([^:@]+)`)
	xdpRE  = regexp.MustCompile(`\bxdp(generic|drv|offload)?\b|prog/xdp`)
)

// xdpAttached returns "ns/dev" for every link of `ip -d link show` output
// with an XDP program.
func xdpAttached(ns, out string) []string {
	var found []string
	dev := ""
	for _, line := range strings.Split(out, "\n") {
		if m := linkRE.FindStringSubmatch(line); m != nil {
			dev = m[1]
		}
		if xdpRE.MatchString(line) {
			if k := ns + "/" + dev; !contains(found, k) {
				found = append(found, k)
			}
		}
	}
	return found
}

// killIn stops the processes inside namespace ns (a lab that was killed
// leaves its tunterm and ttgen running there): SIGTERM, then SIGKILL.
func killIn(ns string) {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	for range 50 {
		alive := 0
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil {
				alive++
			}
		}
		if alive == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func nsExists(ns string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", ns))
	return err == nil
}

// report prints the final summary.
func (l *lab) report() {
	s := &l.sum
	loss := func(sent, got uint64) string {
		if sent == 0 {
			return "-"
		}
		return fmt.Sprintf("%.3f%%", 100*(float64(sent)-float64(got))/float64(sent))
	}
	fmt.Fprintf(l.log, "\n== summary: %.1f s of traffic, %d pps each way, %s-byte inner frames, ttgen --method %s, %d APs x %d clients ==\n",
		s.Seconds, l.o.Rate, l.o.Size, l.o.Method, l.o.Tunnels, l.o.MACs)
	fmt.Fprintf(l.log, "AP -> corporate:  ttgen sent %d ESP frames (+%d learning); tunterm received %d, forwarded %d; corporate sink got %d (loss %s)\n",
		s.DownSent, s.LearnSent, s.RxDown, s.TxUp, s.CorpReceived, loss(s.DownSent+s.LearnSent, s.CorpReceived))
	fmt.Fprintf(l.log, "corporate -> AP:  ttgen sent %d 802.1Q frames; tunterm received %d, encrypted and sent %d; AP sink got %d (loss %s)\n",
		s.UpSent, s.RxUp, s.TxDown, s.APReceived, loss(s.UpSent, s.APReceived))
	fmt.Fprintf(l.log, "tunterm not forwarded: %s (by reason, from its counters lines: the last partial interval is not logged)\n", fmtDrops(s.NotForwarded))
	td := "processes stopped, no XDP program left attached, namespaces deleted"
	if len(s.LeftXDP) > 0 || len(s.LeftNS) > 0 || len(s.StopErrors) > 0 {
		td = "INCOMPLETE"
	}
	fmt.Fprintf(l.log, "teardown: %s\n", td)
	if s.OK() {
		fmt.Fprintln(l.log, "RESULT: ok — traffic flowed both ways, nothing dropped")
	} else {
		fmt.Fprintf(l.log, "RESULT: FAIL — %s\n", s.Problems())
	}
	fmt.Fprintf(l.log, "(config and tunterm log kept in %s)\n", l.o.Dir)
}

// --- tunterm's log --------------------------------------------------------------

func (l *lab) newLogLines() []string {
	f, err := os.Open(l.tuntermLog)
	if err != nil {
		return nil
	}
	defer f.Close()
	if _, err := f.Seek(l.logOff, io.SeekStart); err != nil {
		return nil
	}
	b, _ := io.ReadAll(f)
	i := bytes.LastIndexByte(b, '\n')
	if i < 0 {
		return nil
	}
	l.logOff += int64(i + 1)
	return strings.Split(string(b[:i]), "\n")
}

func (l *lab) findLog(msg string) string {
	b, _ := os.ReadFile(l.tuntermLog)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, msg) {
			return line
		}
	}
	return ""
}

func (l *lab) waitLog(ctx context.Context, p *proc, msg string, d time.Duration) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if l.findLog(msg) != "" {
			return nil
		}
		if p.exited() {
			b, _ := os.ReadFile(l.tuntermLog)
			return fmt.Errorf("%s exited before %q: %v\n%s", p.name, msg, p.err, b)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(l.tuntermLog)
	return fmt.Errorf("%s did not log %q within %v\n%s", p.name, msg, d, b)
}

var kvRE = regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S*)`)

// parseKV parses a log/slog text line into its key=value pairs.
func parseKV(line string) map[string]string {
	m := map[string]string{}
	for _, s := range kvRE.FindAllStringSubmatch(line, -1) {
		v := s[2]
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		}
		m[s[1]] = v
	}
	return m
}

func kv(line string, keys ...string) string {
	m := parseKV(line)
	var b []string
	for _, k := range keys {
		b = append(b, k+"="+m[k])
	}
	return strings.Join(b, " ")
}

// --- processes ------------------------------------------------------------------

// proc is a child process in its own process group, run in a namespace.
type proc struct {
	name   string
	cmd    *exec.Cmd
	done   chan struct{}
	err    error
	json   *jsonLines
	stderr *syncBuf
}

// start runs argv in namespace ns (ip netns exec) in a new process group.
// Output goes to out, or is parsed as JSON lines into js.
func (l *lab) start(name, ns string, out io.Writer, js *jsonLines, argv ...string) (*proc, error) {
	p := &proc{name: name, done: make(chan struct{}), json: js, stderr: &syncBuf{}}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Stderr = p.stderr
	if out != nil {
		p.cmd.Stdout, p.cmd.Stderr = out, out
	}
	var pipe io.ReadCloser
	if js != nil {
		var err error
		if pipe, err = p.cmd.StdoutPipe(); err != nil {
			return nil, err
		}
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	l.procs = append(l.procs, p)
	var readers sync.WaitGroup
	if js != nil {
		readers.Add(1)
		go func() {
			defer readers.Done()
			js.read(pipe)
		}()
	}
	go func() {
		readers.Wait() // stdout is drained before Wait closes it
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not finish within %v", p.name, d)
	}
}

// stop signals the process group and waits; after d it kills the group.
func (p *proc) stop(sig syscall.Signal, d time.Duration) error {
	if p.exited() {
		return nil
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
		var ee *exec.ExitError
		if p.err != nil && !errors.As(p.err, &ee) {
			return p.err
		}
		if ee != nil && ee.ExitCode() != 0 {
			return fmt.Errorf("exit status %d: %s", ee.ExitCode(), lastLine(p.stderr.String()))
		}
		return nil
	case <-time.After(d):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("did not stop within %v after %v; killed", d, sig)
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func (p *proc) waitStderr(ctx context.Context, s string, d time.Duration) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if strings.Contains(p.stderr.String(), s) {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.stderr.String())
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s: no %q within %v\n%s", p.name, s, d, p.stderr.String())
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// jsonLines keeps the last progress object and the final object a ttgen
// command printed.
type jsonLines struct {
	mu        sync.Mutex
	prog, fin map[string]float64
}

func newJSONLines() *jsonLines { return &jsonLines{} }

func (j *jsonLines) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var m map[string]float64
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		j.mu.Lock()
		if _, ok := m["interval_pps"]; ok {
			j.prog = m
		} else {
			j.fin = m
		}
		j.mu.Unlock()
	}
}

func (j *jsonLines) last(k string) float64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.prog[k]
}

func (j *jsonLines) final(k string) uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return uint64(j.fin[k])
}
