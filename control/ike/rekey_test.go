package ike_test

import (
	"net"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/tunterm/tunterm/control/ike"
	"github.com/tunterm/tunterm/control/ike/iketest"
	"github.com/tunterm/tunterm/dataplane/esp"
	"github.com/tunterm/tunterm/dataplane/stats"
)

// apESP is the AP's dataplane in the rekey test: one esp.SA per direction
// and CHILD_SA, used by the traffic goroutine only.
type apESP struct {
	t       testing.TB
	out, in map[*iketest.Child]*esp.SA
}

func (a *apESP) sa(m map[*iketest.Child]*esp.SA, c *iketest.Child, cfg esp.Config) *esp.SA {
	if s := m[c]; s != nil {
		return s
	}
	s, err := esp.NewSA(cfg)
	if err != nil {
		a.t.Fatal(err)
	}
	m[c] = s
	return s
}

// frame seals L2TPv3 over IP (session 11, sublayer) around inner with the
// outbound SA of c, as ap1 (127.0.0.2) sends it in transport mode.
func (a *apESP) frame(c *iketest.Child, inner []byte) []byte {
	s := a.sa(a.out, c, c.Out)
	buf := make([]byte, 2048)
	off := 256
	n := copy(buf[off:], []byte{0, 0, 0, 11, 0, 0, 0, 0})
	n += copy(buf[off+n:], inner)
	start, end, r := s.Seal(buf, off, n, 115)
	if r != stats.OK {
		a.t.Fatalf("AP Seal = %v", r)
	}
	mac := func(x string) net.HardwareAddr { m, _ := net.ParseMAC(x); return m }
	b := gopacket.NewSerializeBuffer()
	gopacket.SerializeLayers(b, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: mac(apMAC), DstMAC: mac(ourMAC), EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolESP, SrcIP: net.IPv4(127, 0, 0, 2), DstIP: net.IPv4(127, 0, 0, 1)},
		gopacket.Payload(buf[start:end]))
	return append([]byte(nil), b.Bytes()...)
}

// open decrypts one of our ESP frames with the AP's inbound SA for its SPI.
func (a *apESP) open(children []*iketest.Child, f []byte) bool {
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil || ip.Protocol != layers.IPProtocolESP || len(ip.Payload) < 8 {
		return false
	}
	spi := uint32(ip.Payload[0])<<24 | uint32(ip.Payload[1])<<16 | uint32(ip.Payload[2])<<8 | uint32(ip.Payload[3])
	for _, c := range children {
		if c.In.SPI == spi {
			_, next, r := a.sa(a.in, c, c.In).Open(append([]byte(nil), ip.Payload...))
			return r == stats.OK && next == 115
		}
	}
	return false
}

// TestOurRekeysUnderTraffic: the responder's lifetimes make it rekey the
// CHILD_SA (twice) and the IKE SA itself while frames flow both ways
// through the dataplane without a loss; the old inbound SAs are gone after
// delete_grace (their packets then meet no_sa).
func TestOurRekeysUnderTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("about 12 s of lifetimes")
	}
	const esps = "aes256gcm16-esn"
	g := newRigBase(t, dpYAML, withIKE("  esp_proposals: ["+esps+"]\n  lifetime: {ike: 10s, child: 5s}\n  delete_grace: 1s\n"))
	i := g.ap("127.0.0.2", func(c *iketest.Config) { c.ESP, c.Transport = esps, true })
	if err := i.Connect(); err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	spii0, _ := i.IKESPIs()
	d := newDP(t, g)
	ap := &apESP{t: t, out: map[*iketest.Child]*esp.SA{}, in: map[*iketest.Child]*esp.SA{}}
	var sentUp, sentDown, lostUp, lostDown int
	lossReasons := map[stats.Reason]int{}
	deadline := time.Now().Add(25 * time.Second)
	var doneAt time.Time
	for n := 0; ; n++ {
		now := time.Now()
		if now.After(deadline) {
			t.Fatalf("rekeys not seen in time: child_rekeys %d, ike_rekeys %d", g.r.Stats().Get(ike.ChildRekeys), g.r.Stats().Get(ike.IKERekeys))
		}
		if doneAt.IsZero() && g.r.Stats().Get(ike.ChildRekeys) >= 2 && g.r.Stats().Get(ike.IKERekeys) >= 1 {
			doneAt = now.Add(1500 * time.Millisecond) // traffic across the last switch and grace window
		}
		if !doneAt.IsZero() && now.After(doneAt) {
			break
		}
		children := i.ChildList()
		var cur *iketest.Child
		for _, c := range children {
			if c.Active.Load() && !c.Deleted.Load() {
				cur = c
			}
		}
		if cur == nil {
			t.Fatalf("frame %d: the AP has no active CHILD_SA", n)
		}
		up, _, drops := d.send(stats.FromDown, ap.frame(cur, hostFrameFrom(t, n)))
		sentUp++
		if len(up) != 1 {
			lostUp++
			for _, r := range drops {
				lossReasons[r]++
			}
		}
		_, down, drops := d.send(stats.FromUp, hostFrame(t, n))
		sentDown++
		if len(down) != 1 || !ap.open(i.ChildList(), down[0]) {
			lostDown++
			for _, r := range drops {
				lossReasons[r]++
			}
		}
		time.Sleep(3 * time.Millisecond)
	}
	if lostUp+lostDown != 0 {
		t.Errorf("lost %d of %d frames AP->corp, %d of %d corp->AP (drops %v)", lostUp, sentUp, lostDown, sentDown, lossReasons)
	}
	// The responder counts a rekey, then sends the DELETE of the old SA;
	// the AP marks a CHILD_SA deleted, or switches to the new IKE SA, when
	// it answers that DELETE: wait for the AP's side too.
	poll(func() bool {
		deleted := 0
		for _, c := range i.ChildList() {
			if c.Deleted.Load() {
				deleted++
			}
		}
		spii, _ := i.IKESPIs()
		return i.ChildRekeysAnswered.Load() >= 2 && i.IKERekeysAnswered.Load() >= 1 && spii != spii0 && deleted >= 2
	})
	t.Logf("%d frames each way, child_rekeys %d, ike_rekeys %d, AP answered %d CHILD_SA and %d IKE SA rekeys",
		sentUp, g.r.Stats().Get(ike.ChildRekeys), g.r.Stats().Get(ike.IKERekeys), i.ChildRekeysAnswered.Load(), i.IKERekeysAnswered.Load())
	if i.ChildRekeysAnswered.Load() < 2 || i.IKERekeysAnswered.Load() < 1 {
		t.Errorf("rekeys initiated by us: %d CHILD_SA, %d IKE SA; want >= 2, >= 1", i.ChildRekeysAnswered.Load(), i.IKERekeysAnswered.Load())
	}
	if spii, _ := i.IKESPIs(); spii == spii0 {
		t.Errorf("IKE SA SPIs unchanged after the IKE SA rekey")
	}
	// The old CHILD_SAs: deleted by us, gone from the tables after the
	// grace window; their packets now find no SA.
	var old []*iketest.Child
	for _, c := range i.ChildList() {
		if c.Deleted.Load() {
			old = append(old, c)
		}
	}
	if len(old) < 2 {
		t.Fatalf("%d CHILD_SAs deleted by us, want >= 2", len(old))
	}
	waitFor(t, "old inbound SAs removed after delete_grace", func() bool {
		tb := g.store.Load()
		for _, c := range old {
			if tb.InSA[c.Out.SPI] != nil {
				return false
			}
		}
		return true
	})
	for _, c := range old {
		up, _, drops := d.send(stats.FromDown, ap.frame(c, hostFrameFrom(t, 0)))
		if len(up) != 0 || len(drops) != 1 || drops[0] != stats.NoSA {
			t.Errorf("frame under the old SPI %08x after grace: up %d drops %v, want [no_sa]", c.Out.SPI, len(up), drops)
		}
	}
	// The new IKE SA (we are its original initiator) works both ways.
	if err := i.DPD(); err != nil {
		t.Errorf("DPD on the IKE SA we rekeyed: %v", err)
	}
}

// hostFrameFrom is a frame from the client behind ap1 to the corporate
// host, tagged VLAN 100.
func hostFrameFrom(t testing.TB, n int) []byte {
	f := hostFrame(t, n)
	out := append([]byte(nil), f[6:12]...)
	out = append(out, f[0:6]...)
	return append(out, f[12:]...)
}
