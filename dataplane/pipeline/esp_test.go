package pipeline_test

import (
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tunterm/tunterm/dataplane/esp"
	"github.com/tunterm/tunterm/dataplane/hdr"
	"github.com/tunterm/tunterm/dataplane/pipeline"
	"github.com/tunterm/tunterm/dataplane/port"
	"github.com/tunterm/tunterm/dataplane/stats"
)

var (
	ourMAC = mac("02:00:00:00:00:01")
	apMAC  = mac("02:00:00:00:00:fe")
)

// suite is an ESP configuration under test: our inbound SA's algorithm and
// keys (the AP side seals with the same).
type suite struct {
	name            string
	enc, encKey     string
	integ, integKey string
}

var suites = []suite{
	{name: "aes-gcm-256", enc: "aes-gcm-256", encKey: hexRep("ab", 32) + "01020304"},
	{name: "aes-ctr-256+hmac-sha2-512-256", enc: "aes-ctr-256", encKey: hexRep("cd", 32) + "05060708",
		integ: "hmac-sha2-512-256", integKey: hexRep("ef", 64)},
}

func hexRep(b string, n int) string {
	s := ""
	for range n {
		s += b
	}
	return s
}

// espYAML: one AP (ap1) on an IPsec tunnel, transport mode, L2TPv3 over
// IP with an 8-byte cookie and the default sublayer.
func espYAML(s suite) string {
	integ := ""
	if s.integ != "" {
		integ = fmt.Sprintf(", integ: %s, integ_key: %q", s.integ, s.integKey)
	}
	return fmt.Sprintf(`
downstream: {address: 198.18.0.1/24, mac: "02:00:00:00:00:01", gateway_mac: "02:00:00:00:00:fe"}
bridge: {fdb_size: 1048576}
tunnels: [{name: corp, vlans: [100, 200], native_vlan: 100, mtu: 1500}]
static_peers:
  - name: ap1
    address: 198.18.0.2
    tunnel: corp
    l2tp: {local_session_id: 11, remote_session_id: 21, local_cookie: "0011223344556677", remote_cookie: "8899aabbccddeeff", pseudowire: vlan}
    esp:
      replay_window: 4096
      in:  {spi: 0x1000, enc: %[1]s, enc_key: %[2]q%[3]s}
      out: {spi: 0x2000, enc: %[1]s, enc_key: %[2]q%[3]s}
`, s.enc, s.encKey, integ)
}

// apSA is the AP's outbound SA matching our inbound one.
func apSA(tb testing.TB, s suite) *esp.SA {
	c, _ := esp.ParseCipher(s.enc)
	i, _ := esp.ParseInteg(s.integ)
	ek, _ := hex.DecodeString(s.encKey)
	ik, _ := hex.DecodeString(s.integKey)
	sa, err := esp.NewSA(esp.Config{SPI: 0x1000, Cipher: c, EncKey: ek, Integ: i, IntegKey: ik})
	if err != nil {
		tb.Fatal(err)
	}
	return sa
}

// apFrame seals L2TPv3-over-IP (session 11, ap1's cookie, sublayer) around
// frame with sa and wraps it in IPv4 and Ethernet, as ap1 would send it.
func apFrame(tb testing.TB, sa *esp.SA, frame []byte) []byte {
	buf := make([]byte, port.ChunkSize)
	off := 256
	n := copy(buf[off:], []byte{0, 0, 0, 11})
	n += copy(buf[off+n:], ck1)
	n += copy(buf[off+n:], []byte{0, 0, 0, 0})
	n += copy(buf[off+n:], frame)
	start, end, r := sa.Seal(buf, off, n, hdr.ProtoL2TP)
	if r != stats.OK {
		tb.Fatalf("Seal: %v", r)
	}
	ip := buf[start-20 : start]
	hdr.PutIPv4(ip, []byte{198, 18, 0, 2}, []byte{198, 18, 0, 1}, hdr.ProtoESP, end-start+20, 64, 1)
	eth := buf[start-34 : start-20]
	hdr.PutEth(eth, mac("02:00:00:00:00:01"), mac("02:00:00:00:00:fe"), hdr.EtherTypeIPv4)
	return buf[start-34 : end]
}

// TestESPPath runs both directions through ESP for each suite (our own
// Seal on the AP side; interop with scapy/tshark is in cmd/tunterm).
func TestESPPath(t *testing.T) {
	for _, s := range suites {
		t.Run(s.name, func(t *testing.T) {
			r := newRig(t, espYAML(s))
			ap := apSA(t, s)
			f := inner(t, c1, host, 200, []byte("payload"))
			up, _, drops := r.send(stats.FromDown, apFrame(t, ap, f))
			if len(up) != 1 || len(drops) != 0 || string(up[0]) != string(f) {
				t.Fatalf("AP->corp: up %d drops %v", len(up), drops)
			}
			frame := apFrame(t, ap, f)
			_, _, drops = r.send(stats.FromDown, frame, frame)
			if len(drops) != 1 || drops[0] != stats.Replay {
				t.Fatalf("duplicate: drops %v, want [replay]", drops)
			}
			_, down, drops := r.send(stats.FromUp, inner(t, host, c1, 200, []byte("reply")))
			if len(down) != 1 || len(drops) != 0 {
				t.Fatalf("corp->AP: down %d drops %v", len(down), drops)
			}
		})
	}
}

// TestZeroAllocs proves the per-packet path allocates nothing: a batch of
// 64 ESP frames AP->corporate, 64 unicast frames corporate->AP (encrypted),
// and a flooded broadcast.
func TestZeroAllocs(t *testing.T) {
	for _, s := range suites {
		t.Run(s.name, func(t *testing.T) {
			r := newRig(t, espYAML(s))
			r.keep = false
			r.w.Taps.Set(nil, nil, nil)
			ap := apSA(t, s)
			const runs = 50
			frames := make([][]byte, (runs+1)*port.BatchSize)
			for i := range frames {
				frames[i] = apFrame(t, ap, inner(t, fmt.Sprintf("02:aa:00:00:%02x:%02x", i>>8&0xff, i&0x3f), host, 200, make([]byte, 100)))
			}
			next := 0
			down := testing.AllocsPerRun(runs, func() {
				for range port.BatchSize {
					r.down.Inject(frames[next], 0)
					next++
				}
				r.down.Receive(&r.rx)
				r.w.Process(stats.FromDown, &r.rx)
			})
			uni := inner(t, host, "02:aa:00:00:00:01", 200, make([]byte, 100))
			bcast := inner(t, host, bc, 200, make([]byte, 100))
			up := testing.AllocsPerRun(runs, func() {
				for range port.BatchSize - 1 {
					r.up.Inject(uni, 0)
				}
				r.up.Inject(bcast, 0)
				r.up.Receive(&r.rx)
				r.w.Process(stats.FromUp, &r.rx)
			})
			if down != 0 || up != 0 {
				t.Errorf("allocations per batch: AP->corp %v, corp->AP %v; want 0", down, up)
			}
			c := stats.Sum(&r.w.Counters)
			if c.TxPkts[stats.FromDown] == 0 || c.TxPkts[stats.FromUp] == 0 {
				t.Fatalf("nothing forwarded: %+v", c.Drops)
			}
			if r.pool.InUse() != 0 {
				t.Fatalf("%d buffers leaked", r.pool.InUse())
			}
		})
	}
}

// ---- benchmarks ----

// BenchmarkPipeline measures whole paths per frame on one core:
// AP->corporate (decrypt, decapsulate, bridge) and corporate->AP (bridge,
// encapsulate, encrypt), for each suite and inner frame size.
//
// Go's ns/op includes the in-memory port copying each frame into its chunk
// (an AF_XDP port receives into UMEM without a CPU copy); the custom metric
// pipeline_ns/pkt times Worker.Process alone, and Mpps/Gbps derive from it.
// For AES-GCM the same run times raw AES-256-GCM Open (for AP->corporate)
// or Seal (corporate->AP), of the implementation the SAs use
// (esp.NewAESGCM), on the ESP payload's length and
// reports raw_ns/op and ratio = raw time ÷ pipeline time (1.0 would mean the
// pipeline costs nothing beyond the cipher).
func BenchmarkPipeline(b *testing.B) {
	for _, dir := range []string{"down", "up"} {
		for _, s := range suites {
			for _, size := range []int{128, 512, 1400} {
				b.Run(fmt.Sprintf("%s/%s/%d", dir, s.name, size), func(b *testing.B) {
					benchPath(b, dir, s, size)
				})
			}
		}
	}
}

func benchPath(b *testing.B, dir string, s suite, size int) {
	r := newRig(b, espYAML(s))
	r.keep = false
	r.w.Taps.Set(nil, nil, nil)
	ap := apSA(b, s)
	payload := make([]byte, size)
	// Learn ap1's client and the corporate host (as a live trunk would:
	// the gateway talks), so both directions are unicast, not flooded.
	r.send(stats.FromDown, apFrame(b, ap, inner(b, c1, host, 200, nil)))
	r.send(stats.FromUp, inner(b, host, c1, 200, nil))
	uni := inner(b, host, c1, 200, payload[:size-46])
	if len(uni) != size {
		b.Fatalf("inner frame is %d bytes, want %d", len(uni), size)
	}
	// AP->corporate frames are re-sealed in place in one arena when the
	// ring is used up (each sequence number can be received once), so
	// refills allocate nothing and leave no garbage for the GC to chase
	// through the timed part.
	const ring = 8192
	arena := make([]byte, ring*port.ChunkSize)
	frames := make([][]byte, ring)
	l2 := append(append(append([]byte{0, 0, 0, 11}, ck1...), 0, 0, 0, 0), inner(b, c1, host, 200, payload[:size-46])...)
	fill := func() {
		for k := range ring {
			buf := arena[k*port.ChunkSize : (k+1)*port.ChunkSize]
			n := copy(buf[256:], l2)
			start, end, why := ap.Seal(buf, 256, n, hdr.ProtoL2TP)
			if why != stats.OK {
				b.Fatalf("Seal: %v", why)
			}
			hdr.PutIPv4(buf[start-20:start], []byte{198, 18, 0, 2}, []byte{198, 18, 0, 1}, hdr.ProtoESP, end-start+20, 64, 1)
			hdr.PutEth(buf[start-34:start-20], ourMAC, apMAC, hdr.EtherTypeIPv4)
			frames[k] = buf[start-34 : end]
		}
	}
	port, d := r.up, stats.FromUp
	if dir == "down" {
		port, d = r.down, stats.FromDown
		fill()
	}
	// Raw AES-256-GCM on the ESP payload's length (L2TPv3 session ID,
	// cookie, sublayer, inner frame), timed batch by batch between the
	// pipeline's batches so that both see the same machine.
	var raw rawAEAD
	gcm := s.enc == "aes-gcm-256"
	if gcm {
		raw = newRawGCM(4+8+4+size, dir == "down")
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	runtime.GC()
	b.ResetTimer()
	var proc, rawT time.Duration
	next := 0
	for i := 0; i < b.N; i += 64 {
		n := min(64, b.N-i)
		if dir == "down" {
			if next+n > ring {
				b.StopTimer()
				fill()
				next = 0
				b.StartTimer()
			}
			for k := range n {
				port.Inject(frames[next+k], 0)
			}
			next += n
		} else {
			for range n {
				port.Inject(uni, 0)
			}
		}
		port.Receive(&r.rx)
		t0 := time.Now()
		r.w.Process(d, &r.rx)
		t1 := time.Now()
		proc += t1.Sub(t0)
		if gcm {
			raw.run(n)
			rawT += time.Since(t1)
		}
	}
	b.StopTimer()
	c := stats.Sum(&r.w.Counters)
	for dd := range stats.NumDirs {
		for reason, v := range c.Drops[dd] {
			if v != 0 {
				b.Fatalf("%d frames dropped (%v)", v, stats.Reason(reason))
			}
		}
	}
	ns := float64(proc.Nanoseconds()) / float64(b.N)
	b.ReportMetric(ns, "pipeline_ns/pkt")
	b.ReportMetric(1e3/ns, "Mpps")
	b.ReportMetric(float64(size)*8/ns, "Gbps")
	if gcm {
		rns := float64(rawT.Nanoseconds()) / float64(b.N)
		b.ReportMetric(rns, "raw_ns/op")
		b.ReportMetric(rns/ns, "ratio")
	}
}

// rawAEAD runs the SAs' AES-256-GCM Open (open) or Seal on n-byte
// messages with an 8-byte AAD, into a separate buffer: the raw ceiling.
type rawAEAD struct {
	g              cipher.AEAD
	nonce, aad, pt []byte
	ct, dst        []byte
	open           bool
}

func newRawGCM(n int, open bool) rawAEAD {
	g, _ := esp.NewAESGCM(make([]byte, 32))
	r := rawAEAD{g: g, nonce: make([]byte, 12), aad: make([]byte, 8), pt: make([]byte, n), open: open}
	r.ct = g.Seal(nil, r.nonce, r.pt, r.aad)
	r.dst = make([]byte, len(r.ct))
	return r
}

func (r *rawAEAD) run(iters int) {
	for range iters {
		if r.open {
			if _, err := r.g.Open(r.dst[:0], r.nonce, r.ct, r.aad); err != nil {
				panic(err)
			}
		} else {
			r.g.Seal(r.dst[:0], r.nonce, r.pt, r.aad)
		}
	}
}

// BenchmarkPlain is the pipeline without crypto: the L2TPv3 and bridge
// stages alone, both directions.
func BenchmarkPlain(b *testing.B) {
	for _, dir := range []string{"down", "up"} {
		for _, size := range []int{128, 512, 1400} {
			b.Run(fmt.Sprintf("%s/%d", dir, size), func(b *testing.B) {
				r := plainRig(b, plainOpts{mtu: 1500})
				r.keep = false
				r.w.Taps.Set(nil, nil, nil)
				payload := make([]byte, size-46)
				r.send(stats.FromDown, l2tpIP(b, "198.18.0.2", 11, ck1, true, inner(b, c1, host, 200, nil)))
				r.send(stats.FromUp, inner(b, host, c1, 200, nil))
				fdown := l2tpIP(b, "198.18.0.2", 11, ck1, true, inner(b, c1, host, 200, payload))
				fup := inner(b, host, c1, 200, payload)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i += port.BatchSize {
					n := min(port.BatchSize, b.N-i)
					p, d, f := r.down, stats.FromDown, fdown
					if dir == "up" {
						p, d, f = r.up, stats.FromUp, fup
					}
					for range n {
						p.Inject(f, 0)
					}
					p.Receive(&r.rx)
					r.w.Process(d, &r.rx)
				}
			})
		}
	}
}

// TestReloadKeepsSAState: re-applying an unchanged configuration keeps the
// inbound replay window and the outbound sequence number; changing the keys
// replaces the SA.
func TestReloadKeepsSAState(t *testing.T) {
	s := suites[0]
	y := espYAML(s)
	r := newRig(t, y)
	ap := apSA(t, s)
	old := apFrame(t, ap, inner(t, c1, host, 200, []byte("1")))
	if up, _, _ := r.send(stats.FromDown, old); len(up) != 1 {
		t.Fatal("first frame not forwarded")
	}
	seqOut := func() uint32 {
		_, down, _ := r.send(stats.FromUp, inner(t, host, c1, 200, nil))
		if len(down) != 1 {
			t.Fatalf("no frame to ap1")
		}
		return binary.BigEndian.Uint32(down[0][14+20+4:]) // Eth, IPv4, SPI
	}
	if n := seqOut(); n != 1 {
		t.Fatalf("first outbound seq = %d, want 1", n)
	}
	r.reload(y)
	_, _, drops := r.send(stats.FromDown, old)
	oneReason(t, drops, stats.Replay)
	if n := seqOut(); n != 2 {
		t.Errorf("outbound seq after reload = %d, want 2 (state kept)", n)
	}
	// New keys: a new SA with a fresh window; the AP's old-key packet fails.
	s2 := s
	s2.encKey = hexRep("ac", 32) + "01020304"
	r.reload(espYAML(s2))
	_, _, drops = r.send(stats.FromDown, apFrame(t, ap, inner(t, c1, host, 200, nil)))
	oneReason(t, drops, stats.Integrity)
	if up, _, _ := r.send(stats.FromDown, apFrame(t, apSA(t, s2), inner(t, c1, host, 200, nil))); len(up) != 1 {
		t.Errorf("frame under the new key not forwarded")
	}
	if n := seqOut(); n != 1 {
		t.Errorf("outbound seq with new keys = %d, want 1", n)
	}
}

// TestPrefetchMinSAs: the SA prefetch runs only for snapshots with at least
// Config.PrefetchMinSAs inbound SAs (0: always, negative: never), and the
// frame is forwarded alike either way.
func TestPrefetchMinSAs(t *testing.T) {
	s := suites[0]
	for _, tc := range []struct {
		min  int
		want int // the ESP header's offset when prefetched
	}{{0, hdr.EthLen + hdr.IPv4MinLen}, {1, hdr.EthLen + hdr.IPv4MinLen}, {2, 0}, {pipeline.PrefetchAutoSAs, 0}, {-1, 0}} {
		r := newRigWith(t, espYAML(s), pipeline.Config{PrefetchMinSAs: tc.min})
		f := inner(t, c1, host, 200, []byte("payload"))
		up, _, drops := r.send(stats.FromDown, apFrame(t, apSA(t, s), f))
		if len(up) != 1 || len(drops) != 0 || string(up[0]) != string(f) {
			t.Fatalf("min %d: up %d drops %v", tc.min, len(up), drops)
		}
		if got := pipeline.PrefetchedOff(r.w, 0); got != tc.want {
			t.Errorf("min %d (1 SA): prefetchSA found the ESP header at %d, want %d", tc.min, got, tc.want)
		}
	}
}
