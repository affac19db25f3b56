//go:build amd64 && !purego

#include "textflag.h"

// AES-GCM with VAES and VPCLMULQDQ on 256-bit registers (AVX2 width, no
// AVX-512): two blocks per instruction. Two passes over the data instead of
// one stitched loop: CTR (ctrXOR) and GHASH (ghash) each keep enough
// independent work in flight on their own, and a packet fits in L1.
//
// GHASH works, like Go's crypto/internal/fips140/aes/gcm, on byte-reversed
// blocks with the hash key pre-multiplied by x (H·x mod P), so that a
// carry-less product needs no shift before the two-step reduction by
// P = x^128 + x^127 + x^126 + x^121 + 1 (the constant gcmPoly).

// bswap reverses the 16 bytes of each 128-bit lane (VPSHUFB mask).
DATA bswap<>+0x00(SB)/8, $0x08090a0b0c0d0e0f
DATA bswap<>+0x08(SB)/8, $0x0001020304050607
DATA bswap<>+0x10(SB)/8, $0x08090a0b0c0d0e0f
DATA bswap<>+0x18(SB)/8, $0x0001020304050607
GLOBL bswap<>(SB), RODATA|NOPTR, $32

DATA gcmPoly<>+0x00(SB)/8, $0x0000000000000001
DATA gcmPoly<>+0x08(SB)/8, $0xc200000000000000
GLOBL gcmPoly<>(SB), RODATA|NOPTR, $16

// Counter increments for byte-reversed counter blocks, whose 32-bit block
// counter is then the low dword of each lane: oneTwo adds 1 to the low
// lane and 2 to the high one, two adds 2 to both.
DATA oneTwo<>+0x00(SB)/8, $1
DATA oneTwo<>+0x08(SB)/8, $0
DATA oneTwo<>+0x10(SB)/8, $2
DATA oneTwo<>+0x18(SB)/8, $0
GLOBL oneTwo<>(SB), RODATA|NOPTR, $32

DATA two<>+0x00(SB)/8, $2
DATA two<>+0x08(SB)/8, $0
DATA two<>+0x10(SB)/8, $2
DATA two<>+0x18(SB)/8, $0
GLOBL two<>(SB), RODATA|NOPTR, $32

// func subWord(w uint32) uint32
//
// The AES S-box applied to each byte of w (FIPS 197 SubWord), in constant
// time: with all four columns of the state equal, ShiftRows changes nothing,
// so AESENCLAST with a zero round key is SubBytes alone.
TEXT ·subWord(SB), NOSPLIT, $0-12
	MOVL       w+0(FP), AX
	MOVL       AX, X0
	PSHUFD     $0x00, X0, X0
	PXOR       X1, X1
	AESENCLAST X1, X0
	MOVL       X0, AX
	MOVL       AX, ret+8(FP)
	RET

// OP8 applies the instruction op with first operand k to each of Y0..Y7.
#define OP8(op, k) \
	op k, Y0, Y0; \
	op k, Y1, Y1; \
	op k, Y2, Y2; \
	op k, Y3, Y3; \
	op k, Y4, Y4; \
	op k, Y5, Y5; \
	op k, Y6, Y6; \
	op k, Y7, Y7

// Encrypting Y0..Y7 (two counter blocks each, byte-reversed): BSWAP8 puts
// them in AES byte order, AES8WHITEN adds the first round key (at AX),
// ROUND8 does the round whose key is at off(AX), AES8LAST the last round
// (key at R8).
#define BSWAP8 OP8(VPSHUFB, Y14)

#define AES8WHITEN \
	VBROADCASTI128 (AX), Y15; \
	OP8(VPXOR, Y15)

#define ROUND8(off) \
	VBROADCASTI128 off(AX), Y15; \
	OP8(VAESENC, Y15)

#define AES8LAST \
	VBROADCASTI128 (R8), Y15; \
	OP8(VAESENCLAST, Y15)

// COUNT2TO7 sets Y2..Y7 to the counter pairs that follow Y1's.
#define COUNT2TO7 \
	VPADDD two<>(SB), Y1, Y2; \
	VPADDD two<>(SB), Y2, Y3; \
	VPADDD two<>(SB), Y3, Y4; \
	VPADDD two<>(SB), Y4, Y5; \
	VPADDD two<>(SB), Y5, Y6; \
	VPADDD two<>(SB), Y6, Y7

// func ctrXOR(rk *[15][16]byte, nr int, j0 *[16]byte, dst, src *byte, n int, extra *[32]byte)
//
// For GCM's pre-counter block J0 (only its last 32 bits, big-endian, count:
// inc32), XORs the n 16-byte blocks of src with the keystream of J0+1 ..
// J0+n into dst (dst may be src), and writes AES_K(J0), the tag mask, and
// AES_K(J0+n+1), the keystream of a partial last block, to extra. nr is
// the number of rounds: 10, 12 or 14.
//
// Sixteen blocks at a time, eight registers of two, so that the
// instructions of one round do not wait for each other. The last 0..15
// blocks and the two extra ones go through the same sixteen-block code,
// whose latency is that of one block; the keystream of the last blocks is
// kept in the frame and wiped.
TEXT ·ctrXOR(SB), NOSPLIT, $224-56
	MOVQ rk+0(FP), AX
	MOVQ nr+8(FP), BX
	MOVQ j0+16(FP), CX
	MOVQ dst+24(FP), DI
	MOVQ src+32(FP), SI
	MOVQ n+40(FP), DX
	MOVQ extra+48(FP), R10

	MOVQ BX, R8
	SHLQ $4, R8
	ADDQ AX, R8 // R8: the last round key

	VMOVDQU        bswap<>(SB), Y14
	VBROADCASTI128 (CX), Y12
	VPSHUFB        Y14, Y12, Y12         // Y12: [J0 | J0], byte-reversed
	VPADDD         oneTwo<>(SB), Y12, Y13 // Y13: [c | c+1], c = J0+1

ctrLoop:
	CMPQ DX, $16
	JB   ctrTail

	VMOVDQU Y13, Y0
	VPADDD  two<>(SB), Y0, Y1
	COUNT2TO7
	VPADDD  two<>(SB), Y7, Y13
	MOVQ    $1, R11
	JMP     ctrAES

ctrTail:
	// Fifteen blocks and the two extra ones do not fit in sixteen: two of
	// them go first, on their own.
	CMPQ DX, $15
	JB   ctrTail14

	VPSHUFB        Y14, Y13, Y0
	VPADDD         two<>(SB), Y13, Y13
	MOVQ           AX, R9
	VBROADCASTI128 (R9), Y15
	VPXOR          Y15, Y0, Y0

ctr2round:
	ADDQ           $16, R9
	CMPQ           R9, R8
	JAE            ctr2last
	VBROADCASTI128 (R9), Y15
	VAESENC        Y15, Y0, Y0
	JMP            ctr2round

ctr2last:
	VBROADCASTI128 (R8), Y15
	VAESENCLAST    Y15, Y0, Y0
	VPXOR          (SI), Y0, Y0
	VMOVDQU        Y0, (DI)
	ADDQ           $32, SI
	ADDQ           $32, DI
	SUBQ           $2, DX

ctrTail14:
	// Y0: [J0 | c+DX], Y1..Y7: c .. c+13.
	VMOVQ       DX, X9
	VPADDD      X9, X13, X9
	VINSERTI128 $1, X9, Y12, Y0
	VMOVDQU     Y13, Y1
	COUNT2TO7
	XORQ        R11, R11

ctrAES:
	BSWAP8
	AES8WHITEN
	ROUND8(16)
	ROUND8(32)
	ROUND8(48)
	ROUND8(64)
	ROUND8(80)
	ROUND8(96)
	ROUND8(112)
	ROUND8(128)
	ROUND8(144)
	CMPQ BX, $12
	JB   ctrLast
	ROUND8(160)
	ROUND8(176)
	JE   ctrLast
	ROUND8(192)
	ROUND8(208)

ctrLast:
	AES8LAST
	TESTQ R11, R11
	JZ    ctrTailXOR

	VPXOR   (SI), Y0, Y0
	VPXOR   32(SI), Y1, Y1
	VPXOR   64(SI), Y2, Y2
	VPXOR   96(SI), Y3, Y3
	VPXOR   128(SI), Y4, Y4
	VPXOR   160(SI), Y5, Y5
	VPXOR   192(SI), Y6, Y6
	VPXOR   224(SI), Y7, Y7
	VMOVDQU Y0, (DI)
	VMOVDQU Y1, 32(DI)
	VMOVDQU Y2, 64(DI)
	VMOVDQU Y3, 96(DI)
	VMOVDQU Y4, 128(DI)
	VMOVDQU Y5, 160(DI)
	VMOVDQU Y6, 192(DI)
	VMOVDQU Y7, 224(DI)
	ADDQ    $256, SI
	ADDQ    $256, DI
	SUBQ    $16, DX
	JMP     ctrLoop

ctrTailXOR:
	VMOVDQU Y0, (R10)
	VMOVDQU Y1, ks-224(SP)
	VMOVDQU Y2, ks-192(SP)
	VMOVDQU Y3, ks-160(SP)
	VMOVDQU Y4, ks-128(SP)
	VMOVDQU Y5, ks-96(SP)
	VMOVDQU Y6, ks-64(SP)
	VMOVDQU Y7, ks-32(SP)
	LEAQ    ks-224(SP), R9

ctrTail2:
	CMPQ    DX, $2
	JB      ctrTail1
	VMOVDQU (R9), Y0
	VPXOR   (SI), Y0, Y0
	VMOVDQU Y0, (DI)
	ADDQ    $32, R9
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $2, DX
	JMP     ctrTail2

ctrTail1:
	TESTQ   DX, DX
	JZ      ctrWipe
	VMOVDQU (R9), X0
	VPXOR   (SI), X0, X0
	VMOVDQU X0, (DI)

ctrWipe:
	VPXOR   Y0, Y0, Y0
	VMOVDQU Y0, ks-224(SP)
	VMOVDQU Y0, ks-192(SP)
	VMOVDQU Y0, ks-160(SP)
	VMOVDQU Y0, ks-128(SP)
	VMOVDQU Y0, ks-96(SP)
	VMOVDQU Y0, ks-64(SP)
	VMOVDQU Y0, ks-32(SP)
	VZEROUPPER
	RET

// REDUCE folds the 256-bit product hi:lo (X5:X4, with the middle terms
// already added) into X11, using X13 = gcmPoly and X7 as scratch.
#define REDUCE \
	VPCLMULQDQ $0x01, X4, X13, X7; \
	VPSHUFD    $0x4e, X4, X4;      \
	VPXOR      X7, X4, X4;         \
	VPCLMULQDQ $0x01, X4, X13, X7; \
	VPSHUFD    $0x4e, X4, X4;      \
	VPXOR      X7, X4, X4;         \
	VPXOR      X5, X4, X11

// MIDDLE adds the middle product X6 into lo X4 and hi X5 (X7 scratch).
#define MIDDLE \
	VPSLLDQ $8, X6, X7; \
	VPSRLDQ $8, X6, X6; \
	VPXOR   X7, X4, X4; \
	VPXOR   X6, X5, X5

// MULPAIR multiplies the two blocks in Y0 by the two key powers h (memory
// or a register) with Karatsuba and adds the products into lo Y4, hi Y5 and the
// unfinished middle Y6 (Y7..Y10 scratch). The middle is finished once,
// after the last pair, by adding lo and hi. The powers' lo^hi halves are
// computed here rather than stored: two more instructions per pair (no
// slower in BenchmarkOpen/Seal on this project's Zen 3), and a table four
// cache lines smaller for each SA's first packet to miss.
#define MULPAIR(h) \
	VPCLMULQDQ $0x00, h, Y0, Y7; \
	VPCLMULQDQ $0x11, h, Y0, Y8; \
	VPSHUFD    $0x4e, Y0, Y9;    \
	VPXOR      Y0, Y9, Y9;       \
	VPSHUFD    $0x4e, h, Y10;    \
	VPXOR      h, Y10, Y10;      \
	VPCLMULQDQ $0x00, Y10, Y9, Y9;  \
	VPXOR      Y7, Y4, Y4;          \
	VPXOR      Y8, Y5, Y5;          \
	VPXOR      Y9, Y6, Y6

// GHPAIR multiplies the two blocks at soff(SI) (MULPAIR); FIRSTPAIR the
// first two of the stride, with acc (X11) added to the first.
#define GHPAIR(soff, hoff) \
	VMOVDQU soff(SI), Y0; \
	VPSHUFB Y12, Y0, Y0;  \
	MULPAIR(hoff(AX))

#define FIRSTPAIR(hoff) \
	VMOVDQU (SI), Y0;    \
	VPSHUFB Y12, Y0, Y0; \
	VPXOR   Y11, Y0, Y0; \
	MULPAIR(hoff(AX))

// MUL1 sets lo X4, hi X5 and middle X6 to the product of the block in X0
// and the key power h (a register or memory; X7 scratch).
#define MUL1(h) \
	VPCLMULQDQ $0x00, h, X0, X4; \
	VPCLMULQDQ $0x11, h, X0, X5; \
	VPCLMULQDQ $0x01, h, X0, X6; \
	VPCLMULQDQ $0x10, h, X0, X7; \
	VPXOR      X7, X6, X6

// FOLD adds the two lanes of Y4, Y5, Y6, finishes the Karatsuba middle
// and reduces into X11.
#define FOLD \
	VEXTRACTI128 $1, Y4, X7; \
	VPXOR        X7, X4, X4; \
	VEXTRACTI128 $1, Y5, X7; \
	VPXOR        X7, X5, X5; \
	VEXTRACTI128 $1, Y6, X7; \
	VPXOR        X7, X6, X6; \
	VPXOR        X4, X6, X6; \
	VPXOR        X5, X6, X6; \
	MIDDLE;                  \
	REDUCE

// GHSTART loads the constants GHASH uses (Y12 = bswap, X13 = gcmPoly) and
// the running hash from (CX) into X11, byte-reversed; the upper lane is zero.
#define GHSTART \
	VMOVDQU bswap<>(SB), Y12;   \
	VMOVDQU gcmPoly<>(SB), X13; \
	VMOVDQU (CX), X11;          \
	VPSHUFB X12, X11, X11

// func ghash(htab *table, acc *[16]byte, first *[16]byte, src *byte, n int, last *byte, m int)
//
// Folds into the GHASH value *acc (in the byte order of the standard) the
// block *first unless first is nil, then the n 16-byte blocks of src, then
// the m (0..16) blocks of last. htab holds H^16 .. H^1, each byte-reversed
// and multiplied by x.
//
// Sixteen blocks at a time: (acc+X1)·H^16 + X2·H^15 + ... + X16·H, one
// reduction, with acc's pair last so that the next sixteen blocks wait for
// as little as possible; then eight; fewer as (acc+X1)·H^k + ... + Xk·H.
TEXT ·ghash(SB), NOSPLIT, $0-56
	MOVQ htab+0(FP), AX
	MOVQ acc+8(FP), CX
	MOVQ first+16(FP), R10
	MOVQ src+24(FP), SI
	MOVQ n+32(FP), DX

	GHSTART

	TESTQ R10, R10
	JZ    gh16
	VMOVDQU (R10), X0
	VPSHUFB X12, X0, X0
	VPXOR   X11, X0, X0
	MUL1(240(AX))
	MIDDLE
	REDUCE

gh16:
	CMPQ DX, $16
	JB   gh8
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	GHPAIR(32, 32)
	GHPAIR(64, 64)
	GHPAIR(96, 96)
	GHPAIR(128, 128)
	GHPAIR(160, 160)
	GHPAIR(192, 192)
	GHPAIR(224, 224)
	FIRSTPAIR(0)
	FOLD
	ADDQ $256, SI
	SUBQ $16, DX
	JMP  gh16

gh8:
	CMPQ DX, $8
	JB   ghSrcRest
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	GHPAIR(32, 160)
	GHPAIR(64, 192)
	GHPAIR(96, 224)
	FIRSTPAIR(128)
	FOLD
	ADDQ $128, SI
	SUBQ $8, DX

ghSrcRest:
	MOVQ $1, R11
	JMP  ghSum

ghLast:
	MOVQ last+40(FP), SI
	MOVQ m+48(FP), DX
	XORQ R11, R11

ghSum:
	// (acc+X1)·H^k + X2·H^(k-1) + ... + Xk·H for the k = DX <= 16 blocks
	// at SI: H^k is at htab+16*(16-k). Then on to ghLast if R11 is 1.
	TESTQ DX, DX
	JZ    ghSumDone
	MOVQ  $16, R8
	SUBQ  DX, R8
	SHLQ  $4, R8
	ADDQ  AX, R8

	VMOVDQU (SI), X0
	VPSHUFB X12, X0, X0
	VPXOR   X11, X0, X0
	MUL1((R8))

ghSumLoop:
	ADDQ       $16, SI
	ADDQ       $16, R8
	DECQ       DX
	JZ         ghSumReduce
	VMOVDQU    (SI), X0
	VPSHUFB    X12, X0, X0
	VPCLMULQDQ $0x00, (R8), X0, X7
	VPXOR      X7, X4, X4
	VPCLMULQDQ $0x11, (R8), X0, X7
	VPXOR      X7, X5, X5
	VPCLMULQDQ $0x01, (R8), X0, X7
	VPXOR      X7, X6, X6
	VPCLMULQDQ $0x10, (R8), X0, X7
	VPXOR      X7, X6, X6
	JMP        ghSumLoop

ghSumReduce:
	MIDDLE
	REDUCE

ghSumDone:
	TESTQ R11, R11
	JNZ   ghLast

	VPSHUFB X12, X11, X11
	VMOVDQU X11, (CX)
	VZEROUPPER
	RET

// func ghashShort(htab *table, acc, first *[16]byte, src *byte, n int, last *byte, m int)
//
// What ghash does, for 1+n+m <= 16 blocks and first not nil, with one
// reduction instead of up to four in a row: k = 1+n+m blocks in all, the
// sum (acc+first)·H^k + src_0·H^(k-1) + ... + src_(n-1)·H^(m+1) +
// last_0·H^m + ... + last_(m-1)·H, m = 1 or 2. Short messages (a 128-byte
// frame's ESP payload is twelve blocks with its AAD and lengths) wait for
// each reduction's chain of dependent multiplications; here every product
// is independent and only the sum is reduced.
//
// Single blocks are multiplied as pairs whose upper lanes are zero (a VEX
// 128-bit load clears them), with their power in Y14. first and last,
// which the caller has just written, are loaded first: their loads may
// wait for those stores while the src pairs are computed.
TEXT ·ghashShort(SB), NOSPLIT, $0-56
	MOVQ htab+0(FP), AX
	MOVQ acc+8(FP), CX
	MOVQ first+16(FP), R10
	MOVQ src+24(FP), SI
	MOVQ n+32(FP), DX
	MOVQ last+40(FP), R11
	MOVQ m+48(FP), BX

	GHSTART

	// R8: H^k, at htab+16*(16-k); R9: H^m, where last's powers start.
	MOVQ $15, R8
	SUBQ DX, R8
	SUBQ BX, R8
	SHLQ $4, R8
	ADDQ AX, R8
	MOVQ $16, R9
	SUBQ BX, R9
	SHLQ $4, R9
	ADDQ AX, R9

	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6

	// (acc+first)·H^k
	VMOVDQU (R10), X0
	VPSHUFB X12, X0, X0
	VPXOR   X11, X0, X0
	VMOVDQU (R8), X14
	MULPAIR(Y14)

	// last: one block, or two as a pair (H^2, H^1 are the table's last 32 bytes).
	CMPQ BX, $2
	JB   shortLast1
	VMOVDQU (R11), Y0
	VPSHUFB Y12, Y0, Y0
	MULPAIR((R9))
	JMP  shortSrc

shortLast1:
	VMOVDQU (R11), X0
	VPSHUFB X12, X0, X0
	VMOVDQU (R9), X14
	MULPAIR(Y14)

shortSrc:
	// src_j·H^(k-1-j), two at a time; the powers follow H^k.
	ADDQ $16, R8

shortPair:
	CMPQ    DX, $2
	JB      shortOdd
	VMOVDQU (SI), Y0
	VPSHUFB Y12, Y0, Y0
	MULPAIR((R8))
	ADDQ    $32, SI
	ADDQ    $32, R8
	SUBQ    $2, DX
	JMP     shortPair

shortOdd:
	TESTQ   DX, DX
	JZ      shortFold
	VMOVDQU (SI), X0
	VPSHUFB X12, X0, X0
	VMOVDQU (R8), X14
	MULPAIR(Y14)

shortFold:
	FOLD
	VPSHUFB X12, X11, X11
	VMOVDQU X11, (CX)
	VZEROUPPER
	RET

// func ghashInit(h *[16]byte, htab *table)
//
// Fills htab.pow with H^16 .. H^1 (byte-reversed, times x) from h =
// AES_K(0^128).
TEXT ·ghashInit(SB), NOSPLIT, $0-16
	MOVQ h+0(FP), CX
	MOVQ htab+8(FP), AX

	VMOVDQU bswap<>(SB), X12
	VMOVDQU gcmPoly<>(SB), X13
	VMOVDQU (CX), X0
	VPSHUFB X12, X0, X0

	// H·x: shift the 128-bit value left by one, and reduce by P when the
	// bit shifted out was set.
	VPSHUFD $0xff, X0, X1
	VPSRAD  $31, X1, X1
	VPAND   X13, X1, X1
	VPSRLD  $31, X0, X2
	VPSLLDQ $4, X2, X2
	VPSLLD  $1, X0, X0
	VPXOR   X1, X0, X0
	VPXOR   X2, X0, X0

	VMOVDQU X0, 240(AX)
	VMOVDQU X0, X3
	LEAQ    224(AX), DI
	MOVQ    $15, DX

initLoop:
	// X3 = X3·H: both carry the factor x once, the product once.
	MUL1(X3)
	MIDDLE
	REDUCE
	VMOVDQU    X11, X3
	VMOVDQU    X3, (DI)
	SUBQ       $16, DI
	DECQ       DX
	JNZ        initLoop
	RET
