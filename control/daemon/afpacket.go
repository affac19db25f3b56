package daemon

import (
	"fmt"

	"github.com/tunterm/tunterm/dataplane/port"
	"github.com/tunterm/tunterm/dataplane/port/afpacket"
)

// openAFPacket opens the fallback ports: one TPACKET_V3 socket per worker on
// each NIC, joined in a flow-hash fanout group when there are several, so
// each flow (and so each SA) reaches one worker. The kernel keeps seeing
// every frame (AF_PACKET is a tap): it answers ARP and IKE itself, and the
// dataplane counts those frames as punts.
func openAFPacket(d *Daemon, n int) error {
	pools := port.NewDepot(make([]byte, (n*2*4096+4096)*port.ChunkSize))
	for w := range n {
		wk := &worker{id: w, pool: pools.NewPool()}
		d.workers = append(d.workers, wk)
		for i, x := range []struct {
			ifc     ifaceInfo
			dst     *port.Port
			promisc bool
		}{{d.down, &wk.down, false}, {d.up, &wk.up, true}} {
			o := afpacket.Options{Promisc: x.promisc}
			if n > 1 {
				o.Fanout = &afpacket.FanoutGroup{ID: uint16(0x7474 + i), Mode: afpacket.FanoutHash, Defrag: true}
			}
			p, err := afpacket.Open(x.ifc.index, wk.pool, o)
			if err != nil {
				return fmt.Errorf("AF_PACKET socket on %s: %w", x.ifc.name, err)
			}
			d.closers = append(d.closers, p.Close)
			*x.dst = p
		}
	}
	d.driver = "afpacket"
	return nil
}
