package iketest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// CharonPath is strongSwan's IKE daemon (Debian strongswan-charon).
const CharonPath = "/usr/lib/ipsec/charon"

// HaveCharon reports whether strongSwan's charon and swanctl are installed.
func HaveCharon() bool {
	if _, err := os.Stat(CharonPath); err != nil {
		return false
	}
	_, err := exec.LookPath("swanctl")
	return err == nil
}

// Charon is a strongSwan charon with kernel-libipsec (userspace ESP on a
// TUN device, always ESP in UDP 4500) running in a network namespace: the
// AP side of the interop tests. It follows
// ../shared/peers/01-strongswan-libipsec.sh: kernel-libipsec before
// kernel-netlink, charon's own sockets marked so that host-to-host routes
// do not loop IKE into the TUN device, allow_peer_ts for host-to-host
// selectors, a private /run per instance.
type Charon struct {
	t   testing.TB
	NS  string
	Dir string
	cmd *exec.Cmd
}

// StartCharon starts charon in namespace ns with the swanctl.conf text and
// loads it; files (paths relative to the swanctl directory, e.g.
// "x509ca/ca.pem", "x509/ap.pem", "pkcs8/ap.key") are written first. The
// instance is stopped when the test ends.
func StartCharon(t testing.TB, ns, swanctlConf string, files ...map[string][]byte) *Charon {
	t.Helper()
	return StartCharonWith(t, ns, "", swanctlConf, files...)
}

// StartCharonWith is StartCharon with extra strongswan.conf lines for the
// charon section (e.g. "fragment_size = 576").
func StartCharonWith(t testing.TB, ns, charonOpts, swanctlConf string, files ...map[string][]byte) *Charon {
	t.Helper()
	dir, err := os.MkdirTemp("", "tt-charon-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Charon{t: t, NS: ns, Dir: dir}
	os.MkdirAll(filepath.Join(dir, "run"), 0o755)
	for _, d := range []string{"x509", "x509ca", "private", "rsa", "ecdsa", "pkcs8", "pubkey"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	conf := fmt.Sprintf(`charon {
  load = random nonce openssl aes sha1 sha2 hmac gcm pem pkcs1 pkcs8 x509 pubkey kdf kernel-libipsec kernel-netlink socket-default vici
  install_routes = yes
  retransmit_timeout = 1.0
  retransmit_tries = 4
%[2]s
  plugins {
    vici { socket = unix://%[1]s/run/charon.vici }
    kernel-libipsec { allow_peer_ts = yes }
    socket-default { fwmark = 0x42 }
    kernel-netlink { fwmark = !0x42 }
  }
  filelog {
    main {
      path = %[1]s/charon.log
      time_format = %%T
      default = 1
      ike = 2
      cfg = 1
      knl = 1
      flush_line = yes
      append = yes
    }
  }
  syslog { daemon { default = -1 } }
}
swanctl {
  load = pem pkcs1 pkcs8 x509 pubkey openssl random
}
`, dir, charonOpts)
	if err := os.WriteFile(filepath.Join(dir, "strongswan.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "swanctl.conf"), []byte(swanctlConf), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, m := range files {
		for name, b := range m {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("charon log (%s):\n%s", ns, c.Log())
		}
		os.RemoveAll(dir)
	})
	c.Start()
	return c
}

// Start (re)starts the daemon and loads the configuration.
func (c *Charon) Start() {
	c.t.Helper()
	os.Remove(filepath.Join(c.Dir, "run", "charon.vici"))
	os.Remove(filepath.Join(c.Dir, "run", "charon.pid"))
	cmd := exec.Command("ip", "netns", "exec", c.NS, "sh", "-c",
		"mount --bind "+filepath.Join(c.Dir, "run")+" /run && exec "+CharonPath)
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+filepath.Join(c.Dir, "strongswan.conf"))
	out, _ := os.Create(filepath.Join(c.Dir, "stdout.log"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("charon: %v", err)
	}
	c.cmd = cmd
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(filepath.Join(c.Dir, "run", "charon.vici")); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, err := c.Swanctl("--load-all", "--file", filepath.Join(c.Dir, "swanctl.conf")); err != nil {
		c.t.Fatalf("swanctl --load-all: %v\n%s\ncharon log:\n%s", err, out, c.Log())
	}
}

// Swanctl runs swanctl against this instance.
func (c *Charon) Swanctl(args ...string) (string, error) {
	a := append([]string{"netns", "exec", c.NS, "swanctl"}, args...)
	a = append(a, "--uri", "unix://"+filepath.Join(c.Dir, "run", "charon.vici"))
	cmd := exec.Command("ip", a...)
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+filepath.Join(c.Dir, "strongswan.conf"), "SWANCTL_DIR="+c.Dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Initiate brings up a CHILD_SA (and its IKE SA) and fails the test if it
// does not come up.
func (c *Charon) Initiate(ikeName, child string) string {
	c.t.Helper()
	out, err := c.Swanctl("--initiate", "--ike", ikeName, "--child", child, "--timeout", "20")
	if err != nil {
		c.t.Fatalf("swanctl --initiate %s/%s: %v\n%s", ikeName, child, err, out)
	}
	return out
}

// Kill ends charon with SIGKILL (a dead AP: no DELETE is sent).
func (c *Charon) Kill() {
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
	c.cmd = nil
	// kernel-libipsec's TUN device and routes die with the process.
}

// Stop ends charon with SIGTERM (it deletes its SAs first).
func (c *Charon) Stop() {
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	c.cmd = nil
}

// Log returns charon's log so far.
func (c *Charon) Log() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "charon.log"))
	s, _ := os.ReadFile(filepath.Join(c.Dir, "stdout.log"))
	return string(b) + string(s)
}

// WaitLog waits for a line of charon's log containing s.
func (c *Charon) WaitLog(s string, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if strings.Contains(c.Log(), s) {
			return true
		}
	}
	return false
}
