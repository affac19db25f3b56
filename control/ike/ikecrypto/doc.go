// Package ikecrypto is the cryptography of tunterm's IKEv2 responder: transform
// suites, Diffie-Hellman, the key schedule, AUTH payload computation and the
// Encrypted (SK) payload. It parses no IKE messages; control/ike/wire does,
// with the same transform numbers.
//
// # Key schedule (RFC 7296)
//
//	prf+ (K,S)      = T1 | T2 | ...,  T1 = prf(K, S | 0x01),
//	                  Tn = prf(K, Tn-1 | S | n)                   §2.13  PRFPlus
//	SKEYSEED        = prf(Ni | Nr, g^ir)                          §2.14  SKEYSEED
//	{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
//	                = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)      §2.14  DeriveIKEKeys
//	SKEYSEED (rekey)= prf(SK_d (old), g^ir (new) | Ni | Nr)       §2.18  RekeySKEYSEED
//	KEYMAT          = prf+(SK_d, [g^ir (new) |] Ni | Nr)          §2.17  DeriveChildKeys
//	AUTH (PSK)      = prf(prf(Shared Secret, "Key Pad for IKEv2"),
//	                      <SignedOctets>)                         §2.15  PSKAuth
//	SignedOctets    = RealMessage | Nonce of the peer | prf(SK_p, IDx')  SignedOctets
//
// The PRFs are HMAC-SHA2-256/384/512 (RFC 4868). Encryption is AES-CBC with
// HMAC-SHA1-96 or HMAC-SHA2 (RFC 7296 §3.14, RFC 4868), AES-CTR (RFC 5930),
// AES-GCM with a 16-octet ICV (RFC 5282) and ChaCha20-Poly1305 (RFC 7634);
// the key material of the salted ciphers ends with the 4-octet salt, for
// SK_e as for the ESP keys, which is also the Linux xfrm and
// dataplane/esp.Config layout. DH groups: 14 (MODP 2048, RFC 3526), 19/20/21
// (ECP P-256/384/521, RFC 5903, x | y public values and the x coordinate as
// g^ir), 31 (Curve25519, RFC 8031). Certificate authentication signs and
// verifies RFC 7427 Digital Signatures (RSA PKCS#1 v1.5, RSASSA-PSS, ECDSA
// with SHA-2) and the classic methods 1 (RSA) and 9/10/11 (ECDSA, RFC 4754).
//
// # Verification
//
// The tests check the PRFs against RFC 4231, the groups against RFC 5903 §8,
// RFC 7748 §6.1 and RFC 3526, signatures against openssl, and the whole
// schedule byte for byte against strongSwan 5.9: SKEYSEED, SK_*, signed
// octets, PSK AUTH, CHILD_SA keys with and without PFS, IKE SA rekey, every
// SK payload charon sealed or opened, and charon's ECDSA, RSA and RSA-PSS
// AUTH signatures (testdata/ike/strongswan-p*.txt, captured by
// testdata/ike/strongswan/capture.sh).
//
// # Concurrency
//
// Everything here is a pure function or an object that is immutable after
// construction: DHPrivate and SK are safe for concurrent use (SK draws its
// counter IVs atomically).
package ikecrypto
