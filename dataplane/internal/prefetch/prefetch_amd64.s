//go:build amd64 && !purego

#include "textflag.h"

// func forWrite(p *byte, n int)
//
// PREFETCHW (0F 0D /1, which Go's assembler has no name for) of every
// 64-byte line that [p, p+n) touches, n > 0. A prefetch never faults.
TEXT ·forWrite(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), AX
	MOVQ n+8(FP), DX
	ADDQ AX, DX // end
	ANDQ $-64, AX

loop:
	BYTE $0x0F; BYTE $0x0D; BYTE $0x08 // PREFETCHW (AX)
	ADDQ $64, AX
	CMPQ AX, DX
	JB   loop
	RET

// func forRead(p unsafe.Pointer, n uintptr) uint64
//
// PREFETCHT0 of every 64-byte line that [p, p+n) touches, n > 0; returns 0.
TEXT ·forRead(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), AX
	MOVQ n+8(FP), DX
	ADDQ AX, DX // end
	ANDQ $-64, AX

loop:
	PREFETCHT0 (AX)
	ADDQ $64, AX
	CMPQ AX, DX
	JB   loop
	MOVQ $0, ret+16(FP)
	RET
