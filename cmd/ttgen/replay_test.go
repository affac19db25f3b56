package main

// Frames built by ttgen must be exactly what tunterm accepts: these tests run
// them through tunterm's offline pipeline (control/replay, the daemon's
// worker code over in-memory ports) and check that every down frame is
// forwarded upstream with its client's VLAN and bytes, and that after
// learning every up frame leaves downstream as ESP that opens to the right
// L2TPv3 session. Outputs are decoded with gopacket, not with our own
// parsers.

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/tunterm/tunterm/cmd/ttgen/internal/traffic"
	"github.com/tunterm/tunterm/control/config"
	"github.com/tunterm/tunterm/control/replay"
	"github.com/tunterm/tunterm/dataplane/esp"
	"github.com/tunterm/tunterm/dataplane/stats"
)

var dutMAC = [6]byte{0x02, 0, 0, 0, 0, 0x01}

func genConfig(t *testing.T, s traffic.Shape) (*config.Config, []byte) {
	t.Helper()
	var b bytes.Buffer
	if err := traffic.WriteConfig(&b, s); err != nil {
		t.Fatalf("WriteConfig(%+v) = %v", s, err)
	}
	c, err := config.Parse(b.Bytes())
	if err != nil {
		t.Fatalf("config.Parse(ttgen config %+v) = %v\n%s", s, err, b.Bytes())
	}
	return c, b.Bytes()
}

func writePcap(t *testing.T, path string, set *traffic.Set, t0 time.Time) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i := range set.Len() {
		fr := set.Frame(i)
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Microsecond), CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func readPcap(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out [][]byte
	for {
		b, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, b)
	}
}

// noDrops fails t for every drop or punt counted.
func noDrops(t *testing.T, res *replay.Result) {
	t.Helper()
	for d := range stats.NumDirs {
		for r := range stats.NumReasons {
			if n := res.Counters.Drops[d][r]; n > 0 {
				t.Errorf("replay dropped %d %s frames: %s (%s)", n, d, stats.Reason(r), stats.Reason(r).Help())
			}
		}
	}
}

// innerOf returns the inner frame ttgen put in frame i of set.
func innerOf(set *traffic.Set, i int, size traffic.Size, dir traffic.Dir) []byte {
	cl := set.Client(i)
	sz := size.At(i)
	b := make([]byte, sz)
	if dir == traffic.Down {
		traffic.PutInner(b, sz, traffic.CorpMAC, traffic.ClientMAC(cl.Peer, cl.MAC), cl.VLAN, traffic.ClientIP(cl.K), traffic.CorpIP, cl.K)
	} else {
		traffic.PutInner(b, sz, traffic.ClientMAC(cl.Peer, cl.MAC), traffic.CorpMAC, cl.VLAN, traffic.CorpIP, traffic.ClientIP(cl.K), cl.K)
	}
	return b
}

var shapes = []traffic.Shape{
	{Tunnels: 7, MACs: 3, Cipher: "aes-gcm-256", Protocol: "ip"},
	{Tunnels: 5, MACs: 4, Cipher: "aes-ctr-256-sha512", Protocol: "udp"},
}

func shapeName(s traffic.Shape) string { return s.Cipher + "/" + s.Protocol }

func TestDownFramesForwarded(t *testing.T) {
	for _, sh := range shapes {
		for _, sz := range []string{"128", "512", "1400", "imix"} {
			t.Run(shapeName(sh)+"/"+sz, func(t *testing.T) {
				sh.Address, sh.DownIf, sh.UpIf = "198.18.0.1/15", "down0", "up0"
				c, raw := genConfig(t, sh)
				if got := traffic.MACsFromConfig(raw); got != sh.MACs {
					t.Fatalf("MACsFromConfig = %d, want %d", got, sh.MACs)
				}
				size, err := traffic.ParseSize(sz)
				if err != nil {
					t.Fatal(err)
				}
				set, err := traffic.Build(c, traffic.Options{Dir: traffic.Down, Size: size, MACs: sh.MACs, DstMAC: dutMAC})
				if err != nil {
					t.Fatalf("Build = %v", err)
				}
				clients := sh.Tunnels * sh.MACs
				if set.Len() < clients {
					t.Fatalf("Build made %d frames for %d clients", set.Len(), clients)
				}
				dir := t.TempDir()
				in, out := filepath.Join(dir, "down.pcap"), filepath.Join(dir, "up-out.pcap")
				writePcap(t, in, set, time.Unix(1700000000, 0))
				res, err := replay.Run(replay.Options{Config: c, DownstreamIn: in, UpstreamOut: out})
				if err != nil {
					t.Fatalf("replay.Run = %v", err)
				}
				noDrops(t, res)
				n := uint64(set.Len())
				if got := res.Counters.RxPkts[stats.FromDown]; got != n {
					t.Errorf("replay received %d down frames, want %d", got, n)
				}
				if got := res.Counters.TxPkts[stats.FromDown]; got != n {
					t.Errorf("replay forwarded %d frames upstream, want %d", got, n)
				}
				if got := res.Counters.Learned; got != uint64(clients) {
					t.Errorf("replay learned %d MACs, want %d (one per client)", got, clients)
				}
				frames := readPcap(t, out)
				if len(frames) != set.Len() {
					t.Fatalf("upstream output has %d frames, want %d", len(frames), set.Len())
				}
				seen := map[int]bool{}
				for i, got := range frames {
					cl := set.Client(i)
					seen[cl.K] = true
					p := gopacket.NewPacket(got, layers.LayerTypeEthernet, gopacket.Default)
					q, _ := p.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
					eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
					if q == nil || eth == nil {
						t.Fatalf("upstream frame %d is not 802.1Q-tagged Ethernet: %v", i, p)
					}
					if q.VLANIdentifier != cl.VLAN {
						t.Errorf("upstream frame %d: VLAN %d, want %d (client %d)", i, q.VLANIdentifier, cl.VLAN, cl.K)
					}
					if mac := traffic.ClientMAC(cl.Peer, cl.MAC); !bytes.Equal(eth.SrcMAC, mac[:]) || !bytes.Equal(eth.DstMAC, traffic.CorpMAC[:]) {
						t.Errorf("upstream frame %d: %v -> %v, want client %x -> corporate host", i, eth.SrcMAC, eth.DstMAC, mac)
					}
					if want := innerOf(set, i, size, traffic.Down); !bytes.Equal(got, want) {
						t.Errorf("upstream frame %d = %x, want the inner frame %x", i, got, want)
					}
				}
				if len(seen) != clients {
					t.Errorf("frames cover %d clients, want %d", len(seen), clients)
				}
			})
		}
	}
}

func TestUpFramesEncapsulated(t *testing.T) {
	for _, sh := range shapes {
		for _, sz := range []string{"128", "512", "1400", "imix"} {
			t.Run(shapeName(sh)+"/"+sz, func(t *testing.T) {
				sh.Address, sh.DownIf, sh.UpIf = "198.18.0.1/15", "down0", "up0"
				if sz == "imix" {
					// A 1500-byte inner frame needs an outer packet of
					// about 1590 bytes (see TestUpIMIXAtMTU1500).
					sh.MTU = 1600
				}
				c, _ := genConfig(t, sh)
				size, _ := traffic.ParseSize(sz)
				learn, err := traffic.Build(c, traffic.Options{Learn: true, MACs: sh.MACs, DstMAC: dutMAC})
				if err != nil {
					t.Fatalf("Build(learn) = %v", err)
				}
				up, err := traffic.Build(c, traffic.Options{Dir: traffic.Up, Size: size, MACs: sh.MACs})
				if err != nil {
					t.Fatalf("Build(up) = %v", err)
				}
				if clients := sh.Tunnels * sh.MACs; learn.Len() != clients {
					t.Fatalf("learn set has %d frames, want one per client (%d)", learn.Len(), clients)
				}
				dir := t.TempDir()
				lp, upp, out := filepath.Join(dir, "learn.pcap"), filepath.Join(dir, "up.pcap"), filepath.Join(dir, "down-out.pcap")
				t0 := time.Unix(1700000000, 0)
				writePcap(t, lp, learn, t0)
				writePcap(t, upp, up, t0.Add(time.Second))
				res, err := replay.Run(replay.Options{Config: c, DownstreamIn: lp, UpstreamIn: upp, DownstreamOut: out})
				if err != nil {
					t.Fatalf("replay.Run = %v", err)
				}
				noDrops(t, res)
				if got, want := res.Counters.TxPkts[stats.FromUp], uint64(up.Len()); got != want {
					t.Errorf("replay sent %d frames downstream, want %d", got, want)
				}
				frames := readPcap(t, out)
				if len(frames) != up.Len() {
					t.Fatalf("downstream output has %d frames, want %d", len(frames), up.Len())
				}
				checkESP(t, c, up, size, frames)
			})
		}
	}
}

// checkESP opens each downstream frame with the peer's outbound SA and
// compares the L2TPv3 session and the inner frame with what ttgen sent.
func checkESP(t *testing.T, c *config.Config, up *traffic.Set, size traffic.Size, frames [][]byte) {
	t.Helper()
	sas := map[uint32]*esp.SA{}
	for i := range c.StaticPeers {
		e := c.StaticPeers[i].ESP
		cph, _ := esp.ParseCipher(e.Out.Enc)
		ig, _ := esp.ParseInteg(e.Out.Integ)
		sa, err := esp.NewSA(esp.Config{SPI: uint32(e.Out.SPI), Cipher: cph, EncKey: e.Out.EncKey, Integ: ig, IntegKey: e.Out.IntegKey})
		if err != nil {
			t.Fatal(err)
		}
		sas[uint32(e.Out.SPI)] = sa
	}
	udp := c.Tunnels[0].Protocol == "udp"
	for i, fr := range frames {
		cl := up.Client(i)
		sp := &c.StaticPeers[cl.Peer]
		p := gopacket.NewPacket(fr, layers.LayerTypeEthernet, gopacket.Default)
		eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		espL, _ := p.Layer(layers.LayerTypeIPSecESP).(*layers.IPSecESP)
		if eth == nil || ip == nil || espL == nil {
			t.Fatalf("downstream frame %d is not Ethernet/IPv4/ESP: %v", i, p)
		}
		if !bytes.Equal(eth.DstMAC, traffic.GenMAC[:]) {
			t.Errorf("downstream frame %d to %v, want the AP side %x", i, eth.DstMAC, traffic.GenMAC)
		}
		if src, dst := netip.AddrFrom4([4]byte(ip.SrcIP.To4())), netip.AddrFrom4([4]byte(ip.DstIP.To4())); src != c.Downstream.Prefix.Addr() || dst != sp.Addr {
			t.Errorf("downstream frame %d: %v -> %v, want %v -> %v", i, src, dst, c.Downstream.Prefix.Addr(), sp.Addr)
		}
		if espL.SPI != uint32(sp.ESP.Out.SPI) {
			t.Errorf("downstream frame %d: SPI 0x%x, want 0x%x (%s out)", i, espL.SPI, uint32(sp.ESP.Out.SPI), sp.Name)
			continue
		}
		pay, next, r := sas[espL.SPI].Open(bytes.Clone(ip.Payload))
		if r != stats.OK {
			t.Errorf("downstream frame %d: Open = %v", i, r)
			continue
		}
		if udp {
			if next != 17 || len(pay) < 16 || binary.BigEndian.Uint16(pay[2:]) != 1701 {
				t.Errorf("downstream frame %d: next header %d, want UDP to 1701", i, next)
				continue
			}
			pay = pay[8+4:] // UDP, L2TPv3 flags/version/reserved
		} else if next != 115 {
			t.Errorf("downstream frame %d: next header %d, want 115 (L2TPv3)", i, next)
			continue
		}
		sid := binary.BigEndian.Uint32(pay)
		ck := pay[4 : 4+len(sp.L2TP.RemoteCookie)]
		inner := pay[4+len(ck)+4:]
		if sid != uint32(sp.L2TP.RemoteSessionID) || !bytes.Equal(ck, sp.L2TP.RemoteCookie) {
			t.Errorf("downstream frame %d: session 0x%x cookie %x, want 0x%x %x", i, sid, ck,
				uint32(sp.L2TP.RemoteSessionID), []byte(sp.L2TP.RemoteCookie))
		}
		if want := innerOf(up, i, size, traffic.Up); !bytes.Equal(inner, want) {
			t.Errorf("downstream frame %d carries %x, want %x", i, inner, want)
		}
	}
}

// TestUpIMIXAtMTU1500 pins down a property of the benchmark shape: with
// tunnels[].mtu 1500 (ttgen config's default), the 1500-byte third of IMIX
// cannot be encapsulated towards the APs and is dropped as too_big; every
// other frame goes through.
func TestUpIMIXAtMTU1500(t *testing.T) {
	sh := traffic.Shape{Tunnels: 4, MACs: 3, Address: "198.18.0.1/15", DownIf: "down0", UpIf: "up0"}
	c, _ := genConfig(t, sh)
	learn, _ := traffic.Build(c, traffic.Options{Learn: true, MACs: 3, DstMAC: dutMAC})
	up, err := traffic.Build(c, traffic.Options{Dir: traffic.Up, Size: traffic.Size{IMIX: true}, MACs: 3})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lp, upp := filepath.Join(dir, "learn.pcap"), filepath.Join(dir, "up.pcap")
	writePcap(t, lp, learn, time.Unix(1700000000, 0))
	writePcap(t, upp, up, time.Unix(1700000001, 0))
	res, err := replay.Run(replay.Options{Config: c, DownstreamIn: lp, UpstreamIn: upp})
	if err != nil {
		t.Fatal(err)
	}
	var big uint64
	for i := range up.Len() {
		if len(up.Frame(i)) == 1500 {
			big++
		}
	}
	if got := res.Counters.Drops[stats.FromUp][stats.TooBig]; got != big || big == 0 {
		t.Errorf("too_big drops = %d, want %d (the 1500-byte frames)", got, big)
	}
	if got, want := res.Counters.TxPkts[stats.FromUp], uint64(up.Len())-big; got != want {
		t.Errorf("sent %d frames downstream, want %d", got, want)
	}
}

func TestShape(t *testing.T) {
	tun := netip.MustParseAddr("198.19.0.3")
	if got := traffic.PeerAddr(2, tun); got != netip.MustParseAddr("198.19.0.4") {
		t.Errorf("PeerAddr(2, %v) = %v, want 198.19.0.4 (skipping the tunnel address)", tun, got)
	}
	for _, tc := range []struct {
		name string
		s    traffic.Shape
		err  string
	}{
		{"no tunnels", traffic.Shape{Address: "198.18.0.1/15"}, "--tunnels"},
		{"too many macs", traffic.Shape{Tunnels: 1, MACs: 300, Address: "198.18.0.1/15"}, "--macs"},
		{"cipher", traffic.Shape{Tunnels: 1, Cipher: "des", Address: "198.18.0.1/15"}, "--cipher"},
		{"protocol", traffic.Shape{Tunnels: 1, Protocol: "tcp", Address: "198.18.0.1/15"}, "--protocol"},
		{"address", traffic.Shape{Tunnels: 1, Address: "2001:db8::1/64"}, "--address"},
		{"ok", traffic.Shape{Tunnels: 10000, Address: "198.18.0.1/15"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("Validate(%+v) = %v, want an error about %q", tc.s, err, tc.err)
			}
		})
	}
}

// TestDemoConfig builds frames from the hand-written demo configuration
// (tunnel mode, NAT-T, ESN, Ethernet pseudowire) and checks they are
// forwarded too: ttgen send works on any static-peer config.
func TestDemoConfig(t *testing.T) {
	c, err := config.Load(filepath.Join("..", "..", "testdata", "demo", "tunterm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	set, err := traffic.Build(c, traffic.Options{Dir: traffic.Down, Size: traffic.Size{Fixed: 512}, MACs: 2, DstMAC: dutMAC})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "down.pcap")
	writePcap(t, in, set, time.Unix(1700000000, 0))
	res, err := replay.Run(replay.Options{Config: c, DownstreamIn: in})
	if err != nil {
		t.Fatal(err)
	}
	noDrops(t, res)
	if got := res.Counters.TxPkts[stats.FromDown]; got != uint64(set.Len()) {
		t.Errorf("forwarded %d of %d frames", got, set.Len())
	}
}

// TestTsharkDecodesDownFrames has tshark (code we did not write) decrypt
// and dissect ttgen's down frames with the peers' keys: ICV good, L2TPv3
// session and cookie, inner VLAN and MACs.
func TestTsharkDecodesDownFrames(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("SKIPPING: tshark is not installed (apt-get install tshark, or make deps)")
	}
	wsEnc := map[string]string{"aes-gcm-256": "AES-GCM with 16 octet ICV [RFC4106]", "aes-ctr-256": "AES-CTR [RFC3686]"}
	for _, sh := range shapes {
		t.Run(shapeName(sh), func(t *testing.T) {
			sh.Address, sh.DownIf, sh.UpIf = "198.18.0.1/15", "down0", "up0"
			c, _ := genConfig(t, sh)
			set, err := traffic.Build(c, traffic.Options{Dir: traffic.Down, Size: traffic.Size{IMIX: true}, MACs: sh.MACs, DstMAC: dutMAC})
			if err != nil {
				t.Fatal(err)
			}
			var uat []string
			for _, sp := range c.StaticPeers {
				in := sp.ESP.In
				au, ak := "NULL", ""
				if in.Integ != "" {
					au, ak = "HMAC-SHA-512-256 [RFC4868]", "0x"+hex.EncodeToString(in.IntegKey)
				}
				uat = append(uat, fmt.Sprintf(`"IPv4","%s","%s","0x%08x","%s","0x%s","%s","%s"`,
					sp.Addr, c.Downstream.Prefix.Addr(), uint32(in.SPI), wsEnc[in.Enc], hex.EncodeToString(in.EncKey), au, ak))
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "esp_sa"), []byte(strings.Join(uat, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			pcap := filepath.Join(dir, "down.pcap")
			writePcap(t, pcap, set, time.Unix(1700000000, 0))
			fields := []string{"esp.spi", "esp.icv_good", "l2tp.sid", "l2tp.cookie", "vlan.id", "eth.src", "eth.dst", "frame.len"}
			args := []string{"-r", pcap, "-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE",
				"-o", "l2tp.cookie_size:8 Byte Cookie", "-o", "l2tp.l2_specific:Default L2-Specific",
				"-d", "l2tp.pw_type==0,eth", "-T", "fields", "-E", "separator=|"}
			for _, f := range fields {
				args = append(args, "-e", f)
			}
			cmd := exec.Command(tshark, args...)
			cmd.Env = append(os.Environ(), "WIRESHARK_CONFIG_DIR="+dir)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
			}
			lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			if len(lines) != set.Len() {
				t.Fatalf("tshark printed %d lines for %d frames", len(lines), set.Len())
			}
			mac := func(m [6]byte) string { return net.HardwareAddr(m[:]).String() }
			for i, l := range lines {
				cl := set.Client(i)
				sp := c.StaticPeers[cl.Peer]
				want := []string{fmt.Sprintf("0x%08x", uint32(sp.ESP.In.SPI)), "1", fmt.Sprintf("0x%08x", uint32(sp.L2TP.LocalSessionID)),
					hex.EncodeToString(sp.L2TP.LocalCookie), fmt.Sprint(cl.VLAN),
					mac(traffic.GenMAC) + "," + mac(traffic.ClientMAC(cl.Peer, cl.MAC)),
					mac(dutMAC) + "," + mac(traffic.CorpMAC), fmt.Sprint(len(set.Frame(i)))}
				got := strings.Split(l, "|")
				for n, f := range fields {
					if n >= len(got) || got[n] != want[n] {
						t.Fatalf("tshark frame %d (client %d): %s = %q, want %q\n  line: %s", i+1, cl.K, f, at(got, n), want[n], l)
					}
				}
			}
			t.Logf("tshark decrypted and dissected %d frames of %d tunnels", len(lines), len(c.StaticPeers))
		})
	}
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "<missing>"
}
