package bridge

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// Stress tests: bounded by operation counts, not time, and free of timing
// assertions; run them with -race. Workers and the control goroutine share a
// small table so that slots are claimed, tombstoned, compacted and reused
// while readers probe through them.

func stressWorkers() int { return max(4, runtime.GOMAXPROCS(0)) }

// TestStressPolicy runs the pipeline's learning pattern on overlapping keys
// from several workers while a control goroutine ages and flushes, then
// checks the table structure and that every session's count equals the
// entries it owns and respects its limit.
func TestStressPolicy(t *testing.T) {
	const (
		nKeys   = 1500 // in 2048 slots: dense enough for Full and churn
		nSess   = 8
		limit   = 220
		opsPerW = 15000
	)
	f := newFDB(2048, testSeed)
	var c testCounts
	var clock atomic.Uint32
	clock.Store(1000)
	owners := [nSess + 1]Owner{Upstream}
	for i := 1; i <= nSess; i++ {
		owners[i] = SessionOwner(uint32(i), 7)
	}
	valid := func(o Owner) bool {
		for _, x := range owners {
			if o == x {
				return true
			}
		}
		return false
	}
	un := Uncount(&c)

	var wg, running sync.WaitGroup
	var done atomic.Bool
	errs := make(chan string, 16)
	report := func(s string) {
		select {
		case errs <- s:
		default:
		}
	}
	for w := range stressWorkers() {
		running.Add(1)
		wg.Go(func() {
			defer running.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for range opsPerW {
				k := testKey(r.IntN(nKeys))
				me := owners[r.IntN(len(owners))]
				now := clock.Load()
				switch n := r.IntN(100); {
				case n < 60: // a frame: refresh or learn the source
					if slot, o := f.Find(k); o == me {
						f.Touch(slot, k, now)
					} else {
						var lim uint32
						if me != Upstream {
							lim = limit
						}
						_, res := f.LearnPolicy(k, me, now, lim, &c)
						if res == 0 {
							report("LearnPolicy returned 0")
						}
					}
				case n < 95: // a frame: look up the destination
					if o, ok := f.Lookup(k); ok && !valid(o) {
						report("Lookup returned a foreign owner " + o.String())
					}
				default:
					if o, ok := f.Delete(k); ok {
						un(k, o)
					}
				}
			}
		})
	}
	wg.Go(func() {
		r := rand.New(rand.NewPCG(99, 1))
		for i := 0; !done.Load(); i++ {
			now := clock.Load()
			if i%4 == 0 {
				now = clock.Add(1)
			}
			switch r.IntN(4) {
			case 0, 1:
				f.Age(now, uint32(5+r.IntN(20)), un)
			case 2:
				victim := owners[1+r.IntN(nSess)]
				f.Flush(func(_ Key, o Owner) bool { return o == victim }, un)
			default:
				f.Range(func(k Key, o Owner, _ uint32) bool {
					if !valid(o) {
						report("Range yielded a foreign owner")
					}
					return true
				})
			}
			runtime.Gosched()
		}
	})
	running.Wait()
	done.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	checkCounts(t, f, &c)
	for i := 1; i <= nSess; i++ {
		if n := c[i].Load(); n > limit {
			t.Errorf("session %d owns %d MACs, limit %d", i, n, limit)
		}
	}
	t.Logf("%d entries at the end", f.Len())
}

// stressOwner is the only owner key k is ever learned with, so a reader that
// sees any other owner read a recycled slot.
func stressOwner(k Key) Owner { return SessionOwner(uint32(k)&0xffff, uint32(k>>16)) }

// TestStressNoForeignOwner hammers slot recycling: keys are learned, deleted,
// aged and flushed at a high rate in a nearly full table while readers check
// that Lookup, Find and Range never return an owner of another key.
func TestStressNoForeignOwner(t *testing.T) {
	const (
		nKeys   = 900 // in 1024 slots
		opsPerW = 20000
	)
	f := newFDB(1024, testSeed)
	var clock atomic.Uint32
	var wg sync.WaitGroup
	var bad atomic.Int64
	var done atomic.Bool
	workers := stressWorkers()
	var running sync.WaitGroup
	for w := range workers {
		running.Add(1)
		wg.Go(func() {
			defer running.Done()
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for range opsPerW {
				k := testKey(r.IntN(nKeys))
				switch n := r.IntN(10); {
				case n < 4:
					f.Learn(k, stressOwner(k), clock.Load())
				case n < 6:
					f.Delete(k)
				case n < 8:
					if o, ok := f.Lookup(k); ok && o != stressOwner(k) {
						bad.Add(1)
					}
				default:
					if slot, o := f.Find(k); o != 0 {
						if o != stressOwner(k) {
							bad.Add(1)
						}
						f.Touch(slot, k, clock.Load())
					}
				}
			}
		})
	}
	wg.Go(func() {
		r := rand.New(rand.NewPCG(3, 3))
		for !done.Load() {
			now := clock.Add(1)
			switch r.IntN(3) {
			case 0:
				f.Age(now, 1, nil)
			case 1:
				f.Flush(func(k Key, _ Owner) bool { return k.MAC()[5]%3 == 0 }, nil)
			default:
				f.Range(func(k Key, o Owner, _ uint32) bool {
					if o != stressOwner(k) {
						bad.Add(1)
					}
					return true
				})
			}
			runtime.Gosched()
		}
	})
	running.Wait()
	done.Store(true)
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("readers saw %d owners of other keys", n)
	}
	for k, o := range checkTable(t, f) {
		if o != stressOwner(k) {
			t.Fatalf("%v stored with owner %v", k, o)
		}
	}
}

// TestStressSameKey: every worker learns the same few new keys at once; each
// must end up stored exactly once, with exactly one Added per key (and one
// count) per round.
func TestStressSameKey(t *testing.T) {
	const rounds = 200
	f := newFDB(1024, testSeed)
	var c testCounts
	workers := stressWorkers()
	for round := range rounds {
		keys := [4]Key{testKey(4 * round), testKey(4*round + 1), testKey(4*round + 2), testKey(4*round + 3)}
		var added atomic.Int32
		var start, wg sync.WaitGroup
		start.Add(1)
		for w := range workers {
			wg.Go(func() {
				start.Wait()
				for _, k := range keys {
					if _, res := f.LearnPolicy(k, SessionOwner(uint32(1+w%2), 0), 1, 0, &c); res == Added {
						added.Add(1)
					}
				}
			})
		}
		start.Done()
		wg.Wait()
		if n := added.Load(); n != int32(len(keys)) {
			t.Fatalf("round %d: %d Added results for %d keys", round, n, len(keys))
		}
		checkCounts(t, f, &c)
		f.Flush(func(Key, Owner) bool { return true }, Uncount(&c))
	}
}

// TestStressLimit: workers learn distinct new MACs for one session at once;
// the count reservation must stop it at exactly its limit.
func TestStressLimit(t *testing.T) {
	const (
		limit   = 50
		perW    = 400
		rounds  = 20
		session = 5
	)
	for round := range rounds {
		f := newFDB(8192, uint64(round))
		var c testCounts
		var limited atomic.Int32
		var start, wg sync.WaitGroup
		start.Add(1)
		for w := range stressWorkers() {
			wg.Go(func() {
				start.Wait()
				for i := range perW {
					_, res := f.LearnPolicy(testKey(w*perW+i), SessionOwner(session, 1), 1, limit, &c)
					if res == LimitReached {
						limited.Add(1)
					}
				}
			})
		}
		start.Done()
		wg.Wait()
		if n := c[session].Load(); n != limit || f.Len() != limit {
			t.Fatalf("round %d: count %d, %d entries, want both %d", round, n, f.Len(), limit)
		}
		if want := int32(stressWorkers()*perW - limit); limited.Load() != want {
			t.Fatalf("round %d: %d LimitReached, want %d", round, limited.Load(), want)
		}
		checkCounts(t, f, &c)
	}
}
