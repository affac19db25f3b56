package bridge

import (
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Tuning constants. See doc.go for why they relate as they do.
const (
	// MaxProbe bounds every probe sequence: an entry lives within MaxProbe
	// slots of its home slot, so lookups and inserts never scan further.
	// Probes normally stop far earlier, at the key or at an empty slot; the
	// bound decides when an insert fails. Linear probing's longest cluster
	// grows with the table (about log n), so at 2^21 slots a limit of 32
	// first refuses an insert near 45% load, 128 near 70% (see doc.go).
	MaxProbe = 128

	// MinCap and MaxCap bound the capacity New accepts (after rounding).
	MinCap = 1024
	MaxCap = 1 << 30

	// regionShift sets the region size, the unit of striped locking. A
	// region must be at least MaxProbe slots long so that a probe window
	// starting in region q lies within regions q and q+1.
	regionShift = 7
	regionSize  = 1 << regionShift
	maxStripes  = 256
	minSlots    = 2 * regionSize // smallest table the tests build
)

// A slot's key word is laid out as
//
//	63..61  generation, bumped every time the slot is claimed
//	60      live
//	59..0   the Key when live; else 0 empty, 1 tombstone, 2 busy (being filled)
//
// so a zeroed table is all empty. The generation makes a reader's
// "key, owner, key again" check also detect the slot being emptied and
// refilled (even with the same key) between its two key loads.
const (
	liveBit  = 1 << 60
	genShift = 61
	genMask  = 7 << genShift
	genOne   = 1 << genShift

	stEmpty = 0
	stTomb  = 1
	stBusy  = 2
)

func isFree(st uint64) bool { return st == stEmpty || st == stTomb }

// slot is one entry. Its last refresh time lives in the slot, not in an
// array of its own, so that learning a source MAC (key check plus refresh)
// costs one cache miss, not two; the padding keeps a slot inside one cache
// line.
type slot struct {
	key   atomic.Uint64 // word as above
	owner atomic.Uint64 // Owner; valid while key is live
	seen  atomic.Uint32 // coarse seconds of the last refresh
	_     [12]byte
}

type paddedMutex struct {
	sync.Mutex
	_ [56]byte
}

// FDB is the forwarding database: a fixed-size open-addressing hash table
// mapping Key (VLAN, MAC) to Owner.
//
// Concurrency contract: an FDB is safe for concurrent use. Lookup, Find,
// Touch, Range and the refresh paths of Learn and LearnPolicy take no lock,
// finish in a bounded number of steps and do not allocate; they may run on
// any number of worker goroutines. Learning a new key, moving a key to another owner and
// Delete take one striped mutex (chosen by the key's home slot). Age and Flush
// run on a control goroutine, concurrently with all of the above, locking two
// stripes at a time for one 128-slot region. Results are weakly consistent: a
// lookup racing with a change of the same key sees the old or the new state,
// and never another key's owner.
type FDB struct {
	slots      []slot
	mask       uint64
	seed       uint64
	stripes    []paddedMutex
	stripeMask uint64
	regions    int

	_ [64]byte     // keep the read-only fields above off n's cache line
	n atomic.Int64 // live entries
	_ [56]byte
}

// New returns an empty FDB with capacity slots rounded up to a power of two
// and clamped to [MinCap, MaxCap]. The table never grows. Linear probing with
// the MaxProbe limit keeps inserts from failing (Full) until about 70% of the
// slots are in use (more in smaller tables): size it for about twice the
// entries you expect. The hash is seeded randomly per FDB so that remote
// hosts cannot choose MACs that collide.
func New(capacity int) *FDB {
	if capacity < MinCap {
		capacity = MinCap
	}
	if capacity > MaxCap {
		capacity = MaxCap
	}
	return newFDB(capacity, rand.Uint64())
}

func newFDB(capacity int, seed uint64) *FDB {
	if capacity < minSlots {
		capacity = minSlots
	}
	n := 1 << bits.Len(uint(capacity-1))
	regions := n >> regionShift
	ns := min(regions, maxStripes)
	return &FDB{
		slots:      make([]slot, n),
		mask:       uint64(n - 1),
		seed:       seed,
		stripes:    make([]paddedMutex, ns),
		stripeMask: uint64(ns - 1),
		regions:    regions,
	}
}

// Len returns the number of entries. It is exact when no writer runs.
func (f *FDB) Len() int { return int(f.n.Load()) }

// Cap returns the number of slots.
func (f *FDB) Cap() int { return len(f.slots) }

// home returns k's home slot: a seeded 64-bit mix (the splitmix64 finalizer)
// of the 60 key bits.
func (f *FDB) home(k Key) uint64 {
	z := uint64(k)&keyMask ^ f.seed
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	return z & f.mask
}

// stripe returns the mutex of the region holding slot i.
func (f *FDB) stripe(i uint64) *sync.Mutex {
	return &f.stripes[(i>>regionShift)&f.stripeMask].Mutex
}

// Lookup returns k's owner. It is lock-free and does not allocate.
func (f *FDB) Lookup(k Key) (Owner, bool) {
	_, o := f.Find(k)
	return o, o != 0
}

// Find returns the slot holding k and its owner, or (-1, 0) if k is absent.
// The slot is a hint for Touch; it may be reused for another key at any time.
// Lock-free; does not allocate.
func (f *FDB) Find(k Key) (slot int32, o Owner) {
	want := uint64(k)&keyMask | liveBit
	slots, mask := f.slots, f.mask
	i := f.home(k)
	for range MaxProbe {
		s := &slots[i]
		w := s.key.Load()
		switch w &^ genMask {
		case want:
			o := s.owner.Load()
			if s.key.Load() == w {
				return int32(i), Owner(o)
			}
			// The slot was emptied or refilled while we read it: k
			// is gone or being re-learned; keep probing.
		case stEmpty:
			return -1, 0
		}
		i = (i + 1) & mask
	}
	return -1, 0
}

// Home returns the slot where Find(k) starts, for PrefetchHomes.
func (f *FDB) Home(k Key) uint64 { return f.home(k) }

// PrefetchHomes reads the slots (from Home) that the lookups and refreshes
// of a batch of keys will read first, their key words and seen times, and
// returns a value derived from them, which means nothing. A worker calls it
// for a whole batch before the lookups themselves, so that the cache misses
// of a large table overlap instead of coming one after another; computing
// every home first and then loading them in a loop that does nothing else
// keeps many more misses in flight than hashing between the loads.
// Lock-free; does not allocate; a home beyond the table is folded into it.
func (f *FDB) PrefetchHomes(homes []uint64) uint64 {
	var h uint64
	slots, mask := f.slots, f.mask
	for _, i := range homes {
		s := &slots[i&mask]
		h += s.key.Load() + uint64(s.seen.Load())
	}
	return h
}

// Touch records that k was seen at now (coarse seconds), if slot (from Find)
// still holds k. It writes only when now is newer than the stored time, so an
// entry's cache line is written at most once per second however many frames
// refresh it. Lock-free; does not allocate. A negative slot is ignored.
func (f *FDB) Touch(slot int32, k Key, now uint32) {
	if uint64(slot) > f.mask {
		return
	}
	if f.slots[slot].key.Load()&^genMask != uint64(k)&keyMask|liveBit {
		return
	}
	f.touch(uint64(slot), now)
}

// touch advances seen[i] to now. If the slot is recycled between the
// caller's key check and the store, the new entry gets a seen time of about
// now too, which is harmless.
func (f *FDB) touch(i uint64, now uint32) {
	s := &f.slots[i].seen
	if int32(now-s.Load()) > 0 {
		s.Store(now)
	}
}

// LearnResult says what Learn or LearnPolicy did.
type LearnResult uint8

// Learn results. Added, Refreshed and Moved mean the entry now maps the key
// to the requested owner; Full means it could not be stored (the frame is
// still forwarded; callers count it). MoveDenied and LimitReached are
// LearnPolicy refusals: the caller drops the frame (stats.MACMove and
// stats.MACLimit).
const (
	Added        LearnResult = iota + 1 // the key was absent and is now stored
	Refreshed                           // the key already had this owner; seen updated
	Moved                               // the key had another owner (returned as prev)
	Full                                // absent, and no free slot within MaxProbe of home
	MoveDenied                          // policy: a session claimed an Upstream MAC
	LimitReached                        // policy: the owner is at its MAC limit
)

var learnResultNames = [...]string{"invalid", "added", "refreshed", "moved", "full", "move_denied", "limit_reached"}

func (r LearnResult) String() string {
	if int(r) < len(learnResultNames) {
		return learnResultNames[r]
	}
	return "invalid"
}

// Drop reports whether the caller must drop the frame (MoveDenied,
// LimitReached).
func (r LearnResult) Drop() bool { return r == MoveDenied || r == LimitReached }

// Learn maps k to o, recording now as its last-seen time, without any
// policy: use LearnPolicy for tunterm's learning rules and MAC counts. prev is
// the owner before the call (0 when Added or Full).
//
// Refreshing an entry that already has owner o is lock-free; adding or moving
// takes k's stripe mutex. Learn does not allocate. It panics if o is 0.
func (f *FDB) Learn(k Key, o Owner, now uint32) (prev Owner, res LearnResult) {
	return f.learn(k, o, now, 0, nil, false)
}

// learn implements Learn (policy false) and LearnPolicy (policy true).
func (f *FDB) learn(k Key, o Owner, now uint32, limit uint32, c Counts, policy bool) (Owner, LearnResult) {
	if o == 0 {
		panic("bridge: learning owner 0")
	}
	// Lock-free fast paths: refresh, and the policy refusals that a
	// misbehaving session could otherwise turn into lock contention.
	i, cur := f.Find(k)
	if cur == o {
		f.touch(uint64(i), now)
		return o, Refreshed
	}
	var cnt *atomic.Int32
	if policy {
		if cur.IsUpstream() {
			return cur, MoveDenied // o is not Upstream: cur != o
		}
		if c != nil {
			cnt = c.MACCount(o)
		}
		if cnt != nil && limit != 0 && int64(cnt.Load()) >= int64(limit) {
			return cur, LimitReached
		}
	}

	h := f.home(k)
	mu := f.stripe(h)
	mu.Lock()
	j, found, free := f.probeLocked(k, h)
	if found {
		s := &f.slots[j]
		cur = Owner(s.owner.Load())
		switch {
		case cur == o:
			f.touch(j, now)
			mu.Unlock()
			return o, Refreshed
		case policy && cur.IsUpstream():
			mu.Unlock()
			return cur, MoveDenied
		case policy && !reserve(cnt, limit):
			mu.Unlock()
			return cur, LimitReached
		}
		s.owner.Store(uint64(o))
		f.slots[j].seen.Store(now)
		if policy && c != nil {
			if pc := c.MACCount(cur); pc != nil {
				pc.Add(-1)
			}
		}
		mu.Unlock()
		return cur, Moved
	}
	if policy && !reserve(cnt, limit) {
		mu.Unlock()
		return 0, LimitReached
	}
	if !f.claimLocked(k, h, free, o, now) {
		if cnt != nil {
			cnt.Add(-1)
		}
		mu.Unlock()
		return 0, Full
	}
	mu.Unlock()
	return 0, Added
}

// probeLocked looks for k from its home h; the caller holds k's stripe, so a
// live slot holding k cannot change under it. It returns k's slot if found,
// and the probe offset of the first free slot seen before the first empty one
// (or -1).
func (f *FDB) probeLocked(k Key, h uint64) (slot uint64, found bool, free int) {
	want := uint64(k)&keyMask | liveBit
	free = -1
	for d := range MaxProbe {
		i := (h + uint64(d)) & f.mask
		st := f.slots[i].key.Load() &^ genMask
		if st == want {
			return i, true, free
		}
		if free < 0 && isFree(st) {
			free = d
		}
		if st == stEmpty {
			break
		}
	}
	return 0, false, free
}

// claimLocked stores (k, o) in the first free slot at or after probe offset
// d of home h, racing with inserters of other stripes by CompareAndSwap. The
// caller holds k's stripe and knows k is absent. It reports false if no slot
// within MaxProbe of h is free.
//
// Invariant kept: every slot between an entry's home and the entry is
// non-empty (live, busy or tombstone). Only compaction (Age, Flush) turns a
// tombstone back into empty, and it holds the stripes of every home whose
// probe window covers the slot, so it cannot interleave with this claim.
func (f *FDB) claimLocked(k Key, h uint64, d int, o Owner, now uint32) bool {
	if d < 0 {
		return false
	}
	for d < MaxProbe {
		i := (h + uint64(d)) & f.mask
		s := &f.slots[i]
		w := s.key.Load()
		if !isFree(w &^ genMask) {
			d++
			continue
		}
		gen := (w + genOne) & genMask
		if !s.key.CompareAndSwap(w, gen|stBusy) {
			continue // another stripe changed it; look again
		}
		s.owner.Store(uint64(o))
		f.slots[i].seen.Store(now)
		s.key.Store(gen | liveBit | uint64(k)&keyMask) // publish
		f.n.Add(1)
		return true
	}
	return false
}

// Delete removes k and returns the owner it had. It takes k's stripe mutex.
// Callers that count MACs per owner decrement the count themselves (see
// Uncount).
func (f *FDB) Delete(k Key) (Owner, bool) {
	h := f.home(k)
	mu := f.stripe(h)
	mu.Lock()
	defer mu.Unlock()
	i, found, _ := f.probeLocked(k, h)
	if !found {
		return 0, false
	}
	s := &f.slots[i]
	w := s.key.Load()
	o := Owner(s.owner.Load())
	s.key.Store(w&genMask | stTomb)
	f.n.Add(-1)
	return o, true
}

type entry struct {
	k Key
	o Owner
}

// Age removes every entry not seen for more than maxAge seconds before now
// (entries seen "after" now, by uint32 wrap-around order, are kept), calls
// removed (if non-nil) for each, and returns how many it removed. Run it on a
// control goroutine; it is safe concurrently with every other method, and
// reclaims tombstones (see doc.go). removed runs with no lock held, after the
// entry is gone; an entry refreshed while Age examines it may still be
// removed (it is learned again by its next frame).
func (f *FDB) Age(now, maxAge uint32, removed func(Key, Owner)) int {
	expired := func(i int) bool {
		a := now - f.slots[i].seen.Load()
		return int32(a) > 0 && a > maxAge
	}
	var buf [regionSize]entry
	total := 0
	for q := f.regions - 1; q >= 0; q-- {
		lo, hi := q<<regionShift, (q+1)<<regionShift
		need := false
		for i := lo; i < hi && !need; i++ {
			w := f.slots[i].key.Load()
			need = w&liveBit != 0 && expired(i) || f.compactable(i, w)
		}
		if !need {
			continue
		}
		f.lockRegion(q)
		n := 0
		for i := lo; i < hi; i++ {
			s := &f.slots[i]
			w := s.key.Load()
			if w&liveBit == 0 || !expired(i) {
				continue
			}
			buf[n] = entry{Key(w & keyMask), Owner(s.owner.Load())}
			n++
			s.key.Store(w&genMask | stTomb)
		}
		f.n.Add(-int64(n))
		f.compactLocked(lo, hi)
		f.unlockRegion(q)
		if removed != nil {
			for _, e := range buf[:n] {
				removed(e.k, e.o)
			}
		}
		total += n
	}
	return total
}

// Flush removes every entry for which match returns true, calls removed (if
// non-nil) for each, and returns how many it removed; e.g. all entries of a
// deleted session. match runs with no lock held; an entry whose owner changes
// between match and removal is kept, and entries learned during the Flush may
// survive it (a session's entries carry its generation, so stale ones are
// recognisable and age out). Safe concurrently with every other method.
func (f *FDB) Flush(match func(Key, Owner) bool, removed func(Key, Owner)) int {
	type cand struct {
		i    int
		w, o uint64
	}
	var cands [regionSize]cand
	var buf [regionSize]entry
	total := 0
	for q := f.regions - 1; q >= 0; q-- {
		lo, hi := q<<regionShift, (q+1)<<regionShift
		nc, compact := 0, false
		for i := lo; i < hi; i++ {
			s := &f.slots[i]
			w := s.key.Load()
			compact = compact || f.compactable(i, w)
			if w&liveBit == 0 {
				continue
			}
			o := s.owner.Load()
			if s.key.Load() != w {
				continue // changing under us: not ours to judge now
			}
			if match(Key(w&keyMask), Owner(o)) {
				cands[nc] = cand{i, w, o}
				nc++
			}
		}
		if nc == 0 && !compact {
			continue
		}
		f.lockRegion(q)
		n := 0
		for _, c := range cands[:nc] {
			s := &f.slots[c.i]
			if s.key.Load() != c.w || s.owner.Load() != c.o {
				continue
			}
			s.key.Store(c.w&genMask | stTomb)
			buf[n] = entry{Key(c.w & keyMask), Owner(c.o)}
			n++
		}
		f.n.Add(-int64(n))
		f.compactLocked(lo, hi)
		f.unlockRegion(q)
		if removed != nil {
			for _, e := range buf[:n] {
				removed(e.k, e.o)
			}
		}
		total += n
	}
	return total
}

// Range calls fn for each entry until fn returns false. It takes no locks
// and is weakly consistent: entries changed during the walk may be seen in
// either state, or missed. fn may call any FDB method.
func (f *FDB) Range(fn func(k Key, o Owner, seen uint32) bool) {
	for i := range f.slots {
		s := &f.slots[i]
		w := s.key.Load()
		if w&liveBit == 0 {
			continue
		}
		o := s.owner.Load()
		seen := f.slots[i].seen.Load()
		if s.key.Load() != w {
			continue
		}
		if !fn(Key(w&keyMask), Owner(o), seen) {
			return
		}
	}
}

// compactable reports whether slot i, whose key word is w, is a tombstone
// that compaction would turn back into empty.
func (f *FDB) compactable(i int, w uint64) bool {
	return w&^genMask == stTomb &&
		f.slots[(uint64(i)+1)&f.mask].key.Load()&^genMask == stEmpty
}

// compactLocked turns tombstones in [lo, hi) back into empty slots where the
// next slot is empty, walking down so that whole runs collapse. No entry's
// probe path can cross a tombstone followed by an empty slot, so this keeps
// the probe invariant. The caller holds lockRegion for the region: the
// stripes of every home whose probe window covers [lo, hi).
func (f *FDB) compactLocked(lo, hi int) {
	for i := hi - 1; i >= lo; i-- {
		s := &f.slots[i]
		w := s.key.Load()
		if f.compactable(i, w) {
			s.key.Store(w&genMask | stEmpty)
		}
	}
}

// regionStripes returns the stripe indexes covering every home whose probe
// window reaches region q (regions q-1 and q), lower index first.
func (f *FDB) regionStripes(q int) (a, b uint64) {
	p := (q - 1 + f.regions) % f.regions
	a, b = uint64(p)&f.stripeMask, uint64(q)&f.stripeMask
	if a > b {
		a, b = b, a
	}
	return a, b
}

// lockRegion locks the stripes of regions q-1 and q, in index order so that
// concurrent Age and Flush calls cannot deadlock (workers hold one stripe).
func (f *FDB) lockRegion(q int) {
	a, b := f.regionStripes(q)
	f.stripes[a].Lock()
	if b != a {
		f.stripes[b].Lock()
	}
}

func (f *FDB) unlockRegion(q int) {
	a, b := f.regionStripes(q)
	if b != a {
		f.stripes[b].Unlock()
	}
	f.stripes[a].Unlock()
}
