// Package iketest is an IKEv2 initiator for tests and benchmarks of the
// responder: an AP as the responder sees it. It builds its messages with
// control/ike/wire and its keys with control/ike/ikecrypto, which are
// verified against strongSwan, so that the responder is not only tested
// against itself. It covers what strongSwan's kernel-libipsec cannot (ESP
// transport mode, ESN) and the misbehaviour the tests need (wrong keys,
// replays, fragments, silence).
//
// Concurrency: an Initiator is used by one goroutine; its background reader
// answers the responder's requests (DPD, DELETE) unless Silent is set.
package iketest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tunterm/tunterm/control/ike/ikecrypto"
	"github.com/tunterm/tunterm/control/ike/proposal"
	"github.com/tunterm/tunterm/control/ike/wire"
	"github.com/tunterm/tunterm/dataplane/esp"
)

// Config describes the AP.
type Config struct {
	// Local is the address to bind (port 0: any).
	Local netip.AddrPort
	// Server is the responder's IKE address (port 500 or a test port);
	// ServerNATT its NAT-T address (4500).
	Server, ServerNATT netip.AddrPort
	IKE, ESP           string // proposals, strongSwan syntax
	ID                 string // strongSwan notation
	PSK                []byte
	// Certs (leaf first) and Key authenticate with RFC 7427 signatures
	// instead of the PSK; ClassicAuth uses methods 1/9/10/11 instead.
	Certs       []*x509.Certificate
	Key         crypto.Signer
	ClassicAuth bool
	// Transport asks for ESP transport mode (USE_TRANSPORT_MODE).
	Transport bool
	// TSi and TSr default to Local.Addr()/32[115] and Server.Addr()/32[115].
	TSi, TSr []wire.TrafficSelector
	// FakeNAT sends a wrong NAT_DETECTION_SOURCE_IP, as kernel-libipsec
	// does, so the responder sees a NAT and the SAs use UDP 4500.
	FakeNAT        bool
	InitialContact bool
	// FragmentSize > 0 announces RFC 7383 support and fragments our
	// encrypted messages longer than that.
	FragmentSize int
	// Timeout for one exchange (default 5s), retransmitting every second.
	Timeout time.Duration
	// Nonce, if set, makes the nonces of CREATE_CHILD_SA exchanges (rekeys;
	// initiator: the AP started the exchange), so that a test decides which
	// side of a rekey collision holds the lowest nonce (RFC 7296 §2.8.1).
	// Default: 32 random octets.
	Nonce func(initiator bool) []byte
}

// Child is a negotiated CHILD_SA as the AP sees it.
type Child struct {
	// In is the AP's inbound SA (the responder's outbound), Out the AP's
	// outbound (the responder's inbound, whose SPI the responder chose).
	In, Out   esp.Config
	Transport bool
	UDPEncap  bool
	TSi, TSr  []wire.TrafficSelector
	Chosen    proposal.Chosen
	// Replaces is the CHILD_SA a responder-initiated rekey replaced.
	Replaces *Child
	// Active: the AP sends with this SA (the first one at once, one the
	// responder rekeyed once the responder deleted the one it replaces,
	// as strongSwan does). Deleted: the responder deleted it. Closed: the
	// AP deleted it (DeleteChild); closing while that is unanswered.
	Active, Deleted, Closed atomic.Bool
	closing                 atomic.Bool
}

// Initiator is one AP's IKE SA.
type Initiator struct {
	cfg  Config
	conn *net.UDPConn

	SPIi, SPIr uint64
	Chosen     proposal.Chosen
	keys       ikecrypto.IKEKeys
	suite      ikecrypto.Suite
	skOut      *ikecrypto.SK
	skIn       *ikecrypto.SK
	natt       bool
	fragOK     bool
	msgID      uint32
	ni, nr     []byte
	initReq    []byte
	initResp   []byte
	// NATDetected reports whether the responder's NAT-D said a NAT
	// (always with FakeNAT).
	NATDetected bool
	// Children: the first CHILD_SA, then rekeyed/added ones.
	Children []*Child
	// IDr and RespAuth are what the responder sent in IKE_AUTH.
	IDr *wire.ID
	// Cookies counts COOKIE challenges met; InvalidKE INVALID_KE_PAYLOAD.
	Cookies, InvalidKE int
	// LastRequest is the last request we sent (datagrams, no marker), for
	// replay tests.
	LastRequest [][]byte

	// Silent stops answering the responder's requests (a dead AP).
	Silent atomic.Bool
	// Requests counts requests from the responder we answered.
	Requests atomic.Int64
	// Deleted is set when the responder deletes the IKE SA.
	Deleted atomic.Bool

	mu     sync.Mutex
	resps  chan []byte
	closed chan struct{}
	peerID uint32 // next request Message ID from the responder

	// notOrig: the responder rekeyed the IKE SA and is now its original
	// initiator (our requests carry no I flag, our keys are SK_er/SK_ar).
	notOrig bool
	// pendingIKE is the IKE SA the responder rekeyed to, used once it
	// deletes the old one.
	pendingIKE *pendingIKE
	// The response to the responder's last request (by SPIi, Message ID),
	// resent for a retransmission.
	lastSPIi uint64
	lastID   uint32
	lastResp [][]byte
	// ChildRekeysAnswered and IKERekeysAnswered count the responder's
	// rekeys we accepted.
	ChildRekeysAnswered, IKERekeysAnswered atomic.Int64
	// RedundantIKEDeleted counts DELETEs of the IKE SA the responder's
	// rekey created (before it took over: it lost a rekey collision).
	RedundantIKEDeleted atomic.Int64

	// Rekeys of ours in progress and held requests (collide.go), under mu.
	childRekeys map[*Child]*ChildRekey
	ikeRekey    *IKERekey
	hold        map[wire.ExchangeType]bool
	heldSeen    map[[2]uint64]bool
	held        chan *Request
}

type pendingIKE struct {
	spii, spir uint64
	keys       ikecrypto.IKEKeys
	suite      ikecrypto.Suite
	chosen     proposal.Chosen
	ni, nr     []byte // the exchange's nonces: the responder's, ours
}

// ErrTimeout: no answer.
var ErrTimeout = errors.New("iketest: no response")

// NotifyError is an error notify in a response.
type NotifyError struct{ Type wire.NotifyType }

func (e *NotifyError) Error() string { return "iketest: responder answered " + e.Type.String() }

// Dial opens the AP's socket.
func Dial(cfg Config) (*Initiator, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(cfg.Local))
	if err != nil {
		return nil, err
	}
	i := &Initiator{cfg: cfg, conn: conn, resps: make(chan []byte, 64), closed: make(chan struct{}), held: make(chan *Request, 16)}
	go i.read()
	return i, nil
}

// LocalAddr is the bound address.
func (i *Initiator) LocalAddr() netip.AddrPort {
	return i.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close closes the socket.
func (i *Initiator) Close() error {
	select {
	case <-i.closed:
	default:
		close(i.closed)
	}
	return i.conn.Close()
}

func (i *Initiator) server() netip.AddrPort {
	if i.natt {
		return i.cfg.ServerNATT
	}
	return i.cfg.Server
}

// SendRaw sends one datagram (the marker is added on NAT-T).
func (i *Initiator) SendRaw(b []byte) error {
	if i.natt {
		b = append([]byte{0, 0, 0, 0}, b...)
	}
	_, err := i.conn.WriteToUDPAddrPort(b, i.server())
	return err
}

// SendRawTo sends one datagram to an address as is.
func (i *Initiator) SendRawTo(b []byte, to netip.AddrPort) error {
	_, err := i.conn.WriteToUDPAddrPort(b, to)
	return err
}

func (i *Initiator) read() {
	buf := make([]byte, 65536)
	for {
		n, _, err := i.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		if i.natt {
			if n < 4 || b[0]|b[1]|b[2]|b[3] != 0 {
				continue
			}
			b = b[4:]
		}
		h, err := wire.ParseHeader(b)
		if err != nil {
			continue
		}
		b = append([]byte(nil), b...)
		if !h.IsResponse() {
			if !i.holdRequest(h, b) {
				i.answer(h, b)
			}
			continue
		}
		select {
		case i.resps <- b:
		default:
		}
	}
}

// Drain discards queued responses.
func (i *Initiator) Drain() {
	for {
		select {
		case <-i.resps:
		default:
			return
		}
	}
}

// roundTrip sends the datagrams and waits for the response to msgID,
// retransmitting every second.
func (i *Initiator) roundTrip(msgs [][]byte, x wire.ExchangeType, id uint32) ([][]byte, error) {
	return i.roundTripAfter(msgs, x, id, false)
}

// roundTripAfter is roundTrip for a request that was sent already (sent) or
// not.
func (i *Initiator) roundTripAfter(msgs [][]byte, x wire.ExchangeType, id uint32, sent bool) ([][]byte, error) {
	i.LastRequest = msgs
	deadline := time.Now().Add(i.cfg.Timeout)
	for time.Now().Before(deadline) {
		for _, m := range msgs {
			if !sent {
				if err := i.SendRaw(m); err != nil {
					return nil, err
				}
			}
		}
		sent = false
		var got [][]byte
		t := time.NewTimer(time.Second)
	wait:
		for {
			select {
			case b := <-i.resps:
				h, _ := wire.ParseHeader(b)
				if h.MessageID != id || h.Exchange != x {
					continue
				}
				got = append(got, b)
				m, err := wire.Parse(b)
				if err != nil {
					return nil, err
				}
				if f, ok := m.Payloads[len(m.Payloads)-1].(*wire.EncryptedFragment); ok && len(got) < int(f.Total) {
					continue
				}
				t.Stop()
				return got, nil
			case <-t.C:
				break wait
			}
		}
	}
	return nil, ErrTimeout
}

// Connect runs IKE_SA_INIT (following COOKIE and INVALID_KE_PAYLOAD) and
// IKE_AUTH with the first CHILD_SA.
func (i *Initiator) Connect() error {
	if err := i.Init(); err != nil {
		return err
	}
	return i.Auth()
}

// Init runs IKE_SA_INIT.
func (i *Initiator) Init() error {
	ikeP, err := proposal.Parse(i.cfg.IKE, proposal.IKE)
	if err != nil {
		return err
	}
	group := ikeP.DH[0]
	var cookie []byte
	i.SPIi = rand64()
	i.ni = rnd(32)
	for tries := 0; tries < 4; tries++ {
		dh, err := ikecrypto.GenerateKey(ikecrypto.DHGroup(group), nil)
		if err != nil {
			return err
		}
		h := wire.Header{SPIi: i.SPIi, Exchange: wire.IKE_SA_INIT, Flags: wire.FlagInitiator}
		var ps []wire.Payload
		if cookie != nil {
			ps = append(ps, wire.NewNotify(wire.COOKIE, cookie))
		}
		ps = append(ps, &wire.SA{Proposals: []wire.Proposal{ikeP.Wire(1, wire.ProtoIKE, nil, true)}},
			&wire.KE{Group: group, Data: dh.Public()}, &wire.Nonce{Data: i.ni})
		local := i.LocalAddr()
		if la := i.cfg.Local.Addr(); la.IsValid() && !la.IsUnspecified() {
			local = netip.AddrPortFrom(la, local.Port())
		}
		s, d := wire.NewNATD(i.SPIi, 0, local, i.cfg.Server)
		if i.cfg.FakeNAT {
			s = wire.NewNotify(wire.NAT_DETECTION_SOURCE_IP, rnd(20))
		}
		ps = append(ps, s, d)
		if i.cfg.FragmentSize > 0 {
			ps = append(ps, wire.NewNotify(wire.IKEV2_FRAGMENTATION_SUPPORTED, nil))
		}
		if i.cfg.Key != nil {
			ps = append(ps, wire.NewSignatureHashAlgorithms(wire.HashSHA2_256, wire.HashSHA2_384, wire.HashSHA2_512))
		}
		req := (&wire.Message{Header: h, Payloads: ps}).Marshal()
		got, err := i.roundTrip([][]byte{req}, wire.IKE_SA_INIT, 0)
		if err != nil {
			return err
		}
		m, err := wire.Parse(got[0])
		if err != nil {
			return err
		}
		if c, ok := m.Cookie(); ok {
			cookie = append([]byte(nil), c...)
			i.Cookies++
			continue
		}
		if n := m.Notify(wire.INVALID_KE_PAYLOAD); n != nil {
			g, ok := n.Group()
			if !ok {
				return errors.New("iketest: INVALID_KE_PAYLOAD without group")
			}
			group = g
			i.InvalidKE++
			continue
		}
		for _, p := range m.Payloads {
			if n, ok := p.(*wire.Notify); ok && n.NotifyType.IsError() {
				return &NotifyError{n.NotifyType}
			}
		}
		saP, ok1 := wire.First[*wire.SA](m.Payloads)
		ke, ok2 := wire.First[*wire.KE](m.Payloads)
		nr, ok3 := wire.First[*wire.Nonce](m.Payloads)
		if !ok1 || !ok2 || !ok3 {
			return fmt.Errorf("iketest: IKE_SA_INIT response %s", m)
		}
		chosen, ok := proposal.Select([]proposal.Proposal{ikeP}, saP.Proposals, proposal.WithDH)
		if !ok || len(saP.Proposals) != 1 {
			return fmt.Errorf("iketest: responder chose %v", saP.Proposals)
		}
		i.Chosen, i.suite = chosen, chosen.Suite(0)
		i.SPIr = m.SPIr
		i.nr = append([]byte(nil), nr.Data...)
		gir, err := dh.Shared(ke.Data)
		if err != nil {
			return err
		}
		seed, err := ikecrypto.SKEYSEED(i.suite.PRF, i.ni, i.nr, gir)
		if err != nil {
			return err
		}
		if i.keys, err = ikecrypto.DeriveIKEKeys(i.suite, seed, i.ni, i.nr, i.SPIi, i.SPIr); err != nil {
			return err
		}
		if err := i.setKeys(true); err != nil {
			return err
		}
		srcs, dst := wire.NATD(m.Payloads)
		if len(srcs) > 0 && dst != nil {
			want := wire.NATDHash(i.SPIi, i.SPIr, i.cfg.Server)
			i.NATDetected = !bytes.Equal(srcs[0], want[:]) || i.cfg.FakeNAT
			mine := wire.NATDHash(i.SPIi, i.SPIr, local)
			if !bytes.Equal(dst, mine[:]) {
				i.NATDetected = true
			}
		}
		i.fragOK = m.Notify(wire.IKEV2_FRAGMENTATION_SUPPORTED) != nil
		i.initReq, i.initResp = req, got[0]
		if i.NATDetected && i.cfg.ServerNATT.IsValid() {
			i.natt = true // RFC 7296 §2.23: switch to port 4500
		}
		i.msgID = 1
		return nil
	}
	return errors.New("iketest: IKE_SA_INIT did not converge")
}

// setKeys: weInit selects SK_ei/SK_ai for our messages.
func (i *Initiator) setKeys(weInit bool) error {
	a, err := ikecrypto.NewSK(i.suite, i.keys.SKei, i.keys.SKai)
	if err != nil {
		return err
	}
	b, err := ikecrypto.NewSK(i.suite, i.keys.SKer, i.keys.SKar)
	if err != nil {
		return err
	}
	if weInit {
		i.skOut, i.skIn = a, b
	} else {
		i.skOut, i.skIn = b, a
	}
	return nil
}

// Auth runs IKE_AUTH with the first CHILD_SA.
func (i *Initiator) Auth() error {
	idi, err := wire.NewID(i.cfg.ID, false)
	if err != nil {
		return err
	}
	prf := i.suite.PRF
	octets, err := ikecrypto.SignedOctets(prf, i.initReq, i.nr, i.keys.SKpi, idi.Body())
	if err != nil {
		return err
	}
	ps := []wire.Payload{idi}
	var auth *wire.AUTH
	if i.cfg.Key != nil {
		for _, c := range i.cfg.Certs {
			ps = append(ps, &wire.CERT{Encoding: wire.CertX509Signature, Data: c.Raw})
		}
		if i.cfg.ClassicAuth {
			m, d, err := ikecrypto.SignClassic(i.cfg.Key, octets, nil)
			if err != nil {
				return err
			}
			auth = &wire.AUTH{Method: wire.AuthMethod(m), Data: d}
		} else {
			sch := schemeFor(i.cfg.Key)
			d, err := ikecrypto.SignAuth(i.cfg.Key, sch, octets, nil)
			if err != nil {
				return err
			}
			auth = &wire.AUTH{Method: wire.AuthDigitalSignature, Data: d}
		}
	} else {
		d, err := ikecrypto.PSKAuth(prf, i.cfg.PSK, octets)
		if err != nil {
			return err
		}
		auth = &wire.AUTH{Method: wire.AuthSharedKeyMIC, Data: d}
	}
	if i.cfg.InitialContact {
		ps = append(ps, wire.NewNotify(wire.INITIAL_CONTACT, nil))
	}
	ps = append(ps, auth)
	childPs, inSPI, espP, err := i.childRequest(false)
	if err != nil {
		return err
	}
	ps = append(ps, childPs...)
	inner, err := i.exchange(wire.IKE_AUTH, ps)
	if err != nil {
		return err
	}
	for _, p := range inner {
		if n, ok := p.(*wire.Notify); ok && n.NotifyType.IsError() && n.NotifyType != wire.NO_PROPOSAL_CHOSEN &&
			n.NotifyType != wire.TS_UNACCEPTABLE {
			return &NotifyError{n.NotifyType}
		}
	}
	idr, ok1 := wire.First[*wire.ID](inner)
	ra, ok2 := wire.First[*wire.AUTH](inner)
	if !ok1 || !ok2 {
		return fmt.Errorf("iketest: IKE_AUTH response without IDr/AUTH")
	}
	i.IDr = idr
	roct, err := ikecrypto.SignedOctets(prf, i.initResp, i.ni, i.keys.SKpr, idr.Body())
	if err != nil {
		return err
	}
	if ra.Method == wire.AuthSharedKeyMIC {
		want, _ := ikecrypto.PSKAuth(prf, i.cfg.PSK, roct)
		if !hmac.Equal(want, ra.Data) {
			return errors.New("iketest: responder AUTH (PSK) does not verify")
		}
	} else {
		ce, ok := wire.First[*wire.CERT](inner)
		if !ok {
			return errors.New("iketest: responder signed without CERT")
		}
		x, err := x509.ParseCertificate(ce.Data)
		if err != nil {
			return err
		}
		if _, err := ikecrypto.VerifyAuth(x.PublicKey, ikecrypto.AuthMethod(ra.Method), ra.Data, roct); err != nil {
			return fmt.Errorf("iketest: responder AUTH (signature): %w", err)
		}
	}
	for _, p := range inner {
		if n, ok := p.(*wire.Notify); ok && n.NotifyType.IsError() {
			return &NotifyError{n.NotifyType}
		}
	}
	ch, err := i.childResponse(inner, inSPI, espP, i.ni, i.nr, nil, proposal.NoDH)
	if err != nil {
		return err
	}
	ch.Active.Store(true)
	i.mu.Lock()
	i.Children = append(i.Children, ch)
	i.mu.Unlock()
	return nil
}

func (i *Initiator) tsDefault() (tsi, tsr []wire.TrafficSelector) {
	tsi, tsr = i.cfg.TSi, i.cfg.TSr
	local := i.cfg.Local.Addr()
	if !local.IsValid() || local.IsUnspecified() {
		local = i.LocalAddr().Addr()
	}
	if tsi == nil {
		tsi = []wire.TrafficSelector{wire.NewTS(115, local, local, 0, 0xffff)}
	}
	if tsr == nil {
		s := i.cfg.Server.Addr()
		tsr = []wire.TrafficSelector{wire.NewTS(115, s, s, 0, 0xffff)}
	}
	return tsi, tsr
}

// childRequest builds [N(USE_TRANSPORT_MODE)] SA TSi TSr for a new CHILD_SA.
func (i *Initiator) childRequest(pfs bool) ([]wire.Payload, uint32, proposal.Proposal, error) {
	espP, err := proposal.Parse(i.cfg.ESP, proposal.ESP)
	if err != nil {
		return nil, 0, espP, err
	}
	inSPI := uint32(rand64()>>32) | 0x100
	var ps []wire.Payload
	if i.cfg.Transport {
		ps = append(ps, wire.NewNotify(wire.USE_TRANSPORT_MODE, nil))
	}
	ps = append(ps, &wire.SA{Proposals: []wire.Proposal{espP.Wire(1, wire.ProtoESP, binary.BigEndian.AppendUint32(nil, inSPI), pfs)}})
	tsi, tsr := i.tsDefault()
	ps = append(ps, &wire.TS{Selectors: tsi}, &wire.TS{Responder: true, Selectors: tsr})
	return ps, inSPI, espP, nil
}

func (i *Initiator) childResponse(inner []wire.Payload, inSPI uint32, espP proposal.Proposal, ni, nr, gir []byte, m proposal.Mode) (*Child, error) {
	saP, ok := wire.First[*wire.SA](inner)
	if !ok {
		return nil, errors.New("iketest: no CHILD_SA in the response")
	}
	chosen, ok := proposal.Select([]proposal.Proposal{espP}, saP.Proposals, m)
	if !ok || len(chosen.SPI) != 4 {
		return nil, fmt.Errorf("iketest: responder chose %v", saP.Proposals)
	}
	keys, err := ikecrypto.DeriveChildKeys(chosen.Suite(wire.PRFID(i.suite.PRF)), i.keys.SKd, gir, ni, nr)
	if err != nil {
		return nil, err
	}
	cph, integ, err := espAlgs(chosen)
	if err != nil {
		return nil, err
	}
	esn := chosen.ESN == wire.ESN
	ch := &Child{Chosen: chosen, UDPEncap: i.NATDetected, Transport: wire.FindNotify(inner, wire.USE_TRANSPORT_MODE) != nil,
		In: esp.Config{SPI: inSPI, Cipher: cph, EncKey: keys.RespToInit.EncKey, Integ: integ, IntegKey: keys.RespToInit.IntegKey, ESN: esn},
		Out: esp.Config{SPI: binary.BigEndian.Uint32(chosen.SPI), Cipher: cph, EncKey: keys.InitToResp.EncKey, Integ: integ,
			IntegKey: keys.InitToResp.IntegKey, ESN: esn}}
	for _, p := range inner {
		if t, ok := p.(*wire.TS); ok {
			if t.Responder {
				ch.TSr = t.Selectors
			} else {
				ch.TSi = t.Selectors
			}
		}
	}
	return ch, nil
}

func espAlgs(c proposal.Chosen) (esp.Cipher, esp.Integ, error) {
	name := map[wire.EncrID]string{wire.ENCR_AES_GCM_16: "aes-gcm", wire.ENCR_AES_CTR: "aes-ctr", wire.ENCR_AES_CBC: "aes-cbc"}[c.Encr.ID]
	var cph esp.Cipher
	var err error
	if c.Encr.ID == wire.ENCR_CHACHA20_POLY1305 {
		cph, err = esp.ParseCipher("chacha20-poly1305")
	} else {
		cph, err = esp.ParseCipher(fmt.Sprintf("%s-%d", name, c.Encr.Bits))
	}
	if err != nil {
		return 0, 0, err
	}
	integ := esp.IntegNone
	if c.Integ != wire.AUTH_NONE {
		n := map[wire.IntegID]string{wire.AUTH_HMAC_SHA1_96: "hmac-sha1-96", wire.AUTH_HMAC_SHA2_256_128: "hmac-sha2-256-128",
			wire.AUTH_HMAC_SHA2_384_192: "hmac-sha2-384-192", wire.AUTH_HMAC_SHA2_512_256: "hmac-sha2-512-256"}[c.Integ]
		if integ, err = esp.ParseInteg(n); err != nil {
			return 0, 0, err
		}
	}
	return cph, integ, nil
}

// Seal encrypts a request or response of ours (fragmenting when asked).
func (i *Initiator) Seal(h wire.Header, inner []wire.Payload) [][]byte {
	body, first := wire.AppendPayloads(nil, inner)
	if i.cfg.FragmentSize > 0 && i.fragOK && len(body) > i.cfg.FragmentSize {
		out, err := wire.SealFragments(i.skOut, h, first, body, i.cfg.FragmentSize)
		if err != nil {
			panic(err)
		}
		return out
	}
	return [][]byte{seal(i.skOut, h, &wire.Encrypted{Next: first}, body)}
}

func seal(sk *ikecrypto.SK, h wire.Header, p wire.Payload, body []byte) []byte {
	msg, err := wire.Seal(sk, h, p, body)
	if err != nil {
		panic(err)
	}
	return msg
}

// Open decrypts a message (all its fragments) from the responder.
func (i *Initiator) Open(datagrams [][]byte) (*wire.Message, []wire.Payload, error) {
	return openWith(i.skIn, datagrams)
}

// openWith decrypts a message with the inbound keys of an IKE SA.
func openWith(skIn *ikecrypto.SK, datagrams [][]byte) (*wire.Message, []wire.Payload, error) {
	var first *wire.Message
	parts := map[int][]byte{}
	var next wire.PayloadType
	for _, b := range datagrams {
		m, err := wire.Parse(b)
		if err != nil {
			return nil, nil, err
		}
		if first == nil {
			first = m
		}
		head, data, err := wire.SplitEncrypted(b)
		if err != nil {
			return nil, nil, err
		}
		plain, err := skIn.Open(head, data)
		if err != nil {
			return nil, nil, err
		}
		switch e := m.Payloads[len(m.Payloads)-1].(type) {
		case *wire.Encrypted:
			inner, err := wire.ParsePayloads(e.Next, plain)
			return m, inner, err
		case *wire.EncryptedFragment:
			parts[int(e.Number)] = plain
			if e.Number == 1 {
				next = e.Next
			}
		}
	}
	var all []byte
	for k := 1; k <= len(parts); k++ {
		all = append(all, parts[k]...)
	}
	inner, err := wire.ParsePayloads(next, all)
	return first, inner, err
}

// exchange runs one encrypted request/response of ours.
func (i *Initiator) exchange(x wire.ExchangeType, inner []wire.Payload) ([]wire.Payload, error) {
	i.mu.Lock()
	id := i.msgID
	i.msgID++
	h := wire.Header{SPIi: i.SPIi, SPIr: i.SPIr, Exchange: x, Flags: wire.FlagInitiator, MessageID: id}
	if i.notOrig {
		h.Flags = 0
	}
	i.mu.Unlock()
	got, err := i.roundTrip(i.Seal(h, inner), x, id)
	if err != nil {
		return nil, err
	}
	_, resp, err := i.Open(got)
	return resp, err
}

// Exchange runs a request of ours with arbitrary payloads.
func (i *Initiator) Exchange(x wire.ExchangeType, inner []wire.Payload) ([]wire.Payload, error) {
	return i.exchange(x, inner)
}

// DPD sends an empty INFORMATIONAL and waits for the answer.
func (i *Initiator) DPD() error {
	_, err := i.exchange(wire.INFORMATIONAL, nil)
	return err
}

// DeleteIKE deletes the IKE SA.
func (i *Initiator) DeleteIKE() error {
	_, err := i.exchange(wire.INFORMATIONAL, []wire.Payload{&wire.Delete{Protocol: wire.ProtoIKE}})
	return err
}

// DeleteChild deletes a CHILD_SA (by our inbound SPI) and returns the SPIs
// the responder deleted in turn.
func (i *Initiator) DeleteChild(c *Child) ([]uint32, error) {
	c.closing.Store(true)
	inner, err := i.exchange(wire.INFORMATIONAL, []wire.Payload{wire.NewDeleteESP(c.In.SPI)})
	c.closing.Store(false)
	if err != nil {
		return nil, err
	}
	c.Closed.Store(true)
	var out []uint32
	for _, p := range inner {
		if d, ok := p.(*wire.Delete); ok {
			for _, s := range d.SPIs {
				out = append(out, binary.BigEndian.Uint32(s))
			}
		}
	}
	return out, nil
}

// RekeyChild rekeys c (CREATE_CHILD_SA with REKEY_SA, RFC 7296 §1.3.3)
// with PFS when the ESP proposal names a group. It returns the new child;
// the caller deletes the old one (DeleteChild) as strongSwan does.
// (PrepareRekeyChild splits it, for rekey collisions.)
func (i *Initiator) RekeyChild(c *Child) (*Child, error) {
	p, err := i.PrepareRekeyChild(c)
	if err != nil {
		return nil, err
	}
	if err := p.Send(); err != nil {
		p.cancel()
		return nil, err
	}
	return p.Finish()
}

// RekeyIKE rekeys the IKE SA (RFC 7296 §1.3.2) and deletes the old one;
// the Initiator then speaks on the new SA. (PrepareRekeyIKE splits it, for
// rekey collisions.)
func (i *Initiator) RekeyIKE() error {
	p, err := i.PrepareRekeyIKE()
	if err != nil {
		return err
	}
	if err := p.Send(); err != nil {
		p.cancel()
		return err
	}
	return p.Finish()
}

// schemeFor picks the RFC 7427 scheme of a key.
func schemeFor(k crypto.Signer) ikecrypto.SigScheme {
	switch p := k.Public().(type) {
	case *rsa.PublicKey:
		return ikecrypto.SigRSAPKCS1SHA256
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P384():
			return ikecrypto.SigECDSASHA384
		case elliptic.P521():
			return ikecrypto.SigECDSASHA512
		}
	}
	return ikecrypto.SigECDSASHA256
}

func rnd(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func rand64() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:]) | 1
}

// Is makes errors.Is match NotifyErrors by type.
func (e *NotifyError) Is(target error) bool {
	t, ok := target.(*NotifyError)
	return ok && t.Type == e.Type
}

// SealRaw encrypts arbitrary octets as the content of an SK payload whose
// first inner payload is first (for fuzzing the responder behind its
// integrity check).
func (i *Initiator) SealRaw(h wire.Header, first wire.PayloadType, body []byte) []byte {
	return seal(i.skOut, h, &wire.Encrypted{Next: first}, body)
}
