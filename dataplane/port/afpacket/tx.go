//go:build linux

package afpacket

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tunterm/tunterm/dataplane/port"
)

// Transmit implements port.Port. It queues the batch with one sendmmsg(2)
// (MSG_DONTWAIT, straight from the chunks), returns every chunk to the pool
// and resets b.N. It reports how many frames the kernel accepted.
//
// sendmmsg stops at the first frame the kernel refuses and reports only the
// frames before it; Transmit then asks again from that frame to learn the
// errno. A frame refused on its own merits (EMSGSIZE, EINVAL) is skipped and
// the rest still go; a full queue (EAGAIN, ENOBUFS) or a down interface ends
// the batch. Either way the frames are counted by reason in Stats.TxErrors,
// never returned as an error. So a clean batch costs one system call, and a
// refused frame one more.
func (p *Port) Transmit(b *port.Batch) int {
	var c txBatch
	frames := b.Frames()
	if p.fd < 0 {
		c.errs[TxClosed] = uint64(len(frames))
		p.putAll(b)
		p.ctr.addTx(&c)
		return 0
	}
	m := 0
	for i := range frames {
		f := &frames[i]
		if f.Len <= 0 || f.Off < 0 || f.Off+f.Len > len(f.Buf) {
			c.errs[TxBadFrame]++
			continue
		}
		p.iovs[m].Base = &f.Buf[f.Off]
		p.iovs[m].SetLen(f.Len)
		p.msgs[m].hdr.Iov = &p.iovs[m]
		p.msgs[m].hdr.SetIovlen(1)
		p.msgs[m].len = 0
		m++
	}
	retried := false
	for i := 0; i < m; {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(p.fd),
			uintptr(unsafe.Pointer(&p.msgs[i])), uintptr(m-i), unix.MSG_DONTWAIT, 0, 0)
		if e == 0 {
			if r == 0 { // cannot happen with m-i > 0; do not spin
				c.errs[TxOther] += uint64(m - i)
				break
			}
			for j := i; j < i+int(r); j++ {
				c.bytes += uint64(p.msgs[j].len)
			}
			c.frames += uint64(r)
			i += int(r)
			continue
		}
		if e == unix.EINTR && !retried {
			retried = true
			continue
		}
		reason, oneFrame := txErrOf(e)
		if reason == TxOther {
			c.lastErrno = e
		}
		if oneFrame {
			c.errs[reason]++
			i++
			continue
		}
		c.errs[reason] += uint64(m - i)
		break
	}
	// sendmmsg has copied every accepted frame into an skb: the chunks are
	// free again, sent or not.
	p.putAll(b)
	p.ctr.addTx(&c)
	return int(c.frames)
}

func (p *Port) putAll(b *port.Batch) {
	for i := range b.Frames() {
		p.pool.Put(&b.F[i])
	}
	b.N = 0
}
