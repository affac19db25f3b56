package radsec

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/tunterm/tunterm/control/config"
	"github.com/tunterm/tunterm/control/radsec/radsectest"
)

func TestProxyAnswers(t *testing.T) {
	r := newRig(t, rigOptions{nAuth: 1, nAcct: 1})
	c := r.dial(t)
	tests := []struct {
		name  string
		req   *radius.Packet
		want  radius.Code
		check func(t *testing.T, req, resp *radius.Packet)
	}{
		{"PAP accept, with the hidden attributes moved to the AP's secret",
			radsectest.AccessRequest("radsec", "bob", radsectest.Password), radius.CodeAccessAccept,
			func(t *testing.T, req, resp *radius.Packet) {
				if got := rfc2865.ReplyMessage_GetString(resp); got != "auth0" {
					t.Errorf("Reply-Message = %q, want auth0", got)
				}
				for _, k := range []struct {
					typ  byte
					send bool
				}{{radsectest.MSMPPESendKey, true}, {radsectest.MSMPPERecvKey, false}} {
					v := radsectest.VendorAttr(resp, radsectest.VendorMicrosoft, k.typ)
					key, _, err := radius.TunnelPassword(v, []byte("radsec"), req.Authenticator[:])
					if err != nil || !bytes.Equal(key, radsectest.Key("bob", k.send)) {
						t.Errorf("MS-MPPE key %d = %x, %v; want %x", k.typ, key, err, radsectest.Key("bob", k.send))
					}
				}
				tp := resp.Get(radsectest.AttrTunnelPassword)
				if len(tp) < 1 {
					t.Fatalf("no Tunnel-Password")
				}
				pw, _, err := radius.TunnelPassword(tp[1:], []byte("radsec"), req.Authenticator[:])
				if err != nil || string(pw) != radsectest.TunnelPasswordOf("bob") {
					t.Errorf("Tunnel-Password = %q, %v, want %q", pw, err, radsectest.TunnelPasswordOf("bob"))
				}
			}},
		{"PAP reject", radsectest.AccessRequest("radsec", "bob", "wrong"), radius.CodeAccessReject, nil},
		{"long password (3 blocks)", radsectest.AccessRequest("radsec", "mallory", strings.Repeat("x", 40)), radius.CodeAccessReject, nil},
		{"challenge keeps State", radsectest.AccessRequest("radsec", "challenge", "x"), radius.CodeAccessChallenge,
			func(t *testing.T, req, resp *radius.Packet) {
				if got := rfc2865.State_GetString(resp); got != "state-1" {
					t.Errorf("State = %q, want state-1", got)
				}
			}},
		{"CHAP with the authenticator as challenge", chapRequest("bob", radsectest.Password), radius.CodeAccessAccept, nil},
		{"accounting", radsectest.AccountingRequest("radsec", "bob"), radius.CodeAccountingResponse, nil},
		{"AP Proxy-State comes back, in order", withProxyState(radsectest.AccessRequest("radsec", "bob", radsectest.Password), "ap-1", "ap-2"),
			radius.CodeAccessAccept,
			func(t *testing.T, req, resp *radius.Packet) {
				var got []string
				for _, a := range resp.Attributes {
					if a.Type == radsectest.AttrProxyState {
						got = append(got, string(a.Attribute))
					}
				}
				if strings.Join(got, ",") != "ap-1,ap-2" {
					t.Errorf("Proxy-State in answer = %q, want [ap-1 ap-2] (ours removed)", got)
				}
			}},
		{"Status-Server answered by the proxy", radius.New(radius.CodeStatusServer, []byte("radsec")), radius.CodeAccessAccept, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := exchange(t, c, tc.req)
			if err != nil {
				t.Fatalf("Exchange = %v", err)
			}
			if resp.Code != tc.want {
				t.Fatalf("Exchange = %v, want %v", resp.Code, tc.want)
			}
			if tc.check != nil {
				tc.check(t, tc.req, resp)
			}
		})
	}
	// The servers saw Message-Authenticator first, our Proxy-State last, and
	// a Request Authenticator that is not the AP's.
	b, _ := r.auth[0].LastRequest()
	if len(b) < 40 || b[20] != attrMessageAuthenticator {
		t.Errorf("server saw %x, want Message-Authenticator first", b)
	}
	if r.auth[0].MissingMA.Load() != 0 || r.auth[0].Bad.Load() != 0 || r.acct[0].Bad.Load() != 0 {
		t.Errorf("fake servers: missing MA %d, bad %d/%d", r.auth[0].MissingMA.Load(), r.auth[0].Bad.Load(), r.acct[0].Bad.Load())
	}
	for d := drop(1); d < numDrops; d++ {
		if n := r.drops(d); n != 0 {
			t.Errorf("drops[%s/%s] = %d, want 0", d.from(), d, n)
		}
	}
}

func chapRequest(user, password string) *radius.Packet {
	p := radius.New(radius.CodeAccessRequest, []byte("radsec"))
	rfc2865.UserName_SetString(p, user)
	h := md5.New()
	h.Write([]byte{7})
	h.Write([]byte(password))
	h.Write(p.Authenticator[:])
	rfc2865.CHAPPassword_Set(p, append([]byte{7}, h.Sum(nil)...))
	return p
}

func withProxyState(p *radius.Packet, states ...string) *radius.Packet {
	for _, s := range states {
		p.Add(radsectest.AttrProxyState, radius.Attribute(s))
	}
	return p
}

func TestProxyFailover(t *testing.T) {
	r := newRig(t, rigOptions{nAuth: 2})
	c := r.dial(t)
	mustAccept(t, c, "bob", "auth0")

	r.auth[0].Silent.Store(true) // the primary dies
	waitFor(t, 5*time.Second, "primary marked down", func() bool { return !r.p.cur.Load().auth.servers[0].isUp() })
	mustAccept(t, c, "bob", "auth1")
	// The request goes by the server's state; the group counts and logs
	// the failover after that state flipped.
	settle(5*time.Second, func() bool {
		return r.p.cur.Load().auth.failovers.Load() >= 1 && strings.Contains(r.log.String(), "radsec: failover")
	})
	if n := r.p.cur.Load().auth.failovers.Load(); n != 1 {
		t.Errorf("failovers = %d, want 1", n)
	}

	r.auth[0].Silent.Store(false) // it comes back
	waitFor(t, 5*time.Second, "primary marked up", func() bool { return r.p.cur.Load().auth.servers[0].isUp() })
	mustAccept(t, c, "bob", "auth0")
	settle(5*time.Second, func() bool {
		return r.p.cur.Load().auth.failovers.Load() >= 2 && strings.Contains(r.log.String(), "radsec: failback")
	})
	if n := r.p.cur.Load().auth.failovers.Load(); n != 2 {
		t.Errorf("failovers = %d, want 2 (failover, failback)", n)
	}
	m := r.metrics()
	for series, want := range map[string]float64{
		`tunterm_radsec_failovers_total{group="auth"}`:                                            2,
		`tunterm_radsec_server_up{group="auth",server="auth0"}`:                                   1,
		`tunterm_radsec_server_active{group="auth",server="auth0"}`:                               1,
		`tunterm_radsec_server_active{group="auth",server="auth1"}`:                               0,
		`tunterm_radsec_server_responses_total{group="auth",server="auth1",type="access_accept"}`: 1,
	} {
		if got := metricValue(m, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if !strings.Contains(r.log.String(), "radsec: failover") || !strings.Contains(r.log.String(), "radsec: failback") {
		t.Errorf("log lacks failover/failback lines:\n%s", r.log.String())
	}
}

// A request that times out on the primary goes to the secondary before the
// probes notice anything.
func TestProxyRequestFailover(t *testing.T) {
	r := newRig(t, rigOptions{nAuth: 2, yaml: "  status_interval: 1h\n  down_after: 100\n"})
	c := r.dial(t)
	mustAccept(t, c, "bob", "auth0")
	r.auth[0].SilentRequests.Store(true) // answers probes, not requests
	mustAccept(t, c, "bob", "auth1")
	ss := r.p.cur.Load().auth.servers[0].st
	if ss.timeouts.Load() != 1 || ss.failedOver.Load() != 1 || ss.retransmissions.Load() != 1 {
		t.Errorf("primary: timeouts %d failed over %d retransmissions %d, want 1 1 1", ss.timeouts.Load(), ss.failedOver.Load(), ss.retransmissions.Load())
	}
}

// status_server: false: timeouts mark the server down, dead_time brings it
// back.
func TestProxyNoStatusServer(t *testing.T) {
	r := newRig(t, rigOptions{nAuth: 2, serverYAML: ", status_server: false", yaml: "  down_after: 1\n  dead_time: 300ms\n"})
	c := r.dial(t)
	r.auth[0].Silent.Store(true)
	mustAccept(t, c, "bob", "auth1") // times out on auth0, fails over
	if r.p.cur.Load().auth.servers[0].isUp() {
		t.Fatal("auth0 still up after a timeout with down_after 1")
	}
	if r.auth[0].Status.Load() != 0 {
		t.Errorf("auth0 got %d Status-Server with status_server: false", r.auth[0].Status.Load())
	}
	r.auth[0].Silent.Store(false)
	waitFor(t, 5*time.Second, "auth0 revived after dead_time", func() bool { return r.p.cur.Load().auth.servers[0].isUp() })
	mustAccept(t, c, "bob", "auth0")
}

// Every server down: requests still go to the primary.
func TestProxyAllDown(t *testing.T) {
	r := newRig(t, rigOptions{nAuth: 2, yaml: "  down_after: 1\n"})
	c := r.dial(t)
	r.auth[0].Silent.Store(true)
	r.auth[1].Silent.Store(true)
	waitFor(t, 5*time.Second, "all down", func() bool {
		g := r.p.cur.Load().auth
		return !g.servers[0].isUp() && !g.servers[1].isUp()
	})
	r.auth[0].SilentRequests.Store(false)
	r.auth[0].Silent.Store(false)
	r.auth[0].Delay.Store(0)
	// The probes will bring it back too; what matters is the answer.
	mustAccept(t, c, "bob", "auth0")
}

func TestProxySource(t *testing.T) {
	r := newRig(t, rigOptions{yaml: "  source: 127.0.0.1\n"})
	mustAccept(t, r.dial(t), "bob", "auth0")
	_, from := r.auth[0].LastRequest()
	if from.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("request came from %v, want 127.0.0.1", from)
	}
}

func TestProxySourceUnusable(t *testing.T) {
	k := newPKI(t)
	c, err := config.ParseRadSec([]byte("radsec: {cert: " + k.cert + ", key: " + k.key + ", ca: " + k.caFile +
		", source: 192.0.2.77, auth_servers: [{address: 127.0.0.1:1812, secret: x}]}"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(c.RadSec, nil, Options{})
	if err == nil {
		p.Close()
		t.Fatal("New with a source address not on this host = nil error")
	}
	if !strings.Contains(err.Error(), "radsec.auth_servers[0] (127.0.0.1:1812): source") {
		t.Errorf("New = %v, want an error naming radsec.auth_servers[0] and source", err)
	}
}

func TestProxyDuplicateAndReuse(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.auth[0].Delay.Store(int64(150 * time.Millisecond))
	c := r.dial(t)
	req := radsectest.AccessRequest("radsec", "bob", radsectest.Password)
	req.Identifier = 9
	b, err := radsectest.Encode(req, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan []byte, 1)
	go func() {
		resp, err := c.ExchangeRaw(ctx, b)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	time.Sleep(30 * time.Millisecond)
	if err := c.Write(b); err != nil { // the same request again while it waits
		t.Fatal(err)
	}
	resp := <-done
	if _, err := radsectest.CheckResponse(resp, b, []byte("radsec")); err != nil || resp[0] != codeAccessAccept {
		t.Fatalf("answer %x: %v", resp, err)
	}
	waitFor(t, 5*time.Second, "duplicate counted", func() bool { return r.drops(dropAPDuplicate) == 1 })
	if got := r.auth[0].Requests.Load(); got != 1 {
		t.Errorf("server got %d requests, want 1", got)
	}
}

func TestProxyReload(t *testing.T) {
	r := newRig(t, rigOptions{nAuth: 2, serverYAML: ", require_message_authenticator: true"})
	c := r.dial(t)
	mustAccept(t, c, "bob", "auth0")
	// The same file again keeps the servers, their sockets and health.
	same, err := config.ParseRadSec([]byte(r.yaml))
	if err != nil {
		t.Fatal(err)
	}
	g := r.p.cur.Load().auth
	if err := r.p.Reload(same.RadSec); err != nil {
		t.Fatalf("Reload(same) = %v", err)
	}
	if r.p.cur.Load().auth != g {
		t.Error("Reload with an unchanged file replaced the auth servers")
	}
	// Swap the order: auth1 becomes the primary.
	rc := *r.rc
	rc.AuthServers = []config.RADIUSServer{r.rc.AuthServers[1], r.rc.AuthServers[0]}
	if err := r.p.Reload(&rc); err != nil {
		t.Fatalf("Reload = %v", err)
	}
	mustAccept(t, c, "bob", "auth1")
	// A bad certificate path keeps the running configuration.
	bad := rc
	bad.Cert = "/nonexistent.pem"
	if err := r.p.Reload(&bad); err == nil || !strings.Contains(err.Error(), "radsec.cert") {
		t.Errorf("Reload(bad cert) = %v, want an error naming radsec.cert", err)
	}
	mustAccept(t, c, "bob", "auth1")
	mustAccept(t, r.dial(t), "bob", "auth1")
}

func TestDebugReport(t *testing.T) {
	r := newRig(t, rigOptions{nAuth: 2, nAcct: 1})
	c := r.dial(t)
	mustAccept(t, c, "bob", "auth0")
	var text bytes.Buffer
	rep := r.p.Report(false)
	rep.WriteText(&text)
	for _, want := range []string{"RadSec proxy (RFC 6614): listening on 127.0.0.1:", "auth servers: active auth0",
		"acct servers: active acct0", "auth0", "auth1", "up", "ap-00:11:22:33:44:55", "Connections     1 now"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("/debug/radsec text lacks %q:\n%s", want, text.String())
		}
	}
	j, err := json.Marshal(rep)
	if err != nil {
		t.Fatalf("json.Marshal(report) = %v", err)
	}
	var back map[string]any
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	if back["connections"].(map[string]any)["current"].(float64) != 1 || len(back["groups"].([]any)) != 2 {
		t.Errorf("JSON report = %s", j)
	}
}

// Close stops every goroutine: connections, writers, sockets, probes,
// timers, even with a request in flight.
func TestCloseNoLeak(t *testing.T) {
	g0 := runtime.NumGoroutine()
	t.Run("run", func(t *testing.T) {
		r := newRig(t, rigOptions{nAuth: 2, nAcct: 1})
		for range 3 {
			mustAccept(t, r.dial(t), "bob", "auth0")
		}
		r.auth[0].Delay.Store(int64(time.Second))
		c := r.dial(t)
		go exchange(t, c, radsectest.AccessRequest("radsec", "bob", radsectest.Password))
		waitFor(t, 5*time.Second, "a request in flight", func() bool { return r.p.cur.Load().auth.servers[0].inflight() > 0 })
		r.p.Close()
		if n := r.p.cur.Load().auth.servers[0].inflight(); n != 0 {
			t.Errorf("%d requests in flight after Close", n)
		}
	})
	waitFor(t, 5*time.Second, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= g0 })
}
