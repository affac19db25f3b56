package esp

import (
	"bytes"
	"testing"
	"unsafe"
)

// TestPrefetchFindsTheCryptoObject: for every suite Prefetch reads the
// crypto object Open uses, at least its AES key schedule (240 bytes for
// AES-256) and, for GCM and CTR (which runs on GCM), the 256-byte GHASH
// table (vaesgcm's is 512 bytes). If a Go release stops returning a pointer from cipher.NewGCM or
// aes.NewCipher, hotSize becomes 0 and Prefetch silently stops helping;
// this test says so.
func TestPrefetchFindsTheCryptoObject(t *testing.T) {
	for _, s := range allSuites() {
		t.Run(s.String(), func(t *testing.T) {
			sa, _ := pair(t, s, false)
			want := uintptr(240 + 256) // AES-256 key schedule + GHASH table
			switch s.c {
			case AESCBC128, AESCBC256:
				want = 240
			case ChaCha20Poly1305:
				want = 32 // the key
			}
			if sa.hot == nil || sa.hotSize < want {
				t.Errorf("hot object %p of %d bytes, want at least %d bytes", sa.hot, sa.hotSize, want)
			}
			// GCM and CTR skip the AES-256 decryption schedule (60 words)
			// of crypto/aes; vaesgcm has none.
			wantCold := uintptr(240)
			switch s.c {
			case AESCBC128, AESCBC256, ChaCha20Poly1305:
				wantCold = 0
			case AESGCM128, AESGCM256:
				if gcmImpl == implVAES {
					want, wantCold = 240+512, 0 // round keys, H^16..H^1 and their halves
				}
			}
			if got := sa.coldEnd - sa.coldOff; got != wantCold || sa.coldEnd > sa.hotSize {
				t.Errorf("skipped range [%d, %d) of a %d-byte object: %d bytes, want %d", sa.coldOff, sa.coldEnd, sa.hotSize, got, wantCold)
			}
		})
	}
}

// TestPrefetchSkipsOnlyUnusedBytes: the part of the crypto object Prefetch
// skips is really never read by Seal and Open. Overwritten with garbage in
// one pair of SAs, Seal still gives the bytes of an untouched pair, and
// Open still recovers every payload and rejects a forgery.
func TestPrefetchSkipsOnlyUnusedBytes(t *testing.T) {
	for _, s := range allSuites() {
		tx, rx := pair(t, s, true)
		if tx.coldEnd == 0 {
			continue
		}
		refTx, refRx := pair(t, s, true)
		for _, sa := range []*SA{tx, rx} {
			for o := sa.coldOff; o < sa.coldEnd; o++ {
				*(*byte)(unsafe.Add(sa.hot, o)) = byte(o) ^ 0xa5
			}
		}
		for i := range 40 {
			p := pattern(i*29, byte(i))
			got, want := sealCopy(t, tx, p, 4), sealCopy(t, refTx, p, 4)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s packet %d: Seal with the skipped bytes overwritten gives %x, untouched %x", s, i, got, want)
			}
			if i == 39 {
				got[len(got)-1] ^= 1 // a forgery
			}
			pa, _, ra := rx.Open(bytes.Clone(got))
			pb, _, rb := refRx.Open(got)
			if ra != rb || !bytes.Equal(pa, pb) || (i < 39 && !bytes.Equal(pa, p)) {
				t.Fatalf("%s packet %d: Open with the skipped bytes overwritten (%v, %x), untouched (%v, %x)", s, i, ra, pa, rb, pb)
			}
		}
	}
}

// TestPrefetchChangesNothing: Prefetch before every Open, including of
// replays, short packets and forgeries, leaves every result and counter as
// Open alone gives them.
func TestPrefetchChangesNothing(t *testing.T) {
	var sink uint64
	for _, s := range allSuites() {
		for _, esn := range []bool{false, true} {
			tx, rx := pair(t, s, esn)
			_, ref := pair(t, s, esn)
			var pkts [][]byte
			for i := range 20 {
				pkts = append(pkts, sealCopy(t, tx, pattern(i*37, byte(i)), 4))
			}
			forged := sealCopy(t, tx, pattern(64, 9), 4) // not yet received: fails integrity
			forged[len(forged)-1] ^= 1
			pkts = append(pkts, pkts[5], forged, pkts[1][:7], pkts[2][:BaseHeaderLen], nil)
			for i, p := range pkts {
				a, b := bytes.Clone(p), bytes.Clone(p)
				sink += rx.Prefetch() + rx.PrefetchWindow(a)
				pa, na, ra := rx.Open(a)
				pb, nb, rb := ref.Open(b)
				if ra != rb || na != nb || !bytes.Equal(pa, pb) {
					t.Fatalf("%s esn=%v packet %d: with Prefetch (%v, %d, %x), without (%v, %d, %x)", s, esn, i, ra, na, pa, rb, nb, pb)
				}
			}
			if rx.St.Packets.Load() != ref.St.Packets.Load() || rx.St.ReplayErrors.Load() != ref.St.ReplayErrors.Load() ||
				rx.St.IntegrityErrors.Load() != ref.St.IntegrityErrors.Load() || rx.St.MalformedErrors.Load() != ref.St.MalformedErrors.Load() {
				t.Errorf("%s esn=%v: counters differ with Prefetch", s, esn)
			}
			if rx.St.Packets.Load() != 20 || rx.St.ReplayErrors.Load() != 1 || rx.St.IntegrityErrors.Load() != 1 {
				t.Errorf("%s esn=%v: %d packets, %d replays, %d integrity errors; want 20, 1, 1", s, esn,
					rx.St.Packets.Load(), rx.St.ReplayErrors.Load(), rx.St.IntegrityErrors.Load())
			}
		}
	}
}

// TestStateHotFields: every State field that Open and Seal read for every
// packet of an AEAD SA lies in the first stateHotLen bytes, which
// Prefetch asks for, and those are two cache lines at most. Seal once
// checked the HMAC and the test IV override on cold lines of the State:
// two more misses per packet with thousands of SAs.
func TestStateHotFields(t *testing.T) {
	var st State
	for _, f := range []struct {
		name     string
		off, end uintptr
	}{
		{"Packets", unsafe.Offsetof(st.Packets), unsafe.Offsetof(st.Packets) + unsafe.Sizeof(st.Packets)},
		{"Bytes", unsafe.Offsetof(st.Bytes), unsafe.Offsetof(st.Bytes) + unsafe.Sizeof(st.Bytes)},
		{"Expired", unsafe.Offsetof(st.Expired), unsafe.Offsetof(st.Expired) + unsafe.Sizeof(st.Expired)},
		{"Overflow", unsafe.Offsetof(st.Overflow), unsafe.Offsetof(st.Overflow) + unsafe.Sizeof(st.Overflow)},
		{"noReplay", unsafe.Offsetof(st.noReplay), unsafe.Offsetof(st.noReplay) + unsafe.Sizeof(st.noReplay)},
		{"testIV", unsafe.Offsetof(st.testIV), unsafe.Offsetof(st.testIV) + unsafe.Sizeof(st.testIV)},
		{"win", unsafe.Offsetof(st.win), unsafe.Offsetof(st.win) + unsafe.Sizeof(st.win)},
		{"seqOut", unsafe.Offsetof(st.seqOut), unsafe.Offsetof(st.seqOut) + unsafe.Sizeof(st.seqOut)},
		{"nonce", unsafe.Offsetof(st.nonce), unsafe.Offsetof(st.nonce) + unsafe.Sizeof(st.nonce)},
		{"aad", unsafe.Offsetof(st.aad), unsafe.Offsetof(st.aad) + unsafe.Sizeof(st.aad)},
	} {
		if f.end > stateHotLen {
			t.Errorf("State.%s at [%d, %d) lies past the hot part (%d bytes)", f.name, f.off, f.end, stateHotLen)
		}
	}
	if stateHotLen > 128 {
		t.Errorf("the hot part of a State is %d bytes, more than two cache lines", stateHotLen)
	}
}
