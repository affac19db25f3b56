package ike

import "testing"

// TestCollisionNonces: the lowest of the four nonces, compared octet by
// octet (a nonce that is a prefix of another is the lower, not the value
// as an integer), decides which exchange's SA is redundant (RFC 7296
// §2.8.1).
func TestCollisionNonces(t *testing.T) {
	b := func(s ...byte) []byte { return s }
	for _, tc := range []struct {
		name                         string
		ourNi, peerNr, peerNi, ourNr []byte
		lost                         bool
	}{
		{"our Ni lowest", b(1), b(9), b(5), b(6), true},
		{"peer's Nr in our exchange lowest", b(9), b(1), b(5), b(6), true},
		{"peer's Ni lowest", b(5), b(6), b(1), b(9), false},
		{"our Nr in the peer's exchange lowest", b(5), b(6), b(9), b(1), false},
		{"octets, not integers", b(0x01, 0xff), b(0xff), b(0x02), b(0xff), true},
		{"a prefix is lower", b(0x10, 0x20, 0x00), b(0xff), b(0x10, 0x20), b(0xff), false},
		{"first octet decides", b(0x7f, 0xff, 0xff), b(0xff), b(0x80, 0x00), b(0xff), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := lostCollision(tc.ourNi, tc.peerNr, tc.peerNi, tc.ourNr); got != tc.lost {
				t.Errorf("lostCollision(%x, %x, %x, %x) = %v, want %v", tc.ourNi, tc.peerNr, tc.peerNi, tc.ourNr, got, tc.lost)
			}
		})
	}
}
