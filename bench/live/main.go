// Command live is tunterm's live benchmark: tunterm forwarding real frames
// over AF_XDP between veth pairs in network namespaces, against the same
// topology with a plain AF_XDP forwarder (bench/xskfwd) as the ceiling.
//
//	go run ./bench/live [--dirs down,up] [--sizes 128,imix,1400] [--ciphers aes-gcm-256,aes-ctr-256-sha512]
//	                    [--tunnels 500,5000,10000] [--workers 1,2] [--duration 5s] [--smoke] ...
//	go run ./bench/live report [--results bench/results] [--svg docs/benchmark-live.svg] [--md FILE]
//
// Every case writes one JSON file to --out (bench/results); `report` turns
// them into a markdown table and an SVG chart. See docs/benchmark.md.
//
// This file is flags and signals; lab.go, measure.go and campaign.go do the
// work, report.go the summary.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "report" {
		os.Exit(cmdReport(os.Args[2:]))
	}
	os.Exit(cmdRun(os.Args[1:]))
}

// defaults returns the full campaign's options.
func defaults() Options {
	return Options{
		Dirs: []string{"down", "up"}, Sizes: []string{"128", "imix", "1400"},
		Ciphers: []string{"aes-gcm-256", "aes-ctr-256-sha512"},
		Tunnels: []int{500, 5000, 10000}, Workers: []int{1, 2},
		MACs: 10, Duration: 5, Warm: 2, MaxSteal: 20, MaxForeign: 3, MaxCV: 0.15, Tries: 3, ExtraTries: 5, QuietWait: 10 * time.Minute,
		Ceiling: true, LossCheck: true, LossFraction: 0.9, Method: "xdp", PacedMethod: "afpacket",
		GenCPU: 0, RestCPU: 0, GenRepeat: 1 << 21, DUTCPUs: []int{1, 0}, Queues: 1, Out: "bench/results", Prefix: "tt-bl-", Log: os.Stderr,
	}
}

// smoke turns o into the smoke run: one case, 50 tunnels, 2 s, one try,
// no paced rerun.
func smoke(o *Options) {
	o.Smoke = true
	o.Dirs, o.Sizes, o.Ciphers, o.Tunnels, o.Workers = []string{"down"}, []string{"128"}, []string{"aes-gcm-256"}, []int{50}, []int{1}
	o.Duration, o.Warm, o.Tries, o.ExtraTries, o.QuietWait, o.LossCheck = 2, 1, 1, 0, 0, false
}

func cmdRun(args []string) int {
	o := defaults()
	fs := flag.NewFlagSet("bench/live", flag.ContinueOnError)
	dirs := fs.String("dirs", strings.Join(o.Dirs, ","), "directions: down (AP -> corporate, ESP in) | up (corporate -> AP, ESP out)")
	sizes := fs.String("sizes", strings.Join(o.Sizes, ","), "inner frame sizes: 128 | 512 | 1400 | imix")
	ciphers := fs.String("ciphers", strings.Join(o.Ciphers, ","), "aes-gcm-256 | aes-ctr-256-sha512")
	tunnels := fs.String("tunnels", "500,5000,10000", "tunnel counts (X1 500, X5 5000, X10 10000)")
	workers := fs.String("workers", "1,2", "DUT worker counts")
	fs.IntVar(&o.MACs, "macs", o.MACs, "client MACs per tunnel")
	dur := fs.Duration("duration", 5*time.Second, "measurement window (whole seconds)")
	warm := fs.Duration("warm", 2*time.Second, "traffic before the window (whole seconds)")
	fs.Float64Var(&o.MaxSteal, "max-steal", o.MaxSteal, "repeat a measurement whose CPU steal exceeds this %")
	fs.Float64Var(&o.MaxForeign, "max-foreign", o.MaxForeign, "repeat a measurement during which other processes used more than this % of the CPUs")
	fs.Float64Var(&o.MaxCV, "max-cv", o.MaxCV, "repeat a measurement whose per-second rates vary more than this (stddev/mean; 0: never)")
	fs.IntVar(&o.Tries, "tries", o.Tries, "most tries of a measurement (repeated while steal is above --max-steal)")
	fs.IntVar(&o.ExtraTries, "extra-tries", o.ExtraTries, "further tries when only other processes or unsteady rates disturbed it")
	fs.DurationVar(&o.QuietWait, "quiet-wait", o.QuietWait, "before a measurement, wait up to this long for other processes to go quiet")
	noCeiling := fs.Bool("no-ceiling", false, "skip the xskfwd ceiling")
	noLoss := fs.Bool("no-loss", false, "skip the paced no-loss rerun")
	fs.BoolVar(&o.CeilingLoss, "ceiling-loss", false, "also run the paced check on xskfwd, at the rate of tunterm's (the lab's own loss at that load)")
	fs.Float64Var(&o.LossFraction, "loss-rate", o.LossFraction, "paced rerun at this fraction of the measured rate")
	fs.StringVar(&o.Method, "method", o.Method, "ttgen send method at full load: xdp | afpacket")
	fs.StringVar(&o.PacedMethod, "paced-method", o.PacedMethod, "ttgen send method for the paced rerun: afpacket | xdp")
	fs.IntVar(&o.GenCPU, "gen-cpu", o.GenCPU, "CPU of the generator (its veth's NAPI and the DUT's XDP receive run there too)")
	fs.StringVar(&o.DUTIdle, "dut-idle", o.DUTIdle, "tunterm's ports.idle: sleep | spin (empty: tunterm's default, sleep)")
	fs.StringVar(&o.DUTPrefetch, "dut-prefetch", o.DUTPrefetch, "tunterm's ports.prefetch: auto | on | off (empty: tunterm's default, auto)")
	fs.IntVar(&o.GenRepeat, "gen-repeat", o.GenRepeat, "frames per BPF_PROG_RUN call of the xdp generator at full load (each call ends with a ~25 ms pause; 0: ttgen's default)")
	fs.IntVar(&o.RestCPU, "dut-rest-cpu", o.RestCPU, "CPU of the DUT's threads other than its workers (-1: not pinned)")
	dutCPUs := fs.String("dut-cpus", "1,0", "CPU of DUT worker i, comma-separated")
	fs.IntVar(&o.Queues, "queues", o.Queues, "rx/tx queues per veth")
	fs.StringVar(&o.Out, "out", o.Out, "results directory (one JSON file per case)")
	fs.StringVar(&o.Bin, "bin", "", "directory with tunterm, ttgen and xskfwd (default: go build them into a temporary directory)")
	fs.StringVar(&o.Prefix, "prefix", o.Prefix, "network namespace prefix")
	isSmoke := fs.Bool("smoke", false, "one case (down, 128, aes-gcm-256, 50 tunnels, 1 worker), 2 s, one try, no paced rerun")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench/live: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var err error
	o.Dirs, o.Sizes, o.Ciphers = split(*dirs), split(*sizes), split(*ciphers)
	if o.Tunnels, err = ints(*tunnels); err == nil {
		if o.Workers, err = ints(*workers); err == nil {
			o.DUTCPUs, err = ints(*dutCPUs)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/live: %v\n", err)
		return 2
	}
	o.Duration, o.Warm = int(dur.Round(time.Second)/time.Second), int(warm.Round(time.Second)/time.Second)
	o.Ceiling, o.LossCheck = !*noCeiling, !*noLoss
	if *isSmoke {
		smoke(&o)
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "bench/live: %v\n", err)
		return 2
	}

	// First Ctrl-C/SIGTERM: stop, tear down, write what was measured.
	// A second one exits at once (the children die with us: PDEATHSIG;
	// their XDP programs with them: bpf_link).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "bench/live: interrupted, cleaning up (again to exit at once)")
		cancel()
		<-sig
		os.Exit(130)
	}()
	start := time.Now()
	recs, files, err := Run(ctx, o)
	fmt.Fprintf(os.Stderr, "bench/live: %d case(s) in %v; results: %s\n", len(recs), time.Since(start).Round(time.Second), strings.Join(files, " "))
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/live: %v\n", err)
		return 1
	}
	if len(recs) > 0 {
		fmt.Print(markdown(rowsOf(recs)))
	}
	return 0
}

func (o *Options) validate() error {
	for _, d := range o.Dirs {
		if d != "down" && d != "up" {
			return fmt.Errorf("--dirs: %q is not down or up", d)
		}
	}
	for _, s := range o.Sizes {
		if innerBytes(s) == 0 {
			return fmt.Errorf("--sizes: %q is not 128, 512, 1400 or imix", s)
		}
	}
	for _, c := range o.Ciphers {
		if c != "aes-gcm-256" && c != "aes-ctr-256-sha512" {
			return fmt.Errorf("--ciphers: %q is not aes-gcm-256 or aes-ctr-256-sha512", c)
		}
	}
	for _, w := range o.Workers {
		if w < 1 || w > len(o.DUTCPUs) {
			return fmt.Errorf("--workers %d needs that many --dut-cpus (have %v)", w, o.DUTCPUs)
		}
	}
	if o.Duration < 1 || o.Warm < 0 {
		return fmt.Errorf("--duration must be at least 1s and --warm not negative")
	}
	if o.LossFraction <= 0 || o.LossFraction > 1 {
		return fmt.Errorf("--loss-rate: %v is not in (0, 1]", o.LossFraction)
	}
	for _, m := range []string{o.Method, o.PacedMethod} {
		if m != "xdp" && m != "afpacket" {
			return fmt.Errorf("send method %q is not xdp or afpacket", m)
		}
	}
	if len(o.Dirs)*len(o.Sizes)*len(o.Ciphers)*len(o.Tunnels)*len(o.Workers) == 0 {
		return fmt.Errorf("no case selected")
	}
	return nil
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range split(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a non-negative number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func cmdReport(args []string) int {
	fs := flag.NewFlagSet("bench/live report", flag.ContinueOnError)
	dir := fs.String("results", "bench/results", "directory of the JSON results")
	svg := fs.String("svg", "docs/benchmark-live.svg", "SVG chart to write (empty: none)")
	md := fs.String("md", "", "also write the markdown table to this file")
	smokeToo := fs.Bool("smoke", false, "include smoke records")
	// Several runs of a case are summarised by the run with the median
	// ratio, with the spread in the "runs" column.
	if err := fs.Parse(args); err != nil {
		return 2
	}
	recs, err := loadRecords(*dir, *smokeToo)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/live report: %v\n", err)
		return 1
	}
	if len(recs) == 0 {
		fmt.Fprintf(os.Stderr, "bench/live report: no results in %s\n", *dir)
		return 1
	}
	rows := summarize(recs)
	table := markdown(rows)
	fmt.Print(table)
	if *md != "" {
		if err := os.WriteFile(*md, []byte(table), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "bench/live report: %v\n", err)
			return 1
		}
	}
	if *svg != "" {
		if err := os.WriteFile(*svg, []byte(chart(rows)), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "bench/live report: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "bench/live report: %d runs of %d cases; chart in %s\n", len(recs), len(rows), *svg)
	}
	return 0
}
