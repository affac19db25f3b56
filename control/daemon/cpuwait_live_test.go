package daemon_test

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tunterm/tunterm/control/daemon"
)

// TestDaemonWorkerWait: a busy thread on a spinning worker's CPU keeps the
// worker off it about half the time; the counters line says so in
// worker_wait_us and worker_preempted, and at start tunterm says that the
// CPU is not isolated.
func TestDaemonWorkerWait(t *testing.T) {
	cpu := runtime.NumCPU() - 1
	l := newLab(t, "veth")
	l.writeConfig(fmt.Sprintf("workers: 1\ncpus: [%d]\nports: {idle: spin}\n", cpu))
	l.start()
	iso, err := os.ReadFile("/sys/devices/system/cpu/isolated")
	if err != nil {
		t.Fatal(err)
	}
	set, err := daemon.ParseCPUList(string(iso))
	if err != nil {
		t.Fatal(err)
	}
	if note := "worker CPUs not isolated"; !set[cpu] && !l.waitText(note, 5*time.Second) {
		t.Errorf("CPU %d is not in isolated (%q) but the log lacks %q:\n%s", cpu, iso, note, l.logText())
	}

	re := regexp.MustCompile(`msg=counters .*worker_wait_us=(\d+) worker_preempted=(\d+)`)
	// wait returns the next counters line's two values.
	wait := func() (us, pre int) {
		line := l.waitLog("msg=counters", 5*time.Second)
		m := re.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("counters line without worker_wait_us and worker_preempted: %s", line)
		}
		us, _ = strconv.Atoi(m[1])
		pre, _ = strconv.Atoi(m[2])
		return us, pre
	}
	// Alone, the spinning worker has its CPU nearly all the time: some
	// 300 ms interval shows less than a third of it waited (the value is
	// the wait, not the time run, which would be the whole interval).
	least := 1 << 62
	wait() // the first line may have no earlier reading to subtract
	for range 5 {
		us, _ := wait()
		least = min(least, us)
	}
	if least >= 100000 {
		t.Errorf("worker alone on CPU %d: least worker_wait_us %d in 300 ms intervals, want < 100000", cpu, least)
	}

	// A thread spinning on the same CPU: the scheduler shares the CPU, so
	// the worker waits for a good part of each interval and is switched
	// out at every time slice.
	var stop atomic.Bool
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		var s unix.CPUSet
		s.Set(cpu)
		if err := unix.SchedSetaffinity(0, &s); err != nil {
			done <- err
			return
		}
		for !stop.Load() {
		}
		done <- nil
	}()
	most, preempted := 0, 0
	for range 5 {
		us, pre := wait()
		most, preempted = max(most, us), max(preempted, pre)
	}
	stop.Store(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Measured: ~150,000 µs and ~48 preemptions per 300 ms (the worker
	// alone: 0-2, its own system calls).
	if most < 30000 || preempted < 10 {
		t.Errorf("with a busy thread on CPU %d: most worker_wait_us %d, worker_preempted %d; want >= 30000 (of 300 ms) and >= 10", cpu, most, preempted)
	}
	if err := l.stop(unix.SIGTERM); err != nil {
		t.Errorf("exit: %v", err)
	}
}
