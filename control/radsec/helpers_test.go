package radsec

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/tunterm/tunterm/control/api"
	"github.com/tunterm/tunterm/control/config"
	"github.com/tunterm/tunterm/control/radsec/radsectest"
)

// pki is a throw-away PKI: our CA and server certificate, the APs' CA and
// an AP certificate, and a stranger CA with its own AP.
type pki struct {
	dir                 string
	serverCA, apCA      *radsectest.CA
	otherCA             *radsectest.CA
	server, ap, otherAP *radsectest.Leaf
	cert, key, caFile   string
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	k := &pki{dir: t.TempDir()}
	var err error
	must := func(e error) {
		if e != nil {
			t.Fatal(e)
		}
	}
	k.serverCA, err = radsectest.NewCA("tunterm test server CA")
	must(err)
	k.apCA, err = radsectest.NewCA("tunterm test AP CA")
	must(err)
	k.otherCA, err = radsectest.NewCA("somebody else's CA")
	must(err)
	k.server, err = k.serverCA.Issue("radsec.tunterm.test", radsectest.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNS: []string{"localhost"}})
	must(err)
	k.ap, err = k.apCA.Issue("ap-00:11:22:33:44:55", radsectest.IssueOptions{})
	must(err)
	k.otherAP, err = k.otherCA.Issue("ap-stranger", radsectest.IssueOptions{})
	must(err)
	k.cert, k.key, err = k.server.WriteFiles(k.dir, "radsec")
	must(err)
	k.caFile, err = k.apCA.WriteFile(k.dir, "ap-ca")
	must(err)
	return k
}

// apTLS is the TLS configuration of an AP presenting leaf.
func (k *pki) apTLS(leaf *radsectest.Leaf) *tls.Config { return radsectest.TLSConfig(leaf, k.serverCA) }

// logBuf collects log lines (safe for concurrent use).
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// rig is a proxy with fake servers behind it.
type rig struct {
	t    testing.TB
	pki  *pki
	auth []*radsectest.FakeServer
	acct []*radsectest.FakeServer
	p    *Proxy
	rc   *config.RadSec
	log  *logBuf
	addr string
	yaml string // the configuration it was made from
}

type rigOptions struct {
	nAuth, nAcct int
	yaml         string // extra radsec keys, indented by two spaces
	serverYAML   string // extra keys for every server, like ", require_message_authenticator: false"
	pki          *pki
}

func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	if o.nAuth == 0 {
		o.nAuth = 1
	}
	r := &rig{t: t, pki: o.pki, log: &logBuf{}}
	if r.pki == nil {
		r.pki = newPKI(t)
	}
	var auth, acct []string
	for i := range o.nAuth {
		f, err := radsectest.NewFakeServer("127.0.0.1:0", fmt.Sprintf("auth-secret-%d", i), fmt.Sprintf("auth%d", i), false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Close)
		r.auth = append(r.auth, f)
		auth = append(auth, fmt.Sprintf("{name: auth%d, address: %s, secret: auth-secret-%d%s}", i, f.Addr(), i, o.serverYAML))
	}
	for i := range o.nAcct {
		f, err := radsectest.NewFakeServer("127.0.0.1:0", fmt.Sprintf("acct-secret-%d", i), fmt.Sprintf("acct%d", i), true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Close)
		r.acct = append(r.acct, f)
		acct = append(acct, fmt.Sprintf("{name: acct%d, address: %s, secret: acct-secret-%d%s}", i, f.Addr(), i, o.serverYAML))
	}
	y := fmt.Sprintf("radsec:\n  listen: 127.0.0.1:0\n  cert: %q\n  key: %q\n  ca: [%q]\n  auth_servers: [%s]\n",
		r.pki.cert, r.pki.key, r.pki.caFile, strings.Join(auth, ", "))
	if len(acct) > 0 {
		y += fmt.Sprintf("  acct_servers: [%s]\n", strings.Join(acct, ", "))
	}
	for _, d := range []string{"timeout: 200ms", "retries: 1", "status_interval: 100ms"} {
		if !strings.Contains(o.yaml, strings.SplitN(d, ":", 2)[0]+":") {
			y += "  " + d + "\n"
		}
	}
	y += o.yaml
	c, err := config.ParseRadSec([]byte(y))
	if err != nil {
		t.Fatalf("ParseRadSec(%s) = %v", y, err)
	}
	r.rc, r.yaml = c.RadSec, y
	log := slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.p, err = New(r.rc, log, Options{LogEvery: time.Nanosecond})
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	if err := r.p.Start(); err != nil {
		t.Fatalf("Start = %v", err)
	}
	t.Cleanup(func() {
		r.p.Close()
		if t.Failed() {
			t.Logf("proxy log:\n%s", r.log.String())
		}
	})
	r.addr = r.p.Addr().String()
	return r
}

// dial connects an AP with the good certificate.
func (r *rig) dial(t testing.TB) *radsectest.Client {
	t.Helper()
	return r.dialWith(t, r.pki.apTLS(r.pki.ap))
}

func (r *rig) dialWith(t testing.TB, cfg *tls.Config) *radsectest.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := radsectest.Dial(ctx, r.addr, cfg, "radsec")
	if err != nil {
		t.Fatalf("Dial(%s) = %v", r.addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends p and waits up to 5s.
func exchange(t testing.TB, c *radsectest.Client, p *radius.Packet) (*radius.Packet, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Exchange(ctx, p, true)
}

func mustAccept(t testing.TB, c *radsectest.Client, user, wantReply string) *radius.Packet {
	t.Helper()
	resp, err := exchange(t, c, radsectest.AccessRequest("radsec", user, radsectest.Password))
	if err != nil {
		t.Fatalf("Access-Request %s: %v", user, err)
	}
	if resp.Code != radius.CodeAccessAccept {
		t.Fatalf("Access-Request %s = %v, want Access-Accept", user, resp.Code)
	}
	if got := rfc2865.ReplyMessage_GetString(resp); wantReply != "" && got != wantReply {
		t.Fatalf("Access-Accept for %s from %q, want from %q", user, got, wantReply)
	}
	return resp
}

// waitFor polls cond every 10ms for up to d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settle polls cond every 10ms for up to d without failing: for what the
// proxy does after the event a test waited for (healthChanged counts and
// logs a failover after the server's state flipped; a drop is counted
// before it is logged), which the caller then checks exactly.
func settle(d time.Duration, cond func() bool) {
	for deadline := time.Now().Add(d); !cond() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}

// metrics scrapes the proxy's collector.
func (r *rig) metrics() string {
	var m api.Metrics
	r.p.Collect(&m)
	var b bytes.Buffer
	m.WriteTo(&b)
	return b.String()
}

// metric returns the value of the sample line starting with prefix
// (name{labels}), or -1.
func metricValue(text, series string) float64 {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, series+" ") {
			var v float64
			fmt.Sscan(strings.TrimPrefix(l, series+" "), &v)
			return v
		}
	}
	return -1
}

func (r *rig) drops(d drop) uint64       { return r.p.st.drops[d].Load() }
func (r *rig) rejects(why reject) uint64 { return r.p.st.rejects[why].Load() }
