package config

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Keys of the right lengths for the programmer (config.Parse does not check
// them): AES-GCM-256 and AES-CTR-256 are 32 bytes of key + 4 of salt/nonce
// (RFC 4106 §8.1, RFC 3686 §5.1); HMAC-SHA2-512-256 is 64 bytes (RFC 4868 §2.1.1).
var (
	keyGCM  = strings.Repeat("33", 32) + "b1b2b3b4"
	keyCTR  = strings.Repeat("44", 32) + "c1c2c3c4"
	keyHMAC = strings.Repeat("55", 64)
)

// issueExample is the configuration from the issue, with real hex keys.
var issueExample = `
downstream: {interface: eth0, address: 198.18.0.1/24, gateway: 198.18.0.254}
upstream:   {interface: eth1, vlan: 0}
tunnels:
  - name: corp
    vlans: [100, 200]
    native_vlan: 100
    protocol: ip
    mtu: 1300
    ipsec: true
static_peers:
  - name: ap1
    address: 198.18.0.2
    tunnel: corp
    l2tp: {local_session_id: 4097, remote_session_id: 8193, local_cookie: "0011223344556677",
           remote_cookie: "8899aabbccddeeff", pseudowire: vlan}
    esp:
      mode: transport
      udp_encap: false
      esn: false
      in:  {spi: 0x1000, enc: aes-gcm-256, enc_key: "` + keyGCM + `"}
      out: {spi: 0x2000, enc: aes-ctr-256, enc_key: "` + keyCTR + `", integ: hmac-sha2-512-256, integ_key: "` + keyHMAC + `"}
`

// ap2 is a second peer to append to issueExample's static_peers.
var ap2 = `
  - name: ap2
    address: 198.18.0.3
    tunnel: corp
    l2tp: {local_session_id: 4098, remote_session_id: 8194}
    esp:
      in:  {spi: 0x1001, enc: aes-gcm-256, enc_key: "` + keyGCM + `"}
      out: {spi: 0x2001, enc: aes-gcm-256, enc_key: "` + keyGCM + `"}
`

// edit returns issueExample with each old string replaced by the following
// new one; every old string must occur exactly once.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	s := issueExample
	for i := 0; i+1 < len(pairs); i += 2 {
		if n := strings.Count(s, pairs[i]); n != 1 {
			t.Fatalf("edit: %q occurs %d times in the example, want 1", pairs[i], n)
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseIssueExample(t *testing.T) {
	c, err := Parse([]byte(issueExample))
	if err != nil {
		t.Fatalf("Parse(issue example) = %v, want nil", err)
	}
	ds := c.Downstream
	if ds.Prefix != netip.MustParsePrefix("198.18.0.1/24") || ds.GW != netip.MustParseAddr("198.18.0.254") ||
		ds.HWAddr != [6]byte{0x02, 0x74, 0x74, 0, 0, 1} || ds.HaveGWM || ds.Interface != "eth0" {
		t.Errorf("Parse(issue example).Downstream = %+v", ds)
	}
	if c.Upstream != (Upstream{Interface: "eth1", VLAN: 0}) {
		t.Errorf("Parse(issue example).Upstream = %+v", c.Upstream)
	}
	if c.Bridge != (Bridge{Aging: Duration(300 * time.Second), FDBSize: 262144}) {
		t.Errorf("Parse(issue example).Bridge = %+v, want aging 300s, fdb_size 262144", c.Bridge)
	}
	if len(c.Tunnels) != 1 {
		t.Fatalf("Parse(issue example) has %d tunnels, want 1", len(c.Tunnels))
	}
	tn := c.Tunnels[0]
	if tn.Name != "corp" || len(tn.VLANs) != 2 || tn.VLANs[0] != 100 || tn.VLANs[1] != 200 || tn.NativeVLAN != 100 ||
		tn.Protocol != "ip" || tn.MTU != 1300 || !tn.IPsecOn() {
		t.Errorf("Parse(issue example).Tunnels[0] = %+v", tn)
	}
	if len(c.StaticPeers) != 1 {
		t.Fatalf("Parse(issue example) has %d peers, want 1", len(c.StaticPeers))
	}
	sp := c.StaticPeers[0]
	if sp.Name != "ap1" || sp.Addr != netip.MustParseAddr("198.18.0.2") || sp.Tunnel != "corp" || sp.MaxMACs == nil || *sp.MaxMACs != 0 {
		t.Errorf("Parse(issue example).StaticPeers[0] = %+v", sp)
	}
	l := sp.L2TP
	if l.LocalSessionID != 4097 || l.RemoteSessionID != 8193 ||
		!bytes.Equal(l.LocalCookie, []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77}) ||
		!bytes.Equal(l.RemoteCookie, []byte{0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}) ||
		l.Pseudowire != "vlan" || l.L2Specific != "default" {
		t.Errorf("Parse(issue example).StaticPeers[0].L2TP = %+v", l)
	}
	e := sp.ESP
	if e == nil {
		t.Fatal("Parse(issue example).StaticPeers[0].ESP = nil")
	}
	if e.Mode != "transport" || e.UDPEncap || e.ESN || e.ReplayWindow != 64 ||
		e.Inner.LocalAddr != netip.MustParseAddr("198.18.0.1") || e.Inner.RemoteAddr != netip.MustParseAddr("198.18.0.2") {
		t.Errorf("Parse(issue example) ESP = %+v", e)
	}
	if e.In.SPI != 0x1000 || e.In.Enc != "aes-gcm-256" || !bytes.Equal(e.In.EncKey, mustHex(t, keyGCM)) || len(e.In.EncKey) != 36 ||
		e.In.Integ != "" || len(e.In.IntegKey) != 0 {
		t.Errorf("Parse(issue example) ESP in = %+v", e.In)
	}
	if e.Out.SPI != 0x2000 || e.Out.Enc != "aes-ctr-256" || !bytes.Equal(e.Out.EncKey, mustHex(t, keyCTR)) ||
		e.Out.Integ != "hmac-sha2-512-256" || !bytes.Equal(e.Out.IntegKey, mustHex(t, keyHMAC)) || len(e.Out.IntegKey) != 64 {
		t.Errorf("Parse(issue example) ESP out = %+v", e.Out)
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		yaml  func(t *testing.T) string
		check func(t *testing.T, c *Config)
	}{
		{"defaults for omitted tunnel and peer settings",
			func(t *testing.T) string {
				return edit(t, "    native_vlan: 100\n    protocol: ip\n    mtu: 1300\n    ipsec: true\n", "",
					", pseudowire: vlan}", "}", "      mode: transport\n", "")
			},
			func(t *testing.T, c *Config) {
				tn := c.Tunnels[0]
				if tn.NativeVLAN != 100 || tn.Protocol != "ip" || tn.MTU != DefaultMTU || tn.IPsec != nil || !tn.IPsecOn() {
					t.Errorf("tunnel defaults = native %d protocol %q mtu %d ipsec %v, want 100 ip 1300 true", tn.NativeVLAN, tn.Protocol, tn.MTU, tn.IPsecOn())
				}
				l, e := c.StaticPeers[0].L2TP, c.StaticPeers[0].ESP
				if l.Pseudowire != "ethernet" || l.L2Specific != "default" || e.Mode != "transport" || e.ReplayWindow != DefaultReplayWindow {
					t.Errorf("peer defaults = pseudowire %q l2_specific %q mode %q replay %d", l.Pseudowire, l.L2Specific, e.Mode, e.ReplayWindow)
				}
				if c.Bridge.Aging != Duration(DefaultAging) || c.Bridge.FDBSize != DefaultFDBSize {
					t.Errorf("bridge defaults = %+v", c.Bridge)
				}
			}},
		{"native_vlan defaults to the first VLAN, not the lowest",
			func(t *testing.T) string {
				return edit(t, "vlans: [100, 200]", "vlans: [300, 200, 100]", "    native_vlan: 100\n", "")
			},
			func(t *testing.T, c *Config) {
				if got := c.Tunnels[0].NativeVLAN; got != 300 {
					t.Errorf("native_vlan = %d, want 300", got)
				}
			}},
		{"SPI spellings: 0x1000, \"0x2000\", 4098, '8193'",
			func(t *testing.T) string {
				return edit(t, "spi: 0x2000", "spi: \"0x2000\"") + ap2 +
					strings.NewReplacer("ap2", "ap3", "198.18.0.3", "198.18.0.4", "4098", "4099", "8194", "8195",
						"spi: 0x1001", "spi: 4098", "spi: 0x2001", "spi: '8193'").Replace(ap2)
			},
			func(t *testing.T, c *Config) {
				want := [][2]Uint32{{0x1000, 0x2000}, {0x1001, 0x2001}, {4098, 8193}}
				for i, sp := range c.StaticPeers {
					if sp.ESP.In.SPI != want[i][0] || sp.ESP.Out.SPI != want[i][1] {
						t.Errorf("peer %s SPIs = %#x, %#x, want %#x, %#x", sp.Name, sp.ESP.In.SPI, sp.ESP.Out.SPI, want[i][0], want[i][1])
					}
				}
			}},
		{"SPI in decimal equals hex",
			func(t *testing.T) string { return edit(t, "spi: 0x1000", "spi: 4096") },
			func(t *testing.T, c *Config) {
				if got := c.StaticPeers[0].ESP.In.SPI; got != 0x1000 {
					t.Errorf("spi: 4096 = %#x, want 0x1000", got)
				}
			}},
		{"session IDs in hex, max 32-bit",
			func(t *testing.T) string {
				return edit(t, "local_session_id: 4097", "local_session_id: 0xffffffff", "remote_session_id: 8193", "remote_session_id: \"0x1\"")
			},
			func(t *testing.T, c *Config) {
				if l := c.StaticPeers[0].L2TP; l.LocalSessionID != 0xffffffff || l.RemoteSessionID != 1 {
					t.Errorf("session IDs = %#x, %#x, want 0xffffffff, 0x1", l.LocalSessionID, l.RemoteSessionID)
				}
			}},
		{"leading zeros are decimal, not octal; 0X is hex",
			func(t *testing.T) string {
				return edit(t, "local_session_id: 4097", "local_session_id: 010", "remote_session_id: 8193", "remote_session_id: 0X2001")
			},
			func(t *testing.T, c *Config) {
				if l := c.StaticPeers[0].L2TP; l.LocalSessionID != 10 || l.RemoteSessionID != 0x2001 {
					t.Errorf("session IDs 010, 0X2001 = %d, %#x, want 10, 0x2001", l.LocalSessionID, l.RemoteSessionID)
				}
			}},
		{"cookies with colons, 0x prefix, 4 bytes and none",
			func(t *testing.T) string {
				return edit(t, `local_cookie: "0011223344556677"`, `local_cookie: "00:11:22:33:44:55:66:77"`,
					`remote_cookie: "8899aabbccddeeff"`, `remote_cookie: 0x8899AABB`) + ap2
			},
			func(t *testing.T, c *Config) {
				l := c.StaticPeers[0].L2TP
				if !bytes.Equal(l.LocalCookie, []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77}) ||
					!bytes.Equal(l.RemoteCookie, []byte{0x88, 0x99, 0xaa, 0xbb}) {
					t.Errorf("cookies = %x, %x, want 0011223344556677, 8899aabb", l.LocalCookie, l.RemoteCookie)
				}
				if l2 := c.StaticPeers[1].L2TP; len(l2.LocalCookie) != 0 || len(l2.RemoteCookie) != 0 {
					t.Errorf("ap2 cookies = %x, %x, want none", l2.LocalCookie, l2.RemoteCookie)
				}
			}},
		{"ipsec false without esp",
			func(t *testing.T) string {
				s := edit(t, "ipsec: true", "ipsec: false")
				return s[:strings.Index(s, "    esp:")]
			},
			func(t *testing.T, c *Config) {
				if c.Tunnels[0].IPsecOn() || c.StaticPeers[0].ESP != nil {
					t.Errorf("ipsec = %v, esp = %+v, want false, nil", c.Tunnels[0].IPsecOn(), c.StaticPeers[0].ESP)
				}
			}},
		{"access upstream VLAN carried by the tunnel, udp, boundaries",
			func(t *testing.T) string {
				return edit(t, "vlan: 0}", "vlan: 4094}", "vlans: [100, 200]", "vlans: [1, 4094]", "native_vlan: 100", "native_vlan: 4094",
					"protocol: ip", "protocol: udp", "mtu: 1300", "mtu: 9216", "      esn: false\n", "      esn: true\n      replay_window: 4096\n")
			},
			func(t *testing.T, c *Config) {
				tn, e := c.Tunnels[0], c.StaticPeers[0].ESP
				if c.Upstream.VLAN != 4094 || tn.NativeVLAN != 4094 || tn.Protocol != "udp" || tn.MTU != 9216 || !e.ESN || e.ReplayWindow != 4096 {
					t.Errorf("got upstream %d native %d protocol %q mtu %d esn %v replay %d", c.Upstream.VLAN, tn.NativeVLAN, tn.Protocol, tn.MTU, e.ESN, e.ReplayWindow)
				}
			}},
		{"minimum MTU and replay window",
			func(t *testing.T) string {
				return edit(t, "mtu: 1300", "mtu: 576", "      esn: false\n", "      esn: false\n      replay_window: 64\n")
			},
			func(t *testing.T, c *Config) {
				if c.Tunnels[0].MTU != 576 || c.StaticPeers[0].ESP.ReplayWindow != 64 {
					t.Errorf("mtu %d replay %d, want 576 64", c.Tunnels[0].MTU, c.StaticPeers[0].ESP.ReplayWindow)
				}
			}},
		{"IPv6 outer, tunnel mode with explicit inner addresses, NAT-T",
			func(t *testing.T) string {
				return edit(t, "address: 198.18.0.1/24, gateway: 198.18.0.254", "address: 2001:db8::1/64, gateway: fe80::1",
					"address: 198.18.0.2", "address: 2001:db8::2",
					"mode: transport", "mode: tunnel\n      inner: {local: 10.0.0.1, remote: 10.0.0.2}",
					"udp_encap: false", "udp_encap: true")
			},
			func(t *testing.T, c *Config) {
				e := c.StaticPeers[0].ESP
				if c.Downstream.Prefix != netip.MustParsePrefix("2001:db8::1/64") || c.Downstream.GW != netip.MustParseAddr("fe80::1") ||
					c.StaticPeers[0].Addr != netip.MustParseAddr("2001:db8::2") || e.Mode != "tunnel" || !e.UDPEncap ||
					e.Inner.LocalAddr != netip.MustParseAddr("10.0.0.1") || e.Inner.RemoteAddr != netip.MustParseAddr("10.0.0.2") {
					t.Errorf("got downstream %+v peer %v esp %+v", c.Downstream, c.StaticPeers[0].Addr, e)
				}
			}},
		{"inner addresses default to downstream address and peer address",
			func(t *testing.T) string { return edit(t, "mode: transport", "mode: tunnel") },
			func(t *testing.T, c *Config) {
				e := c.StaticPeers[0].ESP
				if e.Inner.LocalAddr != netip.MustParseAddr("198.18.0.1") || e.Inner.RemoteAddr != netip.MustParseAddr("198.18.0.2") {
					t.Errorf("inner = %v, %v, want 198.18.0.1, 198.18.0.2", e.Inner.LocalAddr, e.Inner.RemoteAddr)
				}
			}},
		{"bare downstream address is a /32; MACs with dashes; bridge settings",
			func(t *testing.T) string {
				return edit(t, "address: 198.18.0.1/24, gateway: 198.18.0.254}",
					"address: 198.18.0.1, mac: \"02-00-00-00-00-01\", gateway_mac: \"02:00:00:00:00:FE\"}\nbridge: {hairpin: true, aging: 24h, fdb_size: 1024, max_macs_per_session: 16}",
					"    tunnel: corp\n", "    tunnel: corp\n    max_macs: 4\n") + ap2
			},
			func(t *testing.T, c *Config) {
				ds := c.Downstream
				if ds.Prefix != netip.MustParsePrefix("198.18.0.1/32") || ds.HWAddr != [6]byte{2, 0, 0, 0, 0, 1} ||
					ds.GWMAC != [6]byte{2, 0, 0, 0, 0, 0xfe} || !ds.HaveGWM || ds.GW.IsValid() {
					t.Errorf("downstream = %+v", ds)
				}
				if c.Bridge != (Bridge{Hairpin: true, Aging: Duration(24 * time.Hour), FDBSize: 1024, MaxMACsPerSession: 16}) {
					t.Errorf("bridge = %+v", c.Bridge)
				}
				if m := c.StaticPeers[0].MaxMACs; m == nil || *m != 4 {
					t.Errorf("ap1 max_macs = %v, want 4", m)
				}
				if m := c.StaticPeers[1].MaxMACs; m == nil || *m != 16 {
					t.Errorf("ap2 max_macs = %v, want bridge.max_macs_per_session 16", m)
				}
			}},
		{"two tunnels, l2_specific none, no peers",
			func(t *testing.T) string {
				s := edit(t, "    ipsec: true\n", "    ipsec: true\n  - name: guest\n    vlans: [300]\n    ipsec: false\n",
					", pseudowire: vlan}", ", pseudowire: vlan, l2_specific: none}")
				return s
			},
			func(t *testing.T, c *Config) {
				if len(c.Tunnels) != 2 || c.Tunnels[1].NativeVLAN != 300 || c.Tunnels[1].IPsecOn() || c.StaticPeers[0].L2TP.L2Specific != "none" {
					t.Errorf("tunnels = %+v, l2_specific %q", c.Tunnels, c.StaticPeers[0].L2TP.L2Specific)
				}
			}},
		{"the shipped demo config",
			func(t *testing.T) string {
				b, err := os.ReadFile("../../testdata/demo/tunterm.yaml")
				if err != nil {
					t.Skipf("demo config: %v", err)
				}
				return string(b)
			},
			func(t *testing.T, c *Config) {
				if len(c.StaticPeers) != 2 || c.StaticPeers[1].ESP.Mode != "tunnel" || !c.StaticPeers[1].ESP.UDPEncap {
					t.Errorf("demo peers = %+v", c.StaticPeers)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y := tc.yaml(t)
			c, err := Parse([]byte(y))
			if err != nil || c == nil {
				t.Fatalf("Parse(%s) = %v, %v, want a config", y, c, err)
			}
			tc.check(t, c)
		})
	}
}

func TestParseInvalid(t *testing.T) {
	peer1 := "static_peers[0] (ap1)"
	tests := []struct {
		name string
		yaml func(t *testing.T) string
		want []string // substrings of the error: the key path and the bad value
	}{
		{"missing downstream.address", func(t *testing.T) string { return edit(t, "address: 198.18.0.1/24, ", "") },
			[]string{"downstream.address", "required"}},
		{"bad CIDR", func(t *testing.T) string { return edit(t, "198.18.0.1/24", "198.18.0.1/33") },
			[]string{"downstream.address", `"198.18.0.1/33"`}},
		{"bad downstream address", func(t *testing.T) string { return edit(t, "198.18.0.1/24", "198.18.0.300/24") },
			[]string{"downstream.address", `"198.18.0.300/24"`}},
		{"gateway of the wrong family", func(t *testing.T) string { return edit(t, "gateway: 198.18.0.254", "gateway: 2001:db8::1") },
			[]string{"downstream.gateway", `"2001:db8::1"`}},
		{"gateway not an address", func(t *testing.T) string { return edit(t, "gateway: 198.18.0.254", "gateway: router") },
			[]string{"downstream.gateway", `"router"`}},
		{"bad MAC", func(t *testing.T) string {
			return edit(t, "gateway: 198.18.0.254}", `gateway: 198.18.0.254, mac: "02:00:00:00:00"}`)
		},
			[]string{"downstream.mac", `"02:00:00:00:00"`}},
		{"bad gateway MAC", func(t *testing.T) string {
			return edit(t, "gateway: 198.18.0.254}", `gateway: 198.18.0.254, gateway_mac: "zz:00:00:00:00:01"}`)
		}, []string{"downstream.gateway_mac", `"zz:00:00:00:00:01"`}},
		{"upstream.vlan 5000", func(t *testing.T) string { return edit(t, "vlan: 0}", "vlan: 5000}") },
			[]string{"upstream.vlan", "5000"}},
		{"access VLAN not carried by any tunnel", func(t *testing.T) string { return edit(t, "vlan: 0}", "vlan: 300}") },
			[]string{"upstream.vlan", "300"}},
		{"bridge.aging not a duration", func(t *testing.T) string { return edit(t, "upstream:", "bridge: {aging: 5 min}\nupstream:") },
			[]string{"bridge.aging", `"5 min"`}},
		{"bridge.aging below 1s", func(t *testing.T) string { return edit(t, "upstream:", "bridge: {aging: 500ms}\nupstream:") },
			[]string{"bridge.aging", "500ms"}},
		{"bridge.fdb_size too small", func(t *testing.T) string { return edit(t, "upstream:", "bridge: {fdb_size: 100}\nupstream:") },
			[]string{"bridge.fdb_size", "100"}},
		{"tunnel without a name", func(t *testing.T) string { return edit(t, "  - name: corp\n", "  - name: \"\"\n") },
			[]string{"tunnels[0].name", "required"}},
		{"duplicate tunnel", func(t *testing.T) string {
			return edit(t, "    ipsec: true\n", "    ipsec: true\n  - name: corp\n    vlans: [300]\n")
		},
			[]string{"tunnels[1] (corp)", "duplicate tunnel"}},
		{"no VLANs", func(t *testing.T) string {
			return edit(t, "vlans: [100, 200]", "vlans: []", "    native_vlan: 100\n", "")
		},
			[]string{"tunnels[0] (corp).vlans", "at least one"}},
		{"VLAN 0", func(t *testing.T) string { return edit(t, "vlans: [100, 200]", "vlans: [100, 0]") },
			[]string{"tunnels[0] (corp).vlans", "0 is not a VLAN ID"}},
		{"VLAN 4095", func(t *testing.T) string { return edit(t, "vlans: [100, 200]", "vlans: [100, 4095]") },
			[]string{"tunnels[0] (corp).vlans", "4095"}},
		{"duplicate VLAN", func(t *testing.T) string { return edit(t, "vlans: [100, 200]", "vlans: [100, 200, 100]") },
			[]string{"tunnels[0] (corp).vlans", "100 listed twice"}},
		{"native_vlan not in vlans", func(t *testing.T) string { return edit(t, "native_vlan: 100", "native_vlan: 300") },
			[]string{"tunnels[0] (corp).native_vlan", "300"}},
		{"protocol tcp", func(t *testing.T) string { return edit(t, "protocol: ip", "protocol: tcp") },
			[]string{"tunnels[0] (corp).protocol", `"tcp"`}},
		{"mtu 100", func(t *testing.T) string { return edit(t, "mtu: 1300", "mtu: 100") },
			[]string{"tunnels[0] (corp).mtu", "100"}},
		{"mtu 9217", func(t *testing.T) string { return edit(t, "mtu: 1300", "mtu: 9217") },
			[]string{"tunnels[0] (corp).mtu", "9217"}},
		{"peer without a name", func(t *testing.T) string { return edit(t, "  - name: ap1\n", "  - max_macs: 1\n") },
			[]string{"static_peers[0].name", "required"}},
		{"duplicate peer name", func(t *testing.T) string { return issueExample + strings.Replace(ap2, "name: ap2", "name: ap1", 1) },
			[]string{"static_peers[1] (ap1)", "duplicate peer name"}},
		{"bad peer address", func(t *testing.T) string { return edit(t, "address: 198.18.0.2", "address: 198.18.0.256") },
			[]string{peer1 + ".address", `"198.18.0.256"`}},
		{"missing peer address", func(t *testing.T) string { return edit(t, "    address: 198.18.0.2\n", "") },
			[]string{peer1 + ".address", `""`}},
		{"peer address family mismatch", func(t *testing.T) string { return edit(t, "address: 198.18.0.2", "address: 2001:db8::2") },
			[]string{peer1 + ".address", "2001:db8::2", "198.18.0.1"}},
		{"peer address is our own address", func(t *testing.T) string { return edit(t, "address: 198.18.0.2", "address: 198.18.0.1") },
			[]string{peer1 + ".address", "198.18.0.1", "downstream.address"}},
		{"unknown tunnel", func(t *testing.T) string { return edit(t, "tunnel: corp", "tunnel: guest") },
			[]string{peer1 + ".tunnel", `"guest"`}},
		{"local session ID 0", func(t *testing.T) string { return edit(t, "local_session_id: 4097", "local_session_id: 0") },
			[]string{peer1 + ".l2tp.local_session_id", "0 is not a session ID"}},
		{"remote session ID missing", func(t *testing.T) string { return edit(t, "remote_session_id: 8193, ", "") },
			[]string{peer1 + ".l2tp.remote_session_id", "0 is not a session ID"}},
		{"session ID over 32 bits", func(t *testing.T) string { return edit(t, "local_session_id: 4097", "local_session_id: 4294967296") },
			[]string{peer1 + ".l2tp.local_session_id", `"4294967296"`}},
		{"session ID in binary", func(t *testing.T) string {
			return edit(t, "local_session_id: 4097", "local_session_id: 0b1000000000001")
		},
			[]string{peer1 + ".l2tp.local_session_id", `"0b1000000000001"`}},
		{"session ID with underscores", func(t *testing.T) string { return edit(t, "local_session_id: 4097", "local_session_id: 4_097") },
			[]string{peer1 + ".l2tp.local_session_id", `"4_097"`}},
		{"negative SPI", func(t *testing.T) string { return edit(t, "spi: 0x1000", "spi: -4096") },
			[]string{peer1 + ".esp.in.spi", `"-4096"`}},
		{"SPI as a mapping", func(t *testing.T) string { return edit(t, "spi: 0x1000", "spi: {hex: 1000}") },
			[]string{peer1 + ".esp.in.spi", "32-bit number"}},
		{"duplicate local_session_id", func(t *testing.T) string { return issueExample + strings.Replace(ap2, "4098", "4097", 1) },
			[]string{"static_peers[1] (ap2).l2tp.local_session_id", "4097", "ap1"}},
		{"cookie of 3 bytes", func(t *testing.T) string {
			return edit(t, `local_cookie: "0011223344556677"`, `local_cookie: "001122"`)
		},
			[]string{peer1 + ".l2tp.local_cookie", "3 bytes"}},
		{"remote cookie of 16 bytes", func(t *testing.T) string {
			return edit(t, `remote_cookie: "8899aabbccddeeff"`, `remote_cookie: "8899aabbccddeeff8899aabbccddeeff"`)
		}, []string{peer1 + ".l2tp.remote_cookie", "16 bytes"}},
		{"non-hex cookie", func(t *testing.T) string {
			return edit(t, `local_cookie: "0011223344556677"`, `local_cookie: "00112233445566zz"`)
		},
			[]string{peer1 + ".l2tp.local_cookie", `"00112233445566zz"`, "line 15"}},
		{"odd-length cookie", func(t *testing.T) string {
			return edit(t, `remote_cookie: "8899aabbccddeeff"`, `remote_cookie: "8899aabbccddeef"`)
		},
			[]string{peer1 + ".l2tp.remote_cookie", `"8899aabbccddeef"`}},
		{"cookie given as a list", func(t *testing.T) string {
			return edit(t, `local_cookie: "0011223344556677"`, `local_cookie: [0x00, 0x11]`)
		},
			[]string{peer1 + ".l2tp.local_cookie", "hex string"}},
		{"bad pseudowire", func(t *testing.T) string { return edit(t, "pseudowire: vlan", "pseudowire: ppp") },
			[]string{peer1 + ".l2tp.pseudowire", `"ppp"`}},
		{"bad l2_specific", func(t *testing.T) string { return edit(t, "pseudowire: vlan", "pseudowire: vlan, l2_specific: atm") },
			[]string{peer1 + ".l2tp.l2_specific", `"atm"`}},
		{"esp missing with ipsec true", func(t *testing.T) string { return issueExample[:strings.Index(issueExample, "    esp:")] },
			[]string{peer1 + ".esp", "required", "corp"}},
		{"esp missing with ipsec defaulted", func(t *testing.T) string {
			s := edit(t, "    ipsec: true\n", "")
			return s[:strings.Index(s, "    esp:")]
		}, []string{peer1 + ".esp", "required"}},
		{"esp present with ipsec false", func(t *testing.T) string { return edit(t, "ipsec: true", "ipsec: false") },
			[]string{peer1 + ".esp", "ipsec: false"}},
		{"bad mode", func(t *testing.T) string { return edit(t, "mode: transport", "mode: beet") },
			[]string{peer1 + ".esp.mode", `"beet"`}},
		{"replay_window 32", func(t *testing.T) string {
			return edit(t, "      esn: false\n", "      esn: false\n      replay_window: 32\n")
		},
			[]string{peer1 + ".esp.replay_window", "32"}},
		{"replay_window 5000", func(t *testing.T) string {
			return edit(t, "      esn: false\n", "      esn: false\n      replay_window: 5000\n")
		},
			[]string{peer1 + ".esp.replay_window", "5000"}},
		{"bad inner address", func(t *testing.T) string {
			return edit(t, "mode: transport", "mode: tunnel\n      inner: {local: nope}")
		},
			[]string{peer1 + ".esp.inner.local", `"nope"`}},
		{"inner family mismatch", func(t *testing.T) string {
			return edit(t, "mode: transport", "mode: tunnel\n      inner: {remote: \"2001:db8::2\"}")
		},
			[]string{peer1 + ".esp.inner", "198.18.0.1", "2001:db8::2"}},
		{"inbound SPI 255", func(t *testing.T) string { return edit(t, "spi: 0x1000", "spi: 255") },
			[]string{peer1 + ".esp.in.spi", "255"}},
		{"outbound SPI 0", func(t *testing.T) string { return edit(t, "spi: 0x2000", "spi: 0") },
			[]string{peer1 + ".esp.out.spi", "0 is reserved"}},
		{"SPI zz", func(t *testing.T) string { return edit(t, "spi: 0x1000", "spi: zz") },
			[]string{peer1 + ".esp.in.spi", `"zz"`}},
		{"SPI over 32 bits", func(t *testing.T) string { return edit(t, "spi: 0x2000", "spi: 0x100000000") },
			[]string{peer1 + ".esp.out.spi", `"0x100000000"`}},
		{"duplicate inbound SPI", func(t *testing.T) string { return issueExample + strings.Replace(ap2, "spi: 0x1001", "spi: 4096", 1) },
			[]string{"static_peers[1] (ap2).esp.in.spi", "0x1000", "ap1"}},
		{"missing enc", func(t *testing.T) string { return edit(t, "spi: 0x2000, enc: aes-ctr-256, ", "spi: 0x2000, ") },
			[]string{peer1 + ".esp.out.enc", "required"}},
		{"unknown key tunnel_name", func(t *testing.T) string { return edit(t, "  - name: corp\n", "  - tunnel_name: corp\n") },
			[]string{"tunnel_name", "not found", "line 5"}},
		{"unknown key in esp", func(t *testing.T) string { return edit(t, "esn: false", "esn: false\n      replay: 64") },
			[]string{"replay", "not found"}},
		{"unknown top-level key", func(t *testing.T) string { return issueExample + "static_peer: []\n" },
			[]string{"static_peer", "not found"}},
		{"ports.idle unknown", func(t *testing.T) string { return edit(t, "upstream:", "ports: {idle: busy}\nupstream:") },
			[]string{"ports.idle", `"busy"`, "sleep or spin"}},
		{"ports.driver unknown", func(t *testing.T) string { return edit(t, "upstream:", "ports: {driver: dpdk}\nupstream:") },
			[]string{"ports.driver", `"dpdk"`, "auto, afxdp or afpacket"}},
		{"ports.xdp_mode unknown", func(t *testing.T) string { return edit(t, "upstream:", "ports: {xdp_mode: offload}\nupstream:") },
			[]string{"ports.xdp_mode", `"offload"`, "auto, native or generic"}},
		{"ports.prefetch unknown", func(t *testing.T) string { return edit(t, "upstream:", "ports: {prefetch: maybe}\nupstream:") },
			[]string{"ports.prefetch", `"maybe"`, "auto, on or off"}},
		{"ports.ring_size not a power of two", func(t *testing.T) string { return edit(t, "upstream:", "ports: {ring_size: 3000}\nupstream:") },
			[]string{"ports.ring_size", "3000"}},
		{"empty file", func(*testing.T) string { return "" }, []string{"config is empty"}},
		{"only comments", func(*testing.T) string { return "# nothing here\n\n" }, []string{"config is empty"}},
		{"empty mapping", func(*testing.T) string { return "{}\n" }, []string{"downstream.address", "required"}},
		{"not YAML", func(*testing.T) string { return "downstream: [\n" }, []string{"config: yaml:"}},
		{"a list at the top", func(*testing.T) string { return "- a\n- b\n" }, []string{"config: yaml:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y := tc.yaml(t)
			c, err := Parse([]byte(y))
			if err == nil || c != nil {
				t.Fatalf("Parse(%s) = %+v, %v, want an error naming %q", y, c, err, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(...) = %v, want an error containing %q", err, w)
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte(issueExample), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(strings.Replace(issueExample, "mtu: 1300", "mtu: 100", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(good); err != nil || c == nil {
		t.Errorf("Load(%s) = %v, %v, want a config", good, c, err)
	}
	if c, err := Load(bad); err == nil || c != nil || !strings.HasPrefix(err.Error(), bad+": ") || !strings.Contains(err.Error(), "tunnels[0] (corp).mtu") {
		t.Errorf("Load(%s) = %v, %v, want an error starting with the path and naming tunnels[0] (corp).mtu", bad, c, err)
	}
	missing := filepath.Join(dir, "missing.yaml")
	if c, err := Load(missing); err == nil || c != nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(%s) = %v, %v, want a not-exist error", missing, c, err)
	}
}

// TestKeyPath checks the key paths Parse reports for values rejected while
// decoding, in block and flow style.
func TestKeyPath(t *testing.T) {
	doc := "a:\n  b: [1, {c: x, name: n1}]\n  d:\n    - name: n2\n      e: {f: y}\n"
	tests := []struct {
		line, col int
		want      string
	}{
		{2, 14, "a.b[1] (n1).c"},
		{5, 14, "a.d[0] (n2).e.f"},
		{2, 7, "a.b[0]"},
		{4, 13, "a.d[0] (n2).name"},
		{9, 9, ""},
	}
	for _, tc := range tests {
		if got := keyPath([]byte(doc), tc.line, tc.col); got != tc.want {
			t.Errorf("keyPath(%q, %d, %d) = %q, want %q", doc, tc.line, tc.col, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(issueExample))
	f.Add([]byte(issueExample + ap2))
	f.Add([]byte(""))
	f.Add([]byte("{}"))
	f.Add([]byte("downstream: {address: 2001:db8::1/64}\ntunnels: [{name: t, vlans: [1]}]\n"))
	f.Add([]byte("static_peers: [{name: a, l2tp: {local_cookie: [1]}}]\n"))
	if b, err := os.ReadFile("../../testdata/demo/tunterm.yaml"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if (err == nil) != (c != nil) {
			t.Fatalf("Parse(%q) = %v, %v: want exactly one of config and error", b, c, err)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("Parse(%q) returned an empty error", b)
			}
			return
		}
		// What validate promises the rest of tunterm.
		if !c.Downstream.Prefix.IsValid() || c.Upstream.VLAN > 4094 || c.Bridge.FDBSize < 1024 || time.Duration(c.Bridge.Aging) < time.Second {
			t.Fatalf("Parse(%q) accepted %+v", b, c)
		}
		names := map[string]*Tunnel{}
		for i := range c.Tunnels {
			tn := &c.Tunnels[i]
			names[tn.Name] = tn
			native := false
			for _, v := range tn.VLANs {
				if v < 1 || v > 4094 {
					t.Fatalf("Parse(%q) accepted VLAN %d", b, v)
				}
				native = native || v == tn.NativeVLAN
			}
			if !native || (tn.Protocol != "ip" && tn.Protocol != "udp") || tn.MTU < 576 || tn.MTU > 9216 {
				t.Fatalf("Parse(%q) accepted tunnel %+v", b, tn)
			}
		}
		for _, sp := range c.StaticPeers {
			tn := names[sp.Tunnel]
			if tn == nil || sp.L2TP.LocalSessionID == 0 || sp.L2TP.RemoteSessionID == 0 || sp.MaxMACs == nil ||
				sp.Addr.Is4() != c.Downstream.Prefix.Addr().Is4() || (sp.ESP == nil) == tn.IPsecOn() {
				t.Fatalf("Parse(%q) accepted peer %+v", b, sp)
			}
			for _, ck := range [][]byte{sp.L2TP.LocalCookie, sp.L2TP.RemoteCookie} {
				if n := len(ck); n != 0 && n != 4 && n != 8 {
					t.Fatalf("Parse(%q) accepted a %d-byte cookie", b, n)
				}
			}
			if e := sp.ESP; e != nil && (e.In.SPI < 256 || e.Out.SPI < 256 || e.In.Enc == "" || e.Out.Enc == "" ||
				e.ReplayWindow < 64 || e.ReplayWindow > 4096 || e.Inner.LocalAddr.Is4() != e.Inner.RemoteAddr.Is4()) {
				t.Fatalf("Parse(%q) accepted ESP %+v", b, e)
			}
		}
	})
}

// TestPortsPrefetch: ports.prefetch defaults to auto and takes on and off.
func TestPortsPrefetch(t *testing.T) {
	for _, tc := range []struct{ yml, want string }{
		{issueExample, "auto"},
		{edit(t, "upstream:", "ports: {prefetch: on}\nupstream:"), "on"},
		{edit(t, "upstream:", "ports: {prefetch: off}\nupstream:"), "off"},
	} {
		c, err := Parse([]byte(tc.yml))
		if err != nil {
			t.Fatalf("%s: %v", tc.want, err)
		}
		if c.Ports.Prefetch != tc.want {
			t.Errorf("ports.prefetch = %q, want %q", c.Ports.Prefetch, tc.want)
		}
	}
}
