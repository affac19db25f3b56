package bridge

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// Benchmarks run against tables holding 10k, 100k and 1M entries, each sized
// at twice its entries (New's advice). Keys are random MACs on 16 VLANs and
// are visited in random order, so the larger tables measure cache misses, as
// a busy terminator would see them.

var benchSizes = []int{10_000, 100_000, 1_000_000}

type benchTable struct {
	f    *FDB
	hit  []Key // present, in random order
	miss []Key // absent
	o    []Owner
}

var (
	benchMu     sync.Mutex
	benchTables = map[int]*benchTable{}
)

func randomKey(r *rand.Rand, vlan uint16) Key {
	m := r.Uint64()
	return MakeKey(vlan, []byte{byte(m>>40) &^ 1, byte(m >> 32), byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)})
}

func getBenchTable(b *testing.B, n int) *benchTable {
	benchMu.Lock()
	defer benchMu.Unlock()
	if t := benchTables[n]; t != nil {
		// Earlier benchmarks may have left tombstones; reclaim them.
		t.f.Age(0, ^uint32(0), nil)
		return t
	}
	r := rand.New(rand.NewPCG(uint64(n), 42))
	t := &benchTable{f: New(2 * n)}
	for len(t.hit) < n {
		k := randomKey(r, uint16(1+r.IntN(16)))
		o := SessionOwner(uint32(r.IntN(4096)), 1)
		switch _, res := t.f.Learn(k, o, 1); res {
		case Added:
			t.hit = append(t.hit, k)
			t.o = append(t.o, o)
		case Full:
			b.Fatalf("table of %d slots full at %d entries", t.f.Cap(), len(t.hit))
		}
	}
	for range n {
		t.miss = append(t.miss, randomKey(r, 100)) // VLAN 100 is never learned
	}
	benchTables[n] = t
	return t
}

func sizeName(n int) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// benchEach runs fn for every table size.
func benchEach(b *testing.B, fn func(b *testing.B, t *benchTable)) {
	for _, n := range benchSizes {
		b.Run(sizeName(n), func(b *testing.B) {
			t := getBenchTable(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			fn(b, t)
		})
	}
}

var (
	sinkOwner  Owner
	benchClock = uint32(1 << 20)
)

func BenchmarkLookupHit(b *testing.B) {
	benchEach(b, func(b *testing.B, t *benchTable) {
		j := 0
		for range b.N {
			o, _ := t.f.Lookup(t.hit[j])
			sinkOwner ^= o
			if j++; j == len(t.hit) {
				j = 0
			}
		}
	})
}

func BenchmarkLookupMiss(b *testing.B) {
	benchEach(b, func(b *testing.B, t *benchTable) {
		j := 0
		for range b.N {
			o, _ := t.f.Lookup(t.miss[j])
			sinkOwner ^= o
			if j++; j == len(t.miss) {
				j = 0
			}
		}
	})
}

// BenchmarkFindTouch is the per-frame source refresh. "same_second": the
// entry was already refreshed this second, so Touch only reads (the common
// case); "new_second": every Touch writes.
func BenchmarkFindTouch(b *testing.B) {
	b.Run("same_second", func(b *testing.B) {
		benchEach(b, func(b *testing.B, t *benchTable) {
			j := 0
			for range b.N {
				k := t.hit[j]
				slot, _ := t.f.Find(k)
				t.f.Touch(slot, k, 1)
				if j++; j == len(t.hit) {
					j = 0
				}
			}
		})
	})
	b.Run("new_second", func(b *testing.B) {
		benchEach(b, func(b *testing.B, t *benchTable) {
			j := 0
			base := benchClock // later than any earlier run's times
			benchClock += uint32(b.N)
			for i := range b.N {
				k := t.hit[j]
				slot, _ := t.f.Find(k)
				t.f.Touch(slot, k, base+uint32(i))
				if j++; j == len(t.hit) {
					j = 0
				}
			}
		})
	})
}

func BenchmarkLearn(b *testing.B) {
	b.Run("refresh", func(b *testing.B) {
		benchEach(b, func(b *testing.B, t *benchTable) {
			j := 0
			for range b.N {
				t.f.Learn(t.hit[j], t.o[j], 1)
				if j++; j == len(t.hit) {
					j = 0
				}
			}
		})
	})
	// new: add an absent key, then delete it (so the table stays at its
	// size); the time covers both.
	b.Run("new+delete", func(b *testing.B) {
		benchEach(b, func(b *testing.B, t *benchTable) {
			j := 0
			for range b.N {
				k := t.miss[j]
				if _, res := t.f.Learn(k, Upstream, 1); res != Added {
					b.Fatalf("Learn(%v) = %v", k, res)
				}
				t.f.Delete(k)
				if j++; j == len(t.miss) {
					j = 0
				}
			}
		})
	})
	b.Run("policy_refresh", func(b *testing.B) {
		var c testCounts
		benchEach(b, func(b *testing.B, t *benchTable) {
			j := 0
			for range b.N {
				t.f.LearnPolicy(t.hit[j], t.o[j], 1, 100, &c)
				if j++; j == len(t.hit) {
					j = 0
				}
			}
		})
	})
}

// BenchmarkParallelLookup: every core looks up hits, each from its own
// position in the key list.
func BenchmarkParallelLookup(b *testing.B) {
	benchEach(b, func(b *testing.B, t *benchTable) {
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			j := int(next.Add(7919)) % len(t.hit)
			var acc Owner
			for pb.Next() {
				o, _ := t.f.Lookup(t.hit[j])
				acc ^= o
				if j++; j == len(t.hit) {
					j = 0
				}
			}
			sinkOwner ^= acc
		})
	})
}

// BenchmarkParallelFrame: every core runs the bridge's per-frame work — Find
// and Touch the source, Lookup the destination — on shared keys, with the
// clock ticking so refreshes write now and then.
func BenchmarkParallelFrame(b *testing.B) {
	benchEach(b, func(b *testing.B, t *benchTable) {
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			j := int(next.Add(104729)) % len(t.hit)
			n, now := 0, uint32(2)
			var acc Owner
			for pb.Next() {
				src := t.hit[j]
				if slot, o := t.f.Find(src); o != 0 {
					t.f.Touch(slot, src, now)
				}
				dst := t.hit[(j+len(t.hit)/2)%len(t.hit)]
				o, _ := t.f.Lookup(dst)
				acc ^= o
				if j++; j == len(t.hit) {
					j = 0
				}
				if n++; n%4096 == 0 {
					now++
				}
			}
			sinkOwner ^= acc
		})
	})
}
