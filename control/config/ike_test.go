package config

import (
	"strings"
	"testing"
	"time"

	"github.com/tunterm/tunterm/control/ike/wire"
)

const ikeBase = `
downstream: {address: 198.18.0.1/24}
tunnels: [{name: corp, vlans: [100]}]
static_peers:
  - {name: ap1, address: 198.18.0.2, tunnel: corp, l2tp: {local_session_id: 1, remote_session_id: 2}}
`

// issueIKE is the ike block of issue 4 (files replaced: they must exist).
const issueIKE = `
ike:
  listen: [198.18.0.1]
  local_id: tunterm.example
  expired_certs: reject
  psk:
    - {id: "ap1@example", secret: "s1"}
    - {id: "*", secret: "s2"}
  proposals: [aes256ctr-sha512-prfsha512-curve25519, aes256gcm16-prfsha384-ecp384]
  esp_proposals: [aes256ctr-sha512-esn, aes256gcm16]
  lifetime: {ike: 24h, child: 8h, child_bytes: 0}
  dpd: 30s
`

func TestIKEIssueExample(t *testing.T) {
	c, err := Parse([]byte(ikeBase + issueIKE))
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	k := c.IKE
	if len(k.IKEProps) != 2 || len(k.ESPProps) != 2 || k.ESPProps[0].ESN[0] != wire.ESN || k.ESPProps[1].ESN[0] != wire.NO_ESN {
		t.Errorf("proposals %+v %+v", k.IKEProps, k.ESPProps)
	}
	if k.LocalIDWire == nil || k.LocalIDWire.IDType != wire.ID_FQDN || string(k.PSKByID["ap1@example"]) != "s1" || string(k.PSKByID["*"]) != "s2" {
		t.Errorf("ids: %v %v", k.LocalIDWire, k.PSKByID)
	}
	if time.Duration(k.Lifetime.IKE) != 24*time.Hour || k.DPDInterval != 30*time.Second || k.ListenAddrs[0].String() != "198.18.0.1" {
		t.Errorf("timers/listen: %+v", k)
	}
}

// TestIKEESPSHA384: HMAC-SHA-384-192 (RFC 4868) is an ESP integrity
// algorithm, not only an IKE one.
func TestIKEESPSHA384(t *testing.T) {
	c, err := Parse([]byte(ikeBase + "ike:\n  psk: [{id: \"*\", secret: x}]\n  esp_proposals: [aes256ctr-sha384-esn, aes128-sha384]\n"))
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	for i, want := range []string{"ESP:AES_CTR_256/HMAC_SHA2_384_192/EXT_SEQ", "ESP:AES_CBC_128/HMAC_SHA2_384_192/NO_EXT_SEQ"} {
		wp := c.IKE.ESPProps[i].Wire(1, wire.ProtoESP, nil, true)
		if got := wp.String(); got != want {
			t.Errorf("esp_proposals[%d] = %s, want %s", i, got, want)
		}
	}
}

func TestIKEDefaults(t *testing.T) {
	c, err := Parse([]byte(ikeBase + "ike: {psk: [{id: \"@#0011223344ff\", secret: \"0x00112233\"}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	k := c.IKE
	if k.Proposals[0] != "aes256ctr-sha512-prfsha512-curve25519" || k.ESPProposals[0] != "aes256ctr-sha512-esn" {
		t.Errorf("default proposals %v %v", k.Proposals, k.ESPProposals)
	}
	if k.ListenAddrs[0].String() != "198.18.0.1" || k.DPDInterval != DefaultDPD || k.CookieThreshold != DefaultCookieThreshold ||
		time.Duration(k.Lifetime.Child) != DefaultChildLifetime || k.ExpiredCerts != "reject" || k.FragmentSize != 1280 {
		t.Errorf("defaults: %+v", k)
	}
	if string(k.PSKByID["@#0011223344ff"]) != "\x00\x11\x22\x33" {
		t.Errorf("hex secret %x", k.PSKByID["@#0011223344ff"])
	}
	// dpd: 0 turns DPD off.
	c, err = Parse([]byte(ikeBase + "ike: {dpd: 0s, psk: [{id: \"*\", secret: x}]}\n"))
	if err != nil || c.IKE.DPDInterval != 0 {
		t.Errorf("dpd 0: %v %v", err, c.IKE.DPDInterval)
	}
}

func TestIKEStaticPeerWithoutESP(t *testing.T) {
	// Without ike: a static peer on an IPsec tunnel needs esp:.
	if _, err := Parse([]byte(ikeBase)); err == nil || !strings.Contains(err.Error(), "configure ike:") {
		t.Errorf("no ike, no esp: %v", err)
	}
}

func TestIKEInvalid(t *testing.T) {
	psk := `  psk: [{id: "*", secret: x}]` + "\n"
	for _, tc := range []struct{ ike, want string }{
		{"  proposals: [aes256-foo-sha1]\n" + psk, `ike.proposals[0]: proposal "aes256-foo-sha1": unknown algorithm "foo"`},
		{"  proposals: [aes256gcm16-ecp256]\n" + psk, "ike.proposals[0]: proposal \"aes256gcm16-ecp256\": a PRF is required"},
		{"  esp_proposals: [aes256-sha256-prfsha256]\n" + psk, "ike.esp_proposals[0]"},
		{"  listen: [nowhere]\n" + psk, `ike.listen[0]: "nowhere" is not an IP address`},
		{"  psk: [{secret: x}]\n", "ike.psk[0].id: required"},
		{"  psk: [{id: a@b}]\n", "ike.psk[0].secret: required"},
		{"  psk: [{id: a@b, secret: x}, {id: a@b, secret: y}]\n", `ike.psk[1].id: "a@b" is listed twice`},
		{"  psk: [{id: a@b, secret: 0xzz}]\n", "ike.psk[0].secret: 0x... is not hex"},
		{"  expired_certs: maybe\n" + psk, `ike.expired_certs: "maybe" is not reject or accept`},
		{"  ca: [{file: /nonexistent.pem}]\n" + psk, "ike.ca[0]: open /nonexistent.pem"},
		{"  ca: [{expired_certs: accept}]\n" + psk, "ike.ca[0].file: required"},
		{"  cert: /x.pem\n" + psk, "ike.cert and ike.key: give both or neither"},
		{"  dpd: 10ms\n" + psk, "ike.dpd: 10ms is shorter than 1s"},
		{"  lifetime: {ike: 1s}\n" + psk, "ike.lifetime.ike: 1s is shorter than 10s"},
		{"  lifetime: {child_bytes: 1000}\n" + psk, "ike.lifetime.child_bytes: 1000 is less than 1 MiB"},
		{"  cookie_threshold: -5\n" + psk, "ike.cookie_threshold: -5"},
		{"  fragment_size: 100\n" + psk, "ike.fragment_size: 100 is outside 576..65000"},
		{"  listen: [198.18.0.1]\n", "neither psk nor ca is configured"},
		{"  dpd: soon\n" + psk, "ike.dpd: line"},
		{"  bogus: 1\n" + psk, "field bogus not found"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Parse([]byte(ikeBase + "ike:\n" + tc.ike))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
