package pipeline_test

import (
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/tunterm/tunterm/control/config"
	"github.com/tunterm/tunterm/control/programmer"
	"github.com/tunterm/tunterm/dataplane/bridge"
	"github.com/tunterm/tunterm/dataplane/pipeline"
	"github.com/tunterm/tunterm/dataplane/port"
	"github.com/tunterm/tunterm/dataplane/port/mem"
	"github.com/tunterm/tunterm/dataplane/stats"
	"github.com/tunterm/tunterm/dataplane/table"
)

// rig is one worker on in-memory ports, programmed from YAML through the
// real config and programmer code.
type rig struct {
	tb       testing.TB
	store    *table.Store
	fdb      *bridge.FDB
	prog     *programmer.Programmer
	pool     *port.Pool
	down, up *mem.Port
	w        *pipeline.Worker
	now      time.Time
	keep     bool // record outputs
	upOut    [][]byte
	downOut  [][]byte
	drops    []stats.Reason
	rx       port.Batch
}

func newRig(tb testing.TB, yml string) *rig {
	tb.Helper()
	return newRigWith(tb, yml, pipeline.Config{})
}

// newRigWith is newRig with the worker's tunables (PrefetchMinSAs) from wc.
func newRigWith(tb testing.TB, yml string, wc pipeline.Config) *rig {
	tb.Helper()
	c, err := config.Parse([]byte(yml))
	if err != nil {
		tb.Fatalf("config: %v", err)
	}
	r := &rig{tb: tb, store: &table.Store{}, fdb: bridge.New(c.Bridge.FDBSize), pool: port.NewPool(4096), keep: true,
		now: time.Unix(1700000000, 0)}
	r.prog = programmer.New(r.store, r.fdb)
	if _, err := r.prog.Apply(c); err != nil {
		tb.Fatalf("apply: %v", err)
	}
	r.down, r.up = mem.New("down", r.pool), mem.New("up", r.pool)
	r.up.Sink = func(b []byte, _ int64) {
		if r.keep {
			r.upOut = append(r.upOut, append([]byte(nil), b...))
		}
	}
	r.down.Sink = func(b []byte, _ int64) {
		if r.keep {
			r.downOut = append(r.downOut, append([]byte(nil), b...))
		}
	}
	r.w = pipeline.NewWorker(pipeline.Config{Tables: r.store, FDB: r.fdb, Pool: r.pool, Down: r.down, Up: r.up,
		Clock: func() time.Time { return r.now }, PrefetchMinSAs: wc.PrefetchMinSAs})
	r.w.Taps.Set(func(_ stats.Dir, _ []byte, _ int64, why stats.Reason) {
		if r.keep {
			r.drops = append(r.drops, why)
		}
	}, nil, nil)
	return r
}

func (r *rig) reload(yml string) {
	r.tb.Helper()
	c, err := config.Parse([]byte(yml))
	if err != nil {
		r.tb.Fatalf("config: %v", err)
	}
	if _, err := r.prog.Apply(c); err != nil {
		r.tb.Fatalf("apply: %v", err)
	}
}

// send processes frames received on one side and returns what came out and
// the reasons of what was dropped.
func (r *rig) send(dir stats.Dir, frames ...[]byte) (up, down [][]byte, drops []stats.Reason) {
	r.upOut, r.downOut, r.drops = nil, nil, nil
	p := r.down
	if dir == stats.FromUp {
		p = r.up
	}
	for _, f := range frames {
		p.Inject(f, r.now.UnixNano())
	}
	for p.Pending() > 0 {
		p.Receive(&r.rx)
		r.w.Process(dir, &r.rx)
	}
	if n := r.pool.InUse(); n != 0 {
		r.tb.Fatalf("%d frame buffers leaked", n)
	}
	return r.upOut, r.downOut, r.drops
}

// ---- frames built with gopacket (an implementation we did not write) ----

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// inner builds a client frame: Ethernet [+802.1Q vlan] / IPv4 / UDP / payload.
func inner(tb testing.TB, src, dst string, vlan uint16, payload []byte) []byte {
	eth := &layers.Ethernet{SrcMAC: mac(src), DstMAC: mac(dst), EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IPv4(198, 19, 1, 1), DstIP: net.IPv4(198, 19, 1, 2)}
	udp := &layers.UDP{SrcPort: 1000, DstPort: 2000}
	udp.SetNetworkLayerForChecksum(ip)
	if vlan == 0 {
		return serialize(tb, eth, ip, udp, gopacket.Payload(payload))
	}
	eth.EthernetType = layers.EthernetTypeDot1Q
	return serialize(tb, eth, &layers.Dot1Q{VLANIdentifier: vlan, Type: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload(payload))
}

// l2tpIP builds plaintext L2TPv3 over IP (RFC 3931 §4.1.1.1) from a peer:
// Ethernet / IPv4 proto 115 / session ID / cookie / [sublayer] / frame.
func l2tpIP(tb testing.TB, peer string, sid uint32, cookie []byte, sublayer bool, frame []byte) []byte {
	h := binary.BigEndian.AppendUint32(nil, sid)
	h = append(h, cookie...)
	if sublayer {
		h = append(h, 0, 0, 0, 0)
	}
	return serialize(tb,
		&layers.Ethernet{SrcMAC: mac("02:00:00:00:00:fe"), DstMAC: mac("02:00:00:00:00:01"), EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: 115, SrcIP: net.ParseIP(peer).To4(), DstIP: net.IPv4(198, 18, 0, 1)},
		gopacket.Payload(append(h, frame...)))
}

// decodeDown decodes a frame sent towards the APs as plaintext L2TPv3 over
// IP and returns the outer destination, the session ID, the cookie (of
// cookieLen bytes) and the inner frame (after a 4-byte sublayer).
func decodeDown(tb testing.TB, b []byte, cookieLen int) (dst net.IP, sid uint32, cookie, frame []byte) {
	tb.Helper()
	p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil || ip.Protocol != 115 {
		tb.Fatalf("downstream frame is not IPv4/L2TPv3: %v", p)
	}
	pl := ip.Payload
	return ip.DstIP, binary.BigEndian.Uint32(pl), pl[4 : 4+cookieLen], pl[4+cookieLen+4:]
}

// vlanOf decodes a frame's 802.1Q VLAN (0 = untagged).
func vlanOf(tb testing.TB, b []byte) uint16 {
	p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	if q, ok := p.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); ok {
		return q.VLANIdentifier
	}
	return 0
}
