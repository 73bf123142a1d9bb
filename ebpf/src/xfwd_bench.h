/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * Benchmark programs ABI (gen.bpf.c, sink.bpf.c) shared with the Rust wrappers
 * (src/gen.rs, src/sink.rs, mirrored in src/abi.rs).
 */
#ifndef XFWD_BENCH_H
#define XFWD_BENCH_H

/* Ethernet (14) + IPv4 without options (20) + UDP (8). */
#define XFWD_GEN_HDR_LEN 42
/* UDP payload written per frame: sequence number, then the send time (bpf_ktime_get_ns(),
 * CLOCK_MONOTONIC, or 0 when not sampled), both big-endian. */
#define XFWD_GEN_PAYLOAD_LEN 16
/* Shortest frame the generator can build (60 is the Ethernet minimum without FCS). */
#define XFWD_GEN_MIN_FRAME (XFWD_GEN_HDR_LEN + XFWD_GEN_PAYLOAD_LEN)

/* The only entry of the generator's `gen` ARRAY map, written by userspace before a run. */
struct xfwd_gen {
	/* Header template, 8-byte words so the program copies it word by word. Bytes
	 * 0..42 are used; IPv4 total length, id and checksum and UDP length and source port
	 * are rewritten per frame. */
	__u64 hdr[6];
	/* UDP source port of flow 0; frame n uses src_port + (seq % flows). */
	__u16 src_port;
	/* Number of flows, >= 1. */
	__u16 flows;
	/* Frames whose seq % timestamp_every == 0 carry bpf_ktime_get_ns(), the others 0;
	 * 1 stamps every frame, 0 none (reading the clock is ~10% of a frame's cost in a VM). */
	__u32 timestamp_every;
	/* Sequence number the next frame carries (the program advances it). */
	__u64 next_seq;
	/* Frames the program has handed to XDP_TX (the program advances it). */
	__u64 sent;
	/* Frames the program refused (shorter than XFWD_GEN_MIN_FRAME). */
	__u64 errors;
};

/* The only entry of the sink's `sink_cfg` ARRAY map. */
struct xfwd_sink_config {
	/* Count only IPv4/UDP to this destination port (host byte order); 0 counts every frame.
	 * Frames not counted are passed to the kernel. */
	__u16 udp_port;
	__u16 reserved;
	/* Action for counted frames: XDP_DROP (fast sink) or XDP_PASS. */
	__u32 action;
	/* Flows of the generator (seq % flows is the flow, seq / flows its own sequence
	 * number); 0 turns sequence and latency tracking off (count only). At most
	 * XFWD_SINK_MAX_FLOWS. */
	__u32 flows;
	__u32 reserved2;
};

/* Flows the sink tracks one by one (the generator's 64 k source ports). */
#define XFWD_SINK_MAX_FLOWS 65536
/* Reordering window per flow: a frame up to this many sequence numbers behind the
 * highest seen is checked against a bitmap (duplicate or late); further behind it is
 * counted as `too_late` (cannot tell). */
#define XFWD_SINK_WINDOW 64

/* Latency histogram: HdrHistogram-style log-linear buckets with 64 sub-buckets per power of
 * two (1.6 % resolution). Value v < 64 ns is bucket v; else with e = floor(log2 v) and
 * shift = e - 6, bucket 64 * shift + (v >> shift). Values at or above 2^40 ns (18 min)
 * go to the last bucket. */
#define XFWD_LAT_SUB_BITS 6
#define XFWD_LAT_MAX_SHIFT 34
#define XFWD_LAT_BUCKETS 2304

/* Per-flow state of the sink's `sink_flows` ARRAY map (XFWD_SINK_MAX_FLOWS entries),
 * updated without atomics: correct while one CPU at a time receives (one queue). */
struct xfwd_sink_flow {
	/* Frames received, duplicates included. */
	__u64 packets;
	/* Highest per-flow sequence number seen, + 1 (0: nothing seen yet). */
	__u64 next_seq;
	/* Bit i set: sequence number (next_seq - 1 - i) was seen. */
	__u64 window;
	/* Frames that arrived after a higher sequence number of their flow (first copy). */
	__u64 reordered;
	/* Frames whose sequence number was already seen (within the window). */
	__u64 duplicates;
	/* Frames more than XFWD_SINK_WINDOW behind the flow's highest: late or duplicate. */
	__u64 too_late;
};

/* Per-CPU value of the sink's `sink_stats` ARRAY map (one entry). */
struct xfwd_sink_stats {
	__u64 packets;
	__u64 bytes;
	/* Sums over flows of the xfwd_sink_flow counters of the same names. */
	__u64 reordered;
	__u64 duplicates;
	__u64 too_late;
	/* Frames with a send timestamp (latency recorded in `sink_lat`). */
	__u64 stamped;
	/* Frames whose timestamp was in the future or whose flow was out of range. */
	__u64 bad_stamp;
	__u64 bad_flow;
};

#endif /* XFWD_BENCH_H */
