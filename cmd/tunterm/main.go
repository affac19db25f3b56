// Command tunterm is the tunnel terminator: it bridges Ethernet frames that
// remote access points send through IPsec-protected L2TPv3 tunnels onto a
// corporate VLAN trunk, and back.
//
// This file is wiring only: flags, subcommands, exit codes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tunterm/tunterm/control/config"
	"github.com/tunterm/tunterm/control/daemon"
	"github.com/tunterm/tunterm/control/programmer"
	"github.com/tunterm/tunterm/control/radsec"
	"github.com/tunterm/tunterm/control/replay"
	"github.com/tunterm/tunterm/dataplane/bridge"
	"github.com/tunterm/tunterm/dataplane/table"
)

const usage = `tunterm — IPsec/L2TPv3 tunnel terminator for remote Wi-Fi APs

Usage:
  tunterm run --config FILE [--stats 10s]
      Run the live dataplane: attach the XDP steering programs to
      downstream.interface and upstream.interface, open AF_XDP sockets
      (AF_PACKET when XDP cannot attach and ports.driver is auto), and bridge
      until SIGTERM or SIGINT, which detach everything. SIGHUP reloads the
      configuration without dropping established tunnels or their counters.
      Needs root (or CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_IPC_LOCK).

  tunterm replay --config FILE --downstream-in A.pcap [--upstream-in B.pcap]
                 [--upstream-out C.pcap] [--downstream-out D.pcap] [--drops E.pcapng] [-v]
      Run the dataplane offline on captures: frames from the APs' side
      (downstream) and from the corporate trunk (upstream) are processed in
      timestamp order by the same pipeline code as the daemon; what each port
      would transmit is written to the -out files, every frame that is not
      forwarded to --drops (with .pcapng, each frame sits on an interface named
      direction:reason). Prints counters and every drop reason seen.

  tunterm radsec --config FILE
      Run the RadSec proxy alone, without the dataplane: RADIUS over TLS
      (RFC 6614) from the APs on radsec.listen (TCP 2083), RADIUS over UDP to
      radsec.auth_servers and radsec.acct_servers, and the management server
      (management.listen: /metrics, /debug/radsec). Only the radsec and
      management sections are checked. SIGHUP reloads certificates and
      servers; SIGTERM or SIGINT stop. See docs/radsec.md. (tunterm run also
      runs the proxy when the file has a radsec section.)

  tunterm check --config FILE
      Validate a configuration file and print what it sets up.

  tunterm help
      This text. See docs/ for the configuration reference and drop reasons.

Exit status: 0 on success, 1 on a runtime error, 2 on bad usage or config.
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
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "replay":
		return cmdReplay(args[1:], stdout, stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "radsec":
		return cmdRadSec(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "tunterm: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tunterm "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func cmdReplay(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("replay", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	var o replay.Options
	fs.StringVar(&o.DownstreamIn, "downstream-in", "", "capture of frames arriving from the APs' side")
	fs.StringVar(&o.UpstreamIn, "upstream-in", "", "capture of frames arriving from the corporate trunk")
	fs.StringVar(&o.UpstreamOut, "upstream-out", "", "write frames sent to the corporate trunk here")
	fs.StringVar(&o.DownstreamOut, "downstream-out", "", "write frames sent towards the APs here")
	fs.StringVar(&o.Drops, "drops", "", "write frames that were not forwarded here (.pcapng names the reason)")
	fs.BoolVar(&o.Verbose, "v", false, "print the fate of every input frame")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" || (o.DownstreamIn == "" && o.UpstreamIn == "") {
		fmt.Fprintln(stderr, "tunterm replay: --config and at least one of --downstream-in/--upstream-in are required")
		fs.Usage()
		return 2
	}
	c, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "tunterm replay: %v\n", err)
		return 2
	}
	o.Config, o.Out = c, stdout
	res, err := replay.Run(o)
	if err != nil {
		fmt.Fprintf(stderr, "tunterm replay: %v\n", err)
		if errors.Is(err, os.ErrNotExist) {
			return 2
		}
		return 1
	}
	res.Print(stdout)
	return 0
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "tunterm check: --config is required")
		return 2
	}
	c, err := config.Load(*cfgPath)
	if err == nil {
		var t *table.Tables
		t, err = programmer.New(&table.Store{}, bridge.New(c.Bridge.FDBSize)).Apply(c)
		if err == nil && c.RadSec != nil {
			var line string
			if line, err = radsec.Check(c.RadSec); err == nil {
				fmt.Fprintf(stdout, "%s: radsec: %s\n", *cfgPath, line)
			}
		}
		if err == nil {
			fmt.Fprintf(stdout, "%s: ok: tunnel address %s, %d tunnels, %d peers, %d sessions, %d inbound SAs\n",
				*cfgPath, t.Local.Addr, len(t.Tunnels), len(t.Peers), len(t.Sessions), len(t.InSA))
			return 0
		}
	}
	fmt.Fprintf(stderr, "tunterm check: %v\n", err)
	return 2
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML)")
	every := fs.Duration("stats", 10*time.Second, "log a counters line this often (0: never)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "tunterm run: --config is required")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	err := daemon.Run(ctx, daemon.Options{ConfigPath: *cfgPath, StatsEvery: *every, Log: log}, reload)
	if err != nil {
		log.Error("tunterm run failed", "err", err)
		return 1
	}
	return 0
}

// cmdRadSec runs the RadSec proxy and the management server alone.
func cmdRadSec(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("radsec", stderr)
	cfgPath := fs.String("config", "", "configuration file (YAML) with a radsec section")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cfgPath == "" {
		fmt.Fprintln(stderr, "tunterm radsec: --config is required")
		return 2
	}
	c, err := config.LoadRadSec(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "tunterm radsec: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	svc, err := radsec.StartService(c, log)
	if err != nil {
		log.Error("tunterm radsec failed", "err", err)
		return 1
	}
	defer svc.Close()
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping")
			return 0
		case <-hup:
			nc, err := config.LoadRadSec(*cfgPath)
			if err != nil {
				log.Error("reload failed; keeping the running configuration", "err", err)
				continue
			}
			svc.Reload(nc)
		}
	}
}
