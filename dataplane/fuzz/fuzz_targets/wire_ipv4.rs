//! Arbitrary bytes as an IPv4 packet: `Ipv4Packet::new_checked` never panics, an accepted view
//! never panics on any accessor or setter, and its numbers agree with the byte-pair checksum
//! oracle. The payload goes through the ICMP and UDP views as well.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xfwd::wire::checksum;
use xfwd::wire::icmpv4::{self, Icmpv4Packet};
use xfwd::wire::ipv4::{self, Ipv4Packet};
use xfwd::wire::udp::UdpPacket;

fuzz_target!(|data: &[u8]| {
    assert_eq!(checksum::sum(data), checksum::sum_reference(data));

    let Ok(p) = Ipv4Packet::new_checked(data) else {
        return;
    };
    let hl = p.header_len();
    let total = usize::from(p.total_len());
    assert!(ipv4::HEADER_LEN <= hl && hl <= total && total <= data.len());
    assert_eq!(p.header().len(), hl);
    assert_eq!(p.options().len(), hl - ipv4::HEADER_LEN);
    assert_eq!(p.payload().len(), total - hl);
    assert_eq!(p.packet().len(), total);
    assert_eq!(
        p.verify_checksum(),
        checksum::sum_reference(&data[..hl]) == 0xffff
    );
    let _ = (
        p.version(),
        p.dscp(),
        p.ecn(),
        p.ident(),
        p.reserved_flag(),
        p.dont_frag(),
    );
    let _ = (
        p.more_frags(),
        p.frag_offset(),
        p.is_fragment(),
        p.protocol(),
        p.checksum(),
    );
    assert_eq!(u32::from(p.src_addr()), p.src_u32());
    assert_eq!(u32::from(p.dst_addr()), p.dst_u32());

    // Mutation on a copy: a filled checksum verifies, and stays valid across a TTL decrement.
    let mut copy = data.to_vec();
    let mut q = Ipv4Packet::new_checked(&mut copy[..]).unwrap();
    q.fill_checksum();
    assert!(q.verify_checksum());
    assert_eq!(checksum::sum_reference(q.header()), 0xffff);
    if q.ttl() > 0 {
        let before = q.ttl();
        assert_eq!(q.decrease_ttl(), before - 1);
        assert!(q.verify_checksum());
    }
    q.options_mut().fill(1);
    q.payload_mut().fill(0);

    // The payload through the transport views.
    let payload = p.payload();
    if let Ok(icmp) = Icmpv4Packet::new_checked(payload) {
        let _ = (
            icmp.msg_type(),
            icmp.msg_code(),
            icmp.rest_of_header(),
            icmp.pointer(),
        );
        let _ = (
            icmp.next_hop_mtu(),
            icmp.echo_ident(),
            icmp.echo_seq_no(),
            icmp.is_error(),
        );
        assert_eq!(
            icmp.verify_checksum(),
            checksum::sum_reference(payload) == 0xffff
        );
        assert_eq!(icmp.data().len(), payload.len() - icmpv4::HEADER_LEN);
        // An ICMP error quoting this packet is well formed.
        let quoted = &p.packet()[..total.min(icmpv4::ERROR_MAX_QUOTE)];
        let mut buf = [0u8; icmpv4::HEADER_LEN + icmpv4::ERROR_MAX_QUOTE];
        let n = icmpv4::emit_error(
            &mut buf,
            icmpv4::ICMP_TIME_EXCEEDED,
            icmpv4::ICMP_EXC_TTL,
            0,
            quoted,
        )
        .unwrap();
        assert!(
            Icmpv4Packet::new_checked(&buf[..n])
                .unwrap()
                .verify_checksum()
        );
    }
    if let Ok(udp) = UdpPacket::new_checked(payload) {
        assert!(usize::from(udp.len()) <= payload.len());
        assert_eq!(udp.payload().len(), usize::from(udp.len()) - 8);
        let _ = (
            udp.src_port(),
            udp.dst_port(),
            udp.verify_checksum(p.src_addr(), p.dst_addr()),
        );
    }
});
