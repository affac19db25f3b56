// Package ike is tunterm's IKEv2 responder (RFC 7296): it authenticates the
// APs, negotiates their CHILD_SAs and programs them into the dataplane
// through control/programmer, the one writer of the tables.
//
// # Goroutines
//
//	reader (one per socket) ─► work queue ─► handler goroutines (GOMAXPROCS)
//	                                           │ lock the IKE SA, process,
//	                                           │ answer on the socket the
//	                                           ▼ request came in on
//	ticker (one) ── every 250 ms: timers of every IKE SA (below)
//
// In detail:
//
//   - One UDP socket per listen address and port: 500 (IKE) and 4500
//     (NAT-T: RFC 3948 §2.2 four zero octets, the non-ESP marker, precede the
//     message; a 0xff keepalive (§2.3) and ESP-in-UDP, which only reaches
//     the socket with the AF_PACKET fallback, are counted and ignored).
//     The XDP program passes exactly these to the kernel.
//   - Readers copy each datagram and queue it; handlers do the crypto. The
//     queue is bounded: when it is full the datagram is dropped and counted
//     (overload shows as lost IKE_SA_INITs, which initiators retransmit).
//   - The IKE SA table maps our SPI (SPIr while the peer is the original
//     initiator; SPIi after we rekeyed the IKE SA ourselves) to the SA,
//     under Responder.mu, which also guards the half-open index ((SPIi, peer
//     address) → SA, to answer a retransmitted IKE_SA_INIT) and the identity
//     index (for INITIAL_CONTACT). Each IKE SA has its own mutex, held while
//     one message or one timer of that SA is processed; lock order is
//     SA.mu before Responder.mu, never the reverse, and no code holds two
//     SA mutexes (after a rekey collision, CHILD_SAs handed to an IKE SA
//     that other goroutines can already see move once the old SA's mutex
//     is released: ikeSA.after).
//
// # Exchanges (window size 1, RFC 7296 §2.3)
//
// Each SA remembers the next request Message ID it expects and the response
// (all its fragments) to the last one. A request with the previous Message
// ID whose octets hash equal to the last request's is a retransmission and
// gets the cached response again without any processing; any other
// Message ID is dropped and counted. Our own requests (DPD, DELETE, rekeys)
// are sent one at a time, retransmitted at 1, 2, 4, 8... s until dpd_timeout
// since the first transmission; a peer that never answers is dead: its SAs
// are removed.
//
//	IKE_SA_INIT   stateless answers first: COOKIE when the half-open count
//	              reaches cookie_threshold (§2.6; established SAs never see
//	              cookies), NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD naming the
//	              group we selected; else a half-open SA: SA, KE, Nr, NAT-D
//	              both ways (§2.23), CERTREQ (with CAs), FRAGMENTATION_SUPPORTED
//	              (RFC 7383), SIGNATURE_HASH_ALGORITHMS (RFC 7427).
//	IKE_AUTH      PSK (by peer identity, else the "*" entry) or certificate
//	              (RFC 7427 and classic RSA/ECDSA signatures, chain to the
//	              configured CAs, the expiry policy); the first CHILD_SA; a
//	              failed CHILD_SA leaves the IKE SA up (§1.2).
//	CREATE_CHILD_SA  new or rekeyed CHILD_SA (REKEY_SA, optional PFS), IKE SA
//	              rekey (§2.18: the children move to the new SA); rekeys
//	              that collide with ours (§2.8.1, §2.8.2) are answered as
//	              usual and the lowest nonce decides (collision.go); what
//	              §2.25 says to refuse gets TEMPORARY_FAILURE or
//	              CHILD_SA_NOT_FOUND.
//	INFORMATIONAL DPD (empty), DELETE of CHILD_SAs (answered with our paired
//	              SPIs) or of the IKE SA.
//
// # CHILD_SAs in the dataplane (make-before-break)
//
// A new CHILD_SA's inbound SA is installed (programmer.InstallChild, which
// publishes a snapshot) before the response leaves, so the AP's first ESP
// packet finds it. A first CHILD_SA also becomes the peer's outbound SA at
// once. A rekeyed one does not: we keep sending with the old SA until the AP
// deletes it (it has the new one by then), or 10 s pass; then the old SA is
// retired (no longer sent with) and its inbound side decrypts for
// delete_grace more before programmer.RemoveChild. CHILD_SAs we rekey
// ourselves (lifetime, bytes) switch outbound when the response arrives,
// since the responder has installed its inbound SA by then.
//
// # Timers (the ticker)
//
// Half-open SAs older than half_open_timeout are dropped. DPD: an
// established SA with neither IKE messages nor inbound ESP packets for dpd
// gets an empty INFORMATIONAL. Lifetimes: a CHILD_SA is rekeyed at
// lifetime.child (or when its SA's soft byte limit, lifetime.child_bytes,
// flags it in the dataplane), the IKE SA at lifetime.ike, each with up to
// 10% jitter; an SA whose rekey failed is deleted 10% after its lifetime.
// Deferred outbound switches and grace-window removals also run here.
//
// # Not done yet
//
// Several APs behind one NAT address share one dataplane peer; EAP,
// configuration payloads and MOBIKE are refused.
package ike
