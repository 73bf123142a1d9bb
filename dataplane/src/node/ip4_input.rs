//! PLACEHOLDER until the wire branch merges (replaced wholesale).
use super::eth_input::PktType;
use crate::drop::DropReason;
#[derive(Clone, Copy, Debug, Default)]
pub struct Ip4Meta { pub src: u32, pub dst: u32, pub header_len: usize, pub total_len: usize, pub ttl: u8, pub protocol: u8, pub df: bool, pub mf: bool, pub frag_offset: u16, pub has_options: bool }
pub fn ip_rcv_core(p: &[u8], pkt_type: PktType) -> Result<Ip4Meta, DropReason> {
    if p.len() < 20 { return Err(DropReason::Ip4HdrTooShort); }
    let hl = usize::from(p[0] & 15) * 4;
    if p[0] >> 4 != 4 { return Err(DropReason::Ip4Version); }
    if hl < 20 || hl > p.len() { return Err(DropReason::Ip4BadIhl); }
    let mut s = 0u32; for c in p[..hl].chunks(2) { s += u32::from(u16::from_be_bytes([c[0], c[1]])); }
    while s > 0xffff { s = (s & 0xffff) + (s >> 16); }
    if s != 0xffff { return Err(DropReason::Ip4BadChecksum); }
    let tl = usize::from(u16::from_be_bytes([p[2], p[3]]));
    if tl < hl { return Err(DropReason::Ip4BadTotalLen); }
    if tl > p.len() { return Err(DropReason::Ip4Truncated); }
    let dst = u32::from_be_bytes([p[16], p[17], p[18], p[19]]);
    if pkt_type != PktType::Host && !(dst >> 28 == 14 || dst == u32::MAX) { return Err(DropReason::EthL2BcastUnicastIp); }
    Ok(Ip4Meta { src: u32::from_be_bytes([p[12], p[13], p[14], p[15]]), dst, header_len: hl, total_len: tl, ttl: p[8], protocol: p[9], df: p[6] & 0x40 != 0, mf: p[6] & 0x20 != 0, frag_offset: u16::from_be_bytes([p[6] & 0x1f, p[7]]), has_options: hl > 20 })
}
