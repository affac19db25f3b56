package proposal_test

import (
	"strings"
	"testing"

	"github.com/tunterm/tunterm/control/ike/proposal"
	"github.com/tunterm/tunterm/control/ike/wire"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind proposal.Kind
		want string // wire form of the parsed proposal, or the error text
	}{
		{"aes256ctr-sha512-prfsha512-curve25519", proposal.IKE, "IKE:AES_CTR_256/HMAC_SHA2_512_256/PRF_HMAC_SHA2_512/CURVE_25519"},
		{"aes256gcm16-prfsha384-ecp384", proposal.IKE, "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384"},
		{"aes128-sha256-modp2048", proposal.IKE, "IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"},
		{"aes128-aes256-sha256-sha384-ecp256-ecp521", proposal.IKE,
			"IKE:AES_CBC_128/AES_CBC_256/HMAC_SHA2_256_128/HMAC_SHA2_384_192/PRF_HMAC_SHA2_256/PRF_HMAC_SHA2_384/ECP_256/ECP_521"},
		{"aes256ctr-sha512-esn", proposal.ESP, "ESP:AES_CTR_256/HMAC_SHA2_512_256/EXT_SEQ"},
		{"aes256gcm16", proposal.ESP, "ESP:AES_GCM_16_256/NO_EXT_SEQ"},
		{"aes128gcm16-esn-noesn", proposal.ESP, "ESP:AES_GCM_16_128/EXT_SEQ/NO_EXT_SEQ"},
		{"aes256-sha1-ecp256", proposal.ESP, "ESP:AES_CBC_256/HMAC_SHA1_96/ECP_256/NO_EXT_SEQ"},
		{"aes256gcm16-ecp384", proposal.IKE, "error: a PRF is required"},
		{"aes256-sha1-modp2048", proposal.IKE, "error: a PRF is required"},
		{"aes256ctr-sha512-prfsha512", proposal.IKE, "error: a DH group is required"},
		{"aes256gcm16-sha256", proposal.ESP, "error: takes no integrity"},
		{"aes256ctr", proposal.ESP, "error: needs an integrity algorithm"},
		{"aes256gcm16-aes256", proposal.ESP, "error: cannot be mixed"},
		{"aes256-sha384", proposal.ESP, "ESP:AES_CBC_256/HMAC_SHA2_384_192/NO_EXT_SEQ"},
		{"aes256ctr-sha384-esn", proposal.ESP, "ESP:AES_CTR_256/HMAC_SHA2_384_192/EXT_SEQ"},
		{"aes128-sha2_384", proposal.ESP, "ESP:AES_CBC_128/HMAC_SHA2_384_192/NO_EXT_SEQ"},
		{"aes256-sha256-prfsha256", proposal.ESP, "error: ESP proposals do not take"},
		{"aes256-sha256-esn-curve25519-prfsha256", proposal.IKE, "error: for ESP proposals only"},
		{"3des-sha1", proposal.ESP, `error: unknown algorithm "3des"`},
		{"", proposal.ESP, "error: empty"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			p, err := proposal.Parse(tc.in, tc.kind)
			var got string
			if err != nil {
				got = "error: " + err.Error()
				if !strings.HasPrefix(tc.want, "error: ") || !strings.Contains(got, strings.TrimPrefix(tc.want, "error: ")) {
					t.Fatalf("Parse(%q) = %v, want %s", tc.in, err, tc.want)
				}
				return
			}
			proto := wire.ProtoIKE
			if tc.kind == proposal.ESP {
				proto = wire.ProtoESP
			}
			wp := p.Wire(1, proto, nil, true)
			if got = wp.String(); got != tc.want {
				t.Fatalf("Parse(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func wp(s string, k proposal.Kind, num uint8, withDH bool) wire.Proposal {
	p := proposal.MustParse(s, k)
	proto := wire.ProtoIKE
	if k == proposal.ESP {
		proto = wire.ProtoESP
	}
	return p.Wire(num, proto, []byte{1, 2, 3, 4}, withDH)
}

func TestSelect(t *testing.T) {
	ike := func(ss ...string) []proposal.Proposal {
		var out []proposal.Proposal
		for _, s := range ss {
			out = append(out, proposal.MustParse(s, proposal.IKE))
		}
		return out
	}
	esp := func(ss ...string) []proposal.Proposal {
		var out []proposal.Proposal
		for _, s := range ss {
			out = append(out, proposal.MustParse(s, proposal.ESP))
		}
		return out
	}
	for _, tc := range []struct {
		name string
		ours []proposal.Proposal
		peer []wire.Proposal
		mode proposal.Mode
		want string // chosen, or "" for none
		num  uint8
	}{
		{"seed", ike("aes256ctr-sha512-prfsha512-curve25519"), []wire.Proposal{wp("aes256ctr-sha512-prfsha512-curve25519", proposal.IKE, 1, true)},
			proposal.WithDH, "IKE:AES_CTR_256/HMAC_SHA2_512_256/PRF_HMAC_SHA2_512/CURVE_25519", 1},
		{"our order wins", ike("aes256gcm16-prfsha384-ecp384", "aes256ctr-sha512-prfsha512-curve25519"),
			[]wire.Proposal{wp("aes256ctr-sha512-prfsha512-curve25519", proposal.IKE, 1, true), wp("aes256gcm16-prfsha384-ecp384", proposal.IKE, 2, true)},
			proposal.WithDH, "IKE:AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384", 2},
		{"our group preference", ike("aes256-sha256-ecp256-curve25519"), []wire.Proposal{wp("aes256-sha256-curve25519-ecp256", proposal.IKE, 1, true)},
			proposal.WithDH, "IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256", 1},
		{"key length matters", ike("aes256-sha256-ecp256"), []wire.Proposal{wp("aes128-sha256-ecp256", proposal.IKE, 1, true)}, proposal.WithDH, "", 0},
		{"no common group", ike("aes256-sha256-ecp256"), []wire.Proposal{wp("aes256-sha256-modp2048", proposal.IKE, 1, true)}, proposal.WithDH, "", 0},
		{"esn fallback", esp("aes256ctr-sha512-esn", "aes256ctr-sha512"), []wire.Proposal{wp("aes256ctr-sha512", proposal.ESP, 1, false)},
			proposal.NoDH, "ESP:AES_CTR_256/HMAC_SHA2_512_256/NO_EXT_SEQ", 1},
		{"esn required", esp("aes256ctr-sha512-esn"), []wire.Proposal{wp("aes256ctr-sha512", proposal.ESP, 1, false)}, proposal.NoDH, "", 0},
		{"dh ignored in IKE_AUTH", esp("aes256gcm16-ecp256"), []wire.Proposal{wp("aes256gcm16", proposal.ESP, 1, false)},
			proposal.NoDH, "ESP:AES_GCM_16_256/NO_EXT_SEQ", 1},
		{"pfs in CREATE_CHILD_SA", esp("aes256gcm16-ecp256"), []wire.Proposal{wp("aes256gcm16-ecp256", proposal.ESP, 1, true)},
			proposal.WithDH, "ESP:AES_GCM_16_256/ECP_256/NO_EXT_SEQ", 1},
		{"pfs required", esp("aes256gcm16-ecp256"), []wire.Proposal{wp("aes256gcm16", proposal.ESP, 1, true)}, proposal.WithDH, "", 0},
		{"no pfs wanted", esp("aes256gcm16"), []wire.Proposal{wp("aes256gcm16-ecp256", proposal.ESP, 1, true)}, proposal.WithDH, "", 0},
		{"wrong protocol", esp("aes256gcm16"), []wire.Proposal{wp("aes256gcm16-prfsha256-ecp256", proposal.IKE, 1, true)}, proposal.NoDH, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ok := proposal.Select(tc.ours, tc.peer, tc.mode)
			if tc.want == "" {
				if ok {
					t.Fatalf("Select = %s, want none", c)
				}
				return
			}
			if !ok || c.String() != tc.want || c.Number != tc.num {
				t.Fatalf("Select = %s #%d, %v; want %s #%d", c, c.Number, ok, tc.want, tc.num)
			}
		})
	}
}
