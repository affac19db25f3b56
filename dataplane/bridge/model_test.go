package bridge

import (
	"maps"
	"math/rand/v2"
	"testing"
)

// The model is a plain map plus per-session counts; modelRun drives an FDB and
// the model with the same operations, decoded from bytes, and compares every
// answer. Full is the one result the model cannot predict (it depends on
// hashing): it checks instead that the key is absent and that every slot of
// its probe window really is occupied.

type mentry struct {
	o    Owner
	seen uint32
}

var modelOwners = [...]Owner{Upstream, SessionOwner(1, 1), SessionOwner(2, 1), SessionOwner(3, 1), SessionOwner(1, 2)}

type modelRun struct {
	t     testing.TB
	f     *FDB
	m     map[Key]mentry
	c     testCounts
	want  [len(testCounts{})]int32
	now   uint32
	steps int
	res   [LimitReached + 1]int // LearnPolicy results seen, for the log

	// fill turns removals (Delete, Age, Flush) into LearnPolicy, so the
	// table fills up and Full is exercised.
	fill bool
}

func newModelRun(t testing.TB, capacity int, seed uint64) *modelRun {
	// Start near the uint32 wrap so that time comparisons cross it.
	return &modelRun{t: t, f: newFDB(capacity, seed), m: map[Key]mentry{}, now: ^uint32(0) - 200}
}

// modelKey maps two bytes to one of 512 keys on two VLANs: enough to fill
// the tiny table (256 slots) and few enough for ops to collide.
func modelKey(a, b byte) Key {
	return MakeKey(uint16(1+a>>7), []byte{2, 0, 0, 0, b >> 7, a & 127})
}

func (r *modelRun) cidx(o Owner) int {
	if i, _, ok := o.Session(); ok && int(i) < len(r.want) {
		return int(i)
	}
	return -1
}

func (r *modelRun) uncount(o Owner) {
	if i := r.cidx(o); i >= 0 {
		r.want[i]--
	}
}

func newer(now, seen uint32) uint32 {
	if int32(now-seen) > 0 {
		return now
	}
	return seen
}

// checkFull verifies that a Full answer for k was right.
func (r *modelRun) checkFull(k Key) {
	r.t.Helper()
	if _, ok := r.m[k]; ok {
		r.t.Fatalf("step %d: Full for %v, which is present", r.steps, k)
	}
	h := r.f.home(k)
	for d := range uint64(MaxProbe) {
		if st := r.f.slotState(h + d); st != liveBit {
			r.t.Fatalf("step %d: Full for %v, but slot home+%d is free (state %d)", r.steps, k, d, st)
		}
	}
}

// step runs one operation decoded from op and the argument bytes a, b, c.
func (r *modelRun) step(op, a, b, c byte) {
	t, f := r.t, r.f
	t.Helper()
	r.steps++
	k := modelKey(a, b)
	o := modelOwners[int(b)%len(modelOwners)]
	e, ok := r.m[k]
	op %= 32
	if r.fill && op >= 25 && op <= 28 {
		op = 13
	}
	switch {
	case op < 4 || op == 28 && c%4 != 0: // Lookup
		got, hit := f.Lookup(k)
		if got != e.o || hit != ok {
			t.Fatalf("step %d: Lookup(%v) = %v, %v, want %v, %v", r.steps, k, got, hit, e.o, ok)
		}
	case op < 9: // Find + Touch, the per-frame refresh
		slot, got := f.Find(k)
		if got != e.o || (slot >= 0) != ok {
			t.Fatalf("step %d: Find(%v) = %d, %v, want %v", r.steps, k, slot, got, e.o)
		}
		f.Touch(slot, k, r.now)
		if ok {
			e.seen = newer(r.now, e.seen)
			r.m[k] = e
		}
	case op < 13: // Learn, no policy, no counting
		prev, res := f.Learn(k, o, r.now)
		var wantPrev Owner
		var wantRes LearnResult
		switch {
		case ok && e.o == o:
			wantPrev, wantRes = o, Refreshed
			e.seen = newer(r.now, e.seen)
		case ok:
			wantPrev, wantRes = e.o, Moved
			e = mentry{o, r.now}
		case res == Full:
			r.checkFull(k)
			wantRes = Full
		default:
			wantRes = Added
			e = mentry{o, r.now}
		}
		if prev != wantPrev || res != wantRes {
			t.Fatalf("step %d: Learn(%v, %v) = %v, %v, want %v, %v", r.steps, k, o, prev, res, wantPrev, wantRes)
		}
		if wantRes != Full {
			r.m[k] = e
		}
	case op < 25: // LearnPolicy
		limit := [4]uint32{0, 3, 20, 60}[c%4] // 0: unlimited
		prev, res := f.LearnPolicy(k, o, r.now, limit, &r.c)
		r.res[res]++
		var wantPrev Owner
		var wantRes LearnResult
		ci := r.cidx(o)
		switch {
		case ok && e.o == o:
			wantPrev, wantRes = o, Refreshed
			e.seen = newer(r.now, e.seen)
		case ok && e.o == Upstream:
			wantPrev, wantRes = Upstream, MoveDenied
		case ci >= 0 && limit != 0 && r.want[ci] >= int32(limit):
			wantPrev, wantRes = e.o, LimitReached
		case ok:
			wantPrev, wantRes = e.o, Moved
			r.uncount(e.o)
			if ci >= 0 {
				r.want[ci]++
			}
			e = mentry{o, r.now}
		case res == Full:
			r.checkFull(k)
			wantRes = Full
		default:
			wantRes = Added
			if ci >= 0 {
				r.want[ci]++
			}
			e = mentry{o, r.now}
		}
		if prev != wantPrev || res != wantRes {
			t.Fatalf("step %d: LearnPolicy(%v, %v, limit %d) = %v, %v, want %v, %v", r.steps, k, o, limit, prev, res, wantPrev, wantRes)
		}
		if ok || wantRes == Added {
			r.m[k] = e
		}
	case op < 27: // Delete
		got, hit := f.Delete(k)
		if got != e.o || hit != ok {
			t.Fatalf("step %d: Delete(%v) = %v, %v, want %v, %v", r.steps, k, got, hit, e.o, ok)
		}
		if hit {
			Uncount(&r.c)(k, got)
			r.uncount(got)
			delete(r.m, k)
		}
	case op == 27: // Age
		maxAge := uint32(c % 64)
		want := map[Key]Owner{}
		for k, e := range r.m {
			if a := r.now - e.seen; int32(a) > 0 && a > maxAge {
				want[k] = e.o
			}
		}
		got := map[Key]Owner{}
		un := Uncount(&r.c)
		n := f.Age(r.now, maxAge, func(k Key, o Owner) { got[k] = o; un(k, o) })
		if n != len(want) || !maps.Equal(got, want) {
			t.Fatalf("step %d: Age(%d, %d) removed %d %v, want %v", r.steps, r.now, maxAge, n, got, want)
		}
		for k, o := range want {
			delete(r.m, k)
			r.uncount(o)
		}
	case op == 28: // Flush one owner
		want := map[Key]Owner{}
		for k, e := range r.m {
			if e.o == o {
				want[k] = e.o
			}
		}
		got := map[Key]Owner{}
		un := Uncount(&r.c)
		n := f.Flush(func(_ Key, x Owner) bool { return x == o }, func(k Key, o Owner) { got[k] = o; un(k, o) })
		if n != len(want) || !maps.Equal(got, want) {
			t.Fatalf("step %d: Flush(%v) removed %d %v, want %v", r.steps, o, n, got, want)
		}
		for k, o := range want {
			delete(r.m, k)
			r.uncount(o)
		}
	default: // the clock advances, slowly enough for entries to pile up
		if c%8 == 0 {
			r.now++
		}
	}
	if r.steps%32 == 0 {
		r.check()
	}
}

// check compares the whole table, seen times and counts with the model.
func (r *modelRun) check() {
	r.t.Helper()
	checkTable(r.t, r.f)
	got := map[Key]mentry{}
	r.f.Range(func(k Key, o Owner, seen uint32) bool {
		got[k] = mentry{o, seen}
		return true
	})
	if !maps.Equal(got, r.m) {
		r.t.Fatalf("step %d: table %v, model %v", r.steps, got, r.m)
	}
	for i := range r.want {
		if r.c[i].Load() != r.want[i] {
			r.t.Fatalf("step %d: count[%d] = %d, model %d", r.steps, i, r.c[i].Load(), r.want[i])
		}
	}
}

func (r *modelRun) run(ops []byte) {
	for len(ops) >= 4 {
		r.step(ops[0], ops[1], ops[2], ops[3])
		ops = ops[4:]
	}
	r.check()
}

// TestModel runs thousands of random operations against the map model, on a
// tiny table (two regions: Full, tombstones and compaction happen all the
// time) and on the smallest public size.
func TestModel(t *testing.T) {
	for _, capacity := range []int{minSlots, MinCap} {
		for seed := range uint64(8) {
			r := newModelRun(t, capacity, seed)
			r.fill = seed%2 == 1
			rng := rand.New(rand.NewPCG(seed, uint64(capacity)))
			ops := make([]byte, 4*5000)
			for i := range ops {
				ops[i] = byte(rng.Uint32())
			}
			r.run(ops)
			if seed < 2 {
				t.Logf("cap %d fill %v: LearnPolicy results %v, %d entries at the end", capacity, r.fill, r.res, r.f.Len())
			}
		}
	}
}

// FuzzOps decodes the input as 4-byte operations and runs them against the
// model on the tiny table. Corpus: testdata/fuzz/FuzzOps.
func FuzzOps(f *testing.F) {
	f.Add([]byte{13, 1, 1, 0, 13, 1, 2, 0, 0, 1, 0, 0, 25, 1, 0, 0})
	f.Add([]byte{9, 5, 0, 0, 13, 5, 1, 1, 29, 0, 0, 3, 27, 0, 0, 1, 28, 0, 1, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 4*4096 {
			ops = ops[:4*4096]
		}
		r := newModelRun(t, minSlots, testSeed)
		r.fill = len(ops)%8 == 1
		r.run(ops)
	})
}
