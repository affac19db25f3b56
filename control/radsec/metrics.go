package radsec

import (
	"strconv"

	"github.com/tunterm/tunterm/control/api"
)

// Collect writes the proxy's metrics (api.Collector). It reads the atomic
// counters at each scrape; the packet paths never call the metrics code.
func (p *Proxy) Collect(m *api.Metrics) {
	const ns = "tunterm_radsec_"
	st := &p.st
	counter := func(name, help string, v uint64, labels ...string) {
		m.Counter(ns+name, help, float64(v), labels...)
	}
	gauge := func(name, help string, v float64, labels ...string) { m.Gauge(ns+name, help, v, labels...) }

	gauge("connections", "AP TLS connections established now.", float64(st.connections.Load()))
	counter("connections_total", "AP TLS connections established since start.", st.connectionsAll.Load())
	counter("idle_closed_total", "AP connections closed by idle_timeout.", st.idleClosed.Load())
	counter("expired_certificates_accepted_total", "AP connections let in with an expired certificate (accept_expired).",
		st.expiredAccepted.Load())
	for r := range numRejects {
		counter("rejected_connections_total", "TCP connections refused before or during the TLS handshake, by reason.",
			st.rejects[r].Load(), "reason", reject(r).String())
	}
	for t := range numReqTypes {
		counter("ap_requests_total", "Well-formed requests received from APs, by type.", st.apRequests[t].Load(), "type", reqTypeNames[t])
	}
	for t := range numRespTypes {
		counter("ap_responses_total", "Answers sent to APs, by type.", st.apResponses[t].Load(), "type", respTypeNames[t])
	}
	for d := drop(1); d < numDrops; d++ {
		counter("dropped_packets_total", "Packets dropped, by origin (ap, server) and reason.", st.drops[d].Load(),
			"from", d.from(), "reason", d.String())
	}
	s := p.cur.Load()
	const certHelp = "Expiry of our certificate (role server) and of each AP CA (role ca)."
	gauge("certificate_not_after_timestamp_seconds", certHelp, float64(s.tls.cert.NotAfter.Unix()), "role", "server", "subject", s.tls.cert.Subject)
	for _, ca := range s.tls.cas {
		gauge("certificate_not_after_timestamp_seconds", certHelp, float64(ca.NotAfter.Unix()), "role", "ca", "subject", ca.Subject)
	}
	for _, g := range []*group{s.auth, s.acct} {
		if g == nil {
			continue
		}
		counter("failovers_total", "Changes of the server taking a group's traffic (failover and failback).", g.failovers.Load(), "group", g.role)
		g.mu.Lock()
		active := g.active
		g.mu.Unlock()
		if active < 0 {
			active = 0 // everything is down: traffic goes to the primary
		}
		for i, sv := range g.servers {
			l := []string{"group", g.role, "server", sv.name}
			lt := func(k, v string) []string { return append(l[:4:4], k, v) }
			ss := sv.st
			gauge("server_info", "Configured RADIUS servers (value 1); priority 0 is the primary.", 1,
				"group", g.role, "server", sv.name, "address", sv.addr.String(), "priority", strconv.Itoa(i))
			sv.mu.Lock()
			up, lastProbe := sv.up, sv.lastProbe
			sv.mu.Unlock()
			gauge("server_up", "1 when the server is up (answers Status-Server), 0 when down.", b2f(up), l...)
			gauge("server_active", "1 for the server that takes the group's traffic.", b2f(i == active), l...)
			for t := range numReqTypes {
				counter("server_requests_total", "Requests sent to the server (first transmissions), by type.",
					ss.requests[t].Load(), lt("type", reqTypeNames[t])...)
			}
			for t := range numRespTypes {
				counter("server_responses_total", "Valid answers to requests (probes are in server_probes_total), by type.", ss.responses[t].Load(), lt("type", respTypeNames[t])...)
			}
			counter("server_retransmissions_total", "Retransmissions to the server.", ss.retransmissions.Load(), l...)
			counter("server_timeouts_total", "Requests the server did not answer after all retransmissions.", ss.timeouts.Load(), l...)
			counter("server_failed_over_requests_total", "Requests handed to the next server after timing out on this one.",
				ss.failedOver.Load(), l...)
			const probeHelp = "Status-Server probes, by result (ok, timeout)."
			counter("server_probes_total", probeHelp, ss.probesOK.Load(), lt("result", "ok")...)
			counter("server_probes_total", probeHelp, ss.probesFailed.Load(), lt("result", "timeout")...)
			counter("server_unreachable_total", "ICMP unreachable errors on our sockets to the server.", ss.unreachable.Load(), l...)
			counter("server_send_errors_total", "Failed sends to the server (other than ICMP unreachable).", ss.sendErrors.Load(), l...)
			var lp float64
			if !lastProbe.IsZero() {
				lp = float64(lastProbe.UnixNano()) / 1e9
			}
			gauge("server_last_probe_timestamp_seconds", "When the last Status-Server probe finished (0: never).", lp, l...)
			gauge("server_inflight", "Requests and probes waiting for the server's answer.", float64(sv.inflight()), l...)
			h := ss.latency.snapshot()
			cum := make([]uint64, len(latencyBuckets))
			var c uint64
			for i := range latencyBuckets {
				c += h.counts[i]
				cum[i] = c
			}
			m.Histogram(ns+"server_response_seconds", "Time from the first transmission to the server's valid answer.",
				latencyBuckets[:], cum, h.total, h.sum, l...)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
