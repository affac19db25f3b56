//go:build ttab

package abtest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAlternates: the variants alternate batch by batch, NextB names the
// next batch's, each batch's time goes to its own variant, and the report
// file appears under TT_AB_OUT with B/A from those times.
func TestAlternates(t *testing.T) {
	reset()
	out = filepath.Join(t.TempDir(), "ab")
	every = 4
	SetInfo(func() string { return "sas=7" })
	for i := range 8 {
		wantB := i%2 == 1
		if B() != wantB || NextB() == wantB {
			t.Fatalf("batch %d: B() = %v, NextB() = %v", i, B(), NextB())
		}
		Begin()
		if B() {
			time.Sleep(4 * time.Millisecond) // B is the slower one here
		}
		End(64, 64*100)
	}
	if frames[0] != 4*64 || frames[1] != 4*64 || ns[1] <= ns[0] {
		t.Fatalf("frames %v, ns %v: want 256 each and B's time above A's", frames, ns)
	}
	b, err := os.ReadFile(out + "." + strconv.Itoa(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	r := string(b)
	if !strings.HasPrefix(r, "sas=7 size=100 A frames=256 ") || !strings.Contains(r, " B frames=256 ") {
		t.Fatalf("report %q", r)
	}
	i := strings.Index(r, "B/A=")
	if ratio, err := strconv.ParseFloat(strings.TrimSpace(r[i+4:]), 64); err != nil || ratio <= 1 {
		t.Errorf("report %q: B/A %v (%v), want above 1", r, ratio, err)
	}
}

// TestReportNotWritable: a TT_AB_OUT that cannot be written is said once
// and the run goes on, switching and timing as before.
func TestReportNotWritable(t *testing.T) {
	reset()
	out = filepath.Join(t.TempDir(), "missing", "ab")
	every = 1
	for range 4 {
		Begin()
		End(64, 64*100)
	}
	if !failed || batch != 4 || frames[0] != 2*64 || frames[1] != 2*64 {
		t.Fatalf("failed %v, batch %d, frames %v: want the failure noted and 4 batches timed", failed, batch, frames)
	}
}

// reset clears the switch's state between tests.
func reset() {
	batch, ns, frames, bytes, info, failed = 0, [2]uint64{}, [2]uint64{}, [2]uint64{}, nil, false
}
