package radsec

import (
	"log/slog"
	"sync"
	"time"
)

// logEvery is the least time between two log lines of the same kind.
const logEvery = 10 * time.Second

// rateLog writes at most one line per kind every `every`; the next line of
// that kind says how many were suppressed in between. Safe for concurrent
// use. Kinds are small integers (a drop or reject reason offset into its
// own range).
type rateLog struct {
	log   *slog.Logger
	every time.Duration
	mu    sync.Mutex
	kinds map[int]*rateKind
}

type rateKind struct {
	last       time.Time
	suppressed uint64
}

// Kind ranges of rateLog.
const (
	kindDrop   = 0
	kindReject = 100
	kindOther  = 200
)

// Other kinds.
const (
	kindExpiredAccepted = kindOther + iota
	kindReadError
	kindSendError
	kindUnreachable
	kindAcceptError
)

func newRateLog(log *slog.Logger, every time.Duration) *rateLog {
	return &rateLog{log: log, every: every, kinds: map[int]*rateKind{}}
}

// warn logs msg with args unless a line of this kind was logged less than
// every ago.
func (r *rateLog) warn(kind int, msg string, args ...any) {
	now := time.Now()
	r.mu.Lock()
	k := r.kinds[kind]
	if k == nil {
		k = &rateKind{}
		r.kinds[kind] = k
	}
	if !k.last.IsZero() && now.Sub(k.last) < r.every {
		k.suppressed++
		r.mu.Unlock()
		return
	}
	n := k.suppressed
	k.last, k.suppressed = now, 0
	r.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed_since_last", n)
	}
	r.log.Warn(msg, args...)
}
