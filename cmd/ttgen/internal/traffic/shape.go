// Package traffic defines the load that ttgen generates: the shape of a
// benchmark configuration (N statically keyed APs, M client MACs behind
// each), the addressing conventions shared by the config writer and the frame
// builder, and the pre-built frames themselves.
//
// Conventions (all deterministic, so that `ttgen config` and `ttgen send`
// agree without sharing anything but the tunterm config file):
//
//	generator / AP-side source MAC   02:00:00:00:00:fe  (= downstream.gateway_mac)
//	corporate host                   02:cc:00:00:00:01, 10.0.0.1
//	client j of tunnel i (k = i*M+j) 02:c1:ii:ii:ii:jj, 10.0.0.0+2+k, VLAN vlans[k mod len(vlans)]
//	peer i                           198.19.0.0 + i + 1 (skipping the tunnel address)
//	inbound SPI / session            0x100000+i / 0x10000+i; outbound 0x200000+i / 0x20000+i
//
// Inner client addresses are payload only: no interface carries them.
package traffic

import (
	"bufio"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
)

// Fixed addresses of the generated traffic.
var (
	GenMAC  = [6]byte{0x02, 0, 0, 0, 0, 0xfe}              // AP side: every AP frame's source MAC
	CorpMAC = [6]byte{0x02, 0xcc, 0, 0, 0, 0x01}           // the corporate host all clients talk to
	CorpIP  = [4]byte{10, 0, 0, 1}                         // its (payload-only) address
	peerNet = netip.AddrFrom4([4]byte{198, 19, 0, 0})      // peers live in 198.19.0.0/16
	clientB = binary.BigEndian.Uint32([]byte{10, 0, 0, 0}) // clients from 10.0.0.2
)

// Limits of the addressing plan.
const (
	MaxTunnels = 65000 // peers in 198.19.0.0/16
	MaxMACs    = 256   // the last byte of a client MAC
	// DefaultMACs is the clients per tunnel when the config does not say.
	DefaultMACs = 10
	// TunnelName is the one tunnel profile every peer uses.
	TunnelName = "bench"
)

// VLANs carried by the benchmark tunnel profile.
var VLANs = []uint16{100, 101, 102, 103, 104}

// Shape describes a generated configuration.
type Shape struct {
	Tunnels  int
	MACs     int
	Cipher   string // aes-gcm-256 | aes-ctr-256-sha512
	Protocol string // ip | udp
	DownIf   string
	UpIf     string
	Address  string // tunnel address with prefix, e.g. 198.18.0.1/15
	Workers  int    // 0: auto
	MTU      int
}

// Ciphers ttgen config offers.
var Ciphers = []string{"aes-gcm-256", "aes-ctr-256-sha512"}

// Validate checks s and fills defaults.
func (s *Shape) Validate() error {
	if s.Tunnels < 1 || s.Tunnels > MaxTunnels {
		return fmt.Errorf("--tunnels: %d is outside 1..%d", s.Tunnels, MaxTunnels)
	}
	if s.MACs == 0 {
		s.MACs = DefaultMACs
	}
	if s.MACs < 1 || s.MACs > MaxMACs {
		return fmt.Errorf("--macs: %d is outside 1..%d", s.MACs, MaxMACs)
	}
	if s.Tunnels*s.MACs > 1<<23 {
		return fmt.Errorf("--tunnels x --macs: %d clients is more than %d", s.Tunnels*s.MACs, 1<<23)
	}
	switch s.Cipher {
	case "":
		s.Cipher = Ciphers[0]
	case Ciphers[0], Ciphers[1]:
	default:
		return fmt.Errorf("--cipher: %q is not aes-gcm-256 or aes-ctr-256-sha512", s.Cipher)
	}
	switch s.Protocol {
	case "":
		s.Protocol = "ip"
	case "ip", "udp":
	default:
		return fmt.Errorf("--protocol: %q is not ip or udp", s.Protocol)
	}
	if s.MTU == 0 {
		s.MTU = 1500
	}
	p, err := netip.ParsePrefix(s.Address)
	if err != nil || !p.Addr().Is4() {
		return fmt.Errorf("--address: %q is not an IPv4 address/prefix like 198.18.0.1/15", s.Address)
	}
	if s.Workers < 0 || s.Workers > 64 {
		return fmt.Errorf("--workers: %d is outside 0 (auto)..64", s.Workers)
	}
	return nil
}

// PeerAddr returns peer i's address: 198.19.0.0 + i + 1, skipping the
// tunnel address itself.
func PeerAddr(i int, tunnel netip.Addr) netip.Addr {
	a := peerNet
	for n := 0; n <= i; n++ {
		a = a.Next()
		if a == tunnel {
			a = a.Next()
		}
	}
	return a
}

// peerAddrs returns the addresses of peers 0..n-1 (PeerAddr without the
// quadratic walk).
func peerAddrs(n int, tunnel netip.Addr) []netip.Addr {
	out := make([]netip.Addr, n)
	a := peerNet
	for i := range out {
		a = a.Next()
		if a == tunnel {
			a = a.Next()
		}
		out[i] = a
	}
	return out
}

// derive returns n deterministic key bytes for peer i and a label.
func derive(label string, i, n int) []byte {
	var out []byte
	for c := 0; len(out) < n; c++ {
		h := sha512.Sum512([]byte(fmt.Sprintf("ttgen/%s/%d/%d", label, i, c)))
		out = append(out, h[:]...)
	}
	return out[:n]
}

// ClientMAC returns the MAC of client j of tunnel i.
func ClientMAC(i, j int) [6]byte {
	return [6]byte{0x02, 0xc1, byte(i >> 16), byte(i >> 8), byte(i), byte(j)}
}

// ClientIP returns the (payload-only) IPv4 address of client k = i*M+j.
func ClientIP(k int) [4]byte {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], clientB+2+uint32(k))
	return a
}

// ClientVLAN returns the VLAN of client k on a tunnel carrying vlans.
func ClientVLAN(k int, vlans []uint16) uint16 { return vlans[k%len(vlans)] }

// shapeComment marks the first line of a generated file; ttgen send reads
// the client count from it (the config keys carry everything else).
const shapeComment = "# ttgen-shape:"

var shapeRE = regexp.MustCompile(`(?m)^# ttgen-shape:.*\bmacs=(\d+)`)

// MACsFromConfig returns the clients per tunnel recorded in a generated
// config's header comment, or 0 when there is none.
func MACsFromConfig(b []byte) int {
	m := shapeRE.FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(string(m[1]))
	if err != nil {
		return 0
	}
	return n
}

// WriteConfig writes the tunterm configuration of s to w.
func WriteConfig(w io.Writer, s Shape) error {
	if err := s.Validate(); err != nil {
		return err
	}
	tun := netip.MustParsePrefix(s.Address).Addr()
	bw := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }
	p("%s tunnels=%d macs=%d cipher=%s protocol=%s\n", shapeComment, s.Tunnels, s.MACs, s.Cipher, s.Protocol)
	p("# Written by `ttgen config`; `ttgen send` rebuilds its frames from this file.\n")
	p("# Peers are manually keyed with anti_replay: false: the generator replays fixed frames.\n")
	p("downstream: {interface: %s, address: %s, gateway_mac: %q}\n", s.DownIf, s.Address, macString(GenMAC))
	p("upstream:   {interface: %s, vlan: 0}\n", s.UpIf)
	clients := s.Tunnels * s.MACs
	fdb := 1024
	for fdb < 2*(clients+16) {
		fdb *= 2
	}
	if fdb < 262144 {
		fdb = 262144
	}
	p("bridge:     {hairpin: false, aging: 300s, fdb_size: %d}\n", fdb)
	if s.Workers > 0 {
		p("workers: %d\n", s.Workers)
	}
	p("tunnels:\n  - {name: %s, vlans: [", TunnelName)
	for i, v := range VLANs {
		if i > 0 {
			p(", ")
		}
		p("%d", v)
	}
	p("], native_vlan: %d, protocol: %s, mtu: %d, ipsec: true}\n", VLANs[0], s.Protocol, s.MTU)
	p("static_peers:\n")
	sa := func(dir string, spi uint32, i int) string {
		enc := hex.EncodeToString(derive(dir+"/enc", i, 36))
		if s.Cipher == "aes-gcm-256" {
			return fmt.Sprintf("{spi: 0x%x, enc: aes-gcm-256, enc_key: %q}", spi, enc)
		}
		return fmt.Sprintf("{spi: 0x%x, enc: aes-ctr-256, enc_key: %q, integ: hmac-sha2-512-256, integ_key: %q}",
			spi, enc, hex.EncodeToString(derive(dir+"/integ", i, 64)))
	}
	for i, a := range peerAddrs(s.Tunnels, tun) {
		p("  - name: ap%d\n    address: %s\n    tunnel: %s\n", i, a, TunnelName)
		p("    l2tp: {local_session_id: 0x%x, remote_session_id: 0x%x, local_cookie: %q, remote_cookie: %q, pseudowire: vlan}\n",
			0x10000+i, 0x20000+i, hex.EncodeToString(derive("lcookie", i, 8)), hex.EncodeToString(derive("rcookie", i, 8)))
		p("    esp:\n      mode: transport\n      anti_replay: false\n")
		p("      in:  %s\n", sa("in", uint32(0x100000+i), i))
		p("      out: %s\n", sa("out", uint32(0x200000+i), i))
	}
	return bw.Flush()
}

func macString(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// ParseMAC parses aa:bb:cc:dd:ee:ff.
func ParseMAC(s string) ([6]byte, error) {
	var m [6]byte
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] != ':' && s[i] != '-' {
			b = append(b, s[i])
		}
	}
	d, err := hex.DecodeString(string(b))
	if err != nil || len(d) != 6 {
		return m, errors.New("not a MAC address like 02:00:00:00:00:01")
	}
	copy(m[:], d)
	return m, nil
}
