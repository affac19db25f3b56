package esp

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tunterm/tunterm/dataplane/stats"
)

// windowModel is the obviously-correct reference: a set of seen numbers.
type windowModel struct {
	top  uint64
	size uint64
	seen map[uint64]bool
}

func (m *windowModel) check(seq uint64) bool {
	if seq == 0 || m.seen[seq] {
		return false
	}
	return seq > m.top || m.top-seq < m.size
}

func (m *windowModel) update(seq uint64) {
	m.seen[seq] = true
	m.top = max(m.top, seq)
}

// TestWindowModel drives the ring window and the map model with the same
// random sequence numbers — mostly near the top, some jumps, some far
// behind — and with random "integrity failures" that skip the update.
func TestWindowModel(t *testing.T) {
	for _, size := range []int{64, 128, 1024, 4032, 4096} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(size), 99))
			w := newWindow(size)
			m := &windowModel{size: uint64(size), seen: map[uint64]bool{}}
			for i := range 200000 {
				var seq uint64
				switch r := rng.IntN(100); {
				case r < 60: // around the top
					seq = m.top + uint64(rng.IntN(2*size+10)) - uint64(min(m.top, uint64(size)+5))
				case r < 70: // jump ahead
					seq = m.top + uint64(rng.IntN(20*size))
				case r < 75:
					seq = m.top + 1
				case r < 80:
					seq = 0
				default: // anything at or below the top
					seq = rng.Uint64N(m.top + 1)
				}
				got, want := w.check(seq), m.check(seq)
				if got != want {
					t.Fatalf("step %d: check(%d) with top %d = %v, want %v", i, seq, m.top, got, want)
				}
				if got && rng.IntN(10) != 0 { // 10%: integrity failed, no update
					w.update(seq)
					m.update(seq)
				}
				if w.top != m.top {
					t.Fatalf("step %d: top %d, want %d", i, w.top, m.top)
				}
			}
		})
	}
}

// TestReplaySA covers the window through Open: duplicates and packets left
// of the window are Replay, reordering inside the window is accepted, and a
// packet that fails its integrity check does not move the window.
func TestReplaySA(t *testing.T) {
	for _, s := range []suite{{AESGCM256, IntegNone}, {AESCBC128, HMACSHA256_128}} {
		for _, size := range []int{64, 1024, 4096} {
			t.Run(fmt.Sprintf("%s/%d", s, size), func(t *testing.T) {
				cfg := testConfig(s, false, 3)
				cfg.ReplayWindow = size
				tx, rx := mustSA(t, cfg), mustSA(t, cfg)
				total := size + 200
				pkts := make([][]byte, total+1) // pkts[seq]
				for seq := 1; seq <= total; seq++ {
					pkts[seq] = sealCopy(t, tx, pattern(seq%50, byte(seq)), 4)
				}
				open := func(seq int) stats.Reason {
					_, _, r := rx.Open(bytes.Clone(pkts[seq]))
					return r
				}
				// Newest first, then the rest of the window backwards.
				top := size + 100
				if r := open(top); r != stats.OK {
					t.Fatalf("Open(seq %d) = %v, want ok", top, r)
				}
				for seq := top - 1; seq > top-size; seq-- {
					if r := open(seq); r != stats.OK {
						t.Fatalf("Open(seq %d, top %d) = %v, want ok", seq, top, r)
					}
				}
				// Left edge: top-size+1 was accepted above; top-size is out.
				if r := open(top - size); r != stats.Replay {
					t.Errorf("Open(seq %d, top %d, window %d) = %v, want %v", top-size, top, size, r, stats.Replay)
				}
				if r := open(1); r != stats.Replay {
					t.Errorf("Open(seq 1, top %d) = %v, want %v", top, r, stats.Replay)
				}
				// Duplicates.
				for _, seq := range []int{top, top - 1, top - size + 1} {
					if r := open(seq); r != stats.Replay {
						t.Errorf("Open(duplicate seq %d) = %v, want %v", seq, r, stats.Replay)
					}
				}
				// A forged packet far ahead must not slide the window.
				forged := bytes.Clone(pkts[total])
				forged[len(forged)-1] ^= 1
				if _, _, r := rx.Open(forged); r != stats.Integrity {
					t.Fatalf("Open(forged seq %d) = %v, want %v", total, r, stats.Integrity)
				}
				if rx.St.win.top != uint64(top) {
					t.Fatalf("window top %d after forged packet, want %d", rx.St.win.top, top)
				}
				// ... so the genuine one is still new.
				if r := open(total); r != stats.OK {
					t.Errorf("Open(seq %d) after forgery = %v, want ok", total, r)
				}
				if got, want := rx.St.ReplayErrors.Load(), uint64(5); got != want {
					t.Errorf("ReplayErrors = %d, want %d", got, want)
				}
			})
		}
	}
}

// TestReplayNoESN: without ESN the window is plain 32-bit, big jumps work,
// sequence number 0 is never accepted.
func TestReplayNoESN(t *testing.T) {
	tx, rx := pair(t, suite{AESGCM128, IntegNone}, false)
	seal := func(seq uint64) []byte {
		tx.setNextSeq(seq)
		return sealCopy(t, tx, []byte("x"), 4)
	}
	steps := []struct {
		seq  uint64
		want stats.Reason
	}{
		{1, stats.OK},
		{1_000_000, stats.OK},
		{999_990, stats.OK},
		{5, stats.Replay},
		{1<<32 - 1, stats.OK},
		{1<<32 - 64, stats.OK},
		{1<<32 - 65, stats.Replay},
	}
	for _, s := range steps {
		pkt := seal(s.seq)
		if _, _, r := rx.Open(pkt); r != s.want {
			t.Errorf("Open(seq %d) = %v, want %v", s.seq, r, s.want)
		}
	}
	pkt := seal(7)
	pkt[4], pkt[5], pkt[6], pkt[7] = 0, 0, 0, 0
	if _, _, r := rx.Open(pkt); r != stats.Replay {
		t.Errorf("Open(seq 0) = %v, want %v", r, stats.Replay)
	}
}

// TestESNWrap sends across the 2^32 boundary with ESN: the receiver infers
// the high bits (RFC 4303 Appendix A), also for packets reordered across the
// boundary, and the ICV/AAD covers them.
func TestESNWrap(t *testing.T) {
	for _, s := range []suite{{AESGCM128, IntegNone}, {ChaCha20Poly1305, IntegNone},
		{AESCTR128, HMACSHA1_96}, {AESCTR256, HMACSHA384_192}, {AESCBC256, HMACSHA512_256}} {
		t.Run(s.String(), func(t *testing.T) {
			tx, rx := pair(t, s, true)
			const base = 1<<32 - 3
			tx.setNextSeq(base)
			rx.setReplayTop(base - 10)
			var pkts [][]byte
			for range 7 { // base .. base+6 = 2^32+3
				pkts = append(pkts, sealCopy(t, tx, []byte("wrap"), 4))
			}
			if seql := pkts[3][4:8]; !bytes.Equal(seql, []byte{0, 0, 0, 0}) {
				t.Fatalf("seq 2^32 sent as %x, want low 32 bits 0", seql)
			}
			for _, i := range []int{4, 0, 1, 6, 2, 3, 5} {
				if _, _, r := rx.Open(bytes.Clone(pkts[i])); r != stats.OK {
					t.Fatalf("Open(seq 2^32%+d) = %v, want ok", i-3, r)
				}
			}
			if rx.St.win.top != 1<<32+3 {
				t.Errorf("window top %#x, want %#x", rx.St.win.top, uint64(1<<32+3))
			}
			for i := range pkts {
				if _, _, r := rx.Open(bytes.Clone(pkts[i])); r != stats.Replay {
					t.Errorf("Open(duplicate seq 2^32%+d) = %v, want %v", i-3, r, stats.Replay)
				}
			}
			// The same bytes with a receiver that infers a high half of 0
			// (fresh window: seq 2 is simply new) must fail the ICV.
			fresh := mustSA(t, testConfig(s, true, 7))
			if _, _, r := fresh.Open(bytes.Clone(pkts[5])); r != stats.Integrity {
				t.Errorf("Open(seq 2^32+2) with seq_hi 0 = %v, want %v", r, stats.Integrity)
			}
		})
	}
}

// TestInferSeq pins the RFC 4303 Appendix A2.2 cases.
func TestInferSeq(t *testing.T) {
	tests := []struct {
		top    uint64
		seql   uint32
		want   uint64
		wantOK bool
	}{
		{0, 1, 1, true},                                   // case B, fresh SA
		{0, 0xffffffff, 0, false},                         // case B, before the SA's start
		{10, 5, 5, true},                                  // case B, in window
		{1<<32 + 10, 0xfffffff0, 0xfffffff0, true},        // case B, previous subspace
		{1<<32 + 10, 20, 1<<32 + 20, true},                // case B, same subspace
		{1<<32 + 1000, 1000 - 63, 1<<32 + 937, true},      // case A, window bottom
		{1<<32 + 1000, 1000 - 64, 2<<32 + 936, true},      // case A, left of window: next subspace
		{0x87654320ffffffff, 0, 0x8765432100000000, true}, // case A, wrap
		{0xfffffffffffffff0, 5, 0, false},                 // case A, 64-bit space exhausted
		{0xfffffffffffffff0, 0xfffffff8, 1<<64 - 8, true}, // case A
		{1<<32 - 1, 0, 1 << 32, true},                     // case A, exactly at the wrap
		{62, 0xffffffff, 0, false},                        // case B, th=0
		{1<<32 + 62, 0xffffffff, 0xffffffff, true},        // case B, bottom edge
		{1<<32 + 62, 0xfffffffe, 0x1fffffffe, true},       // case B, left of window: same subspace
	}
	w := newWindow(64)
	for _, tc := range tests {
		w.reset(tc.top)
		got, ok := w.inferSeq(tc.seql)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("inferSeq(%#x) with top %#x = %#x, %v, want %#x, %v", tc.seql, tc.top, got, ok, tc.want, tc.wantOK)
		}
	}
}

// TestSeqOverflow: without ESN the last sequence number is 2^32-1 and Seal
// refuses afterwards for good; with ESN it continues past 2^32 and stops
// after 2^64-1.
func TestSeqOverflow(t *testing.T) {
	t.Run("no ESN", func(t *testing.T) {
		tx, rx := pair(t, suite{AESGCM256, IntegNone}, false)
		tx.setNextSeq(1<<32 - 1)
		pkt := sealCopy(t, tx, []byte("last"), 4)
		if !bytes.Equal(pkt[4:8], []byte{0xff, 0xff, 0xff, 0xff}) {
			t.Fatalf("last packet seq %x, want ffffffff", pkt[4:8])
		}
		if _, _, r := rx.Open(pkt); r != stats.OK {
			t.Fatalf("Open(seq 2^32-1) = %v, want ok", r)
		}
		if !tx.St.Overflow.Load() || !tx.St.RekeyNeeded.Load() {
			t.Errorf("Overflow, RekeyNeeded = %v, %v after the last number, want true, true",
				tx.St.Overflow.Load(), tx.St.RekeyNeeded.Load())
		}
		buf := make([]byte, 100)
		for i := range 3 {
			if _, _, r := tx.Seal(buf, tx.HeaderLen(), 10, 4); r != stats.SeqOverflow {
				t.Fatalf("Seal #%d after 2^32-1 = %v, want %v", i, r, stats.SeqOverflow)
			}
		}
		if !bytes.Equal(buf, make([]byte, 100)) {
			t.Error("refused Seal wrote into the buffer")
		}
		if got := tx.St.OverflowErrors.Load(); got != 3 {
			t.Errorf("OverflowErrors = %d, want 3", got)
		}
	})
	t.Run("ESN", func(t *testing.T) {
		for _, s := range []suite{{AESGCM128, IntegNone}, {AESCBC128, HMACSHA256_128}} {
			tx, rx := pair(t, s, true)
			tx.setNextSeq(1<<32 - 1)
			rx.setReplayTop(1<<32 - 2)
			for i := range 3 {
				pkt := sealCopy(t, tx, []byte("esn"), 4)
				if _, _, r := rx.Open(pkt); r != stats.OK {
					t.Fatalf("%s: Open(seq 2^32%+d) = %v, want ok", s, i-1, r)
				}
			}
			if rx.St.win.top != 1<<32+1 || tx.St.Overflow.Load() {
				t.Errorf("%s: top %#x, overflow %v", s, rx.St.win.top, tx.St.Overflow.Load())
			}
			tx.setNextSeq(1<<64 - 1)
			sealCopy(t, tx, []byte("last"), 4)
			buf := make([]byte, 100)
			if _, _, r := tx.Seal(buf, tx.HeaderLen(), 10, 4); r != stats.SeqOverflow {
				t.Errorf("%s: Seal after 2^64-1 = %v, want %v", s, r, stats.SeqOverflow)
			}
		}
	})
}

// TestLifetimes: soft limits raise RekeyNeeded once, hard limits stop the SA
// in both directions.
func TestLifetimes(t *testing.T) {
	tests := []struct {
		name                 string
		soft, hard           func(*Config)
		softAfter, hardAfter int // packets of 100 bytes
	}{
		{"packets", func(c *Config) { c.SoftPackets = 3 }, func(c *Config) { c.HardPackets = 5 }, 3, 5},
		{"bytes", func(c *Config) { c.SoftBytes = 250 }, func(c *Config) { c.HardBytes = 401 }, 3, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(suite{AESGCM128, IntegNone}, false, 1)
			tc.soft(&cfg)
			tc.hard(&cfg)
			tx, rx := mustSA(t, cfg), mustSA(t, cfg)
			for i := 1; i <= 7; i++ {
				buf := make([]byte, 200)
				start, end, r := tx.Seal(buf, tx.HeaderLen(), 100, 4)
				wantR := stats.OK
				if i > tc.hardAfter {
					wantR = stats.SAExpired
				}
				if r != wantR {
					t.Fatalf("Seal #%d = %v, want %v", i, r, wantR)
				}
				if r == stats.OK {
					if _, _, r := rx.Open(buf[start:end]); r != stats.OK {
						t.Fatalf("Open #%d = %v, want ok", i, r)
					}
				}
				for _, st := range []*State{tx.St, rx.St} {
					if got, want := st.RekeyNeeded.Load(), i >= tc.softAfter; got != want {
						t.Errorf("after %d packets RekeyNeeded = %v, want %v", i, got, want)
					}
					if got, want := st.Expired.Load(), i >= tc.hardAfter; got != want {
						t.Errorf("after %d packets Expired = %v, want %v", i, got, want)
					}
				}
			}
			// The receiver refuses too, before looking at the packet.
			tx2 := mustSA(t, testConfig(suite{AESGCM128, IntegNone}, false, 1))
			tx2.setNextSeq(100)
			if _, _, r := rx.Open(sealCopy(t, tx2, []byte("late"), 4)); r != stats.SAExpired {
				t.Errorf("Open on expired SA = %v, want %v", r, stats.SAExpired)
			}
			if tx.St.ExpiredErrors.Load() != 2 || rx.St.ExpiredErrors.Load() != 1 {
				t.Errorf("ExpiredErrors = %d, %d, want 2, 1", tx.St.ExpiredErrors.Load(), rx.St.ExpiredErrors.Load())
			}
		})
	}
}

// TestCounterReaders: the owning worker runs Seal and Open while other
// goroutines read the counters and flags — the documented contract, which
// -race checks.
func TestCounterReaders(t *testing.T) {
	tx, rx := pair(t, suite{AESGCM128, IntegNone}, false)
	done := make(chan struct{})
	var readers [2]chan uint64
	for i := range readers {
		readers[i] = make(chan uint64)
		go func(out chan<- uint64) {
			var sum uint64
			for {
				select {
				case <-done:
					out <- sum
					return
				default:
				}
				for _, st := range []*State{tx.St, rx.St} {
					sum += st.Packets.Load() + st.Bytes.Load() + st.ReplayErrors.Load() + st.IntegrityErrors.Load()
					if st.RekeyNeeded.Load() || st.Expired.Load() || st.Overflow.Load() {
						sum++
					}
				}
			}
		}(readers[i])
	}
	for range 2000 {
		pkt := sealCopy(t, tx, []byte("counted"), 4)
		if _, _, r := rx.Open(pkt); r != stats.OK {
			t.Fatalf("Open = %v", r)
		}
	}
	close(done)
	for _, c := range readers {
		<-c
	}
	if rx.St.Packets.Load() != 2000 || rx.St.Bytes.Load() != 2000*7 {
		t.Errorf("Packets, Bytes = %d, %d, want 2000, 14000", rx.St.Packets.Load(), rx.St.Bytes.Load())
	}
}

// TestNoAntiReplay: with the check off (RFC 4303 §3.4.3), a repeated packet
// is accepted; integrity is still verified.
func TestNoAntiReplay(t *testing.T) {
	key := make([]byte, 36)
	tx, _ := NewSA(Config{SPI: 0x1234, Cipher: AESGCM256, EncKey: key})
	rx, err := NewSA(Config{SPI: 0x1234, Cipher: AESGCM256, EncKey: key, NoAntiReplay: true})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	start, end, r := tx.Seal(buf, 64, 100, 4)
	if r != stats.OK {
		t.Fatal(r)
	}
	pkt := append([]byte(nil), buf[start:end]...)
	for i := range 3 {
		p := append([]byte(nil), pkt...)
		if _, _, r := rx.Open(p); r != stats.OK {
			t.Fatalf("copy %d: Open = %v, want ok", i, r)
		}
	}
	pkt[len(pkt)-1] ^= 1
	if _, _, r := rx.Open(pkt); r != stats.Integrity {
		t.Fatalf("tampered: Open = %v, want integrity", r)
	}
}
