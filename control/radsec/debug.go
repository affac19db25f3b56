package radsec

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// maxListedAPs bounds the AP connections listed by /debug/radsec (the
// newest first); ?aps=all lists every one.
const maxListedAPs = 50

// Report is the state of the proxy shown by /debug/radsec: rendered as text
// by WriteText, or as JSON.
type Report struct {
	Listen        string            `json:"listen"`
	Uptime        string            `json:"uptime"`
	Loaded        time.Time         `json:"config_loaded"`
	Certificate   certInfo          `json:"certificate"`
	CAs           []certInfo        `json:"cas"`
	AcceptExpired bool              `json:"accept_expired"`
	Connections   ConnReport        `json:"connections"`
	Rejected      map[string]uint64 `json:"rejected_connections"`
	APRequests    map[string]uint64 `json:"ap_requests"`
	APResponses   map[string]uint64 `json:"ap_responses"`
	Dropped       []DropReport      `json:"dropped"`
	Groups        []GroupReport     `json:"groups"`
	APs           []APReport        `json:"aps"`
	APsOmitted    int               `json:"aps_omitted"`
}

// ConnReport counts AP connections.
type ConnReport struct {
	Current         int64  `json:"current"`
	Total           uint64 `json:"total"`
	Max             int    `json:"max"`
	IdleClosed      uint64 `json:"idle_closed"`
	ExpiredAccepted uint64 `json:"expired_certificates_accepted"`
	InflightMax     int    `json:"max_inflight_per_connection"`
}

// DropReport is one non-zero drop counter.
type DropReport struct {
	From   string `json:"from"`
	Reason string `json:"reason"`
	Count  uint64 `json:"count"`
	Hint   string `json:"hint"`
}

// GroupReport is the auth or acct server list.
type GroupReport struct {
	Group     string         `json:"group"`
	Active    string         `json:"active"`
	Failovers uint64         `json:"failovers"`
	Servers   []ServerReport `json:"servers"`
}

// ServerReport is one RADIUS server.
type ServerReport struct {
	Name            string            `json:"name"`
	Address         string            `json:"address"`
	State           string            `json:"state"`
	Since           time.Time         `json:"since"`
	StatusServer    bool              `json:"status_server"`
	RequireMA       bool              `json:"require_message_authenticator"`
	LastProbe       *time.Time        `json:"last_probe,omitempty"`
	LastProbeResult string            `json:"last_probe_result,omitempty"`
	LastProbeRTTms  float64           `json:"last_probe_rtt_ms,omitempty"`
	LastAnswer      *time.Time        `json:"last_answer,omitempty"`
	LastError       string            `json:"last_error,omitempty"`
	Requests        map[string]uint64 `json:"requests"`
	Responses       map[string]uint64 `json:"responses"`
	Retransmissions uint64            `json:"retransmissions"`
	Timeouts        uint64            `json:"timeouts"`
	FailedOver      uint64            `json:"failed_over"`
	Probes          map[string]uint64 `json:"probes"`
	Unreachable     uint64            `json:"icmp_unreachable"`
	Inflight        int               `json:"inflight"`
	Sockets         int               `json:"sockets"`
	P50ms           float64           `json:"latency_p50_ms"`
	P99ms           float64           `json:"latency_p99_ms"`
}

// APReport is one AP connection.
type APReport struct {
	Peer         string    `json:"peer"`
	Subject      string    `json:"subject"`
	TLS          string    `json:"tls"`
	Since        time.Time `json:"since"`
	CertNotAfter time.Time `json:"cert_not_after"`
	Expired      bool      `json:"cert_expired"`
	Requests     uint64    `json:"requests"`
	Responses    uint64    `json:"responses"`
	Inflight     int       `json:"inflight"`
	LastRequest  time.Time `json:"last_request"`
}

// Report snapshots the proxy's state; allAPs lists every AP connection
// rather than the newest maxListedAPs.
func (p *Proxy) Report(allAPs bool) *Report {
	s := p.cur.Load()
	st := &p.st
	r := &Report{
		Listen: s.rc.ListenAddr.String(), Loaded: s.loaded, Certificate: s.tls.cert, CAs: s.tls.cas,
		AcceptExpired: s.rc.AcceptExpired,
		Connections: ConnReport{Current: st.connections.Load(), Total: st.connectionsAll.Load(), Max: s.rc.MaxConnections,
			IdleClosed: st.idleClosed.Load(), ExpiredAccepted: st.expiredAccepted.Load(), InflightMax: s.rc.MaxInflight},
		Rejected: map[string]uint64{}, APRequests: map[string]uint64{}, APResponses: map[string]uint64{},
	}
	p.mu.Lock()
	if p.ln != nil {
		r.Listen = p.ln.Addr().String()
		r.Uptime = time.Since(p.started).Round(time.Second).String()
	}
	var aps []*apConn
	for _, c := range p.conns {
		if c != nil {
			aps = append(aps, c)
		}
	}
	p.mu.Unlock()
	for i := range numRejects {
		r.Rejected[reject(i).String()] = st.rejects[i].Load()
	}
	for t := range numReqTypes {
		r.APRequests[reqTypeNames[t]] = st.apRequests[t].Load()
	}
	for t := range numRespTypes {
		r.APResponses[respTypeNames[t]] = st.apResponses[t].Load()
	}
	for d := drop(1); d < numDrops; d++ {
		if n := st.drops[d].Load(); n > 0 {
			r.Dropped = append(r.Dropped, DropReport{From: d.from(), Reason: d.String(), Count: n, Hint: dropHints[d]})
		}
	}
	for _, g := range []*group{s.auth, s.acct} {
		if g != nil {
			r.Groups = append(r.Groups, g.report())
		}
	}
	sort.Slice(aps, func(i, j int) bool { return aps[i].since.After(aps[j].since) })
	if !allAPs && len(aps) > maxListedAPs {
		r.APsOmitted = len(aps) - maxListedAPs
		aps = aps[:maxListedAPs]
	}
	for _, c := range aps {
		r.APs = append(r.APs, APReport{Peer: c.peer, Subject: c.subject, TLS: c.version, Since: c.since,
			CertNotAfter: c.notAfter, Expired: c.expired, Requests: c.requests.Load(), Responses: c.responses.Load(),
			Inflight: len(c.sem), LastRequest: time.Unix(0, c.lastRX.Load())})
	}
	return r
}

func (g *group) report() GroupReport {
	gr := GroupReport{Group: g.role, Failovers: g.failovers.Load()}
	g.mu.Lock()
	active := g.active
	g.mu.Unlock()
	if active >= 0 {
		gr.Active = g.servers[active].name
	} else {
		gr.Active = "none (all down; trying " + g.servers[0].name + ")"
	}
	for _, s := range g.servers {
		ss := s.st
		sr := ServerReport{Name: s.name, Address: s.addr.String(), StatusServer: s.probe, RequireMA: s.requireMA,
			Requests: map[string]uint64{}, Responses: map[string]uint64{},
			Retransmissions: ss.retransmissions.Load(), Timeouts: ss.timeouts.Load(), FailedOver: ss.failedOver.Load(),
			Probes:      map[string]uint64{"ok": ss.probesOK.Load(), "timeout": ss.probesFailed.Load()},
			Unreachable: ss.unreachable.Load(), Inflight: s.inflight()}
		s.mu.Lock()
		sr.State = "down"
		if s.up {
			sr.State = "up"
		}
		sr.Since, sr.LastError, sr.Sockets = s.since, s.lastErr, len(s.socks)
		if !s.lastProbe.IsZero() {
			t := s.lastProbe
			sr.LastProbe = &t
			sr.LastProbeResult = "timeout"
			if s.lastProbeOK {
				sr.LastProbeResult = "ok"
				sr.LastProbeRTTms = ms(s.lastProbeRTT.Seconds())
			}
		}
		if !s.lastAnswer.IsZero() {
			t := s.lastAnswer
			sr.LastAnswer = &t
		}
		s.mu.Unlock()
		for t := range numReqTypes {
			sr.Requests[reqTypeNames[t]] = ss.requests[t].Load()
		}
		for t := range numRespTypes {
			sr.Responses[respTypeNames[t]] = ss.responses[t].Load()
		}
		h := ss.latency.snapshot()
		sr.P50ms, sr.P99ms = ms(h.quantile(0.5)), ms(h.quantile(0.99))
		gr.Servers = append(gr.Servers, sr)
	}
	return gr
}

// ms converts seconds to milliseconds, NaN (no samples) to 0 (JSON has no
// NaN).
func ms(s float64) float64 {
	if math.IsNaN(s) {
		return 0
	}
	return math.Round(s*1e6) / 1e3
}

// WriteText renders the report like an appliance's show command.
func (r *Report) WriteText(w io.Writer) {
	now := time.Now()
	fmt.Fprintf(w, "RadSec proxy (RFC 6614): listening on %s", r.Listen)
	if r.Uptime != "" {
		fmt.Fprintf(w, ", up %s", r.Uptime)
	}
	fmt.Fprintf(w, ", configuration loaded %s\n", r.Loaded.Format(time.RFC3339))
	fmt.Fprintf(w, "  Certificate     %s, expires %s\n", r.Certificate.Subject, expiry(r.Certificate.NotAfter, now))
	for _, ca := range r.CAs {
		fmt.Fprintf(w, "  AP CA           %s, expires %s\n", ca.Subject, expiry(ca.NotAfter, now))
	}
	if r.AcceptExpired {
		fmt.Fprintf(w, "  accept_expired  true (expired AP certificates are let in: %d so far)\n", r.Connections.ExpiredAccepted)
	}
	c := r.Connections
	fmt.Fprintf(w, "  Connections     %d now, %d since start, limit %d, %d closed idle, %d requests in flight max per AP\n",
		c.Current, c.Total, c.Max, c.IdleClosed, c.InflightMax)
	fmt.Fprintf(w, "  Refused         %s\n", counts(r.Rejected, rejectNames[:]))
	fmt.Fprintf(w, "  From APs        %s\n", counts(r.APRequests, reqTypeNames[:]))
	fmt.Fprintf(w, "  To APs          %s\n", counts(r.APResponses, respTypeNames[:]))
	if len(r.Dropped) == 0 {
		fmt.Fprintf(w, "  Dropped         none\n")
	} else {
		fmt.Fprintf(w, "  Dropped\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, d := range r.Dropped {
			fmt.Fprintf(tw, "    %s\t%s\t%d\t%s\n", d.From, d.Reason, d.Count, d.Hint)
		}
		tw.Flush()
	}
	for _, g := range r.Groups {
		fmt.Fprintf(w, "\n%s servers: active %s, %d failovers\n", g.Group, g.Active, g.Failovers)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  Server\tAddress\tState\tSince\tLast probe\tRequests\tAnswers\tRetrans\tTimeouts\tIn flight\tp50 ms\tp99 ms")
		for _, s := range g.Servers {
			probe := "off"
			if s.StatusServer {
				probe = "never"
				if s.LastProbe != nil {
					probe = s.LastProbeResult + " " + ago(*s.LastProbe, now)
					if s.LastProbeResult == "ok" {
						probe += fmt.Sprintf(" (%.2fms)", s.LastProbeRTTms)
					}
				}
			}
			var reqs, answers uint64
			for k, v := range s.Requests {
				if k != "status_server" {
					reqs += v
				}
			}
			for _, v := range s.Responses {
				answers += v
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.1f\n", s.Name, s.Address, s.State,
				ago(s.Since, now), probe, reqs, answers, s.Retransmissions, s.Timeouts, s.Inflight, s.P50ms, s.P99ms)
		}
		tw.Flush()
		for _, s := range g.Servers {
			fmt.Fprintf(w, "  %s: %s; %s", s.Name, counts(s.Responses, respTypeNames[:]), "probes "+counts(s.Probes, []string{"ok", "timeout"}))
			if s.Unreachable > 0 {
				fmt.Fprintf(w, "; ICMP unreachable %d", s.Unreachable)
			}
			if s.FailedOver > 0 {
				fmt.Fprintf(w, "; failed over %d", s.FailedOver)
			}
			if !s.RequireMA {
				fmt.Fprintf(w, "; Message-Authenticator NOT required")
			}
			if s.LastError != "" {
				fmt.Fprintf(w, "; last error: %s", s.LastError)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "\nAP connections (%d", c.Current)
	if r.APsOmitted > 0 {
		fmt.Fprintf(w, "; newest %d shown, ?aps=all for every one", len(r.APs))
	}
	fmt.Fprintln(w, ")")
	if len(r.APs) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  Peer\tSubject\tTLS\tConnected\tRequests\tAnswers\tIn flight\tCertificate expires")
		for _, a := range r.APs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", a.Peer, a.Subject, a.TLS, ago(a.Since, now),
				a.Requests, a.Responses, a.Inflight, expiry(a.CertNotAfter, now))
		}
		tw.Flush()
	}
}

func counts(m map[string]uint64, order []string) string {
	var parts []string
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func ago(t, now time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "now"
	case d < time.Hour:
		return d.Round(time.Second).String() + " ago"
	}
	return d.Round(time.Minute).String() + " ago"
}

func expiry(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	days := int(t.Sub(now).Hours() / 24)
	if t.Before(now) {
		return fmt.Sprintf("%s (EXPIRED %d days ago)", t.Format("2006-01-02"), -days)
	}
	return fmt.Sprintf("%s (in %d days)", t.Format("2006-01-02"), days)
}
