package wire_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/tunterm/tunterm/control/ike/wire"
)

// Outside check: messages written by our encoder, dissected by tshark's
// isakmp dissector; every field tshark reports must be what we wrote.

var (
	apAddr  = netip.MustParseAddrPort("198.18.0.2:500")
	ttAddr  = netip.MustParseAddrPort("198.18.0.1:500")
	apNATT  = netip.MustParseAddrPort("198.18.0.2:4500")
	ttNATT  = netip.MustParseAddrPort("198.18.0.1:4500")
	spiI    = uint64(0x8a6e31e2c4b0a7f1)
	spiR    = uint64(0x1f2e3d4c5b6a7988)
	esnSPI  = []byte{0xc1, 0x00, 0x00, 0x01}
	fillKey = bytes.Repeat([]byte{0x5c}, 32)
)

type capMsg struct {
	name     string
	src, dst netip.AddrPort
	m        *wire.Message
}

func ikeProposals() []wire.Proposal {
	return []wire.Proposal{
		{Number: 1, Protocol: wire.ProtoIKE, Transforms: []wire.Transform{wire.Encr(wire.ENCR_AES_CTR, 256),
			wire.Integ(wire.AUTH_HMAC_SHA2_512_256), wire.PRF(wire.PRF_HMAC_SHA2_512), wire.DH(wire.CURVE_25519)}},
		{Number: 2, Protocol: wire.ProtoIKE, Transforms: []wire.Transform{wire.Encr(wire.ENCR_AES_GCM_16, 256),
			wire.Encr(wire.ENCR_CHACHA20_POLY1305, 0), wire.PRF(wire.PRF_HMAC_SHA2_384), wire.DH(wire.ECP_384), wire.DH(wire.MODP_2048)}},
	}
}

func captureSet(t testing.TB) []capMsg {
	natdS, natdD := wire.NewNATD(spiI, 0, apAddr, ttAddr)
	req := &wire.Message{
		Header: wire.Header{SPIi: spiI, Exchange: wire.IKE_SA_INIT, Flags: wire.FlagInitiator},
		Payloads: []wire.Payload{
			&wire.SA{Proposals: ikeProposals()},
			&wire.KE{Group: wire.CURVE_25519, Data: fillKey},
			&wire.Nonce{Data: bytes.Repeat([]byte{0x4e}, 32)},
			natdS, natdD,
			wire.NewNotify(wire.IKEV2_FRAGMENTATION_SUPPORTED, nil),
			wire.NewSignatureHashAlgorithms(wire.HashSHA2_256, wire.HashSHA2_384, wire.HashSHA2_512),
			&wire.VendorID{Data: []byte("tunterm-test")},
		},
	}
	rs, rd := wire.NewNATD(spiI, spiR, ttAddr, apAddr)
	resp := wire.NewResponse(req,
		&wire.SA{Proposals: []wire.Proposal{{Number: 2, Protocol: wire.ProtoIKE, Transforms: []wire.Transform{
			wire.Encr(wire.ENCR_AES_GCM_16, 256), wire.PRF(wire.PRF_HMAC_SHA2_384), wire.DH(wire.ECP_384)}}}},
		&wire.KE{Group: wire.ECP_384, Data: bytes.Repeat([]byte{0x6b}, 96)},
		&wire.Nonce{Data: bytes.Repeat([]byte{0x72}, 48)},
		rs, rd,
		wire.NewNotify(wire.IKEV2_FRAGMENTATION_SUPPORTED, nil),
		&wire.CERTREQ{Encoding: wire.CertX509Signature, Authority: bytes.Repeat([]byte{0xca}, 40)},
	)
	resp.SPIr = spiR
	cookie := wire.NewResponse(req, wire.NewNotify(wire.COOKIE, bytes.Repeat([]byte{0xc0}, 20)))
	invalidKE := wire.NewResponse(req, wire.NewInvalidKE(wire.ECP_256))

	auth := &wire.Message{
		Header:   wire.Header{SPIi: spiI, SPIr: spiR, Exchange: wire.IKE_AUTH, Flags: wire.FlagInitiator, MessageID: 1},
		Payloads: []wire.Payload{&wire.Encrypted{Next: wire.PayloadIDi, Data: bytes.Repeat([]byte{0xee}, 16+64+16)}},
	}
	frag := &wire.Message{
		Header:   wire.Header{SPIi: spiI, SPIr: spiR, Exchange: wire.IKE_AUTH, Flags: wire.FlagResponse, MessageID: 1},
		Payloads: []wire.Payload{&wire.EncryptedFragment{Next: wire.PayloadIDr, Number: 1, Total: 2, Data: bytes.Repeat([]byte{0xef}, 16+48+16)}},
	}
	info := &wire.Message{
		Header:   wire.Header{SPIi: spiI, SPIr: spiR, Exchange: wire.INFORMATIONAL, Flags: wire.FlagResponse, MessageID: 5},
		Payloads: []wire.Payload{&wire.Encrypted{Next: wire.PayloadDelete, Data: bytes.Repeat([]byte{0xdd}, 8+16+12)}},
	}
	// Payloads that normally travel inside SK, in the clear so that tshark
	// dissects them.
	idi, _ := wire.NewID("@#0024a5b6c7d8", false)
	idr, _ := wire.NewID("tunterm.example", true)
	zoo := &wire.Message{
		Header: wire.Header{SPIi: spiI, SPIr: spiR, Exchange: wire.CREATE_CHILD_SA, Flags: wire.FlagInitiator, MessageID: 2},
		Payloads: []wire.Payload{
			idi, idr,
			&wire.AUTH{Method: wire.AuthSharedKeyMIC, Data: bytes.Repeat([]byte{0xa0}, 64)},
			&wire.SA{Proposals: []wire.Proposal{{Number: 1, Protocol: wire.ProtoESP, SPI: esnSPI, Transforms: []wire.Transform{
				wire.Encr(wire.ENCR_AES_CTR, 256), wire.Integ(wire.AUTH_HMAC_SHA2_512_256), wire.ESNT(wire.ESN), wire.ESNT(wire.NO_ESN)}}}},
			&wire.TS{Selectors: []wire.TrafficSelector{wire.NewTS(17, apAddr.Addr(), apAddr.Addr(), 1701, 1701)}},
			&wire.TS{Responder: true, Selectors: []wire.TrafficSelector{wire.NewTS(115, ttAddr.Addr(), ttAddr.Addr(), 0, 0xffff),
				wire.TSPrefix(netip.MustParsePrefix("2001:db8::/64"), 0)}},
			wire.NewNotify(wire.USE_TRANSPORT_MODE, nil),
			wire.NewNotify(wire.ESP_TFC_PADDING_NOT_SUPPORTED, nil),
			&wire.Notify{Protocol: wire.ProtoESP, SPI: esnSPI, NotifyType: wire.REKEY_SA},
			wire.NewDeleteESP(0xc1000002, 0xc1000003),
			&wire.Config{CFGType: wire.CFG_REQUEST, Attributes: []wire.ConfigAttribute{{Type: wire.INTERNAL_IP4_ADDRESS}}},
			wire.NewSignatureAuth([]byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}, bytes.Repeat([]byte{0x51}, 8)),
		},
	}
	return []capMsg{
		{"IKE_SA_INIT request", apAddr, ttAddr, req},
		{"IKE_SA_INIT response", ttAddr, apAddr, resp},
		{"COOKIE", ttAddr, apAddr, cookie},
		{"INVALID_KE", ttAddr, apAddr, invalidKE},
		{"IKE_AUTH SK over 4500", apNATT, ttNATT, auth},
		{"IKE_AUTH SKF over 4500", ttNATT, apNATT, frag},
		{"INFORMATIONAL over 4500", ttNATT, apNATT, info},
		{"payload zoo", apAddr, ttAddr, zoo},
	}
}

// writePcap writes each message in an Ethernet/IPv4/UDP frame, with the
// non-ESP marker on port 4500 (RFC 3948 §2.2).
func writePcap(t testing.TB, path string, msgs []capMsg) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, cm := range msgs {
		payload := cm.m.Marshal()
		if cm.dst.Port() == 4500 {
			payload = append([]byte{0, 0, 0, 0}, payload...)
		}
		frame := udpFrame(t, cm.src, cm.dst, payload)
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000+int64(i), 0), CaptureLength: len(frame), Length: len(frame)}
		if err := w.WritePacket(ci, frame); err != nil {
			t.Fatal(err)
		}
	}
}

func udpFrame(t testing.TB, src, dst netip.AddrPort, payload []byte) []byte {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var tsharkFields = []string{
	"udp.dstport", "isakmp.ispi", "isakmp.rspi", "isakmp.exchangetype", "isakmp.flags", "isakmp.messageid", "isakmp.length",
	"isakmp.typepayload", "isakmp.payloadlength", "isakmp.criticalpayload",
	"isakmp.prop.number", "isakmp.prop.protoid", "isakmp.spi", "isakmp.prop.transforms",
	"isakmp.tf.id.encr", "isakmp.tf.id.prf", "isakmp.tf.id.integ", "isakmp.tf.id.dh", "isakmp.tf.id.esn", "isakmp.ike2.attr.key_length",
	"isakmp.key_exchange.dh_group", "isakmp.nonce", "isakmp.notify.msgtype", "isakmp.notify.protoid", "isakmp.notify.data",
	"isakmp.notify.data.signature_hash_algorithms", "isakmp.notify.data.accepted_dh_group",
	"isakmp.frag.number", "isakmp.frag.total", "isakmp.id.type", "isakmp.id.data", "isakmp.auth.method", "isakmp.auth.data",
	"isakmp.auth.data.sig.asn1.len", "isakmp.auth.data.sig.asn1.data", "isakmp.auth.data.sig.value",
	"isakmp.ts.type", "isakmp.ts.protoid", "isakmp.ts.start_port", "isakmp.ts.end_port", "isakmp.ts.start_ipv4", "isakmp.ts.end_ipv4",
	"isakmp.ts.start_ipv6", "isakmp.ts.end_ipv6", "isakmp.delete.protoid", "isakmp.delete.spi", "isakmp.cfg.type",
	"isakmp.certreq.type", "isakmp.vid_bytes", "isakmp.enc.data", "_ws.expert.severity",
}

// tsharkDissect returns, per frame, field -> comma-joined occurrences.
func tsharkDissect(t *testing.T, pcap string) []map[string]string {
	args := []string{"-r", pcap, "-o", "isakmp.ikev2_decrypt:FALSE", "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		// Older/newer tshark may lack a preference; retry without it.
		args = append(args[:2], args[4:]...)
		out, err = exec.Command("tshark", args...).Output()
	}
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	var frames []map[string]string
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		vals := strings.Split(line, "|")
		m := map[string]string{}
		for i, f := range tsharkFields {
			if i < len(vals) {
				// tshark shows an empty FT_BYTES field (e.g. the empty
				// data of FRAG_SUP) as <MISSING>; drop those.
				var keep []string
				for _, v := range strings.Split(vals[i], ",") {
					if v != "<MISSING>" && v != "" {
						keep = append(keep, v)
					}
				}
				m[f] = strings.Join(keep, ",")
			}
		}
		frames = append(frames, m)
	}
	return frames
}

// expect derives from our structs (not from our encoder's output) what
// tshark must show.
func expect(cm capMsg) map[string]string {
	m := cm.m
	e := map[string][]string{}
	add := func(f string, v any) { e[f] = append(e[f], fmt.Sprint(v)) }
	h := func(b []byte) string { return hex.EncodeToString(b) }
	be64 := func(v uint64) string { return h(binary.BigEndian.AppendUint64(nil, v)) }
	add("udp.dstport", cm.dst.Port())
	add("isakmp.ispi", be64(m.SPIi))
	add("isakmp.rspi", be64(m.SPIr))
	add("isakmp.exchangetype", int(m.Exchange))
	add("isakmp.flags", fmt.Sprintf("0x%02x", uint8(m.Flags)))
	add("isakmp.messageid", fmt.Sprintf("0x%08x", m.MessageID))
	add("isakmp.length", len(m.Marshal()))
	for _, p := range m.Payloads {
		add("isakmp.typepayload", int(p.Type()))
		add("isakmp.payloadlength", 4+len(p.AppendBody(nil)))
		add("isakmp.criticalpayload", 0)
		switch p := p.(type) {
		case *wire.SA:
			// tshark lists proposal (2) and transform (3) substructures
			// among the payloads, with their lengths.
			for _, pr := range p.Proposals {
				plen := 8 + len(pr.SPI)
				for _, tr := range pr.Transforms {
					plen += 8 + 4*len(tr.Attributes)
				}
				add("isakmp.typepayload", 2)
				add("isakmp.payloadlength", plen)
				for _, tr := range pr.Transforms {
					add("isakmp.typepayload", 3)
					add("isakmp.payloadlength", 8+4*len(tr.Attributes))
				}
				add("isakmp.prop.number", pr.Number)
				add("isakmp.prop.protoid", int(pr.Protocol))
				add("isakmp.prop.transforms", len(pr.Transforms))
				if len(pr.SPI) > 0 {
					add("isakmp.spi", h(pr.SPI))
				}
				for _, tr := range pr.Transforms {
					f := map[wire.TransformType]string{wire.TransformENCR: "encr", wire.TransformPRF: "prf", wire.TransformINTEG: "integ", wire.TransformDH: "dh", wire.TransformESN: "esn"}[tr.Type]
					add("isakmp.tf.id."+f, tr.ID)
					if k, ok := tr.KeyLength(); ok {
						add("isakmp.ike2.attr.key_length", k)
					}
				}
			}
		case *wire.KE:
			add("isakmp.key_exchange.dh_group", int(p.Group))
		case *wire.Nonce:
			add("isakmp.nonce", h(p.Data))
		case *wire.Notify:
			add("isakmp.notify.msgtype", int(p.NotifyType))
			add("isakmp.notify.protoid", int(p.Protocol))
			if len(p.SPI) > 0 {
				add("isakmp.spi", h(p.SPI))
			}
			switch p.NotifyType {
			case wire.SIGNATURE_HASH_ALGORITHMS:
				add("isakmp.notify.data", h(p.Data))
				algs, _ := p.HashAlgorithms()
				for _, a := range algs {
					add("isakmp.notify.data.signature_hash_algorithms", int(a))
				}
			case wire.INVALID_KE_PAYLOAD:
				g, _ := p.Group()
				add("isakmp.notify.data.accepted_dh_group", int(g))
			default:
				if len(p.Data) > 0 {
					add("isakmp.notify.data", h(p.Data))
				}
			}
		case *wire.EncryptedFragment:
			add("isakmp.frag.number", p.Number)
			add("isakmp.frag.total", p.Total)
		case *wire.ID:
			add("isakmp.id.type", int(p.IDType))
		case *wire.AUTH:
			add("isakmp.auth.method", int(p.Method))
			add("isakmp.auth.data", h(p.Data))
			if alg, sig, ok := p.Signature(); ok {
				add("isakmp.auth.data.sig.asn1.len", len(alg))
				add("isakmp.auth.data.sig.asn1.data", h(alg))
				add("isakmp.auth.data.sig.value", h(sig))
			}
		case *wire.TS:
			for _, s := range p.Selectors {
				add("isakmp.ts.type", int(s.TSType))
				add("isakmp.ts.protoid", s.Protocol)
				add("isakmp.ts.start_port", s.StartPort)
				add("isakmp.ts.end_port", s.EndPort)
				if s.TSType == wire.TS_IPV4_ADDR_RANGE {
					add("isakmp.ts.start_ipv4", s.Start)
					add("isakmp.ts.end_ipv4", s.End)
				} else {
					add("isakmp.ts.start_ipv6", s.Start)
					add("isakmp.ts.end_ipv6", s.End)
				}
			}
		case *wire.Delete:
			add("isakmp.delete.protoid", int(p.Protocol))
			for _, s := range p.SPIs {
				add("isakmp.delete.spi", h(s))
			}
		case *wire.Config:
			add("isakmp.cfg.type", int(p.CFGType))
		case *wire.CERTREQ:
			add("isakmp.certreq.type", int(p.Encoding))
		case *wire.VendorID:
			add("isakmp.vid_bytes", h(p.Data))
		}
	}
	out := map[string]string{}
	for k, v := range e {
		out[k] = strings.Join(v, ",")
	}
	return out
}

func TestTsharkDissection(t *testing.T) {
	needTshark(t)
	msgs := captureSet(t)
	pcap := filepath.Join(t.TempDir(), "ike.pcap")
	writePcap(t, pcap, msgs)
	if os.Getenv("IKE_WIRE_KEEP_PCAP") != "" {
		data, _ := os.ReadFile(pcap)
		_ = os.WriteFile(os.Getenv("IKE_WIRE_KEEP_PCAP"), data, 0o644)
	}
	frames := tsharkDissect(t, pcap)
	if len(frames) != len(msgs) {
		t.Fatalf("tshark shows %d frames, wrote %d", len(frames), len(msgs))
	}
	for i, cm := range msgs {
		t.Run(cm.name, func(t *testing.T) {
			got := frames[i]
			if sev := got["_ws.expert.severity"]; strings.Contains(sev, strconv.Itoa(0x00800000)) { // PI_ERROR
				t.Errorf("tshark reports an error (malformed?) severity %s", sev)
			}
			for f, want := range expect(cm) {
				if g := got[f]; g != want {
					t.Errorf("%s = %q, want %q", f, g, want)
				}
			}
			// Fields we did not expect must be absent (e.g. a payload
			// tshark found that we did not write).
			for _, f := range []string{"isakmp.frag.number", "isakmp.id.type", "isakmp.ts.type", "isakmp.delete.spi", "isakmp.key_exchange.dh_group"} {
				if _, ok := expect(cm)[f]; !ok && got[f] != "" {
					t.Errorf("%s = %q, want none", f, got[f])
				}
			}
			// And our parser reads back what tshark saw.
			b := cm.m.Marshal()
			m := roundTrip(t, b)
			if m.String() != cm.m.String() {
				t.Errorf("String() after round trip = %q, want %q", m, cm.m)
			}
			t.Logf("%s: %s", cm.name, m)
		})
	}
}
