package main

// One measurement: start the DUT (tunterm or the xskfwd ceiling) in the dut
// namespace, teach tunterm where the clients and the corporate host are,
// start the sink on the receiving side, offer load from the generator, and
// read the sink's per-second counts:
//
//	sink line:  0 ... first (traffic arrived) ... start = first+warm ... end = start+dur
//	rate      = (received[end] - received[start]) / (seconds[end] - seconds[start])
//	CPU/steal = /proc/stat read when line start and line end arrived
//
// Then the generator is stopped (SIGINT: it prints what it sent), the
// pipeline drains, the sink is stopped (it prints what it received in all),
// and the DUT is stopped (tunterm logs its counters lines, which give the
// drop reasons seen while traffic ran).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Bins are the programs the lab runs.
type Bins struct {
	Tunterm, Ttgen, Xskfwd string
}

// DUT kinds.
const (
	dutTunterm = "tunterm"
	dutXskfwd  = "xskfwd"
)

// mSpec says what to measure.
type mSpec struct {
	Role    string // "max", "ceiling", "loss", "ceiling-loss"
	DUT     string // dutTunterm | dutXskfwd
	Dir     string // down | up
	Size    string // 128 | 512 | 1400 | imix
	Config  string // tunterm configuration (also ttgen's frame source)
	Workers int
	Clients int   // tunnels x MACs: what tunterm must have learned
	CPUs    []int // DUT worker CPUs (xskfwd; tunterm reads them from Config)
	GenCPU  int
	RestCPU int     // the DUT's threads other than its workers (-1: not pinned)
	Repeat  int     // ttgen send --repeat when Rate is 0 (0: ttgen's default)
	Rate    float64 // frames/s offered, 0: as fast as the generator goes
	Method  string  // ttgen send --method
	Warm    int     // seconds of traffic before the window
	Dur     int     // seconds of window
	// QuietWait bounds how long to wait for other jobs on the VM to go
	// quiet before offering load; MaxForeign is what counts as quiet.
	QuietWait  time.Duration
	MaxForeign float64
}

// Measurement is the outcome of one try.
type Measurement struct {
	Role    string  `json:"role"`
	DUT     string  `json:"dut"`
	Try     int     `json:"try"`
	RatePPS float64 `json:"rate_pps"` // offered rate asked of the generator (0: as fast as possible)
	Method  string  `json:"method"`
	// PPS is the sink's rate over the window; SamplesPPS its per-second rates.
	PPS        float64   `json:"pps"`
	WindowS    float64   `json:"window_s"`
	SamplesPPS []float64 `json:"samples_pps"`
	// The generator's totals (whole run, warm-up included).
	Sent       uint64  `json:"sent"`
	GenSeconds float64 `json:"gen_seconds"`
	GenPPS     float64 `json:"gen_pps"`
	// Received is the sink's total over the whole run; RunLoss = 1 -
	// Received/Sent (warm-up and ramp-down included).
	Received uint64  `json:"received"`
	RunLoss  float64 `json:"run_loss"`
	// Over the window: the rate at which frames reached the DUT's ingress
	// interface, the frames it dropped there (AF_XDP rings full), the
	// frames its egress interface dropped, and WindowLoss = 1 - (frames at
	// the sink) / (frames at the DUT's ingress): the DUT's loss in steady
	// state.
	NICRxPPS     float64 `json:"nic_rx_pps"`
	NICRxDropped uint64  `json:"nic_rx_dropped"`
	NICTxDropped uint64  `json:"nic_tx_dropped"`
	WindowLoss   float64 `json:"window_loss"`
	CPU          CPUUse  `json:"cpu"`
	// QuietWaitS is how long the harness waited for the VM to be quiet.
	QuietWaitS float64 `json:"quiet_wait_s"`
	// DUTReadyS is how long the DUT took to start (config, tables, XDP, sockets).
	DUTReadyS float64 `json:"dut_ready_s"`
	// MACsLearned is tunterm's FDB size after the learning phase.
	MACsLearned int `json:"macs_learned,omitempty"`
	// DUTDrops are tunterm's not_forwarded counts ("dir/reason") summed over
	// the counters lines logged while traffic ran.
	DUTDrops map[string]uint64 `json:"dut_drops,omitempty"`
	// DUTCounters are the DUT's counters lines logged during the window.
	DUTCounters []string `json:"dut_counters,omitempty"`
	// WorkerWaitMS and WorkerPreempted are tunterm's worker_wait_us and
	// worker_preempted per second over those lines: how long its workers
	// waited for their CPUs while other tasks ran there, and how often
	// they were switched out (0 when the lines lack them).
	WorkerWaitMS    float64 `json:"dut_worker_wait_ms_per_s,omitempty"`
	WorkerPreempted float64 `json:"dut_worker_preempted_per_s,omitempty"`
	// UserNsPerFrame and SysNsPerFrame are the DUT process's CPU time in
	// the window (all threads: tunterm's worker and control plane, or
	// xskfwd) per frame the sink counted, in user mode and in the kernel
	// (its system calls, and the softirq work the kernel runs in its
	// context: AF_XDP copy-mode transmit, the veth, the sink's receive).
	// USER_HZ ticks, so ±1 % over a 5 s window at these rates.
	UserNsPerFrame float64 `json:"dut_user_ns_per_frame,omitempty"`
	SysNsPerFrame  float64 `json:"dut_sys_ns_per_frame,omitempty"`
	// DUTFinal is xskfwd's final JSON (socket counters) or tunterm's final
	// counters line.
	DUTFinal string `json:"dut_final,omitempty"`
	// XDPLeft lists interfaces that still had an XDP program after the DUT
	// and the sink stopped (should be empty).
	XDPLeft  []string `json:"xdp_left,omitempty"`
	Note     string   `json:"note,omitempty"`
	Accepted bool     `json:"accepted"`
	Reject   string   `json:"reject,omitempty"`
}

type sinkLine struct {
	t        time.Time
	received uint64
	seconds  float64
	cpu      cpuSnap
	in, out  ifStat // the DUT's ingress and egress interfaces
}

var errNoTraffic = errors.New("no traffic reached the sink")

// measure runs one try of s.
func measure(ctx context.Context, lab *Lab, bins Bins, s mSpec, logf func(string, ...any)) (m Measurement, err error) {
	m = Measurement{Role: s.Role, DUT: s.DUT, RatePPS: s.Rate, Method: s.Method}
	rxNS, rxIf, txNS, txIf := lab.sink, sinkIf, lab.gen, genIf
	inIf, outIf := downIf, upIf
	if s.Dir == "up" {
		rxNS, rxIf, txNS, txIf = lab.gen, genIf, lab.sink, sinkIf
		inIf, outIf = upIf, downIf
	}

	// Other jobs on the VM first: waiting here, before the DUT starts,
	// keeps the wait out of what tunterm learned (its FDB ages out after
	// 300 s).
	if s.QuietWait > 0 {
		m.QuietWaitS = waitQuiet(ctx, s.QuietWait, s.MaxForeign, logf)
	}

	// The DUT.
	var dut *proc
	ready := "dataplane running"
	t0 := time.Now()
	if s.DUT == dutTunterm {
		dut, err = lab.Start("tunterm", lab.dut, s.RestCPU, nil, bins.Tunterm, "run", "--config", s.Config, "--stats", "1s")
	} else {
		ready = "forwarding"
		dut, err = lab.Start("xskfwd", lab.dut, s.RestCPU, nil, bins.Xskfwd, "--down", downIf, "--up", upIf,
			"--workers", strconv.Itoa(s.Workers), "--cpus", joinInts(s.CPUs), "--stats", "1s")
	}
	if err != nil {
		return m, err
	}
	defer dut.stop(syscall.SIGKILL, time.Second) // on early returns; normally stopped below
	if err := dut.waitLine(ctx, ready, 180*time.Second); err != nil {
		return m, err
	}
	m.DUTReadyS = round(time.Since(t0).Seconds(), 2)

	if s.DUT == dutTunterm {
		if m.MACsLearned, err = learn(ctx, lab, bins, s, dut); err != nil {
			return m, err
		}
	}

	// The sink: one JSON line per second; the CPU snapshot is taken as
	// each line arrives, so the window's rate and CPU accounting agree.
	lines := make(chan sinkLine, 4096)
	hook := func(stderr bool, l line) {
		if stderr || !strings.HasPrefix(l.s, "{") {
			return
		}
		var v struct {
			Received uint64   `json:"received"`
			Seconds  float64  `json:"seconds"`
			Interval *float64 `json:"interval_pps"`
		}
		if json.Unmarshal([]byte(l.s), &v) != nil || v.Interval == nil {
			return // the final line has no interval_pps
		}
		sl := sinkLine{t: l.t, received: v.Received, seconds: v.Seconds, cpu: readCPU()}
		sl.in, _ = lab.dutStats(inIf)
		sl.out, _ = lab.dutStats(outIf)
		select {
		case lines <- sl:
		default:
		}
	}
	sink, err := lab.Start("ttgen sink", rxNS, s.GenCPU, hook, bins.Ttgen, "sink", "--iface", rxIf, "--duration", "0", "--json")
	if err != nil {
		return m, err
	}
	defer sink.stop(syscall.SIGKILL, time.Second)
	if err := sink.waitLine(ctx, "counting", 20*time.Second); err != nil {
		return m, err
	}

	// The generator, until stopped.
	args := []string{"send", "--config", s.Config, "--dir", s.Dir, "--iface", txIf, "--size", s.Size,
		"--rate", strconv.FormatFloat(s.Rate, 'f', 0, 64), "--duration", "0", "--cpu", strconv.Itoa(s.GenCPU),
		"--json", "--method", s.Method}
	if s.Dir == "down" {
		args = append(args, "--dst-mac", downMAC)
	}
	if s.Rate == 0 && s.Repeat > 0 && s.Method == "xdp" {
		args = append(args, "--repeat", strconv.Itoa(s.Repeat))
	}
	genStart := time.Now()
	gen, err := lab.Start("ttgen send", txNS, s.GenCPU, nil, bins.Ttgen, args...)
	if err != nil {
		return m, err
	}
	defer gen.stop(syscall.SIGKILL, time.Second)

	var got []sinkLine
	first, start, end := -1, -1, -1
	noTraffic := time.After(30 * time.Second)
	for end < 0 {
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-noTraffic:
			if first < 0 {
				return m, fmt.Errorf("%w within 30 s:%s%s", errNoTraffic, gen.Tail(4), dut.Tail(4))
			}
		case <-time.After(5 * time.Second):
			if gen.Exited() || sink.Exited() || dut.Exited() {
				return m, fmt.Errorf("a process ended during the measurement: generator %v%s; sink %v%s; %s %v%s",
					gen.Err(), gen.Tail(4), sink.Err(), sink.Tail(4), dut.name, dut.Err(), dut.Tail(4))
			}
		case l := <-lines:
			if gen.Exited() {
				return m, fmt.Errorf("generator ended during the measurement: %v%s", gen.Err(), gen.Tail(4))
			}
			got = append(got, l)
			i := len(got) - 1
			switch {
			case first < 0 && l.received > 0:
				first = i
				if s.Warm == 0 {
					start = i
				}
			case first >= 0 && start < 0 && i == first+s.Warm:
				start = i
			case start >= 0 && i == start+s.Dur:
				end = i
			}
		}
	}
	genStop := time.Now()
	// The xdp generator sees SIGINT between BPF_PROG_RUN calls (each
	// --repeat frames long), so give it time.
	gen.stop(syscall.SIGINT, 30*time.Second)
	var g struct {
		Sent    uint64  `json:"sent"`
		Seconds float64 `json:"seconds"`
		PPS     float64 `json:"pps"`
	}
	if err := lastJSON(gen, &g); err != nil {
		m.Note = "generator: " + err.Error() // its totals are lost; the window's figures stand
	}
	m.Sent, m.GenSeconds, m.GenPPS = g.Sent, g.Seconds, g.PPS
	time.Sleep(300 * time.Millisecond) // rings and NAPI drain
	sink.stop(syscall.SIGINT, 5*time.Second)
	var k struct {
		Received uint64 `json:"received"`
	}
	if err := lastJSON(sink, &k); err != nil {
		return m, fmt.Errorf("sink: %w", err)
	}
	m.Received = k.Received
	if m.Sent > 0 {
		m.RunLoss = round(1-float64(m.Received)/float64(m.Sent), 6)
	}

	a, b := got[start], got[end]
	m.WindowS = round(b.seconds-a.seconds, 3)
	if m.WindowS > 0 {
		m.PPS = math.Round(float64(b.received-a.received) / (b.seconds - a.seconds))
		m.NICRxPPS = math.Round(float64(b.in.Rx-a.in.Rx) / (b.seconds - a.seconds))
	}
	m.NICRxDropped, m.NICTxDropped = b.in.RxDropped-a.in.RxDropped, b.out.TxDropped-a.out.TxDropped
	if n := b.in.Rx - a.in.Rx; n > 0 {
		m.WindowLoss = round(1-float64(b.received-a.received)/float64(n), 6)
	}
	for i := start + 1; i <= end; i++ {
		dt := got[i].seconds - got[i-1].seconds
		if dt > 0 {
			m.SamplesPPS = append(m.SamplesPPS, math.Round(float64(got[i].received-got[i-1].received)/dt))
		}
	}
	m.CPU = cpuDelta(a.cpu, b.cpu, os.Getpid())
	m.UserNsPerFrame, m.SysNsPerFrame, _ = perFrame(a.cpu, b.cpu, dut.cmd.Process.Pid, b.received-a.received)

	dut.stop(syscall.SIGTERM, 15*time.Second)
	for _, l := range dut.Lines(true) {
		if !l.t.Before(a.t) && !l.t.After(b.t) && strings.Contains(l.s, "msg=counters") {
			m.DUTCounters = append(m.DUTCounters, strings.TrimSpace(l.s[strings.Index(l.s, "msg=counters")+len("msg=counters"):]))
		}
	}
	if s.DUT == dutTunterm {
		m.WorkerWaitMS, m.WorkerPreempted = workerWait(m.DUTCounters)
		m.DUTDrops = drops(dut.Lines(true), genStart, genStop.Add(time.Second))
		for _, l := range dut.Lines(true) {
			if strings.Contains(l.s, `msg="final counters"`) {
				m.DUTFinal = strings.TrimSpace(l.s[strings.Index(l.s, "msg="):])
			}
		}
	} else {
		if ls := dut.Lines(false); len(ls) > 0 {
			m.DUTFinal = ls[len(ls)-1].s
		}
	}
	m.XDPLeft = lab.waitNoXDP(2 * time.Second)
	return m, nil
}

// workerWait averages worker_wait_us (as ms) and worker_preempted over
// tunterm's counters lines, logged once a second (--stats 1s).
func workerWait(lines []string) (ms, preempted float64) {
	var n int
	for _, l := range lines {
		if m := reWait.FindStringSubmatch(l); m != nil {
			w, _ := strconv.ParseFloat(m[1], 64)
			p, _ := strconv.ParseFloat(m[2], 64)
			ms += w / 1000
			preempted += p
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return ms / float64(n), preempted / float64(n)
}

// learn teaches tunterm where every client is (one down frame each, from
// its AP) and where the corporate host is (a few up frames), so that both
// directions forward to learned unicast destinations, as in production: an
// up frame to an unknown client would be flooded to every session. The
// learning frames are paced with AF_PACKET (smooth 1 ms batches; the xdp
// method paces in bursts that overflow the DUT's rx ring). It repeats the
// learning until tunterm's FDB holds every client, at most three times,
// and returns the FDB size.
func learn(ctx context.Context, lab *Lab, bins Bins, s mSpec, dut *proc) (int, error) {
	n := 0
	for try := 1; try <= 3; try++ {
		if err := runTool(ctx, lab, "ttgen learn", lab.gen, s.GenCPU, bins.Ttgen, "send", "--config", s.Config, "--dir", "down",
			"--iface", genIf, "--size", "128", "--learn", "--dst-mac", downMAC, "--method", "afpacket", "--rate", "50000"); err != nil {
			return 0, err
		}
		if err := runTool(ctx, lab, "ttgen learn corporate", lab.sink, s.GenCPU, bins.Ttgen, "send", "--config", s.Config, "--dir", "up",
			"--iface", sinkIf, "--size", "128", "--rate", "2000", "--duration", "100ms", "--method", "afpacket"); err != nil {
			return 0, err
		}
		// The next counters line says how many MACs tunterm knows.
		done := time.Now()
		for time.Since(done) < 2500*time.Millisecond {
			if k, ok := lastLearned(dut.Lines(true), done); ok {
				n = k
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if n >= s.Clients {
			return n, nil
		}
	}
	return n, fmt.Errorf("tunterm learned %d MACs of %d clients after three rounds of learning frames", n, s.Clients)
}

// runTool runs a short-lived tool to completion.
func runTool(ctx context.Context, lab *Lab, name, ns string, cpu int, bin string, args ...string) error {
	p, err := lab.Start(name, ns, cpu, nil, bin, args...)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 180*time.Second)
	defer cancel()
	if err := p.Wait(wctx); err != nil {
		p.stop(syscall.SIGKILL, time.Second)
		return fmt.Errorf("%s: %w:%s", name, err, p.Tail(6))
	}
	return nil
}

// lastJSON decodes the last stdout line of p that is a JSON object.
func lastJSON(p *proc, v any) error {
	ls := p.Lines(false)
	for i := len(ls) - 1; i >= 0; i-- {
		if strings.HasPrefix(ls[i].s, "{") {
			return json.Unmarshal([]byte(ls[i].s), v)
		}
	}
	return fmt.Errorf("%s printed no JSON (exit %v):%s", p.name, p.Err(), p.Tail(6))
}

var (
	reLearned = regexp.MustCompile(`\bmacs_learned=(\d+)`)
	reDrops   = regexp.MustCompile(`\bnot_forwarded="([^"]*)"`)
	reWait    = regexp.MustCompile(`\bworker_wait_us=(\d+) worker_preempted=(\d+)`)
)

// lastLearned returns macs_learned of the first counters line read after t.
func lastLearned(ls []line, after time.Time) (int, bool) {
	for _, l := range ls {
		if l.t.Before(after) || !strings.Contains(l.s, "msg=counters") {
			continue
		}
		if m := reLearned.FindStringSubmatch(l.s); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n, true
		}
	}
	return 0, false
}

// drops sums not_forwarded="dir/reason=n ..." over tunterm's counters lines
// read between from and to.
func drops(ls []line, from, to time.Time) map[string]uint64 {
	out := map[string]uint64{}
	for _, l := range ls {
		if l.t.Before(from) || l.t.After(to) || !strings.Contains(l.s, "msg=counters") {
			continue
		}
		m := reDrops.FindStringSubmatch(l.s)
		if m == nil {
			continue
		}
		for _, kv := range strings.Fields(m[1]) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err == nil {
				out[k] += n
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// quietSeconds is how many seconds in a row count as quiet: other jobs on
// the VM (test binaries, compilers) come and go in bursts with pauses of a
// second or two between them.
const quietSeconds = 3

// waitQuiet waits, up to limit, for quietSeconds in a row in which user
// processes outside the harness used at most maxForeign % of the machine. It returns
// how long it waited.
func waitQuiet(ctx context.Context, limit time.Duration, maxForeign float64, logf func(string, ...any)) float64 {
	t0 := time.Now()
	said, quiet := false, 0
	for time.Since(t0) < limit {
		a := readCPU()
		select {
		case <-ctx.Done():
			return time.Since(t0).Seconds()
		case <-time.After(time.Second):
		}
		u := cpuDelta(a, readCPU(), os.Getpid())
		if u.ForeignPct <= maxForeign {
			quiet++
			if quiet == quietSeconds {
				break
			}
			continue
		}
		quiet = 0
		if !said {
			logf("    waiting for the VM to go quiet (other processes use %.0f%%: %s)", u.ForeignPct, strings.Join(u.Foreign, ", "))
			said = true
		}
	}
	return round(max(0, time.Since(t0).Seconds()-quietSeconds), 1)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// fmtDrops formats drop counts sorted by name.
func fmtDrops(m map[string]uint64) string {
	if len(m) == 0 {
		return ""
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for i, k := range ks {
		ks[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(ks, " ")
}
