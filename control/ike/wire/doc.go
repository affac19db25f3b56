// Package wire is the IKEv2 message codec (RFC 7296 §3): the IKE header, the
// chain of generic payloads and a typed struct for every payload the tunterm
// responder reads or writes, plus the few helpers built directly on the wire
// format (NAT detection hashes, the AUTH signed-octets pieces, the SK/SKF
// associated-data split and the strongSwan-style one-line summary).
//
// Cryptography lives elsewhere: an SK or SKF payload is exposed as its raw
// IV | ciphertext | ICV region plus the type of its first inner payload;
// the crypto package decrypts it and hands the plaintext back to
// ParsePayloads.
//
// A message on the wire (RFC 7296 §3.1, §3.2):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Initiator's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Responder's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Message ID                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            Length                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                     payload body ...                          ~
//
// On UDP 4500 the message follows a 4-octet zero non-ESP marker (RFC 3948
// §2.2); the marker is not part of the message and the caller strips it.
//
// Parsing is strict about structure: every length must be consistent with
// the lengths that contain it, nothing may dangle after the last payload, an
// SK/SKF payload must be last, and an unknown payload with the critical bit
// set fails the message (RFC 7296 §2.5). Unknown non-critical payloads are
// kept as *Unknown so the message still round-trips. Reserved fields are
// ignored on receipt and sent as zero. Errors wrap ErrInvalidSyntax,
// ErrInvalidMajorVersion or ErrUnsupportedCritical; NotifyForError maps them
// to the Notify the responder answers with.
//
// Concurrency and ownership: a *Message and its payloads are plain values
// owned by one goroutine. Parse does not copy: every []byte in a parsed
// message aliases the input, which the caller must keep unchanged while it
// uses the message (copy the input first if the receive buffer is reused).
package wire
