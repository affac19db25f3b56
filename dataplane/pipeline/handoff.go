package pipeline

import (
	"github.com/tunterm/tunterm/dataplane/port"
	"github.com/tunterm/tunterm/dataplane/ring"
	"github.com/tunterm/tunterm/dataplane/stats"
	"github.com/tunterm/tunterm/dataplane/table"
)

// Ownership and handoff.
//
// Each peer (its SAs and its session) has one owner worker
// (table.Peer.Owner); only the owner runs esp.SA.Open/Seal for it and writes
// its session and peer state. When the NIC's RSS cannot steer by SPI or
// session (veth, single-queue NICs, one big AP), the worker that received a
// frame hands it to the owner over an SPSC ring (one per ordered pair of
// workers), at one of three points:
//
//   - hoRaw: an AP->corporate frame as received, before decryption (the
//     owner runs it through fromDown from the start);
//   - hoEncap: an inner frame to encapsulate for a given session;
//   - hoFlood: an inner frame to flood to the owner's own members of a VLAN;
//   - hoTxDown, hoTxUp: a finished frame from a worker without a queue of
//     its own on that NIC (more workers than NIC queues), to transmit.
//
// A ring carries frames from one receiving worker to one owner in order, so
// per-SA order holds. Handoffs are staged per destination and published once
// per batch; what does not fit in a full ring is dropped with
// stats.HandoffFull. Chunks come from one shared port.Depot, so the owner may
// transmit or free a chunk another worker received.

// handedOff is the internal outcome "given to another worker": neither
// forwarded here nor dropped.
const handedOff = stats.NumReasons + 1

type handoffKind uint8

const (
	hoRaw handoffKind = iota
	hoEncap
	hoFlood
	hoTxDown // a finished frame for the downstream port (we own it)
	hoTxUp   // a finished frame for the upstream port
)

// Handoff is one frame on its way to the worker that owns it.
type Handoff struct {
	F      port.Frame
	Kind   handoffKind
	Dir    stats.Dir // direction the frame was received in
	Tagged bool
	VLAN   uint16
	// Sess and Gen name the target session (hoEncap) or the session a
	// flood came from, which must not get a copy (hoFlood; Gen 0: none).
	Sess, Gen uint32
}

// Mesh is the set of rings between n workers.
type Mesh struct {
	n     int
	rings [][]*ring.Ring[Handoff] // rings[from][to]
}

// NewMesh makes rings of the given capacity between every ordered pair of
// n workers.
func NewMesh(n, capacity int) *Mesh {
	m := &Mesh{n: n, rings: make([][]*ring.Ring[Handoff], n)}
	for i := range n {
		m.rings[i] = make([]*ring.Ring[Handoff], n)
		for j := range n {
			if i != j {
				m.rings[i][j] = ring.New[Handoff](capacity)
			}
		}
	}
	return m
}

// Workers is the number of workers the mesh connects.
func (m *Mesh) Workers() int { return m.n }

// handRaw hands the received frame being processed, restored to its
// received span, to worker to.
func (w *Worker) handRaw(to int, f *port.Frame, taps *tapSet) stats.Reason {
	f.Off, f.Len = w.cur.off, w.cur.len
	w.handoff(to, &Handoff{F: *f, Kind: hoRaw, Dir: w.cur.dir}, taps)
	return handedOff
}

// handoff stages h for worker to.
func (w *Worker) handoff(to int, h *Handoff, taps *tapSet) {
	if len(w.stage[to]) == cap(w.stage[to]) {
		w.publish(to, taps)
	}
	w.stage[to] = append(w.stage[to], *h)
	w.tally.Handoffs++
}

// publish moves staged handoffs for worker to onto its ring; the rest is
// dropped as handoff_full.
func (w *Worker) publish(to int, taps *tapSet) {
	st := w.stage[to]
	n := w.outq[to].EnqueueBatch(st)
	for i := n; i < len(st); i++ {
		w.tally.Drops[st[i].Dir][stats.HandoffFull]++
		if taps.Drop != nil {
			taps.Drop(st[i].Dir, st[i].F.Bytes(), st[i].F.TS, stats.HandoffFull)
		}
		w.pool.Put(&st[i].F)
		st[i] = Handoff{}
	}
	clear(st[:n])
	w.stage[to] = st[:0]
}

// Drain processes the frames other workers handed to this one and returns
// how many there were.
func (w *Worker) Drain() int {
	total := 0
	for j, q := range w.inq {
		if q == nil {
			continue
		}
		n := q.DequeueBatch(w.hbuf[:])
		if n == 0 {
			continue
		}
		total += n
		t := w.tables.Load()
		taps := w.Taps.load()
		w.now = uint32(w.clock().Unix())
		for i := range n {
			h := &w.hbuf[i]
			f := &h.F
			w.cur.dir, w.cur.index, w.cur.outs = h.Dir, -1-j, 0
			w.cur.off, w.cur.len = f.Off, f.Len
			var r stats.Reason
			switch {
			case t == nil:
				r = stats.NoTable
			case h.Kind == hoRaw:
				r = w.fromDown(t, f, taps)
			case h.Kind == hoTxDown:
				w.toDown(f, taps)
			case h.Kind == hoTxUp:
				w.toUp(f, taps)
			case h.Kind == hoEncap:
				if s := t.Session(h.Sess, h.Gen); s != nil && s.Peer.Owner == w.ID {
					r = w.toSession(t, s, f, h.VLAN, h.Tagged, taps)
				} else {
					r = stats.NoMember // removed or moved meanwhile
				}
			default: // hoFlood
				var src *table.Session
				if h.Gen != 0 {
					src = t.Session(h.Sess, h.Gen)
				}
				r = w.flood(t, f, h.VLAN, h.Tagged, src, h.Gen != 0, true, taps)
			}
			w.finish(f, r, taps)
			*h = Handoff{}
		}
		w.flush(taps)
	}
	return total
}
