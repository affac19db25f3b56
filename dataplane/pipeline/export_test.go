package pipeline

// SetPrefetch switches prefetchSA (paired A/B benchmarks).
func SetPrefetch(on bool) { prefetchOn = on }

// EncapRoom and TrailerRoom are what the worker asks for writable around a
// corporate-side frame (encapSpan).
const EncapRoom, TrailerRoom = encapRoom, trailerRoom
