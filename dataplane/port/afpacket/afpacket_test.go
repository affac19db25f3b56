//go:build linux

package afpacket

import (
	"bytes"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/tunterm/tunterm/dataplane/port"
)

func checkNoLeak(t *testing.T, pools ...*port.Pool) {
	t.Helper()
	for i, p := range pools {
		if n := p.InUse(); n != 0 {
			t.Errorf("pool %d: InUse() = %d after the test, want 0", i, n)
		}
	}
}

func TestReceive(t *testing.T) {
	tn := newTestNet(t, 1500)
	pool := port.NewPool(256)
	// Four one-page blocks hold a few frames each, so the 300 frames below
	// go round the ring many times: blocks must come back to the kernel.
	p := openPort(t, tn.nsA, tn.idxA, pool, Options{BlockSize: os.Getpagesize(), BlockCount: 4})
	peer := openRaw(t, tn.nsB, tn.idxB, true)
	if p.Name() != vethA {
		t.Errorf("Name() = %q, want %q", p.Name(), vethA)
	}

	sizes := []int{60, 64, 128, 333, 512, 1000, 1514, 1499, 77}
	var sent [][]byte
	for i := 0; i < 300; i++ {
		var tags []tag
		switch i % 10 {
		case 3: // 802.1Q: stripped by the kernel, put back by Receive
			tags = []tag{{0x8100, uint16(i%4094 + 1)}}
		case 7: // 802.1ad outer tag over an 802.1Q inner tag
			tags = []tag{{0x88a8, 100}, {0x8100, 0xa000 | 200}}
		case 9: // priority tagged, VID 0
			tags = []tag{{0x8100, 0x6000}}
		}
		size := sizes[i%len(sizes)]
		if size+4*len(tags) > 1514 {
			size -= 4 * len(tags)
		}
		sent = append(sent, udpFrame(t, macNoOne, macB, uint32(i), size, tags...))
	}

	// A collector reads Stats while the worker runs (-race checks it).
	stop := make(chan struct{})
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for {
			select {
			case <-stop:
				return
			default:
				if _, err := p.Stats(); err != nil {
					t.Errorf("concurrent Stats() = %v", err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}
	}()
	var got []rxFrame
	noise := 0
	for i := 0; i < len(sent); i += 3 { // small bursts: the ring holds ~8 frames
		end := min(i+3, len(sent))
		for _, f := range sent[i:end] {
			peer.send(t, f)
		}
		g, n := receive(t, p, pool, end-i, waitFor)
		got = append(got, g...)
		noise += n
		if len(got) != end {
			t.Fatalf("after sending %d frames received %d", end, len(got))
		}
	}
	close(stop)
	<-collected
	var lastTS int64
	for i, g := range got {
		if g.seq != uint32(i) {
			t.Fatalf("frame %d has seq %d: out of order", i, g.seq)
		}
		if !bytes.Equal(g.data, sent[i]) {
			t.Errorf("frame %d: received\n% x\nwant\n% x", i, g.data, sent[i])
		}
		if g.ts == 0 || g.ts < lastTS {
			t.Errorf("frame %d: TS %d (previous %d), want non-zero and non-decreasing", i, g.ts, lastTS)
		}
		lastTS = g.ts
	}
	if d := time.Since(time.Unix(0, lastTS)); d < 0 || d > time.Minute {
		t.Errorf("last TS is %v from now, want a recent wall-clock time", d)
	}
	st, err := p.Stats()
	if err != nil {
		t.Fatalf("Stats() = %v", err)
	}
	t.Logf("stats: %+v (noise frames %d)", st, noise)
	if st.RxFrames != uint64(len(sent)+noise) || st.Drops != 0 || st.Packets != st.RxFrames {
		t.Errorf("Stats: RxFrames %d Packets %d Drops %d, want %d, %d, 0", st.RxFrames, st.Packets, st.Drops, len(sent)+noise, len(sent)+noise)
	}
	var bytesSent uint64
	for _, f := range sent {
		bytesSent += uint64(len(f))
	}
	if noise == 0 && st.RxBytes != bytesSent {
		t.Errorf("Stats.RxBytes = %d, want %d", st.RxBytes, bytesSent)
	}
	if st.RxDrops != [NumRxDrops]uint64{} {
		t.Errorf("Stats.RxDrops = %v, want none", st.RxDrops)
	}
	checkNoLeak(t, pool)
}

// TestReceiveOversize sends frames around port.MaxFrame over a jumbo MTU.
func TestReceiveOversize(t *testing.T) {
	tn := newTestNet(t, 9000)
	pool := port.NewPool(64)
	p := openPort(t, tn.nsA, tn.idxA, pool, Options{})
	peer := openRaw(t, tn.nsB, tn.idxB, true)
	vl := []tag{{0x8100, 42}}
	cases := []struct {
		frame []byte
		ok    bool
	}{
		{udpFrame(t, macNoOne, macB, 0, port.MaxFrame), true},
		{udpFrame(t, macNoOne, macB, 1, port.MaxFrame+1), false},
		{udpFrame(t, macNoOne, macB, 2, 3000), false},
		{udpFrame(t, macNoOne, macB, 3, port.MaxFrame+1, vl...), false}, // fits only untagged
		{udpFrame(t, macNoOne, macB, 4, port.MaxFrame, vl...), true},
		{udpFrame(t, macNoOne, macB, 5, 9014), false},
		{udpFrame(t, macNoOne, macB, 6, 100), true},
	}
	var want [][]byte
	drops := 0
	for _, c := range cases {
		peer.send(t, c.frame)
		if c.ok {
			want = append(want, c.frame)
		} else {
			drops++
		}
	}
	got, _ := receive(t, p, pool, len(want), waitFor)
	if len(got) != len(want) {
		t.Fatalf("received %d frames, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].data, want[i]) {
			t.Errorf("frame %d (seq %d, %d bytes) differs from what was sent", i, got[i].seq, len(got[i].data))
		}
	}
	st, _ := p.Stats()
	if st.RxDrops[RxTooBig] != uint64(drops) {
		t.Errorf("Stats.RxDrops[%v] = %d, want %d", RxTooBig, st.RxDrops[RxTooBig], drops)
	}
	checkNoLeak(t, pool)
}

// etherTypeFilter accepts only frames of EtherType et, keeping snap bytes.
func etherTypeFilter(t *testing.T, et uint16, snap uint32) []bpf.RawInstruction {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(et), SkipFalse: 1},
		bpf.RetConstant{Val: snap},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

func TestFilter(t *testing.T) {
	tn := newTestNet(t, 1500)
	pool := port.NewPool(64)
	p := openPort(t, tn.nsA, tn.idxA, pool, Options{Filter: etherTypeFilter(t, etherTypeExp, 0x40000)})
	peer := openRaw(t, tn.nsB, tn.idxB, true)
	var want [][]byte
	for i := 0; i < 20; i++ {
		if i%2 == 0 {
			f := expFrame(t, uint32(i), 100+i)
			want = append(want, f)
			peer.send(t, f)
		} else {
			peer.send(t, udpFrame(t, macNoOne, macB, uint32(i), 100))
		}
	}
	got, noise := receive(t, p, pool, len(want), waitFor)
	// Let any frame the filter wrongly passed arrive too.
	more, noise2 := receive(t, p, pool, 1, 50*time.Millisecond)
	got = append(got, more...)
	if len(got) != len(want) || noise+noise2 != 0 {
		t.Fatalf("received %d frames (+%d unmarked), want the %d of EtherType %#x", len(got), noise+noise2, len(want), etherTypeExp)
	}
	for i := range got {
		if !bytes.Equal(got[i].data, want[i]) {
			t.Errorf("frame %d differs", i)
		}
	}
	checkNoLeak(t, pool)
}

// TestReceiveTruncated cuts frames with a filter snap length: Receive must
// drop them rather than hand on part of a frame.
func TestReceiveTruncated(t *testing.T) {
	tn := newTestNet(t, 1500)
	pool := port.NewPool(64)
	p := openPort(t, tn.nsA, tn.idxA, pool, Options{Filter: etherTypeFilter(t, etherTypeExp, 100)})
	peer := openRaw(t, tn.nsB, tn.idxB, true)
	peer.send(t, expFrame(t, 0, 300))
	peer.send(t, expFrame(t, 1, 101))
	short := expFrame(t, 2, 100)
	peer.send(t, short)
	got, _ := receive(t, p, pool, 1, waitFor)
	if len(got) != 1 || !bytes.Equal(got[0].data, short) {
		t.Fatalf("received %d frames, want only the 100-byte one", len(got))
	}
	st, _ := p.Stats()
	if st.RxDrops[RxTruncated] != 2 {
		t.Errorf("Stats.RxDrops[%v] = %d, want 2", RxTruncated, st.RxDrops[RxTruncated])
	}
	checkNoLeak(t, pool)
}

// TestReceivePoolEmpty: with the pool dry Receive stops and keeps the
// frames in the ring; nothing is lost once chunks come back.
func TestReceivePoolEmpty(t *testing.T) {
	tn := newTestNet(t, 1500)
	pool := port.NewPool(4)
	p := openPort(t, tn.nsA, tn.idxA, pool, Options{})
	peer := openRaw(t, tn.nsB, tn.idxB, true)
	for i := 0; i < 10; i++ {
		peer.send(t, udpFrame(t, macNoOne, macB, uint32(i), 200))
	}
	var b port.Batch
	deadline := time.Now().Add(waitFor)
	for b.N < 4 && time.Now().Before(deadline) {
		p.Poll(10 * time.Millisecond)
		p.Receive(&b)
	}
	if b.N != 4 || pool.InUse() != 4 {
		t.Fatalf("holding %d frames, %d chunks in use; want the whole pool of 4", b.N, pool.InUse())
	}
	// The rest may sit in a block the kernel has not retired yet: poll
	// until Receive has met a frame it could not take.
	var st Stats
	for deadline := time.Now().Add(waitFor); st.RxPoolEmpty == 0 && time.Now().Before(deadline); st, _ = p.Stats() {
		p.Poll(10 * time.Millisecond)
		if n := p.Receive(&b); n != 0 {
			t.Fatalf("Receive with an empty pool = %d, want 0", n)
		}
	}
	if st.RxPoolEmpty == 0 {
		t.Errorf("Stats.RxPoolEmpty = 0, want > 0")
	}
	seqs := []uint32{}
	for i := range b.Frames() {
		s, _ := seqOf(b.F[i].Bytes())
		seqs = append(seqs, s)
		pool.Put(&b.F[i])
	}
	b.N = 0
	got, _ := receive(t, p, pool, 6, waitFor)
	for _, g := range got {
		seqs = append(seqs, g.seq)
	}
	for i, s := range seqs {
		if s != uint32(i) {
			t.Fatalf("sequence %v: want 0..9 in order", seqs)
		}
	}
	if len(seqs) != 10 {
		t.Fatalf("got %d frames, want 10", len(seqs))
	}
	if st, _ := p.Stats(); st.Drops != 0 {
		t.Errorf("kernel dropped %d", st.Drops)
	}
	checkNoLeak(t, pool)
}

func TestTransmit(t *testing.T) {
	tn := newTestNet(t, 1500)
	pool := port.NewPool(128)
	p := openPort(t, tn.nsA, tn.idxA, pool, Options{})
	peer := openRaw(t, tn.nsB, tn.idxB, true)

	var b port.Batch
	var want [][]byte
	sizes := []int{60, 1514, 200, 64, 999}
	for i := 0; !b.Full(); i++ {
		size := sizes[i%len(sizes)]
		frame := udpFrame(t, macNoOne, macA, uint32(i), size)
		f, ok := pool.Get()
		if !ok {
			t.Fatal("pool empty")
		}
		switch i % 5 { // frames wherever the worker left them in the chunk
		case 1:
			f.Off = 0
		case 2:
			f.Off = port.Headroom - 58 // after pushing encapsulation headers
		case 3:
			f.Off = port.Headroom + 100 // after pulling headers
		case 4:
			f.Off = port.ChunkSize - size // flush with the chunk end
		}
		f.Len = copy(f.Buf[f.Off:], frame)
		b.Add(f)
		want = append(want, frame)
	}
	if n := p.Transmit(&b); n != len(want) {
		t.Fatalf("Transmit() = %d, want %d", n, len(want))
	}
	if b.N != 0 {
		t.Errorf("batch N = %d after Transmit, want 0", b.N)
	}
	checkNoLeak(t, pool)
	for i, w := range want {
		g, ok := peer.recv(waitFor)
		if !ok {
			t.Fatalf("peer got %d of %d frames", i, len(want))
		}
		if !bytes.Equal(g, w) {
			t.Fatalf("peer frame %d:\n% x\nwant\n% x", i, g, w)
		}
	}
	st, _ := p.Stats()
	var total uint64
	for _, w := range want {
		total += uint64(len(w))
	}
	if st.TxFrames != uint64(len(want)) || st.TxBytes != total {
		t.Errorf("Stats: TxFrames %d TxBytes %d, want %d, %d", st.TxFrames, st.TxBytes, len(want), total)
	}
}

// TestTransmitErrors: frames the kernel refuses are counted by errno and
// the rest of the batch still goes; a down link refuses the whole batch.
func TestTransmitErrors(t *testing.T) {
	tn := newTestNet(t, 1500)
	pool := port.NewPool(64)
	p := openPort(t, tn.nsA, tn.idxA, pool, Options{})
	peer := openRaw(t, tn.nsB, tn.idxB, true)
	add := func(b *port.Batch, data []byte, n int) {
		f, _ := pool.Get()
		copy(f.Buf[f.Off:], data)
		f.Len = n
		b.Add(f)
	}
	var b port.Batch
	good := [][]byte{udpFrame(t, macNoOne, macA, 0, 100), udpFrame(t, macNoOne, macA, 1, 100), udpFrame(t, macNoOne, macA, 2, 100)}
	add(&b, good[0], len(good[0]))
	add(&b, good[0], 5) // shorter than an Ethernet header: EINVAL
	add(&b, good[1], len(good[1]))
	big := udpFrame(t, macNoOne, macA, 9, 1600) // over MTU 1500: EMSGSIZE
	add(&b, big, len(big))
	add(&b, good[2], len(good[2]))
	add(&b, nil, 0) // empty descriptor: never handed to the kernel
	if n := p.Transmit(&b); n != 3 {
		t.Errorf("Transmit() = %d, want 3", n)
	}
	checkNoLeak(t, pool)
	for i, w := range good {
		g, ok := peer.recv(waitFor)
		if !ok || !bytes.Equal(g, w) {
			t.Fatalf("peer frame %d: got %d bytes (ok %v), want seq %d", i, len(g), ok, i)
		}
	}
	st, _ := p.Stats()
	want := [NumTxErrs]uint64{TxEINVAL: 1, TxEMSGSIZE: 1, TxBadFrame: 1}
	if st.TxErrors != want {
		t.Errorf("Stats.TxErrors = %v, want %v", st.TxErrors, want)
	}

	l, _ := tn.hA.LinkByName(vethA)
	if err := tn.hA.LinkSetDown(l); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		add(&b, good[0], len(good[0]))
	}
	if n := p.Transmit(&b); n != 0 {
		t.Errorf("Transmit() on a down link = %d, want 0", n)
	}
	checkNoLeak(t, pool)
	st, _ = p.Stats()
	if st.TxErrors[TxENETDOWN] != 8 {
		t.Errorf("Stats.TxErrors = %v, want %d %v", st.TxErrors, 8, TxENETDOWN)
	}
	if err := tn.hA.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
}

// TestIgnoreOutgoing: the port sees neither its own transmissions nor other
// frames leaving the interface, while a bystander socket without
// PACKET_IGNORE_OUTGOING does see them (so the test could fail).
func TestIgnoreOutgoing(t *testing.T) {
	for _, keepQdisc := range []bool{false, true} {
		name := "qdisc_bypass"
		if keepQdisc {
			name = "qdisc"
		}
		t.Run(name, func(t *testing.T) {
			tn := newTestNet(t, 1500)
			pool := port.NewPool(64)
			p := openPort(t, tn.nsA, tn.idxA, pool, Options{KeepQdisc: keepQdisc})
			bystander := openRaw(t, tn.nsA, tn.idxA, false)
			other := openRaw(t, tn.nsA, tn.idxA, true) // another sender on our interface
			peer := openRaw(t, tn.nsB, tn.idxB, true)

			var b port.Batch
			for i := 0; i < 10; i++ {
				f, _ := pool.Get()
				f.Len = copy(f.Buf[f.Off:], udpFrame(t, macNoOne, macA, uint32(i), 120))
				b.Add(f)
				other.send(t, udpFrame(t, macNoOne, macA, uint32(100+i), 120))
			}
			if n := p.Transmit(&b); n != 10 {
				t.Fatalf("Transmit() = %d, want 10", n)
			}
			for i := 0; i < 20; i++ {
				if _, ok := peer.recv(waitFor); !ok {
					t.Fatalf("peer got %d of 20 frames", i)
				}
			}
			var ours, others int
			for {
				f, ok := bystander.recvFrom(50*time.Millisecond, true)
				if !ok {
					break
				}
				if s, ok := seqOf(f); ok && s < 100 {
					ours++
				} else if ok {
					others++
				}
			}
			t.Logf("bystander without PACKET_IGNORE_OUTGOING saw %d of our frames, %d of the other sender's", ours, others)
			if others != 10 {
				t.Fatalf("bystander saw %d of the other sender's 10 outgoing frames: test cannot tell", others)
			}
			if keepQdisc && ours != 10 {
				t.Errorf("bystander saw %d of our 10 frames sent through the qdisc, want 10", ours)
			}
			got, noise := receive(t, p, pool, 1, 200*time.Millisecond)
			if len(got)+noise != 0 {
				t.Errorf("port received %d outgoing frames (+%d others), want none", len(got), noise)
			}
			st, _ := p.Stats()
			if st.RxDrops[RxOutgoing] != 0 || st.Packets != 0 {
				t.Errorf("Stats: Packets %d RxDrops[outgoing] %d: the kernel queued outgoing frames to the ring", st.Packets, st.RxDrops[RxOutgoing])
			}

			// Without the socket option, Receive drops them itself.
			if err := unix.SetsockoptInt(p.fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 0); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 5; i++ {
				other.send(t, udpFrame(t, macNoOne, macA, uint32(200+i), 120))
			}
			deadline := time.Now().Add(waitFor)
			for st.RxDrops[RxOutgoing] < 5 && time.Now().Before(deadline) {
				g, n := receive(t, p, pool, 1, 20*time.Millisecond)
				if len(g)+n != 0 {
					t.Fatalf("port delivered %d outgoing frames", len(g)+n)
				}
				st, _ = p.Stats()
			}
			if st.RxDrops[RxOutgoing] != 5 {
				t.Errorf("Stats.RxDrops[%v] = %d, want 5", RxOutgoing, st.RxDrops[RxOutgoing])
			}
			checkNoLeak(t, pool)
		})
	}
}

func TestFanout(t *testing.T) {
	tn := newTestNet(t, 1500)
	fg := &FanoutGroup{ID: 4242, Mode: FanoutHash, Defrag: true}
	pools := []*port.Pool{port.NewPool(128), port.NewPool(128)}
	ports := []*Port{
		openPort(t, tn.nsA, tn.idxA, pools[0], Options{Fanout: fg}),
		openPort(t, tn.nsA, tn.idxA, pools[1], Options{Fanout: fg}),
	}
	peer := openRaw(t, tn.nsB, tn.idxB, true)
	const n = 256
	for i := 0; i < n; i++ {
		peer.send(t, udpFrame(t, macNoOne, macB, uint32(i), 90)) // a flow per frame
	}
	seen := make(map[uint32]int)
	per := make([]int, len(ports))
	deadline := time.Now().Add(waitFor)
	for len(seen) < n && time.Now().Before(deadline) {
		for i, p := range ports {
			got, _ := receive(t, p, pools[i], 1, 5*time.Millisecond)
			for _, g := range got {
				seen[g.seq]++
				per[i]++
			}
		}
	}
	for i, p := range ports { // stragglers, duplicates
		got, _ := receive(t, p, pools[i], n, 20*time.Millisecond)
		for _, g := range got {
			seen[g.seq]++
			per[i]++
		}
	}
	t.Logf("fanout split: %v", per)

	// Frames another socket sends out of the interface reach no member:
	// PACKET_FANOUT_FLAG_IGNORE_OUTGOING where the kernel has it, else
	// Receive's own check.
	other := openRaw(t, tn.nsA, tn.idxA, true)
	for i := 0; i < 5; i++ {
		other.send(t, udpFrame(t, macNoOne, macA, uint32(1000+i), 90))
	}
	for i, p := range ports {
		if got, noise := receive(t, p, pools[i], 1, 50*time.Millisecond); len(got)+noise != 0 {
			t.Errorf("member %d received %d outgoing frames", i, len(got)+noise)
		}
		st, _ := p.Stats()
		t.Logf("member %d: %d frames delivered, %d outgoing frames dropped by Receive", i, st.RxFrames, st.RxDrops[RxOutgoing])
	}
	if len(seen) != n {
		t.Errorf("the group received %d distinct frames, want %d", len(seen), n)
	}
	for s, c := range seen {
		if c != 1 {
			t.Errorf("frame %d received %d times", s, c)
		}
	}
	if per[0] == 0 || per[1] == 0 {
		t.Errorf("fanout split %v: a member got nothing", per)
	}
	checkNoLeak(t, pools...)
}

func TestPromisc(t *testing.T) {
	tn := newTestNet(t, 1500)
	promisc := func() int {
		l, err := tn.hA.LinkByName(vethA)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().Promisc // IFLA_PROMISCUITY: the membership count
	}
	base := promisc()
	p := openPort(t, tn.nsA, tn.idxA, port.NewPool(8), Options{Promisc: true})
	if got := promisc(); got != base+1 {
		t.Errorf("promiscuity with the port open = %d, want %d", got, base+1)
	}
	p.Close()
	if got := promisc(); got != base {
		t.Errorf("promiscuity after Close = %d, want %d", got, base)
	}
}

func TestCloseAndStats(t *testing.T) {
	tn := newTestNet(t, 1500)
	pool := port.NewPool(16)
	p := openPort(t, tn.nsA, tn.idxA, pool, Options{})
	peer := openRaw(t, tn.nsB, tn.idxB, true)
	for i := 0; i < 5; i++ {
		peer.send(t, udpFrame(t, macNoOne, macB, uint32(i), 100))
	}
	if got, _ := receive(t, p, pool, 5, waitFor); len(got) != 5 {
		t.Fatalf("received %d, want 5", len(got))
	}
	before, err := p.Stats()
	if err != nil || before.Packets != 5 || before.RxFrames != 5 {
		t.Fatalf("Stats() = %+v, %v; want 5 packets and frames", before, err)
	}
	// The kernel counters reset on read; ours must not.
	if again, _ := p.Stats(); again.Packets != 5 {
		t.Errorf("second Stats().Packets = %d, want 5", again.Packets)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	after, err := p.Stats()
	if err != nil || after.Packets != 5 || after.RxFrames != 5 {
		t.Errorf("Stats() after Close = %+v, %v", after, err)
	}
	var b port.Batch
	if n := p.Receive(&b); n != 0 {
		t.Errorf("Receive after Close = %d", n)
	}
	if err := p.Poll(time.Millisecond); !errors.Is(err, ErrClosed) {
		t.Errorf("Poll after Close = %v, want ErrClosed", err)
	}
	f, _ := pool.Get()
	f.Len = 60
	b.Add(f)
	if n := p.Transmit(&b); n != 0 {
		t.Errorf("Transmit after Close = %d", n)
	}
	if st, _ := p.Stats(); st.TxErrors[TxClosed] != 1 {
		t.Errorf("Stats.TxErrors[%v] = %d, want 1", TxClosed, st.TxErrors[TxClosed])
	}
	checkNoLeak(t, pool)
}

func countFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestOpenErrors(t *testing.T) {
	tn := newTestNet(t, 1500)
	pool := port.NewPool(4)
	cases := []struct {
		name    string
		ifindex int
		pool    *port.Pool
		o       Options
		errno   error
	}{
		{"nil pool", tn.idxA, nil, Options{}, nil},
		{"block size not pages", tn.idxA, pool, Options{BlockSize: 1000}, nil},
		{"negative block count", tn.idxA, pool, Options{BlockCount: -1}, nil},
		{"frame size unaligned", tn.idxA, pool, Options{FrameSize: 2040}, nil},
		{"frame size over block", tn.idxA, pool, Options{BlockSize: 4096, FrameSize: 8192}, nil},
		{"negative timeout", tn.idxA, pool, Options{Timeout: -time.Second}, nil},
		{"no such interface", 999999, pool, Options{}, unix.ENODEV},
		{"fanout mode clash", tn.idxA, pool, Options{Fanout: &FanoutGroup{ID: 7, Mode: FanoutCPU}}, unix.EINVAL},
	}
	// A member with another mode, for the clash case.
	openPort(t, tn.nsA, tn.idxA, port.NewPool(4), Options{Fanout: &FanoutGroup{ID: 7, Mode: FanoutHash}})
	fds := countFDs(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			inNS(t, tn.nsA, func() {
				var p *Port
				p, err = Open(tc.ifindex, tc.pool, tc.o)
				if p != nil {
					p.Close()
				}
			})
			if err == nil {
				t.Fatalf("Open(%d, %+v) = nil error", tc.ifindex, tc.o)
			}
			if tc.errno != nil && !errors.Is(err, tc.errno) {
				t.Errorf("Open(%d) = %v, want %v", tc.ifindex, err, tc.errno)
			}
			t.Logf("%v", err)
		})
	}
	if n := countFDs(t); n != fds {
		t.Errorf("%d file descriptors open after failed Opens, want %d", n, fds)
	}
}

func TestProbe(t *testing.T) {
	tn := newTestNet(t, 1500)
	var ok, bad error
	inNS(t, tn.nsA, func() {
		ok = Probe(tn.idxA)
		bad = Probe(999999)
	})
	if ok != nil {
		t.Errorf("Probe(%d) = %v, want nil", tn.idxA, ok)
	}
	if !errors.Is(bad, unix.ENODEV) {
		t.Errorf("Probe(999999) = %v, want ENODEV", bad)
	}
}

// TestZeroAllocs runs a port transmitting into another receiving across the
// veth: Transmit, Poll and Receive must not allocate per call.
func TestZeroAllocs(t *testing.T) {
	tn := newTestNet(t, 1500)
	poolA, poolB := port.NewPool(128), port.NewPool(128)
	a := openPort(t, tn.nsA, tn.idxA, poolA, Options{})
	b := openPort(t, tn.nsB, tn.idxB, poolB, Options{})
	frame := udpFrame(t, macNoOne, macA, 1, 256, tag{0x8100, 7}) // exercises VLAN reinsertion
	const burst = 16
	var tx, rx port.Batch
	short := 0
	run := func() {
		for i := 0; i < burst; i++ {
			f, _ := poolA.Get()
			f.Len = copy(f.Buf[f.Off:], frame)
			tx.Add(f)
		}
		a.Transmit(&tx)
		got := 0
		deadline := time.Now().Add(waitFor)
		for got < burst && time.Now().Before(deadline) {
			b.Poll(5 * time.Millisecond)
			got += b.Receive(&rx)
			for i := range rx.Frames() {
				poolB.Put(&rx.F[i])
			}
			rx.N = 0
		}
		if got != burst {
			short++
		}
	}
	run() // warm up
	if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
		t.Errorf("AllocsPerRun(Transmit+Poll+Receive) = %v, want 0", allocs)
	}
	if short != 0 {
		t.Errorf("%d rounds received fewer than %d frames", short, burst)
	}
	checkNoLeak(t, poolA, poolB)
}

// TestReceiveFromStack receives a datagram the peer's kernel stack sent
// over the veth with checksum offload: the frame arrives with its UDP
// checksum not filled in, and Stats says so.
func TestReceiveFromStack(t *testing.T) {
	tn := newTestNet(t, 1500)
	pool := port.NewPool(64)
	p := openPort(t, tn.nsA, tn.idxA, pool, Options{})
	var conn *net.UDPConn
	var err error
	inNS(t, tn.nsB, func() {
		conn, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: ipA, Port: 9})
	})
	if err != nil {
		t.Fatalf("dial in peer namespace: %v", err)
	}
	defer conn.Close()
	payload := append(bytes.Clone(marker), 0, 0, 0, 42)
	if _, err := conn.Write(payload); err != nil {
		t.Fatal(err)
	}
	got, noise := receive(t, p, pool, 1, waitFor)
	if len(got) != 1 || got[0].seq != 42 {
		t.Fatalf("received %v (+%d other frames, e.g. ARP), want the datagram", got, noise)
	}
	st, _ := p.Stats()
	t.Logf("stats: %+v", st)
	if st.RxCsumNotReady != 1 { // veth keeps tx checksum offload on by default
		t.Errorf("Stats.RxCsumNotReady = %d, want 1", st.RxCsumNotReady)
	}
	checkNoLeak(t, pool)
}

// TestOptions checks option defaults and validation; it needs no privilege.
func TestOptions(t *testing.T) {
	var o Options
	if err := o.setDefaults(); err != nil {
		t.Fatalf("zero Options: %v", err)
	}
	want := Options{BlockSize: DefaultBlockSize, BlockCount: DefaultBlockCount, FrameSize: DefaultFrameSize,
		Timeout: DefaultTimeout, SendBuffer: 4 << 20}
	if o.BlockSize != want.BlockSize || o.BlockCount != want.BlockCount || o.FrameSize != want.FrameSize ||
		o.Timeout != want.Timeout || o.SendBuffer != want.SendBuffer {
		t.Errorf("defaults = %+v, want %+v", o, want)
	}
	pg := os.Getpagesize()
	for _, tc := range []struct {
		name string
		o    Options
		ok   bool
	}{
		{"one page blocks", Options{BlockSize: pg, BlockCount: 1}, true},
		{"frame size 1 MiB blocks", Options{BlockSize: 1 << 20, FrameSize: 1 << 20}, true},
		{"block not page multiple", Options{BlockSize: pg + 16}, false},
		{"block too large", Options{BlockSize: 2 << 30}, false},
		{"too many blocks", Options{BlockCount: 1<<16 + 1}, false},
		{"ring over 4 GiB", Options{BlockSize: 1 << 20, BlockCount: 8192}, false},
		{"frame below header", Options{FrameSize: 64}, false},
		{"filter too long", Options{Filter: make([]bpf.RawInstruction, bpfMaxInsns+1)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			if err := o.setDefaults(); (err == nil) != tc.ok {
				t.Errorf("setDefaults(%+v) = %v, want ok %v", tc.o, err, tc.ok)
			}
		})
	}
	for r := RxDrop(0); r < NumRxDrops; r++ {
		if s := r.String(); s == "" || s[0] == 'R' {
			t.Errorf("RxDrop(%d).String() = %q", int(r), s)
		}
	}
	for e := TxErr(0); e < NumTxErrs; e++ {
		if s := e.String(); s == "" || s[0] == 'T' {
			t.Errorf("TxErr(%d).String() = %q", int(e), s)
		}
	}
}
