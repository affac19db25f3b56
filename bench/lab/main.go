// Command tunterm-lab is the live demo behind `make run`: three network
// namespaces joined by veth pairs, tunterm running in the middle, ttgen
// playing twenty APs on one side and the corporate trunk on the other,
// traffic both ways, and every two seconds what tunterm counted and what
// arrived at each end. Ctrl-C (or --duration) tears it all down.
//
//	tt-lab-ap                tt-lab-dut                     tt-lab-corp
//	ap0 198.18.0.2/15 ─ veth ─ down0 198.18.0.1/15  up0 ─ veth ─ corp0
//	02:00:00:00:00:fe          02:00:00:00:00:01
//	ttgen send (ESP) + sink     tunterm run (XDP + AF_XDP)      ttgen send (802.1Q) + sink
//
// This file is flags and signals; lab.go does the work.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var o Options
	fs := flag.NewFlagSet("tunterm-lab", flag.ContinueOnError)
	fs.DurationVar(&o.Duration, "duration", 0, "stop after this long (0: run until Ctrl-C)")
	fs.IntVar(&o.Rate, "rate", 20000, "frames per second each way")
	fs.StringVar(&o.Size, "size", "512", "inner frame size: 128 | 512 | 1400 | imix")
	fs.StringVar(&o.Method, "method", "afpacket", "ttgen send method: afpacket | xdp")
	fs.IntVar(&o.Tunnels, "tunnels", 20, "APs (tunnels)")
	fs.IntVar(&o.MACs, "macs", 3, "clients per AP")
	fs.IntVar(&o.Workers, "workers", DefaultWorkers, "tunterm workers (0: auto, one per CPU); see DefaultWorkers")
	fs.StringVar(&o.Bin, "bin", "bin", "where tunterm and ttgen are (built there unless --no-build)")
	noBuild := fs.Bool("no-build", false, "use the binaries in --bin as they are")
	fs.StringVar(&o.Prefix, "prefix", "tt-lab-", "namespace name prefix")
	fs.StringVar(&o.Dir, "workdir", "", "config and logs (default: <bin>/lab)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	o.Build = !*noBuild
	o.Out = os.Stdout
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	start := time.Now()
	sum, err := Run(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tunterm-lab: %v\n", err)
		os.Exit(1)
	}
	if o.Duration > 0 && !sum.OK() {
		// A timed run is a smoke test: say so in the exit status.
		fmt.Fprintf(os.Stderr, "tunterm-lab: traffic check failed after %v: %s\n", time.Since(start).Round(time.Second), sum.Problems())
		os.Exit(1)
	}
}
