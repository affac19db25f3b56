package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// RadSec defaults.
const (
	DefaultRadSecListen      = "0.0.0.0:2083" // RFC 6614 §2.1
	DefaultRadSecSecret      = "radsec"       // RFC 6614 §2.3 item 4
	DefaultMaxConnections    = 16384
	DefaultMaxInflight       = 64
	DefaultHandshakeTimeout  = 10 * time.Second
	DefaultIdleTimeout       = 10 * time.Minute
	DefaultRADIUSTimeout     = 3 * time.Second
	DefaultRADIUSRetries     = 2
	DefaultStatusInterval    = 10 * time.Second
	DefaultDownAfter         = 2
	DefaultUpAfter           = 2
	DefaultDeadTime          = 30 * time.Second
	DefaultManagementListen  = "127.0.0.1:9110"
	DefaultManagementPort    = 9110
	defaultAuthPort          = 1812 // RFC 2865 §3
	defaultAcctPort          = 1813 // RFC 2866 §3
	maxRADIUSRetries         = 10
	maxPerConnectionInflight = 256 // one RADIUS Identifier space per TLS connection (RFC 6614 §2.5)
)

// RadSec configures the RadSec proxy (RFC 6614): RADIUS over TLS from the
// APs in, RADIUS over UDP to the corporate servers out. See docs/radsec.md.
type RadSec struct {
	// Listen is the TLS listening address (default 0.0.0.0:2083).
	Listen string `yaml:"listen"`
	// Cert and Key are our certificate chain and private key (PEM).
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// CA lists the PEM files of the CAs that sign AP certificates.
	CA StringList `yaml:"ca"`
	// AcceptExpired accepts AP certificates that have expired but are
	// otherwise valid (counted, and shown in /debug/radsec).
	AcceptExpired bool `yaml:"accept_expired"`
	// Secret is the RADIUS shared secret on the TLS side (default "radsec").
	Secret string `yaml:"secret"`
	// Source is the local address RADIUS/UDP requests are sent from
	// (default: chosen by the kernel's routing).
	Source string `yaml:"source"`
	// AuthServers and AcctServers are tried in order: the first one that
	// is up gets the traffic (primary, secondary, ...).
	AuthServers []RADIUSServer `yaml:"auth_servers"`
	AcctServers []RADIUSServer `yaml:"acct_servers"`

	// RequireMessageAuthenticator drops Access-Requests from APs without a
	// valid Message-Authenticator (default true).
	RequireMessageAuthenticator *bool `yaml:"require_message_authenticator"`
	// MaxConnections bounds TLS connections, handshaking ones included.
	MaxConnections int `yaml:"max_connections"`
	// MaxInflight bounds the requests of one connection awaiting an answer;
	// beyond it we stop reading that connection (1..256).
	MaxInflight int `yaml:"max_inflight"`
	// HandshakeTimeout bounds a TLS handshake (and reading one packet).
	HandshakeTimeout Duration `yaml:"handshake_timeout"`
	// IdleTimeout closes connections that carried nothing for this long.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// Timeout is how long we wait for a server's answer before
	// retransmitting; Retries is how many retransmissions follow.
	Timeout Duration `yaml:"timeout"`
	Retries *int     `yaml:"retries"`
	// StatusInterval is the Status-Server probe period (RFC 5997).
	StatusInterval Duration `yaml:"status_interval"`
	// DownAfter consecutive failed probes mark a server down; UpAfter
	// consecutive answered probes mark it up again.
	DownAfter int `yaml:"down_after"`
	UpAfter   int `yaml:"up_after"`
	// DeadTime is how long a server that does not answer Status-Server
	// (status_server: false) stays down before it is tried again.
	DeadTime Duration `yaml:"dead_time"`

	ListenAddr netip.AddrPort `yaml:"-"`
	SourceAddr netip.Addr     `yaml:"-"`
}

// RADIUSServer is one corporate RADIUS server.
type RADIUSServer struct {
	// Name labels the server in logs and metrics (default: its address).
	Name string `yaml:"name"`
	// Address is IP:port; the port defaults to 1812 (auth) or 1813 (acct).
	Address string `yaml:"address"`
	Secret  string `yaml:"secret"`
	// RequireMessageAuthenticator drops Access-Accept/Reject/Challenge
	// without a valid Message-Authenticator (default true; BlastRADIUS,
	// CVE-2024-3596).
	RequireMessageAuthenticator *bool `yaml:"require_message_authenticator"`
	// StatusServer: the server answers Status-Server (RFC 5997; default
	// true). When false, request timeouts alone mark it down.
	StatusServer *bool `yaml:"status_server"`

	Addr netip.AddrPort `yaml:"-"`
}

// Management is the management HTTP server: /metrics and /debug/*.
type Management struct {
	// Listen is host:port, a bare host (port 9110), or "off". Unset means
	// 127.0.0.1:9110, and a failure to listen there is not fatal.
	Listen string `yaml:"listen"`

	// Explicit is true when Listen was set in the file.
	Explicit bool `yaml:"-"`
}

// Enabled reports whether the management server should run.
func (m *Management) Enabled() bool { return m.Listen != "" && m.Listen != "off" }

// RequireAPMessageAuthenticator reports the effective
// require_message_authenticator of the TLS side.
func (r *RadSec) RequireAPMessageAuthenticator() bool {
	return r.RequireMessageAuthenticator == nil || *r.RequireMessageAuthenticator
}

// RetryCount is the effective retries.
func (r *RadSec) RetryCount() int {
	if r.Retries == nil {
		return DefaultRADIUSRetries
	}
	return *r.Retries
}

// RequireMA reports the server's effective require_message_authenticator.
func (s *RADIUSServer) RequireMA() bool {
	return s.RequireMessageAuthenticator == nil || *s.RequireMessageAuthenticator
}

// Probe reports whether the server is probed with Status-Server.
func (s *RADIUSServer) Probe() bool { return s.StatusServer == nil || *s.StatusServer }

// StringList is one string or a list of strings.
type StringList []string

// UnmarshalYAML implements yaml.Unmarshaler.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = StringList{n.Value}
		return nil
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return badValue(c, "a file name is required, not a list or mapping")
			}
			out = append(out, c.Value)
		}
		*l = out
		return nil
	}
	return badValue(n, "a file name or a list of file names is required")
}

// LoadRadSec reads the file at path for `tunterm radsec`, which runs the
// RadSec proxy alone: the whole file must decode (unknown keys are errors),
// but only the radsec and management sections are validated, and radsec is
// required.
func LoadRadSec(path string) (*Config, error) { return load(path, ParseRadSec) }

// ParseRadSec is LoadRadSec on bytes.
func ParseRadSec(b []byte) (*Config, error) {
	var c Config
	if err := decode(b, &c); err != nil {
		return nil, err
	}
	if c.RadSec == nil {
		return nil, errors.New("radsec: required by `tunterm radsec` (see docs/radsec.md)")
	}
	if err := c.validateRadSec(); err != nil {
		return nil, err
	}
	return &c, nil
}

// validateRadSec checks and defaults the radsec and management sections.
func (c *Config) validateRadSec() error {
	if err := c.Management.validate(); err != nil {
		return err
	}
	r := c.RadSec
	if r == nil {
		return nil
	}
	if r.Listen == "" {
		r.Listen = DefaultRadSecListen
	}
	ap, err := parseListen(r.Listen, 0)
	if err != nil {
		return fmt.Errorf("radsec.listen: %w", err)
	}
	r.ListenAddr = ap
	if r.Cert == "" {
		return errors.New("radsec.cert: required (our certificate chain, PEM; APs check it against their CA)")
	}
	if r.Key == "" {
		return errors.New("radsec.key: required (the private key of radsec.cert, PEM)")
	}
	if len(r.CA) == 0 {
		return errors.New("radsec.ca: required (the CA certificates, PEM, that sign the APs' certificates)")
	}
	for i, f := range r.CA {
		if f == "" {
			return fmt.Errorf("radsec.ca[%d]: empty file name", i)
		}
	}
	if r.Secret == "" {
		r.Secret = DefaultRadSecSecret
	}
	if r.Source != "" {
		a, err := netip.ParseAddr(r.Source)
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("radsec.source: %q is not an IP address", r.Source)
		}
		if a.IsUnspecified() || a.IsMulticast() {
			return fmt.Errorf("radsec.source: %s is not a unicast address", a)
		}
		r.SourceAddr = a.Unmap()
	}
	if len(r.AuthServers) == 0 {
		return errors.New("radsec.auth_servers: at least one server is required, e.g. [{address: 10.0.0.5:1812, secret: s3cret}]")
	}
	for _, g := range []struct {
		key     string
		servers []RADIUSServer
		port    uint16
	}{{"auth_servers", r.AuthServers, defaultAuthPort}, {"acct_servers", r.AcctServers, defaultAcctPort}} {
		seen := map[netip.AddrPort]int{}
		names := map[string]int{}
		for i := range g.servers {
			s := &g.servers[i]
			where := fmt.Sprintf("radsec.%s[%d]", g.key, i)
			if s.Name != "" {
				where = fmt.Sprintf("radsec.%s[%d] (%s)", g.key, i, s.Name)
			}
			if s.Address == "" {
				return fmt.Errorf("%s.address: required (IP:port)", where)
			}
			if s.Addr, err = parseServerAddr(s.Address, g.port); err != nil {
				return fmt.Errorf("%s.address: %w", where, err)
			}
			if j, dup := seen[s.Addr]; dup {
				return fmt.Errorf("%s.address: %s is already radsec.%s[%d]", where, s.Addr, g.key, j)
			}
			seen[s.Addr] = i
			if s.Name == "" {
				s.Name = s.Addr.String()
			}
			if j, dup := names[s.Name]; dup {
				return fmt.Errorf("%s.name: %q is already the name of radsec.%s[%d]", where, s.Name, g.key, j)
			}
			names[s.Name] = i
			if s.Secret == "" {
				return fmt.Errorf("%s.secret: required (the RADIUS shared secret of this server)", where)
			}
			if r.SourceAddr.IsValid() && r.SourceAddr.Is4() != s.Addr.Addr().Is4() {
				return fmt.Errorf("%s.address: %s is not of the same family as radsec.source %s", where, s.Addr, r.SourceAddr)
			}
		}
	}
	if r.MaxConnections == 0 {
		r.MaxConnections = DefaultMaxConnections
	}
	if r.MaxConnections < 1 || r.MaxConnections > 1<<20 {
		return fmt.Errorf("radsec.max_connections: %d is outside 1..1048576", r.MaxConnections)
	}
	if r.MaxInflight == 0 {
		r.MaxInflight = DefaultMaxInflight
	}
	if r.MaxInflight < 1 || r.MaxInflight > maxPerConnectionInflight {
		return fmt.Errorf("radsec.max_inflight: %d is outside 1..%d (one RADIUS identifier space per connection)", r.MaxInflight, maxPerConnectionInflight)
	}
	durations := []struct {
		key      string
		d        *Duration
		def      time.Duration
		min, max time.Duration
	}{
		{"handshake_timeout", &r.HandshakeTimeout, DefaultHandshakeTimeout, 100 * time.Millisecond, time.Minute},
		{"idle_timeout", &r.IdleTimeout, DefaultIdleTimeout, time.Second, 24 * time.Hour},
		{"timeout", &r.Timeout, DefaultRADIUSTimeout, 10 * time.Millisecond, time.Minute},
		{"status_interval", &r.StatusInterval, DefaultStatusInterval, 10 * time.Millisecond, time.Hour},
		{"dead_time", &r.DeadTime, DefaultDeadTime, 10 * time.Millisecond, time.Hour},
	}
	for _, d := range durations {
		if *d.d == 0 {
			*d.d = Duration(d.def)
		}
		if v := time.Duration(*d.d); v < d.min || v > d.max {
			return fmt.Errorf("radsec.%s: %v is outside %v..%v", d.key, v, d.min, d.max)
		}
	}
	if r.Retries != nil && (*r.Retries < 0 || *r.Retries > maxRADIUSRetries) {
		return fmt.Errorf("radsec.retries: %d is outside 0..%d", *r.Retries, maxRADIUSRetries)
	}
	for _, n := range []struct {
		key string
		v   *int
		def int
	}{{"down_after", &r.DownAfter, DefaultDownAfter}, {"up_after", &r.UpAfter, DefaultUpAfter}} {
		if *n.v == 0 {
			*n.v = n.def
		}
		if *n.v < 1 || *n.v > 100 {
			return fmt.Errorf("radsec.%s: %d is outside 1..100", n.key, *n.v)
		}
	}
	return nil
}

func (m *Management) validate() error {
	switch m.Listen {
	case "":
		m.Listen = DefaultManagementListen
		return nil
	case "off":
		m.Explicit = true
		return nil
	}
	m.Explicit = true
	ap, err := parseListen(m.Listen, DefaultManagementPort)
	if err != nil {
		return fmt.Errorf("management.listen: %w", err)
	}
	m.Listen = ap.String()
	return nil
}

// parseListen reads host:port, :port, or (when defPort > 0) a bare host.
// Port 0 picks a free port (tests).
func parseListen(s string, defPort uint16) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if defPort == 0 {
			return netip.AddrPort{}, fmt.Errorf("%q is not an address:port like 0.0.0.0:2083", s)
		}
		host, port = s, strconv.Itoa(int(defPort))
	}
	a := netip.IPv4Unspecified()
	if host != "" {
		if a, err = netip.ParseAddr(host); err != nil || a.Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("%q: %q is not an IP address", s, host)
		}
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: %q is not a port 0..65535", s, port)
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(p)), nil
}

// parseServerAddr reads IP:port or a bare IP (port defPort).
func parseServerAddr(s string, defPort uint16) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 || ap.Addr().IsUnspecified() || ap.Addr().IsMulticast() || ap.Addr().Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("%q is not a unicast IP:port", s)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil || a.IsUnspecified() || a.IsMulticast() || a.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP address with an optional port, like 10.0.0.5:%d", s, defPort)
	}
	return netip.AddrPortFrom(a.Unmap(), defPort), nil
}
