// Package dataplane is tunterm's packet path. It holds no code itself; this
// file draws the stage graph and says who owns what.
//
// # Stages (dataplane/pipeline, one Worker per core, run to completion)
//
//	AP -> corporate (Worker.fromDown), frame received on the downstream port:
//
//	  RX(down) ─ Eth ─ IPv4|IPv6 (dst = tunnel address; fragments dropped)
//	     ├─ UDP 500, UDP 4500 + zero marker, NAT keepalive ──────────► punt_ike
//	     ├─ L2TP control (IP 115 session 0, UDP 1701 T bit) ─────────► punt_l2tp_control
//	     ├─ anything else (ARP, ICMP, ...) ──────────────────────────► punt_host
//	     ├─ ESP | UDP 4500 ESP ─ SA by SPI ─ source = SA peer ─ esp.SA.Open
//	     │     (replay check ─ ICV/tag ─ decrypt in place ─ replay update ─ padding)
//	     │     ─ tunnel mode: inner IP addressed to us
//	     │     └─► L2TPv3 (IP 115 | UDP 1701)
//	     └─ plaintext L2TPv3 (only for tunnels with ipsec: false)
//	  L2TPv3 ─ session by local session ID ─ cookie (constant time) ─ source =
//	     session peer ─ arrived through that peer's SA ─ strip sublayer
//	  bridge ─ VLAN (tag or native) admitted by the tunnel ─ learn (VLAN, src MAC)
//	     with MAC-move protection and the MAC limit ─ look up (VLAN, dst MAC)
//	     ├─ upstream: tag for the trunk (or untag on an access port) ─► TX(up)
//	     ├─ another session: only with bridge.hairpin ─► encapsulate
//	     └─ unknown / broadcast / multicast: flood ─► TX(up) [+ sessions if hairpin]
//
//	corporate -> AP (Worker.fromUp), frame received on the upstream port:
//
//	  RX(up) ─ Eth ─ link-local control ─► punt_link_local
//	     ─ VLAN (trunk tag, or the access VLAN) carried by some tunnel
//	     ─ learn (VLAN, src MAC) -> upstream ─ look up (VLAN, dst MAC)
//	     ├─ a session ─► encapsulate
//	     └─ unknown / broadcast / multicast: one copy per session of the VLAN
//	  encapsulate (encap.go): VLAN admitted ─ next hop known ─ size checked against
//	     the tunnel MTU (all before the frame is touched) ─ pseudowire tagging ─
//	     L2TPv3 header (+UDP 1701) ─ tunnel mode inner IP ─ esp.SA.Seal ─ UDP 4500
//	     (NAT-T) ─ outer IP ─ Ethernet to the next hop ─► TX(down)
//
// A batch from the APs' side runs in two passes (Worker.processDown). Before
// the first, the state every ESP frame's decryption will read (SA, key
// schedule, replay word, the peer's likely session) is read for the whole
// batch (Worker.prefetchSA). The first pass takes every frame up to its
// inner Ethernet frame; then the FDB slots of all inner source and
// destination MACs are read in one loop; the second pass bridges and
// accounts for every frame, in order (what an authenticated frame teaches
// about its peer — NAT port, next-hop MAC — is applied in that second pass,
// frame by frame, so the output is what one pass would give). A batch from
// the corporate side reads the FDB slots of its destinations before it is
// processed. With thousands of tunnels and clients these are cache misses;
// read together they overlap. None of the read-ahead decides anything.
//
// Every frame ends in exactly one of: a port's transmit batch, or the pool
// with a stats.Reason counted (drops and punts alike). Worker.Process calls the
// drop/TX/trace taps when they are set; they cost one atomic load per batch.
//
// # Ownership and concurrency
//
//   - table.Tables (SAs by SPI, sessions by ID, flood lists, tunnels, local
//     addresses): immutable snapshot written only by control/programmer and
//     published with one atomic store; workers Load it once per batch. nil
//     means not programmed yet: every frame is dropped with no_table.
//   - Runtime state behind stable pointers, carried across snapshots:
//     esp.State (replay window, sequence number, MAC/cipher scratch) is written
//     only by the worker that owns the SA; table.PeerState (learned next hop,
//     NAT port) and table.SessionState (counters, MAC count) are atomics.
//     With one worker (offline replay, today's daemon shape) ownership is
//     trivial; with several, the dispatcher of issue #3 steers each SA's
//     packets to its owner over SPSC rings so per-SA order and single-writer
//     state hold.
//   - bridge.FDB: shared by all workers; lookups and refreshes are lock-free,
//     a new (VLAN, MAC) takes one striped mutex; aging runs from the control
//     side (programmer.Age).
//   - port.Pool, port.Batch, the ports and stats.Counters: owned by one worker.
//     Counters are summed in a local stats.Batch and flushed once per batch;
//     readers (replay summary, future Prometheus collector) sum all workers.
//
// # Packages
//
//	hdr       byte-slice header views (no dataplane imports)
//	esp       RFC 4303 ESP transform, anti-replay, ESN, lifetimes
//	bridge    FDB and the learning policy
//	table     snapshot types and the atomic store
//	port      frames, batches, pool, the Port interface; port/mem in-memory port
//	pipeline  the worker: both directions, taps
//	stats     drop reasons and per-worker counters
package dataplane
