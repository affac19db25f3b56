package xmit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/tunterm/tunterm/cmd/ttgen/internal/traffic"
)

// bpfProgTestRun is BPF_PROG_TEST_RUN (a.k.a. BPF_PROG_RUN).
const bpfProgTestRun = 10

// progRunAttr is the BPF_PROG_TEST_RUN part of union bpf_attr
// (include/uapi/linux/bpf.h), 64-bit layout. ttgen calls the syscall itself
// rather than through ebpf.Program.Run so that a call neither allocates nor
// retries a whole Repeat after EINTR.
type progRunAttr struct {
	progFD      uint32
	retval      uint32
	dataSizeIn  uint32
	dataSizeOut uint32
	dataIn      unsafe.Pointer
	dataOut     unsafe.Pointer
	repeat      uint32
	duration    uint32
	ctxSizeIn   uint32
	ctxSizeOut  uint32
	ctxIn       unsafe.Pointer
	ctxOut      unsafe.Pointer
	flags       uint32
	cpu         uint32
	batchSize   uint32
	_           uint32
}

// DefaultRepeat is the number of frames one BPF_PROG_RUN call sends at full
// rate. A call costs about 25 ms of set-up and tear-down on top of the
// frames (measured on Linux 6.18: the kernel builds and destroys a page pool
// per call and waits for frames in flight), so calls must be long; 2^18
// frames take 50..150 ms, which also bounds how late a stop request is seen.
const DefaultRepeat = 1 << 18

// pacedCall is how much traffic one call carries when paced.
const pacedCall = 0.05 // seconds

// frameOff is where a frame's bytes start in a map value, after its length.
const frameOff = 8

// XDP sends with BPF_PROG_RUN live frames. The frames of the set live in a
// BPF array map; every run of the program takes the next one (a 64-bit
// counter in a second, mmap-able map, modulo the set size), shrinks the
// live frame to its length, copies it in with bpf_xdp_store_bytes and
// redirects it out of the interface. The kernel re-runs the program Repeat
// times per call, so frames cycle through every tunnel and client at full
// speed, and the counter says exactly how many frames ran.
type XDP struct {
	prog   *ebpf.Program
	frames *ebpf.Map
	cursor *ebpf.Map
	ctr    []byte // mmap of cursor: the uint64 run counter
	attr   *progRunAttr
	tmpl   []byte // the live frame template: MaxLen zero bytes
	repeat int
	set    *traffic.Set
	total  uint64   // counter value after the last call
	prefix []uint64 // prefix[i]: bytes of frames [0, i)
}

// NewXDP loads set into the kernel and the generator program redirecting to
// ifindex. repeat caps the frames per call (0: DefaultRepeat).
func NewXDP(ifindex int, set *traffic.Set, repeat int) (*XDP, error) {
	return newXDP(set, repeat, asm.Instructions{
		asm.Mov.Imm(asm.R1, int32(ifindex)),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(), // return bpf_redirect(ifindex, 0)
		asm.Return(),
	})
}

// newXDP builds the generator with tail as the program's last
// instructions (run with the frame in place; tests end with XDP_DROP).
func newXDP(set *traffic.Set, repeat int, tail asm.Instructions) (_ *XDP, err error) {
	if repeat <= 0 {
		repeat = DefaultRepeat
	}
	n := set.Len()
	if n == 0 {
		return nil, errors.New("xdp: no frames")
	}
	maxf := (set.MaxLen + 7) &^ 7
	x := &XDP{repeat: repeat, set: set, tmpl: make([]byte, set.MaxLen), prefix: make([]uint64, n+1)}
	defer func() {
		if err != nil {
			x.Close()
		}
	}()
	for i := range n {
		x.prefix[i+1] = x.prefix[i] + uint64(len(set.Frame(i)))
	}
	x.frames, err = ebpf.NewMap(&ebpf.MapSpec{Name: "ttgen_frames", Type: ebpf.Array, KeySize: 4,
		ValueSize: uint32(frameOff + maxf), MaxEntries: uint32(n)})
	if err != nil {
		return nil, fmt.Errorf("xdp: frames map (%d x %d bytes): %w", n, frameOff+maxf, err)
	}
	v := make([]byte, frameOff+maxf)
	for i := range n {
		fr := set.Frame(i)
		clear(v)
		binary.NativeEndian.PutUint32(v, uint32(len(fr)))
		copy(v[frameOff:], fr)
		if err := x.frames.Update(uint32(i), v, ebpf.UpdateAny); err != nil {
			return nil, fmt.Errorf("xdp: loading frame %d: %w", i, err)
		}
	}
	x.cursor, err = ebpf.NewMap(&ebpf.MapSpec{Name: "ttgen_cursor", Type: ebpf.Array, KeySize: 4, ValueSize: 8,
		MaxEntries: 1, Flags: unix.BPF_F_MMAPABLE})
	if err != nil {
		return nil, fmt.Errorf("xdp: cursor map: %w", err)
	}
	if x.ctr, err = unix.Mmap(x.cursor.FD(), 0, unix.Getpagesize(), unix.PROT_READ, unix.MAP_SHARED); err != nil {
		return nil, fmt.Errorf("xdp: mmap cursor: %w", err)
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // ctx
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, x.cursor.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "abort"),
		asm.LoadMem(asm.R7, asm.R0, 0, asm.DWord), // r7 = total
		asm.Mov.Reg(asm.R1, asm.R7),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord), // total++
		asm.Mod.Imm(asm.R7, int32(n)),              // frame index
		asm.StoreMem(asm.RFP, -8, asm.R7, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -8),
		asm.LoadMapPtr(asm.R1, x.frames.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "abort"),
		asm.Mov.Reg(asm.R9, asm.R0),
		asm.LoadMem(asm.R8, asm.R9, 0, asm.Word), // r8 = frame length
		asm.JEq.Imm(asm.R8, 0, "abort"),
		asm.JGT.Imm(asm.R8, int32(maxf), "abort"),
		asm.LoadMem(asm.R2, asm.R6, 4, asm.Word), // data_end
		asm.LoadMem(asm.R3, asm.R6, 0, asm.Word), // data
		asm.Sub.Reg(asm.R2, asm.R3),              // live frame length (the template's)
		asm.Mov.Reg(asm.R3, asm.R8),
		asm.Sub.Reg(asm.R3, asm.R2), // delta <= 0
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.R3),
		asm.FnXdpAdjustTail.Call(),
		asm.JNE.Imm(asm.R0, 0, "abort"),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Imm(asm.R2, 0),
		asm.Mov.Reg(asm.R3, asm.R9),
		asm.Add.Imm(asm.R3, frameOff),
		asm.Mov.Reg(asm.R4, asm.R8),
		asm.FnXdpStoreBytes.Call(), // copy the frame in
		asm.JNE.Imm(asm.R0, 0, "abort"),
	}
	insns = append(insns, tail...)
	insns = append(insns, asm.Mov.Imm(asm.R0, 0).WithSymbol("abort"), asm.Return()) // XDP_ABORTED
	x.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "ttgen_xdpgen", Type: ebpf.XDP, License: "GPL", Instructions: insns})
	if err != nil {
		return nil, fmt.Errorf("xdp: loading the generator program (needs Linux >= 5.18): %w", err)
	}
	x.attr = &progRunAttr{progFD: uint32(x.prog.FD()), flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES, batchSize: 64}
	return x, nil
}

// Batch implements Sender: a call carries DefaultRepeat frames at full
// rate, pacedCall seconds of traffic when paced.
func (x *XDP) Batch(rate float64) int {
	if rate <= 0 {
		return x.repeat
	}
	return max(1, min(x.repeat, int(rate*pacedCall)))
}

// counter reads the program's run counter.
func (x *XDP) counter() uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&x.ctr[0])))
}

// bytesOf returns the bytes of frames [a, b) of the endless cycle.
func (x *XDP) bytesOf(a, b uint64) uint64 {
	n := uint64(x.set.Len())
	at := func(v uint64) uint64 { return v/n*x.prefix[n] + x.prefix[v%n] }
	return at(b) - at(a)
}

// Send implements Sender: one BPF_PROG_RUN of min(max, Repeat) frames.
// set must be the set given to NewXDP.
func (x *XDP) Send(set *traffic.Set, max int) (int, uint64, error) {
	a := x.attr
	a.dataIn, a.dataSizeIn, a.repeat = unsafe.Pointer(&x.tmpl[0]), uint32(len(x.tmpl)), uint32(min(x.repeat, max))
	a.dataSizeOut = 0 // the kernel writes the output size back
	_, _, e := unix.Syscall(unix.SYS_BPF, bpfProgTestRun, uintptr(unsafe.Pointer(a)), unsafe.Sizeof(*a))
	prev := x.total
	x.total = x.counter() // exact, even after EINTR
	n := int(x.total - prev)
	if e != 0 && e != unix.EINTR {
		return n, x.bytesOf(prev, x.total), fmt.Errorf("xdp: BPF_PROG_RUN live frames: %w", e)
	}
	return n, x.bytesOf(prev, x.total), nil
}

// Close releases the program and maps. It may be called again.
func (x *XDP) Close() error {
	var errs []error
	if x.ctr != nil {
		errs = append(errs, unix.Munmap(x.ctr))
	}
	if x.prog != nil {
		errs = append(errs, x.prog.Close())
	}
	if x.frames != nil {
		errs = append(errs, x.frames.Close())
	}
	if x.cursor != nil {
		errs = append(errs, x.cursor.Close())
	}
	x.ctr, x.prog, x.frames, x.cursor = nil, nil, nil, nil
	return errors.Join(errs...)
}
