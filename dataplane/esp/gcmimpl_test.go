package esp

import (
	"bytes"
	"testing"

	"github.com/tunterm/tunterm/dataplane/esp/internal/vaesgcm"
	"github.com/tunterm/tunterm/dataplane/stats"
)

// gcmImpls lists the AES-GCM implementations this machine can run.
func gcmImpls() []string {
	if vaesgcm.Supported() {
		return []string{implVAES, implStdlib}
	}
	return []string{implStdlib}
}

// useGCM makes the SAs t creates use impl, until t ends. Tests that call
// it must not run in parallel.
func useGCM(t *testing.T, impl string) {
	old := gcmImpl
	gcmImpl = impl
	t.Cleanup(func() { gcmImpl = old })
}

func TestChooseGCM(t *testing.T) {
	for _, tc := range []struct {
		env        string
		vaes, fips bool
		want       string
	}{
		{"", true, false, implVAES},
		{"auto", true, false, implVAES},
		{"stdlib", true, false, implStdlib},
		{"vaes", true, false, implStdlib}, // unknown values fall back, with the reason
		{"", false, false, implStdlib},
		{"", true, true, implStdlib},
		{"auto", false, false, implStdlib},
	} {
		got, why := chooseGCM(tc.env, tc.vaes, tc.fips)
		if got != tc.want || why == "" {
			t.Errorf("chooseGCM(%q, vaes %v, fips %v) = %q (%q), want %q", tc.env, tc.vaes, tc.fips, got, why, tc.want)
		}
	}
}

// TestGCMImplementationsAgree: an SA of either implementation opens what
// the other sealed, for payload lengths around every block boundary up to
// 1,500 bytes and with ESN, and both seal the same bytes.
func TestGCMImplementationsAgree(t *testing.T) {
	if !vaesgcm.Supported() {
		t.Skip("SKIP: no VAES/VPCLMULQDQ/AVX2 on this CPU: only crypto/cipher's AES-GCM runs here")
	}
	for _, tc := range []struct {
		s   suite
		esn bool
	}{{suite{c: AESGCM128}, false}, {suite{c: AESGCM256}, false}, {suite{c: AESGCM256}, true}} {
		s := tc.s
		var txs, rxs [2]*SA
		for i, impl := range []string{implVAES, implStdlib} {
			t.Run(impl, func(t *testing.T) { useGCM(t, impl); txs[i], rxs[i] = pair(t, s, tc.esn) })
		}
		if _, ok := txs[0].aead.(*vaesgcm.GCM); !ok {
			t.Fatalf("with %s chosen the SA uses %T", implVAES, txs[0].aead)
		}
		if _, ok := txs[1].aead.(*vaesgcm.GCM); ok {
			t.Fatalf("with %s chosen the SA uses vaesgcm", implStdlib)
		}
		for n := 0; n <= 1500; n += 7 {
			p := pattern(n, byte(n))
			a, b := sealCopy(t, txs[0], p, 4), sealCopy(t, txs[1], p, 4)
			if !bytes.Equal(a, b) {
				t.Fatalf("%v esn %v, %d bytes: vaes-avx2 sealed %x, crypto/cipher %x", s, tc.esn, n, a, b)
			}
			for i, rx := range []*SA{rxs[1], rxs[0]} { // the other implementation
				got, next, r := rx.Open(bytes.Clone(a))
				if r != stats.OK || next != 4 || !bytes.Equal(got, p) {
					t.Fatalf("%v esn %v, %d bytes, opener %d: %v, %d, %x", s, tc.esn, n, i, r, next, got)
				}
			}
		}
	}
}
