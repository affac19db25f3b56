package main

// A campaign: the cross product of the selected directions, sizes, ciphers,
// tunnel counts and worker counts. Each case is three measurements on one
// lab: tunterm at full offered load (the measured rate), xskfwd at full
// offered load (the ceiling), tunterm again paced at LossFraction of the
// measured rate (the no-loss check). A measurement disturbed by steal or by
// other jobs on the VM is repeated, at most Tries times in all.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Options configure a campaign.
type Options struct {
	Dirs, Sizes, Ciphers []string
	Tunnels, Workers     []int
	MACs                 int
	Duration, Warm       int // seconds
	MaxSteal, MaxForeign float64
	MaxCV                float64 // most variation of the per-second rates (stddev/mean) of an undisturbed try
	Tries                int     // most tries of a measurement disturbed by steal
	ExtraTries           int     // further tries when only other jobs (or unsteadiness) disturbed it
	QuietWait            time.Duration
	Ceiling, LossCheck   bool
	CeilingLoss          bool // also run the paced check on xskfwd, at the rate of tunterm's
	LossFraction         float64
	Method, PacedMethod  string // ttgen send methods at full load and when paced
	GenCPU               int
	RestCPU              int    // CPU of the DUT's non-worker threads (-1: not pinned)
	GenRepeat            int    // ttgen send --repeat at full load (frames per BPF_PROG_RUN call)
	DUTCPUs              []int  // worker i runs on DUTCPUs[i]
	DUTIdle              string // tunterm's ports.idle (sleep | spin; "": its default)
	DUTPrefetch          string // tunterm's ports.prefetch (auto | on | off; "": its default)
	Queues               int
	Out                  string // results directory
	Bin                  string // directory with tunterm, ttgen, xskfwd; "" builds them
	Prefix               string // namespace prefix
	Smoke                bool
	Log                  io.Writer
}

// Case is one point of the campaign.
type Case struct {
	Dir, Size, Cipher string
	Tunnels, Workers  int
}

// Name is the case's file-name-safe label.
func (c Case) Name() string {
	return fmt.Sprintf("%s-%s-%s-t%d-w%d", c.Dir, c.Size, shortCipher(c.Cipher), c.Tunnels, c.Workers)
}

func shortCipher(c string) string {
	switch c {
	case "aes-gcm-256":
		return "gcm"
	case "aes-ctr-256-sha512":
		return "ctr-sha512"
	}
	return c
}

// Record is one case's result, written as one JSON file.
type Record struct {
	Schema     int     `json:"schema"`
	Time       string  `json:"time"`
	Case       string  `json:"case"`
	Smoke      bool    `json:"smoke"`
	Direction  string  `json:"direction"`
	InnerSize  string  `json:"inner_size"`
	InnerBytes float64 `json:"inner_bytes"` // mean inner frame length (IMIX 7:4:1 of 64/576/1500 = 354.3)
	Cipher     string  `json:"cipher"`
	Tunnels    int     `json:"tunnels"`
	MACs       int     `json:"macs_per_tunnel"`
	Workers    int     `json:"workers"`
	WorkerCPUs []int   `json:"worker_cpus"`
	GenCPU     int     `json:"gen_cpu"`
	RestCPU    int     `json:"dut_rest_cpu"` // the DUT's non-worker threads (-1: not pinned)
	// PPS is tunterm's forwarding rate at full offered load (sink rate);
	// Gbps the same in inner frame bits, GbpsPerCore divided by workers.
	PPS         float64 `json:"pps"`
	Gbps        float64 `json:"gbps"`
	GbpsPerCore float64 `json:"gbps_per_core"`
	// Loss is the DUT's loss in steady state with the generator paced at
	// LossRatePPS (LossFraction of PPS): 1 - (frames at the sink) / (frames
	// at the DUT's ingress interface) over the window; null when the check
	// was not run. LossSent and LossReceived are the generator's and the
	// sink's totals of that run (warm-up included).
	Loss        *float64 `json:"loss"`
	LossRatePPS float64  `json:"loss_rate_pps"`
	// LossOfferedPPS is what the paced generator achieved (it can fall
	// short of LossRatePPS when the generator's CPU is the limit).
	LossOfferedPPS float64 `json:"loss_offered_pps"`
	LossSent       uint64  `json:"loss_sent"`
	LossReceived   uint64  `json:"loss_received"`
	// CeilingLoss is the same check on xskfwd, paced at the rate of
	// tunterm's (LossRatePPS; null unless asked for): the lab's own loss
	// at the load tunterm's check offers. CeilingLossOfferedPPS is what
	// the generator achieved in it.
	CeilingLoss           *float64 `json:"ceiling_loss"`
	CeilingLossRatePPS    float64  `json:"ceiling_loss_rate_pps,omitempty"`
	CeilingLossOfferedPPS float64  `json:"ceiling_loss_offered_pps,omitempty"`
	// CeilingPPS is xskfwd's rate on the same case; Ratio = PPS/CeilingPPS.
	CeilingPPS float64 `json:"ceiling_pps"`
	Ratio      float64 `json:"ratio"`
	// UserNs and SysNs are tunterm's CPU time per frame at the maximum
	// rate, in user mode and in the kernel; CeilingUserNs and CeilingSysNs
	// xskfwd's (Measurement.UserNsPerFrame). With the worker's CPU the
	// bottleneck, Ratio ≈ (CeilingUserNs+CeilingSysNs) / (UserNs+SysNs).
	UserNs        float64 `json:"dut_user_ns_per_frame,omitempty"`
	SysNs         float64 `json:"dut_sys_ns_per_frame,omitempty"`
	CeilingUserNs float64 `json:"ceiling_user_ns_per_frame,omitempty"`
	CeilingSysNs  float64 `json:"ceiling_sys_ns_per_frame,omitempty"`
	// StealPct and ForeignPct are of tunterm's accepted max-rate measurement.
	StealPct   float64 `json:"steal_pct"`
	ForeignPct float64 `json:"foreign_pct"`
	// Tries of each measurement (1 = the first was undisturbed).
	Tries        int  `json:"tries"`
	CeilingTries int  `json:"ceiling_tries"`
	LossTries    int  `json:"loss_tries"`
	Disturbed    bool `json:"disturbed"` // no try of some measurement was undisturbed; the least disturbed is reported
	DurationS    int  `json:"duration_s"`
	WarmS        int  `json:"warm_s"`
	// OfferedPPS is what the generator sent per second at full load;
	// DUTRxPPS what reached the DUT's ingress interface in the window (the
	// rest of the offered load was dropped there: AF_XDP rings full).
	OfferedPPS float64 `json:"offered_pps"`
	DUTRxPPS   float64 `json:"dut_rx_pps"`
	// DUTDrops are tunterm's not_forwarded reasons during the max-rate
	// measurement; LossDUTDrops during the paced one.
	DUTDrops     map[string]uint64 `json:"dut_drops"`
	LossDUTDrops map[string]uint64 `json:"loss_dut_drops"`
	Error        string            `json:"error,omitempty"`
	Measurements []Measurement     `json:"measurements"`
	Machine      Machine           `json:"machine"`
}

// Machine describes where a record was measured.
type Machine struct {
	Kernel    string `json:"kernel"`
	CPUModel  string `json:"cpu_model"`
	CPUs      int    `json:"cpus"`
	MemGiB    int    `json:"mem_gib"`
	Hostname  string `json:"hostname"`
	GoVersion string `json:"go_version"`
	Commit    string `json:"commit"`
	Dirty     bool   `json:"dirty"`
	Queues    int    `json:"veth_queues"`
	Method    string `json:"gen_method"`
	Paced     string `json:"gen_paced_method"`
	// DUTIdle is tunterm's ports.idle ("" before it was recorded: sleep).
	DUTIdle string `json:"dut_idle,omitempty"`
	// DUTPrefetch is tunterm's ports.prefetch ("" before it was recorded:
	// always on, which auto's threshold of 700 SAs replaced).
	DUTPrefetch string `json:"dut_prefetch,omitempty"`
	// THP is /sys/kernel/mm/transparent_hugepage/enabled, the selected
	// mode in brackets: only with "always" is the Go heap (tunterm's
	// tables) on huge pages (docs/deployment.md).
	THP string `json:"transparent_hugepage,omitempty"`
}

// innerBytes is the mean inner frame length of a --size.
func innerBytes(size string) float64 {
	if size == "imix" {
		return (7*64 + 4*576 + 1*1500) / 12.0
	}
	var n float64
	fmt.Sscan(size, &n)
	return n
}

// Cases expands the options' cross product.
func (o *Options) Cases() []Case {
	var cs []Case
	for _, d := range o.Dirs {
		for _, t := range o.Tunnels {
			for _, s := range o.Sizes {
				for _, c := range o.Ciphers {
					for _, w := range o.Workers {
						cs = append(cs, Case{Dir: d, Size: s, Cipher: c, Tunnels: t, Workers: w})
					}
				}
			}
		}
	}
	return cs
}

func (o *Options) logf(format string, a ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", a...)
	}
}

// Run runs the campaign: builds the programs (unless o.Bin), builds the
// lab, runs every case, writes one JSON file per case to o.Out and tears
// the lab down, also when ctx is cancelled or a case fails. It returns the
// records written and the paths of their files.
func Run(ctx context.Context, o Options) (recs []Record, files []string, err error) {
	for _, w := range o.Workers {
		if w < 1 || w > len(o.DUTCPUs) {
			return nil, nil, fmt.Errorf("workers %d: --dut-cpus lists %d CPUs", w, len(o.DUTCPUs))
		}
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, nil, err
	}
	work, err := os.MkdirTemp("", "tunterm-bench-live-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(work)
	bins, err := o.bins(ctx, work)
	if err != nil {
		return nil, nil, err
	}
	mach := machine(o)
	if err := pinSelf(o.GenCPU); err != nil {
		o.logf("cannot pin the harness to CPU %d: %v", o.GenCPU, err)
	}

	lab, err := NewLab(o.Prefix, o.Queues)
	if err != nil {
		return nil, nil, fmt.Errorf("lab: %w", err)
	}
	defer func() {
		if cerr := lab.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("teardown: %w", cerr))
		}
	}()
	o.logf("lab up: namespaces %s; generator on CPU %d, DUT workers on CPUs %v", strings.Join(lab.Namespaces(), " "), o.GenCPU, o.DUTCPUs)

	cases := o.Cases()
	var errs []error
	for i, c := range cases {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		o.logf("[%d/%d] %s", i+1, len(cases), c.Name())
		r, cerr := o.runCase(ctx, lab, bins, work, c)
		r.Machine = mach
		if cerr != nil {
			r.Error = cerr.Error()
			errs = append(errs, fmt.Errorf("%s: %w", c.Name(), cerr))
			o.logf("    FAILED: %v", cerr)
			if ctx.Err() != nil {
				break
			}
		}
		path := filepath.Join(o.Out, fmt.Sprintf("%s_%s.json", strings.NewReplacer("-", "", ":", "").Replace(r.Time), c.Name()))
		b, _ := json.MarshalIndent(r, "", "  ")
		if werr := os.WriteFile(path, append(b, '\n'), 0o644); werr != nil {
			errs = append(errs, werr)
		} else {
			files = append(files, path)
		}
		recs = append(recs, r)
		if cerr == nil {
			o.logf("    => %s", summaryLine(r))
		}
	}
	return recs, files, errors.Join(errs...)
}

// runCase measures one case.
func (o *Options) runCase(ctx context.Context, lab *Lab, bins Bins, work string, c Case) (r Record, err error) {
	r = Record{Schema: 1, Time: time.Now().UTC().Format("2006-01-02T15:04:05Z"), Case: c.Name(), Smoke: o.Smoke,
		Direction: c.Dir, InnerSize: c.Size, InnerBytes: round(innerBytes(c.Size), 2), Cipher: c.Cipher,
		Tunnels: c.Tunnels, MACs: o.MACs, Workers: c.Workers, WorkerCPUs: o.DUTCPUs[:c.Workers], GenCPU: o.GenCPU, RestCPU: o.RestCPU,
		DurationS: o.Duration, WarmS: o.Warm, DUTDrops: map[string]uint64{}, LossDUTDrops: map[string]uint64{}}
	cfg := filepath.Join(work, c.Name()+".yaml")
	if err := o.writeConfig(ctx, bins, cfg, c); err != nil {
		return r, err
	}
	spec := mSpec{Role: "max", DUT: dutTunterm, Dir: c.Dir, Size: c.Size, Config: cfg, Workers: c.Workers,
		Clients: c.Tunnels * o.MACs, CPUs: o.DUTCPUs[:c.Workers], GenCPU: o.GenCPU, RestCPU: o.RestCPU, Repeat: o.GenRepeat, Method: o.Method, Warm: o.Warm, Dur: o.Duration,
		QuietWait: o.QuietWait, MaxForeign: o.MaxForeign}

	m, tries, ok, err := o.tries(ctx, lab, bins, spec, &r)
	if err != nil {
		return r, err
	}
	r.PPS, r.Tries, r.StealPct, r.ForeignPct, r.OfferedPPS = m.PPS, tries, m.CPU.StealPct, m.CPU.ForeignPct, m.GenPPS
	r.Disturbed = !ok
	r.DUTRxPPS = m.NICRxPPS
	r.UserNs, r.SysNs = m.UserNsPerFrame, m.SysNsPerFrame
	if m.DUTDrops != nil {
		r.DUTDrops = m.DUTDrops
	}
	r.Gbps = round(m.PPS*r.InnerBytes*8/1e9, 3)
	r.GbpsPerCore = round(r.Gbps/float64(c.Workers), 3)

	if o.Ceiling {
		s := spec
		s.Role, s.DUT = "ceiling", dutXskfwd
		m, tries, ok, err := o.tries(ctx, lab, bins, s, &r)
		if err != nil {
			return r, err
		}
		r.CeilingPPS, r.CeilingTries = m.PPS, tries
		r.CeilingUserNs, r.CeilingSysNs = m.UserNsPerFrame, m.SysNsPerFrame
		r.Disturbed = r.Disturbed || !ok
		if m.PPS > 0 {
			r.Ratio = round(r.PPS/m.PPS, 3)
		}
		if o.CeilingLoss && r.PPS > 0 {
			// At tunterm's paced rate, not xskfwd's: the lab's loss at the
			// load tunterm's own check sees.
			s.Role, s.Method, s.Rate = "ceiling-loss", o.PacedMethod, math.Floor(o.LossFraction*r.PPS)
			m, _, ok, err := o.tries(ctx, lab, bins, s, &r)
			if err != nil {
				return r, err
			}
			loss := m.WindowLoss
			r.CeilingLoss, r.CeilingLossRatePPS, r.CeilingLossOfferedPPS = &loss, s.Rate, m.GenPPS
			r.Disturbed = r.Disturbed || !ok
		}
	}
	if o.LossCheck && r.PPS > 0 {
		s := spec
		s.Role, s.Method, s.Rate = "loss", o.PacedMethod, math.Floor(o.LossFraction*r.PPS)
		m, tries, ok, err := o.tries(ctx, lab, bins, s, &r)
		if err != nil {
			return r, err
		}
		loss := m.WindowLoss
		r.Loss, r.LossRatePPS, r.LossSent, r.LossReceived, r.LossTries = &loss, s.Rate, m.Sent, m.Received, tries
		r.LossOfferedPPS = m.GenPPS
		r.Disturbed = r.Disturbed || !ok
		if m.DUTDrops != nil {
			r.LossDUTDrops = m.DUTDrops
		}
	}
	return r, nil
}

// tries runs s until a try is undisturbed or the tries are used up, then
// returns the least disturbed try. A try is disturbed by steal above
// MaxSteal, by other processes above MaxForeign or by per-second rates
// varying more than MaxCV. Tries counts every try; a try disturbed by
// steal uses one of Tries, one disturbed only by other jobs on the VM (or
// unsteady without steal) one of Tries+ExtraTries: waiting out another
// job is cheap, steal is the hypervisor's and may persist. Every try is
// appended to r.Measurements.
func (o *Options) tries(ctx context.Context, lab *Lab, bins Bins, s mSpec, r *Record) (best Measurement, n int, ok bool, err error) {
	bestIdx := -1
	var all []Measurement
	stealTries := 0
	for try := 1; ; try++ {
		m, err := measure(ctx, lab, bins, s, o.logf)
		m.Try = try
		if err != nil {
			m.Reject = "error: " + err.Error()
			r.Measurements = append(r.Measurements, m)
			return m, try, false, fmt.Errorf("%s try %d: %w", s.Role, try, err)
		}
		var why []string
		stolen := m.CPU.StealPct > o.MaxSteal
		if stolen {
			why = append(why, fmt.Sprintf("steal %.1f%% > %.0f%%", m.CPU.StealPct, o.MaxSteal))
			stealTries++
		}
		if cv := m.CV(); o.MaxCV > 0 && cv > o.MaxCV {
			why = append(why, fmt.Sprintf("unsteady: per-second rates vary %.0f%% > %.0f%%", 100*cv, 100*o.MaxCV))
		}
		if m.CPU.ForeignPct > o.MaxForeign {
			why = append(why, fmt.Sprintf("other processes %.1f%% > %.0f%% (%s)", m.CPU.ForeignPct, o.MaxForeign, strings.Join(m.CPU.Foreign, ", ")))
		}
		m.Accepted = len(why) == 0
		m.Reject = strings.Join(why, "; ")
		all = append(all, m)
		r.Measurements = append(r.Measurements, m)
		o.logf("    %-7s %-7s try %d: %s", s.Role, s.DUT, try, measLine(m))
		if m.Accepted {
			return m, try, true, nil
		}
		if bestIdx < 0 || m.disturbance() < all[bestIdx].disturbance() {
			bestIdx = len(all) - 1
		}
		if stealTries >= max(1, o.Tries) || try >= max(1, o.Tries)+o.ExtraTries {
			break
		}
	}
	return all[bestIdx], len(all), false, nil
}

// CV is the coefficient of variation of the per-second rates.
func (m Measurement) CV() float64 {
	n := float64(len(m.SamplesPPS))
	if n < 2 {
		return 0
	}
	var sum, sq float64
	for _, v := range m.SamplesPPS {
		sum += v
	}
	mean := sum / n
	if mean == 0 {
		return 0
	}
	for _, v := range m.SamplesPPS {
		sq += (v - mean) * (v - mean)
	}
	return math.Sqrt(sq/(n-1)) / mean
}

// disturbance ranks tries: steal and foreign load in %, plus the
// variation of the per-second rates in %.
func (m Measurement) disturbance() float64 {
	return m.CPU.StealPct + m.CPU.ForeignPct + 100*m.CV()
}

func measLine(m Measurement) string {
	var samples []string
	for _, s := range m.SamplesPPS {
		samples = append(samples, fmt.Sprintf("%.3f", s/1e6))
	}
	s := fmt.Sprintf("%.3f Mpps (per s: %s) offered %.3f Mpps, steal %.1f%%, others %.1f%%, busy %v soft %v",
		m.PPS/1e6, strings.Join(samples, " "), m.GenPPS/1e6, m.CPU.StealPct, m.CPU.ForeignPct, m.CPU.BusyPct, m.CPU.SoftPct)
	s += fmt.Sprintf(", at DUT %.3f Mpps, NIC drops %d", m.NICRxPPS/1e6, m.NICRxDropped)
	if m.Role == "loss" || m.Role == "ceiling-loss" {
		s += fmt.Sprintf(", loss %.4f%% (whole run %.4f%%)", 100*m.WindowLoss, 100*m.RunLoss)
	}
	if m.UserNsPerFrame > 0 || m.SysNsPerFrame > 0 {
		s += fmt.Sprintf(", CPU per frame: user %.0f ns + sys %.0f ns", m.UserNsPerFrame, m.SysNsPerFrame)
	}
	if m.WorkerWaitMS > 0 || m.WorkerPreempted > 0 {
		s += fmt.Sprintf(", worker waited %.1f ms/s for its CPU (switched out %.0f/s)", m.WorkerWaitMS, m.WorkerPreempted)
	}
	if len(m.DUTDrops) > 0 {
		s += ", drops: " + fmtDrops(m.DUTDrops)
	}
	if m.MACsLearned > 0 {
		s += fmt.Sprintf(", %d MACs learned", m.MACsLearned)
	}
	if len(m.XDPLeft) > 0 {
		s += ", XDP LEFT ATTACHED: " + strings.Join(m.XDPLeft, " ")
	}
	if m.CPU.KthreadPct > 2 {
		s += fmt.Sprintf(", kernel threads %.1f%%", m.CPU.KthreadPct)
	}
	if m.Note != "" {
		s += " (" + m.Note + ")"
	}
	if m.Reject != "" {
		s += " [repeat: " + m.Reject + "]"
	}
	return s
}

func summaryLine(r Record) string {
	s := fmt.Sprintf("tunterm %.3f Mpps = %.2f Gbps inner (%.2f per core)", r.PPS/1e6, r.Gbps, r.GbpsPerCore)
	if r.CeilingPPS > 0 {
		s += fmt.Sprintf("; ceiling %.3f Mpps, ratio %.2f", r.CeilingPPS/1e6, r.Ratio)
	}
	if r.Loss != nil {
		s += fmt.Sprintf("; loss at %.3f Mpps: %.4f%%", r.LossRatePPS/1e6, 100**r.Loss)
	}
	if r.CeilingLoss != nil {
		s += fmt.Sprintf("; xskfwd's loss at %.3f Mpps: %.4f%%", r.CeilingLossRatePPS/1e6, 100**r.CeilingLoss)
	}
	if r.Disturbed {
		s += " (DISTURBED: no undisturbed try)"
	}
	return s
}

// writeConfig writes the case's tunterm configuration with ttgen and pins
// the workers (cpus:).
func (o *Options) writeConfig(ctx context.Context, bins Bins, path string, c Case) error {
	cmd := exec.CommandContext(ctx, bins.Ttgen, "config", "--tunnels", fmt.Sprint(c.Tunnels), "--macs", fmt.Sprint(o.MACs),
		"--cipher", c.Cipher, "--workers", fmt.Sprint(c.Workers), "--mtu", fmt.Sprint(labMTU),
		"--down-if", downIf, "--up-if", upIf, "--address", dutAddr, "--out", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ttgen config: %w: %s", err, out)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "cpus: [%s]\n", strings.ReplaceAll(joinInts(o.DUTCPUs[:c.Workers]), ",", ", "))
	var ports []string
	if o.DUTIdle != "" {
		ports = append(ports, "idle: "+o.DUTIdle)
	}
	if o.DUTPrefetch != "" {
		ports = append(ports, "prefetch: "+o.DUTPrefetch)
	}
	if err == nil && len(ports) > 0 {
		_, err = fmt.Fprintf(f, "ports: {%s}\n", strings.Join(ports, ", "))
	}
	return errors.Join(err, f.Close())
}

// bins returns the programs, building them into work unless o.Bin names
// a directory that has them.
func (o *Options) bins(ctx context.Context, work string) (Bins, error) {
	dir := o.Bin
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			return Bins{}, err
		}
		dir = filepath.Join(work, "bin")
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		for _, p := range []struct{ name, pkg string }{{"tunterm", "./cmd/tunterm"}, {"ttgen", "./cmd/ttgen"}, {"xskfwd", "./bench/xskfwd"}} {
			cmd := exec.CommandContext(ctx, goBin, "build", "-o", filepath.Join(dir, p.name), p.pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				return Bins{}, fmt.Errorf("go build %s: %w: %s", p.pkg, err, out)
			}
		}
	}
	b := Bins{Tunterm: filepath.Join(dir, "tunterm"), Ttgen: filepath.Join(dir, "ttgen"), Xskfwd: filepath.Join(dir, "xskfwd")}
	for _, p := range []string{b.Tunterm, b.Ttgen, b.Xskfwd} {
		if _, err := os.Stat(p); err != nil {
			return Bins{}, err
		}
	}
	return b, nil
}

// pinSelf moves every thread of the harness to cpu (threads created later
// inherit it from their creator), so that reading /proc, parsing output and
// running ip stay off the DUT workers' CPUs.
func pinSelf(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// moduleRoot finds the directory of tunterm's go.mod from the working
// directory up.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/tunterm/tunterm\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the tunterm module (no go.mod found); run from the repository or pass --bin")
		}
		dir = parent
	}
}

// thpFile holds the kernel's transparent huge page mode.
const thpFile = "/sys/kernel/mm/transparent_hugepage/enabled"

func machine(o Options) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Queues: o.Queues, Method: o.Method, Paced: o.PacedMethod, DUTIdle: o.DUTIdle,
		DUTPrefetch: o.DUTPrefetch}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
		m.MemGiB = int(math.Round(float64(kb) / (1 << 20)))
	}
	if b, err := os.ReadFile(thpFile); err == nil {
		m.THP = strings.TrimSpace(string(b))
	}
	m.Hostname, _ = os.Hostname()
	if root, err := moduleRoot(); err == nil {
		if out, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output(); err == nil {
			m.Commit = strings.TrimSpace(string(out))
		}
		if out, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil {
			m.Dirty = len(strings.TrimSpace(string(out))) > 0
		}
	}
	return m
}
