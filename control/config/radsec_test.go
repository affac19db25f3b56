package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// radsecExample is the radsec section of the issue, with a management
// section.
const radsecExample = `
radsec:
  listen: 0.0.0.0:2083
  cert: /etc/tunterm/radsec.pem
  key: /etc/tunterm/radsec.key
  ca: [/etc/tunterm/ap-ca.pem]
  secret: radsec
  source: 192.0.2.10               # optional source address for RADIUS/UDP
  auth_servers: [{address: 10.0.0.5:1812, secret: s3cret}, {address: 10.0.0.6:1812, secret: s3cret}]
  acct_servers: [{address: 10.0.0.5:1813, secret: s3cret}]
management: {listen: 127.0.0.1:9110}
`

func editRadSec(t *testing.T, pairs ...string) string {
	t.Helper()
	s := radsecExample
	for i := 0; i+1 < len(pairs); i += 2 {
		if n := strings.Count(s, pairs[i]); n != 1 {
			t.Fatalf("editRadSec: %q occurs %d times, want 1", pairs[i], n)
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

func TestParseRadSecExample(t *testing.T) {
	// In the full file (with the dataplane) and alone (tunterm radsec).
	full, err := Parse([]byte(issueExample + radsecExample))
	if err != nil {
		t.Fatalf("Parse(issue example + radsec) = %v", err)
	}
	alone, err := ParseRadSec([]byte(radsecExample))
	if err != nil {
		t.Fatalf("ParseRadSec(radsec example) = %v", err)
	}
	for _, c := range []*Config{full, alone} {
		r := c.RadSec
		if r == nil {
			t.Fatal("RadSec = nil")
		}
		if r.ListenAddr != netip.MustParseAddrPort("0.0.0.0:2083") || r.Cert != "/etc/tunterm/radsec.pem" ||
			r.Key != "/etc/tunterm/radsec.key" || len(r.CA) != 1 || r.CA[0] != "/etc/tunterm/ap-ca.pem" ||
			r.Secret != "radsec" || r.SourceAddr != netip.MustParseAddr("192.0.2.10") {
			t.Errorf("RadSec = %+v", r)
		}
		if len(r.AuthServers) != 2 || r.AuthServers[1].Addr != netip.MustParseAddrPort("10.0.0.6:1812") ||
			r.AuthServers[0].Secret != "s3cret" || r.AuthServers[0].Name != "10.0.0.5:1812" ||
			!r.AuthServers[0].RequireMA() || !r.AuthServers[0].Probe() {
			t.Errorf("AuthServers = %+v", r.AuthServers)
		}
		if len(r.AcctServers) != 1 || r.AcctServers[0].Addr != netip.MustParseAddrPort("10.0.0.5:1813") {
			t.Errorf("AcctServers = %+v", r.AcctServers)
		}
		// Defaults.
		if r.MaxConnections != DefaultMaxConnections || r.MaxInflight != DefaultMaxInflight ||
			time.Duration(r.HandshakeTimeout) != DefaultHandshakeTimeout || time.Duration(r.IdleTimeout) != DefaultIdleTimeout ||
			time.Duration(r.Timeout) != DefaultRADIUSTimeout || r.RetryCount() != DefaultRADIUSRetries ||
			time.Duration(r.StatusInterval) != DefaultStatusInterval || r.DownAfter != DefaultDownAfter ||
			r.UpAfter != DefaultUpAfter || time.Duration(r.DeadTime) != DefaultDeadTime ||
			!r.RequireAPMessageAuthenticator() || r.AcceptExpired {
			t.Errorf("defaults = %+v", r)
		}
		if c.Management.Listen != "127.0.0.1:9110" || !c.Management.Explicit || !c.Management.Enabled() {
			t.Errorf("Management = %+v", c.Management)
		}
	}
}

func TestParseRadSecValid(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *Config)
	}{
		{"defaults: listen, secret, ports, management",
			`radsec: {cert: c, key: k, ca: a, auth_servers: [{address: 10.0.0.5, secret: x}], acct_servers: [{address: "[2001:db8::5]", secret: y}]}`,
			func(t *testing.T, c *Config) {
				r := c.RadSec
				if r.ListenAddr != netip.MustParseAddrPort("0.0.0.0:2083") || r.Secret != "radsec" || len(r.CA) != 1 ||
					r.AuthServers[0].Addr.Port() != 1812 || r.AcctServers[0].Addr != netip.MustParseAddrPort("[2001:db8::5]:1813") {
					t.Errorf("RadSec = %+v", r)
				}
				if c.Management.Listen != DefaultManagementListen || c.Management.Explicit {
					t.Errorf("Management = %+v, want the default, not explicit", c.Management)
				}
			}},
		{"every knob",
			`radsec: {listen: "[::]:12083", cert: c, key: k, ca: [a, b], secret: other, accept_expired: true,
  require_message_authenticator: false, max_connections: 10, max_inflight: 256, handshake_timeout: 2s, idle_timeout: 1h,
  timeout: 500ms, retries: 0, status_interval: 1s, down_after: 3, up_after: 4, dead_time: 1m,
  auth_servers: [{name: rad1, address: 10.0.0.5:11812, secret: x, require_message_authenticator: false, status_server: false}]}
management: {listen: 10.1.1.1}`,
			func(t *testing.T, c *Config) {
				r := c.RadSec
				s := r.AuthServers[0]
				if r.ListenAddr != netip.MustParseAddrPort("[::]:12083") || len(r.CA) != 2 || r.Secret != "other" || !r.AcceptExpired ||
					r.RequireAPMessageAuthenticator() || r.MaxConnections != 10 || r.MaxInflight != 256 ||
					time.Duration(r.HandshakeTimeout) != 2*time.Second || time.Duration(r.IdleTimeout) != time.Hour ||
					time.Duration(r.Timeout) != 500*time.Millisecond || r.RetryCount() != 0 || time.Duration(r.StatusInterval) != time.Second ||
					r.DownAfter != 3 || r.UpAfter != 4 || time.Duration(r.DeadTime) != time.Minute {
					t.Errorf("RadSec = %+v", r)
				}
				if s.Name != "rad1" || s.RequireMA() || s.Probe() || s.Addr.Port() != 11812 {
					t.Errorf("server = %+v", s)
				}
				if c.Management.Listen != "10.1.1.1:9110" {
					t.Errorf("management.listen = %q, want 10.1.1.1:9110", c.Management.Listen)
				}
			}},
		{"management off", `management: {listen: "off"}
radsec: {cert: c, key: k, ca: a, auth_servers: [{address: 10.0.0.5, secret: x}]}`,
			func(t *testing.T, c *Config) {
				if c.Management.Enabled() {
					t.Errorf("management enabled with listen: off")
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseRadSec([]byte(tc.yaml))
			if err != nil {
				t.Fatalf("ParseRadSec(%s) = %v", tc.yaml, err)
			}
			tc.check(t, c)
		})
	}
}

func TestParseRadSecInvalid(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"no radsec for tunterm radsec", "management: {listen: 127.0.0.1:9110}\n", "radsec: required by `tunterm radsec`"},
		{"listen", editRadSec(t, "listen: 0.0.0.0:2083", "listen: 2083"), `radsec.listen: "2083" is not an address:port`},
		{"listen host", editRadSec(t, "listen: 0.0.0.0:2083", "listen: ap.example:2083"), `radsec.listen: "ap.example:2083": "ap.example" is not an IP address`},
		{"cert", editRadSec(t, "  cert: /etc/tunterm/radsec.pem\n", ""), "radsec.cert: required"},
		{"key", editRadSec(t, "  key: /etc/tunterm/radsec.key\n", ""), "radsec.key: required"},
		{"ca", editRadSec(t, "  ca: [/etc/tunterm/ap-ca.pem]\n", ""), "radsec.ca: required"},
		{"ca entry", editRadSec(t, "ca: [/etc/tunterm/ap-ca.pem]", `ca: [/a, ""]`), "radsec.ca[1]: empty file name"},
		{"ca mapping", editRadSec(t, "ca: [/etc/tunterm/ap-ca.pem]", `ca: {file: x}`), "radsec.ca: line"},
		{"source", editRadSec(t, "source: 192.0.2.10", "source: oobm0"), `radsec.source: "oobm0" is not an IP address`},
		{"source family", editRadSec(t, "source: 192.0.2.10", "source: 2001:db8::10"),
			"radsec.auth_servers[0].address: 10.0.0.5:1812 is not of the same family as radsec.source 2001:db8::10"},
		{"no auth servers", editRadSec(t, "auth_servers: [{address: 10.0.0.5:1812, secret: s3cret}, {address: 10.0.0.6:1812, secret: s3cret}]", "auth_servers: []"),
			"radsec.auth_servers: at least one server is required"},
		{"server address", editRadSec(t, "{address: 10.0.0.6:1812, secret: s3cret}", "{address: radius.corp, secret: s3cret}"),
			`radsec.auth_servers[1].address: "radius.corp" is not an IP address with an optional port, like 10.0.0.5:1812`},
		{"server address port 0", editRadSec(t, "{address: 10.0.0.6:1812, secret: s3cret}", "{address: 10.0.0.6:0, secret: s3cret}"),
			`radsec.auth_servers[1].address: "10.0.0.6:0" is not a unicast IP:port`},
		{"server secret", editRadSec(t, "{address: 10.0.0.6:1812, secret: s3cret}", "{name: rad2, address: 10.0.0.6:1812}"),
			"radsec.auth_servers[1] (rad2).secret: required"},
		{"duplicate server", editRadSec(t, "{address: 10.0.0.6:1812, secret: s3cret}", "{address: 10.0.0.5, secret: s3cret}"),
			"radsec.auth_servers[1].address: 10.0.0.5:1812 is already radsec.auth_servers[0]"},
		{"duplicate name", editRadSec(t, "{address: 10.0.0.5:1812, secret: s3cret}, {address: 10.0.0.6:1812, secret: s3cret}",
			"{name: a, address: 10.0.0.5:1812, secret: s3cret}, {name: a, address: 10.0.0.6:1812, secret: s3cret}"),
			`radsec.auth_servers[1] (a).name: "a" is already the name of radsec.auth_servers[0]`},
		{"acct server", editRadSec(t, "acct_servers: [{address: 10.0.0.5:1813, secret: s3cret}]", "acct_servers: [{address: 10.0.0.5:1813}]"),
			"radsec.acct_servers[0].secret: required"},
		{"max_inflight", editRadSec(t, "secret: radsec", "secret: radsec\n  max_inflight: 257"), "radsec.max_inflight: 257 is outside 1..256"},
		{"max_connections", editRadSec(t, "secret: radsec", "secret: radsec\n  max_connections: -1"), "radsec.max_connections: -1 is outside 1..1048576"},
		{"handshake_timeout", editRadSec(t, "secret: radsec", "secret: radsec\n  handshake_timeout: 2h"), "radsec.handshake_timeout: 2h0m0s is outside 100ms..1m0s"},
		{"timeout syntax", editRadSec(t, "secret: radsec", "secret: radsec\n  timeout: 3"), `"3" is not a duration like 300s or 24h`},
		{"retries", editRadSec(t, "secret: radsec", "secret: radsec\n  retries: 11"), "radsec.retries: 11 is outside 0..10"},
		{"down_after", editRadSec(t, "secret: radsec", "secret: radsec\n  down_after: 101"), "radsec.down_after: 101 is outside 1..100"},
		{"unknown key", editRadSec(t, "secret: radsec", "secret: radsec\n  secrets: x"), "field secrets not found"},
		{"unknown server key", editRadSec(t, "{address: 10.0.0.6:1812, secret: s3cret}", "{address: 10.0.0.6:1812, secret: s3cret, port: 1}"), "field port not found"},
		{"management", editRadSec(t, "management: {listen: 127.0.0.1:9110}", "management: {listen: localhost:9110}"),
			`management.listen: "localhost:9110": "localhost" is not an IP address`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseRadSec([]byte(tc.yaml))
			if err == nil || c != nil {
				t.Fatalf("ParseRadSec(%s) = %v, nil, want an error containing %q", tc.yaml, c, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseRadSec(...) = %q, want it to contain %q", err, tc.want)
			}
			// The full Parse says the same (after the dataplane's checks).
			if tc.name != "no radsec for tunterm radsec" {
				if _, err := Parse([]byte(issueExample + tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("Parse(issue example + ...) = %v, want it to contain %q", err, tc.want)
				}
			}
		})
	}
}

// The existing examples keep parsing and get the default management.
func TestParseWithoutRadSec(t *testing.T) {
	c, err := Parse([]byte(issueExample))
	if err != nil {
		t.Fatal(err)
	}
	if c.RadSec != nil || c.Management.Listen != DefaultManagementListen || c.Management.Explicit {
		t.Errorf("RadSec = %v, Management = %+v; want nil and the non-explicit default", c.RadSec, c.Management)
	}
}

func FuzzParseRadSec(f *testing.F) {
	f.Add([]byte(radsecExample))
	f.Add([]byte("radsec: {cert: c, key: k, ca: a, auth_servers: [{address: 10.0.0.5, secret: x}]}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseRadSec(b)
		if (c == nil) == (err == nil) {
			t.Fatalf("ParseRadSec(%q) = %v, %v: want exactly one", b, c, err)
		}
		if c != nil && (c.RadSec == nil || !c.RadSec.ListenAddr.IsValid() || len(c.RadSec.AuthServers) == 0 ||
			c.RadSec.MaxInflight < 1 || c.RadSec.MaxInflight > 256) {
			t.Fatalf("ParseRadSec(%q) accepted an invalid configuration: %+v", b, c.RadSec)
		}
	})
}
