package afxdp

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket options x/sys/unix has constants and structs for but no typed
// wrappers. None of them is on the hot path.

func setsockoptPtr(fd, level, opt int, p unsafe.Pointer, size uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), size, 0)
	if e != 0 {
		return e
	}
	return nil
}

func getsockoptPtr(fd, level, opt int, p unsafe.Pointer, size *uint32) error {
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt), uintptr(p), uintptr(unsafe.Pointer(size)), 0)
	if e != 0 {
		return e
	}
	return nil
}

func registerUMEM(fd int, reg *unix.XDPUmemReg) error {
	return setsockoptPtr(fd, unix.SOL_XDP, unix.XDP_UMEM_REG, unsafe.Pointer(reg), unsafe.Sizeof(*reg))
}

func mmapOffsets(fd int) (unix.XDPMmapOffsets, error) {
	var off unix.XDPMmapOffsets
	size := uint32(unsafe.Sizeof(off))
	if err := getsockoptPtr(fd, unix.SOL_XDP, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), &size); err != nil {
		return off, err
	}
	if size != uint32(unsafe.Sizeof(off)) {
		// A pre-4.20 kernel without the flags word: need-wakeup cannot work.
		return off, unix.EPROTONOSUPPORT
	}
	return off, nil
}

// xdpOptions reports whether the socket is bound in zero-copy mode.
func xdpZeroCopy(fd int) (bool, error) {
	var opts struct{ Flags uint32 }
	size := uint32(unsafe.Sizeof(opts))
	if err := getsockoptPtr(fd, unix.SOL_XDP, unix.XDP_OPTIONS, unsafe.Pointer(&opts), &size); err != nil {
		return false, err
	}
	return opts.Flags&unix.XDP_OPTIONS_ZEROCOPY != 0, nil
}

func xdpStatistics(fd int) (unix.XDPStatistics, error) {
	var st unix.XDPStatistics
	size := uint32(unsafe.Sizeof(st))
	err := getsockoptPtr(fd, unix.SOL_XDP, unix.XDP_STATISTICS, unsafe.Pointer(&st), &size)
	return st, err
}

// kick is sendto(fd, NULL, 0, MSG_DONTWAIT): in copy mode it transmits what
// is on the TX ring, in zero-copy mode it wakes the driver.
func kick(fd int) unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return e
}

// wake is recvfrom(fd, NULL, 0, MSG_DONTWAIT): it busy-polls the queue's
// NAPI when busy polling is on, or wakes a zero-copy driver that asked for
// it on the fill ring.
func wake(fd int) unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return e
}
