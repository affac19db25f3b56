package radsec

import (
	"math"
	"sort"
	"sync/atomic"
	"time"
)

// drop is why a packet was not forwarded. Every drop is counted
// (tunterm_radsec_dropped_packets_total{from,reason}) and logged at most
// once per reason every logEvery.
type drop uint8

const (
	dropNone drop = iota
	// From APs.
	dropAPMalformed        // Length < 20, or a broken attribute list (closes the connection when the framing is lost)
	dropAPOversized        // Length > 4096 (closes the connection)
	dropAPUnsupportedCode  // not Access-Request, Accounting-Request or Status-Server
	dropAPMissingMA        // Access-Request or Status-Server without Message-Authenticator
	dropAPBadMA            // wrong Message-Authenticator: the AP uses another secret
	dropAPBadAuthenticator // Accounting-Request with a wrong Request Authenticator
	dropAPDuplicate        // same Identifier and Authenticator as a request still waiting
	dropAPNoServer         // Accounting-Request and no acct_servers
	dropAPTooBig           // the request would exceed 4096 bytes with our attributes
	dropAPBusy             // every Identifier towards the server is in use
	dropAPTimeout          // no server answered (after retransmissions and failover)
	// From servers.
	dropSrvMalformed        // bad Length or attribute list
	dropSrvUnknownID        // no request waits for this Identifier (late, duplicate or forged)
	dropSrvBadCode          // a code that does not answer the request
	dropSrvBadAuthenticator // wrong Response Authenticator: another secret
	dropSrvMissingMA        // Access-Accept/Reject/Challenge without Message-Authenticator
	dropSrvBadMA            // wrong Message-Authenticator
	dropSrvProxyState       // our Proxy-State is not the last one
	dropSrvTooBig           // the answer would exceed 4096 bytes
	dropSrvAPGone           // the AP's connection closed, or the AP reused the Identifier
	numDrops
)

var dropNames = [numDrops]string{
	dropAPMalformed:         "malformed",
	dropAPOversized:         "oversized",
	dropAPUnsupportedCode:   "unsupported_code",
	dropAPMissingMA:         "missing_message_authenticator",
	dropAPBadMA:             "bad_message_authenticator",
	dropAPBadAuthenticator:  "bad_authenticator",
	dropAPDuplicate:         "duplicate",
	dropAPNoServer:          "no_server",
	dropAPTooBig:            "too_big",
	dropAPBusy:              "upstream_busy",
	dropAPTimeout:           "timeout",
	dropSrvMalformed:        "malformed",
	dropSrvUnknownID:        "unknown_id",
	dropSrvBadCode:          "bad_code",
	dropSrvBadAuthenticator: "bad_authenticator",
	dropSrvMissingMA:        "missing_message_authenticator",
	dropSrvBadMA:            "bad_message_authenticator",
	dropSrvProxyState:       "proxy_state_mismatch",
	dropSrvTooBig:           "too_big",
	dropSrvAPGone:           "ap_gone",
}

func (d drop) String() string { return dropNames[d] }

// fromServer reports whether d is about a server's packet.
func (d drop) fromServer() bool { return d >= dropSrvMalformed }

func (d drop) from() string {
	if d.fromServer() {
		return "server"
	}
	return "ap"
}

// reject is why a TCP connection on the RadSec port did not become an AP
// connection.
type reject uint8

const (
	rejectUnknownCA reject = iota // the AP's certificate chains to none of radsec.ca
	rejectExpired                 // the AP's certificate (or its chain) has expired, or is not yet valid
	rejectBadCert                 // another certificate problem (key usage, malformed, ...)
	rejectNoCert                  // the client sent no certificate
	rejectPlaintext               // not TLS: e.g. RADIUS/TCP or HTTP on the RadSec port
	rejectTimeout                 // no complete handshake within handshake_timeout
	rejectPeerAlert               // the AP aborted, usually because it does not trust our certificate
	rejectClosed                  // the client closed the connection during the handshake
	rejectProtocol                // any other TLS failure: versions, cipher suites, bad records
	rejectLimit                   // max_connections reached
	numRejects
)

var rejectNames = [numRejects]string{
	rejectUnknownCA: "unknown_ca", rejectExpired: "expired", rejectBadCert: "bad_cert",
	rejectNoCert: "no_cert", rejectPlaintext: "plaintext", rejectTimeout: "timeout",
	rejectPeerAlert: "peer_alert", rejectClosed: "closed", rejectProtocol: "protocol",
	rejectLimit: "limit",
}

func (r reject) String() string { return rejectNames[r] }

// Request and response types, per RADIUS code.
const (
	reqAccess = iota
	reqAccounting
	reqStatus
	numReqTypes
)

var reqTypeNames = [numReqTypes]string{"access_request", "accounting_request", "status_server"}

func reqType(code byte) int {
	switch code {
	case codeAccessRequest:
		return reqAccess
	case codeAccountingRequest:
		return reqAccounting
	}
	return reqStatus
}

const (
	respAccept = iota
	respReject
	respChallenge
	respAccounting
	numRespTypes
)

var respTypeNames = [numRespTypes]string{"access_accept", "access_reject", "access_challenge", "accounting_response"}

func respType(code byte) int {
	switch code {
	case codeAccessAccept:
		return respAccept
	case codeAccessReject:
		return respReject
	case codeAccessChallenge:
		return respChallenge
	}
	return respAccounting
}

// proxyStats are the proxy-wide counters. Safe for concurrent use: every
// field is an atomic, incremented where the event happens; the Prometheus
// collector and /debug/radsec read them.
type proxyStats struct {
	connections     atomic.Int64  // established AP connections
	connectionsAll  atomic.Uint64 // established since start
	idleClosed      atomic.Uint64
	expiredAccepted atomic.Uint64
	rejects         [numRejects]atomic.Uint64
	drops           [numDrops]atomic.Uint64
	apRequests      [numReqTypes]atomic.Uint64
	apResponses     [numRespTypes]atomic.Uint64
}

// serverStats are one server's counters. They outlive reloads: a server
// kept by name and address keeps its counters (Proxy.serverStats).
type serverStats struct {
	requests        [numReqTypes]atomic.Uint64 // first transmissions
	responses       [numRespTypes]atomic.Uint64
	retransmissions atomic.Uint64
	timeouts        atomic.Uint64
	probesOK        atomic.Uint64
	probesFailed    atomic.Uint64
	unreachable     atomic.Uint64 // ICMP port/host unreachable seen on our socket
	sendErrors      atomic.Uint64
	failedOver      atomic.Uint64 // requests handed to the next server after timing out here
	latency         histogram
}

// latencyBuckets are the upper bounds, in seconds, of the response time
// histogram.
var latencyBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// histogram is a fixed-bucket histogram safe for concurrent use.
type histogram struct {
	counts [len(latencyBuckets) + 1]atomic.Uint64 // the last is +Inf
	sumNs  atomic.Uint64
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := sort.SearchFloat64s(latencyBuckets[:], s)
	h.counts[i].Add(1)
	h.sumNs.Add(uint64(d))
}

type histSnapshot struct {
	counts [len(latencyBuckets) + 1]uint64
	total  uint64
	sum    float64 // seconds
}

func (h *histogram) snapshot() histSnapshot {
	var s histSnapshot
	for i := range h.counts {
		s.counts[i] = h.counts[i].Load()
		s.total += s.counts[i]
	}
	s.sum = float64(h.sumNs.Load()) / 1e9
	return s
}

// quantile estimates the q-quantile by linear interpolation inside its
// bucket (as Prometheus' histogram_quantile does); NaN without samples.
func (s histSnapshot) quantile(q float64) float64 {
	if s.total == 0 {
		return math.NaN()
	}
	rank := q * float64(s.total)
	var cum uint64
	for i, c := range s.counts {
		if float64(cum+c) >= rank && c > 0 {
			lo := 0.0
			if i > 0 {
				lo = latencyBuckets[i-1]
			}
			if i == len(latencyBuckets) {
				return lo
			}
			hi := latencyBuckets[i]
			return lo + (hi-lo)*(rank-float64(cum))/float64(c)
		}
		cum += c
	}
	return latencyBuckets[len(latencyBuckets)-1]
}
