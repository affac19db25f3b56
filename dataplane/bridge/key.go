package bridge

import (
	"encoding/binary"
	"fmt"
)

// Key identifies an FDB entry: an 802.1Q VLAN ID and a MAC address packed
// into 60 bits, vlan<<48 | mac. Keys are plain values, safe to copy and
// compare. The top four bits are not part of the key: FDB methods ignore
// them, and MakeKey never sets them.
type Key uint64

// keyMask selects the 60 meaningful bits of a Key.
const keyMask = 1<<60 - 1

// MakeKey packs a VLAN ID (its low 12 bits) and the first 6 bytes of mac.
// It panics if mac is shorter than 6 bytes. It does not allocate.
func MakeKey(vlan uint16, mac []byte) Key {
	_ = mac[5] // one bounds check
	return Key(uint64(vlan&0xfff)<<48 |
		uint64(binary.BigEndian.Uint16(mac[0:2]))<<32 |
		uint64(binary.BigEndian.Uint32(mac[2:6])))
}

// VLAN returns the key's 12-bit VLAN ID.
func (k Key) VLAN() uint16 { return uint16(k>>48) & 0xfff }

// MAC returns the key's MAC address.
func (k Key) MAC() [6]byte {
	var m [6]byte
	binary.BigEndian.PutUint16(m[0:2], uint16(k>>32))
	binary.BigEndian.PutUint32(m[2:6], uint32(k))
	return m
}

// String formats k as "vlan 100 02:00:00:00:00:01". It allocates; it is for
// listings and test failures, not the hot path.
func (k Key) String() string {
	m := k.MAC()
	return fmt.Sprintf("vlan %d %02x:%02x:%02x:%02x:%02x:%02x",
		k.VLAN(), m[0], m[1], m[2], m[3], m[4], m[5])
}

// Owner says where frames for a MAC go: the upstream trunk or one L2TPv3
// session. It is opaque to the FDB except for the values below. The zero
// Owner means "none" and is never stored.
//
// Layout: Upstream is 1; a session owner has bit 63 set, the session
// generation in bits 31..62 and the session index in bits 0..30. Other values
// are reserved.
type Owner uint64

const (
	// Upstream owns the MACs learned on the corporate trunk.
	Upstream Owner = 1

	// MaxSessionIndex is the largest index SessionOwner accepts.
	MaxSessionIndex = 1<<31 - 1

	sessionTag = 1 << 63
)

// SessionOwner returns the owner for session index with generation gen. The
// result is never 0 or Upstream, and Session returns index and gen unchanged.
// A reused session index must get a new generation so that entries learned by
// the old session are never delivered to the new one. It panics if index >
// MaxSessionIndex (a programmer error: indexes are session-table slots).
func SessionOwner(index, gen uint32) Owner {
	if index > MaxSessionIndex {
		panic("bridge: session index out of range")
	}
	return Owner(sessionTag | uint64(gen)<<31 | uint64(index))
}

// Session returns the session index and generation of a session owner; ok is
// false for Upstream, 0 and reserved values.
func (o Owner) Session() (index, gen uint32, ok bool) {
	if o&sessionTag == 0 {
		return 0, 0, false
	}
	return uint32(o & MaxSessionIndex), uint32(o >> 31), true
}

// IsUpstream reports whether o is Upstream.
func (o Owner) IsUpstream() bool { return o == Upstream }

// String formats o as "none", "upstream", "session 7/2" (index/generation)
// or "owner 0x..." for reserved values. It allocates.
func (o Owner) String() string {
	if o == 0 {
		return "none"
	}
	if o == Upstream {
		return "upstream"
	}
	if i, g, ok := o.Session(); ok {
		return fmt.Sprintf("session %d/%d", i, g)
	}
	return fmt.Sprintf("owner %#x", uint64(o))
}
