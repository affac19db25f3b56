package bridge

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

const testSeed = 0x5eed

// testKey returns a distinct key for each i (VLAN 1 + i/2^24).
func testKey(i int) Key {
	return MakeKey(uint16(1+i>>24), []byte{2, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)})
}

// keysWithHome returns n distinct keys, not in avoid, whose home slot in f
// is h.
func keysWithHome(f *FDB, h uint64, n int, avoid map[Key]bool) []Key {
	r := rand.New(rand.NewPCG(h, 7))
	var ks []Key
	for len(ks) < n {
		k := Key(r.Uint64() & keyMask)
		if f.home(k) == h && !avoid[k] {
			ks = append(ks, k)
			if avoid == nil {
				avoid = map[Key]bool{}
			}
			avoid[k] = true
		}
	}
	return ks
}

// testCounts counts MACs per session index (ignoring the generation);
// Upstream and other owners are not counted.
type testCounts [16]atomic.Int32

func (c *testCounts) MACCount(o Owner) *atomic.Int32 {
	if i, _, ok := o.Session(); ok && int(i) < len(c) {
		return &c[i]
	}
	return nil
}

// slotState returns the state of slot i: stEmpty, stTomb, stBusy or liveBit.
func (f *FDB) slotState(i uint64) uint64 {
	w := f.slots[i&f.mask].key.Load() &^ genMask
	if w&liveBit != 0 {
		return liveBit
	}
	return w
}

// checkTable verifies the table's structure while no writer runs: no busy
// slots, no duplicate keys, every entry within MaxProbe of its home with no
// empty slot in between, and Len equal to the number of entries. It returns
// the entries.
func checkTable(t testing.TB, f *FDB) map[Key]Owner {
	t.Helper()
	m := map[Key]Owner{}
	for i := range f.slots {
		w := f.slots[i].key.Load()
		st := w &^ genMask
		if st == stBusy {
			t.Fatalf("slot %d busy at rest", i)
		}
		if w&liveBit == 0 {
			if st != stEmpty && st != stTomb {
				t.Fatalf("slot %d has bad word %#x", i, w)
			}
			continue
		}
		k := Key(w & keyMask)
		o := Owner(f.slots[i].owner.Load())
		if o == 0 {
			t.Fatalf("slot %d: %v has owner 0", i, k)
		}
		if _, dup := m[k]; dup {
			t.Fatalf("%v stored twice (again at slot %d)", k, i)
		}
		m[k] = o
		h := f.home(k)
		d := (uint64(i) - h) & f.mask
		if d >= MaxProbe {
			t.Fatalf("%v at slot %d is %d slots from home %d", k, i, d, h)
		}
		for j := h; j != uint64(i); j = (j + 1) & f.mask {
			if f.slotState(j) == stEmpty {
				t.Fatalf("%v at slot %d: empty slot %d between it and home %d", k, i, j, h)
			}
		}
	}
	if f.Len() != len(m) {
		t.Fatalf("Len() = %d, table holds %d entries", f.Len(), len(m))
	}
	return m
}

// seenOf returns k's stored last-seen time.
func seenOf(t testing.TB, f *FDB, k Key) uint32 {
	t.Helper()
	slot, _ := f.Find(k)
	if slot < 0 {
		t.Fatalf("seenOf(%v): absent", k)
	}
	return f.slots[slot].seen.Load()
}
