package ike_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/tunterm/tunterm/control/ike/iketest"
	"github.com/tunterm/tunterm/dataplane/esp"
	"github.com/tunterm/tunterm/dataplane/pipeline"
	"github.com/tunterm/tunterm/dataplane/port"
	"github.com/tunterm/tunterm/dataplane/port/mem"
	"github.com/tunterm/tunterm/dataplane/stats"
)

// The ESP that IKE negotiates, checked through the dataplane against scapy:
// strongSwan's kernel-libipsec refuses transport mode and ESN, so the Go
// initiator negotiates them and testdata/scapy/ikeesn.py plays the AP's
// ESP with the keys the initiator derived.

// dpYAML: ap1 on an IPsec tunnel without esp: (IKE protects it), with MACs
// so the dataplane can send without learning a neighbour.
const dpYAML = `
downstream: {address: 127.0.0.1/8, mac: "02:00:00:00:00:01", gateway_mac: "02:00:00:00:00:fe"}
tunnels:
  - {name: corp, vlans: [100], protocol: ip}
static_peers:
  - {name: ap1, address: 127.0.0.2, tunnel: corp, l2tp: {local_session_id: 11, remote_session_id: 21}}
`

const (
	ourMAC    = "02:00:00:00:00:01"
	apMAC     = "02:00:00:00:00:fe"
	clientMAC = "02:aa:00:00:00:01" // behind ap1
	hostMAC   = "02:cc:00:00:00:01" // on the corporate trunk
)

// dp is one pipeline worker on in-memory ports, reading the rig's tables
// (the programmer's snapshots). Process runs on the caller's goroutine;
// mu serialises callers.
type dp struct {
	t        testing.TB
	mu       sync.Mutex
	pool     *port.Pool
	down, up *mem.Port
	w        *pipeline.Worker
	rx       port.Batch
	upOut    [][]byte
	downOut  [][]byte
	drops    []stats.Reason
}

func newDP(t testing.TB, g *rig) *dp {
	d := &dp{t: t, pool: port.NewPool(4096)}
	d.down, d.up = mem.New("down", d.pool), mem.New("up", d.pool)
	d.up.Sink = func(b []byte, _ int64) { d.upOut = append(d.upOut, append([]byte(nil), b...)) }
	d.down.Sink = func(b []byte, _ int64) { d.downOut = append(d.downOut, append([]byte(nil), b...)) }
	d.w = pipeline.NewWorker(pipeline.Config{Tables: g.store, FDB: g.fdb, Pool: d.pool, Down: d.down, Up: d.up})
	d.w.Taps.Set(func(_ stats.Dir, _ []byte, _ int64, why stats.Reason) { d.drops = append(d.drops, why) }, nil, nil)
	return d
}

// send processes frames received on one side (one batch each) and returns
// what came out and the reasons of what was dropped.
func (d *dp) send(dir stats.Dir, frames ...[]byte) (up, down [][]byte, drops []stats.Reason) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.upOut, d.downOut, d.drops = nil, nil, nil
	p := d.down
	if dir == stats.FromUp {
		p = d.up
	}
	for _, f := range frames {
		p.Inject(f, time.Now().UnixNano())
	}
	for p.Pending() > 0 {
		p.Receive(&d.rx)
		d.w.Process(dir, &d.rx)
	}
	if n := d.pool.InUse(); n != 0 {
		d.t.Errorf("%d frame buffers leaked", n)
	}
	return d.upOut, d.downOut, d.drops
}

func pythonScapy(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import scapy.layers.ipsec, cryptography").CombinedOutput(); err != nil {
		t.Skipf("SKIPPED: no scapy check of IKE-negotiated ESP: %s cannot import scapy: %v\n%s", py, err, out)
	}
	return py
}

// saJSON is an SA as ttpkt.SA.from_json reads it.
func saJSON(c esp.Config) map[string]any {
	integ := ""
	if c.Integ != esp.IntegNone {
		integ = c.Integ.String()
	}
	return map[string]any{"spi": c.SPI, "enc": c.Cipher.String(), "enc_key": hex.EncodeToString(c.EncKey),
		"integ": integ, "integ_key": hex.EncodeToString(c.IntegKey), "esn": c.ESN}
}

func runPy(t *testing.T, py string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(py, append([]string{filepath.Join("..", "..", "testdata", "scapy", "ikeesn.py")}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ikeesn.py %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

func readPcap(t *testing.T, name string) [][]byte {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		b, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
}

func writePcap(t *testing.T, name string, frames [][]byte) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, b := range frames {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: len(b), Length: len(b)}, b); err != nil {
			t.Fatal(err)
		}
	}
}

// hostFrame is a frame from the corporate host to the client behind ap1,
// tagged VLAN 100 (built by gopacket).
func hostFrame(t testing.TB, n int) []byte {
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, Id: uint16(n),
		SrcIP: net.IPv4(198, 19, 201, 1), DstIP: net.IPv4(198, 19, 200, 1)}
	udp := &layers.UDP{SrcPort: 6000, DstPort: 5000}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: mac(hostMAC), DstMAC: mac(clientMAC), EthernetType: layers.EthernetTypeDot1Q},
		&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4}, ip, udp,
		gopacket.Payload([]byte("reply from the corporate host, frame "+string(rune('a'+n%26))))); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// TestScapyTransportESN: a transport-mode CHILD_SA with ESN negotiated by
// the Go initiator; scapy seals L2TPv3 over IP with the AP's outbound keys
// (sequence numbers crossing 2^32) and the dataplane must deliver the inner
// frames upstream (and drop the replay); then an upstream frame goes out as
// ESP that scapy opens with the AP's inbound keys, ESN-aware.
func TestScapyTransportESN(t *testing.T) {
	py := pythonScapy(t)
	for _, suite := range []string{"aes256ctr-sha512-esn", "aes256ctr-sha384-esn", "aes256gcm16-esn"} {
		t.Run(suite, func(t *testing.T) {
			g := newRigBase(t, dpYAML, withIKE("  esp_proposals: ["+suite+"]\n"))
			i := g.ap("127.0.0.2", func(c *iketest.Config) { c.ESP, c.Transport = suite, true })
			if err := i.Connect(); err != nil {
				t.Fatalf("Connect() = %v", err)
			}
			ch := i.Children[0]
			if !ch.Transport || !ch.In.ESN || !ch.Out.ESN {
				t.Fatalf("child: transport %v, ESN in %v out %v; want all true", ch.Transport, ch.In.ESN, ch.Out.ESN)
			}
			dir := t.TempDir()
			sas := filepath.Join(dir, "sas.json")
			js, _ := json.Marshal(map[string]any{"ap": "127.0.0.2", "us": "127.0.0.1", "ap_mac": apMAC, "our_mac": ourMAC,
				"session": 11, "remote_session": 21, "vlan": 100, "client_mac": clientMAC, "host_mac": hostMAC,
				"ap_out": saJSON(ch.Out), "ap_in": saJSON(ch.In), "in_seq_hi": 0})
			if err := os.WriteFile(sas, js, 0o644); err != nil {
				t.Fatal(err)
			}
			runPy(t, py, "gen", sas, dir)
			var man struct {
				Frames []struct {
					Seq   uint64
					Fate  string
					Inner string
				}
			}
			mb, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
			if err != nil || json.Unmarshal(mb, &man) != nil {
				t.Fatalf("manifest: %v", err)
			}
			frames := readPcap(t, filepath.Join(dir, "down.pcap"))
			if len(frames) != len(man.Frames) || len(frames) < 8 {
				t.Fatalf("%d frames, %d in the manifest", len(frames), len(man.Frames))
			}
			d := newDP(t, g)
			crossed := false
			for k, f := range frames {
				m := man.Frames[k]
				up, _, drops := d.send(stats.FromDown, f)
				switch m.Fate {
				case "forward":
					want, _ := hex.DecodeString(m.Inner)
					if len(up) != 1 || len(drops) != 0 || !bytes.Equal(up[0], want) {
						t.Fatalf("scapy ESP seq %#x: up %d drops %v; want the inner frame upstream", m.Seq, len(up), drops)
					}
					crossed = crossed || m.Seq>>32 == 1
				case "replay":
					if len(up) != 0 || len(drops) != 1 || drops[0] != stats.Replay {
						t.Fatalf("replayed seq %#x: up %d drops %v; want [replay]", m.Seq, len(up), drops)
					}
				}
			}
			if !crossed {
				t.Fatalf("no frame with seq_hi 1 went through")
			}
			// The reverse: corporate host -> the client learned behind ap1.
			var ups [][]byte
			var downs [][]byte
			for n := range 3 {
				f := hostFrame(t, n)
				_, down, drops := d.send(stats.FromUp, f)
				if len(down) != 1 || len(drops) != 0 {
					t.Fatalf("upstream frame %d: down %d drops %v; want one ESP packet", n, len(down), drops)
				}
				ups, downs = append(ups, f), append(downs, down[0])
			}
			out := filepath.Join(dir, "down-out.pcap")
			writePcap(t, out, downs)
			var recs []struct {
				Problems   []string
				Src, Dst   string
				SPI, Seq   uint32
				Session    uint32
				Inner      string
				NextHeader int    `json:"next_header"`
				DstMAC     string `json:"dst_mac"`
			}
			if err := json.Unmarshal(runPy(t, py, "decode", out, sas), &recs); err != nil {
				t.Fatal(err)
			}
			if len(recs) != len(ups) {
				t.Fatalf("decode: %d records for %d frames", len(recs), len(ups))
			}
			for n, r := range recs {
				if len(r.Problems) != 0 {
					t.Errorf("our ESP %d as scapy sees it: %v", n, r.Problems)
					continue
				}
				if r.SPI != ch.In.SPI || r.Seq != uint32(n+1) || r.Src != "127.0.0.1" || r.Dst != "127.0.0.2" ||
					r.NextHeader != 115 || r.Session != 21 || r.DstMAC != "0200000000fe" {
					t.Errorf("our ESP %d: %+v; want SPI %08x seq %d 127.0.0.1 -> 127.0.0.2, L2TPv3 session 21", n, r, ch.In.SPI, n+1)
				}
				// VLAN 100 is the one-VLAN tunnel's native VLAN: untagged on
				// ap1's Ethernet pseudowire.
				want := append(append([]byte(nil), ups[n][:12]...), ups[n][16:]...)
				if r.Inner != hex.EncodeToString(want) {
					t.Errorf("our ESP %d: inner frame\n got %s\nwant %x", n, r.Inner, want)
				}
			}
		})
	}
}
