package pipeline

import (
	"net/netip"

	"github.com/tunterm/tunterm/dataplane/hdr"
	"github.com/tunterm/tunterm/dataplane/port"
	"github.com/tunterm/tunterm/dataplane/stats"
	"github.com/tunterm/tunterm/dataplane/table"
)

// ttl is the TTL / hop limit of the packets we originate.
const ttl = 64

// toSession encapsulates the inner frame f (VLAN vlan; tagged says whether
// f carries that tag) for session s and queues it on the downstream port:
// pseudowire tagging, L2TPv3 header (+UDP), ESP (transport or tunnel mode,
// optionally in UDP 4500), outer IP, Ethernet to the next hop.
func (w *Worker) toSession(t *table.Tables, s *table.Session, f *port.Frame, vlan uint16, tagged bool, taps *tapSet) stats.Reason {
	tun := s.Tunnel
	if !tun.VLANs.Has(vlan) {
		return stats.VLANNotAllowed
	}
	if f.Len < hdr.EthLen {
		return stats.Malformed
	}
	p := s.Peer
	var out *table.SA
	if tun.IPsec {
		if out = p.Out; out == nil {
			return stats.NoOutSA
		}
	}
	nh := p.St.NextHop.Load()
	if nh == 0 && t.Local.HaveGatewayMAC {
		nh = hdr.MACUint64(t.Local.GatewayMAC[:])
	}
	if nh == 0 {
		return stats.NoNeighbor
	}
	// Size everything before touching the frame, so that a drop leaves it
	// intact for the drop tap.
	want := s.PW == table.PWVLAN || vlan != tun.Native
	inner := f.Len
	if want && !tagged {
		inner += hdr.VLANLen
	} else if !want && tagged {
		inner -= hdr.VLANLen
	}
	l2n := len(s.RemoteCookie)
	if s.Sublayer {
		l2n += hdr.L2TPSublayerLen
	}
	if tun.Proto == table.ProtoUDP {
		l2n += hdr.L2TPUDPHdrLen + hdr.UDPLen
	} else {
		l2n += hdr.L2TPIPHdrLen
	}
	local, remote := t.Local.Addr, p.Addr
	outer := ipLen(local) + l2n + inner
	if out != nil {
		n := l2n + inner
		if out.Mode == table.ModeTunnel {
			n += ipLen(out.InnerLocal)
		}
		outer = ipLen(local) + n + out.ESP.Overhead(n)
		if out.UDPEncap {
			outer += hdr.UDPLen
		}
	}
	if outer > tun.MTU {
		return stats.TooBig
	}
	if f.Off < outer-inner+hdr.EthLen+hdr.VLANLen || (out != nil && f.Tail() < out.ESP.MaxTrailer()) {
		return stats.Malformed // cannot happen within port.Headroom/Tailroom
	}

	// Pseudowire form (RFC 4719): Ethernet carries the native VLAN
	// untagged; Ethernet-VLAN tags everything.
	if want && !tagged {
		f.Off = hdr.InsertVLAN(f.Buf, f.Off, vlan)
		f.Len += hdr.VLANLen
	} else if !want && tagged {
		f.Off = hdr.RemoveVLAN(f.Buf, f.Off)
		f.Len -= hdr.VLANLen
	}
	innerLen := f.Len

	// L2TPv3 data header.
	l2n = len(s.RemoteCookie)
	if s.Sublayer {
		l2n += hdr.L2TPSublayerLen
	}
	proto := uint8(hdr.ProtoL2TP)
	if tun.Proto == table.ProtoUDP {
		hdr.PutL2TPUDP(f.Push(l2n+hdr.L2TPUDPHdrLen), s.RemoteID, s.RemoteCookie, s.Sublayer, false, 0)
		n := f.Len + hdr.UDPLen
		hdr.PutUDP(f.Push(hdr.UDPLen), hdr.PortL2TP, hdr.PortL2TP, n)
		proto = hdr.ProtoUDP
	} else {
		hdr.PutL2TPIP(f.Push(l2n+hdr.L2TPIPHdrLen), s.RemoteID, s.RemoteCookie, s.Sublayer, false, 0)
	}

	outerProto := proto
	if out != nil {
		next := proto
		if out.Mode == table.ModeTunnel {
			l2local, l2remote := out.InnerLocal, out.InnerRemote
			if proto == hdr.ProtoUDP && l2local.Is6() {
				l, r := l2local.As16(), l2remote.As16()
				hdr.SetUDPChecksum(f.Bytes(), l[:], r[:])
			}
			next = pushIP(f, l2local, l2remote, proto, &w.ipID)
		} else if proto == hdr.ProtoUDP && local.Is6() {
			l, r := local.As16(), remote.As16()
			hdr.SetUDPChecksum(f.Bytes(), l[:], r[:])
		}
		start, end, r := out.ESP.Seal(f.Buf, f.Off, f.Len, next)
		if r != stats.OK {
			return r
		}
		f.Off, f.Len = start, end-start
		outerProto = hdr.ProtoESP
		if out.UDPEncap {
			dport := uint16(p.St.NATPort.Load())
			if dport == 0 {
				dport = hdr.PortIKENATT
			}
			n := f.Len + hdr.UDPLen
			hdr.PutUDP(f.Push(hdr.UDPLen), hdr.PortIKENATT, dport, n)
			if local.Is6() {
				l, r := local.As16(), remote.As16()
				hdr.SetUDPChecksum(f.Bytes(), l[:], r[:])
			}
			outerProto = hdr.ProtoUDP
		}
	} else {
		if proto == hdr.ProtoUDP && local.Is6() {
			l, r := local.As16(), remote.As16()
			hdr.SetUDPChecksum(f.Bytes(), l[:], r[:])
		}
	}
	et := pushIP(f, local, remote, outerProto, &w.ipID)
	ethType := uint16(hdr.EtherTypeIPv4)
	if et == hdr.ProtoIPv6 {
		ethType = hdr.EtherTypeIPv6
	}
	eth := f.Push(hdr.EthLen)
	putMAC(eth[0:6], nh)
	copy(eth[6:12], t.Local.MAC[:])
	eth[12], eth[13] = byte(ethType>>8), byte(ethType)

	st := s.St
	st.TxPackets.Store(st.TxPackets.Load() + 1)
	st.TxBytes.Store(st.TxBytes.Load() + uint64(innerLen))
	w.toDown(f, taps)
	return stats.OK
}

func ipLen(a netip.Addr) int {
	if a.Is4() {
		return hdr.IPv4MinLen
	}
	return hdr.IPv6Len
}

// pushIP prepends an IPv4 or IPv6 header from src to dst carrying proto and
// returns the protocol number that announces it (4 or 41).
func pushIP(f *port.Frame, src, dst netip.Addr, proto uint8, id *uint16) uint8 {
	n := f.Len
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		*id++
		hdr.PutIPv4(f.Push(hdr.IPv4MinLen), s[:], d[:], proto, n+hdr.IPv4MinLen, ttl, *id)
		return hdr.ProtoIPIP
	}
	s, d := src.As16(), dst.As16()
	hdr.PutIPv6(f.Push(hdr.IPv6Len), s[:], d[:], proto, n, ttl)
	return hdr.ProtoIPv6
}

func putMAC(b []byte, v uint64) {
	_ = b[5]
	b[0], b[1], b[2] = byte(v>>40), byte(v>>32), byte(v>>24)
	b[3], b[4], b[5] = byte(v>>16), byte(v>>8), byte(v)
}
