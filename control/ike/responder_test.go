package ike_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tunterm/tunterm/control/config"
	"github.com/tunterm/tunterm/control/ike"
	"github.com/tunterm/tunterm/control/ike/iketest"
	"github.com/tunterm/tunterm/control/ike/wire"
	"github.com/tunterm/tunterm/control/programmer"
	"github.com/tunterm/tunterm/dataplane/bridge"
	"github.com/tunterm/tunterm/dataplane/esp"
	"github.com/tunterm/tunterm/dataplane/stats"
	"github.com/tunterm/tunterm/dataplane/table"
)

// The responder runs on 127.0.0.1 (ephemeral ports) with the real
// programmer; the APs are iketest initiators on 127.0.0.x.

const apID = "@#0011223344ff" // the seed's KEY_ID identity

type rig struct {
	t     testing.TB
	r     *ike.Responder
	prog  *programmer.Programmer
	store *table.Store
	fdb   *bridge.FDB
	cfg   *config.Config
	log   *logBuf
	ikeAP netip.AddrPort
	natAP netip.AddrPort
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

const baseYAML = `
downstream: {address: 127.0.0.1/8}
tunnels:
  - {name: corp, vlans: [100], protocol: ip}
  - {name: corpudp, vlans: [200], protocol: udp}
static_peers:
  - {name: ap1, address: 127.0.0.2, tunnel: corp, l2tp: {local_session_id: 11, remote_session_id: 21}}
  - {name: ap3, address: 127.0.0.3, tunnel: corpudp, l2tp: {local_session_id: 13, remote_session_id: 23}}
`

func newRig(t testing.TB, ikeYAML string) *rig {
	t.Helper()
	return newRigBase(t, baseYAML, ikeYAML)
}

// newRigBase is newRig with another dataplane configuration.
func newRigBase(t testing.TB, base, ikeYAML string) *rig {
	t.Helper()
	c, err := config.Parse([]byte(base + ikeYAML))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	g := &rig{t: t, store: &table.Store{}, fdb: bridge.New(1024), cfg: c, log: &logBuf{}}
	g.prog = programmer.New(g.store, g.fdb)
	if _, err := g.prog.Apply(c); err != nil {
		t.Fatal(err)
	}
	lg := slog.New(slog.NewTextHandler(g.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g.r, err = ike.New(ike.Options{Config: c.IKE, Dataplane: g.prog, Log: lg, Port: -1, NATTPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.r.Start(); err != nil {
		t.Fatal(err)
	}
	a, n := g.r.Addrs()
	g.ikeAP, g.natAP = a[0], n[0]
	t.Cleanup(func() {
		g.r.Close()
		if t.Failed() {
			t.Logf("responder log:\n%s", g.log.String())
		}
	})
	return g
}

func (g *rig) ap(local string, mod func(*iketest.Config)) *iketest.Initiator {
	g.t.Helper()
	c := iketest.Config{Local: netip.MustParseAddrPort(local + ":0"), Server: g.ikeAP, ServerNATT: g.natAP,
		IKE: "aes256ctr-sha512-prfsha512-curve25519", ESP: "aes256ctr-sha512-esn", ID: apID,
		PSK: []byte("ap1-secret-0123456789"), Transport: true, Timeout: 5 * time.Second}
	if mod != nil {
		mod(&c)
	}
	i, err := iketest.Dial(c)
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { i.Close() })
	return i
}

const pskYAML = `
ike:
  listen: [127.0.0.1]
  psk:
    - {id: "@#0011223344ff", secret: "ap1-secret-0123456789"}
    - {id: "*", secret: "wildcard-secret"}
`

func withIKE(extra string) string { return pskYAML + extra }

// peer returns the dataplane peer with address a.
func (g *rig) peer(a string) *table.Peer {
	for _, p := range g.store.Load().Peers {
		if p.Addr == netip.MustParseAddr(a) {
			return p
		}
	}
	return nil
}

// checkESP seals a packet with the AP's outbound SA and opens it with the
// dataplane's inbound SA, then the reverse: both sides derived the same keys.
func checkESP(t *testing.T, tb *table.Tables, pe *table.Peer, c *iketest.Child) {
	t.Helper()
	in := tb.InSA[c.Out.SPI]
	if in == nil {
		t.Fatalf("inbound SA %08x not in the tables (%d SAs)", c.Out.SPI, len(tb.InSA))
	}
	if in.Peer != pe {
		t.Fatalf("inbound SA %08x belongs to %s, want %s", c.Out.SPI, in.Peer.Name, pe.Name)
	}
	apOut, err := esp.NewSA(c.Out)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("l2tpv3 data through the SA")
	buf := make([]byte, 512)
	off := 64
	copy(buf[off:], msg)
	s, e, r := apOut.Seal(buf, off, len(msg), 115)
	if r != stats.OK {
		t.Fatalf("Seal = %v", r)
	}
	pl, next, r := in.ESP.Open(buf[s:e])
	if r != stats.OK || next != 115 || !bytes.Equal(pl, msg) {
		t.Fatalf("dataplane Open(AP's ESP) = %q, %d, %v", pl, next, r)
	}
	if pe.Out == nil || pe.Out.ESP.SPI() != c.In.SPI {
		t.Fatalf("peer %s outbound SA = %v, want SPI %08x", pe.Name, pe.Out, c.In.SPI)
	}
	apIn, err := esp.NewSA(c.In)
	if err != nil {
		t.Fatal(err)
	}
	// The dataplane's outbound SA is owned by a worker; a fresh SA from the
	// same keys stands in for it.
	copy(buf[off:], msg)
	s, e, r = pe.Out.ESP.Seal(buf, off, len(msg), 115)
	if r != stats.OK {
		t.Fatalf("dataplane Seal = %v", r)
	}
	pl, _, r = apIn.Open(buf[s:e])
	if r != stats.OK || !bytes.Equal(pl, msg) {
		t.Fatalf("AP Open(dataplane's ESP) = %q, %v", pl, r)
	}
}

func TestPSKProposalSets(t *testing.T) {
	for _, tc := range []struct {
		name, ike, esp string
		transport      bool
		want           string
	}{
		{"seed", "aes256ctr-sha512-prfsha512-curve25519", "aes256ctr-sha512-esn", true, "AES_CTR_256/HMAC_SHA2_512_256/EXT_SEQ"},
		{"gcm-ecp384", "aes256gcm16-prfsha384-ecp384", "aes256gcm16", false, "AES_GCM_16_256/NO_EXT_SEQ"},
		{"cbc-modp2048", "aes256-sha256-modp2048", "aes256-sha256", true, "AES_CBC_256/HMAC_SHA2_256_128/NO_EXT_SEQ"},
		{"gcm128-ecp256", "aes128gcm16-prfsha256-ecp256", "aes128gcm16-esn", true, "AES_GCM_16_128/EXT_SEQ"},
		{"ctr128-ecp521", "aes128ctr-sha256-ecp521", "aes128ctr-sha1", false, "AES_CTR_128/HMAC_SHA1_96/NO_EXT_SEQ"},
		{"ctr256-sha384-esn", "aes256ctr-sha384-ecp384", "aes256ctr-sha384-esn", true, "AES_CTR_256/HMAC_SHA2_384_192/EXT_SEQ"},
		{"cbc128-sha384", "aes128-sha256-curve25519", "aes128-sha384", false, "AES_CBC_128/HMAC_SHA2_384_192/NO_EXT_SEQ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, withIKE(fmt.Sprintf("  proposals: [%s]\n  esp_proposals: [%s]\n", tc.ike, tc.esp)))
			i := g.ap("127.0.0.2", func(c *iketest.Config) { c.IKE, c.ESP, c.Transport = tc.ike, tc.esp, tc.transport })
			if err := i.Connect(); err != nil {
				t.Fatalf("Connect() = %v", err)
			}
			c := i.Children[0]
			if got := c.Chosen.String(); !strings.Contains(got, tc.want) {
				t.Errorf("ESP proposal %s, want %s", got, tc.want)
			}
			if c.Transport != tc.transport {
				t.Errorf("transport = %v, want %v", c.Transport, tc.transport)
			}
			tb := g.store.Load()
			pe := g.peer("127.0.0.2")
			if pe == nil || pe.Name != "ap1" {
				t.Fatalf("no peer ap1 in the tables")
			}
			checkESP(t, tb, pe, c)
			mode := table.ModeTunnel
			if tc.transport {
				mode = table.ModeTransport
			}
			if pe.Out.Mode != mode || pe.Out.UDPEncap {
				t.Errorf("outbound mode %v udp %v, want %v false", pe.Out.Mode, pe.Out.UDPEncap, mode)
			}
			if got := g.r.Stats().Get(ike.IKESAs); got != 1 {
				t.Errorf("ike_sas_established = %d", got)
			}
			if err := i.DPD(); err != nil {
				t.Errorf("DPD() = %v", err)
			}
			if err := i.DeleteIKE(); err != nil {
				t.Fatalf("DeleteIKE() = %v", err)
			}
			waitFor(t, "SAs removed after DELETE", func() bool { return len(g.store.Load().InSA) == 0 })
			if pe := g.peer("127.0.0.2"); pe.Out != nil {
				t.Errorf("outbound SA left after DELETE")
			}
		})
	}
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatalf("timed out waiting for: %s", what)
}

// poll waits up to 10 s for f, without failing: for what the code under
// test does after the event a test waited for (a count the AP's reader
// moves after it has answered), which the caller then checks exactly.
func poll(f func() bool) {
	for end := time.Now().Add(10 * time.Second); !f() && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
}

func TestInvalidKE(t *testing.T) {
	g := newRig(t, withIKE("  proposals: [aes256ctr-sha512-prfsha512-ecp256-curve25519]\n  esp_proposals: [aes256gcm16]\n"))
	// The AP offers curve25519 first, but sends an ecp384 KE.
	i := g.ap("127.0.0.2", func(c *iketest.Config) {
		c.IKE = "aes256ctr-sha512-prfsha512-ecp384-ecp256"
		c.ESP = "aes256gcm16"
	})
	if err := i.Connect(); err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	if i.InvalidKE != 1 || i.Chosen.DH != wire.ECP_256 {
		t.Errorf("INVALID_KE_PAYLOAD rounds %d, group %v; want 1, ECP_256", i.InvalidKE, i.Chosen.DH)
	}
	if g.r.Stats().Get(ike.InvalidKE) != 1 {
		t.Errorf("invalid_ke_sent = %d", g.r.Stats().Get(ike.InvalidKE))
	}
}

func TestNoProposal(t *testing.T) {
	g := newRig(t, withIKE("  proposals: [aes256gcm16-prfsha384-ecp384]\n"))
	i := g.ap("127.0.0.2", func(c *iketest.Config) { c.IKE = "aes128-sha256-modp2048" })
	err := i.Connect()
	var ne *iketest.NotifyError
	if !errors.As(err, &ne) || ne.Type != wire.NO_PROPOSAL_CHOSEN {
		t.Fatalf("Connect() = %v, want NO_PROPOSAL_CHOSEN", err)
	}
	if g.r.Stats().Get(ike.NoProposal) != 1 || g.r.HalfOpen() != 0 {
		t.Errorf("no_proposal_chosen = %d, half-open %d", g.r.Stats().Get(ike.NoProposal), g.r.HalfOpen())
	}
	if !strings.Contains(g.log.String(), "NO_PROPOSAL_CHOSEN") {
		t.Errorf("no log line")
	}
}

func TestWrongPSK(t *testing.T) {
	g := newRig(t, withIKE(""))
	i := g.ap("127.0.0.2", func(c *iketest.Config) { c.PSK = []byte("not the secret") })
	err := i.Connect()
	var ne *iketest.NotifyError
	if !errors.As(err, &ne) || ne.Type != wire.AUTHENTICATION_FAILED {
		t.Fatalf("Connect() = %v, want AUTHENTICATION_FAILED", err)
	}
	if g.r.Stats().Get(ike.AuthFailedPSK) != 1 {
		t.Errorf("auth_failed_psk = %d", g.r.Stats().Get(ike.AuthFailedPSK))
	}
	if !strings.Contains(g.log.String(), "wrong pre-shared key") {
		t.Errorf("no log line for the wrong PSK:\n%s", g.log.String())
	}
	waitFor(t, "half-open SA dropped", func() bool { return g.r.HalfOpen() == 0 })
	if len(g.store.Load().InSA) != 0 {
		t.Errorf("SAs installed despite the failure")
	}
	// The wildcard entry serves other identities.
	i2 := g.ap("127.0.0.3", func(c *iketest.Config) {
		c.ID, c.PSK, c.Transport = "ap3@example", []byte("wildcard-secret"), false
		c.TSi = []wire.TrafficSelector{wire.NewTS(17, netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.3"), 1701, 1701)}
		c.TSr = []wire.TrafficSelector{wire.NewTS(17, netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1"), 0, 65535)}
	})
	if err := i2.Connect(); err != nil {
		t.Fatalf("wildcard PSK: Connect() = %v", err)
	}
	// Tunnel mode host-to-host for UDP 1701, narrowed to port 1701.
	c := i2.Children[0]
	if c.Transport || len(c.TSr) != 1 || c.TSr[0].String() != "127.0.0.1/32[17/1701]" {
		t.Errorf("tunnel-mode child: transport %v TSr %v", c.Transport, c.TSr)
	}
	pe := g.peer("127.0.0.3")
	checkESP(t, g.store.Load(), pe, c)
	if pe.Out.Mode != table.ModeTunnel || pe.Out.InnerRemote != netip.MustParseAddr("127.0.0.3") {
		t.Errorf("ap3 outbound %v inner %v", pe.Out.Mode, pe.Out.InnerRemote)
	}
}

func TestTSUnacceptable(t *testing.T) {
	g := newRig(t, withIKE("  esp_proposals: [aes256gcm16]\n"))
	i := g.ap("127.0.0.2", func(c *iketest.Config) {
		c.ESP = "aes256gcm16"
		c.TSr = []wire.TrafficSelector{wire.NewTS(6, netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1"), 0, 65535)}
	})
	err := i.Connect()
	var ne *iketest.NotifyError
	if !errors.As(err, &ne) || ne.Type != wire.TS_UNACCEPTABLE {
		t.Fatalf("Connect() = %v, want TS_UNACCEPTABLE", err)
	}
	// The IKE SA stays up (RFC 7296 §1.2).
	if err := i.DPD(); err != nil {
		t.Errorf("IKE SA gone after a failed CHILD_SA: %v", err)
	}
}

func TestRetransmitAndReplay(t *testing.T) {
	g := newRig(t, withIKE(""))
	i := g.ap("127.0.0.2", nil)
	if err := i.Connect(); err != nil {
		t.Fatal(err)
	}
	if err := i.DPD(); err != nil {
		t.Fatal(err)
	}
	req := i.LastRequest
	i.Drain()
	// The same request again: the cached response, no processing.
	for _, b := range req {
		i.SendRaw(b)
	}
	waitFor(t, "retransmission answered", func() bool { return g.r.Stats().Get(ike.Retransmits) == 1 })
	// An older request (the IKE_AUTH... replayed from a capture would have
	// message ID 1): dropped and counted.
	if err := i.DPD(); err != nil {
		t.Fatal(err)
	}
	for _, b := range req { // message ID now two behind
		i.SendRaw(b)
	}
	waitFor(t, "replay dropped", func() bool { return g.r.Stats().Get(ike.BadMessageID) == 1 })
	// The same Message ID with other content: a duplicate, not answered.
	bad := append([]byte(nil), i.LastRequest[0]...)
	bad[len(bad)-1] ^= 1
	i.SendRaw(bad)
	waitFor(t, "altered duplicate dropped", func() bool { return g.r.Stats().Get(ike.Duplicates) >= 1 })
	if err := i.DPD(); err != nil {
		t.Errorf("SA unusable after the replays: %v", err)
	}
}

func TestMalformedAndIntegrity(t *testing.T) {
	g := newRig(t, withIKE(""))
	i := g.ap("127.0.0.2", nil)
	if err := i.Connect(); err != nil {
		t.Fatal(err)
	}
	// A message for the SA whose ICV is wrong.
	h := wire.Header{SPIi: i.SPIi, SPIr: i.SPIr, Exchange: wire.INFORMATIONAL, Flags: wire.FlagInitiator, MessageID: 2}
	msgs := i.Seal(h, nil)
	msgs[0][len(msgs[0])-1] ^= 0xff
	i.SendRaw(msgs[0])
	waitFor(t, "integrity failure counted", func() bool { return g.r.Stats().Get(ike.Integrity) == 1 })
	// Garbage of every kind to the IKE port.
	for _, b := range [][]byte{{1, 2, 3}, make([]byte, 28), bytes.Repeat([]byte{0xff}, 100),
		append(binary.BigEndian.AppendUint64(nil, i.SPIi), make([]byte, 40)...)} {
		i.SendRawTo(b, g.ikeAP)
	}
	waitFor(t, "malformed counted", func() bool { return g.r.Stats().Get(ike.Malformed) >= 2 })
	if err := i.DPD(); err != nil {
		t.Errorf("SA unusable after garbage: %v", err)
	}
}

func TestCookiesUnderLoad(t *testing.T) {
	g := newRig(t, withIKE("  cookie_threshold: 5\n"))
	est := g.ap("127.0.0.2", nil)
	if err := est.Connect(); err != nil {
		t.Fatal(err)
	}
	// A flood of half-open SAs.
	for k := 0; k < 5; k++ {
		f := g.ap("127.0.0.9", func(c *iketest.Config) { c.ID = fmt.Sprintf("flood%d@x", k) })
		if err := f.Init(); err != nil {
			t.Fatal(err)
		}
	}
	if g.r.HalfOpen() != 5 {
		t.Fatalf("half-open = %d", g.r.HalfOpen())
	}
	// New initiators now get a COOKIE first, and still get in.
	late := g.ap("127.0.0.3", func(c *iketest.Config) {
		c.ID, c.PSK, c.Transport = "late@x", []byte("wildcard-secret"), true
	})
	if err := late.Connect(); err != nil {
		t.Fatalf("Connect() under load = %v", err)
	}
	if late.Cookies != 1 || g.r.Stats().Get(ike.CookiesSent) < 1 {
		t.Errorf("cookies met %d, sent %d", late.Cookies, g.r.Stats().Get(ike.CookiesSent))
	}
	// The established SA is unaffected.
	if err := est.DPD(); err != nil {
		t.Errorf("established SA during the flood: %v", err)
	}
	if _, err := est.RekeyChild(est.Children[0]); err != nil {
		t.Errorf("rekey during the flood: %v", err)
	}
}

func TestChildRekeyMakeBeforeBreak(t *testing.T) {
	g := newRig(t, withIKE("  esp_proposals: [aes256gcm16-ecp256, aes256ctr-sha512-esn]\n  delete_grace: 1s\n"))
	i := g.ap("127.0.0.2", func(c *iketest.Config) { c.ESP = "aes256gcm16-ecp256" })
	if err := i.Connect(); err != nil {
		t.Fatal(err)
	}
	old := i.Children[0]
	n, err := i.RekeyChild(old)
	if err != nil {
		t.Fatalf("RekeyChild() = %v", err)
	}
	tb := g.store.Load()
	pe := g.peer("127.0.0.2")
	// New inbound installed, outbound still the old one until the delete.
	if tb.InSA[n.Out.SPI] == nil || tb.InSA[old.Out.SPI] == nil {
		t.Fatalf("after rekey: new inbound %v, old inbound %v", tb.InSA[n.Out.SPI] != nil, tb.InSA[old.Out.SPI] != nil)
	}
	if pe.Out.ESP.SPI() != old.In.SPI {
		t.Errorf("outbound switched before the peer deleted the old SA")
	}
	paired, err := i.DeleteChild(old)
	if err != nil || len(paired) != 1 || paired[0] != old.Out.SPI {
		t.Fatalf("DeleteChild() = %x, %v; want [%08x]", paired, err, old.Out.SPI)
	}
	pe = g.peer("127.0.0.2")
	checkESP(t, g.store.Load(), pe, n)
	if g.store.Load().InSA[old.Out.SPI] == nil {
		t.Errorf("old inbound SA removed before its grace window")
	}
	waitFor(t, "old inbound removed after the grace window", func() bool { return g.store.Load().InSA[old.Out.SPI] == nil })
	if g.r.Stats().Get(ike.ChildRekeys) != 1 {
		t.Errorf("child_rekeys = %d", g.r.Stats().Get(ike.ChildRekeys))
	}
}

func TestIKERekey(t *testing.T) {
	g := newRig(t, withIKE(""))
	i := g.ap("127.0.0.2", nil)
	if err := i.Connect(); err != nil {
		t.Fatal(err)
	}
	oldSPI := i.SPIr
	if err := i.RekeyIKE(); err != nil {
		t.Fatalf("RekeyIKE() = %v", err)
	}
	if i.SPIr == oldSPI {
		t.Fatalf("SPI unchanged")
	}
	if err := i.DPD(); err != nil {
		t.Fatalf("DPD on the new IKE SA: %v", err)
	}
	// The CHILD_SA moved to the new IKE SA and still works; rekeying it
	// uses the new SA's SK_d.
	checkESP(t, g.store.Load(), g.peer("127.0.0.2"), i.Children[0])
	n, err := i.RekeyChild(i.Children[0])
	if err != nil {
		t.Fatalf("RekeyChild() after the IKE rekey = %v", err)
	}
	if _, err := i.DeleteChild(i.Children[0]); err != nil {
		t.Fatal(err)
	}
	checkESP(t, g.store.Load(), g.peer("127.0.0.2"), n)
	if g.r.Stats().Get(ike.IKERekeys) != 1 {
		t.Errorf("ike_rekeys = %d", g.r.Stats().Get(ike.IKERekeys))
	}
}

func TestDPDDeadPeer(t *testing.T) {
	g := newRig(t, withIKE("  dpd: 1s\n  dpd_timeout: 2s\n"))
	i := g.ap("127.0.0.2", nil)
	if err := i.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a DPD answered", func() bool { return i.Requests.Load() >= 1 })
	i.Silent.Store(true)
	waitFor(t, "dead peer removed", func() bool { return len(g.store.Load().InSA) == 0 })
	if g.r.Stats().Get(ike.DPDDead) != 1 {
		t.Errorf("dpd_dead = %d", g.r.Stats().Get(ike.DPDDead))
	}
	// The AP comes back (restarted: INITIAL_CONTACT).
	j := g.ap("127.0.0.2", func(c *iketest.Config) { c.InitialContact = true })
	if err := j.Connect(); err != nil {
		t.Fatalf("reconnect: %v", err)
	}
	checkESP(t, g.store.Load(), g.peer("127.0.0.2"), j.Children[0])
}

func TestInitialContactReplacesOldSA(t *testing.T) {
	g := newRig(t, withIKE(""))
	i := g.ap("127.0.0.2", nil)
	if err := i.Connect(); err != nil {
		t.Fatal(err)
	}
	old := i.Children[0]
	j := g.ap("127.0.0.2", func(c *iketest.Config) { c.InitialContact = true })
	if err := j.Connect(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "old SA removed", func() bool { return g.store.Load().InSA[old.Out.SPI] == nil })
	checkESP(t, g.store.Load(), g.peer("127.0.0.2"), j.Children[0])
}

func TestNATTraversal(t *testing.T) {
	g := newRig(t, withIKE("  esp_proposals: [aes256ctr-sha512]\n"))
	i := g.ap("127.0.0.2", func(c *iketest.Config) { c.FakeNAT, c.ESP, c.Transport = true, "aes256ctr-sha512", false })
	if err := i.Connect(); err != nil {
		t.Fatal(err)
	}
	pe := g.peer("127.0.0.2")
	if !pe.Out.UDPEncap || pe.St.NATPort.Load() != uint32(i.LocalAddr().Port()) {
		t.Errorf("NAT-T: udp_encap %v, NAT port %d (AP port %d)", pe.Out.UDPEncap, pe.St.NATPort.Load(), i.LocalAddr().Port())
	}
	checkESP(t, g.store.Load(), pe, i.Children[0])
	// IKE keeps working over 4500 with the marker; keepalives are ignored.
	i.SendRawTo([]byte{0xff}, g.natAP)
	if err := i.DPD(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "keepalive counted", func() bool { return g.r.Stats().Get(ike.Keepalives) == 1 })
}

func TestFragmentation(t *testing.T) {
	g := newRig(t, withIKE(""))
	i := g.ap("127.0.0.2", func(c *iketest.Config) { c.FragmentSize = 64 })
	if err := i.Connect(); err != nil {
		t.Fatalf("Connect() with fragmented IKE_AUTH = %v", err)
	}
	if g.r.Stats().Get(ike.FragmentsRx) < 2 {
		t.Errorf("fragments_rx = %d", g.r.Stats().Get(ike.FragmentsRx))
	}
	// A retransmitted fragmented request is answered on fragment 1.
	if err := i.DPD(); err != nil {
		t.Fatal(err)
	}
}

func TestIKEOnlyPeer(t *testing.T) {
	// An AP without a static_peers entry still gets its SAs installed.
	g := newRig(t, withIKE(""))
	i := g.ap("127.0.0.7", func(c *iketest.Config) { c.ID, c.PSK = "other@x", []byte("wildcard-secret") })
	if err := i.Connect(); err != nil {
		t.Fatal(err)
	}
	pe := g.peer("127.0.0.7")
	if pe == nil || pe.Name != "ike 127.0.0.7" {
		t.Fatalf("peer %v", pe)
	}
	checkESP(t, g.store.Load(), pe, i.Children[0])
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}

func TestListing(t *testing.T) {
	g := newRig(t, withIKE(""))
	i := g.ap("127.0.0.2", nil)
	if err := i.Connect(); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	g.r.Listing().WriteText(&b)
	out := b.String()
	for _, want := range []string{apID + ": ESTABLISHED, IKEv2", "AES_CTR_256/HMAC_SHA2_512_256/PRF_HMAC_SHA2_512/CURVE_25519",
		"INSTALLED, TRANSPORT, ESN", "local  127.0.0.1/32[115]", "remote 127.0.0.2/32[115]", "ike_sas_established      1"} {
		if !strings.Contains(out, want) {
			t.Errorf("listing lacks %q:\n%s", want, out)
		}
	}
	js, err := json.Marshal(g.r.Listing())
	if err != nil || !bytes.Contains(js, []byte(`"remote_id":"`+apID+`"`)) {
		t.Errorf("JSON listing: %v\n%s", err, js)
	}
}

func TestIdentities(t *testing.T) {
	g := newRig(t, `
ike:
  listen: [127.0.0.1]
  psk:
    - {id: "127.0.0.2", secret: "by-ipv4-0123456789"}
    - {id: "ap.example", secret: "by-fqdn-0123456789"}
    - {id: "@ap2.example", secret: "by-at-fqdn-0123456789"}
    - {id: "ap@example", secret: "by-rfc822-0123456789"}
    - {id: "@#0011223344ff", secret: "by-keyid-0123456789"}
    - {id: "2001:db8::2", secret: "by-ipv6-0123456789"}
`)
	for _, tc := range []struct{ id, secret string }{
		{"127.0.0.2", "by-ipv4-0123456789"}, {"ap.example", "by-fqdn-0123456789"}, {"@ap2.example", "by-at-fqdn-0123456789"},
		{"ap@example", "by-rfc822-0123456789"}, {"@#0011223344ff", "by-keyid-0123456789"}, {"2001:db8::2", "by-ipv6-0123456789"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			i := g.ap("127.0.0.2", func(c *iketest.Config) { c.ID, c.PSK = tc.id, []byte(tc.secret) })
			if err := i.Connect(); err != nil {
				t.Fatalf("Connect() = %v", err)
			}
			i.DeleteIKE()
		})
	}
}

func TestIPv6(t *testing.T) {
	c, err := config.Parse([]byte(`
downstream: {address: "::1/128"}
tunnels: [{name: corp, vlans: [100]}]
ike: {listen: ["::1"], psk: [{id: "*", secret: "v6-secret"}], esp_proposals: [aes256gcm16-esn]}
`))
	if err != nil {
		t.Fatal(err)
	}
	store := &table.Store{}
	prog := programmer.New(store, bridge.New(1024))
	if _, err := prog.Apply(c); err != nil {
		t.Fatal(err)
	}
	r, err := ike.New(ike.Options{Config: c.IKE, Dataplane: prog, Log: slog.New(slog.NewTextHandler(&logBuf{}, nil)), Port: -1, NATTPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer r.Close()
	a, n := r.Addrs()
	i, err := iketest.Dial(iketest.Config{Local: netip.MustParseAddrPort("[::1]:0"), Server: a[0], ServerNATT: n[0],
		IKE: "aes256ctr-sha512-prfsha512-curve25519", ESP: "aes256gcm16-esn", ID: "ap6@example", PSK: []byte("v6-secret"),
		Transport: true, FakeNAT: true})
	if err != nil {
		t.Fatal(err)
	}
	defer i.Close()
	if err := i.Connect(); err != nil {
		t.Fatalf("Connect() over IPv6 = %v", err)
	}
	var pe *table.Peer
	for _, p := range store.Load().Peers {
		pe = p
	}
	if pe == nil || !pe.Addr.Is6() || !pe.Out.UDPEncap {
		t.Fatalf("IPv6 peer %+v", pe)
	}
	checkESP(t, store.Load(), pe, i.Children[0])
	if got := i.Children[0].TSr[0].String(); got != "::1/128[115]" {
		t.Errorf("TSr = %s", got)
	}
}

func TestInitRetransmitAndHalfOpenTimeout(t *testing.T) {
	g := newRig(t, withIKE("  half_open_timeout: 1s\n"))
	i := g.ap("127.0.0.2", nil)
	if err := i.Init(); err != nil {
		t.Fatal(err)
	}
	first := i.LastRequest
	i.Drain()
	for _, b := range first { // the same IKE_SA_INIT again: same answer, no new SA
		i.SendRaw(b)
	}
	waitFor(t, "IKE_SA_INIT retransmission answered", func() bool { return g.r.Stats().Get(ike.Retransmits) == 1 })
	if g.r.HalfOpen() != 1 {
		t.Errorf("half-open = %d after a retransmission", g.r.HalfOpen())
	}
	waitFor(t, "half-open SA dropped", func() bool { return g.r.HalfOpen() == 0 })
	if g.r.Stats().Get(ike.HalfOpenTimeouts) != 1 {
		t.Errorf("half_open_timeouts = %d", g.r.Stats().Get(ike.HalfOpenTimeouts))
	}
	// IKE_AUTH for the dropped SA finds nothing.
	if err := i.Auth(); err == nil {
		t.Errorf("IKE_AUTH after the half-open timeout succeeded")
	}
	if g.r.Stats().Get(ike.UnknownSPI) == 0 {
		t.Errorf("unknown_spi not counted")
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		g := newRig(t, withIKE(""))
		i := g.ap("127.0.0.2", nil)
		if err := i.Connect(); err != nil {
			t.Fatal(err)
		}
		i.Close()
		g.r.Close()
	}()
	waitFor(t, "goroutines back to the start", func() bool { return runtime.NumGoroutine() <= before })
}
