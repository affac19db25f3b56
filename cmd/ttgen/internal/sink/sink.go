// Package sink counts and drops every frame arriving on an interface with a
// tiny XDP program: a per-CPU array of {frames, bytes}, XDP_DROP. It is
// attached through a bpf_link, so the kernel detaches it when the process
// dies, however it dies.
//
// Concurrency: a Sink's methods may be called from any one goroutine at a
// time.
package sink

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// counter is the per-CPU map value.
type counter struct {
	Frames uint64
	Bytes  uint64
}

// Sink is an attached counting XDP_DROP program.
type Sink struct {
	m    *ebpf.Map
	prog *ebpf.Program
	l    link.Link
	// Mode is the attach mode that worked: "native" or "generic".
	Mode string
}

// Attach loads the program and attaches it to ifindex. mode is "native",
// "generic" or "auto" (native, then generic).
func Attach(ifindex int, mode string) (*Sink, error) {
	s, err := load()
	if err != nil {
		return nil, err
	}
	var modes []link.XDPAttachFlags
	switch mode {
	case "native":
		modes = []link.XDPAttachFlags{link.XDPDriverMode}
	case "generic":
		modes = []link.XDPAttachFlags{link.XDPGenericMode}
	case "auto", "":
		modes = []link.XDPAttachFlags{link.XDPDriverMode, link.XDPGenericMode}
	default:
		s.Close()
		return nil, fmt.Errorf("sink: mode %q is not native, generic or auto", mode)
	}
	var errs []error
	for _, fl := range modes {
		l, err := link.AttachXDP(link.XDPOptions{Program: s.prog, Interface: ifindex, Flags: fl})
		if err == nil {
			s.l = l
			s.Mode = "native"
			if fl == link.XDPGenericMode {
				s.Mode = "generic"
			}
			return s, nil
		}
		errs = append(errs, err)
	}
	s.Close()
	return nil, fmt.Errorf("sink: attaching XDP to ifindex %d: %w", ifindex, errors.Join(errs...))
}

// load creates the map and the program.
func load() (_ *Sink, err error) {
	s := &Sink{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.m, err = ebpf.NewMap(&ebpf.MapSpec{Name: "ttgen_sink", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 16, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("sink: map: %w", err)
	}
	s.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "ttgen_sink", Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Reg(asm.R6, asm.R1), // ctx
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.LoadMapPtr(asm.R1, s.m.FD()),
			asm.FnMapLookupElem.Call(), // r0 = &counter (this CPU's)
			asm.JEq.Imm(asm.R0, 0, "drop"),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
			asm.Add.Imm(asm.R1, 1),
			asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord), // frames++
			asm.LoadMem(asm.R2, asm.R6, 4, asm.Word),   // data_end
			asm.LoadMem(asm.R3, asm.R6, 0, asm.Word),   // data
			asm.Sub.Reg(asm.R2, asm.R3),
			asm.LoadMem(asm.R1, asm.R0, 8, asm.DWord),
			asm.Add.Reg(asm.R1, asm.R2),
			asm.StoreMem(asm.R0, 8, asm.R1, asm.DWord), // bytes += data_end - data
			asm.Mov.Imm(asm.R0, 1).WithSymbol("drop"),  // XDP_DROP
			asm.Return(),
		}})
	if err != nil {
		return nil, fmt.Errorf("sink: program: %w", err)
	}
	return s, nil
}

// Read returns the frames and bytes counted so far, summed over CPUs.
func (s *Sink) Read() (frames, bytes uint64, err error) {
	var per []counter
	if err := s.m.Lookup(uint32(0), &per); err != nil {
		return 0, 0, fmt.Errorf("sink: reading counters: %w", err)
	}
	for _, c := range per {
		frames += c.Frames
		bytes += c.Bytes
	}
	return frames, bytes, nil
}

// Close detaches the program and frees the map. It may be called again.
func (s *Sink) Close() error {
	var errs []error
	if s.l != nil {
		errs = append(errs, s.l.Close())
	}
	if s.prog != nil {
		errs = append(errs, s.prog.Close())
	}
	if s.m != nil {
		errs = append(errs, s.m.Close())
	}
	s.l, s.prog, s.m = nil, nil, nil
	return errors.Join(errs...)
}
