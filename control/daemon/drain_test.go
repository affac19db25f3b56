package daemon

import (
	"testing"
	"time"
)

// TestDrainer: what waits below txKickAt is sent at the first empty poll
// when the last send is txDrain or more ago, otherwise once txDrain has
// passed since it, or at once before a nap; never when nothing was
// processed since the last send.
func TestDrainer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	var d drainer
	steps := []struct {
		busy  bool
		at    time.Duration
		force bool
		want  bool
	}{
		{false, 0, false, false},                    // nothing processed yet
		{false, 0, true, false},                     // not even before a nap
		{true, 0, false, true},                      // light load: the first empty poll sends
		{false, time.Microsecond, false, false},     // sent already
		{true, 10 * time.Microsecond, false, false}, // 10 µs after the last send: wait
		{false, 49 * time.Microsecond, false, false},
		{false, txDrain, false, true}, // txDrain after the last send
		{true, txDrain + time.Microsecond, false, false},
		{false, txDrain + 2*time.Microsecond, true, true}, // before a nap: at once
		{true, 10 * time.Millisecond, false, true},        // a lone frame much later: at once
	}
	for i, s := range steps {
		if s.busy {
			d.busy()
		}
		if got := d.idle(at(s.at), s.force); got != s.want {
			t.Errorf("step %d (busy %v, at %v, force %v): send %v, want %v", i, s.busy, s.at, s.force, got, s.want)
		}
	}
}
