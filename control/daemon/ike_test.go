package daemon_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/tunterm/tunterm/control/ike/iketest"
)

// TestIKEStrongSwan: `tunterm run` with an ike: block against strongSwan
// charon (kernel-libipsec) as the AP, in namespaces tt-ike-d<n>-{a,dut,c}.
// The AP's L2TPv3-over-UDP frames go through the negotiated tunnel-mode
// CHILD_SA (host-to-host, UDP 1701, ESP in UDP 4500) and come out of the
// upstream port tagged; frames from the trunk reach the AP's UDP socket.
// Both directions keep flowing without loss while charon rekeys the
// CHILD_SA and the IKE SA. A killed charon is found dead by DPD; restarted,
// it comes back.
func TestIKEStrongSwan(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("!!! NOT TESTED: needs root !!!")
	}
	if !iketest.HaveCharon() {
		t.Skip("!!! NOT TESTED: strongSwan charon/swanctl missing: run `make deps` !!!")
	}
	l := newIKELab(t)
	const psk = "tt-daemon-psk-0123456789"
	l.cfg = filepath.Join(t.TempDir(), "tunterm.yaml")
	cfg := fmt.Sprintf(`
downstream: {interface: down0, address: 198.18.0.1/24, gateway_mac: "02:00:00:00:00:fe"}
upstream:   {interface: up0, vlan: 0}
tunnels:
  - {name: corp, vlans: [100, 200], native_vlan: 100, protocol: udp, mtu: 1400}
static_peers:                 # no esp: protected by the SAs IKE negotiates
  - name: ap1
    address: 198.18.0.2
    tunnel: corp
    l2tp: {local_session_id: 4097, remote_session_id: 8193, l2_specific: none}
workers: 1
ike:
  local_id: tunterm.example
  psk: [{id: "@#0011223344ff", secret: %q}]
  proposals: [aes256ctr-sha512-prfsha512-curve25519]
  esp_proposals: [aes256ctr-sha512-esn, aes256ctr-sha512]
  dpd: 2s
  dpd_timeout: 4s
  delete_grace: 2s
`, psk)
	if err := os.WriteFile(l.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	l.start()
	l.waitLog("IKE responder listening", 5*time.Second)

	ch := iketest.StartCharon(t, l.a, `connections {
  seed {
    version = 2
    local_addrs = 198.18.0.2
    remote_addrs = 198.18.0.1
    proposals = aes256ctr-sha512-prfsha512-curve25519
    dpd_delay = 0
    local { auth = psk
            id = "@#0011223344ff" }
    remote { auth = psk
             id = tunterm.example }
    children {
      l2tp { local_ts = 198.18.0.2/32[udp/1701]
             remote_ts = 198.18.0.1/32[udp/1701]
             esp_proposals = aes256ctr-sha512
             mode = tunnel }
    }
  }
}
secrets {
  ike-ap { id-1 = "@#0011223344ff"
           id-2 = tunterm.example
           secret = "`+psk+`" }
}
`)
	ch.Initiate("seed", "l2tp")
	l.waitLog("CHILD_SA installed", 5*time.Second)
	if !strings.Contains(l.logText(), "udp_encap=true") || !strings.Contains(l.logText(), "mode=tunnel") {
		t.Fatalf("CHILD_SA is not tunnel mode in UDP:\n%s", l.logText())
	}

	// /debug/ipsec on the management server (127.0.0.1:9110 in the dut).
	page := httpGet(t, l.dut, "http://127.0.0.1:9110/debug/ipsec")
	for _, want := range []string{"@#0011223344ff: ESTABLISHED, IKEv2", "INSTALLED, TUNNEL, UDP_ENCAP",
		"local  198.18.0.1/32[17/1701]", "ike_sas_established      1"} {
		if !strings.Contains(page, want) {
			t.Errorf("/debug/ipsec lacks %q:\n%s", want, page)
		}
	}
	if js := httpGet(t, l.dut, "http://127.0.0.1:9110/debug/ipsec?format=json"); !strings.Contains(js, `"ike_sas"`) {
		t.Errorf("/debug/ipsec?format=json:\n%s", js)
	}
	if m := httpGet(t, l.dut, "http://127.0.0.1:9110/metrics"); !strings.Contains(m, `tunterm_ike_events_total{event="ike_sas_established"} 1`) {
		t.Errorf("/metrics lacks the IKE counters")
	}

	ap := openAPSocket(t, l.a)
	// One frame each way first (the trunk side learns the AP's MAC).
	got := capture(t, l.c, "corp0", 1500*time.Millisecond, func() {
		ap.send(t, 0)
	})
	if p := payloads(got); len(p) != 1 || p[0] != "vlan 100 seq 0" {
		t.Fatalf("corporate side got %v, want [vlan 100 seq 0]\nlog:\n%s", p, l.logText())
	}
	sendTrunk(t, l.c, []int{0}, 0)
	if seqs := ap.recv(1, 5*time.Second); len(seqs) != 1 {
		t.Fatalf("AP received %v from the trunk, want [0]\nlog:\n%s", seqs, l.logText())
	}

	// Rekeys under traffic, both directions: no frame may be lost.
	const n = 300
	var wg sync.WaitGroup
	var fromTrunk []int
	got = capture(t, l.c, "corp0", 6*time.Second, func() {
		wg.Add(2)
		go func() { defer wg.Done(); fromTrunk = ap.recv(n, 5*time.Second) }()
		go func() {
			defer wg.Done()
			seqs := make([]int, n)
			for i := range seqs {
				seqs[i] = 1000 + i
			}
			sendTrunk(t, l.c, seqs, 10*time.Millisecond)
		}()
		for i := 1; i <= n; i++ {
			ap.send(t, i)
			time.Sleep(10 * time.Millisecond)
			switch i {
			case 80:
				if out, err := ch.Swanctl("--rekey", "--child", "l2tp"); err != nil {
					t.Errorf("rekey child: %v %s", err, out)
				}
			case 180:
				if out, err := ch.Swanctl("--rekey", "--ike", "seed"); err != nil {
					t.Errorf("rekey ike: %v %s", err, out)
				}
			}
		}
		wg.Wait()
	})
	seen := map[string]bool{}
	for _, p := range payloads(got) {
		seen[p] = true
	}
	lost := 0
	for i := 1; i <= n; i++ {
		if !seen[fmt.Sprintf("vlan 100 seq %d", i)] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("AP -> trunk: %d of %d frames lost across the rekeys\nlog:\n%s", lost, n, l.logText())
	}
	if len(fromTrunk) != n {
		t.Errorf("trunk -> AP: %d of %d frames arrived across the rekeys", len(fromTrunk), n)
	}
	log := l.logText()
	for _, want := range []string{"CHILD_SA rekeyed by the peer", "IKE SA rekeyed by the peer"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}

	// DPD: a dead AP is noticed; restarted, it comes back.
	ch.Kill()
	l.waitLog("peer did not answer", 15*time.Second)
	ch.Start()
	ch.Initiate("seed", "l2tp")
	got = capture(t, l.c, "corp0", 1500*time.Millisecond, func() { ap.send(t, 5000) })
	if p := payloads(got); len(p) != 1 || p[0] != "vlan 100 seq 5000" {
		t.Fatalf("after the restart the corporate side got %v\nlog:\n%s", p, l.logText())
	}
	if err := l.stop(unix.SIGTERM); err != nil {
		t.Errorf("tunterm exit: %v", err)
	}
}

// httpGet fetches a URL from inside namespace ns. The connection is dialed
// on the namespace's thread (http.Transport would dial on another
// goroutine, in the test's namespace).
func httpGet(t *testing.T, ns, url string) string {
	var body string
	inNS(t, ns, func() {
		u, err := neturl.Parse(url)
		if err != nil {
			t.Error(err)
			return
		}
		conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
		if err != nil {
			t.Errorf("GET %s: %v", url, err)
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", u.RequestURI(), u.Host)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Errorf("GET %s: %v", url, err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
	})
	return body
}

func newIKELab(t *testing.T) *lab {
	p := fmt.Sprintf("tt-ike-d%d-", os.Getpid()%10000)
	l := &lab{t: t, a: p + "a", dut: p + "dut", c: p + "c"}
	for _, n := range []string{l.a, l.dut, l.c} {
		exec.Command("ip", "netns", "del", n).Run()
		sh(t, "ip", "netns", "add", n)
	}
	t.Cleanup(func() {
		l.stop(unix.SIGKILL)
		for _, n := range []string{l.a, l.dut, l.c} {
			exec.Command("ip", "netns", "del", n).Run()
		}
	})
	sh(t, "ip", "link", "add", "ap0", "netns", l.a, "type", "veth", "peer", "name", "down0", "netns", l.dut)
	sh(t, "ip", "link", "add", "corp0", "netns", l.c, "type", "veth", "peer", "name", "up0", "netns", l.dut)
	sh(t, "ip", "-n", l.dut, "link", "set", "down0", "address", "02:00:00:00:00:01")
	sh(t, "ip", "-n", l.a, "link", "set", "ap0", "address", "02:00:00:00:00:fe")
	for _, x := range [][2]string{{l.a, "ap0"}, {l.a, "lo"}, {l.dut, "lo"}, {l.dut, "down0"}, {l.dut, "up0"}, {l.c, "corp0"}} {
		sh(t, "ip", "-n", x[0], "link", "set", x[1], "up")
	}
	sh(t, "ip", "-n", l.a, "addr", "add", "198.18.0.2/24", "dev", "ap0")
	sh(t, "ip", "-n", l.dut, "addr", "add", "198.18.0.1/24", "dev", "down0")
	return l
}

// apSocket is the AP's L2TPv3-over-UDP endpoint (198.18.0.2:1701): what it
// sends goes through charon's CHILD_SA.
type apSocket struct {
	conn *net.UDPConn
}

var (
	apMAC   = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 0x01} // a client behind the AP
	corpMAC = net.HardwareAddr{0x02, 0xcc, 0, 0, 0, 0x01} // a host on the trunk
)

func openAPSocket(t *testing.T, ns string) *apSocket {
	var s *apSocket
	inNS(t, ns, func() {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(198, 18, 0, 2), Port: 1701})
		if err != nil {
			t.Errorf("AP socket: %v", err)
			return
		}
		s = &apSocket{conn: c}
	})
	if s == nil {
		t.FailNow()
	}
	t.Cleanup(func() { s.conn.Close() })
	return s
}

// innerFrame is an untagged Ethernet/IPv4/UDP frame to port 9999 carrying
// "seq N".
func innerFrame(src, dst net.HardwareAddr, seq int) []byte {
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IPv4(10, 0, 0, 1), DstIP: net.IPv4(10, 0, 0, 2)}
	udp := &layers.UDP{SrcPort: 9999, DstPort: 9999}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload(fmt.Sprintf("seq %d", seq)))
	return buf.Bytes()
}

// send sends one L2TPv3 data message (RFC 3931 §4.1.2.1: T=0, Ver=3,
// session 4097, no cookie, no sublayer) carrying an inner frame.
func (s *apSocket) send(t *testing.T, seq int) {
	b := []byte{0x00, 0x03, 0, 0}
	b = binary.BigEndian.AppendUint32(b, 4097)
	b = append(b, innerFrame(apMAC, corpMAC, seq)...)
	if _, err := s.conn.WriteToUDP(b, &net.UDPAddr{IP: net.IPv4(198, 18, 0, 1), Port: 1701}); err != nil {
		t.Errorf("AP send: %v", err)
	}
}

// recv collects the sequence numbers of frames from the trunk (session
// 8193) until n arrived or d passed.
func (s *apSocket) recv(n int, d time.Duration) []int {
	var out []int
	buf := make([]byte, 4096)
	end := time.Now().Add(d)
	for len(out) < n && time.Now().Before(end) {
		s.conn.SetReadDeadline(end)
		k, _, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			break
		}
		b := buf[:k]
		if len(b) < 8 || binary.BigEndian.Uint32(b[4:]) != 8193 {
			continue
		}
		p := gopacket.NewPacket(b[8:], layers.LayerTypeEthernet, gopacket.Default)
		if u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
			var seq int
			if _, err := fmt.Sscanf(string(u.Payload), "seq %d", &seq); err == nil {
				out = append(out, seq)
			}
		}
	}
	return out
}

// sendTrunk sends tagged (VLAN 100) frames to the AP's client from the
// trunk side, gap apart.
func sendTrunk(t *testing.T, ns string, seqs []int, gap time.Duration) {
	inNS(t, ns, func() {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			t.Errorf("socket: %v", err)
			return
		}
		defer unix.Close(fd)
		ifi, err := netInterface("corp0")
		if err != nil {
			t.Error(err)
			return
		}
		for _, seq := range seqs {
			f := innerFrame(corpMAC, apMAC, seq)
			tagged := append(append(append([]byte{}, f[:12]...), 0x81, 0x00, 0x00, 100), f[12:]...)
			if err := unix.Sendto(fd, tagged, 0, &unix.SockaddrLinklayer{Ifindex: ifi, Halen: 6}); err != nil {
				t.Errorf("send: %v", err)
			}
			if gap > 0 {
				time.Sleep(gap)
			}
		}
	})
}
