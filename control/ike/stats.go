package ike

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Counter names an event the responder counts. Every refusal and every
// dropped message has one; /debug/ipsec and the metrics list them.
type Counter uint8

// Counters.
const (
	RxMessages        Counter = iota // IKE messages received (any)
	TxMessages                       // datagrams sent
	Malformed                        // messages that fail to parse (INVALID_SYNTAX etc.)
	UnknownSPI                       // no IKE SA for the SPI
	BadMessageID                     // request with an unexpected Message ID
	Retransmits                      // retransmitted requests answered from the cache
	Duplicates                       // replayed or stale messages dropped
	Integrity                        // SK/SKF payloads that fail authentication
	AuthFailedPSK                    // wrong PSK or no PSK for the identity
	AuthFailedCert                   // bad signature, missing or unusable certificate, ID mismatch
	UnknownCA                        // certificate not issued by a configured CA
	CertExpiredReject                // expired certificate refused (policy reject)
	CertExpiredAccept                // expired certificate accepted (policy accept)
	NoProposal                       // NO_PROPOSAL_CHOSEN sent
	InvalidKE                        // INVALID_KE_PAYLOAD sent
	CookiesSent                      // COOKIE challenges sent (§2.6)
	CookiesBad                       // IKE_SA_INIT with a wrong or stale cookie
	HalfOpenTimeouts                 // half-open SAs dropped after half_open_timeout
	TSUnacceptable                   // TS_UNACCEPTABLE sent
	Unsupported                      // requests for what we do not do (EAP, CP, ...)
	IKESAs                           // IKE SAs established
	ChildSAs                         // CHILD_SAs installed
	ChildRekeys                      // CHILD_SAs rekeyed
	IKERekeys                        // IKE SAs rekeyed
	ChildCollisions                  // both ends rekeyed the same CHILD_SA at once (RFC 7296 §2.8.1)
	IKECollisions                    // both ends rekeyed the IKE SA at once (RFC 7296 §2.8.2)
	DeletesRx                        // DELETE payloads received
	DPDSent                          // liveness checks sent
	DPDDead                          // peers declared dead (no answer within dpd_timeout)
	Keepalives                       // NAT-T keepalives (ignored)
	ESPOnIKESocket                   // ESP-in-UDP that reached the IKE socket (AF_PACKET fallback)
	FragmentsRx                      // SKF fragments received
	FragmentsTx                      // SKF fragments sent
	Overload                         // datagrams dropped: handler queue full
	SendErrors                       // send failures
	InstallErrors                    // the programmer refused an SA
	numCounters
)

var counterNames = [numCounters]string{
	"rx_messages", "tx_messages", "malformed", "unknown_spi", "bad_message_id", "retransmits_answered",
	"duplicates_dropped", "integrity_failed", "auth_failed_psk", "auth_failed_cert", "unknown_ca",
	"cert_expired_rejected", "cert_expired_accepted", "no_proposal_chosen", "invalid_ke_sent",
	"cookies_sent", "cookies_bad", "half_open_timeouts", "ts_unacceptable", "unsupported",
	"ike_sas_established", "child_sas_installed", "child_rekeys", "ike_rekeys",
	"child_rekey_collisions", "ike_rekey_collisions", "deletes_received",
	"dpd_sent", "dpd_dead", "nat_keepalives", "esp_on_ike_socket", "fragments_rx", "fragments_tx",
	"overload_dropped", "send_errors", "install_errors",
}

func (c Counter) String() string { return counterNames[c] }

// Stats are the responder's counters. Safe for concurrent use.
type Stats struct {
	c [numCounters]atomic.Uint64
}

func (s *Stats) inc(c Counter) { s.c[c].Add(1) }

func (s *Stats) add(c Counter, n uint64) { s.c[c].Add(n) }

// Get returns one counter.
func (s *Stats) Get(c Counter) uint64 { return s.c[c].Load() }

// Map returns every counter by name.
func (s *Stats) Map() map[string]uint64 {
	m := make(map[string]uint64, numCounters)
	for i := range numCounters {
		m[counterNames[i]] = s.c[i].Load()
	}
	return m
}

// onceLog logs a message once per key per hour (per peer, per reason), so
// that a misconfigured AP retrying every few seconds leaves one line, not
// thousands. Safe for concurrent use.
type onceLog struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

const onceEvery = time.Hour

func (o *onceLog) log(l *slog.Logger, level slog.Level, key, msg string, args ...any) {
	now := time.Now()
	o.mu.Lock()
	if o.seen == nil {
		o.seen = map[string]time.Time{}
	}
	if t, ok := o.seen[key]; ok && now.Sub(t) < onceEvery {
		o.mu.Unlock()
		return
	}
	if len(o.seen) > 100000 { // bounded: forget everything rather than grow
		clear(o.seen)
	}
	o.seen[key] = now
	o.mu.Unlock()
	l.Log(context.Background(), level, msg, args...)
}
