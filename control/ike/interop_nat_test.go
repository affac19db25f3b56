package ike_test

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/tunterm/tunterm/control/config"
	"github.com/tunterm/tunterm/control/ike"
	"github.com/tunterm/tunterm/control/ike/iketest"
	"github.com/tunterm/tunterm/control/programmer"
	"github.com/tunterm/tunterm/dataplane/bridge"
	"github.com/tunterm/tunterm/dataplane/table"
)

// TestStrongSwanTwoAPsBehindOneNAT: two strongSwan APs (198.18.1.2 and
// 198.18.2.2) behind a real NAT (nftables masquerade in its own namespace,
// outside address 198.18.0.2) connect to the responder (198.18.0.1). Both
// arrive from 198.18.0.2; each must get its own dataplane peer with the
// SPIs charon reports and its own NAT port, and one AP leaving must not
// disturb the other.
func TestStrongSwanTwoAPsBehindOneNAT(t *testing.T) {
	requireInterop(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("!!! NOT TESTED: nft missing: run `make deps` (nftables) !!!")
	}
	p := fmt.Sprintf("tt-ikn-%d-", os.Getpid()%100000)
	r, n, a1, a2 := p+"r", p+"n", p+"a1", p+"a2"
	all := []string{r, n, a1, a2}
	for _, ns := range all {
		exec.Command("ip", "netns", "del", ns).Run()
		run(t, "ip", "netns", "add", ns)
	}
	t.Cleanup(func() {
		for _, ns := range all {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	// responder tt0 198.18.0.1 — n0 198.18.0.2 [NAT] l1 198.18.1.1 — ap0 198.18.1.2
	//                                                 l2 198.18.2.1 — ap0 198.18.2.2
	run(t, "ip", "link", "add", "n0", "netns", n, "type", "veth", "peer", "name", "tt0", "netns", r)
	run(t, "ip", "link", "add", "l1", "netns", n, "type", "veth", "peer", "name", "ap0", "netns", a1)
	run(t, "ip", "link", "add", "l2", "netns", n, "type", "veth", "peer", "name", "ap0", "netns", a2)
	for _, x := range [][3]string{{r, "tt0", "198.18.0.1/24"}, {n, "n0", "198.18.0.2/24"}, {n, "l1", "198.18.1.1/24"},
		{n, "l2", "198.18.2.1/24"}, {a1, "ap0", "198.18.1.2/24"}, {a2, "ap0", "198.18.2.2/24"}} {
		run(t, "ip", "-n", x[0], "addr", "add", x[2], "dev", x[1])
		run(t, "ip", "-n", x[0], "link", "set", x[1], "up")
	}
	for _, ns := range all {
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "-n", a1, "route", "add", "default", "via", "198.18.1.1")
	run(t, "ip", "-n", a2, "route", "add", "default", "via", "198.18.2.1")
	run(t, "ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	nat := `table ip nat {
  chain post { type nat hook postrouting priority srcnat; oifname "n0" masquerade; }
}`
	cmd := exec.Command("ip", "netns", "exec", n, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(nat)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}

	y := fmt.Sprintf(`
downstream: {address: 198.18.0.1/24}
tunnels: [{name: corp, vlans: [100], protocol: udp}]
ike:
  local_id: tunterm.example
  psk: [{id: "*", secret: %q}]
  esp_proposals: [aes256gcm16]
`, interopPSK)
	c, err := config.Parse([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	store, lb := &table.Store{}, &logBuf{}
	prog := programmer.New(store, bridge.New(1024))
	if _, err := prog.Apply(c); err != nil {
		t.Fatal(err)
	}
	resp, err := ike.New(ike.Options{Config: c.IKE, Dataplane: prog,
		Log: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	inNS(t, r, func() {
		if err := resp.Start(); err != nil {
			t.Errorf("Start: %v", err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	t.Cleanup(func() {
		resp.Close()
		if t.Failed() {
			t.Logf("responder log:\n%s", lb.String())
		}
	})

	conf := func(addr, mac string) string {
		return fmt.Sprintf(`connections {
  nat {
    version = 2
    local_addrs = %[1]s
    remote_addrs = 198.18.0.1
    proposals = aes256ctr-sha512-prfsha512-curve25519
    dpd_delay = 0
    local { auth = psk
            id = "@#%[2]s" }
    remote { auth = psk
             id = tunterm.example }
    children {
      nat-l2tp { local_ts = %[1]s/32[udp/1701]
                 remote_ts = 198.18.0.1/32[udp/1701]
                 esp_proposals = aes256gcm16
                 mode = tunnel }
    }
  }
}
secrets {
  ike-ap { id-1 = "@#%[2]s"
           id-2 = tunterm.example
           secret = "%[3]s" }
}
`, addr, mac, interopPSK)
	}
	aps := []*iketest.Charon{
		iketest.StartCharon(t, a1, conf("198.18.1.2", "0011223344a1")),
		iketest.StartCharon(t, a2, conf("198.18.2.2", "0011223344a2")),
	}
	spiRE := regexp.MustCompile(`(?m)^\s+in\s+([0-9a-f]{8})(?:_i)?.*\n\s+out\s+([0-9a-f]{8})`)
	type apSA struct {
		in, out uint32
		peer    *table.Peer
	}
	var got []apSA
	for k, ch := range aps {
		ch.Initiate("nat", "nat-l2tp")
		if !strings.Contains(ch.Log(), "local host is behind NAT") {
			t.Errorf("AP %d: charon did not see the NAT:\n%s", k+1, ch.Log())
		}
		list, _ := ch.Swanctl("--list-sas", "--ike", "nat")
		m := spiRE.FindStringSubmatch(list)
		if m == nil {
			t.Fatalf("AP %d: no SPIs in --list-sas:\n%s", k+1, list)
		}
		var s apSA
		fmt.Sscanf(m[1], "%x", &s.in)
		fmt.Sscanf(m[2], "%x", &s.out)
		got = append(got, s)
	}
	tb := store.Load()
	ports := map[uint32]bool{}
	for k := range got {
		s := &got[k]
		in := tb.InSA[s.out] // charon's outbound SA is our inbound one
		if in == nil {
			t.Fatalf("AP %d: our tables lack charon's outbound SPI %08x", k+1, s.out)
		}
		s.peer = in.Peer
		pe := s.peer
		port := pe.St.NATPort.Load()
		if pe.Addr.String() != "198.18.0.2" || pe.Name != fmt.Sprintf("ike 198.18.0.2:%d", port) || !pe.Out.UDPEncap {
			t.Errorf("AP %d: peer %q addr %v NAT port %d udp %v", k+1, pe.Name, pe.Addr, port, pe.Out.UDPEncap)
		}
		if pe.Out == nil || pe.Out.ESP.SPI() != s.in {
			t.Errorf("AP %d: peer %s sends with %v, charon receives on %08x", k+1, pe.Name, pe.Out, s.in)
		}
		ports[port] = true
	}
	if got[0].peer == got[1].peer || len(ports) != 2 {
		t.Fatalf("the two APs behind one NAT share a dataplane peer (%s, %s)", got[0].peer.Name, got[1].peer.Name)
	}

	// The first AP leaves; the second keeps its SAs.
	if out, err := aps[0].Swanctl("--terminate", "--ike", "nat", "--timeout", "10"); err != nil {
		t.Fatalf("terminate: %v\n%s", err, out)
	}
	waitFor(t, "the first AP's SAs removed", func() bool { return store.Load().InSA[got[0].out] == nil })
	tb = store.Load()
	if in := tb.InSA[got[1].out]; in == nil || in.Peer.Name != got[1].peer.Name || in.Peer.Out.ESP.SPI() != got[1].in {
		t.Fatalf("the second AP lost its SAs when the first left")
	}
	if resp.Stats().Get(ike.IKESAs) != 2 {
		t.Errorf("ike_sas_established = %d", resp.Stats().Get(ike.IKESAs))
	}
}
