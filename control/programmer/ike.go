package programmer

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/tunterm/tunterm/dataplane/esp"
	"github.com/tunterm/tunterm/dataplane/table"
)

// IKE-negotiated SAs.
//
// The IKE responder (control/ike) hands every CHILD_SA it negotiates to the
// programmer, which keeps them next to the configuration and rebuilds the
// snapshot from both: a static_peers entry without esp: on an IPsec tunnel
// is protected by the CHILD_SAs negotiated with its address; SAs of peers
// without a static entry are installed under a peer named "ike <address>"
// (they decrypt, and their L2TP sessions will come from the L2TPv3 control
// plane).
//
// APs behind one NAT share an address, so negotiated SAs are grouped by
// IKEChild.Key (the AP's address and, with NAT-T, its UDP port), one
// dataplane peer per key: "ike 198.18.0.7" or "ike 198.18.0.7:4501". A
// static peer matches by address only; when several keys share its address
// it takes the one with the most recently installed CHILD_SA and the others
// stay IKE-only peers.
//
// Make-before-break: InstallChild publishes the new inbound SA before the
// IKE response leaves, so the peer's first packet finds it; the outbound SA
// is switched separately (ActivateOut) when the peer is known to have the
// new SA; RetireChild stops sending on an SA while its inbound side keeps
// decrypting; RemoveChild, after the grace window, removes it for good.
//
// Every method takes the programmer's mutex, like Apply, SetNeighbor and
// Age, and publishes a whole new snapshot.

// IKEChild is one negotiated CHILD_SA pair as the dataplane needs it.
type IKEChild struct {
	// Peer is the AP's outer address (the IKE SA's remote address).
	Peer netip.Addr
	// Key identifies the AP's dataplane peer; the IKE responder keeps it
	// stable across NAT rebinding and IKE_SA rekeys. Zero: Peer, plus
	// NATPort when UDPEncap (KeyOf).
	Key netip.AddrPort
	// NATPort is the AP's UDP port for ESP in UDP (0: 4500).
	NATPort uint16
	// UDPEncap: ESP in UDP 4500 (NAT detected, RFC 7296 §2.23).
	UDPEncap bool
	Mode     table.Mode
	// InnerLocal and InnerRemote are the tunnel-mode inner addresses.
	InnerLocal, InnerRemote netip.Addr
	// In is our inbound SA (its SPI came from AllocSPI), Out the peer's.
	In, Out esp.Config
}

// KeyOf is the default IKEChild.Key: the address, and the NAT port when
// ESP is UDP-encapsulated (several APs behind one NAT differ only there).
func (c IKEChild) KeyOf() netip.AddrPort {
	if c.Key.IsValid() {
		return c.Key
	}
	port := uint16(0)
	if c.UDPEncap {
		port = c.NATPort
		if port == 0 {
			port = 4500
		}
	}
	return netip.AddrPortFrom(c.Peer, port)
}

type ikeChild struct {
	c       IKEChild
	in, out *esp.SA
	seq     uint64
	retired bool
}

type ikePeer struct {
	children map[uint32]*ikeChild // by inbound SPI
	active   *ikeChild            // the one we send with; nil: none

	// The last published table objects of an IKE-only peer, reused while
	// nothing changed (dirty), so that a rebuild costs little per
	// unchanged peer: snapshots are immutable, so sharing them is safe.
	name   string
	owner  int
	cached *table.Peer
	bound  *table.Peer // the peer of the last snapshot (static or cached)
	in     []spiSA
	dirty  bool
}

type spiSA struct {
	spi uint32
	sa  *table.SA
}

type ikeState struct {
	peers  map[netip.AddrPort]*ikePeer     // by IKEChild.KeyOf
	claims map[string]netip.AddrPort       // static peer name → the key it took
	byAddr map[netip.Addr][]netip.AddrPort // the keys of peers, by address
	spis   map[uint32]bool                 // reserved or installed inbound SPIs
	bySPI  map[uint32]*ikeChild
	seq    uint64
}

// ErrNotApplied: IKE SAs arrive before the first Apply.
var ErrNotApplied = errors.New("programmer: no configuration applied yet")

func (s *ikeState) addPeer(k netip.AddrPort, pe *ikePeer) {
	s.peers[k] = pe
	s.byAddr[k.Addr()] = append(s.byAddr[k.Addr()], k)
}

func (s *ikeState) delPeer(k netip.AddrPort) {
	delete(s.peers, k)
	keys := slices.DeleteFunc(s.byAddr[k.Addr()], func(x netip.AddrPort) bool { return x == k })
	if len(keys) == 0 {
		delete(s.byAddr, k.Addr())
	} else {
		s.byAddr[k.Addr()] = keys
	}
}

func (s *ikeState) init() {
	if s.peers == nil {
		s.peers = map[netip.AddrPort]*ikePeer{}
		s.claims = map[string]netip.AddrPort{}
		s.byAddr = map[netip.Addr][]netip.AddrPort{}
		s.spis = map[uint32]bool{}
		s.bySPI = map[uint32]*ikeChild{}
	}
}

// AllocSPI reserves a random inbound SPI (RFC 4303 §2.1: not 0..255) not
// used by any static or negotiated SA. Release it with ReleaseSPI if the
// negotiation fails; InstallChild takes it over.
func (p *Programmer) AllocSPI() uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ike.init()
	var b [4]byte
	for {
		rand.Read(b[:])
		spi := binary.BigEndian.Uint32(b[:])
		if spi < 256 || p.ike.spis[spi] {
			continue
		}
		if _, static := p.inKeys[spi]; static {
			continue
		}
		p.ike.spis[spi] = true
		return spi
	}
}

// ReleaseSPI frees an SPI reserved by AllocSPI that was never installed.
func (p *Programmer) ReleaseSPI(spi uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ike.init()
	if p.ike.bySPI[spi] == nil {
		delete(p.ike.spis, spi)
	}
}

// InstallChild installs a CHILD_SA pair and publishes the snapshot: the
// inbound SA decrypts from now on; with activate the outbound SA also
// becomes the peer's (otherwise see ActivateOut). It returns the SAs, whose
// State counters the caller may read.
func (p *Programmer) InstallChild(c IKEChild, activate bool) (in, out *esp.SA, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cfg == nil {
		return nil, nil, ErrNotApplied
	}
	p.ike.init()
	if _, static := p.inKeys[c.In.SPI]; static {
		return nil, nil, fmt.Errorf("programmer: inbound SPI 0x%08x is a static SA's", c.In.SPI)
	}
	if p.ike.bySPI[c.In.SPI] != nil {
		return nil, nil, fmt.Errorf("programmer: inbound SPI 0x%08x is installed already", c.In.SPI)
	}
	if in, err = esp.NewSA(c.In); err != nil {
		return nil, nil, fmt.Errorf("programmer: inbound SA: %w", err)
	}
	if out, err = esp.NewSA(c.Out); err != nil {
		return nil, nil, fmt.Errorf("programmer: outbound SA: %w", err)
	}
	c.In.EncKey, c.In.IntegKey, c.Out.EncKey, c.Out.IntegKey = nil, nil, nil, nil // esp.SA has its copy
	c.Key = c.KeyOf()
	pe := p.ike.peers[c.Key]
	if pe == nil {
		pe = &ikePeer{children: map[uint32]*ikeChild{}}
		p.ike.addPeer(c.Key, pe)
	}
	p.ike.seq++
	pe.dirty = true
	ch := &ikeChild{c: c, in: in, out: out, seq: p.ike.seq}
	pe.children[c.In.SPI] = ch
	p.ike.bySPI[c.In.SPI] = ch
	p.ike.spis[c.In.SPI] = true
	prevActive := pe.active
	if activate || pe.active == nil {
		pe.active = ch
	}
	if _, err := p.apply(p.cfg); err != nil {
		delete(pe.children, c.In.SPI)
		delete(p.ike.bySPI, c.In.SPI)
		pe.active, pe.dirty = prevActive, true
		if len(pe.children) == 0 {
			p.ike.delPeer(c.Key)
		}
		return nil, nil, err
	}
	if c.UDPEncap && c.NATPort != 0 && pe.bound != nil {
		// Seed the peer's NAT port from IKE; the dataplane then follows
		// authenticated ESP-in-UDP packets.
		pe.bound.St.NATPort.Store(uint32(c.NATPort))
	}
	return in, out, nil
}

// ActivateOut makes the CHILD_SA with inbound SPI inSPI the one its peer's
// traffic is sent with.
func (p *Programmer) ActivateOut(inSPI uint32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	pe, ch := p.ikeFind(inSPI)
	if ch == nil {
		return fmt.Errorf("programmer: no CHILD_SA with inbound SPI 0x%08x", inSPI)
	}
	if pe.active == ch {
		return nil
	}
	pe.active, ch.retired, pe.dirty = ch, false, true
	_, err := p.apply(p.cfg)
	return err
}

// RetireChild stops sending with the CHILD_SA (the peer deleted it, or it
// was rekeyed); its inbound SA keeps decrypting until RemoveChild. If it
// was the active one, the newest other CHILD_SA of the peer takes over.
func (p *Programmer) RetireChild(inSPI uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pe, ch := p.ikeFind(inSPI)
	if ch == nil || ch.retired {
		return
	}
	ch.retired = true
	pe.dirty = true
	if pe.active == ch {
		pe.active = newest(pe)
		p.apply(p.cfg) // cannot fail: the children were valid before
	}
}

// RemoveChild removes CHILD_SAs by inbound SPI and publishes once.
func (p *Programmer) RemoveChild(inSPIs ...uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := false
	for _, spi := range inSPIs {
		pe, ch := p.ikeFind(spi)
		if ch == nil {
			delete(p.ike.spis, spi)
			continue
		}
		delete(pe.children, spi)
		delete(p.ike.spis, spi)
		delete(p.ike.bySPI, spi)
		pe.dirty = true
		if pe.active == ch {
			pe.active = newest(pe)
		}
		if len(pe.children) == 0 {
			p.ike.delPeer(ch.c.Key)
		}
		changed = true
	}
	if changed && p.cfg != nil {
		p.apply(p.cfg)
	}
}

func newest(pe *ikePeer) *ikeChild {
	var best *ikeChild
	for _, c := range pe.children {
		if !c.retired && (best == nil || c.seq > best.seq) {
			best = c
		}
	}
	return best
}

func (p *Programmer) ikeFind(spi uint32) (*ikePeer, *ikeChild) {
	ch := p.ike.bySPI[spi]
	if ch == nil {
		return nil, nil
	}
	return p.ike.peers[ch.c.Key], ch
}

// ikeClaim picks, for the static peer name at addr, the IKE key it takes
// over: the one it had, else the one with address addr and the most
// recently installed CHILD_SA.
func (p *Programmer) ikeClaim(name string, addr netip.Addr) (netip.AddrPort, bool) {
	if k, ok := p.ike.claims[name]; ok && k.Addr() == addr && p.ike.peers[k] != nil {
		return k, true
	}
	delete(p.ike.claims, name)
	var best netip.AddrPort
	var seq uint64
	for _, k := range p.ike.byAddr[addr] {
		for _, ch := range p.ike.peers[k].children {
			if ch.seq >= seq {
				best, seq = k, ch.seq
			}
		}
	}
	if best.IsValid() {
		p.ike.claims[name] = best
	}
	return best, best.IsValid()
}

// ikeAttach puts the CHILD_SAs negotiated under key into t for peer pe (a
// static peer without esp:, or an IKE-only peer) and returns the address
// L2TP packets of the peer come from: the inner remote address when the
// active CHILD_SA is in tunnel mode, else the key's address.
func (p *Programmer) ikeAttach(t *table.Tables, pe *table.Peer, key netip.AddrPort) (netip.Addr, error) {
	addr := key.Addr()
	ip := p.ike.peers[key]
	if ip == nil {
		return addr, nil
	}
	ip.bound = pe
	wrap := func(ch *ikeChild, e *esp.SA) *table.SA {
		return &table.SA{ESP: e, Peer: pe, Mode: ch.c.Mode, UDPEncap: ch.c.UDPEncap,
			InnerLocal: ch.c.InnerLocal, InnerRemote: ch.c.InnerRemote}
	}
	for spi, ch := range ip.children {
		if t.InSA[spi] != nil {
			return addr, fmt.Errorf("inbound SPI 0x%08x of an IKE-negotiated SA with %s is also a static SA's", spi, addr)
		}
		t.InSA[spi] = wrap(ch, ch.in)
	}
	if ch := ip.active; ch != nil {
		pe.Out = wrap(ch, ch.out)
		if ch.c.Mode == table.ModeTunnel && ch.c.InnerRemote.IsValid() {
			return ch.c.InnerRemote, nil
		}
	}
	return addr, nil
}

// ikePeers adds a peer for every key with CHILD_SAs that no static peer
// claimed, reusing the previous snapshot's objects of unchanged peers.
func (p *Programmer) ikePeers(t *table.Tables, claimed map[netip.AddrPort]bool, oldPeers map[string]*table.Peer) error {
	for key, ip := range p.ike.peers {
		addr := key.Addr()
		if claimed[key] {
			ip.cached, ip.in = nil, nil
			continue
		}
		if ip.cached != nil && !ip.dirty {
			for _, x := range ip.in {
				if t.InSA[x.spi] != nil {
					return fmt.Errorf("inbound SPI 0x%08x of an IKE-negotiated SA with %s is also a static SA's", x.spi, addr)
				}
				t.InSA[x.spi] = x.sa
			}
			ip.bound = ip.cached
			t.Peers = append(t.Peers, ip.cached)
			continue
		}
		if ip.name == "" {
			ip.name = "ike " + addr.String()
			if key.Port() != 0 {
				ip.name = "ike " + key.String()
			}
			ip.owner = p.ownerOf(ip.name)
		}
		pe := &table.Peer{Name: ip.name, Index: uint32(len(t.Peers)), Addr: addr, Owner: ip.owner, St: &table.PeerState{}}
		if ip.cached != nil {
			pe.St = ip.cached.St
		}
		if _, err := p.ikeAttach(t, pe, key); err != nil {
			return err
		}
		ip.in = ip.in[:0]
		for spi := range ip.children {
			ip.in = append(ip.in, spiSA{spi, t.InSA[spi]})
		}
		ip.cached, ip.dirty = pe, false
		t.Peers = append(t.Peers, pe)
	}
	return nil
}
