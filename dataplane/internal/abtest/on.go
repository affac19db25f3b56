//go:build ttab

package abtest

import (
	"fmt"
	"os"
	"time"
)

// On is true in a build with the tag ttab.
const On = true

var (
	out    = os.Getenv("TT_AB_OUT")
	every  = uint64(4096)
	batch  uint64
	start  time.Time
	ns     [2]uint64
	frames [2]uint64
	bytes  [2]uint64
	info   func() string
	failed bool // a report could not be written (said once on stderr)
)

// B reports whether the batch being received and processed runs variant B.
func B() bool { return batch&1 == 1 }

// NextB reports whether the next batch will.
func NextB() bool { return batch&1 == 0 }

// Begin marks the start of a batch: before its Receive.
func Begin() { start = time.Now() }

// End adds the time since Begin to the variant of a full batch of frames
// frames and size bytes, and moves on to the next batch.
func End(n, size int) {
	v := batch & 1
	ns[v] += uint64(time.Since(start))
	frames[v] += uint64(n)
	bytes[v] += uint64(size)
	batch++
	if batch%every == 0 && out != "" {
		err := os.WriteFile(fmt.Sprintf("%s.%d", out, os.Getpid()), []byte(Report()+"\n"), 0o644)
		if err != nil && !failed {
			failed = true // once: the run goes on, without a report
			fmt.Fprintf(os.Stderr, "abtest: cannot write the A/B report (TT_AB_OUT): %v\n", err)
		}
	}
}

// SetInfo sets what the report says about the run besides the times (the
// number of SAs, say).
func SetInfo(f func() string) { info = f }

// Report is the line End writes: the run's info, the mean frame size, each
// variant's frames and time per frame, and B/A.
func Report() string {
	s := ""
	if info != nil {
		s = info() + " "
	}
	if frames[0] == 0 || frames[1] == 0 {
		return s + "no full batches of both variants yet"
	}
	a, b := float64(ns[0])/float64(frames[0]), float64(ns[1])/float64(frames[1])
	return fmt.Sprintf("%ssize=%.0f A frames=%d ns/frame=%.0f B frames=%d ns/frame=%.0f B/A=%.3f",
		s, float64(bytes[0]+bytes[1])/float64(frames[0]+frames[1]), frames[0], a, frames[1], b, b/a)
}
