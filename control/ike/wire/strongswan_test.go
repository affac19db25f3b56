package wire_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/tunterm/tunterm/control/ike/wire"
)

// Real strongSwan bytes. TestStrongSwanLive runs charon (Debian
// strongswan-charon 5.9.8) as the AP-side initiator in a netns and answers
// its IKE_SA_INIT with a response built by this package; charon's own log
// then tells whether it parsed our response the way we meant it, and the
// IKE_AUTH request that follows is real SK traffic. TestStrongSwanTestdata
// checks the messages saved under testdata/strongswan (see the README
// there), so the check also runs where charon is not installed.

const charonBin = "/usr/lib/ipsec/charon"

var (
	swCharon = netip.MustParseAddrPort("198.18.254.1:5500") // charon.port = 5500
	swUs     = netip.MustParseAddrPort("198.18.254.2:500")
	swUsNATT = netip.MustParseAddrPort("198.18.254.2:4500")
	// Configured in swanctl.conf below, in strongSwan's log notation.
	swProposals = []string{
		"IKE:AES_CTR_256/HMAC_SHA2_512_256/PRF_HMAC_SHA2_512/CURVE_25519",
		"IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384",
		"IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
	}
)

const swSwanctl = `connections {
  ikew {
    version = 2
    local_addrs = 198.18.254.1
    remote_addrs = 198.18.254.2
    proposals = aes256ctr-sha512-prfsha512-curve25519,aes256gcm16-prfsha384-ecp384,aes128-sha256-prfsha256-modp2048
    fragmentation = yes
    mobike = no    # else charon floats to 4500 in IKE_AUTH regardless of NAT-D
    local  { auth = psk
             id = "@#0024a5b6c7d8" }
    remote { auth = psk
             id = tunterm.example }
    children {
      l2tp { local_ts = 198.18.254.1/32[udp/1701]
             remote_ts = 198.18.254.2/32[udp/1701]
             esp_proposals = aes256ctr-sha512-esn,aes256gcm16
             mode = transport
             start_action = start }
    }
  }
}
secrets {
  ike-1 { id-1 = "@#0024a5b6c7d8"
          id-2 = tunterm.example
          secret = "tt-ikew-test-psk" }
}
`

func swStrongswanConf(dir string) string {
	return fmt.Sprintf(`charon {
  load = random nonce openssl aes sha1 sha2 hmac gcm pem pkcs1 x509 pubkey kdf kernel-netlink socket-default vici
  port = 5500
  port_nat_t = 5501
  install_routes = no
  retransmit_timeout = 2
  retransmit_tries = 3
  plugins { vici { socket = unix://%[1]s/run/charon.vici } }
  filelog {
    main { path = %[1]s/charon.log
           time_format = %%T
           default = 1
           cfg = 2
           ike = 4
           flush_line = yes
           append = no }
  }
  syslog { daemon { default = -1 } }
}
swanctl {
  load = pem pkcs1 x509 revocation constraints pubkey openssl random
}
`, dir)
}

func TestStrongSwanLive(t *testing.T) {
	if _, err := os.Stat(charonBin); err != nil {
		t.Skipf("SKIPPING: %s not installed (apt-get install strongswan-charon strongswan-swanctl libcharon-extra-plugins, or `make deps`); "+
			"the live strongSwan capture did not run, only the saved testdata was checked", charonBin)
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING: the live strongSwan capture needs root (netns); only the saved testdata was checked")
	}
	for _, tool := range []string{"ip", "swanctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPING: %s not found; the live strongSwan capture did not run", tool)
		}
	}
	ns := fmt.Sprintf("tt-ikew-%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	_ = exec.Command("ip", "netns", "del", ns).Run()
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run("ip", "-n", ns, "link", "set", "lo", "up")
	run("ip", "-n", ns, "link", "add", "tt-ikew-a", "type", "veth", "peer", "name", "tt-ikew-b")
	run("ip", "-n", ns, "addr", "add", swCharon.Addr().String()+"/32", "dev", "tt-ikew-a")
	run("ip", "-n", ns, "addr", "add", swUs.Addr().String()+"/32", "dev", "tt-ikew-b")
	run("ip", "-n", ns, "link", "set", "tt-ikew-a", "up")
	run("ip", "-n", ns, "link", "set", "tt-ikew-b", "up")

	conn500, conn4500 := listenInNS(t, ns)

	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "strongswan.conf")
	if err := os.WriteFile(conf, []byte(swStrongswanConf(dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "swanctl.conf"), []byte(swSwanctl), 0o600); err != nil {
		t.Fatal(err)
	}
	// charon writes /var/run/charon.pid: give it a private /run (ip netns
	// exec already runs it in its own mount namespace), as
	// shared/peers/01-strongswan-libipsec.sh does.
	charon := exec.Command("ip", "netns", "exec", ns, "sh", "-c", "mount --bind "+dir+"/run /run && exec "+charonBin)
	charon.Env = append(os.Environ(), "STRONGSWAN_CONF="+conf)
	charon.Stdout, charon.Stderr = nil, nil
	if err := charon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopProcess(charon) })
	vici := filepath.Join(dir, "run", "charon.vici")
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(vici); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	load := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "swanctl", "--load-all", "--file", filepath.Join(dir, "swanctl.conf"), "--uri", "unix://"+vici)
	load.Env = charon.Env
	out, err := load.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "loaded connection 'ikew'") {
		t.Fatalf("swanctl --load-all: %v\n%s\n%s", err, out, readLog(dir))
	}

	// 1. charon's IKE_SA_INIT request (start_action = start).
	reqB, from := recvIKE(t, conn500, false, 10*time.Second, dir)
	if from != swCharon {
		t.Fatalf("IKE_SA_INIT from %v, want %v", from, swCharon)
	}
	req := checkStrongSwanInit(t, reqB)

	// 2. Our response, with proposal 1 and correct NAT-D.
	sa, _ := wire.First[*wire.SA](req.Payloads)
	natS, natD := wire.NewNATD(req.SPIi, 0x7474696b65770001, swUs, from)
	resp := wire.NewResponse(req,
		&wire.SA{Proposals: sa.Proposals[:1]},
		&wire.KE{Group: wire.CURVE_25519, Data: randBytes(t, 32)},
		&wire.Nonce{Data: randBytes(t, 32)},
		natS, natD,
		wire.NewNotify(wire.IKEV2_FRAGMENTATION_SUPPORTED, nil),
	)
	resp.SPIr = 0x7474696b65770001
	respB := resp.Marshal()
	if _, err := conn500.WriteToUDPAddrPort(respB, from); err != nil {
		t.Fatal(err)
	}

	// 3. charon's IKE_AUTH request: on port 500, because our NAT-D hashes
	// matched what charon computed (on a mismatch it floats to 4500).
	authB, from := recvIKEEither(t, conn500, conn4500, 10*time.Second, dir)
	auth := checkStrongSwanAuth(t, authB, req.SPIi, resp.SPIr)
	if from.Port() != swCharon.Port() {
		t.Errorf("IKE_AUTH from %v: charon floated to NAT-T, so it disagreed with our NAT-D hashes", from)
	}
	stopProcess(charon)

	// 4. What charon logged about our messages.
	log := readLog(dir)
	for _, want := range []string{
		"generating " + req.String(),
		"parsed " + resp.String(),
		"received proposals: " + resp.Payloads[0].(*wire.SA).Proposals[0].String(),
		"selected proposal: " + swProposals[0],
		"configured proposals: " + strings.Join(swProposals, ", "),
	} {
		if !strings.Contains(log, want) {
			t.Errorf("charon log lacks %q", want)
		}
	}
	for _, bad := range []string{"behind NAT", "faking NAT", "parsing IKE_SA_INIT response 0 failed", "invalid"} {
		if strings.Contains(log, bad) {
			t.Errorf("charon log says %q", bad)
		}
	}
	if t.Failed() {
		t.Logf("charon log:\n%s", log)
	}
	// charon logs the IKE_AUTH payload list it encrypted; our SK's Next
	// must be the first of them.
	if m := regexp.MustCompile(`generating IKE_AUTH request 1 \[ (\S+)`).FindStringSubmatch(log); m == nil {
		t.Errorf("charon did not log its IKE_AUTH request")
	} else if sk := auth.Payloads[0].(*wire.Encrypted); sk.Next.String() != m[1] {
		t.Errorf("SK Next = %v, charon's first inner payload is %s", sk.Next, m[1])
	}
	t.Logf("charon sent:  %s", req)
	t.Logf("we answered:  %s", resp)
	t.Logf("charon sent:  %s (inner: %s)", auth, regexp.MustCompile(`generating (IKE_AUTH request 1 \[.*\])`).FindStringSubmatch(log))

	if os.Getenv("IKE_WIRE_UPDATE_TESTDATA") != "" {
		td := filepath.Join("testdata", "strongswan")
		for name, b := range map[string][]byte{"ike_sa_init_req.bin": reqB, "ike_sa_init_resp_ours.bin": respB, "ike_auth_req.bin": authB} {
			if err := os.WriteFile(filepath.Join(td, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var lines []string
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, "generating") || strings.Contains(l, "parsed") || strings.Contains(l, "proposal") {
				lines = append(lines, l)
			}
		}
		if err := os.WriteFile(filepath.Join(td, "charon.log"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", td)
	}
}

// checkStrongSwanInit checks a charon IKE_SA_INIT request against the
// configuration above.
func checkStrongSwanInit(t *testing.T, b []byte) *wire.Message {
	t.Helper()
	req := roundTrip(t, b)
	if req.Exchange != wire.IKE_SA_INIT || req.IsResponse() || !req.IsInitiator() || req.SPIr != 0 || req.MessageID != 0 {
		t.Fatalf("charon request header = %+v", req.Header)
	}
	sa, ok := wire.First[*wire.SA](req.Payloads)
	if !ok || len(sa.Proposals) != len(swProposals) {
		t.Fatalf("charon SA = %+v", sa)
	}
	for i, p := range sa.Proposals {
		if p.String() != swProposals[i] || int(p.Number) != i+1 {
			t.Errorf("proposal %d = #%d %s, want %s", i, p.Number, p.String(), swProposals[i])
		}
	}
	if ke, ok := wire.First[*wire.KE](req.Payloads); !ok || ke.Group != wire.CURVE_25519 || len(ke.Data) != 32 {
		t.Errorf("KE = %+v", ke)
	}
	if n, ok := wire.First[*wire.Nonce](req.Payloads); !ok || len(n.Data) < 16 {
		t.Errorf("nonce = %+v", n)
	}
	// charon's NAT-D hashes equal ours for the addresses it used.
	src, dst := wire.NATD(req.Payloads)
	ws, wd := wire.NATDHash(req.SPIi, 0, swCharon), wire.NATDHash(req.SPIi, 0, swUs)
	if len(src) != 1 || !bytes.Equal(src[0], ws[:]) || !bytes.Equal(dst, wd[:]) {
		t.Errorf("NAT-D from charon %x / %x, we compute %x / %x", src, dst, ws, wd)
	}
	if req.Notify(wire.IKEV2_FRAGMENTATION_SUPPORTED) == nil {
		t.Errorf("charon (fragmentation = yes) sent no FRAG_SUP")
	}
	if n := req.Notify(wire.SIGNATURE_HASH_ALGORITHMS); n == nil {
		t.Errorf("charon sent no SIGNATURE_HASH_ALGORITHMS")
	} else if algs, ok := n.HashAlgorithms(); !ok || len(algs) == 0 {
		t.Errorf("SIGNATURE_HASH_ALGORITHMS = %x", n.Data)
	}
	return req
}

func checkStrongSwanAuth(t *testing.T, b []byte, spii, spir uint64) *wire.Message {
	t.Helper()
	m := roundTrip(t, b)
	if m.Exchange != wire.IKE_AUTH || m.MessageID != 1 || m.SPIi != spii || m.SPIr != spir || m.IsResponse() {
		t.Fatalf("IKE_AUTH header = %+v", m.Header)
	}
	sk, ok := m.Payloads[0].(*wire.Encrypted)
	if !ok || len(m.Payloads) != 1 || sk.Next != wire.PayloadIDi {
		t.Fatalf("IKE_AUTH payloads = %v", m)
	}
	// AES-CTR: 8-octet IV (RFC 5930 §2), HMAC-SHA2-512-256: 32-octet ICV.
	iv, ct, icv, ok := sk.Split(8, 32)
	if !ok || len(iv) != 8 || len(icv) != 32 || len(ct) == 0 {
		t.Errorf("SK split = %d/%d/%d", len(iv), len(ct), len(icv))
	}
	head, data, err := wire.SplitEncrypted(b)
	if err != nil || len(head) != wire.HeaderLen+4 || !bytes.Equal(data, sk.Data) {
		t.Errorf("SplitEncrypted = %d, %d, %v", len(head), len(data), err)
	}
	return m
}

// TestStrongSwanTestdata parses the saved charon messages (see
// testdata/strongswan/README.md).
func TestStrongSwanTestdata(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "strongswan", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	req := checkStrongSwanInit(t, read("ike_sa_init_req.bin"))
	resp := roundTrip(t, read("ike_sa_init_resp_ours.bin"))
	checkStrongSwanAuth(t, read("ike_auth_req.bin"), req.SPIi, resp.SPIr)
	log := string(read("charon.log"))
	for _, want := range []string{"generating " + req.String(), "parsed " + resp.String(),
		"received proposals: " + resp.Payloads[0].(*wire.SA).Proposals[0].String(),
		"configured proposals: " + strings.Join(swProposals, ", ")} {
		if !strings.Contains(log, want) {
			t.Errorf("saved charon log lacks %q", want)
		}
	}
}

// listenInNS opens UDP 500 and 4500 on swUs inside the named netns.
func listenInNS(t *testing.T, name string) (*net.UDPConn, *net.UDPConn) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.GetFromName(name)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	c1, err1 := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(swUs))
	c2, err2 := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(swUsNATT))
	if err := netns.Set(orig); err == nil {
		runtime.UnlockOSThread() // else the thread stays locked and dies with the goroutine
	}
	if err1 != nil || err2 != nil {
		t.Fatal(errors.Join(err1, err2))
	}
	t.Cleanup(func() { c1.Close(); c2.Close() })
	return c1, c2
}

func recvIKE(t *testing.T, c *net.UDPConn, natt bool, d time.Duration, dir string) ([]byte, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 65536)
	_ = c.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("no IKE message from charon: %v\ncharon log:\n%s", err, readLog(dir))
	}
	b := buf[:n]
	if natt {
		if len(b) < 4 || !bytes.Equal(b[:4], []byte{0, 0, 0, 0}) {
			t.Fatalf("port 4500 datagram without non-ESP marker: %x", b)
		}
		b = b[4:]
	}
	return append([]byte(nil), b...), netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
}

func recvIKEEither(t *testing.T, c500, c4500 *net.UDPConn, d time.Duration, dir string) ([]byte, netip.AddrPort) {
	t.Helper()
	type res struct {
		b    []byte
		from netip.AddrPort
		err  error
	}
	ch := make(chan res, 2)
	for _, c := range []*net.UDPConn{c500, c4500} {
		go func(c *net.UDPConn) {
			buf := make([]byte, 65536)
			_ = c.SetReadDeadline(time.Now().Add(d))
			n, from, err := c.ReadFromUDPAddrPort(buf)
			b := buf[:n]
			if err == nil && c == c4500 {
				if len(b) < 4 || !bytes.Equal(b[:4], []byte{0, 0, 0, 0}) {
					err = fmt.Errorf("port 4500 datagram without non-ESP marker: %x", b)
				} else {
					b = b[4:]
				}
			}
			ch <- res{b, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), err}
		}(c)
	}
	r := <-ch
	// Unblock the other reader.
	_ = c500.SetReadDeadline(time.Now())
	_ = c4500.SetReadDeadline(time.Now())
	<-ch
	if r.err != nil {
		t.Fatalf("no IKE_AUTH from charon: %v\ncharon log:\n%s", r.err, readLog(dir))
	}
	return r.b, r.from
}

func stopProcess(c *exec.Cmd) {
	if c.Process == nil || c.ProcessState != nil {
		return
	}
	_ = c.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = c.Process.Kill()
		<-done
	}
}

func readLog(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "charon.log"))
	return string(b)
}

func randBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
