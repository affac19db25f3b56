package afxdp

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/tunterm/tunterm/dataplane/port"
)

const waitFor = 5 * time.Second

// recv receives until want test frames arrived or timeout passed, hands each
// to fn (which returns it to the pool or keeps it) and returns how many
// arrived. Frames that are not test frames go back to the pool.
func recv(p *Port, want int, timeout time.Duration, fn func(f port.Frame)) int {
	var b port.Batch
	got := 0
	deadline := time.Now().Add(timeout)
	for got < want && time.Now().Before(deadline) {
		if p.Receive(&b) == 0 {
			p.Poll(5 * time.Millisecond)
			continue
		}
		for _, f := range b.Frames() {
			if seqOf(f.Bytes()) < 0 {
				p.pool.Put(&f)
				continue
			}
			got++
			fn(f)
		}
		b.N = 0
	}
	return got
}

// drain flushes p until the pool has back all but held chunks.
func drain(t *testing.T, pool *port.Pool, held int, ports ...*Port) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for pool.InUse() > held && time.Now().Before(deadline) {
		for _, p := range ports {
			p.Flush()
		}
		time.Sleep(time.Millisecond)
	}
}

func TestReceive(t *testing.T) {
	for _, tc := range []struct {
		name     string
		attach   link.XDPAttachFlags
		o        Options
		wantNote string
	}{
		{name: "native/copy", attach: link.XDPDriverMode, o: Options{Mode: Copy}},
		{name: "generic/copy", attach: link.XDPGenericMode, o: Options{Mode: Copy}},
		{name: "native/auto", attach: link.XDPDriverMode, o: Options{Mode: Auto}, wantNote: "zero-copy not available"},
		{name: "generic/auto", attach: link.XDPGenericMode, o: Options{Mode: Auto}, wantNote: "zero-copy not available"},
		{name: "native/copy/need-wakeup", attach: link.XDPDriverMode, o: Options{Mode: Copy, NeedWakeup: true}},
		{name: "native/copy/busy-poll", attach: link.XDPDriverMode, o: Options{Mode: Copy, BusyPoll: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			u := newUMEM(t, 4096)
			x := l.attachRedirect(l.dut, l.d0, tc.attach)
			p := l.mustOpen(l.d0, u, tc.o)
			x.register(t, p)
			t.Logf("notes: %q", p.Notes())
			if p.ZeroCopy() {
				t.Errorf("ZeroCopy() = true on veth")
			}
			if tc.wantNote != "" && !strings.Contains(strings.Join(p.Notes(), "\n"), tc.wantNote) {
				t.Errorf("Notes() = %q, want one containing %q", p.Notes(), tc.wantNote)
			}
			if p.Name() != "tt-xsk-d0" {
				t.Errorf("Name() = %q", p.Name())
			}
			if got := u.Pool().InUse(); got != DefaultRingSize {
				t.Errorf("after Open: pool.InUse() = %d, want %d (fill ring primed)", got, DefaultRingSize)
			}

			g := l.packet(l.peer, l.g0)
			const n = 200
			sent := make([][]byte, n)
			for i := range sent {
				sent[i] = testFrame(t, macG0, macD0, i, 60+(i*37)%1440)
				g.send(t, sent[i])
			}
			next := 0
			got := recv(p, n, waitFor, func(f port.Frame) {
				seq := seqOf(f.Bytes())
				if seq != next {
					t.Errorf("frame seq %d, want %d", seq, next)
				}
				if seq >= 0 && seq < n && !bytes.Equal(f.Bytes(), sent[seq]) {
					t.Errorf("frame %d = %x, want %x", seq, f.Bytes(), sent[seq])
				}
				if f.Off != port.Headroom || len(f.Buf) != port.ChunkSize || f.TS == 0 {
					t.Errorf("frame %d: Off %d len(Buf) %d TS %d, want Off %d, len(Buf) %d, TS set",
						seq, f.Off, len(f.Buf), f.TS, port.Headroom, port.ChunkSize)
				}
				next = seq + 1
				u.Pool().Put(&f)
			})
			if got != n {
				t.Fatalf("received %d frames, want %d", got, n)
			}
			st, err := p.Stats()
			if err != nil {
				t.Fatalf("Stats: %v", err)
			}
			t.Logf("stats: %+v", st)
			if st.Received < n || st.RxDropped != 0 || st.RxRingFull != 0 {
				t.Errorf("Stats = %+v, want Received >= %d and no drops", st, n)
			}
			if err := p.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if got := u.Pool().InUse(); got != 0 {
				t.Errorf("after Close: pool.InUse() = %d, want 0", got)
			}
		})
	}
}

// TestReceiveTooLong: frames longer than port.MaxFrame but within a chunk
// are dropped by us; longer than the chunk by the kernel. Neither leaks.
func TestReceiveTooLong(t *testing.T) {
	l := newLab(t)
	// Native XDP on veth allows an MTU up to about 3.5 KB.
	setMTU(t, l.dut, "tt-xsk-d0", 2500)
	setMTU(t, l.peer, "tt-xsk-g0", 2500)
	u := newUMEM(t, 4096)
	x := l.attachRedirect(l.dut, l.d0, link.XDPDriverMode)
	p := l.mustOpen(l.d0, u, Options{Mode: Copy})
	x.register(t, p)
	g := l.packet(l.peer, l.g0)
	g.send(t, testFrame(t, macG0, macD0, 0, port.MaxFrame+1))                // ours to drop
	g.send(t, testFrame(t, macG0, macD0, 1, port.ChunkSize-port.Headroom+1)) // the kernel's
	g.send(t, testFrame(t, macG0, macD0, 2, port.MaxFrame))                  // fits
	got := recv(p, 1, waitFor, func(f port.Frame) {
		if seq := seqOf(f.Bytes()); seq != 2 || f.Len != port.MaxFrame {
			t.Errorf("received seq %d len %d, want seq 2 len %d", seq, f.Len, port.MaxFrame)
		}
		u.Pool().Put(&f)
	})
	if got != 1 {
		t.Fatalf("received %d frames, want 1", got)
	}
	st, err := p.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.RxTooLong != 1 || st.RxDropped != 1 {
		t.Errorf("Stats = %+v, want RxTooLong 1, RxDropped 1", st)
	}
	p.Close()
	if got := u.Pool().InUse(); got != 0 {
		t.Errorf("after Close: pool.InUse() = %d, want 0", got)
	}
}

func setMTU(t *testing.T, ns netns.NsHandle, name string, mtu int) {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Delete()
	lk, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetMTU(lk, mtu); err != nil {
		t.Fatalf("MTU %d on %s: %v", mtu, name, err)
	}
}

// TestZeroCopyRefused: veth has no AF_XDP zero-copy. Forcing it fails
// cleanly; Auto falls back to copy mode and says so.
func TestZeroCopyRefused(t *testing.T) {
	l := newLab(t)
	u := newUMEM(t, 4096)
	l.attachRedirect(l.dut, l.d0, link.XDPDriverMode)
	p, err := l.open(l.d0, u, Options{Mode: ZeroCopy})
	if err == nil {
		t.Logf("veth accepted XDP_ZEROCOPY on this kernel (ZeroCopy() = %v)", p.ZeroCopy())
		p.Close()
	} else {
		t.Logf("Open(ZeroCopy) = %v", err)
	}
	if got := u.Pool().InUse(); got != 0 {
		t.Errorf("after failed Open: pool.InUse() = %d, want 0", got)
	}
	p = l.mustOpen(l.d0, u, Options{Mode: Auto})
	t.Logf("Auto: ZeroCopy() = %v, notes %q", p.ZeroCopy(), p.Notes())
	if !p.ZeroCopy() && len(p.Notes()) == 0 {
		t.Errorf("Auto fell back to copy mode without a note")
	}
}

// txOffsets are frame starts within a chunk a transmitted frame may have:
// as received, after pushing an outer header, after pulling one, at the very
// start and flush with the end of the chunk.
func txOffset(i, size int) int {
	switch i % 5 {
	case 0:
		return port.Headroom
	case 1:
		return port.Headroom - 58
	case 2:
		return port.Headroom + 100
	case 3:
		return 0
	}
	return port.ChunkSize - size
}

func TestTransmit(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"copy", Options{Mode: Copy}},
		{"copy/need-wakeup", Options{Mode: Copy, NeedWakeup: true}},
		{"copy/tx-only", Options{Mode: Copy, NoRx: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t)
			u := newUMEM(t, 4096)
			p := l.mustOpen(l.d0, u, tc.o)
			held := u.Pool().InUse() // the fill ring's
			g := l.packet(l.peer, l.g0)
			const n = 300
			sent := make([][]byte, n)
			var b port.Batch
			queued := 0
			for i := range sent {
				size := 60 + (i*53)%1440
				sent[i] = testFrame(t, macD0, macG0, i, size)
				f, ok := u.Pool().Get()
				if !ok {
					t.Fatal("pool empty")
				}
				f.Off = txOffset(i, size)
				f.Len = copy(f.Buf[f.Off:], sent[i])
				b.Add(f)
				if b.Full() || i == n-1 {
					queued += p.Transmit(&b)
					if b.N != 0 {
						t.Fatalf("Transmit left b.N = %d", b.N)
					}
				}
			}
			if queued != n {
				t.Errorf("Transmit queued %d, want %d", queued, n)
			}
			got := g.capture(n, waitFor)
			if len(got) != n {
				t.Fatalf("captured %d frames, want %d", len(got), n)
			}
			for i, fr := range got {
				if !bytes.Equal(fr, sent[i]) {
					t.Errorf("frame %d = %x, want %x", i, fr, sent[i])
				}
			}
			drain(t, u.Pool(), held, p)
			if got := u.Pool().InUse(); got != held {
				t.Errorf("after completions: pool.InUse() = %d, want %d", got, held)
			}
			st, err := p.Stats()
			if err != nil {
				t.Fatalf("Stats: %v", err)
			}
			t.Logf("stats: %+v", st)
			if st.Transmitted != n || st.Completed != n || st.TxInvalidDescs != 0 {
				t.Errorf("Stats = %+v, want Transmitted = Completed = %d", st, n)
			}
		})
	}
}

// TestForwardSharedUMEM receives on d0 and transmits the same chunks on d1
// through one UMEM shared by both sockets: no copy, only descriptors move.
// An outer header is pushed in place first (Off != Headroom on TX).
func TestForwardSharedUMEM(t *testing.T) {
	l := newLab(t)
	u := newUMEM(t, 8192)
	x := l.attachRedirect(l.dut, l.d0, link.XDPDriverMode)
	in := l.mustOpen(l.d0, u, Options{Mode: Copy})
	x.register(t, in)
	out := l.mustOpen(l.d1, u, Options{Mode: Copy})
	if in.Shared() || !out.Shared() {
		t.Fatalf("Shared() = %v, %v, want false, true", in.Shared(), out.Shared())
	}
	g := l.packet(l.peer, l.g0)
	s := l.packet(l.peer, l.s0)

	// Stats is safe to call from another goroutine while the owner works.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			in.Stats()
			out.Stats()
			time.Sleep(100 * time.Microsecond)
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	const n = 500
	sent := make([][]byte, n)
	for i := range sent {
		sent[i] = testFrame(t, macG0, macD0, i, 60+(i*29)%1400)
	}
	mem := u.Pool().Mem()
	outer := []byte{2, 0, 0, 0, 1, 2, 2, 0, 0, 0, 1, 1, 0x88, 0xb5} // s0 ← d1, local experimental EtherType
	var tx port.Batch
	fwd, got := 0, 0
	deadline := time.Now().Add(waitFor)
	for i := 0; got < n && time.Now().Before(deadline); {
		for ; i < n && i < got+256; i++ { // keep at most 256 in flight
			g.send(t, sent[i])
		}
		var rx port.Batch
		if in.Receive(&rx) == 0 {
			in.Poll(time.Millisecond)
		}
		for _, f := range rx.Frames() {
			if seqOf(f.Bytes()) < 0 {
				u.Pool().Put(&f)
				continue
			}
			got++
			if &f.Buf[0] != &mem[int(f.ID)*port.ChunkSize] {
				t.Fatalf("frame %d is not chunk %d of the UMEM", seqOf(f.Bytes()), f.ID)
			}
			copy(f.Push(len(outer)), outer)
			tx.Add(f)
		}
		fwd += out.Transmit(&tx)
	}
	if got != n || fwd != n {
		t.Fatalf("received %d, forwarded %d, want %d", got, fwd, n)
	}
	cap := s.capture(n, waitFor)
	if len(cap) != n {
		t.Fatalf("captured %d frames on s0, want %d", len(cap), n)
	}
	for i, fr := range cap {
		want := append(bytes.Clone(outer), sent[i]...)
		if !bytes.Equal(fr, want) {
			t.Errorf("s0 frame %d = %x, want %x", i, fr, want)
		}
	}
	// Both sockets have an rx ring, so both keep a full fill ring.
	drain(t, u.Pool(), 2*DefaultRingSize, out)
	if got := u.Pool().InUse(); got != 2*DefaultRingSize {
		t.Errorf("pool.InUse() = %d, want %d (the fill rings)", got, 2*DefaultRingSize)
	}
	ist, _ := in.Stats()
	ost, _ := out.Stats()
	t.Logf("in: %+v", ist)
	t.Logf("out: %+v", ost)
}

// TestFillRingRefill pushes many more frames than the fill ring holds
// through a 64-entry fill ring: Receive must keep it topped up.
func TestFillRingRefill(t *testing.T) {
	l := newLab(t)
	u := newUMEM(t, 256)
	x := l.attachRedirect(l.dut, l.d0, link.XDPDriverMode)
	p := l.mustOpen(l.d0, u, Options{Mode: Copy, FillSize: 64, RxSize: 64})
	x.register(t, p)
	if got := u.Pool().InUse(); got != 64 {
		t.Errorf("pool.InUse() = %d, want 64 on the fill ring", got)
	}
	g := l.packet(l.peer, l.g0)
	const n, burst = 2048, 32
	next := 0
	for i := 0; i < n; i += burst {
		for j := i; j < i+burst; j++ {
			g.send(t, testFrame(t, macG0, macD0, j, 128))
		}
		got := recv(p, burst, waitFor, func(f port.Frame) {
			if seq := seqOf(f.Bytes()); seq != next {
				t.Errorf("frame seq %d, want %d", seq, next)
			}
			next++
			u.Pool().Put(&f)
		})
		if got != burst {
			st, _ := p.Stats()
			t.Fatalf("burst at %d: received %d of %d; stats %+v", i, got, burst, st)
		}
	}
	st, _ := p.Stats()
	t.Logf("stats: %+v", st)
	if st.Received < n || st.RxDropped != 0 {
		t.Errorf("Stats = %+v, want Received >= %d, no drops", st, n)
	}
	if got := u.Pool().InUse(); got != 64 {
		t.Errorf("pool.InUse() = %d, want 64 on the fill ring", got)
	}
}

// TestTxRingFull: frames beyond the tx ring's free slots go back to the
// pool and are counted; frames stuck on the ring (device down) go out once
// it is up again.
func TestTxRingFull(t *testing.T) {
	l := newLab(t)
	u := newUMEM(t, 512)
	p := l.mustOpen(l.d0, u, Options{Mode: Copy, NoRx: true, TxSize: 16, CompSize: 16})
	g := l.packet(l.peer, l.g0)
	pool := u.Pool()
	fill := func(b *port.Batch, first, k int) {
		for i := first; i < first+k; i++ {
			f, _ := pool.Get()
			f.Len = copy(f.Buf[f.Off:], testFrame(t, macD0, macG0, i, 100))
			b.Add(f)
		}
	}
	var b port.Batch
	fill(&b, 0, 64)
	if got := p.Transmit(&b); got != 16 {
		t.Errorf("Transmit(64) on a 16-entry ring = %d, want 16", got)
	}
	if cap := g.capture(16, waitFor); len(cap) != 16 {
		t.Errorf("captured %d, want 16", len(cap))
	}
	drain(t, pool, 0, p)
	st, _ := p.Stats()
	if st.TxFull != 48 || pool.InUse() != 0 {
		t.Errorf("TxFull = %d, pool.InUse() = %d, want 48, 0", st.TxFull, pool.InUse())
	}

	// Device down: sendto fails with ENETDOWN, descriptors stay on the ring.
	if err := l.setLink(l.dut, "tt-xsk-d0", false); err != nil {
		t.Fatal(err)
	}
	fill(&b, 100, 16)
	if got := p.Transmit(&b); got != 16 {
		t.Errorf("Transmit(16) with the device down = %d, want 16 queued", got)
	}
	fill(&b, 200, 8)
	if got := p.Transmit(&b); got != 0 {
		t.Errorf("Transmit(8) on a full ring = %d, want 0", got)
	}
	if got := pool.InUse(); got != 16 {
		t.Errorf("pool.InUse() = %d, want 16 (on the tx ring)", got)
	}
	if err := l.setLink(l.dut, "tt-xsk-d0", true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // carrier
	p.Flush()
	cap := g.capture(16, waitFor)
	if len(cap) != 16 {
		t.Fatalf("after the device came up: captured %d, want 16", len(cap))
	}
	for i, fr := range cap {
		if seqOf(fr) != 100+i {
			t.Errorf("frame %d has seq %d, want %d", i, seqOf(fr), 100+i)
		}
	}
	drain(t, pool, 0, p)
	st, _ = p.Stats()
	t.Logf("stats: %+v", st)
	if st.TxFull != 56 || pool.InUse() != 0 {
		t.Errorf("TxFull = %d, pool.InUse() = %d, want 56, 0", st.TxFull, pool.InUse())
	}
}

// TestStatsOneRing: Stats works on sockets without an rx or a tx ring.
func TestStatsOneRing(t *testing.T) {
	l := newLab(t)
	u := newUMEM(t, 4096)
	txOnly := l.mustOpen(l.d0, u, Options{Mode: Copy, NoRx: true})
	rxOnly := l.mustOpen(l.d1, u, Options{Mode: Copy, NoTx: true})
	for _, p := range []*Port{txOnly, rxOnly} {
		if _, err := p.Stats(); err != nil {
			t.Errorf("%s: Stats: %v", p.Name(), err)
		}
	}
	var b port.Batch
	if n := txOnly.Receive(&b); n != 0 {
		t.Errorf("Receive on a tx-only port = %d", n)
	}
	f, _ := u.Pool().Get()
	f.Len = 60
	b.Add(f)
	if n := rxOnly.Transmit(&b); n != 0 || b.N != 0 {
		t.Errorf("Transmit on an rx-only port = %d (b.N %d), want 0, 0", n, b.N)
	}
	if got := u.Pool().InUse(); got != DefaultRingSize {
		t.Errorf("pool.InUse() = %d, want %d (the rx-only port's fill ring)", got, DefaultRingSize)
	}
	txOnly.Close()
	if _, err := txOnly.Stats(); !errors.Is(err, ErrClosed) {
		t.Errorf("Stats after Close = %v, want ErrClosed", err)
	}
}

// TestClose: Close takes back every chunk in the kernel's rings (fill, rx,
// tx) and leaves the ones the worker holds; Close is idempotent; the UMEM
// can be registered again once every socket is gone.
func TestClose(t *testing.T) {
	l := newLab(t)
	u := newUMEM(t, 4096)
	pool := u.Pool()
	x := l.attachRedirect(l.dut, l.d0, link.XDPDriverMode)
	in := l.mustOpen(l.d0, u, Options{Mode: Copy})
	x.register(t, in)
	out := l.mustOpen(l.d1, u, Options{Mode: Copy, NoRx: true, TxSize: 64})
	g := l.packet(l.peer, l.g0)
	for i := 0; i < 50; i++ {
		g.send(t, testFrame(t, macG0, macD0, i, 200))
	}
	// Hold 10 frames; leave the rest on the rx ring.
	var held []port.Frame
	var b port.Batch
	deadline := time.Now().Add(waitFor)
	for in.rx.avail(64) < 50 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	in.Receive(&b)
	held = append(held, b.F[:10]...)
	// Put the next 20 on out's tx ring with d1 down so they stay there.
	if err := l.setLink(l.dut, "tt-xsk-d1", false); err != nil {
		t.Fatal(err)
	}
	var tx port.Batch
	for _, f := range b.F[10:30] {
		tx.Add(f)
	}
	if got := out.Transmit(&tx); got != 20 {
		t.Errorf("Transmit = %d, want 20", got)
	}
	for _, f := range b.F[30:b.N] {
		pool.Put(&f)
	}
	if err := u.Close(); err == nil {
		t.Errorf("UMEM.Close with open ports = nil, want an error")
	}
	for _, p := range []*Port{in, out, in} {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if got := pool.InUse(); got != len(held) {
		t.Errorf("after Close: pool.InUse() = %d, want %d (held by the test)", got, len(held))
	}
	for _, f := range held {
		pool.Put(&f)
	}
	if got := pool.InUse(); got != 0 {
		t.Errorf("pool.InUse() = %d, want 0", got)
	}
	// A new first socket registers the UMEM again.
	again := l.mustOpen(l.d0, u, Options{Mode: Copy})
	if again.Shared() {
		t.Errorf("socket opened after all others closed is Shared()")
	}
	x.register(t, again)
	g.send(t, testFrame(t, macG0, macD0, 7, 100))
	if got := recv(again, 1, waitFor, func(f port.Frame) { pool.Put(&f) }); got != 1 {
		t.Errorf("received %d frames on the re-registered UMEM, want 1", got)
	}
}

func TestOpenErrors(t *testing.T) {
	l := newLab(t)
	u := newUMEM(t, 4096)
	p := l.mustOpen(l.d0, u, Options{Mode: Copy})
	for _, tc := range []struct {
		name    string
		ifindex int
		o       Options
		want    error
	}{
		{"same queue", l.d0, Options{}, ErrQueueInUse},
		{"mode mismatch", l.d1, Options{Mode: ZeroCopy}, ErrMode},
		{"ring size", l.d1, Options{RxSize: 1000}, nil},
		{"no ring", l.d1, Options{NoRx: true, NoTx: true}, nil},
		{"no such interface", 99999, Options{}, nil},
		{"no such queue", l.d1, Options{Queue: 7}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inUse := u.Pool().InUse()
			q, err := l.open(tc.ifindex, u, tc.o)
			if err == nil {
				q.Close()
				t.Fatalf("Open(%d, %+v) = nil error", tc.ifindex, tc.o)
			}
			t.Logf("Open(%d, %+v) = %v", tc.ifindex, tc.o, err)
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Open(%d, %+v) = %v, want %v", tc.ifindex, tc.o, err, tc.want)
			}
			if got := u.Pool().InUse(); got != inUse {
				t.Errorf("failed Open changed pool.InUse() from %d to %d", inUse, got)
			}
			if u.nopen != 1 {
				t.Errorf("failed Open left %d ports open, want 1", u.nopen)
			}
		})
	}
	p.Close()
	closed := newUMEM(t, 16)
	closed.Close()
	if _, err := l.open(l.d0, closed, Options{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Open on a closed UMEM = %v, want ErrClosed", err)
	}
}

// TestAllocs: a batch through Receive and Transmit allocates nothing. The
// peer reflects every frame (XDP_TX), so frames circulate d0 → g0 → d0.
func TestAllocs(t *testing.T) {
	l := newLab(t)
	u := newUMEM(t, 4096)
	x := l.attachRedirect(l.dut, l.d0, link.XDPDriverMode)
	l.attachReflector(l.peer, l.g0)
	p := l.mustOpen(l.d0, u, Options{Mode: Copy})
	x.register(t, p)
	var b port.Batch
	for i := 0; i < port.BatchSize; i++ {
		f, _ := u.Pool().Get()
		f.Len = copy(f.Buf[f.Off:], testFrame(t, macD0, macG0, i, 128))
		b.Add(f)
	}
	p.Transmit(&b)
	moved := 0
	allocs := testing.AllocsPerRun(500, func() {
		p.Receive(&b)
		moved += p.Transmit(&b)
	})
	if allocs != 0 {
		t.Errorf("Receive+Transmit: %v allocations per batch, want 0", allocs)
	}
	if moved == 0 {
		t.Errorf("no frame moved during the measurement")
	}
	t.Logf("%d frames moved in 501 rounds", moved)
}

// TestKickAt: with Options.KickAt, frames wait on the tx ring (copy mode
// sends only on sendto) until KickAt of them are there or Flush is called,
// and then leave in order.
func TestKickAt(t *testing.T) {
	l := newLab(t)
	u := newUMEM(t, 4096)
	p := l.mustOpen(l.d0, u, Options{Mode: Copy, KickAt: 32})
	held := u.Pool().InUse()
	g := l.packet(l.peer, l.g0)
	seq := 0
	send := func(n int) {
		t.Helper()
		var b port.Batch
		for range n {
			f, ok := u.Pool().Get()
			if !ok {
				t.Fatal("pool empty")
			}
			fr := testFrame(t, macD0, macG0, seq, 100)
			seq++
			f.Len = copy(f.Buf[f.Off:], fr)
			b.Add(f)
		}
		if got := p.Transmit(&b); got != n {
			t.Fatalf("Transmit(%d) = %d", n, got)
		}
	}
	expect := func(what string, from, n int) {
		t.Helper()
		got := g.capture(n+1, 200*time.Millisecond) // n+1: see that no more come
		if len(got) != n {
			t.Fatalf("%s: %d frames left, want %d", what, len(got), n)
		}
		for i, fr := range got {
			if s := seqOf(fr); s != from+i {
				t.Errorf("%s: frame %d has seq %d, want %d", what, i, s, from+i)
			}
		}
	}
	kicks := func() uint64 {
		st, err := p.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st.Kicks
	}

	send(5)
	expect("5 frames below KickAt", 0, 0)
	if k := kicks(); k != 0 {
		t.Errorf("%d sendto calls for 5 frames below KickAt, want 0", k)
	}
	send(27) // 32 waiting: this Transmit kicks
	expect("reaching KickAt", 0, 32)
	send(3)
	expect("3 more", 0, 0)
	p.Flush()
	expect("after Flush", 32, 3)
	st, _ := p.Stats()
	if st.Deferred != 2 || st.Transmitted != 35 {
		t.Errorf("Deferred = %d, Transmitted = %d, want 2, 35", st.Deferred, st.Transmitted)
	}
	drain(t, u.Pool(), held, p)
}
