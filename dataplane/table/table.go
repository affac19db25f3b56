// Package table holds the dataplane's lookup tables: an immutable snapshot
// (Tables) built by the one control-side writer and published with a single
// atomic pointer store, read by workers once per batch (RCU style).
//
// Each SA, peer and session is split into immutable configuration, which lives
// in the snapshot, and runtime state (replay window, sequence counters, MAC
// counts, counters, learned next hop) behind a stable pointer that the writer
// carries into the next snapshot when the object's configuration is unchanged.
// Workers never write the snapshot; they write runtime state only for the
// SAs/sessions they own (see dataplane/doc.go).
package table

import (
	"net/netip"
	"sync/atomic"

	"github.com/tunterm/tunterm/dataplane/bridge"
	"github.com/tunterm/tunterm/dataplane/esp"
)

// Store publishes snapshots. Publish is called by the one writer (the control
// "programmer"); Load is safe for concurrent use and never blocks.
type Store struct {
	p atomic.Pointer[Tables]
}

// Load returns the current snapshot, or nil before the first Publish (the
// dataplane then fails closed and drops with stats.NoTable).
func (s *Store) Load() *Tables { return s.p.Load() }

// Publish makes t the current snapshot. t must not be modified afterwards.
func (s *Store) Publish(t *Tables) { s.p.Store(t) }

// Proto is how L2TPv3 is carried.
type Proto uint8

// L2TPv3 transports (RFC 3931 §4.1).
const (
	ProtoIP  Proto = iota // IP protocol 115
	ProtoUDP              // UDP port 1701
)

func (p Proto) String() string {
	if p == ProtoUDP {
		return "udp"
	}
	return "ip"
}

// Pseudowire is the L2TPv3 pseudowire type (RFC 4719).
type Pseudowire uint8

// Pseudowire types. On receive both accept tagged and untagged frames
// (untagged map to the tunnel's native VLAN). On send, Ethernet pseudowires
// carry the native VLAN untagged and other VLANs tagged; Ethernet-VLAN
// pseudowires tag every frame.
const (
	PWEthernet Pseudowire = 5 // RFC 4719 PW type 0x0005 Ethernet
	PWVLAN     Pseudowire = 4 // RFC 4719 PW type 0x0004 Ethernet VLAN
)

func (p Pseudowire) String() string {
	if p == PWVLAN {
		return "vlan"
	}
	return "ethernet"
}

// Mode is the ESP mode.
type Mode uint8

// ESP modes (RFC 4301 §4.1).
const (
	ModeTransport Mode = iota
	ModeTunnel
)

func (m Mode) String() string {
	if m == ModeTunnel {
		return "tunnel"
	}
	return "transport"
}

// VLANSet is a bitmap of VLAN IDs 0..4095.
type VLANSet [64]uint64

// Has reports whether v is in the set.
func (s *VLANSet) Has(v uint16) bool { return s[(v>>6)&63]&(1<<(v&63)) != 0 }

// Add puts v in the set.
func (s *VLANSet) Add(v uint16) { s[(v>>6)&63] |= 1 << (v & 63) }

// Local is what the dataplane knows about itself.
type Local struct {
	// Addr is the tunnel address on the downstream side (IPv4 or IPv6).
	// Addr4/Addr16 are its bytes for the hot path (set by Finish).
	Addr   netip.Addr
	Addr4  [4]byte
	Addr16 [16]byte
	Is4    bool
	// Prefix is the downstream subnet; peers inside it are on-link.
	Prefix netip.Prefix
	// MAC is the downstream interface's MAC (source of frames we send).
	MAC [6]byte
	// GatewayMAC is the static next hop for off-link peers (and on-link
	// peers whose MAC was not learned yet) when HaveGatewayMAC is set.
	GatewayMAC     [6]byte
	HaveGatewayMAC bool
	// UpstreamVLAN > 0 makes the upstream port an access port carrying
	// that VLAN untagged; 0 means an 802.1Q trunk.
	UpstreamVLAN uint16
	// Hairpin allows session-to-session forwarding (including flooding).
	Hairpin bool
	// AgingSeconds is the FDB aging time.
	AgingSeconds uint32
}

// Tunnel is a tunnel profile shared by sessions (the seed's "tunnel").
type Tunnel struct {
	Name   string
	VLANs  VLANSet
	Native uint16
	Proto  Proto
	MTU    int
	IPsec  bool
}

// SA binds an ESP transform to the peer it protects and says how the ESP
// packets are carried. The same type serves inbound (by SPI) and outbound
// (per peer).
type SA struct {
	ESP  *esp.SA
	Peer *Peer
	Mode Mode
	// UDPEncap: ESP in UDP port 4500 (RFC 3948).
	UDPEncap bool
	// InnerLocal and InnerRemote are the tunnel-mode inner addresses (ours
	// and the peer's); in transport mode they are unused.
	InnerLocal, InnerRemote netip.Addr
}

// Peer is a remote AP.
type Peer struct {
	Name  string
	Index uint32
	// Addr is the peer's outer address.
	Addr netip.Addr
	// Owner is the worker that alone touches the peer's SA and session
	// state; frames of the peer received by another worker are handed to
	// it. Stable for the life of the process (a hash of the name).
	Owner int
	// Out is the outbound SA, nil when the peer's tunnel runs without
	// IPsec (or none is negotiated yet).
	Out *SA
	St  *PeerState
	// First is the peer's session with the lowest local ID in the newest
	// snapshot that has sessions of the peer, set by Tables.Finish: a hint
	// for prefetching the session an ESP packet of the peer most likely
	// carries, never for deciding. Atomic because a peer object may be
	// reused by the next snapshot while workers still read this one.
	First atomic.Pointer[Session]
}

// PeerState is a peer's runtime state, carried across snapshots.
type PeerState struct {
	// NextHop is the source MAC of the last valid frame received from the
	// peer (packed with hdr.MACUint64; 0 = unknown). Written by the worker
	// that owns the peer, read by any.
	NextHop atomic.Uint64
	// NATPort is the peer's UDP source port seen on ESP-in-UDP (0 = the
	// configured port).
	NATPort atomic.Uint32
}

// Session is an L2TPv3 session (one pseudowire to a peer).
type Session struct {
	Name string
	// Index and Gen identify the session in FDB owners; a reused index
	// gets a new Gen so stale FDB entries are never delivered.
	Index, Gen uint32
	Peer       *Peer
	Tunnel     *Tunnel
	// LocalID is the session ID we receive (we assigned it); RemoteID the
	// one we send.
	LocalID, RemoteID uint32
	// LocalCookie is what we expect to receive, RemoteCookie what we send
	// (0, 4 or 8 bytes each).
	LocalCookie, RemoteCookie []byte
	PW                        Pseudowire
	// Sublayer: the RFC 3931 §4.6 default L2-Specific Sublayer is present.
	Sublayer bool
	// L2TPAddr is the address L2TP packets of this session come from: the
	// peer's outer address, or its inner address in ESP tunnel mode.
	L2TPAddr netip.Addr
	// MaxMACs bounds the MACs the session may own (0 = unlimited).
	MaxMACs uint32
	St      *SessionState
}

// SessionState is a session's runtime state, carried across snapshots.
// Counters are written by the owning worker and read by anyone.
type SessionState struct {
	MACs               atomic.Int32
	RxPackets, RxBytes atomic.Uint64
	TxPackets, TxBytes atomic.Uint64
	// Pad to two cache lines so sessions owned by different workers never
	// share a line (their counters are written per packet).
	_ [128 - 40]byte
}

// Tables is one immutable snapshot.
type Tables struct {
	// Gen increases with every Publish.
	Gen   uint64
	Local Local
	// InSA maps an inbound SPI to its SA, Sessions a local session ID to
	// its session (for the control side); SPI and SID are the same tables
	// shaped for the hot path (built by Finish).
	InSA     map[uint32]*SA
	Sessions map[uint32]*Session
	SPI      IDMap[*SA]
	SID      IDMap[*Session]
	// ByIndex maps Session.Index to the session (nil holes allowed).
	ByIndex []*Session
	// Members lists the sessions carrying each VLAN (for flooding).
	Members [4096][]*Session
	// MemberWorkers has bit w set when worker w owns a member of the VLAN.
	MemberWorkers [4096]uint64
	// VLANs is the union of all tunnels' VLANs (what the upstream trunk may
	// carry).
	VLANs   VLANSet
	Tunnels []*Tunnel
	Peers   []*Peer
}

// Session returns the session with index i and generation gen, or nil.
func (t *Tables) Session(i, gen uint32) *Session {
	if int(i) < len(t.ByIndex) {
		if s := t.ByIndex[i]; s != nil && s.Gen == gen {
			return s
		}
	}
	return nil
}

// MACCount implements bridge.Counts: the MAC counter of the session that o
// names, or nil for Upstream and for sessions not in this snapshot.
func (t *Tables) MACCount(o bridge.Owner) *atomic.Int32 {
	if idx, gen, ok := o.Session(); ok {
		if s := t.Session(idx, gen); s != nil {
			return &s.St.MACs
		}
	}
	return nil
}

// Finish derives the hot-path shapes (ID tables, address bytes) from the
// rest of the snapshot. The writer calls it once before Publish.
func (t *Tables) Finish() {
	t.SPI = NewIDMap(t.InSA)
	t.SID = NewIDMap(t.Sessions)
	first := make(map[*Peer]*Session, len(t.Sessions))
	for _, s := range t.Sessions {
		if s.Peer == nil {
			continue
		}
		if f := first[s.Peer]; f == nil || s.LocalID < f.LocalID {
			first[s.Peer] = s
		}
	}
	for pe, s := range first {
		pe.First.Store(s)
	}
	t.Local.Is4 = t.Local.Addr.Is4()
	if t.Local.Is4 {
		t.Local.Addr4 = t.Local.Addr.As4()
	} else {
		t.Local.Addr16 = t.Local.Addr.As16()
	}
}
