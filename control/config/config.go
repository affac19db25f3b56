// Package config reads and validates tunterm's YAML configuration.
//
// Load returns a Config whose values are checked and defaulted: the rest of
// tunterm never sees an invalid address, VLAN or key. Errors name the key
// path and the offending value so an operator can fix the file at 3 a.m.
package config

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Defaults.
const (
	DefaultMTU          = 1300
	DefaultAging        = 300 * time.Second
	DefaultFDBSize      = 262144
	DefaultReplayWindow = 64
	DefaultMAC          = "02:74:74:00:00:01" // used when downstream.mac is unset (replay)
)

// Config is the whole file.
type Config struct {
	Downstream  Downstream   `yaml:"downstream"`
	Upstream    Upstream     `yaml:"upstream"`
	Bridge      Bridge       `yaml:"bridge"`
	Tunnels     []Tunnel     `yaml:"tunnels"`
	StaticPeers []StaticPeer `yaml:"static_peers"`
	// Workers is the number of dataplane workers: auto (one per CPU in
	// cpus, or per online CPU) or a number.
	Workers Workers `yaml:"workers"`
	// CPUs pins worker i to CPUs[i].
	CPUs  []int `yaml:"cpus"`
	Ports Ports `yaml:"ports"`
	// RadSec is the RadSec proxy (docs/radsec.md); nil when absent.
	RadSec *RadSec `yaml:"radsec"`
	// Management is the /metrics and /debug HTTP server.
	Management Management `yaml:"management"`
	// IKE is the IKEv2 responder (docs/ike.md); nil when absent.
	IKE *IKE `yaml:"ike"`
}

// Downstream is the APs' side: the tunnel address lives here.
type Downstream struct {
	Interface string `yaml:"interface"`
	// Address is the tunnel address with its prefix length (CIDR).
	Address string `yaml:"address"`
	// Gateway is the next hop for peers outside Address's subnet.
	Gateway string `yaml:"gateway"`
	// MAC is our source MAC; the daemon reads it from the interface.
	MAC string `yaml:"mac"`
	// GatewayMAC is a static next-hop MAC, used until one is learned.
	GatewayMAC string `yaml:"gateway_mac"`

	Prefix  netip.Prefix `yaml:"-"`
	GW      netip.Addr   `yaml:"-"`
	HWAddr  [6]byte      `yaml:"-"`
	GWMAC   [6]byte      `yaml:"-"`
	HaveGWM bool         `yaml:"-"`
}

// Upstream is the corporate trunk.
type Upstream struct {
	Interface string `yaml:"interface"`
	// VLAN > 0 makes the port an access port carrying that VLAN untagged.
	VLAN uint16 `yaml:"vlan"`
}

// Bridge tunes the L2 bridge.
type Bridge struct {
	// Hairpin allows session-to-session forwarding (default false).
	Hairpin bool `yaml:"hairpin"`
	// Aging is the FDB aging time (default 300s).
	Aging Duration `yaml:"aging"`
	// MaxMACsPerSession is the default MAC limit per session (0 = none).
	MaxMACsPerSession uint32 `yaml:"max_macs_per_session"`
	// FDBSize is the FDB capacity in entries (default 262144).
	FDBSize int `yaml:"fdb_size"`
}

// Tunnel is a tunnel profile (the seed's "tunnel").
type Tunnel struct {
	Name       string   `yaml:"name"`
	VLANs      []uint16 `yaml:"vlans"`
	NativeVLAN uint16   `yaml:"native_vlan"`
	Protocol   string   `yaml:"protocol"` // ip | udp
	MTU        int      `yaml:"mtu"`
	IPsec      *bool    `yaml:"ipsec"`
}

// StaticPeer is a manually keyed AP: one L2TPv3 session and its ESP SAs.
type StaticPeer struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address"`
	Tunnel  string `yaml:"tunnel"`
	// MaxMACs overrides bridge.max_macs_per_session.
	MaxMACs *uint32 `yaml:"max_macs"`
	L2TP    L2TP    `yaml:"l2tp"`
	ESP     *ESP    `yaml:"esp"`

	Addr netip.Addr `yaml:"-"`
}

// L2TP is a static L2TPv3 session. local_* is what we receive, remote_*
// what we send.
type L2TP struct {
	LocalSessionID  Uint32 `yaml:"local_session_id"`
	RemoteSessionID Uint32 `yaml:"remote_session_id"`
	LocalCookie     Hex    `yaml:"local_cookie"`
	RemoteCookie    Hex    `yaml:"remote_cookie"`
	Pseudowire      string `yaml:"pseudowire"`  // ethernet | vlan
	L2Specific      string `yaml:"l2_specific"` // default | none
}

// ESP is a static SA pair.
type ESP struct {
	Mode         string `yaml:"mode"` // transport | tunnel
	UDPEncap     bool   `yaml:"udp_encap"`
	ESN          bool   `yaml:"esn"`
	ReplayWindow int    `yaml:"replay_window"`
	// AntiReplay checks inbound sequence numbers (default true). RFC 4303
	// §3.4.3 lets the receiver turn it off, e.g. for manually keyed SAs
	// whose counters cannot be reset, or a load generator's fixed frames.
	AntiReplay *bool `yaml:"anti_replay"`
	// Inner addresses for tunnel mode (default: the outer ones).
	Inner    Inner    `yaml:"inner"`
	Lifetime Lifetime `yaml:"lifetime"`
	In       SA       `yaml:"in"`
	Out      SA       `yaml:"out"`
}

// Inner holds tunnel-mode inner addresses.
type Inner struct {
	Local  string `yaml:"local"`
	Remote string `yaml:"remote"`

	LocalAddr, RemoteAddr netip.Addr `yaml:"-"`
}

// Lifetime limits an SA (0 = none). Soft limits flag the SA for rekeying,
// hard limits stop it.
type Lifetime struct {
	Bytes       uint64 `yaml:"bytes"`
	Packets     uint64 `yaml:"packets"`
	SoftBytes   uint64 `yaml:"soft_bytes"`
	SoftPackets uint64 `yaml:"soft_packets"`
}

// SA is one direction's keys.
type SA struct {
	SPI      Uint32 `yaml:"spi"`
	Enc      string `yaml:"enc"`
	EncKey   Hex    `yaml:"enc_key"`
	Integ    string `yaml:"integ"`
	IntegKey Hex    `yaml:"integ_key"`
}

// valueError is a bad value found by an UnmarshalYAML method, which does not
// know its key; Parse prefixes the key path found from the node's position.
type valueError struct {
	line, col int
	msg       string
}

func (e *valueError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

func badValue(n *yaml.Node, format string, args ...any) error {
	return &valueError{n.Line, n.Column, fmt.Sprintf(format, args...)}
}

// scalar rejects lists and mappings where a single value belongs.
func scalar(n *yaml.Node, what string) error {
	if n.Kind != yaml.ScalarNode {
		return badValue(n, "a %s is required, not a list or mapping", what)
	}
	return nil
}

// Uint32 accepts decimal or 0x-prefixed hexadecimal, bare or quoted.
type Uint32 uint32

// UnmarshalYAML implements yaml.Unmarshaler.
func (u *Uint32) UnmarshalYAML(n *yaml.Node) error {
	if err := scalar(n, "32-bit number"); err != nil {
		return err
	}
	// Not base 0: that would read "010" as octal 8 and accept 0b/0o/_ forms.
	s, base := strings.TrimSpace(n.Value), 10
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		s, base = s[2:], 16
	}
	v, err := strconv.ParseUint(s, base, 32)
	if err != nil {
		return badValue(n, "%q is not a 32-bit number (decimal or 0x...)", n.Value)
	}
	*u = Uint32(v)
	return nil
}

// Hex is a byte string written in hex ("0011aabb", colons allowed).
type Hex []byte

// UnmarshalYAML implements yaml.Unmarshaler.
func (h *Hex) UnmarshalYAML(n *yaml.Node) error {
	if err := scalar(n, "hex string"); err != nil {
		return err
	}
	s := strings.TrimPrefix(strings.ReplaceAll(n.Value, ":", ""), "0x")
	b, err := hex.DecodeString(s)
	if err != nil {
		return badValue(n, "%q is not a hex string", n.Value)
	}
	*h = b
	return nil
}

// Duration accepts Go durations ("300s", "24h").
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if err := scalar(n, "duration"); err != nil {
		return err
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return badValue(n, "%q is not a duration like 300s or 24h", n.Value)
	}
	*d = Duration(v)
	return nil
}

// Load reads and validates the file at path.
func Load(path string) (*Config, error) { return load(path, Parse) }

func load(path string, parse func([]byte) (*Config, error)) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// decode reads YAML into c; unknown keys are errors, and errors name the
// key path where they can.
func decode(b []byte, c *Config) error {
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if err := d.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("config is empty")
		}
		var ve *valueError
		if errors.As(err, &ve) {
			if p := keyPath(b, ve.line, ve.col); p != "" {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// Parse decodes and validates YAML. Unknown keys are errors.
func Parse(b []byte) (*Config, error) {
	c := Config{Ports: Ports{NeedWakeup: true}}
	if err := decode(b, &c); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// keyPath returns the key path, in validate's style
// ("static_peers[0] (ap1).l2tp.local_cookie"), of the value at line:col of
// the YAML document b, or "" when there is none.
func keyPath(b []byte, line, col int) string {
	var root yaml.Node
	if yaml.Unmarshal(b, &root) != nil {
		return ""
	}
	var walk func(n *yaml.Node, path string) (string, bool)
	walk = func(n *yaml.Node, path string) (string, bool) {
		if n.Line == line && n.Column == col && n.Kind != yaml.DocumentNode {
			return path, true
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if p, ok := walk(c, path); ok {
					return p, true
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if path != "" {
					p = path + "." + p
				}
				if p, ok := walk(n.Content[i+1], p); ok {
					return p, true
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if c.Kind == yaml.MappingNode {
					for j := 0; j+1 < len(c.Content); j += 2 {
						if c.Content[j].Value == "name" && c.Content[j+1].Value != "" {
							p += " (" + c.Content[j+1].Value + ")"
							break
						}
					}
				}
				if p, ok := walk(c, p); ok {
					return p, true
				}
			}
		}
		return "", false
	}
	p, _ := walk(&root, "")
	return p
}

// IPsecOn reports the tunnel's effective ipsec setting (default true).
func (t *Tunnel) IPsecOn() bool { return t.IPsec == nil || *t.IPsec }

func parseMAC(s string) ([6]byte, error) {
	var m [6]byte
	h := strings.ReplaceAll(strings.ReplaceAll(s, ":", ""), "-", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 6 {
		return m, fmt.Errorf("%q is not a MAC address like 02:00:00:00:00:01", s)
	}
	copy(m[:], b)
	return m, nil
}

func (c *Config) validate() error {
	if err := c.validateDataplane(); err != nil {
		return err
	}
	if err := c.validateRadSec(); err != nil {
		return err
	}
	ds := &c.Downstream
	if ds.Address == "" {
		return errors.New("downstream.address: required (the tunnel address, e.g. 198.18.0.1/24)")
	}
	p, err := netip.ParsePrefix(ds.Address)
	if err != nil {
		a, err2 := netip.ParseAddr(ds.Address)
		if err2 != nil {
			return fmt.Errorf("downstream.address: %q is not an address/prefix like 198.18.0.1/24", ds.Address)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	ds.Prefix = p
	if ds.Gateway != "" {
		if ds.GW, err = netip.ParseAddr(ds.Gateway); err != nil || ds.GW.Is4() != p.Addr().Is4() {
			return fmt.Errorf("downstream.gateway: %q is not an address of the same family as downstream.address", ds.Gateway)
		}
	}
	mac := ds.MAC
	if mac == "" {
		mac = DefaultMAC
	}
	if ds.HWAddr, err = parseMAC(mac); err != nil {
		return fmt.Errorf("downstream.mac: %w", err)
	}
	if ds.GatewayMAC != "" {
		if ds.GWMAC, err = parseMAC(ds.GatewayMAC); err != nil {
			return fmt.Errorf("downstream.gateway_mac: %w", err)
		}
		ds.HaveGWM = true
	}
	if c.Upstream.VLAN > 4094 {
		return fmt.Errorf("upstream.vlan: %d is not a VLAN ID (0 = trunk, 1..4094 = access VLAN)", c.Upstream.VLAN)
	}
	b := &c.Bridge
	if b.Aging == 0 {
		b.Aging = Duration(DefaultAging)
	}
	if time.Duration(b.Aging) < time.Second {
		return fmt.Errorf("bridge.aging: %v is shorter than 1s", time.Duration(b.Aging))
	}
	if b.FDBSize == 0 {
		b.FDBSize = DefaultFDBSize
	}
	if b.FDBSize < 1024 || b.FDBSize > 1<<24 {
		return fmt.Errorf("bridge.fdb_size: %d is outside 1024..16777216", b.FDBSize)
	}

	tunnels := map[string]*Tunnel{}
	var upstreamCarried bool
	for i := range c.Tunnels {
		t := &c.Tunnels[i]
		where := fmt.Sprintf("tunnels[%d]", i)
		if t.Name == "" {
			return fmt.Errorf("%s.name: required", where)
		}
		where = fmt.Sprintf("tunnels[%d] (%s)", i, t.Name)
		if tunnels[t.Name] != nil {
			return fmt.Errorf("%s: duplicate tunnel name", where)
		}
		tunnels[t.Name] = t
		if len(t.VLANs) == 0 {
			return fmt.Errorf("%s.vlans: at least one VLAN is required", where)
		}
		seen := map[uint16]bool{}
		for _, v := range t.VLANs {
			if v < 1 || v > 4094 {
				return fmt.Errorf("%s.vlans: %d is not a VLAN ID (1..4094)", where, v)
			}
			if seen[v] {
				return fmt.Errorf("%s.vlans: %d listed twice", where, v)
			}
			seen[v] = true
			if v == c.Upstream.VLAN {
				upstreamCarried = true
			}
		}
		if t.NativeVLAN == 0 {
			t.NativeVLAN = t.VLANs[0]
		} else if !seen[t.NativeVLAN] {
			return fmt.Errorf("%s.native_vlan: %d is not in vlans %v", where, t.NativeVLAN, t.VLANs)
		}
		switch t.Protocol {
		case "":
			t.Protocol = "ip"
		case "ip", "udp":
		default:
			return fmt.Errorf("%s.protocol: %q is not ip or udp", where, t.Protocol)
		}
		if t.MTU == 0 {
			t.MTU = DefaultMTU
		}
		if t.MTU < 576 || t.MTU > 9216 {
			return fmt.Errorf("%s.mtu: %d is outside 576..9216", where, t.MTU)
		}
	}
	if c.Upstream.VLAN > 0 && len(c.Tunnels) > 0 && !upstreamCarried {
		return fmt.Errorf("upstream.vlan: access VLAN %d is not in any tunnel's vlans", c.Upstream.VLAN)
	}

	names := map[string]bool{}
	sids := map[uint32]string{}
	spis := map[uint32]string{}
	for i := range c.StaticPeers {
		sp := &c.StaticPeers[i]
		where := fmt.Sprintf("static_peers[%d]", i)
		if sp.Name == "" {
			return fmt.Errorf("%s.name: required", where)
		}
		where = fmt.Sprintf("static_peers[%d] (%s)", i, sp.Name)
		if names[sp.Name] {
			return fmt.Errorf("%s: duplicate peer name", where)
		}
		names[sp.Name] = true
		if sp.Addr, err = netip.ParseAddr(sp.Address); err != nil {
			return fmt.Errorf("%s.address: %q is not an IP address", where, sp.Address)
		}
		if sp.Addr.Is4() != ds.Prefix.Addr().Is4() {
			return fmt.Errorf("%s.address: %s is not of the same family as downstream.address %s", where, sp.Addr, ds.Prefix.Addr())
		}
		if sp.Addr == ds.Prefix.Addr() {
			return fmt.Errorf("%s.address: %s is downstream.address itself", where, sp.Addr)
		}
		t := tunnels[sp.Tunnel]
		if t == nil {
			return fmt.Errorf("%s.tunnel: no tunnel named %q", where, sp.Tunnel)
		}
		l := &sp.L2TP
		for _, id := range []struct {
			k string
			v Uint32
		}{{"local_session_id", l.LocalSessionID}, {"remote_session_id", l.RemoteSessionID}} {
			if id.v == 0 {
				return fmt.Errorf("%s.l2tp.%s: 0 is not a session ID (required, 1..4294967295; 0 marks control messages, RFC 3931 §4.1.1.2)", where, id.k)
			}
		}
		if other, dup := sids[uint32(l.LocalSessionID)]; dup {
			return fmt.Errorf("%s.l2tp.local_session_id: %d is already used by %s", where, l.LocalSessionID, other)
		}
		sids[uint32(l.LocalSessionID)] = sp.Name
		for _, ck := range []struct {
			k string
			v Hex
		}{{"local_cookie", l.LocalCookie}, {"remote_cookie", l.RemoteCookie}} {
			if n := len(ck.v); n != 0 && n != 4 && n != 8 {
				return fmt.Errorf("%s.l2tp.%s: %d bytes; a cookie is 0, 4 or 8 bytes (RFC 3931 §4.1)", where, ck.k, n)
			}
		}
		switch l.Pseudowire {
		case "":
			l.Pseudowire = "ethernet"
		case "ethernet", "vlan":
		default:
			return fmt.Errorf("%s.l2tp.pseudowire: %q is not ethernet or vlan", where, l.Pseudowire)
		}
		switch l.L2Specific {
		case "":
			l.L2Specific = "default"
		case "default", "none":
		default:
			return fmt.Errorf("%s.l2tp.l2_specific: %q is not default or none", where, l.L2Specific)
		}
		if sp.MaxMACs == nil {
			m := b.MaxMACsPerSession
			sp.MaxMACs = &m
		}
		e := sp.ESP
		if e == nil {
			if t.IPsecOn() && c.IKE == nil {
				return fmt.Errorf("%s.esp: required because tunnel %s has ipsec: true (or configure ike: to negotiate the SAs)", where, t.Name)
			}
			continue
		}
		if !t.IPsecOn() {
			return fmt.Errorf("%s.esp: given but tunnel %s has ipsec: false", where, t.Name)
		}
		switch e.Mode {
		case "":
			e.Mode = "transport"
		case "transport", "tunnel":
		default:
			return fmt.Errorf("%s.esp.mode: %q is not transport or tunnel", where, e.Mode)
		}
		if e.ReplayWindow == 0 {
			e.ReplayWindow = DefaultReplayWindow
		}
		if e.ReplayWindow < 64 || e.ReplayWindow > 4096 {
			return fmt.Errorf("%s.esp.replay_window: %d is outside 64..4096", where, e.ReplayWindow)
		}
		e.Inner.LocalAddr, e.Inner.RemoteAddr = ds.Prefix.Addr(), sp.Addr
		if e.Inner.Local != "" {
			if e.Inner.LocalAddr, err = netip.ParseAddr(e.Inner.Local); err != nil {
				return fmt.Errorf("%s.esp.inner.local: %q is not an IP address", where, e.Inner.Local)
			}
		}
		if e.Inner.Remote != "" {
			if e.Inner.RemoteAddr, err = netip.ParseAddr(e.Inner.Remote); err != nil {
				return fmt.Errorf("%s.esp.inner.remote: %q is not an IP address", where, e.Inner.Remote)
			}
		}
		if e.Inner.LocalAddr.Is4() != e.Inner.RemoteAddr.Is4() {
			return fmt.Errorf("%s.esp.inner: local %s and remote %s must be of the same family", where, e.Inner.LocalAddr, e.Inner.RemoteAddr)
		}
		for _, s := range []struct {
			k  string
			sa *SA
		}{{"in", &e.In}, {"out", &e.Out}} {
			if s.sa.SPI < 256 {
				return fmt.Errorf("%s.esp.%s.spi: %d is reserved (SPIs 0..255, RFC 4303 §2.1)", where, s.k, s.sa.SPI)
			}
			if s.sa.Enc == "" {
				return fmt.Errorf("%s.esp.%s.enc: required (aes-gcm-128/256, aes-ctr-128/256, aes-cbc-128/256, chacha20-poly1305)", where, s.k)
			}
		}
		if other, dup := spis[uint32(e.In.SPI)]; dup {
			return fmt.Errorf("%s.esp.in.spi: 0x%x is already used by %s", where, uint32(e.In.SPI), other)
		}
		spis[uint32(e.In.SPI)] = sp.Name
	}
	return c.validateIKE()
}
