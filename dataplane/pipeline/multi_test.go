package pipeline_test

import (
	"encoding/hex"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tunterm/tunterm/control/config"
	"github.com/tunterm/tunterm/control/programmer"
	"github.com/tunterm/tunterm/dataplane/bridge"
	"github.com/tunterm/tunterm/dataplane/esp"
	"github.com/tunterm/tunterm/dataplane/hdr"
	"github.com/tunterm/tunterm/dataplane/pipeline"
	"github.com/tunterm/tunterm/dataplane/port"
	"github.com/tunterm/tunterm/dataplane/port/mem"
	"github.com/tunterm/tunterm/dataplane/sched"
	"github.com/tunterm/tunterm/dataplane/stats"
	"github.com/tunterm/tunterm/dataplane/table"
)

const nPeers = 8

// multiYAML: nPeers APs with AES-GCM-256 SAs (SPI 0x1000+i in, 0x2000+i
// out), sessions 100+i, no cookies, VLAN pseudowire, VLANs 100 and 200.
func multiYAML() string {
	var b strings.Builder
	b.WriteString(`
downstream: {address: 198.18.0.1/24, mac: "02:00:00:00:00:01", gateway_mac: "02:00:00:00:00:fe"}
tunnels: [{name: corp, vlans: [100, 200], native_vlan: 100, mtu: 1500}]
static_peers:
`)
	for i := range nPeers {
		fmt.Fprintf(&b, `  - name: ap%d
    address: 198.18.0.%d
    tunnel: corp
    l2tp: {local_session_id: %d, remote_session_id: %d, pseudowire: vlan}
    esp:
      in:  {spi: %d, enc: aes-gcm-256, enc_key: %q}
      out: {spi: %d, enc: aes-gcm-256, enc_key: %q}
`, i, 10+i, 100+i, 200+i, 0x1000+i, gcmKey(i), 0x2000+i, gcmKey(i))
	}
	return b.String()
}

func gcmKey(i int) string { return hexRep(fmt.Sprintf("%02x", i+1), 36) }

type multiRig struct {
	t        testing.TB
	store    *table.Store
	depot    *port.Depot
	pools    []*port.Pool
	ws       []*pipeline.Worker
	down, up []*mem.Port
	mu       sync.Mutex
	upOut    map[string][]string // client MAC -> payloads in order
	downOut  int
	aps      []*esp.SA
	apSeq    []uint32
	owners   []int
}

func newMultiRig(t testing.TB, workers int) *multiRig { return newMultiRigPorts(t, workers, workers) }

// newMultiRigPorts gives only the first withPorts workers their own ports;
// the others transmit through worker 0 (a NIC with fewer queues than
// workers).
func newMultiRigPorts(t testing.TB, workers, withPorts int) *multiRig {
	return newMultiRigFrom(t, multiYAML(), workers, withPorts)
}

func newMultiRigFrom(t testing.TB, yml string, workers, withPorts int) *multiRig {
	c, err := config.Parse([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	r := &multiRig{t: t, store: &table.Store{}, depot: port.NewDepot(make([]byte, 16384*port.ChunkSize)),
		upOut: map[string][]string{}}
	fdb := bridge.New(4096)
	prog := programmer.New(r.store, fdb)
	prog.SetWorkers(workers)
	tt, err := prog.Apply(c)
	if err != nil {
		t.Fatal(err)
	}
	mesh := pipeline.NewMesh(workers, 1024)
	for w := range workers {
		pool := r.depot.NewPool()
		d, u := mem.New(fmt.Sprint("down", w), pool), mem.New(fmt.Sprint("up", w), pool)
		u.Sink = func(b []byte, _ int64) {
			p := b[len(b)-5:] // payload "pNNNN" ends the frame
			r.mu.Lock()
			m := hex.EncodeToString(hdr.Src(b))
			r.upOut[m] = append(r.upOut[m], string(p))
			r.mu.Unlock()
		}
		d.Sink = func([]byte, int64) { r.mu.Lock(); r.downOut++; r.mu.Unlock() }
		r.pools, r.down, r.up = append(r.pools, pool), append(r.down, d), append(r.up, u)
		cfg := pipeline.Config{ID: w, Tables: r.store, FDB: fdb, Pool: pool,
			Down: d, Up: u, Mesh: mesh, Clock: func() time.Time { return time.Unix(1700000000, 0) }}
		if w >= withPorts {
			cfg.Down, cfg.Up = nil, nil
		}
		r.ws = append(r.ws, pipeline.NewWorker(cfg))
	}
	for i := range nPeers {
		sa, err := esp.NewSA(esp.Config{SPI: uint32(0x1000 + i), Cipher: esp.AESGCM256, EncKey: mustHex(gcmKey(i))})
		if err != nil {
			t.Fatal(err)
		}
		r.aps = append(r.aps, sa)
		r.owners = append(r.owners, tt.Peers[i].Owner)
	}
	return r
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// apFrameN is AP i's ESP frame carrying client frame payload "pNNNN".
func (r *multiRig) apFrameN(i, n int, dst string) []byte { return r.apFrameSized(i, n, dst, 0) }

// apFrameSized is apFrameN with an inner frame of size bytes (0: small).
func (r *multiRig) apFrameSized(i, n int, dst string, size int) []byte {
	buf := make([]byte, port.ChunkSize)
	off := 256
	pad := 20
	if size > 0 {
		pad = size - 46 - 5
	}
	k := copy(buf[off:], []byte{0, 0, 0, byte(100 + i), 0, 0, 0, 0})
	k += copy(buf[off+k:], inner(r.t, clientMAC(i), dst, 200, []byte(fmt.Sprintf("%*sp%04d", pad, "", n))))
	start, end, why := r.aps[i].Seal(buf, off, k, hdr.ProtoL2TP)
	if why != stats.OK {
		r.t.Fatalf("Seal: %v", why)
	}
	hdr.PutIPv4(buf[start-20:start], []byte{198, 18, 0, byte(10 + i)}, []byte{198, 18, 0, 1}, hdr.ProtoESP, end-start+20, 64, 1)
	hdr.PutEth(buf[start-34:start-20], mac("02:00:00:00:00:01"), mac("02:00:00:00:00:fe"), hdr.EtherTypeIPv4)
	return buf[start-34 : end]
}

func clientMAC(i int) string { return fmt.Sprintf("02:aa:00:00:00:%02x", i) }

// discard makes the ports drop what they transmit without recording it.
func (r *multiRig) discard() {
	for w := range r.ws {
		r.up[w].Sink, r.down[w].Sink = nil, nil
	}
}

func (r *multiRig) counters() stats.Snapshot {
	var cs []*stats.Counters
	for _, w := range r.ws {
		cs = append(cs, &w.Counters)
	}
	return stats.Sum(cs...)
}

// TestHandoffSequential: every frame arrives on worker 0; frames of peers
// owned by worker 1 are handed over, decrypted there, and delivered in order.
func TestHandoffSequential(t *testing.T) {
	r := newMultiRig(t, 2)
	if own := fmt.Sprint(r.owners); !strings.Contains(own, "0") || !strings.Contains(own, "1") {
		t.Fatalf("owners %v: want peers on both workers", r.owners)
	}
	const perPeer = 20
	for n := range perPeer {
		for i := range nPeers {
			r.down[0].Inject(r.apFrameN(i, n, host), 0)
		}
	}
	for r.ws[0].Poll()+r.ws[1].Poll() > 0 || r.down[0].Pending() > 0 {
	}
	c := r.counters()
	if got := c.TxPkts[stats.FromDown]; got != nPeers*perPeer {
		t.Fatalf("forwarded %d frames, want %d; drops %v", got, nPeers*perPeer, c.Drops[stats.FromDown])
	}
	for i := range nPeers {
		got := r.upOut[strings.ReplaceAll(clientMAC(i), ":", "")]
		if len(got) != perPeer {
			t.Fatalf("ap%d: %d frames, want %d", i, len(got), perPeer)
		}
		for n, p := range got {
			if p != fmt.Sprintf("p%04d", n) {
				t.Fatalf("ap%d: frame %d is %s: order lost", i, n, p)
			}
		}
	}
	want := 0
	for _, o := range r.owners {
		if o == 1 {
			want += perPeer
		}
	}
	if c.Handoffs != uint64(want) {
		t.Errorf("handoffs = %d, want %d", c.Handoffs, want)
	}
	// A broadcast from upstream on worker 0 reaches every session once:
	// worker 0 encrypts for its peers, worker 1 for its own.
	r.up[0].Inject(inner(t, host, bc, 200, []byte("bcast")), 0)
	r.ws[0].Poll()
	r.ws[1].Poll()
	if r.downOut != nPeers {
		t.Errorf("broadcast produced %d frames, want %d", r.downOut, nPeers)
	}
	// Unicast to a worker-1 client arriving on worker 0.
	for i, o := range r.owners {
		if o != 1 {
			continue
		}
		before := r.downOut
		r.up[0].Inject(inner(t, host, clientMAC(i), 200, []byte("ucast")), 0)
		r.ws[0].Poll()
		r.ws[1].Poll()
		if r.downOut != before+1 {
			t.Errorf("unicast to ap%d: %d frames", i, r.downOut-before)
		}
		break
	}
	if u := r.depot.InUse(r.pools...); u != 0 {
		t.Errorf("%d chunks leaked", u)
	}
}

// TestHandoffConcurrent runs both workers in their own goroutines, frames
// arriving on both, under -race: no SA state is touched by two workers, no
// frame is lost, per-peer order holds.
func TestHandoffConcurrent(t *testing.T) {
	r := newMultiRig(t, 2)
	perPeer := 200
	if testing.Short() {
		perPeer = 50
	}
	for n := range perPeer {
		for i := range nPeers {
			// Peers alternate between the workers' receive queues.
			r.down[i%2].Inject(r.apFrameN(i, n, host), 0)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, w := range r.ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					for w.Poll() > 0 {
					}
					return
				default:
					w.Poll()
				}
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c := r.counters()
		var drops uint64
		for _, d := range c.Drops[stats.FromDown] {
			drops += d
		}
		if c.TxPkts[stats.FromDown]+drops >= uint64(nPeers*perPeer) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	c := r.counters()
	if got := c.TxPkts[stats.FromDown]; got != uint64(nPeers*perPeer) {
		t.Fatalf("forwarded %d, want %d; drops %v", got, nPeers*perPeer, c.Drops[stats.FromDown])
	}
	for i := range nPeers {
		got := r.upOut[strings.ReplaceAll(clientMAC(i), ":", "")]
		for n, p := range got {
			if p != fmt.Sprintf("p%04d", n) {
				t.Fatalf("ap%d: frame %d is %s: order lost", i, n, p)
			}
		}
	}
}

// TestHandoffTxVia: a NIC with one queue and two workers. Worker 0 receives
// everything; worker 1 has no port, decrypts/encrypts for its peers and
// sends the results back to worker 0 to transmit.
func TestHandoffTxVia(t *testing.T) {
	r := newMultiRigPorts(t, 2, 1)
	const perPeer = 10
	for n := range perPeer {
		for i := range nPeers {
			r.down[0].Inject(r.apFrameN(i, n, host), 0)
		}
	}
	for r.ws[0].Poll()+r.ws[1].Poll() > 0 || r.down[0].Pending() > 0 {
	}
	if got := r.up[0].Sent; got != nPeers*perPeer {
		t.Fatalf("worker 0 sent %d frames upstream, want %d (drops %v)", got, nPeers*perPeer, r.counters().Drops)
	}
	for i := range nPeers {
		got := r.upOut[strings.ReplaceAll(clientMAC(i), ":", "")]
		for n, p := range got {
			if p != fmt.Sprintf("p%04d", n) {
				t.Fatalf("ap%d: frame %d is %s: order lost", i, n, p)
			}
		}
	}
	r.up[0].Inject(inner(t, host, bc, 200, []byte("bcast")), 0)
	for r.ws[0].Poll()+r.ws[1].Poll() > 0 {
	}
	if r.down[0].Sent != nPeers {
		t.Errorf("broadcast: worker 0 sent %d frames downstream, want %d", r.down[0].Sent, nPeers)
	}
	if u := r.depot.InUse(r.pools...); u != 0 {
		t.Errorf("%d chunks leaked", u)
	}
}

// BenchmarkWorkers measures aggregate AP->corporate throughput of 1 and 2
// workers running in parallel goroutines, each receiving the frames of the
// peers it owns (what RSS by SPI would give), 1400-byte inner frames,
// AES-GCM-256. Frames are recycled (the SAs run with anti-replay off), so
// this is the pipeline's scaling, not the generator's.
func BenchmarkWorkers(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			// A P per worker plus one, as the daemon has.
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
			sched.ReserveProcs(n)
			cfg := strings.ReplaceAll(multiYAML(), "      in:  {", "      anti_replay: false\n      in:  {")
			r := newMultiRigFrom(b, cfg, n, n)
			r.discard()
			frames := make([][][]byte, n)
			for i := range nPeers {
				for k := range 64 {
					frames[r.owners[i]] = append(frames[r.owners[i]], r.apFrameSized(i, k, host, 1400))
				}
			}
			for w := range n {
				if len(frames[w]) == 0 {
					b.Fatalf("worker %d owns no peer", w)
				}
			}
			b.SetBytes(1400)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// Like the daemon's workers: one thread each, pinned
					// to its own CPU when there are enough.
					cpu := -1
					if runtime.NumCPU() >= n {
						cpu = runtime.NumCPU() - n + w
					}
					if err := sched.Pin(cpu); err != nil {
						b.Logf("worker %d not pinned: %v", w, err)
					}
					var rx port.Batch
					fs := frames[w]
					for done, k := 0, 0; done < b.N/n; done += port.BatchSize {
						for range port.BatchSize {
							r.down[w].Inject(fs[k], 0)
							k = (k + 1) % len(fs)
						}
						r.down[w].Receive(&rx)
						r.ws[w].Process(stats.FromDown, &rx)
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds()/1e6, "Mpps")
			c := r.counters()
			var drops uint64
			for _, d := range c.Drops[stats.FromDown] {
				drops += d
			}
			if drops != 0 {
				b.Fatalf("%d frames dropped: %v", drops, c.Drops)
			}
		})
	}
}
