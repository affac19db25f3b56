package radsec

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/tunterm/tunterm/control/radsec/radsectest"
)

// Each bad handshake is refused, counted under its reason, logged with the
// peer address, and the good AP connected at the same time is served.
func TestBadHandshakes(t *testing.T) {
	k := newPKI(t)
	expiredAP, err := k.apCA.Issue("ap-expired", radsectest.IssueOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	serverOnly, err := k.apCA.Issue("ap-server-usage", radsectest.IssueOptions{Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{pki: k, yaml: "  handshake_timeout: 300ms\n"})
	good := r.dial(t)
	tests := []struct {
		name string
		why  reject
		do   func(t *testing.T)
	}{
		{"client certificate from another CA", rejectUnknownCA, func(t *testing.T) { tlsDialFails(t, r.addr, k.apTLS(k.otherAP)) }},
		{"expired client certificate", rejectExpired, func(t *testing.T) { tlsDialFails(t, r.addr, k.apTLS(expiredAP)) }},
		{"certificate not for client authentication", rejectBadCert, func(t *testing.T) { tlsDialFails(t, r.addr, k.apTLS(serverOnly)) }},
		{"no client certificate", rejectNoCert, func(t *testing.T) { tlsDialFails(t, r.addr, k.apTLS(nil)) }},
		{"plaintext RADIUS on the port", rejectPlaintext, func(t *testing.T) {
			b, _ := radsectest.Encode(radsectest.AccessRequest("radsec", "bob", "x"), true)
			rawSendAndWaitClose(t, r.addr, b, 5*time.Second)
		}},
		{"HTTP on the port", rejectPlaintext, func(t *testing.T) {
			rawSendAndWaitClose(t, r.addr, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 5*time.Second)
		}},
		{"slow client: TCP, then nothing", rejectTimeout, func(t *testing.T) {
			start := time.Now()
			rawSendAndWaitClose(t, r.addr, nil, 5*time.Second)
			if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
				t.Errorf("slow client closed after %v, want about handshake_timeout 300ms", d)
			}
		}},
		{"slow client: half a ClientHello", rejectTimeout, func(t *testing.T) {
			rawSendAndWaitClose(t, r.addr, []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00}, 5*time.Second)
		}},
		{"AP that does not trust our certificate", rejectPeerAlert, func(t *testing.T) {
			cfg := radsectest.TLSConfig(k.ap, k.otherCA)
			tlsDialFails(t, r.addr, cfg)
		}},
		{"TLS 1.1 only", rejectProtocol, func(t *testing.T) {
			cfg := k.apTLS(k.ap)
			cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
			tlsDialFails(t, r.addr, cfg)
		}},
		{"connect and close", rejectClosed, func(t *testing.T) {
			c, err := radsectest.DialRaw(r.addr)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := r.rejects(tc.why)
			tc.do(t)
			waitFor(t, 5*time.Second, tc.why.String()+" counted", func() bool { return r.rejects(tc.why) == before+1 })
			mustAccept(t, good, "bob", "auth0")
			// The counter moves just before the log line is written.
			waitFor(t, 5*time.Second, "a log line with reason="+tc.why.String(), func() bool {
				return strings.Contains(r.log.String(), "reason="+tc.why.String())
			})
		})
	}
	if got := metricValue(r.metrics(), `tunterm_radsec_rejected_connections_total{reason="unknown_ca"}`); got != 1 {
		t.Errorf(`rejected_connections_total{reason="unknown_ca"} = %v, want 1`, got)
	}
	if n := r.p.st.connectionsAll.Load(); n != 1 {
		t.Errorf("connections established = %d, want only the good AP's", n)
	}
}

func TestAcceptExpired(t *testing.T) {
	k := newPKI(t)
	expiredAP, err := k.apCA.Issue("ap-old", radsectest.IssueOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOptions{pki: k, yaml: "  accept_expired: true\n"})
	mustAccept(t, r.dialWith(t, k.apTLS(expiredAP)), "bob", "auth0")
	if n := r.p.st.expiredAccepted.Load(); n != 1 {
		t.Errorf("expired accepted = %d, want 1", n)
	}
	if !strings.Contains(r.log.String(), "accepted an expired AP certificate") {
		t.Errorf("no log line for the expired certificate")
	}
	tlsDialFails(t, r.addr, k.apTLS(k.otherAP)) // accept_expired does not mean accept anything
}

func TestMaxConnections(t *testing.T) {
	r := newRig(t, rigOptions{yaml: "  max_connections: 3\n"})
	var cs []*radsectest.Client
	for range 3 {
		cs = append(cs, r.dial(t))
	}
	for _, c := range cs {
		mustAccept(t, c, "bob", "auth0")
	}
	tlsDialFails(t, r.addr, r.pki.apTLS(r.pki.ap))
	if n := r.rejects(rejectLimit); n != 1 {
		t.Errorf("limit rejects = %d, want 1", n)
	}
	cs[0].Close()
	waitFor(t, 5*time.Second, "a slot frees", func() bool { return r.p.st.connections.Load() == 2 })
	mustAccept(t, r.dial(t), "bob", "auth0")
}

func tlsDialFails(t *testing.T, addr string, cfg *tls.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := radsectest.Dial(ctx, addr, cfg, "radsec")
	if err != nil {
		return
	}
	defer c.Close()
	// TLS 1.3: the server's verdict on our certificate comes after the
	// client's handshake is done; the first exchange fails.
	_, err = c.Exchange(ctx, radsectest.AccessRequest("radsec", "bob", radsectest.Password), true)
	if err == nil {
		t.Fatalf("connection with %v was served", cfg.Certificates)
	}
}

// rawSendAndWaitClose sends b on a plain TCP connection and waits for the
// server to close it.
func rawSendAndWaitClose(t *testing.T, addr string, b []byte, d time.Duration) {
	t.Helper()
	c, err := radsectest.DialRaw(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(b) > 0 {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 1024)
	for {
		_, err := c.Read(buf)
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open after %v", d)
			}
			return
		}
	}
}

// Bad RADIUS inside a good TLS connection: each is dropped and counted;
// the connection survives unless the framing is lost.
func TestBadPackets(t *testing.T) {
	r := newRig(t, rigOptions{nAcct: 1})
	good := func() []byte {
		b, _ := radsectest.Encode(radsectest.AccessRequest("radsec", "bob", radsectest.Password), true)
		return b
	}
	tests := []struct {
		name      string
		pkt       func() []byte
		why       drop
		closes    bool
		noMessage bool
	}{
		{"Length below 20", func() []byte { b := good(); binary.BigEndian.PutUint16(b[2:], 19); return b[:19] }, dropAPMalformed, true, false},
		{"Length above 4096", func() []byte { b := good(); binary.BigEndian.PutUint16(b[2:], 5000); return b }, dropAPOversized, true, false},
		{"attribute length 1", func() []byte {
			b := append(good(), 1, 1)
			binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
			return b
		}, dropAPMalformed, false, false},
		{"attribute running past Length", func() []byte {
			b := append(good(), 1, 9, 'x')
			binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
			return b
		}, dropAPMalformed, false, false},
		{"User-Password of 15 bytes", func() []byte {
			p := radius.New(radius.CodeAccessRequest, []byte("radsec"))
			p.Add(radsectest.AttrUserPassword, make([]byte, 15))
			b, _ := radsectest.Encode(p, true)
			return b
		}, dropAPMalformed, false, false},
		{"two Message-Authenticators", func() []byte {
			b := good()
			b = append(b, b[20:38]...)
			binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
			return b
		}, dropAPMalformed, false, false},
		{"CoA-Request", func() []byte {
			p := radius.New(radius.CodeCoARequest, []byte("radsec"))
			b, _ := radsectest.Encode(p, false)
			return b
		}, dropAPUnsupportedCode, false, false},
		{"Access-Request without Message-Authenticator", func() []byte {
			b, _ := radsectest.Encode(radsectest.AccessRequest("radsec", "bob", radsectest.Password), false)
			return b
		}, dropAPMissingMA, false, false},
		{"Status-Server without Message-Authenticator", func() []byte {
			b, _ := radsectest.Encode(radius.New(radius.CodeStatusServer, []byte("radsec")), false)
			return b
		}, dropAPMissingMA, false, false},
		{"Message-Authenticator with another secret", func() []byte {
			b, _ := radsectest.Encode(radsectest.AccessRequest("not-radsec", "bob", radsectest.Password), true)
			return b
		}, dropAPBadMA, false, false},
		{"Accounting-Request with another secret", func() []byte {
			b, _ := radsectest.Encode(radsectest.AccountingRequest("not-radsec", "bob"), false)
			return b
		}, dropAPBadAuthenticator, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := r.dial(t)
			before := r.drops(tc.why)
			if err := c.Write(tc.pkt()); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, tc.why.String()+" counted", func() bool { return r.drops(tc.why) == before+1 })
			if tc.closes {
				select {
				case <-c.Done():
				case <-time.After(2 * time.Second):
					t.Fatal("connection not closed after losing the framing")
				}
				return
			}
			mustAccept(t, c, "bob", "auth0") // still served, nothing answered the bad packet
		})
	}
	if r.auth[0].Bad.Load() != 0 {
		t.Errorf("the server got %d bad packets through the proxy", r.auth[0].Bad.Load())
	}
}

func TestAPMessageAuthenticatorOptional(t *testing.T) {
	r := newRig(t, rigOptions{yaml: "  require_message_authenticator: false\n"})
	c := r.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Exchange(ctx, radsectest.AccessRequest("radsec", "bob", radsectest.Password), false)
	if err != nil || resp.Code != radius.CodeAccessAccept {
		t.Fatalf("Access-Request without Message-Authenticator = %v, %v; want Access-Accept", resp, err)
	}
	// The server still gets one (we always add it).
	if r.auth[0].MissingMA.Load() != 0 {
		t.Error("the server got an Access-Request without Message-Authenticator")
	}
}

// Bad answers from the server are dropped and counted; the AP gets no
// answer (its request times out) unless a good one follows.
func TestBadServerAnswers(t *testing.T) {
	tests := []struct {
		name string
		set  func(f *radsectest.FakeServer)
		why  drop
	}{
		{"no Message-Authenticator (BlastRADIUS)", func(f *radsectest.FakeServer) { f.NoMA.Store(true) }, dropSrvMissingMA},
		{"wrong Message-Authenticator", func(f *radsectest.FakeServer) { f.BadMA.Store(true) }, dropSrvBadMA},
		{"wrong Response Authenticator", func(f *radsectest.FakeServer) { f.BadAuth.Store(true) }, dropSrvBadAuthenticator},
		{"Proxy-State not echoed", func(f *radsectest.FakeServer) { f.NoProxyState.Store(true) }, dropSrvProxyState},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOptions{yaml: "  status_interval: 1h\n"})
			tc.set(r.auth[0])
			c := r.dial(t)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if resp, err := c.Exchange(ctx, radsectest.AccessRequest("radsec", "bob", radsectest.Password), true); err == nil {
				t.Fatalf("got %v, want no answer", resp.Code)
			}
			waitFor(t, 5*time.Second, tc.why.String()+" counted", func() bool { return r.drops(tc.why) >= 1 })
			waitFor(t, 5*time.Second, "the AP's request timed out", func() bool { return r.drops(dropAPTimeout) == 1 })
			// The drop is counted just before its log line is written.
			settle(5*time.Second, func() bool { return strings.Contains(r.log.String(), "reason="+tc.why.String()) })
			if !strings.Contains(r.log.String(), "reason="+tc.why.String()) {
				t.Errorf("no log line with reason=%s", tc.why)
			}
		})
	}
	t.Run("no Message-Authenticator, require_message_authenticator: false", func(t *testing.T) {
		r := newRig(t, rigOptions{serverYAML: ", require_message_authenticator: false"})
		r.auth[0].NoMA.Store(true)
		c := r.dial(t)
		resp := mustAccept(t, c, "bob", "auth0")
		if resp.Get(radsectest.AttrMessageAuthenticator) == nil {
			t.Error("our answer to the AP has no Message-Authenticator")
		}
	})
}

// A late answer (after the retransmissions gave up) is dropped as unknown.
func TestLateAnswer(t *testing.T) {
	r := newRig(t, rigOptions{yaml: "  timeout: 50ms\n  retries: 0\n  status_interval: 1h\n"})
	r.auth[0].Delay.Store(int64(150 * time.Millisecond))
	c := r.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	if _, err := c.Exchange(ctx, radsectest.AccessRequest("radsec", "bob", radsectest.Password), true); err == nil {
		t.Fatal("answered despite the timeout")
	}
	waitFor(t, 5*time.Second, "late answer dropped", func() bool { return r.drops(dropSrvUnknownID) >= 1 })
}

// 1,000 AP connections at once: each is served, another AP is served
// meanwhile, and goroutines and heap stay proportionate.
func TestThousandConnections(t *testing.T) {
	const n = 1000
	r := newRig(t, rigOptions{})
	probe := r.dial(t)
	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	g0 := runtime.NumGoroutine()

	cfg := r.pki.apTLS(r.pki.ap)
	clients := make([]*radsectest.Client, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := radsectest.Dial(ctx, r.addr, cfg, "radsec")
			if err != nil {
				errs <- err
				return
			}
			clients[i] = c
			resp, err := c.Exchange(ctx, radsectest.AccessRequest("radsec", fmt.Sprintf("bob%d", i), radsectest.Password), true)
			if err == nil && resp.Code != radius.CodeAccessAccept {
				err = fmt.Errorf("bob%d: %v", i, resp.Code)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	// Another AP is served while the crowd connects.
	start := time.Now()
	mustAccept(t, probe, "bob", "auth0")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the other AP waited %v", d)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	waitFor(t, 5*time.Second, "1000 connections", func() bool { return r.p.st.connections.Load() == n+1 })
	runtime.GC()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	g1 := runtime.NumGoroutine()
	// Per connection: the proxy's reader and writer, the client's reader.
	if per := float64(g1-g0) / n; per > 3.1 {
		t.Errorf("goroutines: %d -> %d, %.2f per connection, want <= 3", g0, g1, per)
	}
	heapPer := (int64(ms1.HeapInuse) - int64(ms0.HeapInuse)) / n
	t.Logf("1000 connections: %d goroutines (%.2f/conn, both sides), heap in use +%d KiB (%d bytes/conn, both sides)",
		g1-g0, float64(g1-g0)/n, (int64(ms1.HeapInuse)-int64(ms0.HeapInuse))>>10, heapPer)
	if heapPer > 128<<10 {
		t.Errorf("heap grew %d bytes per connection (both sides), want < 128 KiB", heapPer)
	}
	mustAccept(t, probe, "bob", "auth0")
	for _, c := range clients {
		c.Close()
	}
	waitFor(t, 10*time.Second, "connections closed", func() bool { return r.p.st.connections.Load() == 1 })
	waitFor(t, 10*time.Second, "goroutines back", func() bool { return runtime.NumGoroutine() <= g0+10 })
}

// An AP that never reads its answers cannot block the server's receive
// path: other APs keep being served.
func TestStuckAP(t *testing.T) {
	r := newRig(t, rigOptions{yaml: "  max_inflight: 4\n"})
	cfg := r.pki.apTLS(r.pki.ap)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := tls.Dialer{Config: cfg}
	raw, err := d.DialContext(ctx, "tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// Write requests without ever reading.
	go func() {
		for i := range 2000 {
			p := radsectest.AccessRequest("radsec", "bob", radsectest.Password)
			p.Identifier = byte(i)
			b, _ := radsectest.Encode(p, true)
			raw.SetWriteDeadline(time.Now().Add(3 * time.Second))
			if _, err := raw.Write(b); err != nil {
				return
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	mustAccept(t, r.dial(t), "bob", "auth0")
}
