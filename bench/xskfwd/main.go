// Command xskfwd is the packet-I/O ceiling of the live benchmark
// (bench/live): the same topology and the same AF_XDP machinery as tunterm
// (steer's XDP program, one shared UMEM, dataplane/port/afxdp sockets, one
// pinned polling worker per core) with no processing at all. Every frame
// arriving on --down is sent unchanged out of --up and the other way round;
// a sink behind the far interface counts them.
//
//	xskfwd --down down0 --up up0 [--workers 1] [--cpus 1] [--ring 2048]
//	       [--xdp-mode auto|native|generic] [--stats 0s]
//
// It logs (slog text, stderr) "forwarding" once the sockets are up, a
// "counters" line every --stats, and at SIGTERM/SIGINT prints the final
// totals as one JSON line on stdout. Worker i owns rx/tx queue i of both
// interfaces; workers beyond the interfaces' queue count idle. The XDP
// programs are attached with bpf_link, so they go away with the process
// however it ends.
//
// This file is flags and signals; fwd.go does the work.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tunterm/tunterm/ebpf/steer"
)

func main() {
	os.Exit(run())
}

func run() int {
	var o Options
	fs := flag.NewFlagSet("xskfwd", flag.ContinueOnError)
	fs.StringVar(&o.Down, "down", "down0", "downstream interface")
	fs.StringVar(&o.Up, "up", "up0", "upstream interface")
	fs.IntVar(&o.Workers, "workers", 1, "workers (worker i owns queue i of both interfaces)")
	cpus := fs.String("cpus", "", "comma-separated CPU per worker (empty: not pinned)")
	fs.IntVar(&o.Ring, "ring", 2048, "AF_XDP ring size")
	mode := fs.String("xdp-mode", "auto", "auto | native | generic")
	fs.BoolVar(&o.NeedWakeup, "need-wakeup", true, "AF_XDP need-wakeup")
	fs.BoolVar(&o.BusyPoll, "busy-poll", false, "SO_PREFER_BUSY_POLL on the sockets")
	every := fs.Duration("stats", 0, "log a counters line this often (0: never)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	o.Log = log
	var err error
	if o.XDPMode, err = steer.ParseMode(*mode); err != nil {
		fmt.Fprintf(os.Stderr, "xskfwd: --xdp-mode: %v\n", err)
		return 2
	}
	if *cpus != "" {
		for _, s := range strings.Split(*cpus, ",") {
			c, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || c < 0 {
				fmt.Fprintf(os.Stderr, "xskfwd: --cpus: %q is not a CPU number\n", s)
				return 2
			}
			o.CPUs = append(o.CPUs, c)
		}
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	f, err := Start(o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "xskfwd: %v\n", err)
		return 1
	}
	log.Info("forwarding", "down", o.Down, "up", o.Up, "workers", o.Workers, "cpus", o.CPUs)
	var tick <-chan time.Time
	if *every > 0 {
		t := time.NewTicker(*every)
		defer t.Stop()
		tick = t.C
	}
	last, lastT := f.Totals(), time.Now()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case now := <-tick:
			cur := f.Totals()
			s := now.Sub(lastT).Seconds()
			log.Info("counters", "down_up_pps", fmt.Sprintf("%.0f", float64(cur.DownToUp-last.DownToUp)/s),
				"up_down_pps", fmt.Sprintf("%.0f", float64(cur.UpToDown-last.UpToDown)/s),
				"rx_ring_full", cur.RxRingFull-last.RxRingFull, "tx_full", cur.TxFull-last.TxFull)
			last, lastT = cur, now
		}
	}
	t := f.Stop()
	b, _ := json.Marshal(t)
	fmt.Printf("%s\n", b)
	log.Info("final counters", "down_to_up", t.DownToUp, "up_to_down", t.UpToDown)
	return 0
}
