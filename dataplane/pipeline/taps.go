package pipeline

import (
	"sync/atomic"

	"github.com/tunterm/tunterm/dataplane/stats"
)

// DropFunc observes a frame the worker drops or punts, with its reason. b is
// only valid during the call; copy it to keep it.
type DropFunc func(dir stats.Dir, b []byte, ts int64, r stats.Reason)

// TXFunc observes a frame just before it is transmitted. dir is the
// direction the frame travels (FromDown: towards the corporate side).
type TXFunc func(dir stats.Dir, b []byte, ts int64)

// TraceFunc is told the fate of every received frame: its index in the
// batch, the drop reason (stats.OK when forwarded) and how many frames it
// produced.
type TraceFunc func(dir stats.Dir, index int, r stats.Reason, outs int)

// Taps are optional observers of a worker. They are loaded once per batch;
// when none is set the hot path pays one atomic load per batch and one nil
// check per frame. Set them from any goroutine.
type Taps struct {
	p atomic.Pointer[tapSet]
}

type tapSet struct {
	Drop  DropFunc
	TX    TXFunc
	Trace TraceFunc
}

var noTaps tapSet

// Set installs observers; nil functions are not called.
func (t *Taps) Set(drop DropFunc, tx TXFunc, trace TraceFunc) {
	if drop == nil && tx == nil && trace == nil {
		t.p.Store(nil)
		return
	}
	t.p.Store(&tapSet{Drop: drop, TX: tx, Trace: trace})
}

func (t *Taps) load() *tapSet {
	if s := t.p.Load(); s != nil {
		return s
	}
	return &noTaps
}
