/* SPDX-License-Identifier: (GPL-2.0 OR MIT) */
/*
 * xfwd steering program ABI: what the XDP program (steer.bpf.c) and the Rust loader
 * (src/steer.rs, src/abi.rs) agree on. The Rust side mirrors every number here and a
 * unit test (abi::tests) parses this file to prove the mirror is exact: change both or
 * neither.
 */
#ifndef XFWD_STEER_H
#define XFWD_STEER_H

/* Interfaces one xfwd instance can drive; a slot numbers an interface 0..63. */
#define XFWD_MAX_IFACES 64
/* Receive queues per interface that can have an AF_XDP socket. */
#define XFWD_MAX_QUEUES 64
/* xsks index = slot * XFWD_MAX_QUEUES + rx_queue_index. */
#define XFWD_XSKS_ENTRIES (XFWD_MAX_IFACES * XFWD_MAX_QUEUES)
/* The router's own addresses plus its subnet-directed broadcast addresses. */
#define XFWD_MAX_LOCAL_ADDRS 16384

/* Value of the `ifaces` map (key: ingress ifindex, __u32). */
struct xfwd_iface {
	/* Interface slot, < XFWD_MAX_IFACES. */
	__u32 slot;
	/* Reserved, 0. */
	__u32 flags;
	/*
	 * Longest frame (bytes from the Ethernet header on) that the AF_XDP sockets of this
	 * interface can take, i.e. the socket's rx frame size; 0 means no limit. A longer
	 * frame redirected to a socket without XDP_USE_SG would be dropped by the kernel
	 * (xsk_rcv_check: -ENOSPC, rx_dropped), so the program passes it to the kernel instead.
	 */
	__u32 max_frame_len;
};

/*
 * Why the program returned what it returned; index into the per-CPU `stats` array.
 * Numbers are ABI (the Rust enum `Verdict` mirrors them); append, never renumber.
 */
enum xfwd_verdict {
	/* Redirected into the AF_XDP socket of (slot, rx queue). */
	XFWD_VERDICT_REDIRECT = 0,
	/* Transit IPv4, but no socket at (slot, rx queue): bpf_redirect_map fell back to
	 * XDP_PASS, so the kernel forwards it (xfwd down, restarting, or queue not served). */
	XFWD_VERDICT_PASS_NO_SOCKET = 1,
	/* Ingress interface not registered in `ifaces`. */
	XFWD_VERDICT_PASS_UNMANAGED = 2,
	/* Frame shorter than an Ethernet header; the kernel drops it. */
	XFWD_VERDICT_PASS_RUNT = 3,
	/* ARP: the kernel owns neighbour resolution. */
	XFWD_VERDICT_PASS_ARP = 4,
	/* 802.1Q / 802.1ad tagged: VLAN sub-interfaces belong to the kernel. */
	XFWD_VERDICT_PASS_VLAN = 5,
	/* Any other ethertype (IPv6, LLDP, MPLS, ...). */
	XFWD_VERDICT_PASS_NOT_IPV4 = 6,
	/* IPv4 to one of the router's addresses or subnet broadcasts (`local_addrs`). */
	XFWD_VERDICT_PASS_LOCAL = 7,
	/* IPv4 to 224.0.0.0/4 or 255.255.255.255 (OSPF, RIP, VRRP, DHCP live there). */
	XFWD_VERDICT_PASS_MCAST_BCAST = 8,
	/* rx_queue_index >= XFWD_MAX_QUEUES (or a slot >= XFWD_MAX_IFACES): no xsks entry. */
	XFWD_VERDICT_PASS_QUEUE_RANGE = 9,
	/* Frame longer than the interface's max_frame_len (the socket could not hold it). */
	XFWD_VERDICT_PASS_TOO_BIG = 10,
	/* Multi-buffer frame (only the xdp.frags variant sees these): sockets take
	 * single-buffer frames, so the kernel handles it. */
	XFWD_VERDICT_PASS_FRAGS = 11,
	XFWD_VERDICT_COUNT = 12,
};

#endif /* XFWD_STEER_H */
