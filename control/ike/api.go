package ike

import (
	"net/http"

	"github.com/tunterm/tunterm/control/api"
)

// RegisterAPI adds /debug/ipsec and the IKE metrics to the management
// server; the returned function removes them.
func (r *Responder) RegisterAPI(s *api.Server) (unregister func()) {
	s.HandleDebug("ipsec", "IKE SAs and ESP SA pairs (swanctl --list-sas style), IKE counters, certificate policy",
		func(*http.Request) api.Page { return r.Listing() })
	un := s.Register(api.CollectorFunc(r.collect))
	return func() {
		s.RemoveDebug("ipsec")
		un()
	}
}

// collect writes the IKE counters and gauges.
func (r *Responder) collect(m *api.Metrics) {
	for i := range numCounters {
		m.Counter("tunterm_ike_events_total", "IKE responder events and refusals by kind (docs/ike.md).",
			float64(r.stats.c[i].Load()), "event", counterNames[i])
	}
	est, children := 0, 0
	for _, sa := range r.allSAs() {
		sa.mu.Lock()
		if sa.state == stEstablished {
			est++
			children += len(sa.children)
		}
		sa.mu.Unlock()
	}
	m.Gauge("tunterm_ike_sas", "IKE SAs by state.", float64(est), "state", "established")
	m.Gauge("tunterm_ike_sas", "IKE SAs by state.", float64(r.HalfOpen()), "state", "half_open")
	m.Gauge("tunterm_ike_child_sas", "CHILD_SAs of established IKE SAs.", float64(children))
}
