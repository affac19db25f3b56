package daemon_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/tunterm/tunterm/control/radsec/radsectest"
)

// TestDaemonRadSec: `tunterm run` with a radsec section also runs the
// RadSec proxy and the management server; SIGHUP reloads them.
func TestDaemonRadSec(t *testing.T) {
	l := newLab(t, "veth")
	sh(t, "ip", "-n", l.dut, "link", "set", "lo", "up") // RADIUS servers, RadSec and management on loopback
	dir := t.TempDir()
	serverCA, err := radsectest.NewCA("server CA")
	if err != nil {
		t.Fatal(err)
	}
	apCA, _ := radsectest.NewCA("AP CA")
	srv, _ := serverCA.Issue("tunterm", radsectest.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	ap, _ := apCA.Issue("ap1", radsectest.IssueOptions{})
	cert, key, _ := srv.WriteFiles(dir, "radsec")
	ca, _ := apCA.WriteFile(dir, "ap-ca")

	// Two RADIUS servers inside tunterm's namespace.
	var fakes [2]*radsectest.FakeServer
	inNS(t, l.dut, func() {
		for i := range fakes {
			if fakes[i], err = radsectest.NewFakeServer("127.0.0.1:0", "s3cret", fmt.Sprintf("rad%d", i), false); err != nil {
				t.Error(err)
				return
			}
		}
	})
	if t.Failed() {
		return
	}
	for _, f := range fakes {
		defer f.Close()
	}
	section := func(a, b int) string {
		return fmt.Sprintf("workers: 1\nradsec: {listen: 127.0.0.1:2083, cert: %q, key: %q, ca: %q, "+
			"auth_servers: [{name: rad%d, address: %s, secret: s3cret}, {name: rad%d, address: %s, secret: s3cret}]}\n"+
			"management: {listen: 127.0.0.1:9110}\n", cert, key, ca, a, fakes[a].Addr(), b, fakes[b].Addr())
	}
	l.writeConfig(section(0, 1))
	l.start()
	l.waitLog("radsec: listening", 5*time.Second)
	l.waitLog("management server listening", 5*time.Second)

	dial := func(network, addr string) (c net.Conn, err error) {
		inNS(t, l.dut, func() { c, err = net.DialTimeout(network, addr, 5*time.Second) })
		return c, err
	}
	accept := func(want string) {
		t.Helper()
		raw, err := dial("tcp", "127.0.0.1:2083")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tc := tls.Client(raw, radsectest.TLSConfig(ap, serverCA))
		if err := tc.HandshakeContext(ctx); err != nil {
			t.Fatal(err)
		}
		c := radsectest.NewClient(tc, "radsec")
		defer c.Close()
		resp, err := c.Exchange(ctx, radsectest.AccessRequest("radsec", "bob", radsectest.Password), true)
		if err != nil || resp.Code != radius.CodeAccessAccept || rfc2865.ReplyMessage_GetString(resp) != want {
			t.Fatalf("Access-Request = %v, %v; want Access-Accept from %s\n%s", resp, err, want, l.logText())
		}
	}
	get := func(path string) string {
		t.Helper()
		cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext: func(_ context.Context, network, addr string) (net.Conn, error) { return dial(network, addr) }}}
		resp, err := cl.Get("http://127.0.0.1:9110" + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	accept("rad0")
	if txt := get("/debug/radsec"); !strings.Contains(txt, "auth servers: active rad0") {
		t.Errorf("/debug/radsec:\n%s", txt)
	}
	if m := get("/metrics"); !strings.Contains(m, `tunterm_radsec_server_responses_total{group="auth",server="rad0",type="access_accept"} 1`) {
		t.Errorf("/metrics lacks rad0's Access-Accept:\n%s", m)
	}

	l.writeConfig(section(1, 0))
	l.signal(syscall.SIGHUP)
	l.waitLog("radsec: configuration reloaded", 5*time.Second)
	accept("rad1")

	if err := l.stop(syscall.SIGTERM); err != nil {
		t.Errorf("tunterm exited with %v after SIGTERM\n%s", err, l.logText())
	}
}
