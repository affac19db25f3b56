//go:build linux

package afpacket

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tunterm/tunterm/dataplane/port"
)

// TPACKET_V3 ring layout (Documentation/networking/packet_mmap.rst,
// include/uapi/linux/if_packet.h). A block starts with
//
//	struct tpacket_block_desc {
//	    __u32 version;           // 0
//	    __u32 offset_to_priv;    // 4
//	    struct tpacket_hdr_v1 {
//	        __u32 block_status;          // 8   TP_STATUS_KERNEL / TP_STATUS_USER
//	        __u32 num_pkts;              // 12
//	        __u32 offset_to_first_pkt;   // 16  from the block start
//	        __u32 blk_len; __u64 seq_num; ...
//	    } hdr.bh1;
//	};
//
// and each frame in it with a struct tpacket3_hdr (unix.Tpacket3Hdr, 48
// bytes) followed by a struct sockaddr_ll at TPACKET_ALIGN(48); the frame's
// bytes are at tp_mac from the tpacket3_hdr.
const (
	blkStatusOff   = 8
	blkNumPktsOff  = 12
	blkFirstPktOff = 16
	tpacket3HdrLen = 48 // sizeof(struct tpacket3_hdr), already 16-aligned
	sockaddrLLLen  = 20 // sizeof(struct sockaddr_ll)
	sllPkttypeOff  = tpacket3HdrLen + 10

	ethAddrsLen = 12 // destination and source MAC: a VLAN tag goes after them
	vlanTagLen  = 4
	tpid8021Q   = 0x8100
)

func (p *Port) blockStatus(blk int) *uint32 {
	return (*uint32)(unsafe.Pointer(&p.ring[blk*p.blockSize+blkStatusOff]))
}

// Receive implements port.Port. It never blocks: it reads what the kernel has
// already handed over and returns 0 when nothing is ready (see Poll).
//
// Each frame is copied into a pool chunk at port.Headroom with any VLAN tag
// the kernel stripped put back. Frames that do not fit (longer than
// port.MaxFrame), frames cut short by the ring or the filter (tp_snaplen <
// tp_len) and our own outgoing frames are dropped and counted. When the pool
// runs dry Receive stops and leaves the rest in the ring for the next call,
// counted as RxPoolEmpty; if the ring then fills, the kernel drops (Drops).
func (p *Port) Receive(b *port.Batch) int {
	if p.ring == nil {
		return 0
	}
	var c rxBatch
	start := b.N
	for !b.Full() {
		if !p.inBlk {
			st := atomic.LoadUint32(p.blockStatus(p.blk))
			if st&unix.TP_STATUS_USER == 0 {
				break
			}
			base := p.blk * p.blockSize
			p.left = *(*uint32)(unsafe.Pointer(&p.ring[base+blkNumPktsOff]))
			p.pkt = base + int(*(*uint32)(unsafe.Pointer(&p.ring[base+blkFirstPktOff])))
			p.inBlk = true
		}
		if p.left > 0 {
			if !p.readFrame(b, &c) {
				break // pool empty: leave the frame in the ring
			}
		}
		if p.left == 0 {
			// Every frame of the block is copied out: give it back.
			atomic.StoreUint32(p.blockStatus(p.blk), unix.TP_STATUS_KERNEL)
			p.inBlk = false
			if p.blk++; p.blk == p.nblocks {
				p.blk = 0
			}
		}
	}
	n := b.N - start
	c.frames = uint64(n)
	p.ctr.addRx(&c)
	return n
}

// readFrame consumes the frame at the cursor, appending it to b unless it is
// dropped. It returns false, consuming nothing, when the pool is empty.
func (p *Port) readFrame(b *port.Batch, c *rxBatch) bool {
	h := (*unix.Tpacket3Hdr)(unsafe.Pointer(&p.ring[p.pkt]))
	snap := int(h.Snaplen)
	status := h.Status
	n := snap
	vlan := status&unix.TP_STATUS_VLAN_VALID != 0 || h.Hv1.Vlan_tci != 0
	if vlan && snap >= ethAddrsLen {
		n += vlanTagLen
	} else {
		vlan = false
	}
	var reason RxDrop = -1
	switch {
	case p.ring[p.pkt+sllPkttypeOff] == unix.PACKET_OUTGOING:
		reason = RxOutgoing
	case uint32(snap) < h.Len:
		reason = RxTruncated
	case n > port.MaxFrame:
		reason = RxTooBig
	}
	if reason < 0 {
		id, ok := p.pool.GetID()
		if !ok {
			c.poolEmpty++
			return false
		}
		chunk := p.pool.Chunk(id)
		src := p.ring[p.pkt+int(h.Mac):][:snap]
		dst := chunk[port.Headroom : port.Headroom+n]
		if vlan {
			tpid := uint16(tpid8021Q)
			if status&unix.TP_STATUS_VLAN_TPID_VALID != 0 && h.Hv1.Vlan_tpid != 0 {
				tpid = h.Hv1.Vlan_tpid
			}
			copy(dst, src[:ethAddrsLen])
			binary.BigEndian.PutUint16(dst[ethAddrsLen:], tpid)
			binary.BigEndian.PutUint16(dst[ethAddrsLen+2:], uint16(h.Hv1.Vlan_tci))
			copy(dst[ethAddrsLen+vlanTagLen:], src[ethAddrsLen:])
		} else {
			copy(dst, src)
		}
		if status&unix.TP_STATUS_CSUMNOTREADY != 0 {
			c.csumNotReady++
		}
		b.F[b.N] = port.Frame{Buf: chunk, Off: port.Headroom, Len: n, ID: id,
			TS: int64(h.Sec)*1e9 + int64(h.Nsec)}
		b.N++
		c.bytes += uint64(n)
	} else {
		c.drops[reason]++
	}
	p.pkt += int(h.Next_offset)
	p.left--
	return true
}

// Poll waits up to timeout (forever if negative) for the ring to hold a
// block for Receive. It returns at once if one is ready, which includes a
// block Receive left part-read because the pool ran dry: a worker holding
// every chunk must return some before polling again. Interrupted waits
// return nil; callers loop on Poll and Receive anyway.
func (p *Port) Poll(timeout time.Duration) error {
	if p.ring == nil {
		return ErrClosed
	}
	if p.inBlk || atomic.LoadUint32(p.blockStatus(p.blk))&unix.TP_STATUS_USER != 0 {
		return nil
	}
	ms := -1
	if timeout >= 0 {
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	p.pfd[0].Revents = 0
	if _, err := unix.Poll(p.pfd[:], ms); err != nil && err != unix.EINTR {
		return fmt.Errorf("afpacket: poll %s: %w", p.name, err)
	}
	return nil
}
