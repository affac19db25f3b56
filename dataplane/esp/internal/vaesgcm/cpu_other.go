//go:build !amd64 || purego

package vaesgcm

// Elsewhere New returns ErrUnsupported and callers use crypto/cipher.
const supported = false

func subWord(uint32) uint32 { panic("vaesgcm: unsupported") }
func ctrXOR(*[15][16]byte, int, *[16]byte, *byte, *byte, int, *[32]byte) {
	panic("vaesgcm: unsupported")
}
func ghash(*table, *[16]byte, *[16]byte, *byte, int, *byte, int) { panic("vaesgcm: unsupported") }
func ghashShort(*table, *[16]byte, *[16]byte, *byte, int, *byte, int) {
	panic("vaesgcm: unsupported")
}
func ghashInit(*[16]byte, *table) { panic("vaesgcm: unsupported") }
