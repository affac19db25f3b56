package daemon

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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

// The kernel's transparent_hugepage/enabled format
// (Documentation/admin-guide/mm/transhuge.rst): the modes, the selected one
// in brackets.
func TestTHPMode(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ in, want string }{
		{"always [madvise] never\n", "madvise"},
		{"[always] madvise never\n", "always"},
		{"always madvise [never]", "never"},
		{"always inherit [madvise] never\n", "madvise"}, // a per-size file's modes
		{"always madvise never\n", ""},
		{"[]\n", ""},
		{"always [mad\nvise] never", ""},
		{"", ""},
	} {
		p := filepath.Join(dir, "enabled")
		if err := os.WriteFile(p, []byte(c.in), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := thpMode(p)
		if got != c.want || (err != nil) != (c.want == "") {
			t.Errorf("thpMode(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	if _, err := thpMode(filepath.Join(dir, "missing")); err == nil {
		t.Error("thpMode of a missing file: no error")
	}
	// This machine's own file, when the kernel has one, parses.
	if _, err := os.Stat(thpPath); err == nil {
		if m, err := thpMode(thpPath); err != nil {
			t.Errorf("thpMode(%s) = %q, %v", thpPath, m, err)
		}
	}
}

// noteTHP's start line: said for "madvise" and "never", not for "always".
func TestNoteTHP(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		in   string
		said bool
	}{
		{"always [madvise] never\n", true},
		{"always madvise [never]\n", true},
		{"[always] madvise never\n", false},
	} {
		p := filepath.Join(dir, "enabled")
		if err := os.WriteFile(p, []byte(c.in), 0o644); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		d := &Daemon{log: slog.New(slog.NewTextHandler(&buf, nil))}
		d.noteTHP(p)
		if said := strings.Contains(buf.String(), "transparent huge pages not"); said != c.said {
			t.Errorf("mode %q: log %q; want the THP line %v", c.in, buf.String(), c.said)
		}
	}
}
