package ike

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/tunterm/tunterm/control/config"
	"github.com/tunterm/tunterm/control/ike/iketest"
	"github.com/tunterm/tunterm/control/ike/wire"
	"github.com/tunterm/tunterm/control/programmer"
	"github.com/tunterm/tunterm/dataplane/bridge"
	"github.com/tunterm/tunterm/dataplane/table"
)

// fuzzResponder starts a responder on 127.0.0.1 with the real programmer.
func fuzzResponder(t testing.TB) *Responder {
	c, err := config.Parse([]byte(`
downstream: {address: 127.0.0.1/8}
tunnels: [{name: corp, vlans: [100]}]
static_peers: [{name: ap1, address: 127.0.0.2, tunnel: corp, l2tp: {local_session_id: 1, remote_session_id: 2}}]
ike:
  listen: [127.0.0.1]
  psk: [{id: "*", secret: "fuzz-secret"}]
  proposals: [aes256ctr-sha512-prfsha512-curve25519, aes256gcm16-prfsha384-ecp384]
  esp_proposals: [aes256ctr-sha512-esn, aes256gcm16-ecp256]
  fragment_size: 576
`))
	if err != nil {
		t.Fatal(err)
	}
	prog := programmer.New(&table.Store{}, bridge.New(1024))
	if _, err := prog.Apply(c); err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{Config: c.IKE, Dataplane: prog, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Port: -1, NATTPort: -1, Handlers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func connectAP(t testing.TB, r *Responder, frag bool) *iketest.Initiator {
	a, n := r.Addrs()
	cfg := iketest.Config{Local: netip.MustParseAddrPort("127.0.0.2:0"), Server: a[0], ServerNATT: n[0],
		IKE: "aes256ctr-sha512-prfsha512-curve25519", ESP: "aes256gcm16-ecp256", ID: "@#0011223344ff",
		PSK: []byte("fuzz-secret"), Transport: true, Timeout: 2 * time.Second}
	if frag {
		cfg.FragmentSize = 100
	}
	i, err := iketest.Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { i.Close() })
	if err := i.Connect(); err != nil {
		t.Fatal(err)
	}
	return i
}

// FuzzMessage: arbitrary datagrams on the IKE and NAT-T sockets never
// panic the responder.
func FuzzMessage(f *testing.F) {
	r := fuzzResponder(f)
	i := connectAP(f, r, true)
	if err := i.DPD(); err != nil {
		f.Fatal(err)
	}
	for _, b := range i.LastRequest {
		f.Add(b)
	}
	init := (&wire.Message{Header: wire.Header{SPIi: 1, Exchange: wire.IKE_SA_INIT, Flags: wire.FlagInitiator},
		Payloads: []wire.Payload{wire.NewNotify(wire.COOKIE, []byte{1, 2, 3}), &wire.Nonce{Data: make([]byte, 32)},
			&wire.KE{Group: wire.CURVE_25519, Data: make([]byte, 32)}}}).Marshal()
	f.Add(init)
	f.Add([]byte{0xff})
	f.Add(make([]byte, 28))
	from := netip.MustParseAddrPort("127.0.0.9:500")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, s := range r.socks {
			r.handle(packet{b: append([]byte(nil), b...), from: from, s: s})
		}
		if n := r.panics.Load(); n > 0 {
			t.Fatalf("%d panics while handling %x", n, b)
		}
	})
}

// FuzzEncrypted: arbitrary payload chains inside a correctly encrypted
// and authenticated message of an established IKE SA (every exchange
// type) never panic the responder. The SA is re-established when the
// input deleted it.
func FuzzEncrypted(f *testing.F) {
	r := fuzzResponder(f)
	var i *iketest.Initiator
	f.Add(uint8(1), uint8(wire.PayloadSA), []byte{0, 0, 0, 8, 0, 0, 0, 0})
	f.Add(uint8(3), uint8(wire.PayloadDelete), []byte{0, 0, 0, 8, 1, 0, 0, 0})
	f.Add(uint8(2), uint8(wire.PayloadNotify), []byte{0, 0, 0, 12, 3, 4, 0x40, 0x09, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, x, first uint8, body []byte) {
		var sa *ikeSA
		if i != nil {
			r.mu.Lock()
			sa = r.sas[i.SPIr]
			r.mu.Unlock()
		}
		if sa == nil {
			i = connectAP(t, r, false)
			r.mu.Lock()
			sa = r.sas[i.SPIr]
			r.mu.Unlock()
		}
		sa.mu.Lock()
		id := sa.peerNext
		sa.mu.Unlock()
		h := wire.Header{SPIi: i.SPIi, SPIr: i.SPIr, Exchange: wire.IKE_AUTH + wire.ExchangeType(x%3), Flags: wire.FlagInitiator, MessageID: id}
		r.handle(packet{b: i.SealRaw(h, wire.PayloadType(first), body), from: i.LocalAddr(), s: r.socks[0]})
		if n := r.panics.Load(); n > 0 {
			t.Fatalf("%d panics: exchange %v first %d body %x", n, h.Exchange, first, body)
		}
	})
}
