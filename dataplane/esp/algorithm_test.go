package esp

import (
	"errors"
	"strings"
	"testing"
)

func TestCiphers(t *testing.T) {
	tests := []struct {
		name   string
		c      Cipher
		keyLen int
		aead   bool
	}{
		{"aes-gcm-128", AESGCM128, 20, true},
		{"aes-gcm-256", AESGCM256, 36, true},
		{"aes-ctr-128", AESCTR128, 20, false},
		{"aes-ctr-256", AESCTR256, 36, false},
		{"aes-cbc-128", AESCBC128, 16, false},
		{"aes-cbc-256", AESCBC256, 32, false},
		{"chacha20-poly1305", ChaCha20Poly1305, 36, true},
	}
	for _, tc := range tests {
		c, err := ParseCipher(tc.name)
		if err != nil || c != tc.c {
			t.Errorf("ParseCipher(%q) = %v, %v, want %v", tc.name, c, err, tc.c)
		}
		if c.String() != tc.name || c.KeyLen() != tc.keyLen || c.AEAD() != tc.aead {
			t.Errorf("%v: String, KeyLen, AEAD = %q, %d, %v, want %q, %d, %v",
				tc.c, c.String(), c.KeyLen(), c.AEAD(), tc.name, tc.keyLen, tc.aead)
		}
	}
	for _, bad := range []string{"", "aes-gcm", "AES-GCM-128", "aes-gcm-192", "null"} {
		if _, err := ParseCipher(bad); !errors.Is(err, ErrUnknownCipher) {
			t.Errorf("ParseCipher(%q) error = %v, want %v", bad, err, ErrUnknownCipher)
		}
	}
	if s := Cipher(0).String(); s != "cipher(0)" {
		t.Errorf("Cipher(0).String() = %q", s)
	}
}

func TestIntegs(t *testing.T) {
	tests := []struct {
		name           string
		i              Integ
		keyLen, icvLen int
	}{
		{"", IntegNone, 0, 0},
		{"none", IntegNone, 0, 0},
		{"hmac-sha1-96", HMACSHA1_96, 20, 12},
		{"hmac-sha2-256-128", HMACSHA256_128, 32, 16},
		{"hmac-sha2-384-192", HMACSHA384_192, 48, 24},
		{"hmac-sha2-512-256", HMACSHA512_256, 64, 32},
	}
	for _, tc := range tests {
		i, err := ParseInteg(tc.name)
		if err != nil || i != tc.i || i.KeyLen() != tc.keyLen || i.ICVLen() != tc.icvLen {
			t.Errorf("ParseInteg(%q) = %v (%d, %d), %v, want %v (%d, %d)",
				tc.name, i, i.KeyLen(), i.ICVLen(), err, tc.i, tc.keyLen, tc.icvLen)
		}
		if back, err := ParseInteg(i.String()); err != nil || back != i {
			t.Errorf("ParseInteg(%q.String()) = %v, %v", tc.name, back, err)
		}
	}
	for _, bad := range []string{"hmac-sha256", "sha1", "sha384", "hmac-sha2-384", "hmac-sha2-384-256"} {
		if _, err := ParseInteg(bad); !errors.Is(err, ErrUnknownInteg) {
			t.Errorf("ParseInteg(%q) error = %v, want %v", bad, err, ErrUnknownInteg)
		}
	}
}

func TestNewSAValidation(t *testing.T) {
	good := func() Config {
		return Config{SPI: 0x100, Cipher: AESCBC256, EncKey: make([]byte, 32),
			Integ: HMACSHA256_128, IntegKey: make([]byte, 32)}
	}
	tests := []struct {
		name   string
		mod    func(*Config)
		errHas []string // substrings of the error; nil = must succeed
	}{
		{"ok", func(c *Config) {}, nil},
		{"spi 0", func(c *Config) { c.SPI = 0 }, []string{"Config.SPI"}},
		{"no cipher", func(c *Config) { c.Cipher = 0 }, []string{"Config.Cipher"}},
		{"cipher out of range", func(c *Config) { c.Cipher = 99 }, []string{"Config.Cipher"}},
		{"short key", func(c *Config) { c.EncKey = make([]byte, 31) }, []string{"Config.EncKey", "aes-cbc-256", "32"}},
		{"gcm key without salt", func(c *Config) {
			c.Cipher, c.EncKey, c.Integ, c.IntegKey = AESGCM256, make([]byte, 32), IntegNone, nil
		}, []string{"Config.EncKey", "aes-gcm-256", "36"}},
		{"gcm with integ", func(c *Config) { c.Cipher, c.EncKey = AESGCM128, make([]byte, 20) },
			[]string{"Config.Integ", "AEAD"}},
		{"cbc without integ", func(c *Config) { c.Integ, c.IntegKey = IntegNone, nil }, []string{"Config.Integ"}},
		{"ctr without integ", func(c *Config) { c.Cipher, c.EncKey, c.Integ, c.IntegKey = AESCTR128, make([]byte, 20), IntegNone, nil },
			[]string{"Config.Integ"}},
		{"integ key short", func(c *Config) { c.IntegKey = make([]byte, 20) }, []string{"Config.IntegKey", "32"}},
		{"bad integ", func(c *Config) { c.Integ = 9 }, []string{"Config.Integ"}},
		{"window too small", func(c *Config) { c.ReplayWindow = 32 }, []string{"Config.ReplayWindow"}},
		{"window too big", func(c *Config) { c.ReplayWindow = 4097 }, []string{"Config.ReplayWindow"}},
		{"window negative", func(c *Config) { c.ReplayWindow = -1 }, []string{"Config.ReplayWindow"}},
		{"window max", func(c *Config) { c.ReplayWindow = 4096 }, nil},
		{"chacha", func(c *Config) {
			c.Cipher, c.EncKey, c.Integ, c.IntegKey = ChaCha20Poly1305, make([]byte, 36), IntegNone, nil
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.mod(&c)
			sa, err := NewSA(c)
			if tc.errHas == nil {
				if err != nil || sa == nil {
					t.Fatalf("NewSA = %v, %v, want an SA", sa, err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("NewSA error = %v, want %v", err, ErrInvalidConfig)
			}
			for _, s := range tc.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("NewSA error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestReplayWindowRounding(t *testing.T) {
	for _, tc := range []struct{ in, size, ring int }{
		{0, 64, 2}, {64, 64, 2}, {65, 128, 4}, {1000, 1024, 32}, {4096, 4096, 128},
	} {
		c := Config{SPI: 1, Cipher: AESGCM128, EncKey: make([]byte, 20), ReplayWindow: tc.in}
		sa := mustSA(t, c)
		if w := sa.St.win; w.size != uint64(tc.size) || len(w.ring) != tc.ring {
			t.Errorf("ReplayWindow %d: size %d, ring %d blocks, want %d, %d", tc.in, w.size, len(w.ring), tc.size, tc.ring)
		}
	}
}

// TestNewSACopiesKeys: wiping the caller's key slices after NewSA does not
// change the SA.
func TestNewSACopiesKeys(t *testing.T) {
	for _, s := range allSuites() {
		cfg := testConfig(s, false, 5)
		sa := mustSA(t, cfg)
		clear(cfg.EncKey)
		clear(cfg.IntegKey)
		rx := mustSA(t, testConfig(s, false, 5))
		if _, _, r := rx.Open(sealCopy(t, sa, []byte("keys"), 4)); r != 0 {
			t.Errorf("%s: Open after wiping the sender's Config keys = %v, want ok", s, r)
		}
	}
}

// TestCBCIVs: CBC IVs differ per packet and per SA and are not the plain
// sequence number.
func TestCBCIVs(t *testing.T) {
	cfg := testConfig(suite{AESCBC128, HMACSHA1_96}, false, 1)
	a, b := mustSA(t, cfg), mustSA(t, cfg)
	seen := map[string]bool{}
	for range 100 {
		for _, sa := range []*SA{a, b} {
			iv := string(sealCopy(t, sa, []byte("iv"), 4)[8:24])
			if seen[iv] {
				t.Fatalf("IV %x repeated", iv)
			}
			seen[iv] = true
		}
	}
}
