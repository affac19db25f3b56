package main

// CPU accounting over a measurement window, from /proc/stat (per CPU: user
// nice system idle iowait irq softirq steal, in USER_HZ ticks) and
// /proc/<pid>/stat (per process: utime+stime). Steal is what the hypervisor
// took from this VM; "foreign" is CPU time of user processes that are not
// the harness or its children (another job on the same VM).

import (
	"os"
	"strconv"
	"strings"
)

// cpuSnap is one reading of /proc/stat and of every process's CPU time.
type cpuSnap struct {
	cpus  map[string][8]uint64 // "cpu" (all CPUs) and "cpu0", "cpu1", ...
	procs map[int]procTicks
}

type procTicks struct {
	comm  string
	ppid  int
	kthr  bool
	ticks uint64
	// user and sys are utime and stime alone (all threads, no children):
	// the DUT's own CPU cost per frame.
	user, sys uint64
}

// pfKthread is PF_KTHREAD in /proc/<pid>/stat's flags.
const pfKthread = 0x00200000

func readCPU() cpuSnap {
	s := cpuSnap{cpus: map[string][8]uint64{}, procs: map[int]procTicks{}}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		for _, ln := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(ln, "cpu") {
				continue
			}
			f := strings.Fields(ln)
			if len(f) < 9 {
				continue
			}
			var v [8]uint64
			for i := range v {
				v[i], _ = strconv.ParseUint(f[i+1], 10, 64)
			}
			s.cpus[f[0]] = v
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		st := string(b)
		lp, rp := strings.IndexByte(st, '('), strings.LastIndexByte(st, ')')
		if lp < 0 || rp < lp || rp+2 > len(st) {
			continue
		}
		f := strings.Fields(st[rp+2:])
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		flags, _ := strconv.ParseUint(f[6], 10, 64)
		// utime, stime, and cutime, cstime: the CPU time of reaped
		// children, so that short-lived processes (a compiler run)
		// started and ended within a window still count.
		var v [4]uint64
		for i := range v {
			n, _ := strconv.ParseInt(f[11+i], 10, 64)
			v[i] = uint64(max(n, 0))
		}
		user, sys := v[0], v[1]
		ticks := v[0] + v[1] + v[2] + v[3]
		s.procs[pid] = procTicks{comm: st[lp+1 : rp], ppid: ppid, kthr: flags&pfKthread != 0, ticks: ticks, user: user, sys: sys}
	}
	return s
}

// nsPerTick converts /proc's clock ticks: USER_HZ is 100 on every Linux
// architecture's user ABI, whatever the kernel's HZ.
const nsPerTick = 1e7

// perFrame is a process's user and system CPU time in a..b, in ns per frame
// of n frames; ok is false when either reading lacks the process.
func perFrame(a, b cpuSnap, pid int, n uint64) (user, sys float64, ok bool) {
	pa, okA := a.procs[pid]
	pb, okB := b.procs[pid]
	if !okA || !okB || n == 0 || pb.user < pa.user || pb.sys < pa.sys {
		return 0, 0, false
	}
	return round(float64(pb.user-pa.user)*nsPerTick/float64(n), 0), round(float64(pb.sys-pa.sys)*nsPerTick/float64(n), 0), true
}

// CPUUse is the CPU accounting of a window.
type CPUUse struct {
	StealPct   float64 `json:"steal_pct"`   // all CPUs: steal ticks / all ticks
	ForeignPct float64 `json:"foreign_pct"` // user processes outside the harness (and their reaped children), % of all CPU time
	// KthreadPct is kernel threads other than ksoftirqd and NAPI threads
	// (kworkers: e.g. another job deleting namespaces), % of all CPU time.
	KthreadPct float64   `json:"kthread_pct"`
	BusyPct    []float64 `json:"busy_pct"`    // per CPU: 100 - idle - iowait - steal
	SoftPct    []float64 `json:"softirq_pct"` // per CPU: softirq (where NAPI, XDP and the veth copies run)
	// Foreign names the busiest foreign processes and kernel threads
	// ("comm pct", kernel threads in brackets).
	Foreign []string `json:"foreign,omitempty"`
}

// cpuDelta accounts the window a..b. Processes descending from the harness
// (self) are ours.
func cpuDelta(a, b cpuSnap, self int) CPUUse {
	var u CPUUse
	delta := func(name string) (d [8]uint64, tot uint64) {
		x, y := a.cpus[name], b.cpus[name]
		for i := range d {
			d[i] = y[i] - x[i]
			tot += d[i]
		}
		return d, tot
	}
	d, tot := delta("cpu")
	if tot == 0 {
		return u
	}
	u.StealPct = round(100*float64(d[7])/float64(tot), 2)
	for i := 0; ; i++ {
		name := "cpu" + strconv.Itoa(i)
		if _, ok := b.cpus[name]; !ok {
			break
		}
		dc, t := delta(name)
		if t == 0 {
			t = 1
		}
		u.BusyPct = append(u.BusyPct, round(100-100*float64(dc[3]+dc[4]+dc[7])/float64(t), 1))
		u.SoftPct = append(u.SoftPct, round(100*float64(dc[6])/float64(t), 1))
	}
	ours := func(pid int) bool {
		for n := 0; pid > 1 && n < 64; n++ {
			if pid == self {
				return true
			}
			p, ok := b.procs[pid]
			if !ok {
				return false
			}
			pid = p.ppid
		}
		return false
	}
	var foreign, kthr uint64
	type fp struct {
		comm string
		t    uint64
	}
	var top []fp
	for pid, p := range b.procs {
		if ours(pid) {
			continue
		}
		t := p.ticks
		if q, ok := a.procs[pid]; ok && q.comm == p.comm {
			t -= min(t, q.ticks)
		}
		if t == 0 {
			continue
		}
		if p.kthr {
			if !strings.HasPrefix(p.comm, "ksoftirqd/") && !strings.HasPrefix(p.comm, "napi/") {
				kthr += t
				top = append(top, fp{"[" + p.comm + "]", t})
			}
			continue
		}
		foreign += t
		top = append(top, fp{p.comm, t})
	}
	// A foreign process that ended within the window was counted in a; its
	// parent's cutime/cstime now holds all of its time, of which only what
	// it used after a belongs to the window.
	for pid, p := range a.procs {
		if _, ok := b.procs[pid]; ok || p.kthr || ours(p.ppid) {
			continue
		}
		foreign -= min(foreign, p.ticks)
	}
	u.ForeignPct = round(100*float64(foreign)/float64(tot), 1)
	u.KthreadPct = round(100*float64(kthr)/float64(tot), 1)
	for range 3 {
		best := -1
		for i, x := range top {
			if best < 0 || x.t > top[best].t {
				best = i
			}
		}
		if best < 0 || 100*float64(top[best].t)/float64(tot) < 1 {
			break
		}
		u.Foreign = append(u.Foreign, top[best].comm+" "+strconv.FormatFloat(100*float64(top[best].t)/float64(tot), 'f', 0, 64)+"%")
		top = append(top[:best], top[best+1:]...)
	}
	return u
}

func round(v float64, places int) float64 {
	p := 1.0
	for range places {
		p *= 10
	}
	if v < 0 {
		return -float64(int64(-v*p+0.5)) / p
	}
	return float64(int64(v*p+0.5)) / p
}
