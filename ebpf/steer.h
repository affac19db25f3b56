/* SPDX-License-Identifier: (MIT OR GPL-2.0-only) */
/*
 * Shared by xdp_downstream.c and xdp_upstream.c: the verdict classes, the
 * maps both programs carry, and the one exit path that counts a verdict.
 *
 * enum steer_class is generated into Go by bpf2go (-type steer_class) and
 * mapped to steer.Class; the order here is the order of the per-CPU counter
 * array and is part of the Go API. Append new classes before
 * STEER_CLASS_MAX; never renumber.
 */
#ifndef TUNTERM_STEER_H
#define TUNTERM_STEER_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/*
 * Every frame is counted exactly once in one of the classes from
 * STEER_CLASS_ESP to STEER_CLASS_TRUNCATED. A frame the program steers to
 * AF_XDP is additionally counted once in STEER_CLASS_TO_XSK (a socket was in
 * the XSKMAP slot of its RX queue) or STEER_CLASS_XSK_MISSING (no socket:
 * bpf_redirect_map fell back to XDP_PASS and the kernel got the frame).
 */
enum steer_class {
	/* Steered to AF_XDP. */
	STEER_CLASS_ESP = 0,       /* IP proto 50 to a tunnel address */
	STEER_CLASS_ESP_UDP,       /* UDP/4500, non-zero first word (RFC 3948) */
	STEER_CLASS_L2TP_IP,       /* L2TPv3 over IP proto 115, session ID != 0 */
	STEER_CLASS_L2TP_UDP,      /* L2TPv3 over UDP/1701, T bit clear, version 3 */
	STEER_CLASS_FRAGMENT,      /* IPv4 non-first fragment to a tunnel address */
	STEER_CLASS_TRUNK,         /* upstream: any frame that is not link-local */

	/* Passed to the kernel. */
	STEER_CLASS_IKE,           /* UDP/500, or UDP/4500 with a zero non-ESP marker */
	STEER_CLASS_NAT_KEEPALIVE, /* UDP/4500 with the 1-byte 0xFF body (RFC 3948 2.2) */
	STEER_CLASS_L2TP_CONTROL,  /* proto 115 session ID 0; UDP/1701 with T bit set */
	STEER_CLASS_NOT_OURS,      /* IP, destination is not a configured tunnel address */
	STEER_CLASS_IPV6_EXT,      /* IPv6 to a tunnel address behind an extension header */
	STEER_CLASS_OTHER_PASS,    /* ARP, ICMP, TCP (RadSec), other UDP, L2TPv2, bad IP... */
	STEER_CLASS_LINK_LOCAL,    /* upstream: IEEE 802.1D 01:80:C2:00:00:0X (STP, LACP, LLDP) */
	STEER_CLASS_TRUNCATED,     /* the frame ended inside a header the program had to read */

	/* Outcome of a redirect, counted in addition to the class above. */
	STEER_CLASS_TO_XSK,        /* bpf_redirect_map found a socket: XDP_REDIRECT */
	STEER_CLASS_XSK_MISSING,   /* no socket on the RX queue: fell back to XDP_PASS */

	STEER_CLASS_MAX,
};

/* Slots in the XSKMAP, indexed by RX queue. Mirrors steer.MaxQueues. */
#define STEER_MAX_QUEUES 256

/* AF_XDP sockets, one per RX queue, written by the Go loader (RegisterXSK). */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, STEER_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* Per-CPU verdict counters indexed by enum steer_class; Go sums the CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STEER_CLASS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} steer_counters SEC(".maps");

static __always_inline void steer_count(__u32 cls)
{
	__u64 *n = bpf_map_lookup_elem(&steer_counters, &cls);

	/* Per-CPU slot and XDP runs with preemption off: no atomics needed. */
	if (n)
		*n += 1;
}

/* Counts cls and hands the frame to the kernel. */
static __always_inline int steer_pass(__u32 cls)
{
	steer_count(cls);
	return XDP_PASS;
}

/*
 * Counts cls and redirects the frame to the AF_XDP socket of its RX queue;
 * a queue without a socket falls back to XDP_PASS.
 *
 * Deliberately not inlined: as a real BPF function its BTF prototype carries
 * enum steer_class into the object, which is what lets bpf2go generate the
 * Go type without a dummy global (and the .bss map that would come with it).
 */
static __noinline int steer_to_xsk(struct xdp_md *ctx, enum steer_class cls)
{
	long act = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);

	steer_count(cls);
	steer_count(act == XDP_REDIRECT ? STEER_CLASS_TO_XSK : STEER_CLASS_XSK_MISSING);
	return (int)act;
}

#endif /* TUNTERM_STEER_H */
