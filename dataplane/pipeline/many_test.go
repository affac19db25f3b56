package pipeline_test

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tunterm/tunterm/dataplane/esp"
	"github.com/tunterm/tunterm/dataplane/hdr"
	"github.com/tunterm/tunterm/dataplane/pipeline"
	"github.com/tunterm/tunterm/dataplane/port"
	"github.com/tunterm/tunterm/dataplane/stats"
)

// manyYAML is the live benchmark's shape (bench/live, ttgen config): n APs
// on one tunnel, transport mode, L2TPv3 over IP with 8-byte cookies, AES-GCM
// with anti-replay off (the generator replays fixed frames), and the FDB
// size ttgen writes for up to ~131,000 clients.
func manyYAML(n int) string {
	var b strings.Builder
	b.WriteString(`
downstream: {address: 198.18.0.1/15, mac: "02:00:00:00:00:01", gateway_mac: "02:00:00:00:00:fe"}
bridge: {fdb_size: 262144}
tunnels: [{name: corp, vlans: [100, 200], native_vlan: 100, mtu: 1600}]
static_peers:
`)
	key := hexRep("ab", 32) + "01020304"
	for i := range n {
		fmt.Fprintf(&b, `  - name: ap%d
    address: 198.19.%d.%d
    tunnel: corp
    l2tp: {local_session_id: %d, remote_session_id: %d, local_cookie: "00112233445566%02x", remote_cookie: "8899aabbccddee%02x", pseudowire: vlan}
    esp:
      mode: transport
      anti_replay: false
      in:  {spi: %d, enc: aes-gcm-256, enc_key: %q}
      out: {spi: %d, enc: aes-gcm-256, enc_key: %q}
`, i, 1+i/250, 1+i%250, 0x10000+i, 0x20000+i, i&0xff, i&0xff, 0x100000+i, key, 0x200000+i, key)
	}
	return b.String()
}

// BenchmarkPipelineMany is BenchmarkPipeline's AES-GCM paths in the live
// benchmark's shapes: 500 APs (X1) and 10,000 APs (X10) with 10 clients
// each, frames cycling over all clients with the tunnels varying fastest
// (as ttgen sends them), so that the SA, session and FDB entries of every
// frame differ from the last frame's. (BenchmarkPipeline, with one AP and
// one client, keeps all of that in L1.)
//
// In the cold variants, 2 MiB of other memory is written between batches
// (outside the timing): on the live dataplane the frames the kernel copies
// through the worker's cache evict the tables between two frames of one
// client in the same way.
//
// p50_ns/pkt is the median batch's time per frame, which other jobs on a
// shared machine disturb less than the mean (pipeline_ns/pkt).
//
// With TT_AB=1 in the environment the SA prefetch (prefetchSA) is switched
// off and on every other batch and B/A reports the median batch time with
// it over the median without: a paired comparison that the drift of a
// shared machine does not bias.
func BenchmarkPipelineMany(b *testing.B) {
	const macs = 10
	for _, aps := range []int{500, 10000} {
		for _, dir := range []string{"down", "up"} {
			for _, cold := range []bool{false, true} {
				for _, size := range []int{128, 1400} {
					name := fmt.Sprintf("%s/aes-gcm-256/%dx%d/%d", dir, aps, macs, size)
					if cold {
						name += "/cold"
					}
					b.Run(name, func(b *testing.B) {
						benchMany(b, dir, aps, macs, size, cold)
					})
				}
			}
		}
	}
}

func benchMany(b *testing.B, dir string, aps, macs, size int, cold bool) {
	r := newRig(b, manyYAML(aps))
	r.keep = false
	r.w.Taps.Set(nil, nil, nil)
	nf := aps * macs
	clientMAC := func(f int) []byte {
		i, j := f%aps, f/aps
		return []byte{0x02, 0xc1, 0, byte(i >> 8), byte(i), byte(j)}
	}
	payload := make([]byte, size-46)
	// AP->corporate frames, in one arena: each AP seals with its own SA.
	tmpl := inner(b, c1, host, 200, payload)
	arena := make([]byte, nf*port.ChunkSize)
	down := make([][]byte, nf)
	sas := make([]*esp.SA, aps)
	for i := range sas {
		sa, err := esp.NewSA(esp.Config{SPI: uint32(0x100000 + i), Cipher: esp.AESGCM256, EncKey: mustHex(hexRep("ab", 32) + "01020304")})
		if err != nil {
			b.Fatal(err)
		}
		sas[i] = sa
	}
	for f := range nf {
		i := f % aps
		buf := arena[f*port.ChunkSize : (f+1)*port.ChunkSize]
		off := 256
		n := copy(buf[off:], []byte{0, 1, byte(i >> 8), byte(i)})
		n += copy(buf[off+n:], []byte{0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, byte(i)})
		n += copy(buf[off+n:], []byte{0, 0, 0, 0})
		in := buf[off+n : off+n+len(tmpl)]
		copy(in, tmpl)
		copy(in[6:12], clientMAC(f))
		n += len(tmpl)
		start, end, why := sas[i].Seal(buf, off, n, hdr.ProtoL2TP)
		if why != stats.OK {
			b.Fatalf("Seal: %v", why)
		}
		hdr.PutIPv4(buf[start-20:start], []byte{198, 19, byte(1 + i/250), byte(1 + i%250)}, []byte{198, 18, 0, 1}, hdr.ProtoESP, end-start+20, 64, 1)
		hdr.PutEth(buf[start-34:start-20], ourMAC, apMAC, hdr.EtherTypeIPv4)
		down[f] = buf[start-34 : end]
	}
	// Corporate->AP frames: the corporate host to every client.
	up := make([][]byte, nf)
	for f := range nf {
		up[f] = inner(b, host, c1, 200, payload)
		copy(up[f][0:6], clientMAC(f))
	}
	// Learn every client and the corporate host, outside the timing.
	r.send(stats.FromUp, inner(b, host, c1, 200, nil))
	for f := 0; f < nf; f += port.BatchSize {
		r.send(stats.FromDown, down[f:min(f+port.BatchSize, nf)]...)
	}
	if got := r.fdb.Len(); got != nf+1 {
		b.Fatalf("FDB holds %d entries, want %d", got, nf+1)
	}
	frames, p, d := down, r.down, stats.FromDown
	if dir == "up" {
		frames, p, d = up, r.up, stats.FromUp
	}
	r.send(d, frames[:port.BatchSize]...) // grow the port's queue outside the timing
	var evict []uint64
	if cold {
		evict = make([]uint64, 2<<20/8)
	}
	batches := make([]time.Duration, 0, b.N/port.BatchSize+1)
	base := stats.Sum(&r.w.Counters)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	runtime.GC()
	b.ResetTimer()
	var proc time.Duration
	next := 0
	ab := os.Getenv("TT_AB") != ""
	var abT [2][]time.Duration
	for i := 0; i < b.N; i += port.BatchSize {
		v := (i / port.BatchSize) & 1
		if ab {
			pipeline.SetPrefetch(r.w, v == 1)
		}
		n := min(port.BatchSize, b.N-i)
		for range n {
			p.Inject(frames[next], 0)
			if next++; next == nf {
				next = 0
			}
		}
		p.Receive(&r.rx)
		for k := range evict {
			evict[k]++
		}
		t0 := time.Now()
		r.w.Process(d, &r.rx)
		t := time.Since(t0)
		proc += t
		if n == port.BatchSize {
			batches = append(batches, t)
			abT[v] = append(abT[v], t)
		}
	}
	b.StopTimer()
	c := stats.Sum(&r.w.Counters)
	if fwd := c.TxPkts[d] - base.TxPkts[d]; fwd != uint64(b.N) {
		b.Fatalf("forwarded %d of %d frames; drops %v", fwd, b.N, c.Drops)
	}
	ns := float64(proc.Nanoseconds()) / float64(b.N)
	b.ReportMetric(ns, "pipeline_ns/pkt")
	b.ReportMetric(1e3/ns, "Mpps")
	if len(batches) > 0 {
		slices.Sort(batches)
		b.ReportMetric(float64(batches[len(batches)/2].Nanoseconds())/port.BatchSize, "p50_ns/pkt")
	}
	if ab && len(abT[0]) > 0 && len(abT[1]) > 0 {
		slices.Sort(abT[0])
		slices.Sort(abT[1])
		b.ReportMetric(float64(abT[1][len(abT[1])/2])/float64(abT[0][len(abT[0])/2]), "B/A")
	}
}
