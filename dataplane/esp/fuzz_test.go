package esp

import (
	"bytes"
	"testing"

	"github.com/tunterm/tunterm/dataplane/stats"
)

// fuzzConfigs are the SAs FuzzOpen feeds: AES-GCM without ESN,
// AES-CTR + HMAC-SHA-512 with ESN and AES-CBC + HMAC-SHA-384 without,
// fixed keys.
func fuzzConfigs() []Config {
	return []Config{
		testConfig(suite{AESGCM128, IntegNone}, false, 11),
		testConfig(suite{AESCTR256, HMACSHA512_256}, true, 12),
		testConfig(suite{AESCBC128, HMACSHA384_192}, false, 13),
	}
}

// FuzzOpen feeds arbitrary bytes to Open: it must not panic, a payload must
// lie inside pkt, and r == OK exactly when the payload is non-nil.
func FuzzOpen(f *testing.F) {
	for _, cfg := range fuzzConfigs() {
		tx := mustSA(f, cfg)
		for _, n := range []int{0, 1, 40, 200} {
			pkt := sealCopy(f, tx, pattern(n, 9), 4)
			f.Add(pkt)
			f.Add(pkt[:len(pkt)-1])
			bad := bytes.Clone(pkt)
			bad[len(bad)/2] ^= 0x80
			f.Add(bad)
		}
	}
	f.Add([]byte{})
	f.Add(make([]byte, 8))
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, cfg := range fuzzConfigs() {
			sa := mustSA(t, cfg)
			pkt := bytes.Clone(data)
			payload, _, r := sa.Open(pkt)
			if (r == stats.OK) != (payload != nil) {
				t.Fatalf("Open(%x) = %x, %v: OK must come with a payload and only then", data, payload, r)
			}
			if payload != nil {
				off := cap(pkt) - cap(payload)
				if off < 0 || off+len(payload) > len(pkt) {
					t.Fatalf("Open(%x): payload [%d:%d] outside pkt[:%d]", data, off, off+len(payload), len(pkt))
				}
			}
			switch r {
			case stats.OK, stats.Malformed, stats.Replay, stats.Integrity, stats.BadPadding:
			default:
				t.Fatalf("Open(%x) = %v: unexpected reason", data, r)
			}
		}
	})
}
