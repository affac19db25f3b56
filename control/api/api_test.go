package api

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tunterm/tunterm/control/config"
)

type testPage struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func (p testPage) WriteText(w io.Writer) { fmt.Fprintf(w, "Test page %s: %d\n", p.Name, p.Count) }

func newTestServer(t *testing.T) *Server {
	s := New(nil)
	s.HandleDebug("test", "a test page", func(r *http.Request) Page {
		return testPage{Name: r.URL.Query().Get("name"), Count: 3}
	})
	s.Register(CollectorFunc(func(m *Metrics) {
		m.Counter("tunterm_test_packets_total", "Packets.\nSecond line with a \\ backslash.", 7, "reason", `quote " and \ and`+"\nnewline")
		m.Counter("tunterm_test_packets_total", "Packets.\nSecond line with a \\ backslash.", 2, "reason", "plain")
		m.Gauge("tunterm_test_up", "Up.", 1)
		m.Gauge("tunterm_test_special", "Special values.", math.Inf(1), "v", "inf")
		m.Histogram("tunterm_test_seconds", "Latency.", []float64{0.001, 0.01, 1}, []uint64{1, 3, 4}, 5, 2.5, "server", "a")
		m.Gauge("tunterm_test_up", "Up.", 0, "late", "yes") // a family's samples stay together
	}))
	return s
}

func get(t *testing.T, h http.Handler, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestDebugPages(t *testing.T) {
	s := newTestServer(t)
	h := s.Handler()
	tests := []struct {
		name, path string
		hdr        []string
		code       int
		ctype      string
		want       string
	}{
		{"text by default", "/debug/test?name=x", nil, 200, "text/plain", "Test page x: 3\n"},
		{"JSON with ?format=json", "/debug/test?format=json&name=y", nil, 200, "application/json", `"name": "y"`},
		{"JSON with Accept", "/debug/test", []string{"Accept", "application/json"}, 200, "application/json", `"count": 3`},
		{"text with Accept text/plain", "/debug/test", []string{"Accept", "text/plain, application/json"}, 200, "text/plain", "Test page"},
		{"?format=text wins over Accept", "/debug/test?format=text", []string{"Accept", "application/json"}, 200, "text/plain", "Test page"},
		{"unknown page", "/debug/nope", nil, 404, "text/plain", `no debug page "nope"`},
		{"index", "/debug/", nil, 200, "text/plain", "/debug/test"},
		{"index JSON", "/?format=json", nil, 200, "application/json", `"test":"a test page"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := get(t, h, tc.path, tc.hdr...)
			if w.Code != tc.code || !strings.HasPrefix(w.Header().Get("Content-Type"), tc.ctype) || !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("GET %s = %d %s %q, want %d %s containing %q", tc.path, w.Code, w.Header().Get("Content-Type"),
					w.Body.String(), tc.code, tc.ctype, tc.want)
			}
		})
	}
	var p testPage
	if err := json.Unmarshal(get(t, h, "/debug/test?format=json&name=z").Body.Bytes(), &p); err != nil || p.Name != "z" {
		t.Errorf("JSON page = %+v, %v", p, err)
	}
	s.RemoveDebug("test")
	if w := get(t, h, "/debug/test"); w.Code != 404 {
		t.Errorf("after RemoveDebug: %d", w.Code)
	}
}

func TestMetricsExposition(t *testing.T) {
	w := get(t, newTestServer(t).Handler(), "/metrics")
	body := w.Body.String()
	if ct := w.Header().Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	for _, want := range []string{
		"# HELP tunterm_test_packets_total Packets.\\nSecond line with a \\\\ backslash.\n# TYPE tunterm_test_packets_total counter\n",
		`tunterm_test_packets_total{reason="quote \" and \\ and\nnewline"} 7` + "\n",
		"tunterm_test_up 1\ntunterm_test_up{late=\"yes\"} 0\n",
		`tunterm_test_special{v="inf"} +Inf`,
		`tunterm_test_seconds_bucket{server="a",le="0.001"} 1`,
		`tunterm_test_seconds_bucket{server="a",le="+Inf"} 5`,
		`tunterm_test_seconds_sum{server="a"} 2.5`,
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if n := strings.Count(body, "# TYPE tunterm_test_up "); n != 1 {
		t.Errorf("tunterm_test_up has %d TYPE lines, want 1", n)
	}
}

// The exposition parsed by the Prometheus project's own Python client
// (Debian python3-prometheus-client), which we did not write.
func TestMetricsParsedByPrometheusClient(t *testing.T) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import prometheus_client.parser").Run(); err != nil {
		t.Skipf("!!! SKIPPING: %s cannot import prometheus_client (apt-get install python3-prometheus-client): %v !!!", py, err)
	}
	body := get(t, newTestServer(t).Handler(), "/metrics").Body.String()
	script := `
import sys, json
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    for s in f.samples:
        out.setdefault(f.name + "/" + f.type, []).append([s.name, s.labels, repr(s.value)])
print(json.dumps(out))
`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("prometheus_client cannot parse /metrics: %v\n%s\n--- exposition:\n%s", err, out, body)
	}
	var fams map[string][][]any
	if err := json.Unmarshal(out, &fams); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	pk := fams["tunterm_test_packets/counter"]
	if len(pk) != 2 || pk[0][1].(map[string]any)["reason"] != "quote \" and \\ and\nnewline" || pk[0][2] != "7.0" {
		t.Errorf("packets = %v", pk)
	}
	if sp := fams["tunterm_test_special/gauge"]; len(sp) != 1 || sp[0][2] != "inf" {
		t.Errorf("special = %v, want inf", sp)
	}
	h := fams["tunterm_test_seconds/histogram"]
	if len(h) != 6 {
		t.Errorf("histogram samples = %v, want 4 buckets, sum, count", h)
	}
	if _, ok := fams["go_goroutines/gauge"]; !ok {
		t.Errorf("no go_goroutines: %v", fams)
	}
}

func TestStartClose(t *testing.T) {
	s := newTestServer(t)
	if err := s.Start(config.Management{Listen: "off"}); err != nil || s.Addr() != nil {
		t.Fatalf("Start(off) = %v, addr %v", err, s.Addr())
	}
	if err := s.Start(config.Management{Listen: "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + s.Addr().String() + "/debug/test")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "Test page") {
		t.Errorf("GET /debug/test = %q", b)
	}
	// A second server on the same address fails with the key named.
	s2 := New(nil)
	if err := s2.Start(config.Management{Listen: s.Addr().String()}); err == nil || !strings.Contains(err.Error(), "management.listen") {
		t.Errorf("Start on a busy address = %v, want an error naming management.listen", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if _, err := c.Get("http://" + s.Addr().String() + "/metrics"); err == nil {
		t.Error("still serving after Close")
	}
}
