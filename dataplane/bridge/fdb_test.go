package bridge

import (
	"maps"
	"slices"
	"sync/atomic"
	"testing"
)

var (
	s1 = SessionOwner(1, 1)
	s2 = SessionOwner(2, 1)
	s3 = SessionOwner(3, 1)
)

func TestNewCapacity(t *testing.T) {
	tests := []struct {
		name    string
		capIn   int
		wantCap int
	}{
		{"negative", -5, MinCap},
		{"zero", 0, MinCap},
		{"below min", 1000, MinCap},
		{"min", 1024, 1024},
		{"round up", 1025, 2048},
		{"power of two", 1 << 16, 1 << 16},
		{"odd", 100_000, 1 << 17},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := New(tc.capIn)
			if got := f.Cap(); got != tc.wantCap {
				t.Fatalf("New(%d).Cap() = %d, want %d", tc.capIn, got, tc.wantCap)
			}
			if f.Len() != 0 {
				t.Fatalf("New(%d).Len() = %d, want 0", tc.capIn, f.Len())
			}
			if len(f.stripes) < 2 || len(f.stripes) > maxStripes || len(f.stripes)&(len(f.stripes)-1) != 0 {
				t.Fatalf("New(%d) has %d stripes", tc.capIn, len(f.stripes))
			}
		})
	}
}

func TestNewSeedsDiffer(t *testing.T) {
	a, b := New(0), New(0)
	if a.seed == b.seed {
		t.Fatalf("two FDBs share hash seed %#x", a.seed)
	}
}

// TestLearn covers every LearnResult of Learn (no policy: Learn stores
// whatever owner it is given).
func TestLearn(t *testing.T) {
	k := testKey(1)
	tests := []struct {
		name      string
		setup     func(f *FDB)
		o         Owner
		now       uint32
		wantPrev  Owner
		wantRes   LearnResult
		wantOwner Owner
		wantSeen  uint32
	}{
		{"added", nil, s1, 10, 0, Added, s1, 10},
		{"refreshed", func(f *FDB) { f.Learn(k, s1, 10) }, s1, 20, s1, Refreshed, s1, 20},
		{"refreshed same second", func(f *FDB) { f.Learn(k, s1, 10) }, s1, 10, s1, Refreshed, s1, 10},
		{"refreshed older keeps seen", func(f *FDB) { f.Learn(k, s1, 20) }, s1, 10, s1, Refreshed, s1, 20},
		{"refreshed across wrap", func(f *FDB) { f.Learn(k, s1, ^uint32(0)-1) }, s1, 3, s1, Refreshed, s1, 3},
		{"moved session to session", func(f *FDB) { f.Learn(k, s1, 10) }, s2, 11, s1, Moved, s2, 11},
		{"moved session to upstream", func(f *FDB) { f.Learn(k, s1, 10) }, Upstream, 11, s1, Moved, Upstream, 11},
		{"moved upstream to session (no policy)", func(f *FDB) { f.Learn(k, Upstream, 10) }, s1, 11, Upstream, Moved, s1, 11},
		{"moved sets seen even if older", func(f *FDB) { f.Learn(k, s1, 20) }, s2, 15, s1, Moved, s2, 15},
		{"re-added after delete", func(f *FDB) { f.Learn(k, s1, 10); f.Delete(k) }, s2, 12, 0, Added, s2, 12},
		{"full", func(f *FDB) {
			for _, x := range keysWithHome(f, f.home(k), MaxProbe, map[Key]bool{k: true}) {
				if _, res := f.Learn(x, s3, 1); res != Added {
					t.Fatalf("filling: Learn(%v) = %v", x, res)
				}
			}
		}, s1, 10, 0, Full, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFDB(1024, testSeed)
			if tc.setup != nil {
				tc.setup(f)
			}
			before := f.Len()
			prev, res := f.Learn(k, tc.o, tc.now)
			if prev != tc.wantPrev || res != tc.wantRes {
				t.Fatalf("Learn(%v, %v, %d) = %v, %v, want %v, %v", k, tc.o, tc.now, prev, res, tc.wantPrev, tc.wantRes)
			}
			o, ok := f.Lookup(k)
			if o != tc.wantOwner || ok != (tc.wantOwner != 0) {
				t.Fatalf("Lookup(%v) = %v, %v, want %v", k, o, ok, tc.wantOwner)
			}
			if tc.wantOwner != 0 {
				if s := seenOf(t, f, k); s != tc.wantSeen {
					t.Errorf("seen = %d, want %d", s, tc.wantSeen)
				}
			}
			wantLen := before
			if res == Added {
				wantLen++
			}
			if f.Len() != wantLen {
				t.Errorf("Len() = %d, want %d", f.Len(), wantLen)
			}
			checkTable(t, f)
		})
	}
}

func TestLearnResultString(t *testing.T) {
	tests := []struct {
		r    LearnResult
		want string
		drop bool
	}{
		{0, "invalid", false},
		{Added, "added", false},
		{Refreshed, "refreshed", false},
		{Moved, "moved", false},
		{Full, "full", false},
		{MoveDenied, "move_denied", true},
		{LimitReached, "limit_reached", true},
		{200, "invalid", false},
	}
	for _, tc := range tests {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("LearnResult(%d).String() = %q, want %q", tc.r, got, tc.want)
		}
		if got := tc.r.Drop(); got != tc.drop {
			t.Errorf("%v.Drop() = %v, want %v", tc.r, got, tc.drop)
		}
	}
}

func TestLearnOwnerZeroPanics(t *testing.T) {
	f := newFDB(1024, testSeed)
	for _, name := range []string{"Learn", "LearnPolicy"} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatalf("%s with owner 0 did not panic", name)
				}
			}()
			if name == "Learn" {
				f.Learn(testKey(1), 0, 1)
			} else {
				f.LearnPolicy(testKey(1), 0, 1, 0, nil)
			}
		})
	}
}

func TestLookupFind(t *testing.T) {
	f := newFDB(1024, testSeed)
	a, b := testKey(1), testKey(2)
	f.Learn(a, s1, 1)
	tests := []struct {
		name   string
		k      Key
		want   Owner
		wantOK bool
	}{
		{"hit", a, s1, true},
		{"miss", b, 0, false},
		{"other vlan", MakeKey(a.VLAN()+1, func() []byte { m := a.MAC(); return m[:] }()), 0, false},
		{"high bits ignored", a | 0xf<<60, s1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := f.Lookup(tc.k)
			if o != tc.want || ok != tc.wantOK {
				t.Fatalf("Lookup(%v) = %v, %v, want %v, %v", tc.k, o, ok, tc.want, tc.wantOK)
			}
			slot, o := f.Find(tc.k)
			if o != tc.want || (slot >= 0) != tc.wantOK {
				t.Fatalf("Find(%v) = %d, %v, want owner %v", tc.k, slot, o, tc.want)
			}
			if slot >= 0 && Key(f.slots[slot].key.Load()&keyMask) != tc.k&keyMask {
				t.Fatalf("Find(%v) = slot %d, which holds %v", tc.k, slot, Key(f.slots[slot].key.Load()&keyMask))
			}
		})
	}
}

// TestHome: a key learned into an almost empty table sits in its home
// slot, and PrefetchHomes reads the key words and seen times of the homes,
// with out-of-range homes folded into the table.
func TestHome(t *testing.T) {
	f := newFDB(1024, testSeed)
	var keys []Key
	var homes []uint64
	var want uint64
	for i := range 20 {
		k := testKey(i * 7919)
		if i%2 == 0 {
			f.Learn(k, s1, uint32(i))
		}
		keys, homes = append(keys, k), append(homes, f.Home(k))
		sl := &f.slots[f.home(k)]
		want += sl.key.Load() + uint64(sl.seen.Load())
	}
	for i := 0; i < len(keys); i += 2 { // the learned ones: no two share a home here
		if slot, _ := f.Find(keys[i]); uint64(slot) != homes[i] {
			t.Errorf("key %d found in slot %d, its home is %d", i, slot, homes[i])
		}
	}
	if got := f.PrefetchHomes(homes); got != want {
		t.Errorf("PrefetchHomes = %d, the homes' key words and seen times sum to %d", got, want)
	}
	first := f.Home(keys[0])
	if f.PrefetchHomes([]uint64{first + 1024}) != f.PrefetchHomes([]uint64{first}) {
		t.Error("a home beyond the table is not folded into it")
	}
}

func TestTouch(t *testing.T) {
	a := testKey(1)
	tests := []struct {
		name     string
		learnAt  uint32
		slot     func(f *FDB) int32
		k        Key
		now      uint32
		wantSeen uint32
	}{
		{"newer", 10, nil, a, 11, 11},
		{"same", 10, nil, a, 10, 10},
		{"older", 10, nil, a, 9, 10},
		{"across wrap", ^uint32(0) - 2, nil, a, 4, 4},
		{"negative slot", 10, func(*FDB) int32 { return -1 }, a, 20, 10},
		{"slot out of range", 10, func(f *FDB) int32 { return int32(f.Cap()) }, a, 20, 10},
		{"wrong key", 10, nil, testKey(2), 20, 10},
		{"wrong slot", 10, func(f *FDB) int32 { s, _ := f.Find(a); return (s + 1) % int32(f.Cap()) }, a, 20, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFDB(1024, testSeed)
			f.Learn(a, s1, tc.learnAt)
			slot, _ := f.Find(a)
			if tc.slot != nil {
				slot = tc.slot(f)
			}
			f.Touch(slot, tc.k, tc.now)
			if got := seenOf(t, f, a); got != tc.wantSeen {
				t.Fatalf("after Touch(%d, %v, %d): seen = %d, want %d", slot, tc.k, tc.now, got, tc.wantSeen)
			}
		})
	}
}

// TestTouchRecycledSlot: a slot hint kept across a delete and a re-use of the
// slot by another key must not refresh the new occupant.
func TestTouchRecycledSlot(t *testing.T) {
	f := newFDB(1024, testSeed)
	ks := keysWithHome(f, 77, 2, nil)
	a, b := ks[0], ks[1]
	f.Learn(a, s1, 10)
	slot, _ := f.Find(a)
	f.Delete(a)
	f.Learn(b, s2, 10)
	if s2slot, _ := f.Find(b); s2slot != slot {
		t.Fatalf("Find(%v) = slot %d, want the recycled slot %d", b, s2slot, slot)
	}
	f.Touch(slot, a, 50)
	if got := seenOf(t, f, b); got != 10 {
		t.Fatalf("Touch with a stale key refreshed the new occupant: seen = %d, want 10", got)
	}
	f.Touch(slot, b, 50)
	if got := seenOf(t, f, b); got != 50 {
		t.Fatalf("Touch(%d, %v, 50): seen = %d, want 50", slot, b, got)
	}
}

func TestDelete(t *testing.T) {
	a, b := testKey(1), testKey(2)
	tests := []struct {
		name   string
		setup  func(f *FDB)
		k      Key
		want   Owner
		wantOK bool
	}{
		{"present", func(f *FDB) { f.Learn(a, s1, 1) }, a, s1, true},
		{"absent", func(f *FDB) { f.Learn(a, s1, 1) }, b, 0, false},
		{"empty table", nil, a, 0, false},
		{"twice", func(f *FDB) { f.Learn(a, s1, 1); f.Delete(a) }, a, 0, false},
		{"after move", func(f *FDB) { f.Learn(a, s1, 1); f.Learn(a, Upstream, 2) }, a, Upstream, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFDB(1024, testSeed)
			if tc.setup != nil {
				tc.setup(f)
			}
			before := f.Len()
			o, ok := f.Delete(tc.k)
			if o != tc.want || ok != tc.wantOK {
				t.Fatalf("Delete(%v) = %v, %v, want %v, %v", tc.k, o, ok, tc.want, tc.wantOK)
			}
			if _, hit := f.Lookup(tc.k); hit {
				t.Fatalf("Lookup(%v) hit after Delete", tc.k)
			}
			if ok && f.Len() != before-1 {
				t.Fatalf("Len() = %d, want %d", f.Len(), before-1)
			}
			checkTable(t, f)
		})
	}
}

// TestTombstoneReuse: deleting an entry in the middle of a probe chain leaves
// a tombstone that keeps later entries reachable and that the next insert on
// the chain reuses.
func TestTombstoneReuse(t *testing.T) {
	f := newFDB(1024, testSeed)
	const h = 200
	ks := keysWithHome(f, h, 4, nil)
	a, b, c, d := ks[0], ks[1], ks[2], ks[3]
	for _, k := range []Key{a, b, c} {
		f.Learn(k, s1, 1)
	}
	if sa, _ := f.Find(a); sa != h {
		t.Fatalf("Find(%v) = slot %d, want %d", a, sa, h)
	}
	f.Delete(a)
	if st := f.slotState(h); st != stTomb {
		t.Fatalf("slot %d state %d after Delete, want tombstone", h, st)
	}
	for i, k := range []Key{b, c} {
		if slot, o := f.Find(k); slot != int32(h+1+i) || o != s1 {
			t.Fatalf("Find(%v) = %d, %v past a tombstone, want %d, %v", k, slot, o, h+1+i, s1)
		}
	}
	if _, res := f.Learn(d, s2, 2); res != Added {
		t.Fatalf("Learn(%v) = %v, want added", d, res)
	}
	if slot, _ := f.Find(d); slot != h {
		t.Fatalf("Find(%v) = slot %d, want the tombstone %d", d, slot, h)
	}
	if got := f.slots[h].key.Load() >> genShift; got != 2 {
		t.Fatalf("slot generation after two claims = %d, want 2", got)
	}
	checkTable(t, f)
}

// TestProbeLimit: MaxProbe entries with one home fill its window; one more is
// Full, a key whose window reaches past it still fits, and a deletion makes
// room. Also covers windows that wrap past the end of the table.
func TestProbeLimit(t *testing.T) {
	for _, h := range []uint64{300, 1024 - 5} {
		f := newFDB(1024, testSeed)
		ks := keysWithHome(f, h, MaxProbe+1, nil)
		for i, k := range ks[:MaxProbe] {
			if _, res := f.Learn(k, s1, 1); res != Added {
				t.Fatalf("home %d: Learn #%d = %v, want added", h, i, res)
			}
			if slot, _ := f.Find(k); uint64(slot) != (h+uint64(i))&f.mask {
				t.Fatalf("home %d: Find #%d = slot %d, want %d", h, i, slot, (h+uint64(i))&f.mask)
			}
		}
		last := ks[MaxProbe]
		if prev, res := f.Learn(last, s1, 1); prev != 0 || res != Full {
			t.Fatalf("home %d: Learn beyond MaxProbe = %v, %v, want none, full", h, prev, res)
		}
		if _, hit := f.Lookup(last); hit {
			t.Fatalf("home %d: Lookup hit after Full", h)
		}
		next := keysWithHome(f, (h+5)&f.mask, 1, nil)[0]
		if _, res := f.Learn(next, s2, 1); res != Added {
			t.Fatalf("home %d: neighbour Learn = %v, want added", h, res)
		}
		if slot, _ := f.Find(next); uint64(slot) != (h+MaxProbe)&f.mask {
			t.Fatalf("home %d: neighbour at slot %d, want %d", h, slot, (h+MaxProbe)&f.mask)
		}
		f.Delete(ks[10])
		if _, res := f.Learn(last, s1, 1); res != Added {
			t.Fatalf("home %d: Learn after Delete = %v, want added", h, res)
		}
		checkTable(t, f)
	}
}

func TestAge(t *testing.T) {
	type ent struct {
		k    Key
		o    Owner
		seen uint32
	}
	a, b, c := testKey(1), testKey(2), testKey(3)
	tests := []struct {
		name        string
		ents        []ent
		now, maxAge uint32
		want        []Key // removed
	}{
		{"none expired", []ent{{a, s1, 100}, {b, s2, 90}}, 100, 10, nil},
		{"boundary", []ent{{a, s1, 90}, {b, s2, 89}}, 100, 10, []Key{b}},
		{"all", []ent{{a, s1, 1}, {b, Upstream, 2}, {c, s2, 3}}, 100, 10, []Key{a, b, c}},
		{"maxAge 0 keeps only now", []ent{{a, s1, 100}, {b, s2, 99}}, 100, 0, []Key{b}},
		{"future kept", []ent{{a, s1, 150}}, 100, 10, nil},
		{"across wrap kept", []ent{{a, s1, ^uint32(0) - 3}}, 4, 10, nil},
		{"across wrap removed", []ent{{a, s1, ^uint32(0) - 30}}, 4, 10, []Key{a}},
		{"empty", nil, 100, 10, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFDB(1024, testSeed)
			owners := map[Key]Owner{}
			for _, e := range tc.ents {
				f.Learn(e.k, e.o, e.seen)
				owners[e.k] = e.o
			}
			var got []Key
			n := f.Age(tc.now, tc.maxAge, func(k Key, o Owner) {
				if owners[k] != o {
					t.Errorf("removed(%v, %v), want owner %v", k, o, owners[k])
				}
				got = append(got, k)
			})
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if n != len(want) || !slices.Equal(got, want) {
				t.Fatalf("Age(%d, %d) = %d, removed %v, want %v", tc.now, tc.maxAge, n, got, want)
			}
			m := checkTable(t, f)
			if len(m) != len(tc.ents)-len(want) {
				t.Fatalf("%d entries left, want %d", len(m), len(tc.ents)-len(want))
			}
			for _, k := range want {
				if _, hit := f.Lookup(k); hit {
					t.Fatalf("Lookup(%v) hit after Age", k)
				}
			}
			if f.Age(tc.now, tc.maxAge, nil) != 0 {
				t.Fatal("second Age removed more")
			}
		})
	}
}

// TestCompaction: Age and Flush turn a tombstone back into empty when the next
// slot is empty (collapsing runs), and keep it when a later entry of the chain
// still needs it.
func TestCompaction(t *testing.T) {
	const h = 500
	tests := []struct {
		name   string
		seen   []uint32 // per key of one chain; those < 50 age out at now 100, maxAge 50
		states []uint64 // wanted states of slots h, h+1, ...
	}{
		{"single", []uint32{1}, []uint64{stEmpty}},
		{"run collapses", []uint32{1, 1, 1}, []uint64{stEmpty, stEmpty, stEmpty}},
		{"tail removed", []uint32{100, 1}, []uint64{liveBit, stEmpty}},
		{"head kept as tombstone", []uint32{1, 100}, []uint64{stTomb, liveBit, stEmpty}},
		{"middle", []uint32{100, 1, 100, 1, 1}, []uint64{liveBit, stTomb, liveBit, stEmpty, stEmpty, stEmpty}},
	}
	for _, tc := range tests {
		for _, via := range []string{"Age", "Flush", "Delete+Age"} {
			t.Run(tc.name+"/"+via, func(t *testing.T) {
				f := newFDB(1024, testSeed)
				ks := keysWithHome(f, h, len(tc.seen), nil)
				old := map[Key]bool{}
				for i, k := range ks {
					f.Learn(k, s1, tc.seen[i])
					old[k] = tc.seen[i] < 50
				}
				switch via {
				case "Age":
					f.Age(100, 50, nil)
				case "Flush":
					f.Flush(func(k Key, _ Owner) bool { return old[k] }, nil)
				case "Delete+Age":
					for k, o := range old {
						if o {
							f.Delete(k)
						}
					}
					if st := f.slotState(h + uint64(len(ks)) - 1); tc.seen[len(ks)-1] < 50 && st != stTomb {
						t.Fatalf("Delete left state %d, want tombstone", st)
					}
					f.Age(100, 1000, nil) // removes nothing, compacts
				}
				for i, want := range tc.states {
					if got := f.slotState(h + uint64(i)); got != want {
						t.Errorf("slot h+%d state %#x, want %#x", i, got, want)
					}
				}
				checkTable(t, f)
			})
		}
	}
}

func TestFlush(t *testing.T) {
	f := newFDB(1024, testSeed)
	want := map[Key]Owner{}
	for i := range 300 {
		o := []Owner{s1, s2, Upstream}[i%3]
		k := testKey(i)
		f.Learn(k, o, 1)
		want[k] = o
	}
	tests := []struct {
		name  string
		match func(Key, Owner) bool
	}{
		{"none", func(Key, Owner) bool { return false }},
		{"owner s1", func(_ Key, o Owner) bool { return o == s1 }},
		{"by key", func(k Key, _ Owner) bool { return k.MAC()[5]%7 == 0 }},
		{"all", func(Key, Owner) bool { return true }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			removed := map[Key]Owner{}
			n := f.Flush(tc.match, func(k Key, o Owner) { removed[k] = o })
			wantRemoved := map[Key]Owner{}
			for k, o := range want {
				if tc.match(k, o) {
					wantRemoved[k] = o
					delete(want, k)
				}
			}
			if n != len(wantRemoved) || !maps.Equal(removed, wantRemoved) {
				t.Fatalf("Flush = %d, removed %d entries, want %d", n, len(removed), len(wantRemoved))
			}
			if got := checkTable(t, f); !maps.Equal(got, want) {
				t.Fatalf("after Flush table has %d entries, want %d", len(got), len(want))
			}
		})
	}
}

func TestRange(t *testing.T) {
	f := newFDB(1024, testSeed)
	type ent struct {
		o    Owner
		seen uint32
	}
	want := map[Key]ent{}
	for i := range 100 {
		k := testKey(i)
		e := ent{[]Owner{s1, Upstream}[i%2], uint32(i)}
		f.Learn(k, e.o, e.seen)
		want[k] = e
	}
	t.Run("all", func(t *testing.T) {
		got := map[Key]ent{}
		f.Range(func(k Key, o Owner, seen uint32) bool {
			got[k] = ent{o, seen}
			return true
		})
		if !maps.Equal(got, want) {
			t.Fatalf("Range yielded %d entries, want %d (or values differ)", len(got), len(want))
		}
	})
	t.Run("stop", func(t *testing.T) {
		n := 0
		f.Range(func(Key, Owner, uint32) bool { n++; return n < 10 })
		if n != 10 {
			t.Fatalf("Range called fn %d times after it returned false at 10", n)
		}
	})
	t.Run("modify during", func(t *testing.T) {
		f.Range(func(k Key, _ Owner, _ uint32) bool { f.Delete(k); return true })
		if f.Len() != 0 {
			t.Fatalf("Len() = %d after deleting every entry from Range", f.Len())
		}
		checkTable(t, f)
	})
}

// TestZeroAllocs: the per-frame operations never allocate.
func TestZeroAllocs(t *testing.T) {
	f := New(1 << 14)
	var c testCounts
	for i := range 1000 {
		f.Learn(testKey(i), s1, 1)
	}
	hit, miss := testKey(5), testKey(1<<20)
	slot, _ := f.Find(hit)
	now := uint32(1)
	next := 1 << 21
	tests := []struct {
		name string
		fn   func()
	}{
		{"Lookup hit", func() { f.Lookup(hit) }},
		{"Lookup miss", func() { f.Lookup(miss) }},
		{"Find", func() { f.Find(hit) }},
		{"PrefetchHomes", func() { homes := [2]uint64{f.Home(hit), f.Home(miss)}; f.PrefetchHomes(homes[:]) }},
		{"Touch", func() { now++; f.Touch(slot, hit, now) }},
		{"Learn refresh", func() { f.Learn(hit, s1, now) }},
		{"Learn new", func() { k := testKey(next); next++; f.Learn(k, s2, now); f.Delete(k) }},
		{"Learn move", func() { f.Learn(hit, s2, now); f.Learn(hit, s1, now) }},
		{"LearnPolicy refresh", func() { f.LearnPolicy(hit, s1, now, 10, &c) }},
		{"LearnPolicy new", func() { k := testKey(next); next++; f.LearnPolicy(k, s2, now, 0, &c); f.Delete(k) }},
		{"LearnPolicy limit", func() { f.LearnPolicy(miss, s3, now, 1, &c) }},
	}
	c[3].Store(1) // s3 is at its limit of 1
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if a := testing.AllocsPerRun(1000, tc.fn); a != 0 {
				t.Fatalf("%s: %v allocs per run, want 0", tc.name, a)
			}
		})
	}
}

// TestClaimAfterLostRace: an inserter of another stripe takes the free slot
// an insert found while probing; the claim must move on to the next free
// slot, and report failure when none is left in the window.
func TestClaimAfterLostRace(t *testing.T) {
	f := newFDB(1024, testSeed)
	const h = 3*regionSize + 5 // region 3
	// Other-stripe keys: homes in region 2 whose windows reach h.
	const oh = 2*regionSize + 60
	if f.stripe(h) == f.stripe(oh) {
		t.Fatal("test needs two stripes")
	}
	filler := keysWithHome(f, oh, h-oh+1, nil) // fills oh..h
	a := keysWithHome(f, h, 1, nil)[0]

	mu := f.stripe(h)
	mu.Lock()
	_, found, free := f.probeLocked(a, h)
	if found || free != 0 {
		mu.Unlock()
		t.Fatalf("probeLocked(%v) = found %v, free %d, want absent, 0", a, found, free)
	}
	// Meanwhile the other stripe fills oh..h, taking slot h.
	for _, k := range filler {
		if _, res := f.Learn(k, s2, 1); res != Added {
			mu.Unlock()
			t.Fatalf("Learn(%v) = %v", k, res)
		}
	}
	ok := f.claimLocked(a, h, free, s1, 1)
	mu.Unlock()
	if !ok {
		t.Fatal("claimLocked failed with free slots left in the window")
	}
	if slot, o := f.Find(a); slot != h+1 || o != s1 {
		t.Fatalf("Find(%v) = %d, %v, want %d, %v", a, slot, o, h+1, s1)
	}
	checkTable(t, f)

	// Now let the other stripe fill the rest of a second key's window.
	b := keysWithHome(f, h, 1, map[Key]bool{a: true})[0]
	mu.Lock()
	_, _, free = f.probeLocked(b, h)
	rest := keysWithHome(f, h+2, MaxProbe-2, map[Key]bool{a: true, b: true})
	mu.Unlock()
	// rest is in b's stripe, so this interleaving cannot happen for real; it
	// drives claimLocked's window-exhausted path.
	for _, k := range rest {
		if _, res := f.Learn(k, s3, 1); res != Added {
			t.Fatalf("Learn(%v) = %v", k, res)
		}
	}
	mu.Lock()
	ok = f.claimLocked(b, h, free, s1, 1)
	mu.Unlock()
	if ok {
		t.Fatal("claimLocked succeeded on a full window")
	}
	checkTable(t, f)
}

func TestReserve(t *testing.T) {
	tests := []struct {
		name   string
		start  int32
		limit  uint32
		nilCnt bool
		want   bool
		after  int32
	}{
		{"nil counter", 0, 1, true, true, 0},
		{"unlimited", 1000, 0, false, true, 1001},
		{"below", 1, 2, false, true, 2},
		{"at limit", 2, 2, false, false, 2},
		{"over limit", 5, 2, false, false, 5},
		{"huge limit", 1 << 30, ^uint32(0), false, true, 1<<30 + 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c atomic.Int32
			c.Store(tc.start)
			p := &c
			if tc.nilCnt {
				p = nil
			}
			if got := reserve(p, tc.limit); got != tc.want {
				t.Fatalf("reserve(%d, %d) = %v, want %v", tc.start, tc.limit, got, tc.want)
			}
			if !tc.nilCnt && c.Load() != tc.after {
				t.Fatalf("count after reserve = %d, want %d", c.Load(), tc.after)
			}
		})
	}
}
