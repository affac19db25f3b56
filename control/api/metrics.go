package api

import (
	"bufio"
	"io"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Collector is a source of metrics, read on every scrape of /metrics.
// Collect must be safe for concurrent use; it should read counters that
// the packet paths keep (atomics), never make them call into this package.
type Collector interface {
	Collect(m *Metrics)
}

// CollectorFunc adapts a function to Collector.
type CollectorFunc func(m *Metrics)

// Collect implements Collector.
func (f CollectorFunc) Collect(m *Metrics) { f(m) }

// Metrics gathers the samples of one scrape and writes them in the
// Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/): one
// HELP and TYPE line per family, its samples together, families in the
// order first seen.
//
// Label lists are alternating names and values. Not safe for concurrent
// use: one scrape, one Metrics.
type Metrics struct {
	fams   []*family
	byName map[string]*family
}

type family struct {
	name, help, typ string
	lines           []string
}

func (m *Metrics) fam(name, help, typ string) *family {
	if m.byName == nil {
		m.byName = map[string]*family{}
	}
	f := m.byName[name]
	if f == nil {
		f = &family{name: name, help: help, typ: typ}
		m.byName[name] = f
		m.fams = append(m.fams, f)
	}
	return f
}

// Counter adds a sample of a counter (a name ending in _total).
func (m *Metrics) Counter(name, help string, v float64, labels ...string) {
	f := m.fam(name, help, "counter")
	f.lines = append(f.lines, sample(name, labels, "", "", v))
}

// Gauge adds a sample of a gauge.
func (m *Metrics) Gauge(name, help string, v float64, labels ...string) {
	f := m.fam(name, help, "gauge")
	f.lines = append(f.lines, sample(name, labels, "", "", v))
}

// Histogram adds one histogram: bounds are the buckets' upper bounds in
// increasing order, cumulative[i] the observations ≤ bounds[i]; count (the
// +Inf bucket) and sum cover every observation.
func (m *Metrics) Histogram(name, help string, bounds []float64, cumulative []uint64, count uint64, sum float64, labels ...string) {
	f := m.fam(name, help, "histogram")
	for i, b := range bounds {
		f.lines = append(f.lines, sample(name+"_bucket", labels, "le", formatFloat(b), float64(cumulative[i])))
	}
	f.lines = append(f.lines, sample(name+"_bucket", labels, "le", "+Inf", float64(count)),
		sample(name+"_sum", labels, "", "", sum), sample(name+"_count", labels, "", "", float64(count)))
}

func sample(name string, labels []string, extraK, extraV string, v float64) string {
	var b strings.Builder
	b.WriteString(name)
	if len(labels) > 0 || extraK != "" {
		b.WriteByte('{')
		sep := ""
		for i := 0; i+1 < len(labels); i += 2 {
			b.WriteString(sep)
			b.WriteString(labels[i])
			b.WriteString(`="`)
			b.WriteString(labelEscaper.Replace(labels[i+1]))
			b.WriteByte('"')
			sep = ","
		}
		if extraK != "" {
			b.WriteString(sep)
			b.WriteString(extraK)
			b.WriteString(`="`)
			b.WriteString(extraV)
			b.WriteByte('"')
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(formatFloat(v))
	return b.String()
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// WriteTo writes the exposition.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	var n int64
	for _, f := range m.fams {
		k, _ := bw.WriteString("# HELP " + f.name + " " + helpEscaper.Replace(f.help) + "\n# TYPE " + f.name + " " + f.typ + "\n")
		n += int64(k)
		for _, l := range f.lines {
			k, _ = bw.WriteString(l + "\n")
			n += int64(k)
		}
	}
	return n, bw.Flush()
}

var processStart = time.Now()

// runtimeCollector exports a few Go runtime and process figures.
func runtimeCollector(m *Metrics) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.Gauge("go_goroutines", "Number of goroutines that currently exist.", float64(runtime.NumGoroutine()))
	m.Gauge("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and still in use.", float64(ms.HeapAlloc))
	m.Gauge("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", float64(ms.HeapInuse))
	m.Gauge("go_memstats_sys_bytes", "Number of bytes obtained from the OS.", float64(ms.Sys))
	m.Counter("go_gc_cycles_total", "Completed GC cycles.", float64(ms.NumGC))
	m.Gauge("process_start_time_seconds", "Start time of the process since the Unix epoch in seconds.",
		float64(processStart.UnixNano())/1e9)
}
