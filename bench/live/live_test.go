package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requireLab skips the test, loudly, when this machine cannot run the lab:
// not root, no iproute2, no network namespaces, no AF_XDP sockets.
func requireLab(t *testing.T) {
	t.Helper()
	skip := func(why string) {
		t.Skipf("!!! SKIPPING LIVE BENCHMARK SMOKE TEST: %s !!!", why)
	}
	if os.Geteuid() != 0 {
		skip("needs root (network namespaces, XDP, AF_XDP)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		skip("iproute2's ip is not installed")
	}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		skip("cannot create an AF_XDP socket: " + err.Error())
	}
	unix.Close(fd)
	name := "tt-bl-probe-" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		skip("cannot create a network namespace: " + strings.TrimSpace(string(out)))
	}
	exec.Command("ip", "netns", "del", name).Run()
}

// syncWriter lets the campaign's progress lines go to t.Log.
type syncWriter struct {
	mu sync.Mutex
	t  *testing.T
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestSmoke runs the --smoke campaign (one case, 50 tunnels, 2 s, tunterm
// and the xskfwd ceiling) and checks that traffic flowed, the JSON record
// has every field the docs promise, and nothing is left behind.
func TestSmoke(t *testing.T) {
	requireLab(t)
	o := defaults()
	smoke(&o)
	o.Out = t.TempDir()
	o.Log = &syncWriter{t: t}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	recs, files, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run(smoke) = %v", err)
	}
	if len(recs) != 1 || len(files) != 1 {
		t.Fatalf("Run(smoke) wrote %d records in %d files, want 1 and 1", len(recs), len(files))
	}
	r := recs[0]
	if r.PPS <= 0 {
		t.Errorf("pps = %v, want > 0", r.PPS)
	}
	if r.CeilingPPS <= 0 {
		t.Errorf("ceiling_pps = %v, want > 0", r.CeilingPPS)
	}
	if r.Ratio <= 0 {
		t.Errorf("ratio = %v, want > 0", r.Ratio)
	}
	// CPU per frame: the DUT's user and system time over the frames the
	// sink counted. At the maximum rate the worker is busy, so the
	// process used between a third of a CPU and all CPUs (2 here, plus
	// the tick's granularity): a unit slip by a factor of ten fails.
	for _, c := range []struct {
		name      string
		user, sys float64
		pps       float64
	}{{"tunterm", r.UserNs, r.SysNs, r.PPS}, {"xskfwd", r.CeilingUserNs, r.CeilingSysNs, r.CeilingPPS}} {
		cpus := (c.user + c.sys) * c.pps / 1e9
		if c.sys <= 0 || cpus < 0.3 || cpus > float64(runtime.NumCPU())+0.5 {
			t.Errorf("%s: user %v + sys %v ns per frame at %v pps = %.2f CPUs busy", c.name, c.user, c.sys, c.pps, cpus)
		}
	}
	// tunterm's counters lines say how long its worker waited for its CPU
	// (the record's dut_worker_wait_ms_per_s comes from them).
	lines := 0
	for _, ms := range r.Measurements {
		if ms.DUT != dutTunterm {
			continue
		}
		for _, l := range ms.DUTCounters {
			lines++
			if !strings.Contains(l, " worker_wait_us=") || !strings.Contains(l, " worker_preempted=") {
				t.Errorf("counters line without worker_wait_us and worker_preempted: %s", l)
			}
		}
	}
	if lines == 0 {
		t.Errorf("no tunterm counters lines in the record")
	}

	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", files[0], err)
	}
	for _, k := range []string{"direction", "inner_size", "cipher", "tunnels", "workers", "pps", "gbps", "loss",
		"ceiling_pps", "ratio", "steal_pct", "tries", "duration_s", "offered_pps", "dut_drops", "machine", "measurements"} {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: no field %q", files[0], k)
		}
	}
	mach, _ := m["machine"].(map[string]any)
	if k, _ := mach["kernel"].(string); k == "" {
		t.Errorf("%s: machine.kernel is empty", files[0])
	}
	if b, err := os.ReadFile(thpFile); err == nil {
		if got, _ := mach["transparent_hugepage"].(string); got != strings.TrimSpace(string(b)) {
			t.Errorf("%s: machine.transparent_hugepage = %q, the kernel says %q", files[0], got, b)
		}
	}
	if m["direction"] != "down" || m["inner_size"] != "128" || m["cipher"] != "aes-gcm-256" || m["tunnels"] != 50.0 || m["workers"] != 1.0 {
		t.Errorf("%s: case = %v/%v/%v/%v/%v, want down/128/aes-gcm-256/50/1", files[0],
			m["direction"], m["inner_size"], m["cipher"], m["tunnels"], m["workers"])
	}

	// Clean teardown: no namespaces, no processes.
	if left := leftNamespaces(o.Prefix); len(left) > 0 {
		t.Errorf("namespaces left after the run: %v", left)
	}
	if kids := children(); len(kids) > 0 {
		t.Errorf("child processes left after the run: %v", kids)
	}
}

// children lists processes whose parent is this process.
func children() []string {
	var out []string
	s := readCPU()
	for pid, p := range s.procs {
		if p.ppid == os.Getpid() {
			out = append(out, strconv.Itoa(pid)+" "+p.comm)
		}
	}
	return out
}

func TestDrops(t *testing.T) {
	t0 := time.Now()
	ls := []line{
		{t0.Add(-time.Second), `time=x level=INFO msg=counters rx_down_pps=1 not_forwarded="down/no_sa=9"`},
		{t0, `time=x level=INFO msg=counters rx_down_pps=1 macs_learned=501 not_forwarded="down/integrity=2 up/no_neighbor=3"`},
		{t0.Add(time.Second), `time=x level=INFO msg=counters rx_down_pps=1 not_forwarded="down/integrity=5"`},
		{t0.Add(time.Second), `time=x level=INFO msg=counters rx_down_pps=1 not_forwarded=""`},
		{t0.Add(5 * time.Second), `time=x level=INFO msg=counters not_forwarded="down/no_sa=1"`},
	}
	got := fmtDrops(drops(ls, t0, t0.Add(2*time.Second)))
	if want := "down/integrity=7 up/no_neighbor=3"; got != want {
		t.Errorf("drops = %q, want %q", got, want)
	}
	if n, ok := lastLearned(ls, t0); !ok || n != 501 {
		t.Errorf("lastLearned = %d, %v, want 501, true", n, ok)
	}
}

// TestWorkerWait: tunterm's counters lines as a paced run logged them
// (the text after msg=counters, as measure keeps it).
func TestWorkerWait(t *testing.T) {
	lines := []string{
		`rx_down_pps=259285 rx_up_pps=0 tx_up_pps=259285 tx_down_pps=0 tx_up_mbps=2904.0 macs_learned=5001 handoffs=0 max_poll_gap_us=1427 worker_wait_us=4347 worker_preempted=39 nic_rx_dropped=7743 nic_rx_ring_full=0 nic_rx_no_buffer=7743 not_forwarded=""`,
		`rx_down_pps=252010 rx_up_pps=0 tx_up_pps=252010 tx_down_pps=0 tx_up_mbps=2822.5 macs_learned=5001 handoffs=0 max_poll_gap_us=1262 worker_wait_us=3786 worker_preempted=29 nic_rx_dropped=0 nic_rx_ring_full=0 nic_rx_no_buffer=0 not_forwarded=""`,
		// an older tunterm: no such keys, not counted
		`rx_down_pps=1 max_poll_gap_us=99 nic_rx_dropped=0 not_forwarded=""`,
	}
	ms, pre := workerWait(lines)
	if math.Abs(ms-4.0665) > 1e-9 || pre != 34 {
		t.Errorf("workerWait = %v ms/s, %v/s; want 4.0665, 34", ms, pre)
	}
	if ms, pre := workerWait(lines[2:]); ms != 0 || pre != 0 {
		t.Errorf("workerWait without the keys = %v, %v; want 0, 0", ms, pre)
	}
	// A key that only ends another key's name is not it.
	if ms, pre := workerWait([]string{`xworker_wait_us=5000 worker_preempted=1 worker_wait_us=7000 worker_preempted=2`}); ms != 7 || pre != 2 {
		t.Errorf("workerWait = %v ms/s, %v/s; want 7, 2", ms, pre)
	}
}

func TestInnerBytes(t *testing.T) {
	for _, tc := range []struct {
		size string
		want float64
	}{{"128", 128}, {"512", 512}, {"1400", 1400}, {"imix", 354.0 + 1.0/3}, {"jumbo", 0}} {
		if got := innerBytes(tc.size); got-tc.want > 1e-9 || tc.want-got > 1e-9 {
			t.Errorf("innerBytes(%q) = %v, want %v", tc.size, got, tc.want)
		}
	}
}

// TestReport renders records as markdown and SVG; the SVG must be
// well-formed XML with a bar per rate.
func TestReport(t *testing.T) {
	loss, labLoss := 0.0001, 0.0003
	recs := []Record{
		{Case: "up-128-gcm-t500-w1", Direction: "up", InnerSize: "128", InnerBytes: 128, Cipher: "aes-gcm-256", Tunnels: 500, Workers: 1,
			PPS: 300000, Gbps: 0.307, GbpsPerCore: 0.307, CeilingPPS: 400000, Ratio: 0.75, Tries: 1, CeilingTries: 1},
		{Case: "down-1400-ctr-sha512-t10000-w2", Direction: "down", InnerSize: "1400", InnerBytes: 1400, Cipher: "aes-ctr-256-sha512",
			Tunnels: 10000, Workers: 2, PPS: 100000, Gbps: 1.12, GbpsPerCore: 0.56, Loss: &loss, CeilingPPS: 250000, Ratio: 0.4,
			CeilingLoss: &labLoss, CeilingLossRatePPS: 90000, DUTDrops: map[string]uint64{"down/integrity": 3}, Tries: 2, CeilingTries: 1, LossTries: 1, Disturbed: true},
	}
	// A second, slower run of the up case: summarised with the spread.
	second := recs[0]
	second.PPS, second.Ratio, second.CeilingPPS, second.Time = 280000, 0.7, 400000, "later"
	recs = append(recs, second)
	md := markdown(summarize(recs))
	if !strings.Contains(md, "| 2 | 0.290 (0.280–0.300) | 0.30 | 0.30 | 0.400 | 0.72 (0.70–0.75) |") {
		t.Errorf("markdown lacks the spread of the two up runs:\n%s", md)
	}
	if lines := strings.Count(md, "\n"); lines != 4 {
		t.Errorf("markdown has %d lines, want 4:\n%s", lines, md)
	}
	if i, j := strings.Index(md, "| down |"), strings.Index(md, "| up |"); i < 0 || j < i {
		t.Errorf("markdown rows not sorted down before up:\n%s", md)
	}
	for _, want := range []string{"| 0.01%; xskfwd 0.03% |", "| 0.72 (0.70–0.75) | — |", "down/integrity=3", "| ⚠ 1 of 1 |", "| 0.40 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	rows := summarize(recs)
	svg := chart(rows)
	d := xml.NewDecoder(bytes.NewReader([]byte(svg)))
	rects := 0
	for {
		tok, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("SVG is not well-formed: %v", err)
			}
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	// background + 2 legend swatches + 2 bars per case
	if want := 3 + 2*len(rows); rects != want {
		t.Errorf("SVG has %d rects, want %d", rects, want)
	}
}

// TestPerFrame: CPU time per frame from two readings of a process's ticks
// (10 ms each), and no figure when the process is missing from a reading
// or no frame passed.
func TestPerFrame(t *testing.T) {
	a := cpuSnap{procs: map[int]procTicks{7: {user: 100, sys: 50}}}
	b := cpuSnap{procs: map[int]procTicks{7: {user: 350, sys: 450}}}
	// 2.5 s user and 4 s sys over 2,000,000 frames: 1250 and 2000 ns.
	if u, s, ok := perFrame(a, b, 7, 2_000_000); !ok || u != 1250 || s != 2000 {
		t.Errorf("perFrame = %v, %v, %v, want 1250, 2000, true", u, s, ok)
	}
	if _, _, ok := perFrame(a, b, 8, 2_000_000); ok {
		t.Error("perFrame of a process missing from the readings reported a figure")
	}
	if _, _, ok := perFrame(a, b, 7, 0); ok {
		t.Error("perFrame over no frames reported a figure")
	}
	if _, _, ok := perFrame(b, a, 7, 10); ok {
		t.Error("perFrame with ticks going backwards (a new process with the same PID) reported a figure")
	}
}
