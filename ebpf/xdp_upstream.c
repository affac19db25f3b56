// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
//go:build ignore

/*
 * xdp_upstream: attached to the corporate VLAN trunk (trusted, pure L2).
 *
 * Every frame goes to the AF_XDP socket of its RX queue, except frames to
 * the IEEE 802.1D reserved link-local group 01:80:C2:00:00:00-0F (STP, LACP,
 * LLDP, 802.1X...), which bridges never forward and the kernel may answer.
 */

#include <linux/if_ether.h>

#include "steer.h"

char __license[] SEC("license") = "Dual MIT/GPL";

SEC("xdp")
int xdp_upstream(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return steer_pass(STEER_CLASS_TRUNCATED);

	const __u8 *d = eth->h_dest;

	if (d[0] == 0x01 && d[1] == 0x80 && d[2] == 0xc2 && d[3] == 0x00 &&
	    d[4] == 0x00 && (d[5] & 0xf0) == 0x00)
		return steer_pass(STEER_CLASS_LINK_LOCAL);

	return steer_to_xsk(ctx, STEER_CLASS_TRUNK);
}
