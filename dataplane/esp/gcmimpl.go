package esp

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"os"

	"github.com/tunterm/tunterm/dataplane/esp/internal/vaesgcm"
)

// Which AES-GCM implementation the SAs use.
//
// On x86-64 processors with VAES and VPCLMULQDQ (AMD Zen 3 and later, Intel
// Ice Lake and later) SAs use vaesgcm, which runs two AES blocks per
// instruction and is about 1.7 times as fast as crypto/cipher on 1400-byte
// packets (docs/performance.md). crypto/cipher is used elsewhere, in FIPS
// 140 mode (GODEBUG=fips140=on, whose module vaesgcm is not part of), and
// when the environment says TUNTERM_AES_GCM=stdlib.

// gcmEnv is the environment variable that, set to "stdlib", makes every SA
// use crypto/cipher's AES-GCM.
const gcmEnv = "TUNTERM_AES_GCM"

// gcmImpl is chosen once, when the program starts.
var gcmImpl, gcmWhy = chooseGCM(os.Getenv(gcmEnv), vaesgcm.Supported(), fips140.Enabled())

const (
	implVAES   = "vaes-avx2"
	implStdlib = "crypto/cipher"
)

func chooseGCM(env string, vaes, fips bool) (impl, why string) {
	switch {
	case env == "stdlib":
		return implStdlib, gcmEnv + "=stdlib"
	case env != "" && env != "auto":
		return implStdlib, gcmEnv + "=" + env + " is neither auto nor stdlib"
	case fips:
		return implStdlib, "FIPS 140 mode"
	case !vaes:
		return implStdlib, "no VAES/VPCLMULQDQ/AVX2 on this CPU"
	}
	return implVAES, "VAES, VPCLMULQDQ and AVX2 present"
}

// GCMImplementation says which AES-GCM implementation new SAs use,
// "vaes-avx2" or "crypto/cipher", and why, for the daemon's start line.
func GCMImplementation() (impl, why string) { return gcmImpl, gcmWhy }

// newGCM returns AES-GCM (12-byte nonce, 16-byte tag) for key, with the
// implementation gcmImpl names; block is the same key's AES.
func newGCM(key []byte, block cipher.Block) (cipher.AEAD, error) {
	if gcmImpl == implVAES {
		return vaesgcm.New(key)
	}
	if block == nil {
		var err error
		if block, err = aes.NewCipher(key); err != nil {
			return nil, err
		}
	}
	return cipher.NewGCM(block)
}

// NewAESGCM returns AES-GCM (12-byte nonce, 16-byte tag) for a 16- or
// 32-byte key with the implementation new SAs use: for benchmarks that
// compare the pipeline with its cipher alone, and for tools.
func NewAESGCM(key []byte) (cipher.AEAD, error) { return newGCM(key, nil) }
