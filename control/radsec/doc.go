// Package radsec is tunterm's RadSec proxy: RADIUS over TLS (RFC 6614)
// from the APs in, RADIUS over UDP (RFC 2865, RFC 2866) to the corporate
// servers out, sourced from the management side.
//
//	AP ──TLS:2083──▶ apConn reader ──▶ Proxy.handle ──▶ group.pick ──▶ server.send ──UDP──▶ RADIUS server
//	   ◀─────────── apConn writer ◀── Proxy.respond ◀── server.receive (usock.receiveLoop) ◀──┘
//
// Goroutines and ownership:
//   - acceptLoop accepts TCP connections; serveConn (one per connection)
//     runs the TLS handshake under handshake_timeout, then becomes the
//     connection's reader. The reader is the only goroutine reading the
//     connection and the only one storing into its Identifier slots.
//   - writeLoop (one per connection) is the only goroutine writing to it;
//     answers reach it through a channel with room for every in-flight
//     slot, so the goroutines that deliver answers never block on an AP.
//   - receiveLoop (one per UDP socket) reads a server's answers. A socket
//     is connected to one server (the kernel drops datagrams from anyone
//     else) and owns 256 Identifiers; a server opens more sockets, up to
//     maxSocketsPerServer, when they are all in use. The server's mutex
//     guards the Identifier tables and its health.
//   - a timer per packet in flight retransmits it unchanged (RFC 5080
//     §2.2.1), then gives up on that server and hands the request to the
//     next server that is up.
//   - probeLoop (one per server with status_server: true) sends a
//     Status-Server (RFC 5997) every status_interval, and at once after a
//     request timed out or a probe failed. down_after failed probes in a
//     row mark the server down, up_after answered ones up again; the first
//     server of the list that is up takes the traffic (failover, failback).
//
// Per hop, everything that depends on the shared secret or on the Request
// Authenticator is redone (wire.go): the Request Authenticator (fresh
// random for Access-Request, RFC 2866 §3 for Accounting-Request), the
// Response Authenticator, the Message-Authenticator (RFC 3579 §3.2; always
// sent first in Access-* packets, required from APs and servers: the
// BlastRADIUS hardening of CVE-2024-3596), and the hidden attributes:
// User-Password (RFC 2865 §5.2), Tunnel-Password (RFC 2868 §3.5),
// MS-MPPE-Send/Recv-Key and MS-CHAP-MPPE-Keys (RFC 2548 §2.4). The AP's
// Proxy-State attributes travel untouched; ours is added last on the way
// out and removed on the way back (RFC 2865 §5.33).
//
// Configuration is an immutable snapshot behind an atomic pointer
// (Reload publishes a new one); counters are atomics read by the metrics
// collector and /debug/radsec, never a lock on the packet path.
package radsec
