// Package api is tunterm's management HTTP server (port 9110 by default,
// on the management side): Prometheus metrics on /metrics and
// troubleshooting pages on /debug/<name>, each rendered as text (like an
// appliance's show command) or as JSON (?format=json, or Accept:
// application/json).
//
// Subsystems plug in: a Collector with Register, a page with HandleDebug
// (/debug/radsec today; /debug/ipsec, /debug/l2tp, /debug/ports later).
// Safe for concurrent use.
//
// /metrics is written by Metrics in the Prometheus text format 0.0.4; see
// docs/radsec.md for why this is not github.com/prometheus/client_golang
// yet.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tunterm/tunterm/control/config"
)

// Page is what a debug handler returns: text for people, JSON (the value
// itself, through encoding/json) for programs.
type Page interface {
	WriteText(w io.Writer)
}

// PageFunc builds a page for one request (it may read query parameters).
type PageFunc func(r *http.Request) Page

type debugPage struct {
	summary string
	f       PageFunc
}

// Server is the management server.
type Server struct {
	log *slog.Logger
	mux *http.ServeMux

	mu         sync.RWMutex
	collectors map[int]Collector
	nextID     int
	pages      map[string]debugPage
	srv        *http.Server
	ln         net.Listener
	done       chan struct{}
}

// New returns a server with the Go runtime collector registered and no
// debug pages. It listens after Start.
func New(log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{log: log, mux: http.NewServeMux(), pages: map[string]debugPage{},
		collectors: map[int]Collector{0: CollectorFunc(runtimeCollector)}, nextID: 1}
	s.mux.HandleFunc("GET /metrics", s.serveMetrics)
	s.mux.HandleFunc("GET /debug/{name}", s.serveDebug)
	s.mux.HandleFunc("GET /debug/{$}", s.serveIndex)
	s.mux.HandleFunc("GET /{$}", s.serveIndex)
	return s
}

// Register adds a collector to /metrics; the returned function removes it.
func (s *Server) Register(c Collector) (unregister func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextID
	s.nextID++
	s.collectors[id] = c
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.collectors, id)
	}
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	ids := make([]int, 0, len(s.collectors))
	for id := range s.collectors {
		ids = append(ids, id)
	}
	sort.Ints(ids) // registration order: stable output
	cs := make([]Collector, len(ids))
	for i, id := range ids {
		cs[i] = s.collectors[id]
	}
	s.mu.RUnlock()
	var m Metrics
	for _, c := range cs {
		c.Collect(&m)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	if _, err := m.WriteTo(w); err != nil {
		s.log.Debug("management: writing /metrics", "err", err)
	}
}

// HandleDebug serves f on /debug/<name>, replacing any page of that name.
func (s *Server) HandleDebug(name, summary string, f PageFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pages[name] = debugPage{summary, f}
}

// RemoveDebug removes /debug/<name>.
func (s *Server) RemoveDebug(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pages, name)
}

// Handler is the server's HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.mux }

// Start listens on m.Listen and serves in the background. A disabled
// configuration (listen: off) starts nothing.
func (s *Server) Start(m config.Management) error {
	if !m.Enabled() {
		return nil
	}
	ln, err := net.Listen("tcp", m.Listen)
	if err != nil {
		return fmt.Errorf("management.listen: %w", err)
	}
	s.mu.Lock()
	s.ln = ln
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 16 << 10}
	s.done = make(chan struct{})
	srv, done := s.srv, s.done
	s.mu.Unlock()
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("management server stopped", "err", err)
		}
	}()
	s.log.Info("management server listening", "address", ln.Addr().String(), "metrics", "/metrics", "debug", "/debug/")
	return nil
}

// Addr is the listening address, nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops the server, letting requests in progress finish for up to
// two seconds.
func (s *Server) Close() error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		srv.Close()
	}
	<-done
	return err
}

// wantJSON: ?format=json, or an Accept header preferring JSON.
func wantJSON(r *http.Request) bool {
	switch r.URL.Query().Get("format") {
	case "json":
		return true
	case "text":
		return false
	}
	for _, a := range strings.Split(r.Header.Get("Accept"), ",") {
		mt := strings.TrimSpace(strings.SplitN(a, ";", 2)[0])
		switch mt {
		case "application/json":
			return true
		case "text/plain", "text/html", "text/*":
			return false
		}
	}
	return false
}

func (s *Server) serveDebug(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.RLock()
	pg, ok := s.pages[name]
	s.mu.RUnlock()
	if !ok {
		http.Error(w, fmt.Sprintf("no debug page %q; see /debug/", name), http.StatusNotFound)
		return
	}
	page := pg.f(r)
	w.Header().Set("Cache-Control", "no-store")
	if wantJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(page); err != nil {
			s.log.Error("management: encoding JSON", "page", name, "err", err)
		}
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	page.WriteText(w)
}

// index lists the debug pages.
type index struct {
	Metrics string            `json:"metrics"`
	Debug   map[string]string `json:"debug"`
}

func (x index) WriteText(w io.Writer) {
	fmt.Fprintf(w, "tunterm management\n\n  %-22s Prometheus metrics\n", x.Metrics)
	names := make([]string, 0, len(x.Debug))
	for n := range x.Debug {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-22s %s\n", "/debug/"+n, x.Debug[n])
	}
	fmt.Fprintf(w, "\nText by default; JSON with ?format=json or Accept: application/json.\n")
}

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	x := index{Metrics: "/metrics", Debug: map[string]string{}}
	s.mu.RLock()
	for n, p := range s.pages {
		x.Debug[n] = p.summary
	}
	s.mu.RUnlock()
	if wantJSON(r) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(x)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	x.WriteText(w)
}
