// Package bridge holds the forwarding database (FDB): which side owns each
// (VLAN, MAC) — the upstream trunk or one L2TPv3 session — learned from the
// source addresses of bridged frames and aged out when they go quiet.
//
// # Who touches it
//
// Every worker goroutine reads it for each frame (Find+Touch on the source
// MAC, Lookup on the destination) and writes it when it learns: the FDB is
// shared and written by the dataplane, so it cannot be an RCU snapshot. A
// control goroutine runs Age periodically and Flush when a session goes
// away; /debug listings use Range. All of these may run at once.
//
//   - lock-free, allocation-free: Lookup, Find, Touch, Range, and Learn /
//     LearnPolicy when the key already has the owner (the per-frame case),
//     plus LearnPolicy's refusals (MoveDenied, LimitReached), so a session
//     spraying spoofed MACs cannot turn them into lock contention;
//   - one striped mutex: adding a key, moving it to another owner, Delete;
//   - two stripes for one 128-slot region at a time: Age and Flush.
//
// # Layout
//
// One fixed power-of-two array of slots, open addressing with linear probing
// from the key's home slot (a seeded splitmix64 mix of the key, so remote
// hosts cannot aim MACs at one slot). Lookups stop at the key or at the first
// empty slot — at half load that is one or two slots — and never run more
// than MaxProbe slots; an insert that finds no free slot within MaxProbe of
// home fails with Full (the caller counts it; the frame is flooded as unknown
// unicast).
//
// MaxProbe is 128, not the 32 first planned: linear probing's longest cluster
// grows like log n, and simulation (and BenchmarkLookupHit/1M, which fills 1M
// entries into 2^21 slots) showed a 32-slot limit refusing inserts from about
// 45% load at 2^21 slots (58% at 2^14). With 128 the first refusal comes near
// 70% (80% at 2^14), while typical probes are unchanged; the limit only bounds
// the worst case (32 cache lines). Size the table at about twice the expected
// entries. Two-choice hashing would allow higher load with a 32-slot limit but
// costs a second cache line on every miss; it was not worth it.
//
// A slot is two atomic words, key and owner, and the entry's last-seen time,
// padded to 32 bytes (two per cache line, never straddling one). Learning a
// source MAC checks the key and refreshes the time: one cache miss per frame
// with the time in the slot, two with the times in an array of their own
// (the layout until session 5). The price is that a Touch, at most once a
// second per entry, invalidates a line that destination lookups on other
// cores may read: a miss per entry and second, against one saved per frame.
//
// The key word holds the 60-bit Key, a live bit, and a 3-bit generation that
// is bumped each time the slot is claimed. Non-live words are empty (0, the
// zero table), tombstone or busy.
//
// # Readers
//
// Lookup loads key, owner, key again, and accepts the owner only if both key
// loads are the identical word. Writers store the owner before publishing the
// key, and a recycled slot has a new generation, so a reader can never return
// another key's owner, even if the slot was emptied and refilled with the same
// key in between (short of eight recycles of one slot inside one reader's two
// loads). A probe stops at the first empty slot.
//
// # Writers
//
// Striping is by region (128 slots, at least MaxProbe) of the key's home
// slot, over at most 256 padded mutexes. One key always maps to one stripe, so two
// workers cannot both add it: under the stripe the writer probes again, then
// updates the entry in place (move) or claims the first free slot (tombstone
// or empty) with CompareAndSwap to busy — inserters of other stripes may race
// for the same slot — stores owner and seen time, and publishes the key.
// Owner changes and removals of a key happen only under its stripe, which
// is what keeps per-owner MAC counts exact.
//
// Removal (Delete, Age, Flush) leaves a tombstone, which lookups probe past
// and inserts reuse. Age and Flush also reclaim tombstones: a tombstone whose
// next slot is empty becomes empty (walking down a region so runs collapse).
// That is only safe if no insert whose probe window covers the slot is in
// flight, so they hold the stripes of the region and of the region before it
// (the only homes whose windows reach it). Without this a long-running table
// would end up with no empty slots and every miss would probe MaxProbe slots.
//
// # Time
//
// Times are coarse seconds (uint32) supplied by the caller, compared with
// wrap-around arithmetic. Touch writes only when now is newer than the stored
// time, so each entry's timestamp is written at most once a second however
// many cores refresh it.
//
// # Policy
//
// Learn stores what it is told. LearnPolicy adds tunterm's rules — Upstream
// MACs cannot be claimed by sessions (MoveDenied → stats.MACMove), per-session
// MAC limits (LimitReached → stats.MACLimit), session→session roaming and
// upstream takeover allowed — and keeps per-owner counts through the Counts
// interface, reserving a count atomically before storing, so the limit holds
// across workers. Age and Flush report removals through a callback; Uncount
// builds the one that keeps the counts in step.
//
// A typical worker path for a frame from session s:
//
//	k := bridge.MakeKey(vlan, src)
//	if slot, o := fdb.Find(k); o == me {
//		fdb.Touch(slot, k, now) // the per-frame case: no lock, no write most of the time
//	} else if _, res := fdb.LearnPolicy(k, me, now, s.MaxMACs, counts); res.Drop() {
//		// MoveDenied → stats.MACMove, LimitReached → stats.MACLimit
//	}
package bridge
