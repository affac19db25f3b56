//go:build linux

package afpacket

import (
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// RxDrop is why Receive dropped a frame the kernel delivered.
type RxDrop int

// Receive drop reasons.
const (
	// RxTooBig: the frame (with its VLAN tag put back) is longer than
	// port.MaxFrame. Jumbo frames, or GRO/LRO aggregates: turn GRO off on
	// interfaces served by this port.
	RxTooBig RxDrop = iota
	// RxTruncated: tp_snaplen < tp_len; the ring block or the BPF filter
	// kept only part of the frame.
	RxTruncated
	// RxOutgoing: a frame the host sent out of the interface, seen when
	// PACKET_IGNORE_OUTGOING is not in force (old kernel, fanout).
	RxOutgoing
	NumRxDrops
)

var rxDropNames = [NumRxDrops]string{"too_big", "truncated", "outgoing"}

func (r RxDrop) String() string {
	if r >= 0 && r < NumRxDrops {
		return rxDropNames[r]
	}
	return fmt.Sprintf("RxDrop(%d)", int(r))
}

// TxErr is why Transmit could not queue a frame; mostly the errno that
// sendmmsg returned for it.
type TxErr int

// Transmit error reasons.
const (
	TxEAGAIN   TxErr = iota // socket send buffer full (the rest of the batch is dropped)
	TxENOBUFS               // device queue full or no memory (the rest of the batch is dropped)
	TxEMSGSIZE              // frame longer than the MTU allows (only that frame is dropped)
	TxEINVAL                // frame shorter than an Ethernet header (only that frame)
	TxENETDOWN              // interface down (the rest of the batch is dropped)
	TxENXIO                 // interface gone (the rest of the batch is dropped)
	TxOther                 // any other errno (the rest of the batch is dropped)
	TxBadFrame              // descriptor outside its chunk or empty; never sent
	TxClosed                // Transmit after Close
	NumTxErrs
)

var txErrNames = [NumTxErrs]string{"eagain", "enobufs", "emsgsize", "einval", "enetdown", "enxio", "other", "bad_frame", "closed"}

func (e TxErr) String() string {
	if e >= 0 && e < NumTxErrs {
		return txErrNames[e]
	}
	return fmt.Sprintf("TxErr(%d)", int(e))
}

// txErrOf maps an errno to its reason and whether only the one frame that
// caused it is affected (the kernel refused that frame, the rest of the
// batch may still go).
func txErrOf(e unix.Errno) (r TxErr, oneFrame bool) {
	switch e {
	case unix.EAGAIN:
		return TxEAGAIN, false
	case unix.ENOBUFS:
		return TxENOBUFS, false
	case unix.EMSGSIZE:
		return TxEMSGSIZE, true
	case unix.EINVAL:
		return TxEINVAL, true
	case unix.ENETDOWN:
		return TxENETDOWN, false
	case unix.ENXIO, unix.ENODEV:
		return TxENXIO, false
	}
	return TxOther, false
}

// Stats are a port's counters since Open.
type Stats struct {
	// From PACKET_STATISTICS (struct tpacket_stats_v3), summed across reads
	// (the kernel resets them on every read).
	Packets uint64 // tp_packets: frames that reached the socket, Drops included
	Drops   uint64 // tp_drops: frames the kernel dropped, the ring being full
	FreezeQ uint64 // tp_freeze_q_cnt: times the ring filled up and froze

	RxFrames, RxBytes uint64 // frames handed to the worker
	TxFrames, TxBytes uint64 // frames the kernel accepted
	RxDrops           [NumRxDrops]uint64
	TxErrors          [NumTxErrs]uint64 // frames not sent, by reason
	// RxPoolEmpty counts Receive calls cut short by an empty pool (the
	// frames stay in the ring).
	RxPoolEmpty uint64
	// RxCsumNotReady counts frames delivered with TP_STATUS_CSUMNOTREADY:
	// sent by this host with checksum offload, the L4 checksum not filled.
	RxCsumNotReady uint64
	// TxLastErrno is the most recent errno counted as TxOther.
	TxLastErrno unix.Errno
}

// Stats returns the port's counters. It is safe for concurrent use with the
// owner's calls; after Close it returns the final counts.
func (p *Port) Stats() (Stats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var err error
	if !p.closed {
		err = p.foldKernelStats()
	}
	s := Stats{Packets: p.kern.packets, Drops: p.kern.drops, FreezeQ: p.kern.freezeQ}
	p.ctr.read(&s)
	return s, err
}

type kernelStats struct{ packets, drops, freezeQ uint64 }

// foldKernelStats adds the kernel's counters since the last read; p.mu held.
func (p *Port) foldKernelStats() error {
	st, err := unix.GetsockoptTpacketStatsV3(p.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return fmt.Errorf("afpacket: %s: PACKET_STATISTICS: %w", p.name, err)
	}
	p.kern.packets += uint64(st.Packets)
	p.kern.drops += uint64(st.Drops)
	p.kern.freezeQ += uint64(st.Freeze_q_cnt)
	return nil
}

// counters are written by the owner once per batch and read by Stats. The
// padding keeps them off the cache lines of the owner's hot fields.
type counters struct {
	_              [64]byte
	rxFrames       atomic.Uint64
	rxBytes        atomic.Uint64
	rxPoolEmpty    atomic.Uint64
	rxCsumNotReady atomic.Uint64
	rxDrops        [NumRxDrops]atomic.Uint64
	txFrames       atomic.Uint64
	txBytes        atomic.Uint64
	txErrs         [NumTxErrs]atomic.Uint64
	txLastErrno    atomic.Uintptr
	_              [64]byte
}

// rxBatch sums one Receive call's counts in locals.
type rxBatch struct {
	frames, bytes, poolEmpty, csumNotReady uint64
	drops                                  [NumRxDrops]uint64
}

func (c *counters) addRx(b *rxBatch) {
	if b.frames != 0 {
		c.rxFrames.Add(b.frames)
		c.rxBytes.Add(b.bytes)
	}
	if b.poolEmpty != 0 {
		c.rxPoolEmpty.Add(b.poolEmpty)
	}
	if b.csumNotReady != 0 {
		c.rxCsumNotReady.Add(b.csumNotReady)
	}
	for i, d := range b.drops {
		if d != 0 {
			c.rxDrops[i].Add(d)
		}
	}
}

// txBatch sums one Transmit call's counts in locals.
type txBatch struct {
	frames, bytes uint64
	errs          [NumTxErrs]uint64
	lastErrno     unix.Errno
}

func (c *counters) addTx(b *txBatch) {
	if b.frames != 0 {
		c.txFrames.Add(b.frames)
		c.txBytes.Add(b.bytes)
	}
	for i, e := range b.errs {
		if e != 0 {
			c.txErrs[i].Add(e)
		}
	}
	if b.lastErrno != 0 {
		c.txLastErrno.Store(uintptr(b.lastErrno))
	}
}

func (c *counters) read(s *Stats) {
	s.RxFrames = c.rxFrames.Load()
	s.RxBytes = c.rxBytes.Load()
	s.RxPoolEmpty = c.rxPoolEmpty.Load()
	s.RxCsumNotReady = c.rxCsumNotReady.Load()
	for i := range s.RxDrops {
		s.RxDrops[i] = c.rxDrops[i].Load()
	}
	s.TxFrames = c.txFrames.Load()
	s.TxBytes = c.txBytes.Load()
	for i := range s.TxErrors {
		s.TxErrors[i] = c.txErrs[i].Load()
	}
	s.TxLastErrno = unix.Errno(c.txLastErrno.Load())
}
