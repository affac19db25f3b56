// Package ring provides Ring, a bounded lock-free single-producer /
// single-consumer FIFO that hands values from one dataplane worker to
// another without locks, allocations or wake-ups.
//
// # Why
//
// Each SA's runtime state (replay window, sequence number) has one writer, the
// worker that owns the SA. When NIC RSS cannot steer frames by SPI or session
// to that worker (veth, single-queue NICs, one busy AP behind one address), a
// dispatcher worker receives them and hands each frame descriptor to the
// owner over a Ring, one per (dispatcher, owner) pair:
//
//	dispatcher (RX) ──Ring[port.Frame]──► owner worker 1
//	                ──Ring[port.Frame]──► owner worker 2 ...
//
// A Ring is FIFO, so per-SA order survives the handoff. It never blocks and
// never loses anything silently: when it is full, Enqueue returns false and
// EnqueueBatch returns a short count, and the caller owns the rest — it
// counts a drop with a reason and returns the frames to their pool. Blocking
// would stall the dispatcher, and with it every other worker, behind one
// overloaded owner.
//
// # Contract
//
// Exactly one producer goroutine calls Enqueue / EnqueueBatch and exactly one
// consumer goroutine calls Dequeue / DequeueBatch, concurrently with each
// other. A role may move to another goroutine only across a happens-before
// edge (the first goroutine stopped and the next one learnt that through a
// channel, WaitGroup or mutex). Two producers, or two consumers, corrupt the
// ring (under -race the detector reports it when they overlap). Len and Cap may be called from
// anywhere; Len is approximate outside the two roles.
//
// Elements are copied in and out by value. What an element references (a
// frame buffer) moves with it: the producer must not touch it once it is
// enqueued, and the consumer owns it from the moment it is dequeued. Frames
// still come from the dispatcher's pool, which only its owner may touch, so
// the consumer sends finished buffers back over a second Ring (owner ->
// dispatcher) rather than freeing them itself.
//
// There is no Close and no blocking wait: workers poll, as they poll their
// ports. To shut down, stop the producer, then let the consumer drain the ring
// with DequeueBatch until it returns 0 and release what it got.
//
// # Memory ordering
//
// head (next index to read) and tail (next index to write) are
// atomic.Uint64. Go's atomics are sequentially consistent, and an atomic load
// that observes an atomic store is synchronized after it (the Go memory
// model). The producer writes the slots and then stores tail; the consumer
// loads tail and then reads those slots: the slot writes happen before the
// reads. Symmetrically the consumer reads (and zeroes) slots and then stores
// head; the producer overwrites a slot only after loading a head past it. The
// slots themselves are plain memory, so the race detector checks exactly
// this reasoning; the tests run under it, and fail if a publish is moved
// before the slot accesses it covers.
//
// # Design
//
//   - Capacity is a power of two; a slot is index & (capacity-1). Indices run
//     free as uint64 and are never reset: tail-head is the length, from 0 to
//     capacity, so every slot is usable (no "one empty slot" rule). Index
//     arithmetic is modular and stays correct when the counters wrap past 2^64
//     (tested, although at 10^9 items a second that is 584 years away).
//   - The read-only fields, the producer's fields and the consumer's fields
//     sit in separate padded groups, so the two cores write different cache
//     lines.
//   - Cached indices (as in gVisor's pkg/xdp queues and the Linux AF_XDP
//     rings): the producer keeps a possibly stale copy of head and reloads it
//     only when the copy shows less room than it needs; the consumer keeps a
//     copy of tail and reloads it only when the copy shows fewer elements than
//     asked for. A stale copy errs on the safe side: it can only understate
//     room or contents. In steady state a batch costs at most one atomic load
//     of the other side's line and exactly one atomic store of its own.
//   - Batches: EnqueueBatch and DequeueBatch move a prefix with at most two
//     copies (the second when the run wraps) and publish it with one store.
//     A partial EnqueueBatch is how the caller learns which frames to drop.
//
// # Zeroing vacated slots
//
// Dequeue and DequeueBatch zero the slots they empty. That is a third pass
// over each element, after the copy in and the copy out, into a line the
// consumer has just read: measured in CPU time on the shared development VM,
// BenchmarkBatch/64 went from about 1.8 to about 3.2 ns per 56-byte
// descriptor with it. Next to the rest of a frame's path (ESP alone takes
// hundreds of nanoseconds for a full-size frame) that is noise, and it buys
// two things. The garbage collector is
// never kept from reclaiming something that only a stale slot still
// references (wireguard-go clears its queue elements for the same reason) —
// Ring is generic and cannot know what T points to. And a stale descriptor
// never lingers looking like a live frame, which limits what a
// use-after-handoff bug can see. For descriptors of pool chunks, which the
// pool keeps alive anyway, only the second applies; if a profile of the real
// dispatcher ever shows the clear, an opt-out is a flag checked once per
// batch.
//
// # Sizing
//
// A ring must absorb the burst the owner cannot take at once: a few batches
// (port.BatchSize = 64) is the minimum, 256 to 1024 descriptors (14 to 56 KiB
// of 56-byte descriptors) is typical. A ring that is often full means the
// owner is overloaded; a bigger ring only adds latency.
package ring
