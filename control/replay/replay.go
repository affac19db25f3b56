// Package replay runs the dataplane pipeline offline on packet captures:
// the same worker code as the daemon, fed from pcap/pcapng files through
// in-memory ports, with what each port would transmit written to captures.
// Operators use it to reproduce a field capture; the tests use it with
// packets built by scapy.
package replay

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/tunterm/tunterm/control/config"
	"github.com/tunterm/tunterm/control/programmer"
	"github.com/tunterm/tunterm/dataplane/bridge"
	"github.com/tunterm/tunterm/dataplane/pipeline"
	"github.com/tunterm/tunterm/dataplane/port"
	"github.com/tunterm/tunterm/dataplane/port/mem"
	"github.com/tunterm/tunterm/dataplane/stats"
	"github.com/tunterm/tunterm/dataplane/table"
)

// Options names the inputs and outputs. Empty names are skipped.
type Options struct {
	Config        *config.Config
	DownstreamIn  string
	UpstreamIn    string
	UpstreamOut   string
	DownstreamOut string
	Drops         string // .pcapng: one interface per reason; else pcap
	Verbose       bool   // print every frame's fate
	Out           io.Writer
}

// Result summarises a replay.
type Result struct {
	Counters stats.Snapshot
	// Examples holds up to a few input frame references per direction and
	// drop reason.
	Examples map[example][]string
	// Written counts frames written per output.
	UpstreamFrames, DownstreamFrames, DropFrames int
	Tables                                       *table.Tables
}

type example struct {
	dir stats.Dir
	r   stats.Reason
}

type input struct {
	name string
	dir  stats.Dir
	r    interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	f    *os.File
	next []byte
	ts   time.Time
	no   int // frame number of next (1-based, as Wireshark counts)
	done bool
}

func openInput(name string, dir stats.Dir) (*input, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	in := &input{name: name, dir: dir, f: f}
	br := bufio.NewReader(f)
	magic, err := br.Peek(4)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: not a capture file: %w", name, err)
	}
	var lt layers.LinkType
	if string(magic) == "\x0a\x0d\x0d\x0a" {
		r, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		in.r, lt = r, r.LinkType()
	} else {
		r, err := pcapgo.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		in.r, lt = r, r.LinkType()
	}
	if lt != layers.LinkTypeEthernet {
		f.Close()
		return nil, fmt.Errorf("%s: link type %v; only Ethernet captures can be replayed (capture on the interface, not on 'any')", name, lt)
	}
	return in, in.advance()
}

func (in *input) advance() error {
	data, ci, err := in.r.ReadPacketData()
	if errors.Is(err, io.EOF) {
		in.done = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s frame %d: %w", in.name, in.no+1, err)
	}
	in.next, in.ts = data, ci.Timestamp
	in.no++
	return nil
}

type output struct {
	f  *os.File
	bw *bufio.Writer
	w  *pcapgo.Writer
	ng *pcapgo.NgWriter
	// ifaces maps dir*NumReasons+reason to a pcapng interface index.
	ifaces map[int]int
	n      int
}

func createOutput(name string, perReason bool) (*output, error) {
	f, err := os.Create(name)
	if err != nil {
		return nil, err
	}
	o := &output{f: f, bw: bufio.NewWriter(f)}
	if perReason && strings.HasSuffix(name, ".pcapng") {
		o.ng, err = pcapgo.NewNgWriterInterface(o.bw, pcapgo.NgInterface{
			Name: "drop", Description: "tunterm drops (interface name = direction:reason)",
			LinkType: layers.LinkTypeEthernet, SnapLength: 65535, TimestampResolution: 9,
		}, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "tunterm replay"}})
		o.ifaces = map[int]int{}
	} else {
		o.w = pcapgo.NewWriterNanos(o.bw)
		err = o.w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return o, nil
}

func (o *output) write(b []byte, ts int64, dir stats.Dir, r stats.Reason) error {
	ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, ts), CaptureLength: len(b), Length: len(b)}
	o.n++
	if o.ng == nil {
		return o.w.WritePacket(ci, b)
	}
	k := int(dir)*int(stats.NumReasons) + int(r)
	id, ok := o.ifaces[k]
	if !ok {
		var err error
		id, err = o.ng.AddInterface(pcapgo.NgInterface{
			Name: dir.String() + ":" + r.String(), Description: r.Help(),
			LinkType: layers.LinkTypeEthernet, SnapLength: 65535, TimestampResolution: 9,
		})
		if err != nil {
			return err
		}
		o.ifaces[k] = id
	}
	ci.InterfaceIndex = id
	return o.ng.WritePacket(ci, b)
}

func (o *output) close() error {
	if o == nil {
		return nil
	}
	var err error
	if o.ng != nil {
		err = o.ng.Flush()
	}
	if e := o.bw.Flush(); err == nil {
		err = e
	}
	if e := o.f.Close(); err == nil {
		err = e
	}
	return err
}

// Run replays the inputs through one worker and writes the outputs.
func Run(o Options) (*Result, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.DownstreamIn == "" && o.UpstreamIn == "" {
		return nil, errors.New("replay: give --downstream-in and/or --upstream-in")
	}
	store := &table.Store{}
	fdb := bridge.New(o.Config.Bridge.FDBSize)
	prog := programmer.New(store, fdb)
	t, err := prog.Apply(o.Config)
	if err != nil {
		return nil, err
	}
	var ins []*input
	defer func() {
		for _, in := range ins {
			in.f.Close()
		}
	}()
	for _, x := range []struct {
		name string
		dir  stats.Dir
	}{{o.DownstreamIn, stats.FromDown}, {o.UpstreamIn, stats.FromUp}} {
		if x.name == "" {
			continue
		}
		in, err := openInput(x.name, x.dir)
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		ins = append(ins, in)
	}
	var outUp, outDown, outDrops *output
	var werr error
	for _, x := range []struct {
		name string
		dst  **output
		per  bool
	}{{o.UpstreamOut, &outUp, false}, {o.DownstreamOut, &outDown, false}, {o.Drops, &outDrops, true}} {
		if x.name == "" {
			continue
		}
		if *x.dst, err = createOutput(x.name, x.per); err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
	}

	res := &Result{Examples: map[example][]string{}, Tables: t}
	pool := port.NewPool(8192)
	down, up := mem.New("downstream", pool), mem.New("upstream", pool)
	var now time.Time
	up.Sink = func(b []byte, ts int64) {
		res.UpstreamFrames++
		if outUp != nil && werr == nil {
			werr = outUp.write(b, ts, 0, 0)
		}
	}
	down.Sink = func(b []byte, ts int64) {
		res.DownstreamFrames++
		if outDown != nil && werr == nil {
			werr = outDown.write(b, ts, 0, 0)
		}
	}
	w := pipeline.NewWorker(pipeline.Config{Tables: store, FDB: fdb, Pool: pool, Down: down, Up: up,
		Clock: func() time.Time { return now }})

	// refs[i] names the input frame at batch index i.
	var refs [port.BatchSize]string
	w.Taps.Set(func(dir stats.Dir, b []byte, ts int64, r stats.Reason) {
		res.DropFrames++
		if outDrops != nil && werr == nil {
			werr = outDrops.write(b, ts, dir, r)
		}
	}, nil, func(dir stats.Dir, i int, r stats.Reason, outs int) {
		if k := (example{dir, r}); r != stats.OK && len(res.Examples[k]) < 5 {
			res.Examples[k] = append(res.Examples[k], refs[i])
		}
		if o.Verbose {
			if r == stats.OK {
				fmt.Fprintf(o.Out, "%-28s -> forwarded (%d frame%s)\n", refs[i], outs, plural(outs))
			} else if r.IsPunt() {
				fmt.Fprintf(o.Out, "%-28s -> to host: %s (%s)\n", refs[i], r, r.Help())
			} else {
				fmt.Fprintf(o.Out, "%-28s -> dropped: %s (%s)\n", refs[i], r, r.Help())
			}
		}
	})

	var lastAge int64
	var batch port.Batch
	for {
		// Pick the input with the earliest next frame (stable: downstream
		// first on ties), then take frames from it while it stays earliest.
		var cur *input
		for _, in := range ins {
			if !in.done && (cur == nil || in.ts.Before(cur.ts)) {
				cur = in
			}
		}
		if cur == nil {
			break
		}
		src := down
		if cur.dir == stats.FromUp {
			src = up
		}
		// The worker's clock is the batch's first timestamp, and a batch
		// stays within one second of capture time, so the FDB ages exactly
		// as it did in the field: age before processing a new second.
		now = cur.ts
		if s := now.Unix(); s > lastAge {
			prog.Age(uint32(s))
			lastAge = s
		}
		n := 0
		for n < port.BatchSize && !cur.done {
			if other := earliestOther(ins, cur); other != nil && other.ts.Before(cur.ts) {
				break
			}
			if cur.ts.Unix() != now.Unix() {
				break
			}
			if len(cur.next) > port.MaxFrame {
				return nil, fmt.Errorf("replay: %s frame %d is %d bytes; frames above %d bytes (jumbo) are not supported",
					cur.name, cur.no, len(cur.next), port.MaxFrame)
			}
			refs[n] = fmt.Sprintf("%s #%d", shortName(cur.name), cur.no)
			src.Inject(cur.next, cur.ts.UnixNano())
			n++
			if err := cur.advance(); err != nil {
				return nil, fmt.Errorf("replay: %w", err)
			}
		}
		src.Receive(&batch)
		w.Process(cur.dir, &batch)
		if werr != nil {
			return nil, fmt.Errorf("replay: writing output: %w", werr)
		}
	}
	for _, x := range []*output{outUp, outDown, outDrops} {
		if err := x.close(); err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
	}
	if pool.InUse() != 0 {
		return nil, fmt.Errorf("replay: internal error: %d frame buffers leaked", pool.InUse())
	}
	res.Counters = stats.Sum(&w.Counters)
	return res, nil
}

func earliestOther(ins []*input, cur *input) *input {
	var e *input
	for _, in := range ins {
		if in != cur && !in.done && (e == nil || in.ts.Before(e.ts)) {
			e = in
		}
	}
	return e
}

func shortName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Print writes a human-readable summary of res.
func (res *Result) Print(w io.Writer) {
	c := &res.Counters
	fmt.Fprintf(w, "frames in:   downstream %d (%d bytes), upstream %d (%d bytes)\n",
		c.RxPkts[stats.FromDown], c.RxBytes[stats.FromDown], c.RxPkts[stats.FromUp], c.RxBytes[stats.FromUp])
	fmt.Fprintf(w, "frames out:  upstream %d (%d bytes), downstream %d (%d bytes)\n",
		c.TxPkts[stats.FromDown], c.TxBytes[stats.FromDown], c.TxPkts[stats.FromUp], c.TxBytes[stats.FromUp])
	fmt.Fprintf(w, "bridge:      %d MACs learned, %d moves, %d flood copies, %d not learned (FDB full)\n",
		c.Learned, c.Moves, c.Flooded, c.FDBFull)
	type row struct {
		dir stats.Dir
		r   stats.Reason
		n   uint64
	}
	var rows []row
	for d := range stats.NumDirs {
		for r := range stats.NumReasons {
			if n := c.Drops[d][r]; n > 0 {
				rows = append(rows, row{d, r, n})
			}
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].n > rows[j].n })
	if len(rows) == 0 {
		fmt.Fprintln(w, "drops:       none")
		return
	}
	fmt.Fprintln(w, "not forwarded:")
	for _, x := range rows {
		kind := "drop"
		if x.r.IsPunt() {
			kind = "host"
		}
		fmt.Fprintf(w, "  %-4s %-10s %-20s %6d  %s", kind, x.dir, x.r, x.n, x.r.Help())
		if ex := res.Examples[example{x.dir, x.r}]; len(ex) > 0 {
			fmt.Fprintf(w, " (e.g. %s)", strings.Join(ex, ", "))
		}
		fmt.Fprintln(w)
	}
}
