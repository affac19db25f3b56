package traffic

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/tunterm/tunterm/control/config"
	"github.com/tunterm/tunterm/dataplane/esp"
	"github.com/tunterm/tunterm/dataplane/hdr"
	"github.com/tunterm/tunterm/dataplane/stats"
)

// Dir is the direction of generated traffic.
type Dir uint8

const (
	// Down is AP -> corporate: ESP/L2TPv3 frames as the APs send them.
	Down Dir = iota
	// Up is corporate -> AP: 802.1Q-tagged frames from the corporate host.
	Up
)

func (d Dir) String() string {
	if d == Up {
		return "up"
	}
	return "down"
}

// ParseDir parses "down" or "up".
func ParseDir(s string) (Dir, error) {
	switch s {
	case "down":
		return Down, nil
	case "up":
		return Up, nil
	}
	return 0, fmt.Errorf("%q is not down or up", s)
}

// Size is the inner Ethernet frame length (802.1Q tag included, FCS not):
// a fixed size or the simple IMIX 7:4:1 of 64/576/1500 bytes.
type Size struct {
	Fixed int  // when not IMIX
	IMIX  bool //
}

// imix is the 7:4:1 pattern, interleaved so that any window of frames is
// close to the mix.
var imix = [12]int{64, 576, 64, 64, 576, 64, 1500, 64, 576, 64, 576, 64}

// ParseSize parses 128, 512, 1400 (any 64..1500 is accepted) or imix.
func ParseSize(s string) (Size, error) {
	if s == "imix" {
		return Size{IMIX: true}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 64 || n > 1500 {
		return Size{}, fmt.Errorf("%q is not a frame size (64..1500, e.g. 128, 512, 1400) or imix", s)
	}
	return Size{Fixed: n}, nil
}

// At returns the inner frame length of frame f.
func (z Size) At(f int) int {
	if z.IMIX {
		return imix[f%len(imix)]
	}
	return z.Fixed
}

func (z Size) String() string {
	if z.IMIX {
		return "imix"
	}
	return strconv.Itoa(z.Fixed)
}

// Inner frame layout: Ethernet + 802.1Q + IPv4 + UDP.
const (
	innerHdrLen = hdr.EthLen + hdr.VLANLen + hdr.IPv4MinLen + hdr.UDPLen // 46
	innerDPort  = 9                                                      // discard
)

// PutInner writes the inner frame of client k into b[:size]: Ethernet from
// src to dst tagged with vlan, IPv4 sip -> dip, UDP to the discard port, a
// fixed payload pattern. size >= 46.
func PutInner(b []byte, size int, dst, src [6]byte, vlan uint16, sip, dip [4]byte, k int) {
	_ = b[size-1]
	hdr.PutEth(b, dst[:], src[:], hdr.EtherTypeVLAN)
	binary.BigEndian.PutUint16(b[14:], vlan)
	binary.BigEndian.PutUint16(b[16:], hdr.EtherTypeIPv4)
	hdr.PutIPv4(b[18:], sip[:], dip[:], hdr.ProtoUDP, size-18, 64, uint16(k))
	hdr.PutUDP(b[38:], uint16(10000+k%50000), innerDPort, size-38)
	for i := innerHdrLen; i < size; i++ {
		b[i] = byte(i)
	}
}

// Client identifies the client a frame belongs to.
type Client struct {
	Peer int    // index in static_peers
	MAC  int    // j: which of the peer's clients
	K    int    // Peer*MACs + MAC
	VLAN uint16 // the client's VLAN
}

// Set is an immutable sequence of pre-built frames in one arena. Frame does
// not allocate; a Set may be read by any number of goroutines.
type Set struct {
	buf     []byte
	off     []uint32
	ln      []uint16
	client  []int32
	clients []Client
	// MaxLen is the longest frame; Bytes the sum of all frame lengths.
	MaxLen int
	Bytes  uint64
	// Tagged reports whether frames carry an 802.1Q tag on the wire (up).
	Tagged bool
}

// Len returns the number of frames.
func (s *Set) Len() int { return len(s.off) }

// Frame returns frame i (a view into the arena: do not modify).
func (s *Set) Frame(i int) []byte {
	o := s.off[i]
	return s.buf[o : o+uint32(s.ln[i]) : o+uint32(s.ln[i])]
}

// Client returns the client frame i belongs to.
func (s *Set) Client(i int) Client { return s.clients[s.client[i]] }

// Options select the frames Build makes.
type Options struct {
	Dir  Dir
	Size Size
	// MACs is the number of clients per tunnel (0: DefaultMACs).
	MACs int
	// DstMAC is the DUT's downstream MAC (destination of down frames).
	DstMAC [6]byte
	// Learn builds one smallest (64-byte inner) down frame per client,
	// so that the DUT learns where every client is, whatever Dir says.
	Learn bool
}

// peerEnc is what an AP needs to encapsulate frames for one session.
type peerEnc struct {
	src, dst           netip.Addr // outer: AP -> tunnel address
	l2src, l2dst       netip.Addr // L2TP endpoints (inner addresses in tunnel mode)
	sa                 *esp.SA    // our "in" SA, sealing as the AP does; nil without IPsec
	tunnelMode, natT   bool
	udp                bool // L2TPv3 over UDP 1701
	sid                uint32
	cookie             []byte
	sublayer           bool
	vlans              []uint16
	ipID               uint16
	innerSrc, innerDst netip.Addr
}

func peersOf(c *config.Config) ([]*peerEnc, error) {
	tunnels := map[string]*config.Tunnel{}
	for i := range c.Tunnels {
		tunnels[c.Tunnels[i].Name] = &c.Tunnels[i]
	}
	local := c.Downstream.Prefix.Addr()
	var out []*peerEnc
	for i := range c.StaticPeers {
		sp := &c.StaticPeers[i]
		t := tunnels[sp.Tunnel]
		p := &peerEnc{src: sp.Addr, dst: local, l2src: sp.Addr, l2dst: local,
			udp: t.Protocol == "udp", sid: uint32(sp.L2TP.LocalSessionID), cookie: sp.L2TP.LocalCookie,
			sublayer: sp.L2TP.L2Specific != "none", vlans: t.VLANs}
		if e := sp.ESP; e != nil {
			cph, err := esp.ParseCipher(e.In.Enc)
			if err != nil {
				return nil, fmt.Errorf("static_peers[%d] (%s).esp.in.enc: %w", i, sp.Name, err)
			}
			ig, err := esp.ParseInteg(e.In.Integ)
			if err != nil {
				return nil, fmt.Errorf("static_peers[%d] (%s).esp.in.integ: %w", i, sp.Name, err)
			}
			p.sa, err = esp.NewSA(esp.Config{SPI: uint32(e.In.SPI), Cipher: cph, EncKey: e.In.EncKey,
				Integ: ig, IntegKey: e.In.IntegKey, ESN: e.ESN})
			if err != nil {
				return nil, fmt.Errorf("static_peers[%d] (%s).esp.in: %w", i, sp.Name, err)
			}
			p.natT = e.UDPEncap
			if e.Mode == "tunnel" {
				p.tunnelMode = true
				p.innerSrc, p.innerDst = e.Inner.RemoteAddr, e.Inner.LocalAddr
				p.l2src, p.l2dst = p.innerSrc, p.innerDst
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// scratchOff is where the L2TPv3 payload starts in the scratch buffer:
// room for Ethernet, IPv6, UDP, ESP and IV, inner IPv6.
const scratchOff = 256

// encap wraps inner (an Ethernet frame) as the AP of p sends it and returns
// the frame, a view into scratch (len >= 4096).
func (p *peerEnc) encap(scratch, inner []byte, dstMAC [6]byte) ([]byte, error) {
	off := scratchOff
	n := 0
	if p.udp {
		n = hdr.UDPLen
		n += hdr.PutL2TPUDP(scratch[off+n:], p.sid, p.cookie, p.sublayer, false, 0)
	} else {
		n = hdr.PutL2TPIP(scratch[off:], p.sid, p.cookie, p.sublayer, false, 0)
	}
	n += copy(scratch[off+n:], inner)
	next := uint8(hdr.ProtoL2TP)
	if p.udp {
		hdr.PutUDP(scratch[off:], hdr.PortL2TP, hdr.PortL2TP, n)
		if p.l2src.Is6() {
			s, d := p.l2src.As16(), p.l2dst.As16()
			hdr.SetUDPChecksum(scratch[off:off+n], s[:], d[:])
		}
		next = hdr.ProtoUDP
	}
	if p.sa != nil {
		if p.tunnelMode {
			off, n, next = p.pushIP(scratch, off, n, p.innerSrc, p.innerDst, next)
		}
		start, end, r := p.sa.Seal(scratch, off, n, next)
		if r != stats.OK {
			return nil, fmt.Errorf("ESP seal (SPI 0x%x): %v", p.sa.SPI(), r)
		}
		off, n, next = start, end-start, hdr.ProtoESP
		if p.natT {
			off -= hdr.UDPLen
			n += hdr.UDPLen
			hdr.PutUDP(scratch[off:], hdr.PortIKENATT, hdr.PortIKENATT, n)
			if p.src.Is6() {
				s, d := p.src.As16(), p.dst.As16()
				hdr.SetUDPChecksum(scratch[off:off+n], s[:], d[:])
			}
			next = hdr.ProtoUDP
		}
	}
	off, n, _ = p.pushIP(scratch, off, n, p.src, p.dst, next)
	et := uint16(hdr.EtherTypeIPv4)
	if p.src.Is6() {
		et = hdr.EtherTypeIPv6
	}
	off -= hdr.EthLen
	n += hdr.EthLen
	hdr.PutEth(scratch[off:], dstMAC[:], GenMAC[:], et)
	return scratch[off : off+n], nil
}

// pushIP prepends an IP header src -> dst carrying proto to the packet at
// b[off:off+n] and returns the new bounds and the protocol number of the
// header pushed (4 or 41).
func (p *peerEnc) pushIP(b []byte, off, n int, src, dst netip.Addr, proto uint8) (int, int, uint8) {
	if src.Is4() {
		off -= hdr.IPv4MinLen
		n += hdr.IPv4MinLen
		s, d := src.As4(), dst.As4()
		p.ipID++
		hdr.PutIPv4(b[off:], s[:], d[:], proto, n, 64, p.ipID)
		return off, n, hdr.ProtoIPIP
	}
	off -= hdr.IPv6Len
	s, d := src.As16(), dst.As16()
	hdr.PutIPv6(b[off:], s[:], d[:], proto, n, 64)
	return off, n + hdr.IPv6Len, hdr.ProtoIPv6
}

// Build makes the frames o asks for from the peers of c (a validated
// tunterm configuration, such as `ttgen config` writes). Frames cycle over
// all clients, tunnels varying fastest: frame f belongs to client c = f mod
// C, of peer c mod N, its client number c div N.
func Build(c *config.Config, o Options) (*Set, error) {
	peers, err := peersOf(c)
	if err != nil {
		return nil, err
	}
	if len(peers) == 0 {
		return nil, fmt.Errorf("the configuration has no static_peers")
	}
	m := o.MACs
	if m == 0 {
		m = DefaultMACs
	}
	if m < 1 || m > MaxMACs {
		return nil, fmt.Errorf("clients per tunnel: %d is outside 1..%d", m, MaxMACs)
	}
	np := len(peers)
	nc := np * m
	size := o.Size
	dir := o.Dir
	if o.Learn {
		size, dir = Size{Fixed: 64}, Down
	}
	nf := nc
	if size.IMIX && nf%len(imix) != 0 {
		nf += len(imix) - nf%len(imix)
	}
	s := &Set{off: make([]uint32, nf), ln: make([]uint16, nf), client: make([]int32, nf),
		clients: make([]Client, nc), Tagged: dir == Up}
	for ci := range s.clients {
		i, j := ci%np, ci/np
		k := i*m + j
		s.clients[ci] = Client{Peer: i, MAC: j, K: k, VLAN: ClientVLAN(k, peers[i].vlans)}
	}
	// Exact arena size: inner length plus the largest encapsulation.
	const maxEncap = 14 + 40 + 8 + 8 + 16 + 40 + 8 + 8 + 8 + 4 + 255 + 2 + 32
	var total int
	for f := range nf {
		total += size.At(f) + maxEncap
	}
	if total > 1<<32-1 {
		return nil, fmt.Errorf("%d frames of up to %d bytes do not fit one arena", nf, size.At(0)+maxEncap)
	}
	s.buf = make([]byte, 0, total)
	scratch := make([]byte, 4096)
	inner := make([]byte, 1600)
	for f := range nf {
		ci := f % nc
		cl := s.clients[ci]
		p := peers[cl.Peer]
		sz := size.At(f)
		var fr []byte
		if dir == Down {
			PutInner(inner, sz, CorpMAC, ClientMAC(cl.Peer, cl.MAC), cl.VLAN, ClientIP(cl.K), CorpIP, cl.K)
			fr, err = p.encap(scratch, inner[:sz], o.DstMAC)
			if err != nil {
				return nil, err
			}
		} else {
			PutInner(inner, sz, ClientMAC(cl.Peer, cl.MAC), CorpMAC, cl.VLAN, CorpIP, ClientIP(cl.K), cl.K)
			fr = inner[:sz]
		}
		s.off[f], s.ln[f], s.client[f] = uint32(len(s.buf)), uint16(len(fr)), int32(ci)
		s.buf = append(s.buf, fr...)
		s.Bytes += uint64(len(fr))
		s.MaxLen = max(s.MaxLen, len(fr))
	}
	return s, nil
}
