package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The kernel's CPU list format (Documentation/admin-guide/cputopology.rst):
// comma-separated CPUs and ranges, an empty file meaning none.
func TestParseCPUList(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
	}{
		{"", nil}, {"\n", nil}, {"3\n", []int{3}}, {"0-3", []int{0, 1, 2, 3}},
		{"1,4-5,9", []int{1, 4, 5, 9}}, {"2-2", []int{2}},
	} {
		got, err := parseCPUList(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if len(got) != len(c.want) {
			t.Errorf("%q: %v, want %v", c.in, got, c.want)
		}
		for _, w := range c.want {
			if !got[w] {
				t.Errorf("%q: %v lacks %d", c.in, got, w)
			}
		}
	}
	for _, bad := range []string{"a", "1-", "3-1", "-1", "1,,2", "1-x", "0-4000000000", "65536"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestNotIsolated(t *testing.T) {
	f := filepath.Join(t.TempDir(), "isolated")
	if err := os.WriteFile(f, []byte("2-3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := notIsolated([]int{1, 2, 3, 4}, f)
	if err != nil || fmt.Sprint(got) != "[1 4]" {
		t.Errorf("notIsolated = %v, %v; want [1 4]", got, err)
	}
	if _, err := notIsolated([]int{1}, filepath.Join(t.TempDir(), "none")); err == nil {
		t.Errorf("a missing file gave no error")
	}
}
