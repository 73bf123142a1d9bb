// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * xfwd_sink: counts frames and bytes per CPU on the receiving side of a benchmark, then
 * drops them (fast sink) or passes them to the kernel (tests that also want the stack to
 * see them). With `udp_port` set, only IPv4/UDP to that port is counted and acted on;
 * everything else is passed untouched, so ARP and the rest of the host keep working.
 *
 * With `flows` set, each counted frame's payload (written by gen.bpf.c: sequence number and
 * send time, big-endian, right after the UDP header) is checked: per flow (seq % flows) the
 * sequence numbers are tracked for reordering and duplicates against a 64-frame bitmap, and
 * the one-way latency (bpf_ktime_get_ns() now minus the send time; same clock, same host) is
 * recorded into a log-linear histogram that userspace reads into an HdrHistogram. Loss is
 * what the generator sent minus the unique frames received, computed by userspace.
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

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XFWD_SINK_MAX_FLOWS);
	__type(key, __u32);
	__type(value, struct xfwd_sink_flow);
} sink_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XFWD_LAT_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} sink_lat SEC(".maps");

/* floor(log2(v)) for v > 0. */
static __always_inline __u32 ilog2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

/* Histogram bucket of a latency in ns (see XFWD_LAT_BUCKETS). */
static __always_inline __u32 lat_bucket(__u64 v)
{
	__u32 shift;

	if (v < (1ULL << XFWD_LAT_SUB_BITS))
		return (__u32)v;
	shift = ilog2_u64(v) - XFWD_LAT_SUB_BITS;
	if (shift > XFWD_LAT_MAX_SHIFT)
		return XFWD_LAT_BUCKETS - 1;
	return (shift << XFWD_LAT_SUB_BITS) + (__u32)(v >> shift);
}

/* Sequence tracking of one frame of a flow (per-flow sequence number fseq). */
static __always_inline void track(struct xfwd_sink_flow *f, struct xfwd_sink_stats *st, __u64 fseq)
{
	__u64 d;

	f->packets += 1;
	if (fseq >= f->next_seq) {
		d = fseq + 1 - f->next_seq;
		f->window = (f->next_seq == 0 || d >= XFWD_SINK_WINDOW) ? 1 : (f->window << d) | 1;
		f->next_seq = fseq + 1;
		return;
	}
	d = f->next_seq - 1 - fseq;
	if (d >= XFWD_SINK_WINDOW) {
		f->too_late += 1;
		st->too_late += 1;
	} else if (f->window & (1ULL << d)) {
		f->duplicates += 1;
		st->duplicates += 1;
	} else {
		f->window |= 1ULL << d;
		f->reordered += 1;
		st->reordered += 1;
	}
}

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

/* Sequence and latency of a counted frame carrying the generator's payload. */
static __always_inline void check_payload(void *data, void *data_end,
					  const struct xfwd_sink_config *cfg,
					  struct xfwd_sink_stats *st)
{
	__u64 *payload = data + XFWD_GEN_HDR_LEN;
	struct xfwd_sink_flow *f;
	__u64 seq, sent, now, *bucket;
	__u32 flow, b;

	/* The generator writes options-less IPv4: the payload sits at a fixed offset. */
	if ((void *)(payload + 2) > data_end)
		return;
	seq = bpf_be64_to_cpu(payload[0]);
	sent = bpf_be64_to_cpu(payload[1]);
	flow = (__u32)(seq % cfg->flows);
	f = bpf_map_lookup_elem(&sink_flows, &flow);
	if (!f) {
		st->bad_flow += 1;
		return;
	}
	track(f, st, seq / cfg->flows);
	if (!sent)
		return;
	now = bpf_ktime_get_ns();
	if (now < sent) {
		st->bad_stamp += 1;
		return;
	}
	b = lat_bucket(now - sent);
	bucket = bpf_map_lookup_elem(&sink_lat, &b);
	if (bucket)
		*bucket += 1;
	st->stamped += 1;
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
	if (cfg->flows)
		check_payload(data, data_end, cfg, st);
	return cfg->action == XDP_PASS ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
