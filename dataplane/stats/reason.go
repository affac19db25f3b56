// Package stats holds the dataplane's drop reasons and per-worker counters.
//
// Every frame the dataplane does not forward is accounted for with exactly one
// Reason. Workers sum counts in locals and flush them once per batch into their
// own cache-line-padded Worker block; readers (the replay summary, the future
// Prometheus collector) sum the blocks of all workers on demand.
package stats

// Reason says why a frame was dropped (or, for the Punt* values, handed to the
// control plane instead of being forwarded). The zero value, OK, means "not
// dropped".
type Reason uint8

// Drop reasons. Names are stable: they appear in replay output, drop captures
// and (later) Prometheus labels, so renaming one is a user-visible change.
const (
	OK Reason = iota

	// Parsing.
	Malformed  // a header is truncated or inconsistent
	NotForUs   // outer destination is not a tunnel address
	Fragment   // outer IP fragment (reassembly is not implemented yet)
	BadVersion // L2TPv3-over-UDP header with a version other than 3
	NoTable    // no tables published yet (fail closed)

	// ESP (RFC 4303).
	NoSA         // no inbound SA for the SPI
	SAPeer       // ESP arrived from an address that is not the SA's peer
	Replay       // sequence number outside or already seen in the window
	Integrity    // ICV / AEAD tag check failed
	BadPadding   // padding bytes are not 1, 2, 3, ... (RFC 4303 §2.4)
	BadNext      // unexpected Next Header / inner protocol after decryption
	SAExpired    // SA reached its hard byte/packet lifetime
	SeqOverflow  // outbound sequence number would wrap; SA stopped
	IPsecRequire // plaintext L2TPv3 for a tunnel that requires IPsec

	// L2TPv3 (RFC 3931).
	NoSession      // unknown session ID
	CookieMismatch // cookie differs from the one we assigned
	PeerMismatch   // L2TP source address is not the session's peer
	WrongSA        // session's traffic arrived through another peer's SA

	// Bridge.
	VLANNotAllowed // VLAN not in the tunnel's list / not carried upstream
	MACLimit       // session reached its MAC limit
	MACMove        // a session claimed a MAC learned on the upstream side
	Hairpin        // session-to-session forwarding disabled by policy
	NoMember       // unicast to a session that no longer exists / reflection to source
	BadSrcMAC      // multicast or zero source MAC

	// Transmit.
	TooBig      // encapsulated frame would exceed the tunnel MTU
	NoNeighbor  // no next-hop MAC for the peer
	NoBuffer    // buffer pool exhausted (flood copy)
	TxFull      // port transmit queue full
	NoOutSA     // session has no outbound SA yet
	HandoffFull // ring to the owning worker full

	// Not drops: handed to the kernel / control plane.
	PuntIKE  // IKE on UDP 500 / 4500 with the non-ESP marker
	PuntL2TP // L2TPv3 control message (session ID 0 / T bit)
	PuntHost // anything else addressed to the host (ARP, ICMP, ...)
	PuntLink // link-local control on the upstream trunk (LLDP, STP)

	NumReasons
)

var reasonNames = [NumReasons]string{
	OK:             "ok",
	Malformed:      "malformed",
	NotForUs:       "not_for_us",
	Fragment:       "fragment",
	BadVersion:     "bad_version",
	NoTable:        "no_table",
	NoSA:           "no_sa",
	SAPeer:         "sa_peer_mismatch",
	Replay:         "replay",
	Integrity:      "integrity",
	BadPadding:     "bad_padding",
	BadNext:        "bad_next_header",
	SAExpired:      "sa_expired",
	SeqOverflow:    "seq_overflow",
	IPsecRequire:   "ipsec_required",
	NoSession:      "no_session",
	CookieMismatch: "cookie_mismatch",
	PeerMismatch:   "peer_mismatch",
	WrongSA:        "wrong_sa",
	VLANNotAllowed: "vlan_not_allowed",
	MACLimit:       "mac_limit",
	MACMove:        "mac_move",
	Hairpin:        "hairpin_denied",
	NoMember:       "no_member",
	BadSrcMAC:      "bad_src_mac",
	TooBig:         "too_big",
	NoNeighbor:     "no_neighbor",
	NoBuffer:       "no_buffer",
	TxFull:         "tx_full",
	NoOutSA:        "no_outbound_sa",
	HandoffFull:    "handoff_full",
	PuntIKE:        "punt_ike",
	PuntL2TP:       "punt_l2tp_control",
	PuntHost:       "punt_host",
	PuntLink:       "punt_link_local",
}

var reasonHelp = [NumReasons]string{
	OK:             "not dropped",
	Malformed:      "a header is truncated or inconsistent",
	NotForUs:       "outer destination address is not the tunnel address",
	Fragment:       "outer IP fragment (reassembly not implemented)",
	BadVersion:     "L2TP-over-UDP data header whose version is not 3",
	NoTable:        "no SA/session tables published yet",
	NoSA:           "no inbound SA for this SPI",
	SAPeer:         "ESP source address is not the SA's peer",
	Replay:         "ESP sequence number replayed or left of the anti-replay window",
	Integrity:      "ESP ICV/AEAD tag check failed (wrong key or corrupted)",
	BadPadding:     "ESP padding bytes are not 1,2,3,...",
	BadNext:        "unexpected protocol inside ESP",
	SAExpired:      "SA reached its hard lifetime (bytes/packets)",
	SeqOverflow:    "outbound ESP sequence number exhausted; SA must be rekeyed",
	IPsecRequire:   "plaintext L2TPv3 for a tunnel with ipsec: true",
	NoSession:      "no L2TPv3 session with this session ID",
	CookieMismatch: "L2TPv3 cookie differs from the session's local_cookie",
	PeerMismatch:   "L2TPv3 source address is not the session's peer",
	WrongSA:        "L2TPv3 session arrived through another peer's SA",
	VLANNotAllowed: "VLAN is not in the tunnel's vlans list",
	MACLimit:       "session reached its max_macs limit",
	MACMove:        "session claimed a MAC address learned on the upstream trunk",
	Hairpin:        "session-to-session forwarding is off (bridge.hairpin)",
	NoMember:       "destination is the source itself or a removed session",
	BadSrcMAC:      "source MAC is multicast or zero",
	TooBig:         "encapsulated packet exceeds the tunnel MTU",
	NoNeighbor:     "no next-hop MAC address for the peer",
	NoBuffer:       "frame pool exhausted",
	TxFull:         "transmit queue full",
	NoOutSA:        "session has no outbound SA",
	HandoffFull:    "ring to the worker that owns the SA/session is full",
	PuntIKE:        "IKE message, handled by the control plane",
	PuntL2TP:       "L2TPv3 control message, handled by the control plane",
	PuntHost:       "addressed to the host (ARP, ICMP, other protocols)",
	PuntLink:       "link-local control frame (LLDP/STP) for the host",
}

// String returns the stable snake_case name of r.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Help returns a one-line operator-facing description of r.
func (r Reason) Help() string {
	if r < NumReasons {
		return reasonHelp[r]
	}
	return "unknown reason"
}

// IsPunt reports whether r hands the frame to the host instead of dropping it.
func (r Reason) IsPunt() bool { return r >= PuntIKE && r < NumReasons }
