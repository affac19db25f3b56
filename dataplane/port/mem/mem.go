// Package mem is an in-memory Port for tests, benchmarks, offline replay and
// the simulator. Frames injected with Inject are received in order; frames
// transmitted are handed to a sink function (or kept, when the sink is nil)
// and their chunks returned to the pool.
package mem

import (
	"github.com/tunterm/tunterm/dataplane/port"
)

// Port is an in-memory port. Owned by one worker, like every Port.
type Port struct {
	name string
	pool *port.Pool
	rx   []rxFrame
	rxHd int
	// Sink, when set, is called for every transmitted frame before its
	// chunk is returned to the pool; b is only valid during the call.
	Sink func(b []byte, ts int64)
	// Sent counts transmitted frames; Dropped counts frames refused
	// because Inject could not get a chunk.
	Sent, Dropped uint64
	// TxLimit, when > 0, is how many frames one Transmit queues; the rest
	// are refused (used to test tx_full accounting).
	TxLimit int
}

type rxFrame struct {
	data []byte
	ts   int64
}

// New returns a port named name drawing chunks from pool.
func New(name string, pool *port.Pool) *Port { return &Port{name: name, pool: pool} }

// Name implements port.Port.
func (p *Port) Name() string { return p.name }

// Inject queues a frame for reception. data is referenced until received.
func (p *Port) Inject(data []byte, ts int64) { p.rx = append(p.rx, rxFrame{data, ts}) }

// Pending is the number of injected frames not yet received.
func (p *Port) Pending() int { return len(p.rx) - p.rxHd }

// Receive implements port.Port. Frames longer than port.MaxFrame are
// truncated to it (a real NIC would not deliver them at all).
func (p *Port) Receive(b *port.Batch) int {
	n := 0
	for !b.Full() && p.rxHd < len(p.rx) {
		r := p.rx[p.rxHd]
		f, ok := p.pool.Get()
		if !ok {
			p.Dropped++
			p.rxHd++
			continue
		}
		f.Len = copy(f.Buf[f.Off:f.Off+port.MaxFrame], r.data)
		f.TS = r.ts
		b.Add(f)
		p.rx[p.rxHd] = rxFrame{}
		p.rxHd++
		n++
	}
	if p.rxHd == len(p.rx) {
		p.rx, p.rxHd = p.rx[:0], 0
	}
	return n
}

// Transmit implements port.Port.
func (p *Port) Transmit(b *port.Batch) int {
	n := 0
	for i := range b.Frames() {
		f := &b.F[i]
		if p.TxLimit > 0 && n >= p.TxLimit {
			p.pool.Put(f)
			continue
		}
		if p.Sink != nil {
			p.Sink(f.Bytes(), f.TS)
		}
		p.pool.Put(f)
		n++
	}
	p.Sent += uint64(n)
	b.N = 0
	return n
}
