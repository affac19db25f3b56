package pipeline

import "math"

// SetPrefetch switches w's prefetchSA on for every batch or off
// (BenchmarkPipelineMany's paired A/B), as PrefetchMinSAs 0 or negative.
func SetPrefetch(w *Worker, on bool) {
	w.prefetchMin = 0
	if !on {
		w.prefetchMin = math.MaxInt
	}
}

// EncapRoom and TrailerRoom are what the worker asks for writable around a
// corporate-side frame (encapSpan).
const EncapRoom, TrailerRoom = encapRoom, trailerRoom

// PrefetchedOff is the ESP header offset prefetchSA found in frame i of
// the worker's last AP->corporate batch, 0 if it did not run for it.
func PrefetchedOff(w *Worker, i int) int { return w.pre[i].off }
