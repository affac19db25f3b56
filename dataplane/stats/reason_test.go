package stats

import (
	"os"
	"strings"
	"testing"
)

// TestReasonsNamedAndDocumented: every reason has a distinct name and help
// text, and docs/drop-reasons.md explains it (operators rely on both).
func TestReasonsNamedAndDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/drop-reasons.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]Reason{}
	for r := OK + 1; r < NumReasons; r++ {
		name := r.String()
		if name == "" || name == "unknown" || r.Help() == "" {
			t.Errorf("reason %d has no name or help", r)
		}
		if o, dup := seen[name]; dup {
			t.Errorf("reasons %d and %d share the name %q", o, r, name)
		}
		seen[name] = r
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/drop-reasons.md does not document %q", name)
		}
	}
	if Reason(200).String() != "unknown" {
		t.Errorf("out-of-range reason should be unknown")
	}
}

func TestFlushSum(t *testing.T) {
	var a, b Counters
	var x Batch
	x.Drops[FromDown][Replay] = 3
	x.RxPkts[FromUp] = 5
	a.Flush(&x)
	if x != (Batch{}) {
		t.Errorf("Flush did not reset the batch")
	}
	x.Drops[FromDown][Replay] = 1
	b.Flush(&x)
	s := Sum(&a, &b)
	if s.Drops[FromDown][Replay] != 4 || s.RxPkts[FromUp] != 5 {
		t.Errorf("Sum = %v replay, %v rx; want 4, 5", s.Drops[FromDown][Replay], s.RxPkts[FromUp])
	}
}
