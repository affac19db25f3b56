// Package programmer is the one writer of the dataplane's tables. It turns a
// validated configuration into an immutable table.Tables snapshot, carries
// the runtime state (replay windows, sequence numbers, counters, MAC counts)
// of every SA, peer and session whose configuration did not change, publishes
// the snapshot with one atomic store, and cleans up after what was removed
// (FDB entries of deleted sessions). It also runs FDB aging.
//
// It also takes the CHILD_SAs the IKE responder negotiates (ike.go) and
// rebuilds the snapshot from the configuration and those SAs together.
//
// Concurrency: a Programmer is safe for concurrent use. One mutex serializes
// every method (Apply, SetNeighbor, Age, and the IKE methods in ike.go, which
// run on the IKE responder's goroutines), so it stays the one writer of the
// tables; each method publishes at most one snapshot. Workers only read what
// it publishes and never wait for the mutex.
package programmer

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"net/netip"
	"sync"
	"time"

	"github.com/tunterm/tunterm/control/config"
	"github.com/tunterm/tunterm/dataplane/bridge"
	"github.com/tunterm/tunterm/dataplane/esp"
	"github.com/tunterm/tunterm/dataplane/table"
)

// Programmer builds and publishes table snapshots.
type Programmer struct {
	store *table.Store
	fdb   *bridge.FDB
	cur   *table.Tables
	// Keys of the current objects, to decide what can be carried over.
	inKeys   map[uint32]saKey // by inbound SPI
	outKeys  map[string]saKey // by peer name
	sessKeys map[uint32]sessKey
	gen      uint64
	nextGen  uint32
	next     uint32   // next never-used session index
	free     []uint32 // reusable session indexes
	workers  int
	gw       netip.Addr // downstream.gateway
	gwMAC    [6]byte    // gateway MAC from the neighbour table (zero: none)

	mu      sync.Mutex     // serializes every method (see the package doc)
	cfg     *config.Config // the last applied configuration (rebuilt with IKE SAs)
	ike     ikeState       // IKE-negotiated CHILD_SAs (ike.go)
	nStatic int            // static peers at the head of cur.Peers
}

// SetWorkers sets the number of dataplane workers that own peers (default
// 1). Call it before the first Apply; ownership must not change while
// workers run.
func (p *Programmer) SetWorkers(n int) {
	if n < 1 || n > 64 {
		panic("programmer: workers must be 1..64")
	}
	p.workers = n
}

// ownerOf spreads peers over workers by a hash of the name, so that a
// peer's owner does not change when other peers come and go.
func (p *Programmer) ownerOf(name string) int {
	if p.workers <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % uint32(p.workers))
}

// New returns a programmer publishing to store and managing fdb.
func New(store *table.Store, fdb *bridge.FDB) *Programmer {
	return &Programmer{store: store, fdb: fdb}
}

// saKey is everything that, if unchanged, lets an SA keep its state.
type saKey struct {
	spi              uint32
	enc, integ       string
	encKey, integKey string
	esn              bool
	noReplay         bool
	window           int
	lifetime         config.Lifetime
	mode             string
	udp              bool
	innerL, innerR   netip.Addr
	peer             string
	peerAddr         netip.Addr
}

type sessKey struct {
	peer, tunnel     string
	peerAddr         netip.Addr
	local, remote    uint32
	lcookie, rcookie string
	pw, l2s          string
	maxMACs          uint32
	l2tpAddr         netip.Addr
}

// Current returns the last published snapshot (nil before Apply).
func (p *Programmer) Current() *table.Tables {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// Apply builds a snapshot from c and publishes it. On error nothing is
// published and the current tables stay in force. Objects whose
// configuration is unchanged keep their runtime state (a reload does not
// reset replay windows, sequence numbers or counters).
func (p *Programmer) Apply(c *config.Config) (*table.Tables, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ike.init()
	return p.apply(c)
}

func (p *Programmer) apply(c *config.Config) (*table.Tables, error) {
	old := p.cur
	t := &table.Tables{
		Gen:      p.gen + 1,
		InSA:     make(map[uint32]*table.SA, len(p.ike.spis)+2*len(c.StaticPeers)),
		Sessions: map[uint32]*table.Session{},
	}
	ds := c.Downstream
	t.Local = table.Local{
		Addr:           ds.Prefix.Addr(),
		Prefix:         ds.Prefix.Masked(),
		MAC:            ds.HWAddr,
		GatewayMAC:     ds.GWMAC,
		HaveGatewayMAC: ds.HaveGWM,
		UpstreamVLAN:   c.Upstream.VLAN,
		Hairpin:        c.Bridge.Hairpin,
		AgingSeconds:   uint32(time.Duration(c.Bridge.Aging).Seconds()),
	}
	if t.Local.AgingSeconds == 0 {
		t.Local.AgingSeconds = 1
	}
	p.gw = ds.GW
	if p.gwMAC != ([6]byte{}) {
		t.Local.GatewayMAC, t.Local.HaveGatewayMAC = p.gwMAC, true
	}
	tunnels := map[string]*table.Tunnel{}
	for _, ct := range c.Tunnels {
		tt := &table.Tunnel{Name: ct.Name, Native: ct.NativeVLAN, MTU: ct.MTU, IPsec: ct.IPsecOn()}
		if ct.Protocol == "udp" {
			tt.Proto = table.ProtoUDP
		}
		for _, v := range ct.VLANs {
			tt.VLANs.Add(v)
			t.VLANs.Add(v)
		}
		tunnels[ct.Name] = tt
		t.Tunnels = append(t.Tunnels, tt)
	}

	inKeys, outKeys, sessKeys := map[uint32]saKey{}, map[string]saKey{}, map[uint32]sessKey{}
	oldPeers := map[string]*table.Peer{}
	if old != nil {
		for _, pe := range old.Peers[:p.nStatic] { // IKE-only peers follow; ike.go carries theirs
			oldPeers[pe.Name] = pe
		}
	}
	claimed := map[netip.AddrPort]bool{}
	for i, sp := range c.StaticPeers {
		where := fmt.Sprintf("static_peers[%d] (%s)", i, sp.Name)
		pe := &table.Peer{Name: sp.Name, Index: uint32(i), Addr: sp.Addr, Owner: p.ownerOf(sp.Name), St: &table.PeerState{}}
		op := oldPeers[sp.Name]
		if op != nil && op.Addr == sp.Addr {
			pe.St = op.St
		}
		tun := tunnels[sp.Tunnel]
		l2tpAddr := sp.Addr
		if e := sp.ESP; e != nil {
			mode := table.ModeTransport
			if e.Mode == "tunnel" {
				mode = table.ModeTunnel
				l2tpAddr = e.Inner.RemoteAddr
			}
			mk := func(dir string, s config.SA) (*esp.SA, saKey, error) {
				k := saKey{spi: uint32(s.SPI), enc: s.Enc, integ: s.Integ, encKey: string(s.EncKey),
					integKey: string(s.IntegKey), esn: e.ESN, window: e.ReplayWindow, lifetime: e.Lifetime,
					noReplay: e.AntiReplay != nil && !*e.AntiReplay,
					mode:     e.Mode, udp: e.UDPEncap, innerL: e.Inner.LocalAddr, innerR: e.Inner.RemoteAddr,
					peer: sp.Name, peerAddr: sp.Addr}
				cph, err := esp.ParseCipher(s.Enc)
				if err != nil {
					return nil, k, fmt.Errorf("%s.esp.%s.enc: %w", where, dir, err)
				}
				ig, err := esp.ParseInteg(s.Integ)
				if err != nil {
					return nil, k, fmt.Errorf("%s.esp.%s.integ: %w", where, dir, err)
				}
				sa, err := esp.NewSA(esp.Config{
					SPI: uint32(s.SPI), Cipher: cph, EncKey: s.EncKey, Integ: ig, IntegKey: s.IntegKey,
					ESN: e.ESN, ReplayWindow: e.ReplayWindow, NoAntiReplay: e.AntiReplay != nil && !*e.AntiReplay,
					SoftBytes: e.Lifetime.SoftBytes, SoftPackets: e.Lifetime.SoftPackets,
					HardBytes: e.Lifetime.Bytes, HardPackets: e.Lifetime.Packets,
				})
				if err != nil {
					return nil, k, fmt.Errorf("%s.esp.%s: %w", where, dir, err)
				}
				return sa, k, nil
			}
			in, ink, err := mk("in", e.In)
			if err != nil {
				return nil, err
			}
			if old != nil && p.inKeys[ink.spi] == ink && old.InSA[ink.spi] != nil {
				in = old.InSA[ink.spi].ESP // unchanged: keep replay window and counters
			}
			out, outk, err := mk("out", e.Out)
			if err != nil {
				return nil, err
			}
			if op != nil && op.Out != nil && p.outKeys[sp.Name] == outk {
				out = op.Out.ESP // unchanged: keep the sequence number
			}
			inKeys[ink.spi] = ink
			outKeys[sp.Name] = outk
			inner := func(s *table.SA) *table.SA {
				s.Peer, s.Mode, s.UDPEncap = pe, mode, e.UDPEncap
				s.InnerLocal, s.InnerRemote = e.Inner.LocalAddr, e.Inner.RemoteAddr
				return s
			}
			t.InSA[ink.spi] = inner(&table.SA{ESP: in})
			pe.Out = inner(&table.SA{ESP: out})
		} else if tun.IPsec { // protected by the SAs IKE negotiates (ike.go)
			if key, ok := p.ikeClaim(sp.Name, sp.Addr); ok {
				claimed[key] = true
				var err error
				if l2tpAddr, err = p.ikeAttach(t, pe, key); err != nil {
					return nil, fmt.Errorf("%s: %w", where, err)
				}
			}
		}
		t.Peers = append(t.Peers, pe)

		l := sp.L2TP
		s := &table.Session{
			Name: sp.Name, Peer: pe, Tunnel: tun,
			LocalID: uint32(l.LocalSessionID), RemoteID: uint32(l.RemoteSessionID),
			LocalCookie: bytes.Clone([]byte(l.LocalCookie)), RemoteCookie: bytes.Clone([]byte(l.RemoteCookie)),
			Sublayer: l.L2Specific == "default", L2TPAddr: l2tpAddr, MaxMACs: *sp.MaxMACs,
		}
		if s.LocalCookie == nil {
			s.LocalCookie = []byte{}
		}
		s.PW = table.PWEthernet
		if l.Pseudowire == "vlan" {
			s.PW = table.PWVLAN
		}
		sk := sessKey{peer: sp.Name, tunnel: sp.Tunnel, peerAddr: sp.Addr, local: s.LocalID, remote: s.RemoteID,
			lcookie: string(l.LocalCookie), rcookie: string(l.RemoteCookie), pw: l.Pseudowire, l2s: l.L2Specific,
			maxMACs: s.MaxMACs, l2tpAddr: l2tpAddr}
		var os *table.Session
		if old != nil {
			os = old.Sessions[s.LocalID]
		}
		if os != nil && p.sessKeys[s.LocalID] == sk && sameTunnel(os.Tunnel, tun) {
			s.Index, s.Gen, s.St = os.Index, os.Gen, os.St
		} else {
			s.Index, s.Gen, s.St = p.allocIndex(), p.newGen(), &table.SessionState{}
		}
		sessKeys[s.LocalID] = sk
		t.Sessions[s.LocalID] = s
	}
	if err := p.ikePeers(t, claimed, oldPeers); err != nil {
		return nil, err
	}
	// Index table and flood lists.
	for _, s := range t.Sessions {
		for int(s.Index) >= len(t.ByIndex) {
			t.ByIndex = append(t.ByIndex, nil)
		}
		t.ByIndex[s.Index] = s
	}
	for _, s := range t.ByIndex { // stable order: by index
		if s == nil {
			continue
		}
		for v := uint16(1); v <= 4094; v++ {
			if s.Tunnel.VLANs.Has(v) {
				t.Members[v] = append(t.Members[v], s)
				t.MemberWorkers[v] |= 1 << uint(s.Peer.Owner)
			}
		}
	}

	t.Finish()
	p.gen++
	p.cur, p.inKeys, p.outKeys, p.sessKeys, p.cfg, p.nStatic = t, inKeys, outKeys, sessKeys, c, len(c.StaticPeers)
	p.store.Publish(t)

	// Sessions that disappeared or changed: forget their MACs and recycle
	// their indexes (a new Gen protects against stale FDB owners anyway).
	if old != nil {
		for _, os := range old.ByIndex {
			if os == nil {
				continue
			}
			if ns := t.Session(os.Index, os.Gen); ns == nil {
				gone := bridge.SessionOwner(os.Index, os.Gen)
				p.fdb.Flush(func(_ bridge.Key, o bridge.Owner) bool { return o == gone }, nil)
				if int(os.Index) >= len(t.ByIndex) || t.ByIndex[os.Index] == nil {
					p.free = append(p.free, os.Index)
				}
			}
		}
	}
	return t, nil
}

func sameTunnel(a, b *table.Tunnel) bool {
	return a.Name == b.Name && a.VLANs == b.VLANs && a.Native == b.Native && a.Proto == b.Proto &&
		a.MTU == b.MTU && a.IPsec == b.IPsec
}

func (p *Programmer) allocIndex() uint32 {
	if n := len(p.free); n > 0 {
		i := p.free[n-1]
		p.free = p.free[:n-1]
		return i
	}
	p.next++
	return p.next - 1
}

func (p *Programmer) newGen() uint32 {
	p.nextGen++
	return p.nextGen
}

// Age removes FDB entries idle for longer than the aging time and adjusts
// the owning sessions' MAC counts. now is in seconds (the workers' clock).
func (p *Programmer) Age(now uint32) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.cur
	if t == nil {
		return 0
	}
	return p.fdb.Age(now, t.Local.AgingSeconds, bridge.Uncount(t))
}

// SetNeighbor takes a neighbour-table entry of the downstream interface (the
// daemon follows the kernel's table through netlink). The gateway's MAC
// becomes the next hop for peers we have not heard from (republishing the
// snapshot when it changes); an on-link peer's MAC becomes that peer's next
// hop. A zero MAC (entry gone or failed) is ignored: the last known MAC is
// the best guess. Reports whether anything changed.
func (p *Programmer) SetNeighbor(ip netip.Addr, mac [6]byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if mac == ([6]byte{}) || p.cur == nil {
		return false
	}
	changed := false
	if ip == p.gw && mac != p.gwMAC {
		p.gwMAC = mac
		t := *p.cur // shallow copy: everything but Local is shared, immutable
		t.Gen = p.gen + 1
		t.Local.GatewayMAC, t.Local.HaveGatewayMAC = mac, true
		p.gen++
		p.cur = &t
		p.store.Publish(&t)
		changed = true
	}
	v := uint64(mac[0])<<40 | uint64(mac[1])<<32 | uint64(mac[2])<<24 | uint64(mac[3])<<16 | uint64(mac[4])<<8 | uint64(mac[5])
	for _, pe := range p.cur.Peers {
		if pe.Addr == ip && p.cur.Local.Prefix.Contains(ip) && pe.St.NextHop.Load() != v {
			pe.St.NextHop.Store(v)
			changed = true
		}
	}
	return changed
}
