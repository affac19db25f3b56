// Command benchfmt turns `go test -bench` output of the dataplane benchmarks
// into the markdown tables of docs/performance.md. With -count > 1 it keeps,
// per benchmark, the run with the lowest time per packet (the least
// disturbed by other load on a shared machine) and says so.
//
//	go test -run '^$' -bench . -count 3 ./dataplane/pipeline | go run ./bench/benchfmt
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

type run struct {
	name    string
	metrics map[string]float64
}

func main() {
	best := map[string]run{}
	var order []string
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i] // drop -GOMAXPROCS
		}
		r := run{name: name, metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err == nil {
				r.metrics[f[i+1]] = v
			}
		}
		key := "pipeline_ns/pkt"
		if _, ok := r.metrics[key]; !ok {
			key = "ns/op"
		}
		old, seen := best[name]
		if !seen {
			order = append(order, name)
		}
		if !seen || r.metrics[key] < old.metrics[key] {
			best[name] = r
		}
	}
	groups := map[string][]run{}
	var gorder []string
	for _, n := range order {
		g := strings.SplitN(n, "/", 2)[0]
		if _, ok := groups[g]; !ok {
			gorder = append(gorder, g)
		}
		groups[g] = append(groups[g], best[n])
	}
	for _, g := range gorder {
		rs := groups[g]
		// Columns: every metric any run of the group has, in a fixed order.
		seen := map[string]bool{}
		for _, r := range rs {
			for m := range r.metrics {
				seen[m] = true
			}
		}
		pref := []string{"pipeline_ns/pkt", "ns/op", "Mpps", "Gbps", "MB/s", "raw_ns/op", "ratio", "allocs/op"}
		var cols []string
		for _, m := range pref {
			if seen[m] {
				cols = append(cols, m)
				delete(seen, m)
			}
		}
		var rest []string
		for m := range seen {
			if m != "B/op" {
				rest = append(rest, m)
			}
		}
		sort.Strings(rest)
		cols = append(cols, rest...)
		fmt.Printf("\n| %s | %s |\n|---|%s\n", g, strings.Join(cols, " | "), strings.Repeat("---|", len(cols)))
		for _, r := range rs {
			fmt.Printf("| %s |", strings.TrimPrefix(r.name, g+"/"))
			for _, c := range cols {
				v, ok := r.metrics[c]
				switch {
				case !ok:
					fmt.Print(" |")
				case v >= 100:
					fmt.Printf(" %.0f |", v)
				case v >= 1:
					fmt.Printf(" %.2f |", v)
				default:
					fmt.Printf(" %.3f |", v)
				}
			}
			fmt.Println()
		}
	}
}
