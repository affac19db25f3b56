package pipeline

// SetPrefetch switches prefetchSA (paired A/B benchmarks).
func SetPrefetch(on bool) { prefetchOn = on }
