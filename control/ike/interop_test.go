package ike_test

import (
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/tunterm/tunterm/control/config"
	"github.com/tunterm/tunterm/control/ike"
	"github.com/tunterm/tunterm/control/ike/iketest"
	"github.com/tunterm/tunterm/control/programmer"
	"github.com/tunterm/tunterm/dataplane/bridge"
	"github.com/tunterm/tunterm/dataplane/table"
)

// Interop with strongSwan 5.9 (charon + kernel-libipsec) as the AP: the
// responder runs in this process, its sockets in namespace tt-ike-<n>-r
// (198.18.0.1), charon in tt-ike-<n>-a (198.18.0.2). The dataplane is not
// running here (control/daemon's interop test sends traffic through
// `tunterm run`); these tests check the negotiation and the tables.

type netLab struct {
	t    *testing.T
	a, r string
}

func requireInterop(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("!!! NOT TESTED: strongSwan interop needs root (netns) !!!")
	}
	if !iketest.HaveCharon() {
		t.Skip("!!! NOT TESTED: strongSwan charon/swanctl missing: run `make deps` (strongswan-charon strongswan-swanctl libcharon-extra-plugins) !!!")
	}
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newNetLab(t *testing.T) *netLab {
	p := fmt.Sprintf("tt-ike-%d-", os.Getpid()%100000)
	l := &netLab{t: t, a: p + "a", r: p + "r"}
	for _, n := range []string{l.a, l.r} {
		exec.Command("ip", "netns", "del", n).Run()
		run(t, "ip", "netns", "add", n)
	}
	t.Cleanup(func() {
		for _, n := range []string{l.a, l.r} {
			exec.Command("ip", "netns", "del", n).Run()
		}
	})
	run(t, "ip", "link", "add", "ap0", "netns", l.a, "type", "veth", "peer", "name", "tt0", "netns", l.r)
	run(t, "ip", "-n", l.a, "addr", "add", "198.18.0.2/24", "dev", "ap0")
	run(t, "ip", "-n", l.r, "addr", "add", "198.18.0.1/24", "dev", "tt0")
	for _, x := range [][2]string{{l.a, "ap0"}, {l.r, "tt0"}, {l.a, "lo"}, {l.r, "lo"}} {
		run(t, "ip", "-n", x[0], "link", "set", x[1], "up")
	}
	return l
}

// inNS runs f on a thread in namespace ns (sockets opened there stay there).
func inNS(t *testing.T, ns string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // not unlocked: the thread dies with the goroutine
		h, err := netns.GetFromName(ns)
		if err != nil {
			t.Errorf("netns %s: %v", ns, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			t.Errorf("setns: %v", err)
			return
		}
		f()
	}()
	<-done
}

const interopPSK = "tt-interop-psk-0123456789"

// The proposal sets: the seed's (without ESN, which libipsec refuses), GCM
// with ECP-384, CBC with MODP-2048, GCM-128 with ECP-256, CTR with ESP
// HMAC-SHA-384-192.
var interopSets = []struct{ name, ike, esp, want string }{
	{"seed", "aes256ctr-sha512-prfsha512-curve25519", "aes256ctr-sha512", "ESP:AES_CTR-256/HMAC_SHA2_512_256"},
	{"gcm", "aes256gcm16-prfsha384-ecp384", "aes256gcm16", "ESP:AES_GCM_16-256"},
	{"cbc", "aes256-sha256-modp2048", "aes256-sha512", "ESP:AES_CBC-256/HMAC_SHA2_512_256"},
	{"gcm128", "aes128gcm16-prfsha256-ecp256", "aes128gcm16", "ESP:AES_GCM_16-128"},
	{"sha384", "aes256ctr-sha384-ecp384", "aes256ctr-sha384", "ESP:AES_CTR-256/HMAC_SHA2_384_192"},
}

func swanctlConf() string {
	var b strings.Builder
	b.WriteString("connections {\n")
	for _, s := range interopSets {
		fmt.Fprintf(&b, `  %[1]s {
    version = 2
    local_addrs = 198.18.0.2
    remote_addrs = 198.18.0.1
    proposals = %[2]s
    dpd_delay = 0
    local { auth = psk
            id = "@#0011223344ff" }
    remote { auth = psk
             id = tunterm.example }
    children {
      %[1]s-l2tp { local_ts = 198.18.0.2/32[udp/1701]
                   remote_ts = 198.18.0.1/32[udp/1701]
                   esp_proposals = %[3]s
                   mode = tunnel }
    }
  }
`, s.name, s.ike, s.esp)
	}
	b.WriteString(`}
secrets {
  ike-ap { id-1 = "@#0011223344ff"
           id-2 = tunterm.example
           secret = "` + interopPSK + `" }
}
`)
	return b.String()
}

type interopRig struct {
	*netLab
	r     *ike.Responder
	prog  *programmer.Programmer
	store *table.Store
	log   *logBuf
	ch    *iketest.Charon
}

func newInteropRig(t *testing.T, extra string) *interopRig {
	return newInteropRigWith(t, extra, swanctlConf(), nil)
}

// newInteropRigWith: extra is appended to our ike: block, swconf is
// charon's swanctl.conf, files its credentials, charonOpts extra lines for
// the charon section of its strongswan.conf.
func newInteropRigWith(t *testing.T, extra, swconf string, files map[string][]byte, charonOpts ...string) *interopRig {
	requireInterop(t)
	l := newNetLab(t)
	var ikes, esps []string
	for _, s := range interopSets {
		ikes = append(ikes, s.ike)
		esps = append(esps, s.esp)
	}
	y := fmt.Sprintf(`
downstream: {address: 198.18.0.1/24}
tunnels: [{name: corp, vlans: [100], protocol: udp}]
static_peers:
  - {name: ap1, address: 198.18.0.2, tunnel: corp, l2tp: {local_session_id: 11, remote_session_id: 21}}
ike:
  local_id: tunterm.example
  psk: [{id: "@#0011223344ff", secret: %q}]
  proposals: [%s]
  esp_proposals: [aes256ctr-sha512-esn, %s]
%s`, interopPSK, strings.Join(ikes, ", "), strings.Join(esps, ", "), extra)
	c, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	g := &interopRig{netLab: l, store: &table.Store{}, log: &logBuf{}}
	g.prog = programmer.New(g.store, bridge.New(1024))
	if _, err := g.prog.Apply(c); err != nil {
		t.Fatal(err)
	}
	lg := slog.New(slog.NewTextHandler(g.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if g.r, err = ike.New(ike.Options{Config: c.IKE, Dataplane: g.prog, Log: lg}); err != nil {
		t.Fatal(err)
	}
	inNS(t, l.r, func() {
		if err := g.r.Start(); err != nil {
			t.Errorf("Start: %v", err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	t.Cleanup(func() {
		g.r.Close()
		if t.Failed() {
			t.Logf("responder log:\n%s", g.log.String())
		}
	})
	g.ch = iketest.StartCharonWith(t, l.a, strings.Join(charonOpts, "\n"), swconf, files)
	return g
}

func (g *interopRig) ap1() *table.Peer {
	for _, p := range g.store.Load().Peers {
		if p.Name == "ap1" {
			return p
		}
	}
	return nil
}

func (g *interopRig) waitLog(t *testing.T, s string) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if strings.Contains(g.log.String(), s) {
			return
		}
	}
	t.Fatalf("responder log has no %q", s)
}

// TestStrongSwanProposals: five proposal sets, PSK with a KEY_ID identity,
// NAT-T (libipsec fakes a NAT), tunnel-mode host-to-host UDP 1701; the SAs
// land in the tables.
func TestStrongSwanProposals(t *testing.T) {
	g := newInteropRig(t, "")
	for _, s := range interopSets {
		t.Run(s.name, func(t *testing.T) {
			out := g.ch.Initiate(s.name, s.name+"-l2tp")
			if !strings.Contains(out, "established") {
				t.Fatalf("swanctl --initiate:\n%s", out)
			}
			pe := g.ap1()
			if pe == nil || pe.Out == nil {
				t.Fatalf("no outbound SA for ap1 in the tables")
			}
			if pe.Out.Mode != table.ModeTunnel || !pe.Out.UDPEncap || pe.Out.InnerRemote != netip.MustParseAddr("198.18.0.2") ||
				pe.Out.InnerLocal != netip.MustParseAddr("198.18.0.1") {
				t.Errorf("outbound SA: mode %v udp %v inner %v->%v", pe.Out.Mode, pe.Out.UDPEncap, pe.Out.InnerLocal, pe.Out.InnerRemote)
			}
			in := g.store.Load().InSA
			found := false
			for spi, sa := range in {
				if sa.Peer == pe && strings.Contains(out, fmt.Sprintf("%08x_o", spi)) {
					found = true
				}
			}
			if !found {
				t.Errorf("the inbound SPI charon reports is not in the tables:\n%s", out)
			}
			list, _ := g.ch.Swanctl("--list-sas", "--ike", s.name)
			if !strings.Contains(list, s.want) {
				t.Errorf("charon's SA is not %s:\n%s", s.want, list)
			}
			if !strings.Contains(list, "ESTABLISHED") || !strings.Contains(list, "TUNNEL-in-UDP") ||
				!strings.Contains(list, "remote 198.18.0.1/32[udp/l2f]") {
				t.Errorf("list-sas:\n%s", list)
			}
			if out, err := g.ch.Swanctl("--terminate", "--ike", s.name, "--timeout", "10"); err != nil {
				t.Fatalf("terminate: %v\n%s", err, out)
			}
			waitFor(t, "SAs removed after charon's DELETE", func() bool { return len(g.store.Load().InSA) == 0 })
		})
	}
	if n := g.r.Stats().Get(ike.IKESAs); n != uint64(len(interopSets)) {
		t.Errorf("ike_sas_established = %d", n)
	}
}

// TestStrongSwanRekey: charon rekeys the CHILD_SA and the IKE SA; then we
// rekey both ourselves (short lifetimes); the peer's outbound SA always
// exists and the old inbound SAs go after the grace window.
func TestStrongSwanRekey(t *testing.T) {
	g := newInteropRig(t, "  lifetime: {ike: 12s, child: 6s}\n  delete_grace: 1s\n")
	g.ch.Initiate("seed", "seed-l2tp")
	first := g.ap1().Out.ESP.SPI()
	if out, err := g.ch.Swanctl("--rekey", "--child", "seed-l2tp"); err != nil {
		t.Fatalf("rekey child: %v\n%s", err, out)
	}
	waitFor(t, "outbound switched after charon's CHILD_SA rekey", func() bool {
		pe := g.ap1()
		return pe.Out != nil && pe.Out.ESP.SPI() != first
	})
	if out, err := g.ch.Swanctl("--rekey", "--ike", "seed"); err != nil {
		t.Fatalf("rekey ike: %v\n%s", err, out)
	}
	g.waitLog(t, "IKE SA rekeyed by the peer")
	// Our own rekeys: CHILD_SA after ~6s, IKE SA after ~12s.
	g.waitLog(t, "msg=\"CHILD_SA rekeyed\"")
	g.waitLog(t, "msg=\"IKE SA rekeyed\"")
	if !g.ch.WaitLog("rekeyed", 5*time.Second) {
		t.Errorf("charon did not log our rekeys")
	}
	list, _ := g.ch.Swanctl("--list-sas")
	if !strings.Contains(list, "ESTABLISHED") || !strings.Contains(list, "INSTALLED") {
		t.Errorf("after the rekeys:\n%s", list)
	}
	if g.ap1().Out == nil {
		t.Errorf("no outbound SA after the rekeys")
	}
	if n := len(g.store.Load().InSA); n > 2 {
		t.Errorf("%d inbound SAs left; old ones are not removed", n)
	}
}

// TestStrongSwanDPD: a killed charon is noticed by DPD and its SAs removed;
// restarted, it comes back.
func TestStrongSwanDPD(t *testing.T) {
	g := newInteropRig(t, "  dpd: 2s\n  dpd_timeout: 4s\n")
	g.ch.Initiate("seed", "seed-l2tp")
	g.waitLog(t, "CHILD_SA installed")
	// A liveness check (dpd: 2s after the last message, on the 250 ms
	// tick), answered by charon.
	waitFor(t, "a liveness check sent", func() bool { return g.r.Stats().Get(ike.DPDSent) > 0 })
	g.ch.WaitLog("generating INFORMATIONAL response", 10*time.Second)
	if g.r.Stats().Get(ike.DPDSent) == 0 || len(g.store.Load().InSA) != 1 {
		t.Fatalf("dpd_sent %d, SAs %d", g.r.Stats().Get(ike.DPDSent), len(g.store.Load().InSA))
	}
	g.ch.Kill()
	waitFor(t, "dead peer's SAs removed", func() bool { return len(g.store.Load().InSA) == 0 })
	if g.r.Stats().Get(ike.DPDDead) != 1 {
		t.Errorf("dpd_dead = %d", g.r.Stats().Get(ike.DPDDead))
	}
	g.ch.Start()
	g.ch.Initiate("seed", "seed-l2tp")
	if pe := g.ap1(); pe.Out == nil || len(g.store.Load().InSA) != 1 {
		t.Fatalf("restarted peer: SAs %d", len(g.store.Load().InSA))
	}
}

// TestStrongSwanCertificates: charon authenticates with an ECDSA
// certificate (RFC 7427) and checks ours; an AP with an expired
// certificate is refused or accepted by the policy of its CA.
func TestStrongSwanCertificates(t *testing.T) {
	requireInterop(t)
	dir := t.TempDir()
	now := time.Now()
	year := 365 * 24 * time.Hour
	ca := mkCert(t, "AP CA", ecKey(elliptic.P256()), nil, true, now.Add(-20*year), now.Add(20*year))
	oldCA := mkCert(t, "Old AP CA", ecKey(elliptic.P256()), nil, true, now.Add(-20*year), now.Add(20*year))
	srv := mkCert(t, "tunterm.example", ecKey(elliptic.P256()), ca, false, now.Add(-year), now.Add(year), "tunterm.example")
	ap := mkCert(t, "ap1.example", ecKey(elliptic.P256()), ca, false, now.Add(-year), now.Add(year), "ap1.example")
	old := mkCert(t, "ap2.example", ecKey(elliptic.P256()), oldCA, false, now.Add(-11*year), now.Add(-time.Hour), "ap2.example")
	caFile, _ := writePEM(t, dir, "ca", ca)
	oldCAFile, _ := writePEM(t, dir, "oldca", oldCA)
	srvCert, srvKey := writePEM(t, dir, "srv", srv)
	pemOf := func(p *pki) (c, k []byte) {
		der, _ := x509.MarshalPKCS8PrivateKey(p.key)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.cert.Raw}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	apC, apK := pemOf(ap)
	oldC, oldK := pemOf(old)
	caC, _ := pemOf(ca)
	files := map[string][]byte{"x509ca/ca.pem": caC, "x509/ap1.pem": apC, "pkcs8/ap1.key": apK,
		"x509/ap2.pem": oldC, "pkcs8/ap2.key": oldK}
	conn := func(name, id, cert string) string {
		return fmt.Sprintf(`  %[1]s {
    version = 2
    local_addrs = 198.18.0.2
    remote_addrs = 198.18.0.1
    proposals = aes256gcm16-prfsha384-ecp384
    local { auth = pubkey
            certs = %[3]s
            id = %[2]s }
    remote { auth = pubkey
             id = tunterm.example }
    children {
      %[1]s-l2tp { local_ts = 198.18.0.2/32[udp/1701]
                   remote_ts = 198.18.0.1/32[udp/1701]
                   esp_proposals = aes256gcm16
                   mode = tunnel }
    }
  }
`, name, id, cert)
	}
	sw := "connections {\n" + conn("cert", "ap1.example", "ap1.pem") + conn("expired", "ap2.example", "ap2.pem") + "}\n"
	extra := fmt.Sprintf("  cert: %s\n  key: %s\n  ca: [%s, {file: %s, expired_certs: %%s}]\n", srvCert, srvKey, caFile, oldCAFile)
	for _, policy := range []string{"reject", "accept"} {
		t.Run("expired-"+policy, func(t *testing.T) {
			g := newInteropRigWith(t, fmt.Sprintf(extra, policy), sw, files)
			out := g.ch.Initiate("cert", "cert-l2tp")
			if !strings.Contains(out, "authentication of 'tunterm.example' with ECDSA") && !strings.Contains(out, "with RSA") &&
				!strings.Contains(out, "authentication of 'tunterm.example'") {
				t.Errorf("charon did not authenticate us:\n%s", out)
			}
			if pe := g.ap1(); pe == nil || pe.Out == nil {
				t.Fatalf("no SA for ap1")
			}
			out, err := g.ch.Swanctl("--initiate", "--ike", "expired", "--child", "expired-l2tp", "--timeout", "10")
			if policy == "reject" {
				if err == nil {
					t.Fatalf("expired certificate accepted with policy reject:\n%s", out)
				}
				if g.r.Stats().Get(ike.CertExpiredReject) != 1 {
					t.Errorf("cert_expired_rejected = %d", g.r.Stats().Get(ike.CertExpiredReject))
				}
			} else {
				if err != nil {
					t.Fatalf("expired certificate refused with policy accept: %v\n%s", err, out)
				}
				if g.r.Stats().Get(ike.CertExpiredAccept) != 1 {
					t.Errorf("cert_expired_accepted = %d", g.r.Stats().Get(ike.CertExpiredAccept))
				}
				var b strings.Builder
				g.r.Listing().WriteText(&b)
				if !strings.Contains(b.String(), "EXPIRED (accepted by policy)") {
					t.Errorf("listing does not flag the expired certificate:\n%s", b.String())
				}
			}
		})
	}
}

// TestStrongSwanByteLifetime: when the dataplane flags a CHILD_SA's soft
// byte limit (esp.State.RekeyNeeded, set by the SA's worker), we rekey it
// with charon and switch to the new SA.
func TestStrongSwanByteLifetime(t *testing.T) {
	g := newInteropRig(t, "  lifetime: {child_bytes: 1048576}\n  delete_grace: 1s\n")
	g.ch.Initiate("gcm", "gcm-l2tp")
	pe := g.ap1()
	first := pe.Out.ESP.SPI()
	var in *table.SA
	for _, sa := range g.store.Load().InSA {
		in = sa
	}
	in.ESP.St.RekeyNeeded.Store(true) // what esp.SA.Open does at 1 MiB
	waitFor(t, "rekeyed after the byte limit", func() bool {
		pe := g.ap1()
		return pe.Out != nil && pe.Out.ESP.SPI() != first
	})
	g.waitLog(t, "msg=\"CHILD_SA rekeyed\"")
	waitFor(t, "old inbound SA removed", func() bool { return g.store.Load().InSA[in.ESP.SPI()] == nil })
	list, _ := g.ch.Swanctl("--list-sas")
	if strings.Count(list, "INSTALLED") != 1 {
		t.Errorf("charon after our rekey:\n%s", list)
	}
}
