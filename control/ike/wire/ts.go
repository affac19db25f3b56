package wire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// TS is a Traffic Selector payload, TSi or TSr (RFC 7296 §3.13).
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Number of TSs |                 RESERVED                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       <Traffic Selectors>                     ~
type TS struct {
	Responder bool // TSr (45) rather than TSi (44)
	Selectors []TrafficSelector
}

// TrafficSelector is one selector (RFC 7296 §3.13.1).
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   TS Type     |IP Protocol ID*|       Selector Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Start Port*         |           End Port*           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                         Starting Address*                     ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                         Ending Address*                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Protocol 0 means any; ports 0-65535 mean any port. For an unknown TS Type
// Start and End are invalid and Data holds the octets after the ports.
type TrafficSelector struct {
	TSType     TSType
	Protocol   uint8
	StartPort  uint16
	EndPort    uint16
	Start, End netip.Addr
	Data       []byte
}

func (p *TS) Type() PayloadType {
	if p.Responder {
		return PayloadTSr
	}
	return PayloadTSi
}

// NewTS is one address range selector; the TS type follows the address
// family of start (start and end must share it).
func NewTS(proto uint8, start, end netip.Addr, startPort, endPort uint16) TrafficSelector {
	t := TrafficSelector{TSType: TS_IPV4_ADDR_RANGE, Protocol: proto, StartPort: startPort, EndPort: endPort, Start: start, End: end}
	if start.Is6() {
		t.TSType = TS_IPV6_ADDR_RANGE
	}
	return t
}

// TSPrefix is the selector for a whole prefix, any protocol and port when
// proto is 0.
func TSPrefix(p netip.Prefix, proto uint8) TrafficSelector {
	p = p.Masked()
	a := p.Addr().AsSlice()
	for i := p.Bits(); i < len(a)*8; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	end, _ := netip.AddrFromSlice(a)
	return NewTS(proto, p.Addr(), end, 0, 0xffff)
}

func (p *TS) AppendBody(dst []byte) []byte {
	if len(p.Selectors) > 255 {
		panic("ike: more than 255 traffic selectors")
	}
	dst = append(dst, byte(len(p.Selectors)), 0, 0, 0)
	for i := range p.Selectors {
		s := &p.Selectors[i]
		start := len(dst)
		dst = append(dst, byte(s.TSType), s.Protocol, 0, 0)
		dst = binary.BigEndian.AppendUint16(dst, s.StartPort)
		dst = binary.BigEndian.AppendUint16(dst, s.EndPort)
		switch s.TSType {
		case TS_IPV4_ADDR_RANGE:
			if !s.Start.Is4() || !s.End.Is4() {
				panic("ike: TS_IPV4_ADDR_RANGE with non-IPv4 addresses")
			}
			dst = append(dst, s.Start.AsSlice()...)
			dst = append(dst, s.End.AsSlice()...)
		case TS_IPV6_ADDR_RANGE:
			if !s.Start.Is6() || !s.End.Is6() {
				panic("ike: TS_IPV6_ADDR_RANGE with non-IPv6 addresses")
			}
			a, e := s.Start.As16(), s.End.As16()
			dst = append(append(dst, a[:]...), e[:]...)
		default:
			dst = append(dst, s.Data...)
		}
		putLen16(dst[start+2:], len(dst)-start)
	}
	return dst
}

func parseTS(b []byte, responder bool) (*TS, error) {
	if len(b) < 4 {
		return nil, syntaxErr("TS body of %d octets", len(b))
	}
	p := &TS{Responder: responder}
	n := int(b[0])
	if n > 0 {
		p.Selectors = make([]TrafficSelector, 0, n)
	}
	for b = b[4:]; len(b) > 0; {
		if len(b) < 8 {
			return nil, syntaxErr("traffic selector of %d octets", len(b))
		}
		l := int(binary.BigEndian.Uint16(b[2:]))
		if l < 8 || l > len(b) {
			return nil, syntaxErr("selector length %d with %d octets left", l, len(b))
		}
		s := TrafficSelector{TSType: TSType(b[0]), Protocol: b[1], StartPort: binary.BigEndian.Uint16(b[4:]), EndPort: binary.BigEndian.Uint16(b[6:])}
		addr := b[8:l]
		switch s.TSType {
		case TS_IPV4_ADDR_RANGE:
			if l != 16 { // RFC 7296 §3.13.1: "the Selector Length ... 16"
				return nil, syntaxErr("TS_IPV4_ADDR_RANGE of %d octets", l)
			}
			s.Start = netip.AddrFrom4([4]byte(addr[0:4]))
			s.End = netip.AddrFrom4([4]byte(addr[4:8]))
		case TS_IPV6_ADDR_RANGE:
			if l != 40 {
				return nil, syntaxErr("TS_IPV6_ADDR_RANGE of %d octets", l)
			}
			s.Start = netip.AddrFrom16([16]byte(addr[0:16]))
			s.End = netip.AddrFrom16([16]byte(addr[16:32]))
		default:
			s.Data = addr
		}
		p.Selectors = append(p.Selectors, s)
		b = b[l:]
	}
	if len(p.Selectors) != n {
		return nil, syntaxErr("TS says %d selectors, holds %d", n, len(p.Selectors))
	}
	return p, nil
}

// String prints the selector in strongSwan's layout with numbers for
// protocol and ports: "198.18.0.1/32[17/1701]", "10.0.0.0/24",
// "10.0.0.1..10.0.0.9[115]" (a range that is not a prefix).
func (s TrafficSelector) String() string {
	var addr string
	if s.Start.IsValid() && s.End.IsValid() {
		addr = s.Start.String() + ".." + s.End.String()
		for bits := s.Start.BitLen(); bits >= 0; bits-- {
			if pf, err := s.Start.Prefix(bits); err == nil && pf.Addr() == s.Start && TSPrefix(pf, 0).End == s.End {
				addr = pf.String()
				break
			}
		}
	} else {
		addr = fmt.Sprintf("type%d:%x", s.TSType, s.Data)
	}
	if s.Protocol == 0 && s.StartPort == 0 && s.EndPort == 0xffff {
		return addr
	}
	ports := fmt.Sprintf("%d-%d", s.StartPort, s.EndPort)
	switch {
	case s.StartPort == s.EndPort:
		ports = fmt.Sprint(s.StartPort)
	case s.StartPort == 0 && s.EndPort == 0xffff:
		ports = ""
	}
	return strings.TrimSuffix(fmt.Sprintf("%s[%d/%s", addr, s.Protocol, ports), "/") + "]"
}
