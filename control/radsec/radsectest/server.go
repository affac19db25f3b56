package radsectest

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2868"
)

// Users of the fake server: every user whose name starts with "bob" and
// whose password is Password is accepted; "challenge" gets an
// Access-Challenge; everyone else is rejected.
const Password = "hello"

// Key is the MS-MPPE key the fake server sends user in an Access-Accept
// (send or receive key).
func Key(user string, send bool) []byte {
	dir := "recv"
	if send {
		dir = "send"
	}
	k := sha256.Sum256([]byte(dir + "|" + user))
	return k[:]
}

// TunnelPasswordOf is the Tunnel-Password the fake server sends user.
func TunnelPasswordOf(user string) string { return "tp-" + user }

// FakeServer is a RADIUS/UDP server for tests (RFC 2865, 2866, 5997). It
// answers from its own goroutine; its knobs may be turned at any time.
type FakeServer struct {
	conn   *net.UDPConn
	secret []byte
	reply  string
	acct   bool

	// NoMA leaves Message-Authenticator out of Access-* answers; BadMA
	// sends a wrong one; Silent answers nothing (Status-Server included);
	// SilentRequests answers only Status-Server; NoProxyState does not
	// echo Proxy-State; BadAuth sends a wrong Response Authenticator.
	NoMA, BadMA, Silent, SilentRequests, NoProxyState, BadAuth atomic.Bool
	// Delay holds each answer back (nanoseconds).
	Delay atomic.Int64
	// Fast accepts every Access-Request without checking anything (for
	// benchmarks: the proxy's cost, not ours).
	Fast atomic.Bool

	// Requests counts Access- and Accounting-Requests answered or not;
	// Status counts Status-Server; Bad counts requests that failed our
	// checks (wrong authenticator or Message-Authenticator).
	Requests, Status, Bad, MissingMA atomic.Uint64

	mu   sync.Mutex
	last []byte
	from netip.AddrPort
	wg   sync.WaitGroup
}

// NewFakeServer listens on addr (e.g. 127.0.0.1:0). reply is the
// Reply-Message of its Access-Accepts, to tell servers apart; acct makes
// it answer Status-Server with Accounting-Response, as an accounting port
// does.
func NewFakeServer(addr, secret, reply string, acct bool) (*FakeServer, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	// A large receive buffer: benchmarks send bursts of a thousand.
	if rc, err := c.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20) != nil {
				c.SetReadBuffer(8 << 20)
			}
		})
	}
	f := &FakeServer{conn: c, secret: []byte(secret), reply: reply, acct: acct}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

// AddReaders starts n more goroutines reading the socket (benchmarks).
func (f *FakeServer) AddReaders(n int) {
	for range n {
		f.wg.Add(1)
		go f.serve()
	}
}

// Addr is the server's address.
func (f *FakeServer) Addr() netip.AddrPort { return f.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Close stops the server.
func (f *FakeServer) Close() {
	f.conn.Close()
	f.wg.Wait()
}

// LastRequest returns a copy of the last request received and its source.
func (f *FakeServer) LastRequest() ([]byte, netip.AddrPort) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Clone(f.last), f.from
}

func (f *FakeServer) serve() {
	defer f.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, from, err := f.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		b := bytes.Clone(buf[:n])
		f.mu.Lock()
		f.last, f.from = b, from
		f.mu.Unlock()
		if d := time.Duration(f.Delay.Load()); d > 0 {
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				time.Sleep(d)
				f.answer(b, from)
			}()
			continue
		}
		f.answer(b, from)
	}
}

func (f *FakeServer) answer(b []byte, from netip.AddrPort) {
	p, err := radius.Parse(b, f.secret)
	if err != nil || f.Silent.Load() {
		return
	}
	var resp *radius.Packet
	switch p.Code {
	case radius.CodeStatusServer:
		f.Status.Add(1)
		if present, ok := CheckMA(b, b[4:20], f.secret); !present || !ok {
			f.Bad.Add(1)
			return
		}
		resp = p.Response(radius.CodeAccessAccept)
		if f.acct {
			resp = p.Response(radius.CodeAccountingResponse)
		}
	case radius.CodeAccessRequest:
		f.Requests.Add(1)
		present, ok := CheckMA(b, b[4:20], f.secret)
		if !present {
			f.MissingMA.Add(1)
		}
		if present && !ok {
			f.Bad.Add(1)
			return
		}
		if f.SilentRequests.Load() {
			return
		}
		if f.Fast.Load() {
			resp = p.Response(radius.CodeAccessAccept)
			break
		}
		resp = f.access(p)
	case radius.CodeAccountingRequest:
		f.Requests.Add(1)
		if !radius.IsAuthenticRequest(b, f.secret) {
			f.Bad.Add(1)
			return
		}
		if f.SilentRequests.Load() {
			return
		}
		resp = p.Response(radius.CodeAccountingResponse)
	default:
		return
	}
	if !f.NoProxyState.Load() {
		for _, a := range p.Attributes {
			if a.Type == AttrProxyState {
				resp.Add(AttrProxyState, a.Attribute)
			}
		}
	}
	withMA := resp.Code != radius.CodeAccountingResponse && !f.NoMA.Load()
	out, err := Encode(resp, withMA)
	if err != nil {
		return
	}
	if withMA && f.BadMA.Load() {
		out[22] ^= 1
		fixResponseAuth(out, b[4:20], f.secret)
	}
	if f.BadAuth.Load() {
		out[4] ^= 1
	}
	f.conn.WriteToUDPAddrPort(out, from)
}

// fixResponseAuth recomputes the Response Authenticator of out.
func fixResponseAuth(out, reqAuth, secret []byte) {
	h := md5.New()
	h.Write(out[:4])
	h.Write(reqAuth)
	h.Write(out[20:])
	h.Write(secret)
	copy(out[4:20], h.Sum(nil))
}

func (f *FakeServer) access(p *radius.Packet) *radius.Packet {
	user := rfc2865.UserName_GetString(p)
	ok := false
	if pw, err := rfc2865.UserPassword_Lookup(p); err == nil {
		ok = string(pw) == Password
	} else if chap := rfc2865.CHAPPassword_Get(p); len(chap) == 17 {
		challenge := rfc2865.CHAPChallenge_Get(p)
		if challenge == nil {
			challenge = p.Authenticator[:]
		}
		h := md5.New()
		h.Write(chap[:1])
		h.Write([]byte(Password))
		h.Write(challenge)
		ok = bytes.Equal(h.Sum(nil), chap[1:])
	}
	switch {
	case user == "challenge":
		r := p.Response(radius.CodeAccessChallenge)
		rfc2865.State_SetString(r, "state-1")
		return r
	case ok && strings.HasPrefix(user, "bob"):
		r := p.Response(radius.CodeAccessAccept)
		rfc2865.ReplyMessage_SetString(r, f.reply)
		// Hidden attributes: the proxy must move them to the AP's secret.
		for _, k := range []struct {
			typ  byte
			send bool
		}{{MSMPPESendKey, true}, {MSMPPERecvKey, false}} {
			salt := []byte{0x80 | k.typ, 0x42}
			v, _ := radius.NewTunnelPassword(Key(user, k.send), salt, f.secret, p.Authenticator[:])
			vsa := append([]byte{0, 0, VendorMicrosoft >> 8, VendorMicrosoft & 0xff, k.typ, byte(2 + len(v))}, v...)
			r.Add(AttrVendorSpecific, vsa)
		}
		rfc2868.TunnelPassword_Add(r, 0, []byte(TunnelPasswordOf(user)))
		return r
	}
	r := p.Response(radius.CodeAccessReject)
	rfc2865.ReplyMessage_SetString(r, f.reply)
	return r
}
