package sched

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestReserveProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	if from, to := ReserveProcs(2); from != 1 || to != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Fatalf("ReserveProcs(2) at 1 = %d, %d (GOMAXPROCS %d), want 1, 3", from, to, runtime.GOMAXPROCS(0))
	}
	// Enough already: unchanged, never lowered.
	if from, to := ReserveProcs(1); from != 3 || to != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Fatalf("ReserveProcs(1) at 3 = %d, %d (GOMAXPROCS %d), want 3, 3", from, to, runtime.GOMAXPROCS(0))
	}
}

// Pin restricts the calling thread, and only it, to the CPU.
func TestPin(t *testing.T) {
	var before unix.CPUSet
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		t.Fatal(err)
	}
	cpu := -1
	for c := range 1024 {
		if before.IsSet(c) {
			cpu = c // the last CPU we may use
		}
	}
	type result struct {
		set unix.CPUSet
		err error
	}
	done := make(chan result)
	go func() {
		var r result
		if r.err = Pin(cpu); r.err == nil {
			r.err = unix.SchedGetaffinity(0, &r.set)
		}
		done <- r
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.set.Count() != 1 || !r.set.IsSet(cpu) {
		t.Fatalf("pinned thread may run on %d CPUs (CPU %d: %v), want only CPU %d", r.set.Count(), cpu, r.set.IsSet(cpu), cpu)
	}
	var after unix.CPUSet
	if err := unix.SchedGetaffinity(0, &after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("the test's own thread changed affinity: %d CPUs, was %d", after.Count(), before.Count())
	}

	// A CPU that does not exist is refused, with the error.
	go func() {
		done <- result{err: Pin(1023)}
	}()
	if r := <-done; r.err == nil && runtime.NumCPU() < 1024 {
		t.Fatal("Pin(1023) succeeded on a machine without CPU 1023")
	}
}

// Nap never returns early (nanosleep resumes after a signal).
func TestNap(t *testing.T) {
	for _, d := range []time.Duration{50 * time.Microsecond, 2 * time.Millisecond} {
		start := time.Now()
		Nap(d)
		if got := time.Since(start); got < d {
			t.Errorf("Nap(%v) returned after %v", d, got)
		}
	}
}
