package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/tunterm/tunterm/control/radsec/radsectest"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type radsecFiles struct {
	dir, cert, key, ca string
	serverCA           *radsectest.CA
	ap                 *radsectest.Leaf
}

func writeRadSecFiles(t *testing.T) *radsecFiles {
	t.Helper()
	f := &radsecFiles{dir: t.TempDir()}
	var err error
	if f.serverCA, err = radsectest.NewCA("server CA"); err != nil {
		t.Fatal(err)
	}
	apCA, err := radsectest.NewCA("AP CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := f.serverCA.Issue("tunterm", radsectest.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if f.ap, err = apCA.Issue("ap1", radsectest.IssueOptions{}); err != nil {
		t.Fatal(err)
	}
	if f.cert, f.key, err = srv.WriteFiles(f.dir, "radsec"); err != nil {
		t.Fatal(err)
	}
	if f.ca, err = apCA.WriteFile(f.dir, "ap-ca"); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestRadSecCommandUsage(t *testing.T) {
	f := writeRadSecFiles(t)
	bad := filepath.Join(f.dir, "bad.yaml")
	os.WriteFile(bad, []byte("radsec: {cert: x, key: y, ca: z, auth_servers: [{address: 10.0.0.5}]}\n"), 0o644)
	noRadSec := filepath.Join(f.dir, "none.yaml")
	os.WriteFile(noRadSec, []byte("management: {listen: 127.0.0.1:9110}\n"), 0o644)
	missing := filepath.Join(f.dir, "missing.yaml")
	os.WriteFile(missing, []byte("radsec: {cert: /nonexistent.pem, key: y, ca: z, listen: 127.0.0.1:0, auth_servers: [{address: 127.0.0.1, secret: s}]}\n"), 0o644)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no config", []string{"radsec"}, 2, "--config is required"},
		{"bad config", []string{"radsec", "--config", bad}, 2, "radsec.auth_servers[0].secret: required"},
		{"no radsec section", []string{"radsec", "--config", noRadSec}, 2, "radsec: required by `tunterm radsec`"},
		{"certificate missing", []string{"radsec", "--config", missing}, 1, "radsec.cert/radsec.key"},
		{"help mentions it", []string{"help"}, 0, "tunterm radsec --config FILE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb syncBuf
			code := run(tc.args, &out, &errb)
			if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.want) {
				t.Errorf("run(%q) = %d, %q %q; want %d and %q", tc.args, code, out.String(), errb.String(), tc.code, tc.want)
			}
		})
	}
}

func TestCheckRadSec(t *testing.T) {
	f := writeRadSecFiles(t)
	demo, err := os.ReadFile("../../testdata/demo/tunterm.yaml")
	if err != nil {
		t.Skipf("demo config: %v", err)
	}
	cfg := filepath.Join(f.dir, "full.yaml")
	os.WriteFile(cfg, append(demo, fmt.Sprintf("radsec: {cert: %q, key: %q, ca: %q, auth_servers: [{address: 10.0.0.5, secret: s}]}\n",
		f.cert, f.key, f.ca)...), 0o644)
	var out, errb syncBuf
	if code := run([]string{"check", "--config", cfg}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), `radsec: listen 0.0.0.0:2083, certificate "CN=tunterm"`) {
		t.Errorf("check = %d, %q %q", code, out.String(), errb.String())
	}
	os.WriteFile(cfg, append(demo, fmt.Sprintf("radsec: {cert: %q, key: %q, ca: %q, auth_servers: [{address: 10.0.0.5, secret: s}]}\n",
		f.cert, f.cert, f.ca)...), 0o644)
	if code := run([]string{"check", "--config", cfg}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "radsec.cert/radsec.key") {
		t.Errorf("check with the certificate as key = %d, %q", code, errb.String())
	}
}

// tunterm radsec, live: an AP is served, the management server shows it,
// SIGHUP reloads, SIGTERM stops.
func TestRadSecCommand(t *testing.T) {
	f := writeRadSecFiles(t)
	servers := make([]*radsectest.FakeServer, 2)
	for i := range servers {
		s, err := radsectest.NewFakeServer("127.0.0.1:0", "s3cret", fmt.Sprintf("rad%d", i), false)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		servers[i] = s
	}
	port, mport := freePort(t), freePort(t)
	write := func(first, second int) string {
		return fmt.Sprintf(`radsec:
  listen: 127.0.0.1:%d
  cert: %q
  key: %q
  ca: [%q]
  auth_servers: [{name: rad%d, address: %s, secret: s3cret}, {name: rad%d, address: %s, secret: s3cret}]
management: {listen: 127.0.0.1:%d}
`, port, f.cert, f.key, f.ca, first, servers[first].Addr(), second, servers[second].Addr(), mport)
	}
	cfg := filepath.Join(f.dir, "tunterm.yaml")
	os.WriteFile(cfg, []byte(write(0, 1)), 0o644)
	var out, errb syncBuf
	done := make(chan int, 1)
	go func() { done <- run([]string{"radsec", "--config", cfg}, &out, &errb) }()

	get := func(path string) string {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", mport, path))
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(get("/debug/radsec"), "RadSec proxy") {
		if time.Now().After(deadline) {
			t.Fatalf("management server not up:\n%s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	accept := func(want string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := radsectest.Dial(ctx, fmt.Sprintf("127.0.0.1:%d", port), radsectest.TLSConfig(f.ap, f.serverCA), "radsec")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		resp, err := c.Exchange(ctx, radsectest.AccessRequest("radsec", "bob", radsectest.Password), true)
		if err != nil || resp.Code != radius.CodeAccessAccept || rfc2865.ReplyMessage_GetString(resp) != want {
			t.Fatalf("Access-Request = %v, %v; want Access-Accept from %s\n%s", resp, err, want, errb.String())
		}
	}
	accept("rad0")
	if m := get("/metrics"); !strings.Contains(m, `tunterm_radsec_server_responses_total{group="auth",server="rad0",type="access_accept"} 1`) {
		t.Errorf("/metrics:\n%s", m)
	}
	if j := get("/debug/radsec?format=json"); !strings.Contains(j, `"active": "rad0"`) {
		t.Errorf("/debug/radsec JSON:\n%s", j)
	}

	os.WriteFile(cfg, []byte(write(1, 0)), 0o644)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	deadline = time.Now().Add(5 * time.Second)
	for !strings.Contains(errb.String(), "configuration reloaded") {
		if time.Now().After(deadline) {
			t.Fatalf("no reload:\n%s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	accept("rad1")

	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after SIGTERM:\n%s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tunterm radsec did not stop on SIGTERM")
	}
}
