package config

import (
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Workers is `workers: auto` (0) or a count.
type Workers struct{ N int }

// UnmarshalYAML implements yaml.Unmarshaler.
func (w *Workers) UnmarshalYAML(n *yaml.Node) error {
	if n.Value == "auto" {
		w.N = 0
		return nil
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < 1 || v > 64 {
		return fmt.Errorf("line %d: workers: %q is not auto or a number 1..64", n.Line, n.Value)
	}
	w.N = v
	return nil
}

// Ports selects and tunes the packet I/O of `tunterm run`.
type Ports struct {
	// Driver: auto (AF_XDP, falling back to AF_PACKET when XDP cannot
	// attach), afxdp, or afpacket.
	Driver string `yaml:"driver"`
	// XDPMode: auto (native, then generic), native, or generic.
	XDPMode string `yaml:"xdp_mode"`
	// NeedWakeup binds AF_XDP sockets with XDP_USE_NEED_WAKEUP (default
	// true): the kernel says when a syscall is needed.
	NeedWakeup bool `yaml:"need_wakeup"`
	// BusyPoll asks for SO_PREFER_BUSY_POLL on AF_XDP sockets.
	BusyPoll bool `yaml:"busy_poll"`
	// RingSize is the size of every AF_XDP ring (power of two, default
	// 2048).
	RingSize int `yaml:"ring_size"`
	// Idle is what a worker does when its queues are empty: sleep (spin
	// for 1024 empty polls, then nap 50 µs at a time in nanosleep, keeping
	// its CPU and Go P; the default) or spin (never nap, as DPDK does: each
	// worker's core is always 100 % busy, but a burst never waits for a
	// napping worker).
	Idle string `yaml:"idle"`
	// Prefetch is whether a worker asks for the tables' lines of an AP ->
	// corporate batch ahead of its lookups (the SA prefetch): auto (the
	// default: when the snapshot holds at least pipeline.PrefetchAutoSAs
	// inbound SAs; below that the tables stay in the cache and asking
	// costs more than it saves), on, or off.
	Prefetch string `yaml:"prefetch"`
}

func (c *Config) validateDataplane() error {
	seen := map[int]bool{}
	for _, cpu := range c.CPUs {
		if cpu < 0 || cpu > 1023 {
			return fmt.Errorf("cpus: %d is not a CPU number", cpu)
		}
		if seen[cpu] {
			return fmt.Errorf("cpus: CPU %d listed twice", cpu)
		}
		seen[cpu] = true
	}
	if c.Workers.N > 0 && len(c.CPUs) > 0 && len(c.CPUs) != c.Workers.N {
		return fmt.Errorf("cpus: %d CPUs listed for workers: %d (list one CPU per worker)", len(c.CPUs), c.Workers.N)
	}
	p := &c.Ports
	switch p.Driver {
	case "":
		p.Driver = "auto"
	case "auto", "afxdp", "afpacket":
	default:
		return fmt.Errorf("ports.driver: %q is not auto, afxdp or afpacket", p.Driver)
	}
	switch p.XDPMode {
	case "":
		p.XDPMode = "auto"
	case "auto", "native", "generic":
	default:
		return fmt.Errorf("ports.xdp_mode: %q is not auto, native or generic", p.XDPMode)
	}
	if p.RingSize == 0 {
		p.RingSize = 2048
	}
	switch p.Idle {
	case "":
		p.Idle = "sleep"
	case "sleep", "spin":
	default:
		return fmt.Errorf("ports.idle: %q is not sleep or spin", p.Idle)
	}
	switch p.Prefetch {
	case "":
		p.Prefetch = "auto"
	case "auto", "on", "off":
	default:
		return fmt.Errorf("ports.prefetch: %q is not auto, on or off", p.Prefetch)
	}
	if p.RingSize < 64 || p.RingSize > 32768 || p.RingSize&(p.RingSize-1) != 0 {
		return fmt.Errorf("ports.ring_size: %d is not a power of two in 64..32768", p.RingSize)
	}
	return nil
}
