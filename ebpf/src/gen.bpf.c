// SPDX-License-Identifier: (GPL-2.0 OR MIT)
/*
 * xfwd_gen: a UDP packet generator run by BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES
 * (kernel >= 5.18; net/bpf/test_run.c bpf_test_run_xdp_live). Every frame returns XDP_TX,
 * which the live-frames runner turns into a redirect out of ctx_in's ingress_ifindex.
 *
 * The runner recycles its page_pool pages with whatever the downstream path wrote into
 * them, so every frame is rebuilt here: the 42-byte Ethernet/IPv4/UDP header from the
 * template in the `gen` map (a map, not a `volatile const`, which clang folded to zeros),
 * then per frame: IPv4 total length, id (low 16 bits of the sequence number) and header
 * checksum (RFC 791/1071), UDP length, source port (flow = seq % flows) and checksum 0
 * (RFC 768: none), and the payload: sequence number and send time (bpf_ktime_get_ns(), on
 * one frame in `timestamp_every`, 0 on the others), big-endian.
 *
 * One frame per program run, one run at a time (the Rust wrapper's `run` takes
 * `&mut self`, and the runner keeps the program on one CPU), so the `gen` counters are
 * plain increments.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xfwd_bench.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xfwd_gen);
} gen SEC(".maps");

/* RFC 1071 checksum of an option-less IPv4 header (the check field must be 0). */
static __always_inline __u16 ip4_header_csum(const struct iphdr *iph)
{
	const __u16 *word = (const __u16 *)iph;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*iph) / 2); i++)
		sum += word[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

SEC("xdp")
int xfwd_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *iph = data + sizeof(struct ethhdr);
	struct udphdr *udp = (void *)(iph + 1);
	__u64 *word = data;
	struct xfwd_gen *g;
	__u32 key = 0;
	__u64 len, seq, stamp;
	__u16 flow;

	g = bpf_map_lookup_elem(&gen, &key);
	if (!g)
		return XDP_DROP;
	if (data + XFWD_GEN_MIN_FRAME > data_end) {
		g->errors += 1;
		return XDP_DROP;
	}
	len = data_end - data;

	/* Header template: 5 words and the last 2 bytes (x86 and arm64 BPF JITs do unaligned
	 * stores; the verifier allows them where the arch has efficient unaligned access). */
	word[0] = g->hdr[0];
	word[1] = g->hdr[1];
	word[2] = g->hdr[2];
	word[3] = g->hdr[3];
	word[4] = g->hdr[4];
	*(__u16 *)(data + 40) = *(const __u16 *)((const __u8 *)g->hdr + 40);

	seq = g->next_seq;
	g->next_seq = seq + 1;
	flow = g->flows ? (__u16)(seq % g->flows) : 0;

	iph->tot_len = bpf_htons((__u16)(len - sizeof(struct ethhdr)));
	iph->id = bpf_htons((__u16)seq);
	iph->check = 0;
	iph->check = ip4_header_csum(iph);

	udp->source = bpf_htons((__u16)(g->src_port + flow));
	udp->len = bpf_htons((__u16)(len - sizeof(struct ethhdr) - sizeof(struct iphdr)));
	udp->check = 0;

	*(__u64 *)(data + XFWD_GEN_HDR_LEN) = bpf_cpu_to_be64(seq);
	stamp = g->timestamp_every && seq % g->timestamp_every == 0 ? bpf_ktime_get_ns() : 0;
	*(__u64 *)(data + XFWD_GEN_HDR_LEN + 8) = bpf_cpu_to_be64(stamp);

	g->sent += 1;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
