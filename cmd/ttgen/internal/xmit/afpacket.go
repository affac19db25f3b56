package xmit

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tunterm/tunterm/cmd/ttgen/internal/traffic"
)

// AFPacketBatch is the number of frames per sendmmsg call.
const AFPacketBatch = 64

// mmsghdr is struct mmsghdr (64-bit).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// AFPacket sends with sendmmsg on an AF_PACKET socket bound to one
// interface, bypassing the qdisc.
type AFPacket struct {
	fd   int
	msgs []mmsghdr
	iovs []unix.Iovec
	next int // next frame of the set
}

// NewAFPacket opens a send-only AF_PACKET socket on ifindex.
func NewAFPacket(ifindex int) (*AFPacket, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0) // protocol 0: send only
	if err != nil {
		return nil, fmt.Errorf("afpacket: socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("afpacket: PACKET_QDISC_BYPASS: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("afpacket: bind: %w", err)
	}
	a := &AFPacket{fd: fd, msgs: make([]mmsghdr, AFPacketBatch), iovs: make([]unix.Iovec, AFPacketBatch)}
	for i := range a.msgs {
		a.msgs[i].hdr.Iov = &a.iovs[i]
		a.msgs[i].hdr.SetIovlen(1)
	}
	return a, nil
}

// Batch implements Sender: a full sendmmsg batch at full rate, about a
// millisecond of traffic when paced.
func (a *AFPacket) Batch(rate float64) int {
	if rate <= 0 {
		return AFPacketBatch
	}
	return max(1, min(AFPacketBatch, int(rate/1000)))
}

// fill points the first n iovecs at the frames of set from next on.
func (a *AFPacket) fill(set *traffic.Set, next int, n int) {
	for i := range n {
		fr := set.Frame(next)
		a.iovs[i].Base = &fr[0]
		a.iovs[i].SetLen(len(fr))
		if next++; next == set.Len() {
			next = 0
		}
	}
}

// Send implements Sender.
func (a *AFPacket) Send(set *traffic.Set, max int) (int, uint64, error) {
	n := min(max, AFPacketBatch)
	a.fill(set, a.next%set.Len(), n)
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(a.fd), uintptr(unsafe.Pointer(&a.msgs[0])), uintptr(n), 0, 0, 0)
	switch e {
	case 0:
	case unix.EINTR, unix.EAGAIN, unix.ENOBUFS:
		return 0, 0, nil
	default:
		return 0, 0, fmt.Errorf("afpacket: sendmmsg: %w", e)
	}
	sent := int(r)
	var bytes uint64
	for i := range sent {
		bytes += uint64(a.iovs[i].Len)
	}
	a.next = (a.next + sent) % set.Len()
	return sent, bytes, nil
}

// Close closes the socket.
func (a *AFPacket) Close() error { return unix.Close(a.fd) }
