package programmer

import (
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/tunterm/tunterm/control/config"
	"github.com/tunterm/tunterm/dataplane/bridge"
	"github.com/tunterm/tunterm/dataplane/esp"
	"github.com/tunterm/tunterm/dataplane/table"
)

const ikeCfg = `
downstream: {address: 198.18.0.1/24}
tunnels: [{name: corp, vlans: [100], protocol: udp}]
static_peers:
  - {name: ap1, address: 198.18.0.2, tunnel: corp, l2tp: {local_session_id: 11, remote_session_id: 21}}
  - name: ap2
    address: 198.18.0.3
    tunnel: corp
    l2tp: {local_session_id: 12, remote_session_id: 22}
    esp:
      in:  {spi: 0x1000, enc: aes-gcm-256, enc_key: "3333333333333333333333333333333333333333333333333333333333333333b1b2b3b4"}
      out: {spi: 0x2000, enc: aes-gcm-256, enc_key: "3333333333333333333333333333333333333333333333333333333333333333b1b2b3b4"}
ike: {psk: [{id: "*", secret: x}]}
`

func child(p *Programmer, peer string, mode table.Mode) IKEChild {
	key := make([]byte, 36)
	in := p.AllocSPI()
	return IKEChild{Peer: netip.MustParseAddr(peer), Mode: mode, UDPEncap: true, NATPort: 40000,
		InnerLocal: netip.MustParseAddr("198.18.0.1"), InnerRemote: netip.MustParseAddr(peer),
		In:  esp.Config{SPI: in, Cipher: esp.AESGCM256, EncKey: key},
		Out: esp.Config{SPI: in + 1, Cipher: esp.AESGCM256, EncKey: key}}
}

func newIKEProg(t testing.TB) (*Programmer, *table.Store) {
	c, err := config.Parse([]byte(ikeCfg))
	if err != nil {
		t.Fatal(err)
	}
	st := &table.Store{}
	p := New(st, bridge.New(1024))
	if _, _, err := p.InstallChild(child(p, "198.18.0.2", table.ModeTransport), true); err != ErrNotApplied {
		t.Fatalf("InstallChild before Apply = %v", err)
	}
	if _, err := p.Apply(c); err != nil {
		t.Fatal(err)
	}
	return p, st
}

func peerByName(t *table.Tables, name string) *table.Peer {
	for _, p := range t.Peers {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func TestIKEChildLifecycle(t *testing.T) {
	p, st := newIKEProg(t)
	if ap1 := peerByName(st.Load(), "ap1"); ap1.Out != nil {
		t.Fatalf("ap1 has an outbound SA before IKE")
	}
	c1 := child(p, "198.18.0.2", table.ModeTunnel)
	in1, _, err := p.InstallChild(c1, true)
	if err != nil {
		t.Fatal(err)
	}
	tb := st.Load()
	ap1 := peerByName(tb, "ap1")
	if tb.InSA[c1.In.SPI] == nil || tb.InSA[c1.In.SPI].ESP != in1 || tb.InSA[c1.In.SPI].Peer != ap1 {
		t.Fatalf("inbound SA not installed for ap1")
	}
	if ap1.Out == nil || ap1.Out.ESP.SPI() != c1.Out.SPI || ap1.Out.Mode != table.ModeTunnel || ap1.St.NATPort.Load() != 40000 {
		t.Fatalf("outbound %+v", ap1.Out)
	}
	if s := tb.Sessions[11]; s.Peer != ap1 || s.L2TPAddr != netip.MustParseAddr("198.18.0.2") {
		t.Fatalf("session of ap1: %+v", s)
	}
	// Rekey: the new inbound SA is installed, the outbound stays.
	c2 := child(p, "198.18.0.2", table.ModeTunnel)
	if _, _, err := p.InstallChild(c2, false); err != nil {
		t.Fatal(err)
	}
	tb = st.Load()
	ap1 = peerByName(tb, "ap1")
	if tb.InSA[c1.In.SPI] == nil || tb.InSA[c2.In.SPI] == nil || ap1.Out.ESP.SPI() != c1.Out.SPI {
		t.Fatalf("make-before-break: both inbound SAs and the old outbound expected")
	}
	// The state of an installed SA is carried across snapshots.
	if tb.InSA[c1.In.SPI].ESP != in1 {
		t.Fatalf("inbound SA object replaced")
	}
	if err := p.ActivateOut(c2.In.SPI); err != nil {
		t.Fatal(err)
	}
	if peerByName(st.Load(), "ap1").Out.ESP.SPI() != c2.Out.SPI {
		t.Fatalf("outbound not switched")
	}
	p.RetireChild(c1.In.SPI)
	if st.Load().InSA[c1.In.SPI] == nil {
		t.Fatalf("retired inbound SA removed before RemoveChild")
	}
	p.RemoveChild(c1.In.SPI)
	if st.Load().InSA[c1.In.SPI] != nil {
		t.Fatalf("removed inbound SA still installed")
	}
	// Retiring the last one leaves the peer without an outbound SA.
	p.RetireChild(c2.In.SPI)
	if peerByName(st.Load(), "ap1").Out != nil {
		t.Fatalf("outbound SA after retiring every child")
	}
	p.RemoveChild(c2.In.SPI)
	if len(st.Load().InSA) != 1 { // ap2's static SA
		t.Fatalf("%d inbound SAs left", len(st.Load().InSA))
	}
}

func TestIKEOnlyPeerAndReload(t *testing.T) {
	p, st := newIKEProg(t)
	c := child(p, "198.18.0.9", table.ModeTransport)
	if _, _, err := p.InstallChild(c, true); err != nil {
		t.Fatal(err)
	}
	pe := peerByName(st.Load(), "ike 198.18.0.9:40000")
	if pe == nil || pe.Out == nil || st.Load().InSA[c.In.SPI].Peer != pe {
		t.Fatalf("IKE-only peer not installed")
	}
	// A reload keeps the IKE SAs.
	cfg, _ := config.Parse([]byte(ikeCfg))
	if _, err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if st.Load().InSA[c.In.SPI] == nil || peerByName(st.Load(), "ike 198.18.0.9:40000").St != pe.St {
		t.Fatalf("reload dropped the IKE SA or the peer state")
	}
	// A static SPI may not collide with an installed one.
	bad := strings.Replace(ikeCfg, "0x1000", "0x"+strings.ToLower(strings.TrimLeft(hex32(c.In.SPI), "0")), 1)
	cfg, err := config.Parse([]byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Apply(cfg); err == nil || !strings.Contains(err.Error(), "also a static SA's") {
		t.Fatalf("Apply with a colliding static SPI = %v", err)
	}
	if st.Load().InSA[c.In.SPI] == nil {
		t.Fatalf("failed Apply changed the tables")
	}
}

func hex32(v uint32) string {
	const d = "0123456789abcdef"
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = d[v&15]
		v >>= 4
	}
	return string(b)
}

// TestConcurrentWriters: Apply, SetNeighbor, Age and the IKE methods from
// several goroutines (run with -race).
func TestConcurrentWriters(t *testing.T) {
	p, st := newIKEProg(t)
	cfg, _ := config.Parse([]byte(ikeCfg))
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				c := child(p, "198.18.0.2", table.ModeTransport)
				if _, _, err := p.InstallChild(c, true); err != nil {
					t.Error(err)
					return
				}
				p.RetireChild(c.In.SPI)
				p.RemoveChild(c.In.SPI)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			p.Apply(cfg)
			p.SetNeighbor(netip.MustParseAddr("198.18.0.2"), [6]byte{2, 0, 0, 0, 0, byte(i)})
			p.Age(uint32(i))
			_ = st.Load().InSA
		}
	}()
	wg.Wait()
	if n := len(st.Load().InSA); n != 1 {
		t.Fatalf("%d inbound SAs left, want 1 (static)", n)
	}
}
