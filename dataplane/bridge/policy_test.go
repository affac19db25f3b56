package bridge

import (
	"testing"
)

// TestLearnPolicy covers every verdict of LearnPolicy and its effect on the
// per-owner counts.
func TestLearnPolicy(t *testing.T) {
	k := testKey(1000)
	other := func(i int) Key { return testKey(i) }
	tests := []struct {
		name       string
		setup      func(f *FDB, c *testCounts) // uses LearnPolicy so counts match
		o          Owner
		limit      uint32
		wantPrev   Owner
		wantRes    LearnResult
		wantOwner  Owner
		wantCounts [4]int32 // sessions 0..3
	}{
		{"new", nil, s1, 5, 0, Added, s1, [4]int32{0, 1, 0, 0}},
		{"new unlimited", func(f *FDB, c *testCounts) {
			for i := range 50 {
				f.LearnPolicy(other(i), s1, 1, 0, c)
			}
		}, s1, 0, 0, Added, s1, [4]int32{0, 51, 0, 0}},
		{"refresh", func(f *FDB, c *testCounts) { f.LearnPolicy(k, s1, 1, 5, c) }, s1, 5, s1, Refreshed, s1, [4]int32{0, 1, 0, 0}},
		{"refresh at limit", func(f *FDB, c *testCounts) {
			f.LearnPolicy(k, s1, 1, 2, c)
			f.LearnPolicy(other(1), s1, 1, 2, c)
		}, s1, 2, s1, Refreshed, s1, [4]int32{0, 2, 0, 0}},
		{"limit reached", func(f *FDB, c *testCounts) {
			f.LearnPolicy(other(1), s1, 1, 2, c)
			f.LearnPolicy(other(2), s1, 1, 2, c)
		}, s1, 2, 0, LimitReached, 0, [4]int32{0, 2, 0, 0}},
		{"limit 1", func(f *FDB, c *testCounts) { f.LearnPolicy(other(1), s1, 1, 1, c) }, s1, 1, 0, LimitReached, 0, [4]int32{0, 1, 0, 0}},
		{"limit counts only own MACs", func(f *FDB, c *testCounts) {
			f.LearnPolicy(other(1), s2, 1, 1, c)
			f.LearnPolicy(other(2), s2, 1, 1, c)
		}, s1, 1, 0, Added, s1, [4]int32{0, 1, 1, 0}},
		{"mac_move denied", func(f *FDB, c *testCounts) { f.LearnPolicy(k, Upstream, 1, 0, c) }, s1, 5, Upstream, MoveDenied, Upstream, [4]int32{}},
		{"session to session move", func(f *FDB, c *testCounts) { f.LearnPolicy(k, s1, 1, 5, c) }, s2, 5, s1, Moved, s2, [4]int32{0, 0, 1, 0}},
		{"move into full session", func(f *FDB, c *testCounts) {
			f.LearnPolicy(k, s1, 1, 5, c)
			f.LearnPolicy(other(1), s2, 1, 1, c)
		}, s2, 1, s1, LimitReached, s1, [4]int32{0, 1, 1, 0}},
		{"upstream takeover", func(f *FDB, c *testCounts) { f.LearnPolicy(k, s1, 1, 5, c) }, Upstream, 0, s1, Moved, Upstream, [4]int32{0, 0, 0, 0}},
		{"upstream new", nil, Upstream, 0, 0, Added, Upstream, [4]int32{}},
		{"upstream refresh", func(f *FDB, c *testCounts) { f.LearnPolicy(k, Upstream, 1, 0, c) }, Upstream, 0, Upstream, Refreshed, Upstream, [4]int32{}},
		{"stale generation moves", func(f *FDB, c *testCounts) { f.LearnPolicy(k, SessionOwner(1, 0), 1, 5, c) }, s1, 5, SessionOwner(1, 0), Moved, s1, [4]int32{0, 1, 0, 0}},
		{"full", func(f *FDB, c *testCounts) {
			for _, x := range keysWithHome(f, f.home(k), MaxProbe, map[Key]bool{k: true}) {
				f.LearnPolicy(x, s2, 1, 0, c)
			}
		}, s1, 5, 0, Full, 0, [4]int32{0, 0, MaxProbe, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFDB(1024, testSeed)
			var c testCounts
			if tc.setup != nil {
				tc.setup(f, &c)
			}
			prev, res := f.LearnPolicy(k, tc.o, 10, tc.limit, &c)
			if prev != tc.wantPrev || res != tc.wantRes {
				t.Fatalf("LearnPolicy(%v, %v, limit %d) = %v, %v, want %v, %v", k, tc.o, tc.limit, prev, res, tc.wantPrev, tc.wantRes)
			}
			if o, _ := f.Lookup(k); o != tc.wantOwner {
				t.Fatalf("Lookup(%v) = %v, want %v", k, o, tc.wantOwner)
			}
			for i, want := range tc.wantCounts {
				if got := c[i].Load(); got != want {
					t.Errorf("count[%d] = %d, want %d", i, got, want)
				}
			}
			checkCounts(t, f, &c)
		})
	}
}

// checkCounts verifies that each session's counter equals its number of
// entries.
func checkCounts(t testing.TB, f *FDB, c *testCounts) {
	t.Helper()
	var n testCounts
	for _, o := range checkTable(t, f) {
		if p := n.MACCount(o); p != nil {
			p.Add(1)
		}
	}
	for i := range c {
		if c[i].Load() != n[i].Load() {
			t.Fatalf("session %d: count %d, but it owns %d entries", i, c[i].Load(), n[i].Load())
		}
	}
}

func TestLearnPolicyNilCounts(t *testing.T) {
	f := newFDB(1024, testSeed)
	for i := range 10 {
		if _, res := f.LearnPolicy(testKey(i), s1, 1, 1, nil); res != Added {
			t.Fatalf("LearnPolicy #%d with nil Counts = %v, want added (no limit without counts)", i, res)
		}
	}
	if _, res := f.LearnPolicy(testKey(1), s2, 1, 1, nil); res != Moved {
		t.Fatalf("move with nil Counts = %v, want moved", res)
	}
	f.Learn(testKey(2), Upstream, 1)
	if prev, res := f.LearnPolicy(testKey(2), s2, 1, 1, nil); prev != Upstream || res != MoveDenied {
		t.Fatalf("claim of upstream MAC with nil Counts = %v, %v, want upstream, move_denied", prev, res)
	}
}

// TestUncount: removals through Age, Flush and Delete keep counts in step.
func TestUncount(t *testing.T) {
	tests := []struct {
		name   string
		remove func(f *FDB, un func(Key, Owner))
	}{
		{"Age", func(f *FDB, un func(Key, Owner)) { f.Age(100, 50, un) }},
		{"Flush session", func(f *FDB, un func(Key, Owner)) {
			f.Flush(func(_ Key, o Owner) bool { return o == s1 }, un)
		}},
		{"Delete", func(f *FDB, un func(Key, Owner)) {
			for i := range 60 {
				if o, ok := f.Delete(testKey(i)); ok {
					un(testKey(i), o)
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFDB(1024, testSeed)
			var c testCounts
			for i := range 120 {
				o := []Owner{s1, s2, s3, Upstream}[i%4]
				seen := uint32(100)
				if i%3 == 0 {
					seen = 1 // ages out
				}
				if _, res := f.LearnPolicy(testKey(i), o, seen, 0, &c); res != Added {
					t.Fatalf("LearnPolicy #%d = %v", i, res)
				}
			}
			before := [4]int32{c[0].Load(), c[1].Load(), c[2].Load(), c[3].Load()}
			tc.remove(f, Uncount(&c))
			after := [4]int32{c[0].Load(), c[1].Load(), c[2].Load(), c[3].Load()}
			if after == before {
				t.Fatalf("%s removed nothing counted (counts %v)", tc.name, after)
			}
			checkCounts(t, f, &c)
		})
	}
}
