package esp

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tunterm/tunterm/dataplane/stats"
)

// Test hooks: they reach into State to put an SA where an RFC vector needs
// it. They are not part of the API.

// setNextSeq makes the next Seal use sequence number seq.
func (sa *SA) setNextSeq(seq uint64) {
	sa.St.seqOut = seq - 1
	sa.St.Overflow.Store(false)
}

// setIV makes Seal send iv instead of the IV it would derive.
func (sa *SA) setIV(iv []byte) { sa.St.ivOverride, sa.St.testIV = iv, iv != nil }

// setReplayTop empties the replay window and makes top the highest sequence
// number seen (for ESN inference far from 0).
func (sa *SA) setReplayTop(top uint64) { sa.St.win.reset(top) }

// vectorsDir holds the shared RFC test vectors.
var vectorsDir = filepath.Join("..", "..", "testdata", "vectors")

// loadVectors decodes testdata/vectors/name into v.
func loadVectors(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorsDir, name))
	if err != nil {
		t.Fatalf("reading vectors: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", name, err)
	}
}

// unhex decodes hex that may contain spaces and newlines (RFC layout).
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// mustSA builds an SA or fails the test.
func mustSA(t testing.TB, c Config) *SA {
	t.Helper()
	sa, err := NewSA(c)
	if err != nil {
		t.Fatalf("NewSA(%s/%s): %v", c.Cipher, c.Integ, err)
	}
	return sa
}

// sealCopy seals payload with sa into a fresh buffer with exact head- and
// tailroom and returns the packet.
func sealCopy(t testing.TB, sa *SA, payload []byte, next uint8) []byte {
	t.Helper()
	buf := make([]byte, sa.HeaderLen()+len(payload)+sa.MaxTrailer())
	copy(buf[sa.HeaderLen():], payload)
	start, end, r := sa.Seal(buf, sa.HeaderLen(), len(payload), next)
	if r != stats.OK {
		t.Fatalf("Seal(%d bytes) = %v", len(payload), r)
	}
	return buf[start:end]
}
