// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * xfwd_steer: the XDP program on every interface xfwd drives.
 *
 * Transit IPv4 goes to the AF_XDP socket of (interface slot, rx queue); everything the
 * kernel must see (ARP, non-IPv4, the router's own and broadcast/multicast traffic) is
 * passed. The redirect falls back to XDP_PASS when the queue has no socket, so traffic
 * keeps flowing through the kernel while xfwd is down.
 *
 * Kernel uAPI followed: include/uapi/linux/bpf.h (struct xdp_md, bpf_redirect_map with the
 * action in the low bits of flags as the lookup-miss fallback, kernel >= 5.3),
 * net/xdp/xskmap.c. Decision order (first match wins):
 *
 *   ifindex not in `ifaces`                  -> PASS  unmanaged
 *   [frags variant] multi-buffer frame       -> PASS  frags
 *   < 14 bytes                               -> PASS  runt (the kernel drops it)
 *   ethertype ARP                            -> PASS  arp
 *   ethertype 802.1Q / 802.1ad               -> PASS  vlan
 *   ethertype not IPv4                       -> PASS  not_ipv4
 *   IPv4 dst (if 20 header bytes are there):
 *     224.0.0.0/4 or 255.255.255.255         -> PASS  mcast_bcast
 *     in `local_addrs`                       -> PASS  local
 *   longer than the socket's frame           -> PASS  too_big
 *   rx queue >= 64 or slot >= 64             -> PASS  queue_range
 *   bpf_redirect_map(xsks, slot*64+queue)    -> REDIRECT, or PASS no_socket
 *
 * IPv4 too short to hold a header is redirected on purpose: the dataplane's ip4_input
 * drops it under a named reason (the kernel would drop it silently).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xfwd_steer.h"

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XFWD_XSKS_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XFWD_MAX_IFACES);
	__type(key, __u32);
	__type(value, struct xfwd_iface);
} ifaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XFWD_MAX_LOCAL_ADDRS);
	__type(key, __be32);
	__type(value, __u8);
} local_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XFWD_VERDICT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline int verdict(enum xfwd_verdict why, int action)
{
	__u32 key = why;
	__u64 *count = bpf_map_lookup_elem(&stats, &key);

	/* Per-CPU slot: no other writer, a plain increment is exact. */
	if (count)
		*count += 1;
	return action;
}

static __always_inline int steer(struct xdp_md *ctx, const int frags_aware)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 ifindex = ctx->ingress_ifindex;
	const struct xfwd_iface *iface;
	struct ethhdr *eth = data;
	struct iphdr *iph;
	__u32 queue, slot;
	__u16 proto;
	long action;

	iface = bpf_map_lookup_elem(&ifaces, &ifindex);
	if (!iface)
		return verdict(XFWD_VERDICT_PASS_UNMANAGED, XDP_PASS);

	if (frags_aware && bpf_xdp_get_buff_len(ctx) != (__u64)(data_end - data))
		return verdict(XFWD_VERDICT_PASS_FRAGS, XDP_PASS);

	if ((void *)(eth + 1) > data_end)
		return verdict(XFWD_VERDICT_PASS_RUNT, XDP_PASS);

	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_ARP))
		return verdict(XFWD_VERDICT_PASS_ARP, XDP_PASS);
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD))
		return verdict(XFWD_VERDICT_PASS_VLAN, XDP_PASS);
	if (proto != bpf_htons(ETH_P_IP))
		return verdict(XFWD_VERDICT_PASS_NOT_IPV4, XDP_PASS);

	iph = (void *)(eth + 1);
	if ((void *)(iph + 1) <= data_end) {
		__be32 daddr = iph->daddr;

		if ((daddr & bpf_htonl(0xf0000000)) == bpf_htonl(0xe0000000) ||
		    daddr == bpf_htonl(0xffffffff))
			return verdict(XFWD_VERDICT_PASS_MCAST_BCAST, XDP_PASS);
		if (bpf_map_lookup_elem(&local_addrs, &daddr))
			return verdict(XFWD_VERDICT_PASS_LOCAL, XDP_PASS);
	}

	if (iface->max_frame_len && (__u64)(data_end - data) > iface->max_frame_len)
		return verdict(XFWD_VERDICT_PASS_TOO_BIG, XDP_PASS);

	queue = ctx->rx_queue_index;
	slot = iface->slot;
	if (queue >= XFWD_MAX_QUEUES || slot >= XFWD_MAX_IFACES)
		return verdict(XFWD_VERDICT_PASS_QUEUE_RANGE, XDP_PASS);

	action = bpf_redirect_map(&xsks, slot * XFWD_MAX_QUEUES + queue, XDP_PASS);
	if (action == XDP_REDIRECT)
		return verdict(XFWD_VERDICT_REDIRECT, XDP_REDIRECT);
	return verdict(XFWD_VERDICT_PASS_NO_SOCKET, XDP_PASS);
}

/* Single-buffer XDP: loads on kernel >= 5.10 (the loader's default). */
SEC("xdp")
int xfwd_steer(struct xdp_md *ctx)
{
	return steer(ctx, 0);
}

/*
 * Multi-buffer aware variant (kernel >= 5.18, BPF_F_XDP_HAS_FRAGS): lets drivers keep
 * jumbo MTUs with XDP attached; multi-buffer frames go to the kernel.
 */
SEC("xdp.frags")
int xfwd_steer_frags(struct xdp_md *ctx)
{
	return steer(ctx, 1);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
