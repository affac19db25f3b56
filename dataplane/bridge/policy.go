package bridge

import "sync/atomic"

// Counts gives LearnPolicy the per-owner counter of learned MACs. The
// session table implements it (a pointer receiver keeps calls
// allocation-free).
type Counts interface {
	// MACCount returns o's counter, or nil if o is not counted (Upstream,
	// or a session that no longer exists). It is called with a stripe
	// mutex held: it must be quick and must not call into the FDB.
	MACCount(o Owner) *atomic.Int32
}

// LearnPolicy learns k for o under tunterm's learning rules, keeping the
// per-owner MAC counts in c (nil: no counting and no limit):
//
//   - a key owned by Upstream is never taken over by a session: MoveDenied
//     (drop the frame, stats.MACMove);
//   - o may own at most limit keys (0 = unlimited): learning one more, as a
//     new key or by a move, returns LimitReached (drop, stats.MACLimit);
//   - a session may take a key from another session (the client roamed to
//     another AP): Moved, and the count moves with it;
//   - Upstream may take a key from a session (the client came back to the
//     office): Moved, and the session's count drops;
//   - Full: no slot within MaxProbe; nothing is counted, the frame is still
//     forwarded.
//
// The count is reserved atomically before the entry is stored, so concurrent
// learns for one owner on several workers never exceed limit. Refreshes and
// both refusals are lock-free; adds and moves take k's stripe mutex. Entries
// removed by Age, Flush or Delete must be uncounted by the caller: pass
// Uncount(c) as the removed callback. Do not mix Learn and LearnPolicy on one
// FDB if you rely on the counts. Does not allocate (given a MACCount that does
// not). Panics if o is 0.
func (f *FDB) LearnPolicy(k Key, o Owner, now uint32, limit uint32, c Counts) (prev Owner, res LearnResult) {
	return f.learn(k, o, now, limit, c, true)
}

// reserve adds one to cnt unless that would exceed limit (0 = none). A nil
// counter always succeeds.
func reserve(cnt *atomic.Int32, limit uint32) bool {
	if cnt == nil {
		return true
	}
	n := cnt.Add(1)
	if limit != 0 && int64(n) > int64(limit) {
		cnt.Add(-1)
		return false
	}
	return true
}

// Uncount returns a removed callback for Age, Flush (or a Delete result)
// that takes one off the removed entry's owner counter in c. It allocates one
// closure; build it once.
func Uncount(c Counts) func(Key, Owner) {
	return func(_ Key, o Owner) {
		if p := c.MACCount(o); p != nil {
			p.Add(-1)
		}
	}
}
