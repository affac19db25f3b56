// Command ttgen is tunterm's traffic generator and sink: it writes a
// benchmark configuration of N statically keyed APs, replays the frames
// those APs (and the corporate side) would send, and counts what comes out.
//
// This file is wiring only: flags, subcommands, signals, output. Frames are
// built by internal/traffic, sent by internal/xmit, counted by
// internal/sink.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tunterm/tunterm/cmd/ttgen/internal/sink"
	"github.com/tunterm/tunterm/cmd/ttgen/internal/traffic"
	"github.com/tunterm/tunterm/cmd/ttgen/internal/xmit"
	"github.com/tunterm/tunterm/control/config"
)

const usage = `ttgen — traffic generator and sink for tunterm benchmarks

Usage:
  ttgen config --tunnels N [--macs 10] [--cipher aes-gcm-256|aes-ctr-256-sha512] [--protocol ip|udp]
               [--down-if down0] [--up-if up0] [--address 198.18.0.1/15] [--workers N] [--mtu 1500]
               [--out tunterm.yaml]
      Write a tunterm configuration with N static peers (198.19.0.1, ...), deterministic keys,
      esp.anti_replay: false, VLANs 100..104, Ethernet-VLAN pseudowires, transport mode and
      gateway_mac 02:00:00:00:00:fe (the generator's MAC). --out - writes to stdout.

  ttgen send --config FILE --dir down|up --iface IF --size 128|512|1400|imix [--rate PPS] [--duration 10s]
             [--method xdp|afpacket] [--cpu N] [--learn] [--json] [--dst-mac MAC] [--repeat 64] [--macs M]
      Send the frames of FILE's APs (down: ESP from every client of every tunnel to the corporate
      host 02:cc:00:00:00:01) or of the corporate host (up: 802.1Q frames to every client) out of IF.
      --size is the inner Ethernet frame length (imix: 7:4:1 of 64/576/1500). --rate 0 is as fast as
      possible; --duration 0 runs until SIGINT. --learn sends one down frame per client (so the DUT
      learns where clients are) and exits. The DUT's MAC is downstream.mac, else --dst-mac.
      --method xdp (BPF_PROG_RUN live frames; the peer of a veth IF needs an XDP program, as tunterm
      attaches) or afpacket (sendmmsg). Prints a final line; --json prints
      {"sent":N,"seconds":S,"pps":P,"gbps":G} instead (gbps of the frames as sent, no FCS).

  ttgen sink --iface IF [--duration 10s] [--json] [--mode auto|native|generic]
      Count and XDP_DROP every frame arriving on IF; print {"received":N,"seconds":S,"pps":P,"bytes":B}
      at the end (--json) or a line. --duration 0 runs until SIGINT and prints a line per second.

Exit status: 0 on success, 1 on a runtime error, 2 on bad usage.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "config":
		return cmdConfig(args[1:], stdout, stderr)
	case "send":
		return cmdSend(args[1:], stdout, stderr)
	case "sink":
		return cmdSink(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "ttgen: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ttgen "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func cmdConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("config", stderr)
	var s traffic.Shape
	fs.IntVar(&s.Tunnels, "tunnels", 0, "number of tunnels (static peers): X1 500, X5 5000, X10 10000")
	fs.IntVar(&s.MACs, "macs", traffic.DefaultMACs, "client MACs per tunnel")
	fs.StringVar(&s.Cipher, "cipher", "aes-gcm-256", "aes-gcm-256 | aes-ctr-256-sha512")
	fs.StringVar(&s.Protocol, "protocol", "ip", "L2TPv3 over ip (IP 115) | udp (UDP 1701)")
	fs.StringVar(&s.DownIf, "down-if", "down0", "downstream.interface")
	fs.StringVar(&s.UpIf, "up-if", "up0", "upstream.interface")
	fs.StringVar(&s.Address, "address", "198.18.0.1/15", "downstream.address (tunnel address/prefix)")
	fs.IntVar(&s.Workers, "workers", 0, "workers (0: auto)")
	fs.IntVar(&s.MTU, "mtu", 1500, "tunnels[].mtu: the largest outer packet tunterm sends")
	out := fs.String("out", "tunterm.yaml", "output file (- for stdout)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ttgen config: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := s.Validate(); err != nil {
		fmt.Fprintf(stderr, "ttgen config: %v\n", err)
		return 2
	}
	w := stdout
	var f *os.File
	if *out != "-" {
		var err error
		if f, err = os.Create(*out); err != nil {
			fmt.Fprintf(stderr, "ttgen config: %v\n", err)
			return 1
		}
		w = f
	}
	err := traffic.WriteConfig(w, s)
	if f != nil {
		if e := f.Close(); err == nil {
			err = e
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "ttgen config: %v\n", err)
		return 1
	}
	if f != nil {
		fmt.Fprintf(stderr, "ttgen config: wrote %s: %d tunnels x %d MACs = %d clients, %s, L2TPv3 over %s\n",
			*out, s.Tunnels, s.MACs, s.Tunnels*s.MACs, s.Cipher, s.Protocol)
	}
	return 0
}

// DefaultLearnRate paces --learn when --rate is 0, so that the DUT's
// receive ring does not overflow and every client is learned.
const DefaultLearnRate = 50000

func cmdSend(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("send", stderr)
	cfgPath := fs.String("config", "", "tunterm configuration written by `ttgen config`")
	dirS := fs.String("dir", "down", "down (AP -> corporate, ESP) | up (corporate -> AP, 802.1Q)")
	iface := fs.String("iface", "", "interface to send on")
	sizeS := fs.String("size", "128", "inner Ethernet frame length: 128 | 512 | 1400 | imix (64..1500)")
	rate := fs.Float64("rate", 0, "frames per second (0: as fast as possible)")
	dur := fs.Duration("duration", 10*time.Second, "how long to send (0: until SIGINT)")
	method := fs.String("method", "xdp", "xdp (BPF_PROG_RUN live frames) | afpacket (sendmmsg)")
	cpu := fs.Int("cpu", -1, "pin the sending thread to this CPU (-1: no)")
	learn := fs.Bool("learn", false, "send one down frame per client MAC, then exit")
	asJSON := fs.Bool("json", false, "print one JSON object instead of the final line")
	dstMACs := fs.String("dst-mac", "", "the DUT's downstream MAC when the config has no downstream.mac")
	repeat := fs.Int("repeat", xmit.DefaultRepeat, "xdp: most frames per BPF_PROG_RUN call")
	macs := fs.Int("macs", 0, "client MACs per tunnel (0: as recorded by ttgen config, else 10)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "ttgen send: "+format+"\n", a...)
		return code
	}
	if fs.NArg() > 0 {
		return fail(2, "unexpected arguments %q", fs.Args())
	}
	if *cfgPath == "" || *iface == "" {
		return fail(2, "--config and --iface are required")
	}
	dir, err := traffic.ParseDir(*dirS)
	if err != nil {
		return fail(2, "--dir: %v", err)
	}
	size, err := traffic.ParseSize(*sizeS)
	if err != nil {
		return fail(2, "--size: %v", err)
	}
	if *method != "xdp" && *method != "afpacket" {
		return fail(2, "--method: %q is not xdp or afpacket", *method)
	}
	if *rate < 0 || *dur < 0 {
		return fail(2, "--rate and --duration must not be negative")
	}
	raw, err := os.ReadFile(*cfgPath)
	if err != nil {
		return fail(2, "%v", err)
	}
	c, err := config.Parse(raw)
	if err != nil {
		return fail(2, "%s: %v", *cfgPath, err)
	}
	o := traffic.Options{Dir: dir, Size: size, MACs: *macs, Learn: *learn}
	if o.MACs == 0 {
		o.MACs = traffic.MACsFromConfig(raw)
	}
	if dir == traffic.Down || *learn {
		switch {
		case c.Downstream.MAC != "":
			o.DstMAC = c.Downstream.HWAddr
		case *dstMACs != "":
			if o.DstMAC, err = traffic.ParseMAC(*dstMACs); err != nil {
				return fail(2, "--dst-mac: %q: %v", *dstMACs, err)
			}
		default:
			return fail(2, "the DUT's downstream MAC is unknown: set downstream.mac in %s or pass --dst-mac", *cfgPath)
		}
	}
	ifi, err := net.InterfaceByName(*iface)
	if err != nil {
		return fail(2, "--iface: %v", err)
	}
	t0 := time.Now()
	set, err := traffic.Build(c, o)
	if err != nil {
		return fail(2, "%v", err)
	}
	what := dir.String()
	if *learn {
		what = "learn (down)"
	}
	fmt.Fprintf(stderr, "ttgen send: %s: %d frames for %d tunnels x %d MACs, inner size %s, up to %d bytes on the wire (built in %v)\n",
		what, set.Len(), len(c.StaticPeers), max(o.MACs, 1), size, set.MaxLen, time.Since(t0).Round(time.Millisecond))
	limit := ifi.MTU + 14
	if set.Tagged {
		limit += 4
	}
	if set.MaxLen > limit {
		return fail(2, "frames of up to %d bytes do not fit %s (MTU %d): raise it, e.g. ip link set %s mtu %d (on both ends)",
			set.MaxLen, *iface, ifi.MTU, *iface, set.MaxLen-14)
	}

	var s xmit.Sender
	if *method == "xdp" {
		s, err = xmit.NewXDP(ifi.Index, set, *repeat)
	} else {
		s, err = xmit.NewAFPacket(ifi.Index)
	}
	if err != nil {
		return fail(1, "%v", err)
	}
	defer s.Close()
	ro := xmit.Options{Rate: *rate, Duration: *dur, CPU: *cpu}
	if *learn {
		ro.Duration, ro.Frames = 0, uint64(set.Len())
		if ro.Rate == 0 {
			ro.Rate = DefaultLearnRate
		}
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	res, err := xmit.Run(ctx, s, set, ro, nil)
	if err != nil {
		fmt.Fprintf(stderr, "ttgen send: %v (after %d frames)\n", err, res.Frames)
		return 1
	}
	if *asJSON {
		b, _ := json.Marshal(map[string]any{"sent": res.Frames, "seconds": round(res.Seconds, 3),
			"pps": round(res.PPS(), 0), "gbps": round(res.Gbps(), 3)})
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		fmt.Fprintf(stdout, "ttgen send: %s on %s via %s: %d frames in %.2f s = %.0f pps, %.3f Gbit/s (frames as sent, no FCS)\n",
			what, *iface, *method, res.Frames, res.Seconds, res.PPS(), res.Gbps())
	}
	return 0
}

func cmdSink(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("sink", stderr)
	iface := fs.String("iface", "", "interface to count and drop on")
	dur := fs.Duration("duration", 10*time.Second, "how long to count (0: until SIGINT, a line per second)")
	asJSON := fs.Bool("json", false, "print JSON objects")
	mode := fs.String("mode", "auto", "XDP attach mode: auto | native | generic")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *iface == "" || *dur < 0 {
		fmt.Fprintln(stderr, "ttgen sink: --iface is required (and no other arguments)")
		return 2
	}
	ifi, err := net.InterfaceByName(*iface)
	if err != nil {
		fmt.Fprintf(stderr, "ttgen sink: --iface: %v\n", err)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	sk, err := sink.Attach(ifi.Index, *mode)
	if err != nil {
		fmt.Fprintf(stderr, "ttgen sink: %v\n", err)
		return 1
	}
	defer sk.Close()
	start := time.Now()
	fmt.Fprintf(stderr, "ttgen sink: counting and dropping every frame on %s (XDP %s)\n", *iface, sk.Mode)
	var deadline <-chan time.Time
	if *dur > 0 {
		deadline = time.After(*dur)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastN uint64
	lastT := start
	emit := func(v map[string]any, line string) {
		if *asJSON {
			b, _ := json.Marshal(v)
			fmt.Fprintf(stdout, "%s\n", b)
		} else {
			fmt.Fprintln(stdout, line)
		}
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-deadline:
			break loop
		case now := <-tick.C:
			if *dur > 0 {
				continue
			}
			n, b, err := sk.Read()
			if err != nil {
				fmt.Fprintf(stderr, "ttgen sink: %v\n", err)
				return 1
			}
			ipps := float64(n-lastN) / now.Sub(lastT).Seconds()
			lastN, lastT = n, now
			s := now.Sub(start).Seconds()
			emit(map[string]any{"received": n, "seconds": round(s, 3), "pps": round(float64(n)/s, 0),
				"bytes": b, "interval_pps": round(ipps, 0)},
				fmt.Sprintf("ttgen sink %s: %.0f pps (total %d frames, %d bytes in %.0f s)", *iface, ipps, n, b, s))
		}
	}
	n, b, err := sk.Read()
	if err != nil {
		fmt.Fprintf(stderr, "ttgen sink: %v\n", err)
		return 1
	}
	s := time.Since(start).Seconds()
	if err := sk.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		fmt.Fprintf(stderr, "ttgen sink: detaching: %v\n", err)
	}
	emit(map[string]any{"received": n, "seconds": round(s, 3), "pps": round(float64(n)/s, 0), "bytes": b},
		fmt.Sprintf("ttgen sink: %s: %d frames, %d bytes in %.2f s = %.0f pps", *iface, n, b, s, float64(n)/s))
	return 0
}

func round(v float64, places int) float64 {
	p := 1.0
	for range places {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}
