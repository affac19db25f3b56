package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

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
	for _, e := range []struct {
		key     string
		v       *string
		allowed []string // the default first
	}{
		{"ports.driver", &p.Driver, []string{"auto", "afxdp", "afpacket"}},
		{"ports.xdp_mode", &p.XDPMode, []string{"auto", "native", "generic"}},
		{"ports.idle", &p.Idle, []string{"sleep", "spin"}},
		{"ports.prefetch", &p.Prefetch, []string{"auto", "on", "off"}},
	} {
		if err := oneOf(e.key, e.v, e.allowed); err != nil {
			return err
		}
	}
	if p.RingSize == 0 {
		p.RingSize = 2048
	}
	if p.RingSize < 64 || p.RingSize > 32768 || p.RingSize&(p.RingSize-1) != 0 {
		return fmt.Errorf("ports.ring_size: %d is not a power of two in 64..32768", p.RingSize)
	}
	return nil
}

// oneOf sets an empty *v to allowed[0], the default, and refuses a value
// not in allowed, naming key and the choices.
func oneOf(key string, v *string, allowed []string) error {
	if *v == "" {
		*v = allowed[0]
		return nil
	}
	if slices.Contains(allowed, *v) {
		return nil
	}
	n := len(allowed) - 1
	return fmt.Errorf("%s: %q is not %s or %s", key, *v, strings.Join(allowed[:n], ", "), allowed[n])
}
