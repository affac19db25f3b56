package pipeline_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/tunterm/tunterm/dataplane/stats"
)

// plainYAML: two APs on a plaintext tunnel (VLANs 100, 200; native 100),
// ap1 with a VLAN pseudowire and an 8-byte cookie, ap2 with an Ethernet
// pseudowire and no cookie, and ap3 on a tunnel with VLAN 300 only.
const plainYAML = `
downstream: {address: 198.18.0.1/24, mac: "02:00:00:00:00:01", gateway_mac: "02:00:00:00:00:fe"}
upstream: {vlan: %d}
bridge: {hairpin: %v, max_macs_per_session: %d}
tunnels:
  - {name: corp, vlans: [100, 200], native_vlan: 100, protocol: ip, mtu: %d, ipsec: false}
  - {name: guest, vlans: [300], protocol: ip, ipsec: false}
static_peers:
  - name: ap1
    address: 198.18.0.2
    tunnel: corp
    l2tp: {local_session_id: 11, remote_session_id: 21, local_cookie: "0011223344556677", remote_cookie: "8899aabbccddeeff", pseudowire: vlan}
  - name: ap2
    address: 198.18.0.3
    tunnel: corp
    l2tp: {local_session_id: 12, remote_session_id: 22, pseudowire: ethernet}
  - name: ap3
    address: 198.18.0.4
    tunnel: guest
    l2tp: {local_session_id: 13, remote_session_id: 23, pseudowire: ethernet}
`

type plainOpts struct {
	accessVLAN int
	hairpin    bool
	maxMACs    int
	mtu        int
}

func plainRig(t testing.TB, o plainOpts) *rig {
	if o.mtu == 0 {
		o.mtu = 1300
	}
	return newRig(t, fmt.Sprintf(plainYAML, o.accessVLAN, o.hairpin, o.maxMACs, o.mtu))
}

var (
	ck1  = []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77}
	rck1 = []byte{0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
)

const (
	c1   = "02:aa:00:00:00:01" // client behind ap1
	c2   = "02:aa:00:00:00:02" // client behind ap2
	host = "02:cc:00:00:00:01" // corporate host
	bc   = "ff:ff:ff:ff:ff:ff"
)

func oneReason(t *testing.T, got []stats.Reason, want stats.Reason) {
	t.Helper()
	if len(got) != 1 || got[0] != want {
		t.Fatalf("drops = %v, want [%v]", got, want)
	}
}

// TestSessionToUpstream checks AP -> corporate tagging on a trunk: tagged
// frames keep their VLAN, untagged frames get the tunnel's native VLAN, and
// the inner frame is otherwise delivered byte for byte.
func TestSessionToUpstream(t *testing.T) {
	r := plainRig(t, plainOpts{})
	for _, tc := range []struct {
		name     string
		sid      uint32
		peer     string
		cookie   []byte
		frame    []byte
		wantVLAN uint16
	}{
		{"vlan-pw tagged 200", 11, "198.18.0.2", ck1, inner(t, c1, host, 200, []byte("a")), 200},
		{"vlan-pw untagged -> native", 11, "198.18.0.2", ck1, inner(t, c1, host, 0, []byte("b")), 100},
		{"eth-pw untagged -> native", 12, "198.18.0.3", nil, inner(t, c2, host, 0, []byte("c")), 100},
		{"eth-pw tagged 200", 12, "198.18.0.3", nil, inner(t, c2, host, 200, []byte("d")), 200},
		{"guest tunnel native 300", 13, "198.18.0.4", nil, inner(t, "02:aa:00:00:00:03", host, 0, []byte("e")), 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up, down, drops := r.send(stats.FromDown, l2tpIP(t, tc.peer, tc.sid, tc.cookie, true, tc.frame))
			if len(up) != 1 || len(down) != 0 || len(drops) != 0 {
				t.Fatalf("up %d down %d drops %v, want 1 frame upstream", len(up), len(down), drops)
			}
			if v := vlanOf(t, up[0]); v != tc.wantVLAN {
				t.Errorf("upstream VLAN = %d, want %d", v, tc.wantVLAN)
			}
			want := tc.frame
			if vlanOf(t, tc.frame) == 0 { // we inserted a tag after the MACs
				want = append(append(append([]byte{}, tc.frame[:12]...), 0x81, 0, byte(tc.wantVLAN>>8), byte(tc.wantVLAN)), tc.frame[12:]...)
			}
			if !bytes.Equal(up[0], want) {
				t.Errorf("upstream frame\n got %x\nwant %x", up[0], want)
			}
		})
	}
}

// TestUpstreamToSession checks corporate -> AP: unicast to a learned MAC is
// encapsulated for that session only, with its remote session ID and
// cookie, tagged per pseudowire type.
func TestUpstreamToSession(t *testing.T) {
	r := plainRig(t, plainOpts{})
	r.send(stats.FromDown, l2tpIP(t, "198.18.0.2", 11, ck1, true, inner(t, c1, bc, 100, nil)))
	r.send(stats.FromDown, l2tpIP(t, "198.18.0.3", 12, nil, true, inner(t, c2, bc, 0, nil)))

	for _, tc := range []struct {
		name     string
		frame    []byte
		wantDst  string
		wantSID  uint32
		wantCk   []byte
		wantVLAN uint16
	}{
		{"to ap1 vlan 100 (vlan pw keeps tag)", inner(t, host, c1, 100, []byte("x")), "198.18.0.2", 21, rck1, 100},
		{"to ap2 vlan 100 native (eth pw untagged)", inner(t, host, c2, 100, []byte("y")), "198.18.0.3", 22, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up, down, drops := r.send(stats.FromUp, tc.frame)
			if len(down) != 1 || len(up) != 0 || len(drops) != 0 {
				t.Fatalf("up %d down %d drops %v, want 1 frame downstream", len(up), len(down), drops)
			}
			dst, sid, ck, fr := decodeDown(t, down[0], len(tc.wantCk))
			if dst.String() != tc.wantDst || sid != tc.wantSID || !bytes.Equal(ck, tc.wantCk) {
				t.Errorf("got dst %v sid %d cookie %x, want %s %d %x", dst, sid, ck, tc.wantDst, tc.wantSID, tc.wantCk)
			}
			if v := vlanOf(t, fr); v != tc.wantVLAN {
				t.Errorf("inner VLAN = %d, want %d", v, tc.wantVLAN)
			}
		})
	}
}

// TestFlood checks broadcast from upstream reaches every session of the
// VLAN (and only those), and broadcast from a session goes upstream only.
func TestFlood(t *testing.T) {
	r := plainRig(t, plainOpts{})
	// Teach next hops (the APs' gateway MAC) by receiving from each AP once.
	r.send(stats.FromDown, l2tpIP(t, "198.18.0.2", 11, ck1, true, inner(t, c1, bc, 100, nil)))
	up, down, _ := r.send(stats.FromUp, inner(t, host, bc, 100, []byte("arp?")))
	if len(up) != 0 || len(down) != 2 {
		t.Fatalf("flood VLAN 100: up %d down %d, want 0 and 2 (ap1, ap2; not ap3)", len(up), len(down))
	}
	seen := map[uint32]bool{}
	for _, d := range down {
		_, sid, _, _ := decodeDown(t, d, 0)
		seen[sid] = true
	}
	if !seen[21] || !seen[22] {
		t.Errorf("flood reached sessions %v, want 21 and 22", seen)
	}
	_, down, _ = r.send(stats.FromUp, inner(t, host, bc, 300, []byte("guest")))
	if len(down) != 1 {
		t.Fatalf("flood VLAN 300: down %d, want 1 (ap3)", len(down))
	}
	// From a session: upstream only (hairpin off).
	up, down, _ = r.send(stats.FromDown, l2tpIP(t, "198.18.0.2", 11, ck1, true, inner(t, c1, bc, 200, nil)))
	if len(up) != 1 || len(down) != 0 {
		t.Fatalf("session broadcast: up %d down %d, want 1 and 0", len(up), len(down))
	}
}

// TestHairpin: session-to-session unicast is dropped by default and
// delivered when bridge.hairpin is on; a session's broadcast then also
// reaches the other sessions.
func TestHairpin(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint("hairpin=", on), func(t *testing.T) {
			r := plainRig(t, plainOpts{hairpin: on})
			r.send(stats.FromDown, l2tpIP(t, "198.18.0.3", 12, nil, true, inner(t, c2, host, 100, nil)))
			up, down, drops := r.send(stats.FromDown, l2tpIP(t, "198.18.0.2", 11, ck1, true, inner(t, c1, c2, 100, []byte("hi"))))
			if !on {
				oneReason(t, drops, stats.Hairpin)
				return
			}
			if len(up) != 0 || len(down) != 1 {
				t.Fatalf("up %d down %d drops %v, want one frame to ap2", len(up), len(down), drops)
			}
			if _, sid, _, _ := decodeDown(t, down[0], 0); sid != 22 {
				t.Errorf("session = %d, want 22", sid)
			}
			up, down, _ = r.send(stats.FromDown, l2tpIP(t, "198.18.0.2", 11, ck1, true, inner(t, c1, bc, 100, nil)))
			if len(up) != 1 || len(down) != 1 {
				t.Errorf("broadcast with hairpin: up %d down %d, want 1 and 1", len(up), len(down))
			}
		})
	}
}

// TestBridgeDrops: each policy drop has its reason and disturbs nothing else.
func TestBridgeDrops(t *testing.T) {
	t.Run("vlan not in tunnel", func(t *testing.T) {
		r := plainRig(t, plainOpts{})
		_, _, drops := r.send(stats.FromDown, l2tpIP(t, "198.18.0.2", 11, ck1, true, inner(t, c1, host, 300, nil)))
		oneReason(t, drops, stats.VLANNotAllowed)
		_, _, drops = r.send(stats.FromUp, inner(t, host, bc, 400, nil))
		oneReason(t, drops, stats.VLANNotAllowed)
		_, _, drops = r.send(stats.FromUp, inner(t, host, bc, 0, nil)) // untagged on a trunk
		oneReason(t, drops, stats.VLANNotAllowed)
	})
	t.Run("mac move from upstream", func(t *testing.T) {
		r := plainRig(t, plainOpts{})
		r.send(stats.FromUp, inner(t, host, bc, 100, nil)) // host learned upstream
		up, _, drops := r.send(stats.FromDown, l2tpIP(t, "198.18.0.2", 11, ck1, true, inner(t, host, bc, 100, nil)))
		oneReason(t, drops, stats.MACMove)
		if len(up) != 0 {
			t.Errorf("spoofed frame forwarded")
		}
		// The real host is still reachable upstream: ap1 -> host goes up.
		up, _, drops = r.send(stats.FromDown, l2tpIP(t, "198.18.0.2", 11, ck1, true, inner(t, c1, host, 100, nil)))
		if len(up) != 1 || len(drops) != 0 {
			t.Errorf("after spoof: up %d drops %v", len(up), drops)
		}
		// Same MAC on another VLAN is a different station: allowed.
		_, _, drops = r.send(stats.FromDown, l2tpIP(t, "198.18.0.2", 11, ck1, true, inner(t, host, bc, 200, nil)))
		if len(drops) != 0 {
			t.Errorf("other VLAN: drops %v", drops)
		}
	})
	t.Run("mac limit", func(t *testing.T) {
		r := plainRig(t, plainOpts{maxMACs: 2})
		for i, want := range []int{0, 0, 1, 0} {
			m := fmt.Sprintf("02:aa:00:00:01:%02x", i%3)
			if i == 3 {
				m = "02:aa:00:00:01:00" // known MAC still allowed
			}
			_, _, drops := r.send(stats.FromDown, l2tpIP(t, "198.18.0.2", 11, ck1, true, inner(t, m, bc, 100, nil)))
			if len(drops) != want || (want == 1 && drops[0] != stats.MACLimit) {
				t.Errorf("frame %d from %s: drops %v, want %d mac_limit", i, m, drops, want)
			}
		}
	})
	t.Run("bad source mac", func(t *testing.T) {
		r := plainRig(t, plainOpts{})
		_, _, drops := r.send(stats.FromDown, l2tpIP(t, "198.18.0.2", 11, ck1, true, inner(t, "01:00:5e:00:00:01", host, 100, nil)))
		oneReason(t, drops, stats.BadSrcMAC)
	})
	t.Run("cookie, session, peer", func(t *testing.T) {
		r := plainRig(t, plainOpts{})
		f := inner(t, c1, host, 100, nil)
		_, _, drops := r.send(stats.FromDown, l2tpIP(t, "198.18.0.2", 11, rck1, true, f))
		oneReason(t, drops, stats.CookieMismatch)
		_, _, drops = r.send(stats.FromDown, l2tpIP(t, "198.18.0.2", 99, ck1, true, f))
		oneReason(t, drops, stats.NoSession)
		_, _, drops = r.send(stats.FromDown, l2tpIP(t, "198.18.0.3", 11, ck1, true, f))
		oneReason(t, drops, stats.PeerMismatch)
	})
	t.Run("too big", func(t *testing.T) {
		r := plainRig(t, plainOpts{mtu: 600})
		r.send(stats.FromDown, l2tpIP(t, "198.18.0.3", 12, nil, true, inner(t, c2, host, 100, nil)))
		_, down, drops := r.send(stats.FromUp, inner(t, host, c2, 100, make([]byte, 600)))
		oneReason(t, drops, stats.TooBig)
		if len(down) != 0 {
			t.Errorf("oversize frame sent")
		}
		_, down, _ = r.send(stats.FromUp, inner(t, host, c2, 100, make([]byte, 500)))
		if len(down) != 1 || len(down[0])-14 > 600 {
			t.Errorf("fitting frame: %d frames", len(down))
		}
	})
}

// TestAccessVLAN: upstream.vlan > 0 makes the upstream an access port.
func TestAccessVLAN(t *testing.T) {
	r := plainRig(t, plainOpts{accessVLAN: 200})
	up, _, drops := r.send(stats.FromDown, l2tpIP(t, "198.18.0.2", 11, ck1, true, inner(t, c1, host, 200, []byte("z"))))
	if len(up) != 1 || len(drops) != 0 || vlanOf(t, up[0]) != 0 {
		t.Fatalf("VLAN 200 on access port 200: up %d drops %v (want one untagged frame)", len(up), drops)
	}
	_, _, drops = r.send(stats.FromDown, l2tpIP(t, "198.18.0.2", 11, ck1, true, inner(t, c1, host, 100, nil)))
	oneReason(t, drops, stats.VLANNotAllowed)
	// Untagged from upstream is VLAN 200, delivered to ap1 tagged 200 (VLAN pw).
	_, down, drops := r.send(stats.FromUp, inner(t, host, c1, 0, []byte("back")))
	if len(down) != 1 || len(drops) != 0 {
		t.Fatalf("untagged from access port: down %d drops %v", len(down), drops)
	}
	if _, _, _, fr := decodeDown(t, down[0], 8); vlanOf(t, fr) != 200 {
		t.Errorf("inner VLAN = %d, want 200", vlanOf(t, fr))
	}
}

// TestAgingAndReload: entries age out after bridge.aging; a reload that
// removes a session flushes its MACs and keeps the others' state.
func TestAgingAndReload(t *testing.T) {
	r := plainRig(t, plainOpts{})
	r.send(stats.FromDown, l2tpIP(t, "198.18.0.3", 12, nil, true, inner(t, c2, host, 100, nil)))
	if _, down, _ := r.send(stats.FromUp, inner(t, host, c2, 100, nil)); len(down) != 1 {
		t.Fatalf("before aging: %d frames to ap2, want 1", len(down))
	}
	r.now = r.now.Add(301e9)
	if n := r.prog.Age(uint32(r.now.Unix())); n < 2 {
		t.Fatalf("Age removed %d entries, want >= 2", n)
	}
	if _, down, _ := r.send(stats.FromUp, inner(t, host, c2, 100, nil)); len(down) != 2 {
		t.Fatalf("after aging: %d frames (flood), want 2", len(down))
	}
	// Reload without ap1: ap2's learned MAC stays, ap1 is gone from floods.
	r.send(stats.FromDown, l2tpIP(t, "198.18.0.3", 12, nil, true, inner(t, c2, host, 100, nil)))
	y := fmt.Sprintf(plainYAML, 0, false, 0, 1300)
	i := strings.Index(y, "  - name: ap1")
	j := strings.Index(y, "  - name: ap2")
	r.reload(y[:i] + y[j:])
	if _, down, _ := r.send(stats.FromUp, inner(t, host, c2, 100, nil)); len(down) != 1 {
		t.Fatalf("after reload: %d frames to ap2, want 1 (MAC kept)", len(down))
	}
	if _, down, _ := r.send(stats.FromUp, inner(t, host, bc, 100, nil)); len(down) != 1 {
		t.Fatalf("after reload: flood reached %d sessions, want 1", len(down))
	}
	_, _, drops := r.send(stats.FromDown, l2tpIP(t, "198.18.0.2", 11, ck1, true, inner(t, c1, host, 100, nil)))
	oneReason(t, drops, stats.NoSession)
}

// TestNoNeighbor: a session whose peer never sent anything and no
// gateway_mac: flooding to it is dropped as no_neighbor.
func TestNoNeighbor(t *testing.T) {
	y := strings.Replace(fmt.Sprintf(plainYAML, 0, false, 0, 1300), `, gateway_mac: "02:00:00:00:00:fe"`, "", 1)
	r := newRig(t, y)
	_, down, drops := r.send(stats.FromUp, inner(t, host, bc, 300, nil))
	if len(down) != 0 {
		t.Fatalf("sent %d frames without a next hop", len(down))
	}
	oneReason(t, drops, stats.NoNeighbor)
}
