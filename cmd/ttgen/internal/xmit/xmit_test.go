package xmit

import (
	"bytes"
	"context"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/tunterm/tunterm/cmd/ttgen/internal/traffic"
	"github.com/tunterm/tunterm/control/config"
)

func testSet(t testing.TB, dir traffic.Dir) *traffic.Set {
	t.Helper()
	var b bytes.Buffer
	if err := traffic.WriteConfig(&b, traffic.Shape{Tunnels: 5, MACs: 2, Address: "198.18.0.1/15", DownIf: "d", UpIf: "u"}); err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	s, err := traffic.Build(c, traffic.Options{Dir: dir, Size: traffic.Size{IMIX: true}, MACs: 2})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fake counts what it is asked to send.
type fake struct {
	batch  int
	frames int
	bytes  uint64
	seen   map[int]bool
	next   int
}

func (f *fake) Batch(rate float64) int { return f.batch }
func (f *fake) Close() error {
	return nil
}
func (f *fake) Send(set *traffic.Set, max int) (int, uint64, error) {
	n := min(max, f.batch)
	var b uint64
	for range n {
		if f.seen != nil {
			f.seen[f.next] = true
		}
		b += uint64(len(set.Frame(f.next)))
		f.next = (f.next + 1) % set.Len()
	}
	f.frames += n
	f.bytes += b
	return n, b, nil
}

func TestLoopCyclesAllFrames(t *testing.T) {
	set := testSet(t, traffic.Down)
	f := &fake{batch: 7, seen: map[int]bool{}}
	var stop atomic.Bool
	r, err := loop(f, set, Options{Frames: uint64(3 * set.Len())}, &Progress{}, &stop)
	if err != nil {
		t.Fatal(err)
	}
	if r.Frames != uint64(3*set.Len()) || len(f.seen) != set.Len() {
		t.Errorf("loop sent %d frames covering %d of %d distinct frames, want %d covering all",
			r.Frames, len(f.seen), set.Len(), 3*set.Len())
	}
	if r.Bytes != 3*set.Bytes {
		t.Errorf("loop counted %d bytes, want %d", r.Bytes, 3*set.Bytes)
	}
}

func TestLoopAllocs(t *testing.T) {
	set := testSet(t, traffic.Up)
	f := &fake{batch: 64}
	var stop atomic.Bool
	prog := &Progress{}
	if a := testing.AllocsPerRun(20, func() {
		if _, err := loop(f, set, Options{Frames: 10000}, prog, &stop); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("loop allocates %v times per run of 10000 frames, want 0", a)
	}
}

// TestPacedRate checks the pacer's arithmetic with loose bounds (a rate
// goal would belong in a benchmark; this is about not being off by 10x).
func TestPacedRate(t *testing.T) {
	set := testSet(t, traffic.Up)
	f := &fake{batch: 64}
	r, err := Run(context.Background(), f, set, Options{Rate: 20000, Duration: 300 * time.Millisecond, CPU: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pps := r.PPS(); pps < 14000 || pps > 26000 {
		t.Errorf("paced at 20000 pps, sent %d frames in %.3f s = %.0f pps", r.Frames, r.Seconds, pps)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING: needs root (raw sockets, BPF)")
	}
}

func loIndex(t *testing.T) int {
	ifi, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("SKIPPING: no lo: %v", err)
	}
	return ifi.Index
}

func TestAFPacketSendAllocs(t *testing.T) {
	needRoot(t)
	s, err := NewAFPacket(loIndex(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	set := testSet(t, traffic.Up)
	var total int
	if a := testing.AllocsPerRun(50, func() {
		n, _, err := s.Send(set, AFPacketBatch)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}); a != 0 {
		t.Errorf("AFPacket.Send allocates %v times per batch, want 0", a)
	}
	if total == 0 {
		t.Error("AFPacket.Send sent nothing on lo")
	}
}

// xdpDrop is a generator whose program drops the frame it built instead
// of redirecting it: the same BPF_PROG_RUN path, no device needed.
func xdpDrop(t *testing.T, set *traffic.Set, repeat int) *XDP {
	t.Helper()
	needRoot(t)
	s, err := newXDP(set, repeat, asm.Instructions{asm.Mov.Imm(asm.R0, 1), asm.Return()})
	if err != nil {
		t.Skipf("SKIPPING: cannot load the XDP generator: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestXDPSendCounts(t *testing.T) {
	set := testSet(t, traffic.Up)
	s := xdpDrop(t, set, 16)
	if _, _, err := s.Send(set, 4); err != nil {
		t.Skipf("SKIPPING: BPF_PROG_RUN live frames unavailable: %v", err)
	}
	var frames, bytes uint64
	if a := testing.AllocsPerRun(50, func() {
		n, b, err := s.Send(set, 100) // capped at repeat = 16
		if err != nil {
			t.Fatal(err)
		}
		frames += uint64(n)
		bytes += b
	}); a != 0 {
		t.Errorf("XDP.Send allocates %v times per call, want 0", a)
	}
	const calls = 51 // AllocsPerRun's warm-up run + 50
	if frames != calls*16 || s.total != 4+calls*16 {
		t.Errorf("XDP.Send counted %d frames (counter %d), want %d (%d)", frames, s.total, calls*16, 4+calls*16)
	}
	var want uint64
	for i := 4; i < 4+calls*16; i++ {
		want += uint64(len(set.Frame(i % set.Len())))
	}
	if bytes != want {
		t.Errorf("XDP.Send counted %d bytes, want %d", bytes, want)
	}
}

// TestXDPBuildsFrames runs the generator program without live frames, one
// frame per run, and compares each output with the set: the program picks
// the next frame, trims the template to its length and copies it in.
func TestXDPBuildsFrames(t *testing.T) {
	set := testSet(t, traffic.Down)
	s := xdpDrop(t, set, 1)
	for i := range set.Len() + 3 {
		o := &ebpf.RunOptions{Data: s.tmpl, DataOut: make([]byte, 4096)}
		ret, err := s.prog.Run(o)
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if ret != 1 {
			t.Fatalf("run %d returned %d, want XDP_DROP (1): the program aborted", i, ret)
		}
		if want := set.Frame(i % set.Len()); !bytes.Equal(o.DataOut, want) {
			t.Fatalf("run %d built %x, want frame %d %x", i, o.DataOut, i%set.Len(), want)
		}
	}
	if got := s.counter(); got != uint64(set.Len()+3) {
		t.Errorf("counter = %d after %d runs", got, set.Len()+3)
	}
}
