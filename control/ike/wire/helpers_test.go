package wire_test

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/tunterm/tunterm/control/ike/wire"
)

// unhex decodes hex written one field per line; '#' starts a comment.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		b.WriteString(strings.Join(strings.Fields(line), ""))
	}
	d, err := hex.DecodeString(b.String())
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return d
}

func rep(b byte, n int) string { return strings.Repeat(hex.EncodeToString([]byte{b}), n) }

// roundTrip checks Marshal(Parse(b)) == b and that re-parsing gives the same
// message.
func roundTrip(t testing.TB, b []byte) *wire.Message {
	t.Helper()
	m, err := wire.Parse(b)
	if err != nil {
		t.Fatalf("Parse(%x) = %v", b, err)
	}
	out := m.Marshal()
	if !bytes.Equal(out, b) {
		t.Fatalf("Marshal(Parse(b)) =\n%x\nwant\n%x", out, b)
	}
	m2, err := wire.Parse(out)
	if err != nil || !sameMessage(m, m2) {
		t.Fatalf("Parse(Marshal(m)) = %+v, %v, want %+v", m2, err, m)
	}
	return m
}

// sameMessage compares header and payloads (not the Raw bytes or ID wire
// bodies, which point at different buffers).
func sameMessage(a, b *wire.Message) bool {
	if a.Header != b.Header || len(a.Payloads) != len(b.Payloads) {
		return false
	}
	for i := range a.Payloads {
		if !reflect.DeepEqual(normalize(a.Payloads[i]), normalize(b.Payloads[i])) {
			return false
		}
	}
	return true
}

func normalize(p wire.Payload) any {
	if id, ok := p.(*wire.ID); ok {
		return [3]any{id.Responder, id.IDType, string(id.Data)}
	}
	return p
}
