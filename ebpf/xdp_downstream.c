// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
//go:build ignore

/*
 * xdp_downstream: attached to the NIC facing the access points (untrusted).
 *
 * The kernel owns the tunnel IP addresses and runs the control protocols on
 * ordinary sockets (IKE, L2TP control, RadSec, ARP/ND, ICMP). This program
 * steers only dataplane traffic addressed to a tunnel address to the AF_XDP
 * socket of the frame's RX queue and XDP_PASSes everything else:
 *
 *   ESP (IP proto 50)                                    -> AF_XDP
 *   UDP/4500, first payload word != 0 (RFC 3948 ESP)     -> AF_XDP
 *   UDP/4500, first payload word == 0 (non-ESP marker)   -> kernel (IKE)
 *   UDP/4500, 1-byte 0xFF body (NAT-keepalive)           -> kernel
 *   UDP/500                                              -> kernel (IKE)
 *   L2TPv3/IP (proto 115), session ID != 0               -> AF_XDP
 *   L2TPv3/IP, session ID 0 (control)                    -> kernel
 *   UDP/1701 L2TP, T bit clear and version 3 (data)      -> AF_XDP
 *   UDP/1701 L2TP, T bit set (control)                   -> kernel
 *   IPv4 non-first fragment (offset != 0), any protocol  -> AF_XDP
 *   IPv6 with an extension header, anything else         -> kernel
 *
 * Parsing: Ethernet, at most one 802.1Q tag, then IPv4 (any IHL) or the
 * fixed IPv6 header. Every read is preceded by a check against data_end; a
 * frame that ends inside a header the decision needs is counted truncated
 * and passed. No loops.
 */

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>

#include "steer.h"

char __license[] SEC("license") = "Dual MIT/GPL";

#define UDP_PORT_IKE       500
#define UDP_PORT_IKE_NATT  4500 /* RFC 3948 */
#define UDP_PORT_L2TP      1701 /* RFC 3931 4.1.2.1 */
/* IPPROTO_L2TP (115, RFC 3931 4.1.1) comes from linux/in.h. */

#define IPV4_FRAG_OFFSET   0x1fff /* fragment offset field, host order */

/* RFC 3931 4.1.2.1: T|L|x|x|S|x|x|x|x|x|x|x|  Ver  | Reserved */
#define L2TP_FLAG_T        0x8000
#define L2TP_VERSION_MASK  0x000f
#define L2TP_VERSION_3     3

/*
 * Tunnel addresses per family: steer.MaxAddrs, twice over, because SetAddrs
 * inserts the new set before deleting what left it.
 */
#define STEER_MAX_ADDRS    16
#define STEER_ADDR_SLOTS   (2 * STEER_MAX_ADDRS)

struct vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

struct in6_key {
	__u8 addr[16];
};

/* IPv4 tunnel addresses, key in network byte order. Empty: nothing is ours. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STEER_ADDR_SLOTS);
	__type(key, __be32);
	__type(value, __u8);
} tunnel_v4 SEC(".maps");

/* IPv6 tunnel addresses. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, STEER_ADDR_SLOTS);
	__type(key, struct in6_key);
	__type(value, __u8);
} tunnel_v6 SEC(".maps");

/*
 * Classifies the transport header of a packet addressed to a tunnel address.
 * l4 points just past the IP header; nothing beyond it has been checked.
 */
static __always_inline int classify_l4(struct xdp_md *ctx, __u8 proto,
				       void *l4, void *data_end)
{
	if (proto == IPPROTO_ESP)
		return steer_to_xsk(ctx, STEER_CLASS_ESP);

	if (proto == IPPROTO_L2TP) {
		/* RFC 3931 4.1.1.1: a 32-bit session ID, 0 marks control. */
		__be32 *session = l4;

		if ((void *)(session + 1) > data_end)
			return steer_pass(STEER_CLASS_TRUNCATED);
		if (*session == 0)
			return steer_pass(STEER_CLASS_L2TP_CONTROL);
		return steer_to_xsk(ctx, STEER_CLASS_L2TP_IP);
	}

	if (proto != IPPROTO_UDP)
		return steer_pass(STEER_CLASS_OTHER_PASS); /* TCP (RadSec), ICMP... */

	struct udphdr *udp = l4;
	__u8 *body = (void *)(udp + 1);

	if ((void *)body > data_end)
		return steer_pass(STEER_CLASS_TRUNCATED);

	/*
	 * The UDP length, not data_end, says how long the body is: a short
	 * datagram arrives padded to the 60-byte Ethernet minimum, and the
	 * padding must not be read as a non-ESP marker.
	 */
	__u16 ulen = bpf_ntohs(udp->len);

	switch (bpf_ntohs(udp->dest)) {
	case UDP_PORT_IKE:
		return steer_pass(STEER_CLASS_IKE);

	case UDP_PORT_IKE_NATT:
		if (ulen == sizeof(*udp) + 1) {
			if ((void *)(body + 1) > data_end)
				return steer_pass(STEER_CLASS_TRUNCATED);
			if (body[0] == 0xff)
				return steer_pass(STEER_CLASS_NAT_KEEPALIVE);
		}
		if (ulen < sizeof(*udp) + 4) /* neither ESP nor IKE: the kernel drops it */
			return steer_pass(STEER_CLASS_OTHER_PASS);
		if ((void *)(body + 4) > data_end)
			return steer_pass(STEER_CLASS_TRUNCATED);
		/* RFC 3948 2.2: an SPI is never 0; 4 zero octets mark IKE. */
		if ((body[0] | body[1] | body[2] | body[3]) == 0)
			return steer_pass(STEER_CLASS_IKE);
		return steer_to_xsk(ctx, STEER_CLASS_ESP_UDP);

	case UDP_PORT_L2TP: {
		if (ulen < sizeof(*udp) + 2)
			return steer_pass(STEER_CLASS_OTHER_PASS);
		if ((void *)(body + 2) > data_end)
			return steer_pass(STEER_CLASS_TRUNCATED);
		__u16 flags = ((__u16)body[0] << 8) | body[1];

		if (flags & L2TP_FLAG_T)
			return steer_pass(STEER_CLASS_L2TP_CONTROL);
		if ((flags & L2TP_VERSION_MASK) != L2TP_VERSION_3)
			return steer_pass(STEER_CLASS_OTHER_PASS); /* L2TPv2 data */
		return steer_to_xsk(ctx, STEER_CLASS_L2TP_UDP);
	}

	default:
		return steer_pass(STEER_CLASS_OTHER_PASS);
	}
}

static __always_inline int classify_ipv4(struct xdp_md *ctx, void *l3, void *data_end)
{
	struct iphdr *ip = l3;

	if ((void *)(ip + 1) > data_end)
		return steer_pass(STEER_CLASS_TRUNCATED);
	if (ip->version != 4 || ip->ihl < 5)
		return steer_pass(STEER_CLASS_OTHER_PASS); /* malformed: the kernel drops it */

	__be32 daddr = ip->daddr;

	if (!bpf_map_lookup_elem(&tunnel_v4, &daddr))
		return steer_pass(STEER_CLASS_NOT_OURS);

	/* Non-first fragments carry no transport header: the dataplane counts them. */
	if (ip->frag_off & bpf_htons(IPV4_FRAG_OFFSET))
		return steer_to_xsk(ctx, STEER_CLASS_FRAGMENT);

	/* ihl is 4 bits: the verifier knows the offset is at most 60. */
	void *l4 = (void *)ip + ip->ihl * 4;

	return classify_l4(ctx, ip->protocol, l4, data_end);
}

static __always_inline int classify_ipv6(struct xdp_md *ctx, void *l3, void *data_end)
{
	struct ipv6hdr *ip6 = l3;

	if ((void *)(ip6 + 1) > data_end)
		return steer_pass(STEER_CLASS_TRUNCATED);
	if (ip6->version != 6)
		return steer_pass(STEER_CLASS_OTHER_PASS);

	struct in6_key daddr;

	__builtin_memcpy(daddr.addr, &ip6->daddr, sizeof(daddr.addr));
	if (!bpf_map_lookup_elem(&tunnel_v6, &daddr))
		return steer_pass(STEER_CLASS_NOT_OURS);

	/* RFC 8200 4 and the IANA extension header registry; ESP (50) is the payload we want. */
	switch (ip6->nexthdr) {
	case IPPROTO_HOPOPTS:   /* 0 */
	case IPPROTO_ROUTING:   /* 43 */
	case IPPROTO_FRAGMENT:  /* 44 */
	case IPPROTO_AH:        /* 51 */
	case IPPROTO_DSTOPTS:   /* 60 */
	case 135:               /* Mobility */
	case 139:               /* HIP */
	case 140:               /* Shim6 */
	case 253:               /* experimental */
	case 254:               /* experimental */
		return steer_pass(STEER_CLASS_IPV6_EXT);
	}

	return classify_l4(ctx, ip6->nexthdr, (void *)(ip6 + 1), data_end);
}

SEC("xdp")
int xdp_downstream(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return steer_pass(STEER_CLASS_TRUNCATED);

	__be16 proto = eth->h_proto;
	void *l3 = eth + 1;

	if (proto == bpf_htons(ETH_P_8021Q)) {
		struct vlan_hdr *vlan = l3;

		if ((void *)(vlan + 1) > data_end)
			return steer_pass(STEER_CLASS_TRUNCATED);
		proto = vlan->encapsulated_proto;
		l3 = vlan + 1;
	}

	if (proto == bpf_htons(ETH_P_IP))
		return classify_ipv4(ctx, l3, data_end);
	if (proto == bpf_htons(ETH_P_IPV6))
		return classify_ipv6(ctx, l3, data_end);
	return steer_pass(STEER_CLASS_OTHER_PASS); /* ARP, LLDP, a second tag... */
}
