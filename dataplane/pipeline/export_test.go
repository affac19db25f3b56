package pipeline

// SetPrefetch switches prefetchSA (paired A/B benchmarks).
func SetPrefetch(on bool) { prefetchOn = on }

// EncapRoom and TrailerRoom are what the worker asks for writable around a
// corporate-side frame (encapSpan).
const EncapRoom, TrailerRoom = encapRoom, trailerRoom

// PrefetchedOff is the ESP header offset prefetchSA found in frame i of
// the worker's last AP->corporate batch, 0 if it did not run for it.
func PrefetchedOff(w *Worker, i int) int { return w.pre[i].off }
