//! PLACEHOLDER until the wire branch merges (replaced wholesale).
use crate::drop::DropReason;
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PktType { Host, Broadcast, Multicast, OtherHost }
#[derive(Clone, Copy, Debug)]
pub struct EthInfo { pub pkt_type: PktType, pub ethertype: u16, pub l3_offset: usize }
pub fn eth_input(frame: &[u8], dev_mac: &[u8; 6]) -> Result<EthInfo, DropReason> {
    if frame.len() < 14 { return Err(DropReason::EthTooShort); }
    let pkt_type = if frame[0] & 1 == 0 { if &frame[..6] == dev_mac { PktType::Host } else { return Err(DropReason::EthOtherHost) } } else if frame[..6] == [0xff; 6] { PktType::Broadcast } else { PktType::Multicast };
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    if ethertype != 0x0800 { return Err(DropReason::EthNotIpv4); }
    Ok(EthInfo { pkt_type, ethertype, l3_offset: 14 })
}
