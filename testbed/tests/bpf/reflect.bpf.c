// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only XDP programs for the testbed's checksum-offload test.
 *
 * xdp_reflect: sends every IPv4 frame back out of the interface it came in on (XDP_TX) with the
 * MAC addresses swapped and nothing else changed, so the sender sees exactly the bytes an XDP
 * program (or an AF_XDP socket in copy mode) receives. Everything else goes to the stack.
 *
 * xdp_pass: passes everything. On veth, frames sent with XDP_TX or XDP_REDIRECT are only
 * delivered when the receiving peer has an XDP program attached.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("xdp")
int xdp_reflect(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	unsigned char tmp[ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	__builtin_memcpy(tmp, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, tmp, ETH_ALEN);
	return XDP_TX;
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
