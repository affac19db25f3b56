package radsectest

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// Client is a RadSec client (RFC 6614) playing an AP: RADIUS over one TLS
// connection, requests matched to answers by Identifier. Safe for
// concurrent use.
type Client struct {
	conn   *tls.Conn
	Secret []byte

	wmu     sync.Mutex
	mu      sync.Mutex
	waiting map[byte]*call
	next    byte
	free    chan struct{} // one token per free Identifier
	err     error
	done    chan struct{}
}

type call struct {
	req []byte
	ch  chan []byte
}

// Dial connects to a RadSec server with the client certificate in cfg.
func Dial(ctx context.Context, addr string, cfg *tls.Config, secret string) (*Client, error) {
	d := tls.Dialer{Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return NewClient(c.(*tls.Conn), secret), nil
}

// NewClient runs a client on an established connection.
func NewClient(conn *tls.Conn, secret string) *Client {
	c := &Client{conn: conn, Secret: []byte(secret), waiting: map[byte]*call{}, free: make(chan struct{}, 256),
		done: make(chan struct{})}
	for range 256 {
		c.free <- struct{}{}
	}
	go c.readLoop()
	return c
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Done is closed when the connection has ended; Err says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the connection ended.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Client) readLoop() {
	var err error
	defer func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		close(c.done)
	}()
	for {
		var b []byte
		if b, err = ReadPacket(c.conn); err != nil {
			return
		}
		c.mu.Lock()
		k := c.waiting[b[1]]
		delete(c.waiting, b[1])
		c.mu.Unlock()
		if k != nil {
			k.ch <- b
		}
	}
}

// ReadPacket reads one RADIUS packet framed by its Length (RFC 6613 §2.1).
func ReadPacket(r io.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	l := int(binary.BigEndian.Uint16(h[2:]))
	if l < 20 {
		return nil, fmt.Errorf("radsectest: Length %d", l)
	}
	b := make([]byte, l)
	copy(b, h[:])
	_, err := io.ReadFull(r, b[4:])
	return b, err
}

// Write sends raw bytes on the connection.
func (c *Client) Write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.conn.Write(b)
	return err
}

// Exchange sends p (p.Secret should be c.Secret; p.Identifier is replaced)
// and waits for the answer, which must be authentic. withMA adds a
// Message-Authenticator.
func (c *Client) Exchange(ctx context.Context, p *radius.Packet, withMA bool) (*radius.Packet, error) {
	select {
	case <-c.free:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, c.endErr()
	}
	defer func() { c.free <- struct{}{} }()
	c.mu.Lock()
	for c.waiting[c.next] != nil {
		c.next++
	}
	id := c.next
	c.next++
	q := *p
	q.Identifier = id
	b, err := Encode(&q, withMA)
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	k := &call{req: b, ch: make(chan []byte, 1)}
	c.waiting[id] = k
	c.mu.Unlock()
	if err := c.Write(b); err != nil {
		return nil, err
	}
	select {
	case resp := <-k.ch:
		if _, err := CheckResponse(resp, b, c.Secret); err != nil {
			return nil, err
		}
		return radius.Parse(resp, c.Secret)
	case <-ctx.Done():
		c.mu.Lock()
		if c.waiting[id] == k {
			delete(c.waiting, id)
		}
		c.mu.Unlock()
		return nil, ctx.Err()
	case <-c.done:
		return nil, c.endErr()
	}
}

// ExchangeRaw sends b as is and returns the raw answer with b's
// Identifier.
func (c *Client) ExchangeRaw(ctx context.Context, b []byte) ([]byte, error) {
	k := &call{req: b, ch: make(chan []byte, 1)}
	c.mu.Lock()
	c.waiting[b[1]] = k
	c.mu.Unlock()
	if err := c.Write(b); err != nil {
		return nil, err
	}
	select {
	case resp := <-k.ch:
		return resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, c.endErr()
	}
}

func (c *Client) endErr() error {
	if err := c.Err(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return io.EOF
}

// AccessRequest builds an Access-Request for user with a PAP password.
func AccessRequest(secret, user, password string) *radius.Packet {
	p := radius.New(radius.CodeAccessRequest, []byte(secret))
	rfc2865.UserName_SetString(p, user)
	rfc2865.UserPassword_SetString(p, password)
	rfc2865.NASIdentifier_SetString(p, "radsectest")
	return p
}

// AccountingRequest builds an Accounting-Request (Start) for user.
func AccountingRequest(secret, user string) *radius.Packet {
	p := radius.New(radius.CodeAccountingRequest, []byte(secret))
	rfc2865.UserName_SetString(p, user)
	p.Add(40, radius.NewInteger(1)) // Acct-Status-Type = Start
	p.Add(44, radius.Attribute("session-1"))
	return p
}

// TLSConfig is a client configuration presenting leaf and trusting ca.
func TLSConfig(leaf *Leaf, ca *CA) *tls.Config {
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if leaf != nil {
		cfg.Certificates = []tls.Certificate{leaf.TLS}
	}
	return cfg
}

// DialRaw opens a plain TCP connection (for plaintext and slow clients).
func DialRaw(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }
