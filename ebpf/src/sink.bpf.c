// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * xfwd_sink: counts frames and bytes per CPU on the receiving side of a benchmark, then
 * drops them (fast sink) or passes them to the kernel (tests that also want the stack to
 * see them). With `udp_port` set, only IPv4/UDP to that port is counted and acted on;
 * everything else is passed untouched, so ARP and the rest of the host keep working.
 *
 * An XDP program on the receiving veth is also what lets XDP_TX/redirect into a veth
 * deliver at all (drivers/net/veth.c veth_xdp_xmit needs the peer's XDP rx path).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xfwd_bench.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xfwd_sink_config);
} sink_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xfwd_sink_stats);
} sink_stats SEC(".maps");

/* Whether the frame is IPv4/UDP (first fragment or unfragmented) to `port`. */
static __always_inline int is_udp_to(void *data, void *data_end, __u16 port)
{
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct udphdr *udp;
	__u32 ihl;

	if ((void *)(iph + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	if (iph->protocol != IPPROTO_UDP || (iph->frag_off & bpf_htons(0x1fff)))
		return 0;
	ihl = iph->ihl * 4;
	if (ihl < sizeof(*iph))
		return 0;
	udp = (void *)iph + ihl;
	if ((void *)(udp + 1) > data_end)
		return 0;
	return udp->dest == bpf_htons(port);
}

SEC("xdp")
int xfwd_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	const struct xfwd_sink_config *cfg;
	struct xfwd_sink_stats *st;
	__u32 key = 0;

	cfg = bpf_map_lookup_elem(&sink_cfg, &key);
	st = bpf_map_lookup_elem(&sink_stats, &key);
	if (!cfg || !st)
		return XDP_PASS;
	if (cfg->udp_port && !is_udp_to(data, data_end, cfg->udp_port))
		return XDP_PASS;

	st->packets += 1;
	st->bytes += data_end - data;
	return cfg->action == XDP_PASS ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
