package stats

import "sync/atomic"

// Dir is a traffic direction.
type Dir uint8

// Directions.
const (
	FromDown Dir = iota // AP -> corporate (received on the downstream port)
	FromUp              // corporate -> AP (received on the upstream port)
	NumDirs
)

func (d Dir) String() string {
	if d == FromUp {
		return "upstream"
	}
	return "downstream"
}

// Batch is a worker's scratch tally for one batch: plain integers summed on
// the hot path and flushed into the worker's Counters once per batch.
type Batch struct {
	Drops    [NumDirs][NumReasons]uint64
	RxPkts   [NumDirs]uint64
	RxBytes  [NumDirs]uint64
	TxPkts   [NumDirs]uint64 // indexed by the direction of travel's source
	TxBytes  [NumDirs]uint64
	Flooded  uint64 // extra copies made for flooding
	FDBFull  uint64 // learning attempts refused because the FDB was full
	Learned  uint64 // new FDB entries
	Moves    uint64 // FDB entries that moved between sessions / to upstream
	Handoffs uint64 // frames handed to the worker that owns their SA/session
}

// Counters are one worker's totals. Only the owning worker writes them (with
// single-writer atomic stores); anyone may read them. The struct is padded so
// two workers' counters never share a cache line.
type Counters struct {
	_        [64]byte
	Drops    [NumDirs][NumReasons]atomic.Uint64
	RxPkts   [NumDirs]atomic.Uint64
	RxBytes  [NumDirs]atomic.Uint64
	TxPkts   [NumDirs]atomic.Uint64
	TxBytes  [NumDirs]atomic.Uint64
	Flooded  atomic.Uint64
	FDBFull  atomic.Uint64
	Learned  atomic.Uint64
	Moves    atomic.Uint64
	Handoffs atomic.Uint64
	_        [64]byte
}

func add(c *atomic.Uint64, v uint64) {
	if v != 0 {
		c.Store(c.Load() + v) // single writer: no read-modify-write race
	}
}

// Flush adds b into c and zeroes b. Called by the owning worker only.
func (c *Counters) Flush(b *Batch) {
	for d := range NumDirs {
		for r := range NumReasons {
			add(&c.Drops[d][r], b.Drops[d][r])
		}
		add(&c.RxPkts[d], b.RxPkts[d])
		add(&c.RxBytes[d], b.RxBytes[d])
		add(&c.TxPkts[d], b.TxPkts[d])
		add(&c.TxBytes[d], b.TxBytes[d])
	}
	add(&c.Flooded, b.Flooded)
	add(&c.FDBFull, b.FDBFull)
	add(&c.Learned, b.Learned)
	add(&c.Moves, b.Moves)
	add(&c.Handoffs, b.Handoffs)
	*b = Batch{}
}

// Snapshot is a plain copy of summed counters.
type Snapshot struct {
	Drops    [NumDirs][NumReasons]uint64
	RxPkts   [NumDirs]uint64
	RxBytes  [NumDirs]uint64
	TxPkts   [NumDirs]uint64
	TxBytes  [NumDirs]uint64
	Flooded  uint64
	FDBFull  uint64
	Learned  uint64
	Moves    uint64
	Handoffs uint64
}

// Sum adds the counters of all workers into one Snapshot.
func Sum(cs ...*Counters) Snapshot {
	var s Snapshot
	for _, c := range cs {
		for d := range NumDirs {
			for r := range NumReasons {
				s.Drops[d][r] += c.Drops[d][r].Load()
			}
			s.RxPkts[d] += c.RxPkts[d].Load()
			s.RxBytes[d] += c.RxBytes[d].Load()
			s.TxPkts[d] += c.TxPkts[d].Load()
			s.TxBytes[d] += c.TxBytes[d].Load()
		}
		s.Flooded += c.Flooded.Load()
		s.FDBFull += c.FDBFull.Load()
		s.Learned += c.Learned.Load()
		s.Moves += c.Moves.Load()
		s.Handoffs += c.Handoffs.Load()
	}
	return s
}
