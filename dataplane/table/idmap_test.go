package table

import (
	"math/rand/v2"
	"testing"
)

func TestIDMap(t *testing.T) {
	for _, n := range []int{0, 1, 7, 100, 10000} {
		m := map[uint32]int{}
		for len(m) < n {
			m[rand.Uint32()|1] = len(m) + 1
		}
		im := NewIDMap(m)
		if im.Len() != n {
			t.Fatalf("Len = %d, want %d", im.Len(), n)
		}
		for k, v := range m {
			im.Prefetch(k)
			if got := im.Get(k); got != v {
				t.Fatalf("Get(%#x) = %d, want %d", k, got, v)
			}
		}
		for range 1000 {
			k := rand.Uint32()
			im.Prefetch(k)
			if _, in := m[k]; !in && im.Get(k) != 0 {
				t.Fatalf("Get(%#x) found a missing key", k)
			}
		}
		if im.Get(0) != 0 {
			t.Fatal("Get(0) found something")
		}
	}
	// Sequential keys (SPIs we assign) must not cluster badly.
	m := map[uint32]int{}
	for i := range 5000 {
		m[uint32(0x1000+i)] = i + 1
	}
	im := NewIDMap(m)
	for k, v := range m {
		if im.Get(k) != v {
			t.Fatal("sequential keys")
		}
	}
	if a := testing.AllocsPerRun(100, func() { im.Get(0x1234) }); a != 0 {
		t.Errorf("Get allocates %v", a)
	}
	if a := testing.AllocsPerRun(100, func() { im.Prefetch(0x1234) }); a != 0 {
		t.Errorf("Prefetch allocates %v", a)
	}
	// A snapshot without SAs has a zero IDMap: Prefetch is asked for
	// every ESP frame all the same.
	var zero IDMap[*int]
	if zero.Prefetch(0x1234) != 0 || zero.Get(0x1234) != nil {
		t.Error("the zero IDMap answered")
	}
}

func BenchmarkIDMap(b *testing.B) {
	m := map[uint32]*int{}
	keys := make([]uint32, 10000)
	for i := range keys {
		keys[i] = rand.Uint32() | 1
		m[keys[i]] = new(int)
	}
	im := NewIDMap(m)
	b.Run("idmap", func(b *testing.B) {
		for i := range b.N {
			if im.Get(keys[i%len(keys)]) == nil {
				b.Fatal("miss")
			}
		}
	})
	b.Run("gomap", func(b *testing.B) {
		for i := range b.N {
			if m[keys[i%len(keys)]] == nil {
				b.Fatal("miss")
			}
		}
	})
}
