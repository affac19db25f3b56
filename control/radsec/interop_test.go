package radsec

// Interop with real peers, in a network namespace of our own (loopback
// only; see testdata/interop/README.md):
//
//	radclient ─UDP─▶ radsecproxy (the AP) ─TLS─▶ tunterm ─UDP─▶ FreeRADIUS primary / secondary
//
// tunterm runs in a helper process (this test binary again, started with
// `ip netns exec`, running TestInteropHelperProcess), so that every socket
// it opens lives in the namespace. The test needs root and Debian's
// freeradius, freeradius-utils and radsecproxy; without them it skips,
// loudly (`make test` installs them).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/vishvananda/netns"

	"github.com/tunterm/tunterm/control/config"
)

const helperEnv = "TUNTERM_RADSEC_INTEROP_CONFIG"

// TestInteropHelperProcess is the tunterm side of TestInteropFreeRADIUS:
// it runs the RadSec proxy and the management server of the configuration
// named by $TUNTERM_RADSEC_INTEROP_CONFIG until SIGTERM.
func TestInteropHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process of TestInteropFreeRADIUS")
	}
	c, err := config.LoadRadSec(path)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	s, err := StartService(c, log)
	if err != nil {
		t.Fatal(err)
	}
	<-ctx.Done()
	s.Close()
}

type interop struct {
	t       *testing.T
	ns, dir string
	fr      map[string]*freeradius
	helper  *exec.Cmd
	hlog    *logBuf
	rsp     *exec.Cmd
	rlog    *logBuf
}

type freeradius struct {
	name, addr, secret, raddb string
	cmd                       *exec.Cmd
	exited                    chan error
	log                       *logBuf
}

// needInterop skips t unless the test can run: root, ip, freeradius,
// radclient, radsecproxy.
func needInterop(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces)")
	}
	for _, b := range []string{"ip", "freeradius", "radclient", "radsecproxy"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if _, err := os.Stat("/etc/freeradius/3.0/radiusd.conf"); err != nil {
		missing = append(missing, "/etc/freeradius/3.0 (Debian's freeradius configuration)")
	}
	if len(missing) > 0 {
		t.Skipf("!!! SKIPPING RADSEC INTEROP TEST: missing %s. Run `make test` (it installs freeradius, "+
			"freeradius-utils and radsecproxy) or apt-get install freeradius freeradius-utils radsecproxy !!!",
			strings.Join(missing, ", "))
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func fill(t *testing.T, tmpl string, data any) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "interop", tmpl))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := template.Must(template.New(tmpl).Parse(string(b))).Execute(&out, data); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// replaceOnce replaces old by new in s, failing when old is not there
// exactly once (Debian's FreeRADIUS configuration changed).
func replaceOnce(t *testing.T, s, old, new, file string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("%s: %q occurs %d times, want 1: FreeRADIUS's default configuration changed", file, old, n)
	}
	return strings.Replace(s, old, new, 1)
}

// removeBlocks removes the top-level "listen {...}" blocks of s that
// match marker.
func removeBlocks(s string, marker *regexp.Regexp) string {
	var out strings.Builder
	for {
		i := strings.Index(s, "\nlisten {")
		if i < 0 {
			out.WriteString(s)
			return out.String()
		}
		depth, j := 0, i+1
		for ; j < len(s); j++ {
			if s[j] == '{' {
				depth++
			} else if s[j] == '}' {
				depth--
				if depth == 0 {
					break
				}
			}
		}
		block := s[i : j+1]
		out.WriteString(s[:i])
		if !marker.MatchString(block) {
			out.WriteString(block)
		}
		s = s[j+1:]
	}
}

const maUpdate = "update reply {\n\t\t\tMessage-Authenticator := 0x00\n\t\t}\n"

// prepare copies Debian's raddb and edits it for one instance (see
// testdata/interop/README.md).
func (f *freeradius) prepare(t *testing.T, dir, source string) {
	f.raddb = filepath.Join(dir, "raddb-"+f.name)
	run(t, "cp", "-a", "/etc/freeradius/3.0", f.raddb)
	edit := func(rel string, fn func(string) string) {
		p := filepath.Join(f.raddb, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fn(string(b))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logdir := filepath.Join(dir, "log-"+f.name)
	rundir := filepath.Join(dir, "run-"+f.name)
	for _, d := range []string{logdir, rundir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	edit("radiusd.conf", func(s string) string {
		s = regexp.MustCompile(`(?m)^(\s*)(user|group) = freerad`).ReplaceAllString(s, "$1#$2 = freerad")
		s = regexp.MustCompile(`(?m)^logdir = .*$`).ReplaceAllString(s, "logdir = "+logdir)
		return regexp.MustCompile(`(?m)^run_dir = .*$`).ReplaceAllString(s, "run_dir = "+rundir)
	})
	edit("sites-available/default", func(s string) string {
		s = removeBlocks(s, regexp.MustCompile(`(?m)^\s*ipv6addr\s*=`))
		s = regexp.MustCompile(`(?m)^(\s*)ipaddr = \*`).ReplaceAllString(s, "${1}ipaddr = "+f.addr)
		s = replaceOnce(t, s, "\npost-auth {\n", "\npost-auth {\n\t"+maUpdate, "sites-available/default")
		s = replaceOnce(t, s, "\tPost-Auth-Type REJECT {\n", "\tPost-Auth-Type REJECT {\n\t\t"+maUpdate, "sites-available/default")
		return replaceOnce(t, s, "#\tAutz-Type Status-Server {\n#\n#\t}", "\tAutz-Type Status-Server {\n\t\t"+maUpdate+"\t\tok\n\t}",
			"sites-available/default")
	})
	os.Remove(filepath.Join(f.raddb, "sites-enabled", "inner-tunnel"))
	data := map[string]string{"Name": f.name, "Source": source, "Secret": f.secret}
	edit("mods-config/files/authorize", func(s string) string { return fill(t, "authorize.tmpl", data) + s })
	edit("clients.conf", func(s string) string { return s + fill(t, "clients.conf.tmpl", data) })
}

func (x *interop) start(f *freeradius) {
	t := x.t
	t.Helper()
	f.log = &logBuf{}
	// ip netns exec execs freeradius: cmd.Process is freeradius itself.
	f.cmd = exec.Command("ip", "netns", "exec", x.ns, "freeradius", "-f", "-xx", "-l", "stdout", "-d", f.raddb)
	f.cmd.Stdout, f.cmd.Stderr = f.log, f.log
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.exited = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(f.cmd, f.exited)
	t.Cleanup(func() { x.stop(f) })
	deadline := time.After(20 * time.Second)
	for !strings.Contains(f.log.String(), "Ready to process requests") {
		select {
		case err := <-f.exited:
			f.cmd = nil
			t.Fatalf("freeradius %s exited: %v\n%s", f.name, err, tail(f.log.String(), 30))
		case <-deadline:
			t.Fatalf("freeradius %s not ready after 20s\n%s", f.name, tail(f.log.String(), 30))
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Logf("freeradius %s ready: %s", f.name, strings.Join(regexp.MustCompile(`(?m)^Listening on .*$`).FindAllString(f.log.String(), -1), "; "))
}

func (x *interop) stop(f *freeradius) {
	if f.cmd == nil {
		return
	}
	f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.exited:
	case <-time.After(5 * time.Second):
		f.cmd.Process.Kill()
		<-f.exited
	}
	f.cmd = nil
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// get fetches a management URL inside the namespace: the socket is made on
// a thread switched into it.
func (x *interop) get(path string) ([]byte, error) {
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer orig.Close()
		ns, err := netns.GetFromName(x.ns)
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread() // else the thread dies with the goroutine
		}
		return c, err
	}}
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := cl.Get("http://127.0.0.1:9110" + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b, err
}

func (x *interop) report() *Report {
	b, err := x.get("/debug/radsec?format=json")
	if err != nil {
		return nil
	}
	var r Report
	if json.Unmarshal(b, &r) != nil {
		return nil
	}
	return &r
}

func (r *Report) server(group, name string) *ServerReport {
	if r == nil {
		return nil
	}
	for _, g := range r.Groups {
		if g.Group != group {
			continue
		}
		for i := range g.Servers {
			if g.Servers[i].Name == name {
				return &g.Servers[i]
			}
		}
	}
	return nil
}

func (x *interop) waitState(group, name, state string) {
	x.t.Helper()
	waitFor(x.t, 20*time.Second, fmt.Sprintf("%s server %s %s", group, name, state), func() bool {
		s := x.report().server(group, name)
		return s != nil && s.State == state
	})
}

// radclient sends one request through radsecproxy and returns its output.
func (x *interop) radclient(kind, attrs string, timeout int) string {
	cmd := exec.Command("ip", "netns", "exec", x.ns, "radclient", "-x", "-r", "1", "-t", fmt.Sprint(timeout),
		"127.0.0.1:11812", kind, "testing123")
	cmd.Stdin = strings.NewReader(attrs + "\n")
	out, _ := cmd.CombinedOutput() // non-zero on Access-Reject: the output says what came
	return string(out)
}

func (x *interop) expect(kind, attrs, want, wantReply string) {
	x.t.Helper()
	var out string
	for range 3 { // radsecproxy may still be connecting on the first try
		out = x.radclient(kind, attrs, 3)
		if strings.Contains(out, "Received "+want) {
			break
		}
	}
	if !strings.Contains(out, "Received "+want) {
		x.t.Fatalf("radclient %s %q: no %s\n%s\n--- tunterm:\n%s\n--- radsecproxy:\n%s", kind, attrs, want, out,
			tail(x.hlog.String(), 20), tail(x.rlog.String(), 20))
	}
	if wantReply != "" && !strings.Contains(out, `Reply-Message = "`+wantReply+`"`) {
		x.t.Fatalf("radclient %s %q: %s without Reply-Message %q\n%s", kind, attrs, want, wantReply, out)
	}
}

func TestInteropFreeRADIUS(t *testing.T) {
	needInterop(t)
	x := &interop{t: t, ns: fmt.Sprintf("tt-rad-%d", os.Getpid()), fr: map[string]*freeradius{}}
	x.dir = t.TempDir()
	os.Chmod(x.dir, 0o755)
	exec.Command("ip", "netns", "del", x.ns).Run()
	run(t, "ip", "netns", "add", x.ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", x.ns).Run() })
	run(t, "ip", "-n", x.ns, "link", "set", "lo", "up")

	// PKI.
	k := newPKI(t)
	apCert, apKey, err := k.ap.WriteFiles(x.dir, "ap")
	if err != nil {
		t.Fatal(err)
	}
	serverCA, err := k.serverCA.WriteFile(x.dir, "server-ca")
	if err != nil {
		t.Fatal(err)
	}

	// Two FreeRADIUS instances.
	const source = "127.0.0.10"
	for _, f := range []*freeradius{{name: "primary", addr: "127.0.0.2", secret: "prim-s3cret"},
		{name: "secondary", addr: "127.0.0.3", secret: "sec-s3cret"}} {
		f.prepare(t, x.dir, source)
		x.fr[f.name] = f
		x.start(f)
	}

	// tunterm.
	cfg := fmt.Sprintf(`radsec:
  listen: 127.0.0.1:2083
  cert: %q
  key: %q
  ca: [%q]
  source: %s
  auth_servers:
    - {name: primary, address: 127.0.0.2:1812, secret: prim-s3cret}
    - {name: secondary, address: 127.0.0.3, secret: sec-s3cret}
  acct_servers:
    - {name: primary-acct, address: 127.0.0.2:1813, secret: prim-s3cret}
    - {name: secondary-acct, address: 127.0.0.3:1813, secret: sec-s3cret}
  timeout: 1500ms   # FreeRADIUS holds Access-Rejects back for reject_delay (1s)
  retries: 1
  status_interval: 300ms
management: {listen: 127.0.0.1:9110}
`, k.cert, k.key, k.caFile, source)
	cfgPath := filepath.Join(x.dir, "tunterm.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	x.hlog = &logBuf{}
	x.helper = exec.Command("ip", "netns", "exec", x.ns, os.Args[0], "-test.run=^TestInteropHelperProcess$", "-test.v")
	x.helper.Env = append(os.Environ(), helperEnv+"="+cfgPath)
	x.helper.Stdout, x.helper.Stderr = x.hlog, x.hlog
	if err := x.helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// ip netns exec execs the helper: the signal reaches it.
		x.helper.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { x.helper.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			x.helper.Process.Kill()
		}
		if t.Failed() {
			t.Logf("tunterm log:\n%s", tail(x.hlog.String(), 60))
		}
	})
	x.waitState("auth", "primary", "up")
	x.waitState("auth", "secondary", "up")

	// radsecproxy as the AP.
	rsp := fill(t, "radsecproxy.conf.tmpl", map[string]any{"RSPPort": 11812, "Dir": x.dir, "ServerCA": serverCA,
		"APCert": apCert, "APKey": apKey, "RadSecPort": 2083})
	rspPath := filepath.Join(x.dir, "radsecproxy.conf")
	if err := os.WriteFile(rspPath, []byte(rsp), 0o644); err != nil {
		t.Fatal(err)
	}
	x.rlog = &logBuf{}
	x.rsp = exec.Command("ip", "netns", "exec", x.ns, "radsecproxy", "-f", "-c", rspPath)
	x.rsp.Stdout, x.rsp.Stderr = x.rlog, x.rlog
	if err := x.rsp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		x.rsp.Process.Signal(syscall.SIGTERM)
		x.rsp.Wait()
		if t.Failed() {
			t.Logf("radsecproxy log:\n%s", tail(x.rlog.String(), 40))
			for _, f := range x.fr {
				t.Logf("freeradius %s log:\n%s", f.name, tail(f.log.String(), 40))
			}
		}
	})

	const (
		accept  = "User-Name=bob,User-Password=hello,NAS-IP-Address=127.0.0.1,Message-Authenticator=0x00"
		realm   = "User-Name=bob@tt.test,User-Password=hello,NAS-IP-Address=127.0.0.1,Message-Authenticator=0x00"
		reject  = "User-Name=bob,User-Password=wrong,NAS-IP-Address=127.0.0.1,Message-Authenticator=0x00"
		acct    = "User-Name=bob,Acct-Status-Type=Start,Acct-Session-Id=tt-1,NAS-IP-Address=127.0.0.1"
		noMA    = "User-Name=bob,User-Password=hello,NAS-IP-Address=127.0.0.1"
		primary = "Hello from primary"
	)
	t.Run("Access-Accept", func(t *testing.T) { x.expect("auth", accept, "Access-Accept", primary) })
	t.Run("Access-Accept, realm", func(t *testing.T) { x.expect("auth", realm, "Access-Accept", primary) })
	t.Run("Access-Reject", func(t *testing.T) { x.expect("auth", reject, "Access-Reject", "") })
	t.Run("Accounting-Response", func(t *testing.T) { x.expect("acct", acct, "Accounting-Response", "") })
	t.Run("source address", func(t *testing.T) {
		if !regexp.MustCompile(`Received Access-Request Id \d+ from 127\.0\.0\.10:\d+ to 127\.0\.0\.2:1812`).MatchString(x.fr["primary"].log.String()) {
			t.Errorf("the primary did not see requests from radsec.source 127.0.0.10:\n%s", tail(x.fr["primary"].log.String(), 30))
		}
	})
	t.Run("Access-Request without Message-Authenticator is dropped", func(t *testing.T) {
		before := x.report()
		out := x.radclient("auth", noMA, 1)
		if strings.Contains(out, "Received Access-") {
			t.Fatalf("answered:\n%s", out)
		}
		waitFor(t, 5*time.Second, "drop counted", func() bool {
			r := x.report()
			return r != nil && dropCount(r, "ap", "missing_message_authenticator") > dropCount(before, "ap", "missing_message_authenticator")
		})
	})

	t.Run("failover to the secondary", func(t *testing.T) {
		x.stop(x.fr["primary"])
		x.waitState("auth", "primary", "down")
		x.waitState("acct", "primary-acct", "down")
		x.expect("auth", accept, "Access-Accept", "Hello from secondary")
		x.expect("auth", reject, "Access-Reject", "")
		x.expect("acct", acct, "Accounting-Response", "")
		r := x.report()
		if s := r.server("acct", "secondary-acct"); s == nil || s.Responses["accounting_response"] == 0 {
			t.Errorf("the secondary's accounting port answered nothing: %+v", s)
		}
	})
	t.Run("failback to the primary", func(t *testing.T) {
		x.start(x.fr["primary"])
		x.waitState("auth", "primary", "up")
		x.waitState("acct", "primary-acct", "up")
		x.expect("auth", accept, "Access-Accept", primary)
		// A group counts the failback after the server's state flipped,
		// which is what waitState and the request go by.
		var r *Report
		settle(5*time.Second, func() bool {
			if r = x.report(); r == nil {
				return false
			}
			for _, g := range r.Groups {
				if g.Failovers < 2 {
					return false
				}
			}
			return true
		})
		if r == nil {
			t.Fatal("no /debug/radsec report")
		}
		for _, g := range r.Groups {
			if g.Failovers != 2 {
				t.Errorf("%s failovers = %d, want 2 (failover, failback)", g.Group, g.Failovers)
			}
		}
	})
	t.Run("metrics", func(t *testing.T) {
		b, err := x.get("/metrics")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`tunterm_radsec_connections 1`, `tunterm_radsec_server_up{group="auth",server="primary"} 1`,
			`tunterm_radsec_failovers_total{group="auth"} 2`} {
			if !strings.Contains(string(b), want+"\n") {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})
	if r := x.report(); r != nil {
		t.Logf("from APs %v, to APs %v, dropped %+v", r.APRequests, r.APResponses, r.Dropped)
	}
}

func dropCount(r *Report, from, reason string) uint64 {
	if r == nil {
		return 0
	}
	for _, d := range r.Dropped {
		if d.From == from && d.Reason == reason {
			return d.Count
		}
	}
	return 0
}
