// Package esp implements the ESP transform (RFC 4303) of one Security
// Association: Open authenticates and decrypts an ESP packet, Seal builds one,
// both in place in the caller's buffer and without allocating.
//
// Mode (transport or tunnel) and UDP encapsulation (RFC 3948) are the
// caller's business: Open takes the bytes from the SPI to the end of the ICV
// and returns the inner packet and its Next Header; Seal takes an inner
// packet and a Next Header and returns the ESP packet.
//
// # Packet format (RFC 4303 §2)
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ----
//	|               Security Parameters Index (SPI)                 | ^Int.
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |Cov-
//	|                      Sequence Number                          | |ered
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ | ----
//	|                    IV (8 bytes; 16 for CBC)                   | |   ^
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |   |
//	|                    Payload Data (variable)                    | |   |
//	~                                                               ~ |   |
//	|                                                               | |Conf.
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |Cov-
//	|               |     Padding (0-255 bytes)                     | |ered*
//	+-+-+-+-+-+-+-+-+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |   |
//	|                               |  Pad Length   | Next Header   | v   v
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ------
//	|         Integrity Check Value / AEAD tag (variable)           |
//	~                                                               ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
//	* the IV is sent in clear; "confidentiality covered" starts after it.
//
// With ESN (RFC 4304) only the low 32 bits of the 64-bit sequence number are
// sent; the high 32 bits are appended to the HMAC input (RFC 4303 §3.3.2.1)
// or placed in the AEAD's AAD (RFC 4106 §5, RFC 7634 §2.1), and the receiver
// infers them from its replay window (RFC 4303 Appendix A).
//
// Transforms: AES-GCM-128/256 (RFC 4106), ChaCha20-Poly1305 (RFC 7634),
// AES-CTR-128/256 (RFC 3686) and AES-CBC-128/256 (RFC 3602) with
// HMAC-SHA1-96 (RFC 2404), HMAC-SHA2-256-128, HMAC-SHA2-384-192 or
// HMAC-SHA2-512-256 (RFC 4868).
// Keys use the Linux xfrm / Wireshark layout: the salt of GCM, CTR and
// ChaCha20-Poly1305 is the last 4 bytes of the key material.
//
// # Buffer contract
//
// Open(pkt): pkt is the packet from the SPI to the end of the ICV. It is
// modified in place. The returned payload is pkt[HeaderLen():k] for some k —
// a plain sub-slice, so the caller can find its offset from capacities. Open
// never reads or writes outside pkt.
//
// Seal(buf, off, n, next): the payload is buf[off:off+n]. Seal needs
// off >= HeaderLen() bytes of headroom and len(buf)-off-n >= MaxTrailer()
// bytes of tailroom, writes the ESP header and IV into buf[off-HeaderLen():off]
// and padding, Pad Length, Next Header and ICV after the payload, encrypts in
// place and returns the packet's bounds [start, end) in buf, with
// end-start == n+Overhead(n). It writes nothing outside buf[start:end].
//
// # Concurrency
//
// An SA is immutable after NewSA and may be shared by goroutines and table
// snapshots. Its runtime state (SA.St: replay window, outbound sequence
// number, HMAC and CBC objects, scratch space) is owned by one worker: Open
// and Seal must not run concurrently on the same SA — the dataplane steers all
// packets of an SA to the worker that owns it. State's counters and flags are
// written only by that worker and may be read by anyone with atomic loads.
//
// # Drops
//
// Open and Seal never return errors; they return a stats.Reason (Malformed,
// Replay, Integrity, BadPadding, SAExpired, SeqOverflow) and count it in the
// SA's State. They never panic on packet contents.
package esp
