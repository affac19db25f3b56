// Package sched keeps dataplane workers on their CPUs and their Go
// processors (Ps): a worker goroutine is locked to its OS thread and pinned
// to one CPU, never parks while it polls, and the process has at least one
// P more than it has workers.
//
// Why: a goroutine locked to its thread that parks (time.Sleep, a channel,
// a mutex) makes its thread give its P away; getting it back needs another
// thread to run the Go scheduler and hand the P over. With all CPUs but one
// busy with packet I/O, that other thread can wait milliseconds for a CPU,
// and the worker's receive ring overflows meanwhile. And when the process
// has no more Ps than workers, every control-plane goroutine (timers, IKE,
// stats) can only run by preempting a worker and taking its P.
package sched

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Pin locks the calling goroutine to its OS thread and, when cpu >= 0,
// restricts that thread to cpu. The goroutine stays locked even when
// pinning fails (the error says why). Never unlock it: when the goroutine
// returns, the runtime then ends the thread instead of handing a thread
// pinned to one CPU to other goroutines.
func Pin(cpu int) error {
	runtime.LockOSThread()
	if cpu < 0 {
		return nil
	}
	var set unix.CPUSet
	set.Set(cpu)
	return unix.SchedSetaffinity(0, &set)
}

// Nap sleeps for d in a nanosleep system call rather than in the Go
// scheduler: the thread keeps its P (the runtime does not take a P from a
// short system call while other Ps are idle) and the kernel wakes it on
// its own CPU, whatever the other CPUs are doing.
func Nap(d time.Duration) {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}

// ReserveProcs makes GOMAXPROCS at least workers+1, so that the goroutines
// other than the workers always have a P of their own. It returns the
// previous and the new value. (Go sets GOMAXPROCS from the CPUs the process
// may use at start, so `taskset -c 0 tunterm` or workers: auto on every CPU
// would otherwise leave nothing over.)
func ReserveProcs(workers int) (from, to int) {
	from = runtime.GOMAXPROCS(0)
	to = from
	if from < workers+1 {
		to = workers + 1
		runtime.GOMAXPROCS(to)
	}
	return from, to
}
