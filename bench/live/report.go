package main

// The summary of a results directory: a markdown table and an SVG bar
// chart (tunterm pps against the xskfwd ceiling, per case), both built
// from the JSON records with the standard library only.

import (
	"encoding/json"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// loadRecords reads every *.json record in dir, leaving out records with
// an error and, unless smoke, smoke records.
func loadRecords(dir string, smoke bool) ([]Record, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var recs []Record
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if r.Case == "" || r.Error != "" || (r.Smoke && !smoke) {
			continue
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// row is one case of the summary. Its Record holds the case and, over
// every run of it, the median rate, ceiling, ratio and loss; the other
// fields give the spread.
type row struct {
	Record
	N                  int
	PPSMin, PPSMax     float64
	RatioMin, RatioMax float64
	LossMax            *float64
	LossAt             float64 // median fraction of PPS the paced generator achieved
	StealMax           float64
	DisturbedN         int
	Drops              map[string]uint64 // summed over runs
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = append([]float64(nil), v...)
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// summarize groups records by case.
func summarize(recs []Record) []row {
	by := map[string][]Record{}
	for _, r := range recs {
		by[r.Case] = append(by[r.Case], r)
	}
	var rows []row
	for _, rs := range by {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Time < rs[j].Time })
		w := row{Record: rs[len(rs)-1], N: len(rs), PPSMin: math.Inf(1), RatioMin: math.Inf(1), Drops: map[string]uint64{}}
		var pps, ceil, ratio, loss, at, closs []float64
		for _, r := range rs {
			pps = append(pps, r.PPS)
			w.PPSMin, w.PPSMax = math.Min(w.PPSMin, r.PPS), math.Max(w.PPSMax, r.PPS)
			if r.CeilingPPS > 0 {
				ceil, ratio = append(ceil, r.CeilingPPS), append(ratio, r.Ratio)
				w.RatioMin, w.RatioMax = math.Min(w.RatioMin, r.Ratio), math.Max(w.RatioMax, r.Ratio)
			}
			if r.Loss != nil {
				loss = append(loss, *r.Loss)
				if w.LossMax == nil || *r.Loss > *w.LossMax {
					l := *r.Loss
					w.LossMax = &l
				}
				if r.PPS > 0 {
					at = append(at, r.LossOfferedPPS/r.PPS)
				}
			}
			if r.CeilingLoss != nil {
				closs = append(closs, *r.CeilingLoss)
			}
			w.StealMax = math.Max(w.StealMax, r.StealPct)
			if r.Disturbed {
				w.DisturbedN++
			}
			for k, v := range r.DUTDrops {
				w.Drops[k] += v
			}
		}
		w.PPS, w.CeilingPPS, w.Ratio = median(pps), median(ceil), median(ratio)
		w.Gbps = round(w.PPS*w.InnerBytes*8/1e9, 3)
		w.GbpsPerCore = round(w.Gbps/float64(max(1, w.Workers)), 3)
		w.Loss = nil
		if len(loss) > 0 {
			l := median(loss)
			w.Loss = &l
			w.LossAt = median(at)
		}
		w.CeilingLoss = nil
		if len(closs) > 0 {
			l := median(closs)
			w.CeilingLoss = &l
		}
		rows = append(rows, w)
	}
	sort.Slice(rows, func(i, j int) bool { return less(rows[i].Record, rows[j].Record) })
	return rows
}

func less(a, b Record) bool {
	switch {
	case a.Direction != b.Direction:
		return a.Direction < b.Direction // down before up
	case a.Tunnels != b.Tunnels:
		return a.Tunnels < b.Tunnels
	case a.InnerBytes != b.InnerBytes:
		return a.InnerBytes < b.InnerBytes
	case a.Cipher != b.Cipher:
		return a.Cipher > b.Cipher // gcm before ctr
	}
	return a.Workers < b.Workers
}

// pct formats a loss, small negative values (frames in flight at the
// window's edges) as 0.
func pct(v float64) string {
	if v < 0 && v > -0.001 {
		v = 0
	}
	return fmt.Sprintf("%.2f%%", 100*v)
}

// markdown renders one row per case: medians over the runs, with the
// spread when there are several.
func markdown(rows []row) string {
	var b strings.Builder
	b.WriteString("| dir | inner B | cipher | tunnels | workers | runs | tunterm Mpps | inner Gbps | Gbps/core | ceiling Mpps | ratio | loss @90% | max steal % | disturbed | tunterm drops at max load |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, w := range rows {
		rate := fmt.Sprintf("%.3f", w.PPS/1e6)
		if w.N > 1 {
			rate += fmt.Sprintf(" (%.3f–%.3f)", w.PPSMin/1e6, w.PPSMax/1e6)
		}
		ceil, ratio := "—", "—"
		if w.CeilingPPS > 0 {
			ceil, ratio = fmt.Sprintf("%.3f", w.CeilingPPS/1e6), fmt.Sprintf("%.2f", w.Ratio)
			if w.N > 1 {
				ratio += fmt.Sprintf(" (%.2f–%.2f)", w.RatioMin, w.RatioMax)
			}
		}
		loss := "—"
		if w.Loss != nil {
			loss = pct(*w.Loss)
			if w.N > 1 {
				loss += " (max " + pct(*w.LossMax) + ")"
			}
			if w.LossAt > 0 && w.LossAt < 0.97*0.9 {
				loss += fmt.Sprintf(" at %.0f%%", 100*w.LossAt)
			}
		}
		if w.CeilingLoss != nil {
			loss += "; xskfwd " + pct(*w.CeilingLoss)
		}
		dist := "no"
		if w.DisturbedN > 0 {
			dist = fmt.Sprintf("⚠ %d of %d", w.DisturbedN, w.N)
		}
		drops := fmtDrops(w.Drops)
		if drops == "" {
			drops = "none"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %d | %s | %.2f | %.2f | %s | %s | %s | %.1f | %s | %s |\n",
			w.Direction, w.InnerSize, shortCipher(w.Cipher), w.Tunnels, w.Workers, w.N, rate, w.Gbps, w.GbpsPerCore,
			ceil, ratio, loss, w.StealMax, dist, drops)
	}
	return b.String()
}

// rowsOf makes one row of each record.
func rowsOf(recs []Record) []row {
	var rows []row
	for _, r := range recs {
		rows = append(rows, summarize([]Record{r})...)
	}
	sort.SliceStable(rows, func(i, j int) bool { return less(rows[i].Record, rows[j].Record) })
	return rows
}

// chart renders rows as horizontal bars: per case, tunterm's rate above the
// ceiling's, on one Mpps scale.
func chart(rows []row) string {
	const (
		left, right, top = 250, 170, 70
		barW             = 520
		barH, gap        = 11, 10
		rowH             = 2*barH + gap
	)
	maxV := 0.0
	for _, r := range rows {
		maxV = math.Max(maxV, math.Max(r.PPS, r.CeilingPPS))
	}
	scale := niceCeil(maxV / 1e6)
	height := top + len(rows)*rowH + 40
	width := left + barW + right
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	title := "tunterm live forwarding over veth (AF_XDP copy mode) vs a plain AF_XDP forwarder"
	if len(rows) > 0 {
		m := rows[0].Machine
		title2 := fmt.Sprintf("%d vCPU %s, Linux %s, %s; rate at the sink, Mpps (median of the runs)", m.CPUs, m.CPUModel, m.Kernel, m.GoVersion)
		fmt.Fprintf(&b, `<text x="10" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
		fmt.Fprintf(&b, `<text x="10" y="38" fill="#555">%s</text>`+"\n", html.EscapeString(title2))
	}
	// Legend.
	fmt.Fprintf(&b, `<rect x="%d" y="46" width="12" height="10" fill="#1f77b4"/><text x="%d" y="55">tunterm</text>`+"\n", left, left+16)
	fmt.Fprintf(&b, `<rect x="%d" y="46" width="12" height="10" fill="#bbbbbb"/><text x="%d" y="55">ceiling (xskfwd: same I/O, no processing)</text>`+"\n", left+80, left+96)
	// Grid.
	for i := 0; i <= 5; i++ {
		v := scale * float64(i) / 5
		x := left + int(float64(barW)*float64(i)/5)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#e5e5e5"/>`+"\n", x, top-4, x, top+len(rows)*rowH)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", x, top+len(rows)*rowH+14, trimFloat(v))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#555">Mpps</text>`+"\n", left+barW/2, top+len(rows)*rowH+30)
	for i, r := range rows {
		y := top + i*rowH
		label := fmt.Sprintf("%s %s B %s, %d tun, %dw", r.Direction, r.InnerSize, shortCipher(r.Cipher), r.Tunnels, r.Workers)
		if r.DisturbedN > 0 {
			label = "⚠ " + label
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+barH+4, html.EscapeString(label))
		w := func(v float64) int { return int(math.Round(float64(barW) * v / 1e6 / scale)) }
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#1f77b4"/>`+"\n", left, y, w(r.PPS), barH)
		txt := fmt.Sprintf("%.3f (%.2f Gbps)", r.PPS/1e6, r.Gbps)
		if r.N > 1 {
			txt = fmt.Sprintf("%.3f (%.2f Gbps, %d runs)", r.PPS/1e6, r.Gbps, r.N)
		}
		if r.CeilingPPS > 0 {
			txt += fmt.Sprintf(" ratio %.2f", r.Ratio)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", left+w(r.PPS)+4, y+barH-1, html.EscapeString(txt))
		if r.CeilingPPS > 0 {
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#bbbbbb"/>`+"\n", left, y+barH, w(r.CeilingPPS), barH)
			fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">%.3f</text>`+"\n", left+w(r.CeilingPPS)+4, y+2*barH-1, r.CeilingPPS/1e6)
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
