package pipeline_test

import (
	"testing"
	"unsafe"

	"github.com/tunterm/tunterm/dataplane/pipeline"
	"github.com/tunterm/tunterm/dataplane/port"
	"github.com/tunterm/tunterm/dataplane/stats"
)

// TestEncapSpan: what the corporate -> AP path writes into a frame's chunk
// (the encapsulation in front, the frame encrypted in place, the ESP
// trailer and ICV after it) lies within the span the worker asks for
// writable ahead of use: EncapRoom bytes before the received frame and
// TrailerRoom after it. For L2TPv3 over IP with an 8-byte cookie and the
// sublayer, in ESP transport mode over IPv4, with AES-GCM and with
// AES-CTR and HMAC-SHA2-512-256 (the 32-byte ICV), every frame size.
func TestEncapSpan(t *testing.T) {
	for _, s := range suites {
		t.Run(s.name, func(t *testing.T) {
			r := newRig(t, espYAML(s))
			if up, _, drops := r.send(stats.FromDown, apFrame(t, apSA(t, s), inner(t, c1, host, 200, nil))); len(up) != 1 {
				t.Fatalf("learning c1: up %d, drops %v", len(up), drops)
			}
			var start, end, sent int
			r.down.Sink = func(b []byte, _ int64) {
				sent++
				start, end = -1, -1
				p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
				for id := range uint32(4096) {
					c := r.pool.Chunk(id)
					base := uintptr(unsafe.Pointer(unsafe.SliceData(c)))
					if p >= base && p < base+uintptr(len(c)) {
						start = int(p - base)
						end = start + len(b)
						return
					}
				}
			}
			for n := 64; n <= 1380; n += 7 { // up to what fits the tunnel MTU (1500) with its overhead
				f := inner(t, host, c1, 200, make([]byte, n-18))
				sent = 0
				if _, _, drops := r.send(stats.FromUp, f); sent != 1 {
					t.Fatalf("%d-byte frame: sent %d, drops %v", len(f), sent, drops)
				}
				if start < 0 {
					t.Fatalf("%d-byte frame: sent from outside the pool", len(f))
				}
				lo, hi := port.Headroom-pipeline.EncapRoom, port.Headroom+len(f)+pipeline.TrailerRoom
				if start < lo || end > hi {
					t.Fatalf("%d-byte frame: written [%d, %d) of its chunk, outside the span asked for [%d, %d)",
						len(f), start, end, lo, hi)
				}
			}
		})
	}
}
