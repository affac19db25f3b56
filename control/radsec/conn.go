package radsec

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// writeTimeout bounds one write to an AP; an AP that stops reading for
// longer loses its connection.
const writeTimeout = 10 * time.Second

// apConn is one AP's TLS connection. Two goroutines own it: the reader
// (run), which parses requests and hands them to the servers, and the
// writer (writeLoop), the only one that writes to tc. Answers reach the
// writer through out, which never blocks: it has room for every in-flight
// slot (sem).
//
// Memory per connection is bounded: one 4 KiB read buffer, TLS buffers,
// and at most max_inflight requests in flight (RFC 6614 §2.5 gives each
// connection its own 256 Identifiers; a full sem stops the reader, and TCP
// pushes back on the AP).
type apConn struct {
	p        *Proxy
	raw      net.Conn
	tc       *tls.Conn
	peer     string
	subject  string
	version  string
	notAfter time.Time
	expired  bool
	since    time.Time
	secret   []byte
	idle     time.Duration
	readTO   time.Duration

	sem       chan struct{} // one token per request in flight
	out       chan []byte
	done      chan struct{}
	closeOnce sync.Once
	// slots[id] is the request with that AP Identifier still waiting for
	// an answer: the reader stores, everyone else only clears (CAS).
	slots     [256]atomic.Pointer[request]
	requests  atomic.Uint64
	responses atomic.Uint64
	lastRX    atomic.Int64 // unix nanoseconds
}

func newAPConn(p *Proxy, s *snapshot, raw net.Conn, tc *tls.Conn) *apConn {
	cs := tc.ConnectionState()
	c := &apConn{p: p, raw: raw, tc: tc, peer: raw.RemoteAddr().String(), version: tls.VersionName(cs.Version),
		since: time.Now(), secret: s.secret, idle: time.Duration(s.rc.IdleTimeout),
		readTO: time.Duration(s.rc.HandshakeTimeout),
		sem:    make(chan struct{}, s.rc.MaxInflight), out: make(chan []byte, s.rc.MaxInflight),
		done: make(chan struct{})}
	if len(cs.PeerCertificates) > 0 {
		leaf := cs.PeerCertificates[0]
		c.subject, c.notAfter = leaf.Subject.String(), leaf.NotAfter
		for _, pc := range cs.PeerCertificates {
			if c.since.After(pc.NotAfter) {
				c.expired = true
			}
		}
	}
	c.lastRX.Store(c.since.UnixNano())
	return c
}

// run reads packets until the connection ends and returns why it ended.
func (c *apConn) run() string {
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		c.writeLoop()
	}()
	why := c.readLoop()
	c.close()
	<-wdone
	return why
}

func (c *apConn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.raw.Close() // not tc.Close: no close_notify to a peer that may not read
	})
}

func (c *apConn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// release gives back one in-flight slot.
func (c *apConn) release() { <-c.sem }

// deliver queues an answer for the writer; the writer releases its slot.
func (c *apConn) deliver(b []byte) {
	select {
	case c.out <- b:
	default: // cannot happen: out has a place for every slot
		c.release()
	}
}

// readLoop reads RADIUS packets framed by their Length (RFC 6613 §2.1)
// and hands each to the proxy.
func (c *apConn) readLoop() string {
	buf := make([]byte, MaxPacketLen)
	for {
		// The next packet may take idle_timeout to start; once started it
		// must arrive within handshake_timeout (no slowloris).
		c.tc.SetReadDeadline(time.Now().Add(c.idle))
		n, err := io.ReadFull(c.tc, buf[:4])
		if err != nil {
			if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
				if len(c.sem) > 0 {
					continue // answers pending: not idle
				}
				c.p.st.idleClosed.Add(1)
				return "idle_timeout"
			}
			return readWhy(err)
		}
		l := packetLen(buf)
		if l < HeaderLen || l > MaxPacketLen {
			why := dropAPMalformed
			if l > MaxPacketLen {
				why = dropAPOversized
			}
			c.p.dropAP(c, why)
			return "framing lost: " + why.String()
		}
		c.tc.SetReadDeadline(time.Now().Add(c.readTO))
		if _, err := io.ReadFull(c.tc, buf[4:l]); err != nil {
			return readWhy(err)
		}
		c.lastRX.Store(time.Now().UnixNano())
		select {
		case c.sem <- struct{}{}:
		case <-c.done:
			return "closed"
		}
		c.p.handle(c, buf[:l])
	}
}

func readWhy(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "closed by the AP"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "packet not completed within handshake_timeout"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	}
	return err.Error()
}

// writeLoop writes answers in the order they come.
func (c *apConn) writeLoop() {
	for {
		select {
		case b := <-c.out:
			c.tc.SetWriteDeadline(time.Now().Add(writeTimeout))
			_, err := c.tc.Write(b)
			c.release()
			if err != nil {
				c.close()
				return
			}
		case <-c.done:
			return
		}
	}
}
