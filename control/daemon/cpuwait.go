package daemon

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// threadSched is what the kernel reports of a thread's time away from its
// CPU while it wanted to run: the other tasks (and the kernel threads) that
// took the worker's CPU from it. A worker that waits here is not polling,
// and its rings fill meanwhile.
type threadSched struct {
	waitNs    uint64 // time runnable but not running (schedstat's run_delay)
	preempted uint64 // involuntary context switches
}

// readThreadSched reads /proc/self/task/TID/{schedstat,status}.
func readThreadSched(tid int) (threadSched, error) {
	var s threadSched
	dir := "/proc/self/task/" + strconv.Itoa(tid) + "/"
	b, err := os.ReadFile(dir + "schedstat")
	if err != nil {
		return s, err
	}
	// "<ns on CPU> <ns waiting on a run queue> <timeslices>"
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return s, fmt.Errorf("%sschedstat: %q: want at least 2 fields", dir, b)
	}
	if s.waitNs, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return s, fmt.Errorf("%sschedstat: %w", dir, err)
	}
	if b, err = os.ReadFile(dir + "status"); err != nil {
		return s, err
	}
	const key = "nonvoluntary_ctxt_switches:"
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return s, fmt.Errorf("%sstatus: no %s", dir, key)
	}
	line, _, _ := bytes.Cut(b[i+len(key):], []byte("\n"))
	if s.preempted, err = strconv.ParseUint(string(bytes.TrimSpace(line)), 10, 64); err != nil {
		return s, fmt.Errorf("%sstatus: %w", dir, err)
	}
	return s, nil
}

// maxCPU bounds the CPU numbers parseCPUList accepts (Linux's NR_CPUS is
// at most 8192), so that a corrupt list cannot make it allocate without end.
const maxCPU = 1<<16 - 1

// parseCPUList parses the kernel's CPU list format ("0-3,8,10-11"; empty:
// none), as in /sys/devices/system/cpu/isolated.
func parseCPUList(s string) (map[int]bool, error) {
	cpus := map[int]bool{}
	s = strings.TrimSpace(s)
	if s == "" {
		return cpus, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("CPU list %q: bad CPU %q", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("CPU list %q: bad range %q", s, part)
			}
		}
		if b > maxCPU {
			return nil, fmt.Errorf("CPU list %q: CPU %d above %d", s, b, maxCPU)
		}
		for c := a; c <= b; c++ {
			cpus[c] = true
		}
	}
	return cpus, nil
}

// notIsolated returns the CPUs of cpus that the kernel does not keep other
// tasks off (isolcpus=, read from isolatedPath), in order.
func notIsolated(cpus []int, isolatedPath string) ([]int, error) {
	b, err := os.ReadFile(isolatedPath)
	if err != nil {
		return nil, err
	}
	iso, err := parseCPUList(string(b))
	if err != nil {
		return nil, err
	}
	var out []int
	for _, c := range cpus {
		if !iso[c] {
			out = append(out, c)
		}
	}
	return out, nil
}

// thpPath is where the kernel says when it backs anonymous memory with
// transparent huge pages.
const thpPath = "/sys/kernel/mm/transparent_hugepage/enabled"

// thpMode reads the selected mode of a transparent_hugepage/enabled file:
// "always", "madvise" or "never", the word in brackets of e.g. "always
// [madvise] never".
func thpMode(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	_, rest, ok := strings.Cut(string(b), "[")
	mode, _, ok2 := strings.Cut(rest, "]")
	if !ok || !ok2 || mode == "" || strings.ContainsAny(mode, " \n") {
		return "", fmt.Errorf("%s: %q: no [selected] mode", path, bytes.TrimSpace(b))
	}
	return mode, nil
}
