package daemon

import (
	"testing"

	"github.com/tunterm/tunterm/dataplane/pipeline"
)

// TestPrefetchMinSAs: ports.prefetch reaches the workers as the pipeline's
// threshold: auto its default, on always, off never.
func TestPrefetchMinSAs(t *testing.T) {
	for mode, want := range map[string]int{"auto": pipeline.PrefetchAutoSAs, "on": 0, "off": -1} {
		if got := prefetchMinSAs(mode); got != want {
			t.Errorf("prefetchMinSAs(%q) = %d, want %d", mode, got, want)
		}
	}
	if pipeline.PrefetchAutoSAs <= 0 {
		t.Errorf("PrefetchAutoSAs = %d: auto would mean always", pipeline.PrefetchAutoSAs)
	}
}
