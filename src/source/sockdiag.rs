//! The watched command's own TCP traffic, socket by socket, from the kernel's sock_diag netlink
//! interface (`NETLINK_SOCK_DIAG`), attributed to the command's process tree through its
//! sockets' inodes, as nethogs and bandwhich attribute traffic to processes.
//!
//! Each tick makes one dump request per address family (`SOCK_DIAG_BY_FAMILY` with an
//! `inet_diag_req_v2` for every TCP state that moves bytes, asking for `INET_DIAG_INFO`), on
//! one netlink socket kept open for the run. Every socket comes back with its addresses, its
//! cookie, its inode and its `struct tcp_info`, whose `tcpi_bytes_acked` (payload bytes sent and
//! acknowledged; the connecting side's count includes its SYN) and `tcpi_bytes_received` are
//! cumulative for the socket's life. A socket is the command's when its inode is one of the
//! `socket:[INODE]` links under `/proc/PID/fd` of a process of the tree. Sockets are followed by
//! cookie, not inode: once the command closes a socket the kernel still drains its send buffer
//! (the socket is then orphaned, inode 0), and those bytes are still the command's.
//!
//! A socket that ends between two ticks keeps its last values. Where the kernel lets carbontop
//! listen to its TCP socket-destroy notifications (`SKNLGRP_INET_TCP_DESTROY`,
//! `SKNLGRP_INET6_TCP_DESTROY`, each with the socket's final `tcp_info`), the bytes it moved
//! after the last tick count too. A connection opened and closed within one tick is never seen
//! held by a process, so it cannot be attributed: its bytes stay the machine's.
//!
//! Sockets are classified by the peer's address (`classify`): loopback never counts (nor a peer
//! at the socket's own address, which the kernel routes over loopback); private, link-local,
//! CGNAT, ULA, non-global special-purpose and `--cluster-cidr` ranges are the cluster; the rest
//! is the internet. UDP, and TCP that is not the tree's, stay the machine's.
//!
//! Parsing is plain safe code over the bytes; the layouts are the kernel's UAPI headers
//! (`include/uapi/linux/netlink.h`, `sock_diag.h`, `inet_diag.h`, `tcp.h`).

use crate::sample::{OwnTraffic, Traffic};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `nlmsghdr`: len u32, type u16, flags u16, seq u32, pid u32.
const NLMSG_HDRLEN: usize = 16;
/// `NLMSG_ERROR`, `NLMSG_DONE` (`netlink.h`).
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// `NLM_F_REQUEST`, `NLM_F_DUMP` (= `NLM_F_ROOT | NLM_F_MATCH`).
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
/// `SOCK_DIAG_BY_FAMILY` (`sock_diag.h`).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `struct inet_diag_req_v2`: family u8, protocol u8, ext u8, pad u8, states u32, and a
/// 48-byte `inet_diag_sockid`.
const REQ_LEN: usize = 56;
/// `struct inet_diag_msg`: family, state, timer, retrans (u8 each), the 48-byte sockid
/// (sport, dport: be16; src, dst: 4 × be32; if: u32; cookie: 2 × u32), then expires, rqueue,
/// wqueue, uid and inode (u32 each): 72 bytes.
const MSG_LEN: usize = 72;
const MSG_SPORT: usize = 4;
const MSG_DPORT: usize = 6;
const MSG_SRC: usize = 8;
const MSG_DST: usize = 24;
const MSG_COOKIE: usize = 44;
const MSG_UID: usize = 64;
const MSG_INODE: usize = 68;
/// `INET_DIAG_INFO` (`inet_diag.h`): the attribute that carries `struct tcp_info`; requested
/// with bit `1 << (INET_DIAG_INFO - 1)` of `idiag_ext`.
const INET_DIAG_INFO: u16 = 2;
/// `struct tcp_info` (`include/uapi/linux/tcp.h`): 8 bytes of u8 fields, 24 u32 fields (rto …
/// total_retrans: bytes 8–103), then u64 pacing_rate (104), max_pacing_rate (112),
/// bytes_acked (120), bytes_received (128). Kernels before 4.1/4.2 stop short of them.
const TCPI_BYTES_ACKED: usize = 120;
const TCPI_BYTES_RECEIVED: usize = 128;
/// `AF_INET`, `AF_INET6`, `IPPROTO_TCP`.
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
/// The TCP states asked for (`idiag_states` is a bit mask by state number): every state a
/// socket can move bytes in, orphans draining after close included. Left out: TIME_WAIT (6),
/// LISTEN (10) and NEW_SYN_RECV (12), which carry no `tcp_info` and no inode (or no bytes), and
/// which a busy host holds by the thousand.
const STATES: u32 = !((1 << 6) | (1 << 10) | (1 << 12));

/// The bytes of one dump request: every TCP socket of `family` in `STATES`, with its
/// `tcp_info`.
pub fn dump_request(family: u8, seq: u32) -> [u8; NLMSG_HDRLEN + REQ_LEN] {
    let mut b = [0u8; NLMSG_HDRLEN + REQ_LEN];
    b[0..4].copy_from_slice(&((NLMSG_HDRLEN + REQ_LEN) as u32).to_ne_bytes());
    b[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b[8..12].copy_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid 0: the kernel.
    let r = &mut b[NLMSG_HDRLEN..];
    r[0] = family;
    r[1] = IPPROTO_TCP;
    r[2] = 1 << (INET_DIAG_INFO - 1);
    r[4..8].copy_from_slice(&STATES.to_ne_bytes());
    // The sockid stays zero: no filter on addresses or ports; cookie "none".
    b
}

/// One TCP socket as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagSocket {
    pub local: IpAddr,
    pub remote: IpAddr,
    pub local_port: u16,
    pub remote_port: u16,
    /// The kernel's socket cookie: unique for the socket's life, kept after the owner closes it.
    pub cookie: u64,
    /// The socket's inode; 0 once no process holds it (orphaned, TIME_WAIT).
    pub inode: u32,
    /// The user that created it.
    pub uid: u32,
    /// `tcpi_bytes_acked` and `tcpi_bytes_received`, where the message carries a `tcp_info`
    /// long enough to hold them.
    pub bytes: Option<(u64, u64)>,
}

/// A dump the kernel refused or sent malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiagError {
    #[error("sock_diag: the kernel answered error {0}")]
    Kernel(i32),
    #[error("sock_diag: malformed message at byte {0}")]
    Malformed(usize),
    #[error("sock_diag: {0}")]
    Io(String),
}

fn u16_ne(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_ne(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_ne(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// `NLMSG_ALIGN` / `RTA_ALIGN`: 4 bytes.
fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn addr(family: u8, b: &[u8]) -> Option<IpAddr> {
    match family {
        AF_INET => Some(IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(b.get(..4)?).ok()?,
        ))),
        AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(b.get(..16)?).ok()?,
        ))),
        _ => None,
    }
}

/// One `inet_diag_msg` and its attributes.
fn parse_msg(p: &[u8]) -> Option<DiagSocket> {
    let family = *p.first()?;
    let port = |at: usize| Some(u16::from_be_bytes(p.get(at..at + 2)?.try_into().ok()?));
    let cookie = u64::from(u32_ne(p, MSG_COOKIE)?) | (u64::from(u32_ne(p, MSG_COOKIE + 4)?) << 32);
    let mut s = DiagSocket {
        local: addr(family, p.get(MSG_SRC..)?)?,
        remote: addr(family, p.get(MSG_DST..)?)?,
        local_port: port(MSG_SPORT)?,
        remote_port: port(MSG_DPORT)?,
        cookie,
        inode: u32_ne(p, MSG_INODE)?,
        uid: u32_ne(p, MSG_UID)?,
        bytes: None,
    };
    // The attributes (`struct rtattr`: len u16, type u16, payload), each 4-byte aligned.
    let mut at = MSG_LEN;
    while at + 4 <= p.len() {
        let len = usize::from(u16_ne(p, at)?);
        let kind = u16_ne(p, at + 2)?;
        if len < 4 || at + len > p.len() {
            break;
        }
        if kind == INET_DIAG_INFO {
            let info = &p[at + 4..at + len];
            s.bytes = u64_ne(info, TCPI_BYTES_ACKED).zip(u64_ne(info, TCPI_BYTES_RECEIVED));
        }
        at += align4(len);
    }
    Some(s)
}

/// Parses one datagram of a dump's answer into `out`; true once the dump's `NLMSG_DONE` is
/// in it. Messages of other types are skipped.
pub fn parse_dump(buf: &[u8], out: &mut Vec<DiagSocket>) -> Result<bool, DiagError> {
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let len = u32_ne(buf, at).map_or(0, |l| l as usize);
        let kind = u16_ne(buf, at + 4).unwrap_or(0);
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            return Err(DiagError::Malformed(at));
        }
        let payload = &buf[at + NLMSG_HDRLEN..at + len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                // `struct nlmsgerr`: a negative errno, or 0 for an acknowledgement.
                let code = u32_ne(payload, 0).map_or(0, |c| c as i32);
                if code != 0 {
                    return Err(DiagError::Kernel(code));
                }
            }
            SOCK_DIAG_BY_FAMILY => {
                out.push(parse_msg(payload).ok_or(DiagError::Malformed(at))?);
            }
            _ => {}
        }
        at += align4(len);
    }
    Ok(false)
}

/// Where a socket's peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// This machine (loopback, or the socket's own address): never counts.
    Local,
    /// The same site or cluster.
    Cluster,
    /// A public address.
    Internet,
}

/// An address range (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, a: IpAddr) -> bool {
        match (self.net, canonical(a)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    /// `ADDR/PREFIX`, or an address alone (one host).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (a, p) = s.split_once('/').unwrap_or((s, ""));
        let net: IpAddr = a
            .parse()
            .map_err(|_| format!("{s:?} is not an address range like 10.0.0.0/8"))?;
        let net = canonical(net);
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0–{max}"))?
        };
        Ok(Cidr { net, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, as dual-stack sockets report IPv4 peers) as
/// the IPv4 address it is.
fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

/// IPv4 ranges that are not the public internet: RFC 1918 private, CGNAT (RFC 6598),
/// link-local, and the IANA special-purpose ranges that are not globally reachable ("this
/// network", IETF protocol assignments, the documentation TEST-NETs, benchmarking, reserved).
const LOCAL_V4: [(u32, u8); 11] = [
    (0x0A00_0000, 8),  // 10.0.0.0/8
    (0xAC10_0000, 12), // 172.16.0.0/12
    (0xC0A8_0000, 16), // 192.168.0.0/16
    (0x6440_0000, 10), // 100.64.0.0/10 (CGNAT)
    (0xA9FE_0000, 16), // 169.254.0.0/16 (link-local)
    (0x0000_0000, 8),  // 0.0.0.0/8
    (0xC000_0000, 24), // 192.0.0.0/24
    (0xC000_0200, 24), // 192.0.2.0/24 (TEST-NET-1)
    (0xC612_0000, 15), // 198.18.0.0/15 (benchmarking)
    (0xC633_6400, 24), // 198.51.100.0/24 (TEST-NET-2)
    (0xCB00_7100, 24), // 203.0.113.0/24 (TEST-NET-3)
];

fn in_v4(a: Ipv4Addr, net: u32, prefix: u8) -> bool {
    let mask = u32::MAX << (32 - u32::from(prefix));
    u32::from(a) & mask == net & mask
}

/// Where a socket with these ends talks to: `cluster` ranges the user gave come first.
pub fn classify(local: IpAddr, remote: IpAddr, cluster: &[Cidr]) -> Peer {
    let (local, remote) = (canonical(local), canonical(remote));
    if remote.is_loopback() || remote.is_unspecified() || remote == local {
        return Peer::Local;
    }
    if cluster.iter().any(|c| c.contains(remote)) {
        return Peer::Cluster;
    }
    let private = match remote {
        IpAddr::V4(a) => {
            LOCAL_V4.iter().any(|&(n, p)| in_v4(a, n, p)) || a.octets()[0] >= 240 // 240/4 reserved
        }
        IpAddr::V6(a) => {
            let s = a.segments()[0];
            s & 0xfe00 == 0xfc00 // fc00::/7 unique local
                || s & 0xffc0 == 0xfe80 // fe80::/10 link-local
                || (s == 0x2001 && a.segments()[1] == 0x0db8) // 2001:db8::/32 documentation
        }
    };
    if private {
        Peer::Cluster
    } else {
        Peer::Internet
    }
}

/// The inodes of every socket the given processes hold open (`/proc/PID/fd/N` →
/// `socket:[INODE]`). Processes that have ended, or whose fds cannot be read, add nothing.
pub fn socket_inodes(proc_root: &std::path::Path, pids: &[i32]) -> HashSet<u32> {
    let mut out = HashSet::new();
    for pid in pids {
        let Ok(dir) = std::fs::read_dir(proc_root.join(pid.to_string()).join("fd")) else {
            continue;
        };
        for e in dir.flatten() {
            if let Ok(target) = std::fs::read_link(e.path())
                && let Some(inode) = target
                    .to_str()
                    .and_then(|t| t.strip_prefix("socket:["))
                    .and_then(|t| t.strip_suffix(']'))
                    .and_then(|t| t.parse().ok())
            {
                out.insert(inode);
            }
        }
    }
    out
}

/// The sock_diag multicast groups of TCP socket-destroy notifications, as `nl_groups` bits
/// (group N is bit N − 1): `SKNLGRP_INET_TCP_DESTROY` = 1, `SKNLGRP_INET6_TCP_DESTROY` = 3.
const DESTROY_GROUPS: u32 = (1 << 0) | (1 << 2);

/// Ticks a socket missing from the dumps is kept (a destroy notification may come a tick late)
/// before its last values are folded into the closed totals.
const GRACE_TICKS: u8 = 2;

/// Whose a socket is, as far as known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Ours,
    /// Not found among the tree's sockets when last looked for (at tree generation `.0`).
    NotOurs(u64),
}

#[derive(Debug, Clone, Copy)]
struct Tracked {
    owner: Owner,
    peer: Peer,
    inode: u32,
    /// The last (acked, received) seen.
    bytes: (u64, u64),
    /// Dumps in a row it has been missing from.
    missing: u8,
}

/// What the sockets of one dump say.
pub struct Dump<'a> {
    pub sockets: &'a [DiagSocket],
    /// Destroy notifications since the last dump: sockets' final counters.
    pub destroyed: &'a [DiagSocket],
}

/// The command's process tree, as the sockets are judged against it.
pub trait Tree {
    /// The inodes of the sockets its processes hold.
    fn inodes(&mut self) -> HashSet<u32>;
    /// A number that changes whenever the tree was scanned again (new children may hold
    /// sockets judged not to be the tree's).
    fn generation(&self) -> u64;
    /// Asked when a new socket of the tree's user is not among its sockets: a child the tree
    /// does not know yet may hold it. Scans the tree again where that is due; true if it did.
    fn rescan(&mut self) -> bool;
    /// The user the tree's processes run as, where known.
    fn uid(&self) -> Option<u32>;
}

/// The command's sockets, followed from dump to dump. Pure bookkeeping over the dumps and the
/// tree (the `/proc` side is behind `Tree`), so tests drive it with made-up dumps.
#[derive(Debug, Default)]
pub struct Ledger {
    cluster: Vec<Cidr>,
    socks: HashMap<u64, Tracked>,
    /// The last values of the command's sockets that have gone: bytes of a socket that closes
    /// between two ticks count up to the last value seen, or its final value where a destroy
    /// notification said it (without one, what it moved after the last tick is not seen).
    closed: OwnTraffic,
}

impl Ledger {
    pub fn new(cluster: Vec<Cidr>) -> Self {
        Self {
            cluster,
            ..Self::default()
        }
    }

    /// Folds one dump in and returns the command's traffic so far.
    pub fn update(&mut self, dump: &Dump<'_>, tree: &mut dyn Tree) -> OwnTraffic {
        let mut seen: HashSet<u64> = HashSet::with_capacity(dump.sockets.len());
        // Sockets to judge: new ones, and ones judged not the tree's before it changed.
        let mut judge: Vec<(u64, bool)> = Vec::new();
        let generation = tree.generation();
        for s in dump.sockets {
            let peer = classify(s.local, s.remote, &self.cluster);
            if peer == Peer::Local {
                continue;
            }
            seen.insert(s.cookie);
            let mut new = false;
            let t = self.socks.entry(s.cookie).or_insert_with(|| {
                new = true;
                Tracked {
                    owner: Owner::NotOurs(u64::MAX),
                    peer,
                    inode: s.inode,
                    bytes: (0, 0),
                    missing: 0,
                }
            });
            t.missing = 0;
            if s.inode != 0 {
                t.inode = s.inode;
            }
            if let Owner::NotOurs(g) = t.owner
                && g != generation
            {
                if t.inode == 0 {
                    // No process holds it any more: it cannot be judged.
                    t.owner = Owner::NotOurs(generation);
                } else {
                    let uid_matches = tree.uid().is_none_or(|u| u == s.uid);
                    judge.push((s.cookie, new && uid_matches));
                }
            }
            if let Some((acked, received)) = s.bytes {
                // The counters only grow over a socket's life.
                t.bytes = (t.bytes.0.max(acked), t.bytes.1.max(received));
            }
        }
        if !judge.is_empty() {
            self.judge(&judge, tree);
        }
        // Final counters of sockets that ended: only those already followed can be judged
        // (a destroyed socket has no inode left).
        for d in dump.destroyed {
            if let (Some(t), Some((acked, received))) = (self.socks.get_mut(&d.cookie), d.bytes) {
                t.bytes = (t.bytes.0.max(acked), t.bytes.1.max(received));
            }
        }
        // Sockets gone from the dump: kept a little (a late destroy notification tops them up),
        // then the command's are folded into the closed totals at their last values.
        let closed = &mut self.closed;
        self.socks.retain(|cookie, t| {
            if !seen.contains(cookie) {
                t.missing = t.missing.saturating_add(1);
            }
            let keep = t.missing <= GRACE_TICKS;
            if !keep && t.owner == Owner::Ours {
                add(closed, t.peer, t.bytes);
            }
            keep
        });
        let mut out = self.closed;
        for t in self.socks.values().filter(|t| t.owner == Owner::Ours) {
            add(&mut out, t.peer, t.bytes);
        }
        out
    }

    /// Judges sockets against the tree's: one lookup, and one more after a rescan where a new
    /// socket of the tree's user was not found (a child the tree does not know yet).
    fn judge(&mut self, judge: &[(u64, bool)], tree: &mut dyn Tree) {
        let mut held = tree.inodes();
        for pass in 0..2 {
            let mut missed_new = false;
            for (cookie, may_rescan) in judge {
                if let Some(t) = self.socks.get_mut(cookie)
                    && t.owner != Owner::Ours
                {
                    if held.contains(&t.inode) {
                        t.owner = Owner::Ours;
                    } else {
                        missed_new |= *may_rescan;
                    }
                }
            }
            if pass == 0 && missed_new && tree.rescan() {
                held = tree.inodes();
            } else {
                break;
            }
        }
        let generation = tree.generation();
        for (cookie, _) in judge {
            if let Some(t) = self.socks.get_mut(cookie)
                && t.owner != Owner::Ours
            {
                t.owner = Owner::NotOurs(generation);
            }
        }
    }

    /// The command's sockets being followed now.
    pub fn open_sockets(&self) -> usize {
        self.socks
            .values()
            .filter(|t| t.owner == Owner::Ours)
            .count()
    }
}

fn add(to: &mut OwnTraffic, peer: Peer, (acked, received): (u64, u64)) {
    let t: &mut Traffic = match peer {
        Peer::Cluster => &mut to.cluster,
        Peer::Internet => &mut to.internet,
        Peer::Local => return,
    };
    t.tx_bytes = t.tx_bytes.saturating_add(acked);
    t.rx_bytes = t.rx_bytes.saturating_add(received);
}

/// The netlink socket, kept open for the run.
struct Netlink {
    fd: std::os::fd::OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

/// Receive buffer: what `ss` uses is 32 KiB; a dump comes in as many datagrams as it needs.
const RECV_BUF: usize = 64 << 10;
/// A dump that never ends is cut off: at most this many datagrams per family per tick
/// (about 400,000 sockets).
const MAX_DATAGRAMS: usize = 4096;

impl Netlink {
    /// A socket subscribed to the TCP socket-destroy notifications (None where the kernel
    /// refuses: they need `CAP_NET_ADMIN` on some kernels).
    fn open_events() -> Option<Self> {
        use nix::sys::socket::{NetlinkAddr, bind};
        use std::os::fd::AsRawFd;
        let me = Self::open().ok()?;
        bind(me.fd.as_raw_fd(), &NetlinkAddr::new(0, DESTROY_GROUPS)).ok()?;
        Some(me)
    }

    /// Every notification waiting, into `out`, without blocking (at most `MAX_DATAGRAMS`).
    fn drain(&mut self, out: &mut Vec<DiagSocket>) {
        use nix::sys::socket::{MsgFlags, recv};
        use std::os::fd::AsRawFd;
        for _ in 0..MAX_DATAGRAMS {
            match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) if n > 0 => {
                    // A malformed notification is skipped: the dumps still stand.
                    let _ = parse_dump(&self.buf[..n], out);
                }
                // Nothing more (EAGAIN), or notifications dropped on a full buffer (ENOBUFS):
                // those sockets keep their last dumped values.
                Err(nix::Error::ENOBUFS) => {}
                _ => return,
            }
        }
    }

    fn open() -> Result<Self, DiagError> {
        use nix::sys::socket::{
            AddressFamily, SockFlag, SockProtocol, SockType, setsockopt, socket, sockopt,
        };
        let io = |e: nix::Error| DiagError::Io(e.to_string());
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkSockDiag,
        )
        .map_err(io)?;
        // Bounded in time: a kernel that stops answering costs a tick at most a second.
        setsockopt(
            &fd,
            sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(1, 0),
        )
        .map_err(io)?;
        Ok(Self {
            fd,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Every TCP socket of one family, into `out`.
    fn dump(&mut self, family: u8, out: &mut Vec<DiagSocket>) -> Result<(), DiagError> {
        use nix::sys::socket::{MsgFlags, NetlinkAddr, recv, sendto};
        use std::os::fd::AsRawFd;
        let io = |e: nix::Error| DiagError::Io(e.to_string());
        self.seq = self.seq.wrapping_add(1);
        let fd = self.fd.as_raw_fd();
        sendto(
            fd,
            &dump_request(family, self.seq),
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )
        .map_err(io)?;
        for _ in 0..MAX_DATAGRAMS {
            let n = recv(fd, &mut self.buf, MsgFlags::empty()).map_err(io)?;
            if n == 0 || parse_dump(&self.buf[..n], out)? {
                return Ok(());
            }
        }
        Err(DiagError::Io("the dump did not end".into()))
    }
}

/// The live source: one dump per family per tick, judged against the tree.
pub struct SockDiag {
    netlink: Option<Netlink>,
    events: Option<Netlink>,
    ledger: Ledger,
    sockets: Vec<DiagSocket>,
    destroyed: Vec<DiagSocket>,
    last: Option<OwnTraffic>,
    warning: Option<String>,
}

impl SockDiag {
    /// Opens the netlink socket; where it cannot be opened the command's traffic is unknown
    /// (and said once).
    pub fn new(cluster: Vec<Cidr>) -> Self {
        let (netlink, warning) = match Netlink::open() {
            Ok(n) => (Some(n), None),
            Err(e) => (
                None,
                Some(format!(
                    "the command's own network traffic is unknown ({e}); the machine's is counted"
                )),
            ),
        };
        Self {
            events: netlink.as_ref().and_then(|_| Netlink::open_events()),
            netlink,
            ledger: Ledger::new(cluster),
            sockets: Vec::new(),
            destroyed: Vec::new(),
            last: None,
            warning,
        }
    }

    /// Whether the sockets' final counters come from the kernel's destroy notifications.
    pub fn has_destroy_events(&self) -> bool {
        self.events.is_some()
    }

    /// The command's traffic so far, after this tick's dumps; a failed dump keeps the last
    /// figures (the counters are cumulative: the next good dump catches up).
    pub fn read(&mut self, tree: &mut dyn Tree) -> Option<OwnTraffic> {
        let nl = self.netlink.as_mut()?;
        self.sockets.clear();
        self.destroyed.clear();
        if let Some(ev) = self.events.as_mut() {
            ev.drain(&mut self.destroyed);
        }
        let dumped = nl
            .dump(AF_INET, &mut self.sockets)
            .and_then(|()| nl.dump(AF_INET6, &mut self.sockets));
        match dumped {
            Ok(()) => {
                let dump = Dump {
                    sockets: &self.sockets,
                    destroyed: &self.destroyed,
                };
                self.last = Some(self.ledger.update(&dump, tree));
            }
            Err(e) => {
                if self.warning.is_none() {
                    self.warning = Some(format!("the command's network traffic: {e}"));
                }
            }
        }
        self.last
    }

    pub fn take_warning(&mut self) -> Option<String> {
        self.warning.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: &str) -> IpAddr {
        a.parse().unwrap()
    }

    #[test]
    fn peers_are_classified_by_their_address() {
        let me = v4("192.168.1.5");
        let c = |r: &str| classify(me, v4(r), &[]);
        for local in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
            "::",
        ] {
            assert_eq!(c(local), Peer::Local, "{local}");
        }
        assert_eq!(
            c("192.168.1.5"),
            Peer::Local,
            "its own address goes over loopback"
        );
        for cluster in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.200.1",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.1.1",
            "fd00::2",
            "fc12::1",
            "fe80::1",
            "::ffff:10.0.0.7",
            "192.0.2.1",
            "198.18.0.1",
        ] {
            assert_eq!(c(cluster), Peer::Cluster, "{cluster}");
        }
        for public in [
            "8.8.8.8",
            "172.32.0.1",
            "172.15.255.255",
            "100.128.0.1",
            "100.63.255.255",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "11.0.0.1",
        ] {
            assert_eq!(c(public), Peer::Internet, "{public}");
        }
        // The user's cluster ranges come first: a public block of the site's own.
        let mine: Vec<Cidr> = ["8.8.0.0/16", "2606:4700::/32"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(classify(me, v4("8.8.8.8"), &mine), Peer::Cluster);
        assert_eq!(classify(me, v4("2606:4700::1111"), &mine), Peer::Cluster);
        assert_eq!(classify(me, v4("8.9.0.1"), &mine), Peer::Internet);
    }

    #[test]
    fn cluster_ranges_parse_or_say_why() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(v4("10.255.0.1")) && !c.contains(v4("11.0.0.1")));
        assert_eq!(c.to_string(), "10.0.0.0/8");
        let host: Cidr = "203.0.113.9".parse().unwrap();
        assert_eq!(host.to_string(), "203.0.113.9/32");
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(v4("8.8.8.8")));
        assert_eq!("::ffff:10.0.0.0/8".parse::<Cidr>().unwrap(), c);
        assert!("10.0.0.0/33".parse::<Cidr>().unwrap_err().contains("0–32"));
        assert!("fd00::/129".parse::<Cidr>().unwrap_err().contains("0–128"));
        assert!(
            "cluster"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("not an address")
        );
    }

    /// A datagram as the kernel sends it: one `inet_diag_msg` with a `tcp_info` attribute.
    fn msg(
        family: u8,
        src: &[u8],
        dst: &[u8],
        cookie: u64,
        inode: u32,
        bytes: (u64, u64),
    ) -> Vec<u8> {
        let mut p = vec![0u8; MSG_LEN];
        p[0] = family;
        p[1] = 1; // ESTABLISHED
        p[MSG_SPORT..MSG_SPORT + 2].copy_from_slice(&40000u16.to_be_bytes());
        p[MSG_DPORT..MSG_DPORT + 2].copy_from_slice(&9000u16.to_be_bytes());
        p[MSG_SRC..MSG_SRC + src.len()].copy_from_slice(src);
        p[MSG_DST..MSG_DST + dst.len()].copy_from_slice(dst);
        p[MSG_COOKIE..MSG_COOKIE + 4].copy_from_slice(&(cookie as u32).to_ne_bytes());
        p[MSG_COOKIE + 4..MSG_COOKIE + 8].copy_from_slice(&((cookie >> 32) as u32).to_ne_bytes());
        p[MSG_INODE..MSG_INODE + 4].copy_from_slice(&inode.to_ne_bytes());
        let mut info = vec![0u8; 232];
        info[TCPI_BYTES_ACKED..TCPI_BYTES_ACKED + 8].copy_from_slice(&bytes.0.to_ne_bytes());
        info[TCPI_BYTES_RECEIVED..TCPI_BYTES_RECEIVED + 8].copy_from_slice(&bytes.1.to_ne_bytes());
        p.extend(((4 + info.len()) as u16).to_ne_bytes());
        p.extend(INET_DIAG_INFO.to_ne_bytes());
        p.extend(info);
        let mut m = Vec::new();
        m.extend(((NLMSG_HDRLEN + p.len()) as u32).to_ne_bytes());
        m.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m.extend(2u16.to_ne_bytes()); // NLM_F_MULTI
        m.extend([0u8; 8]);
        m.extend(p);
        m
    }

    #[test]
    fn made_up_messages_parse_and_done_ends_the_dump() {
        let mut buf = msg(
            AF_INET,
            &[10, 0, 0, 1],
            &[10, 0, 0, 2],
            0x1_0000_0002,
            77,
            (5, 6),
        );
        let mut ip6 = [0u8; 16];
        ip6[0] = 0x26;
        ip6[15] = 1;
        buf.extend(msg(AF_INET6, &ip6, &ip6, 3, 0, (1 << 40, 0)));
        let mut out = Vec::new();
        assert_eq!(parse_dump(&buf, &mut out), Ok(false));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].local, v4("10.0.0.1"));
        assert_eq!(out[0].remote, v4("10.0.0.2"));
        assert_eq!((out[0].local_port, out[0].remote_port), (40000, 9000));
        assert_eq!(
            (out[0].cookie, out[0].inode, out[0].bytes),
            (0x1_0000_0002, 77, Some((5, 6)))
        );
        assert_eq!(out[1].remote, v4("2600::1"));
        assert_eq!(out[1].bytes, Some((1 << 40, 0)));
        let mut done = vec![0u8; 20];
        done[0..4].copy_from_slice(&20u32.to_ne_bytes());
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        assert_eq!(parse_dump(&done, &mut out), Ok(true));
        // An error from the kernel, and a length that runs past the datagram.
        let mut err = vec![0u8; 36];
        err[0..4].copy_from_slice(&36u32.to_ne_bytes());
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[16..20].copy_from_slice(&(-13i32).to_ne_bytes());
        assert_eq!(parse_dump(&err, &mut out), Err(DiagError::Kernel(-13)));
        let mut bad = buf.clone();
        bad[0..4].copy_from_slice(&10_000u32.to_ne_bytes());
        assert_eq!(parse_dump(&bad, &mut out), Err(DiagError::Malformed(0)));
        // A tcp_info too short for the byte counters (an old kernel): no bytes, not garbage.
        let mut old = msg(AF_INET, &[10, 0, 0, 1], &[10, 0, 0, 2], 9, 1, (5, 6));
        let info_len = 4 + 104;
        let cut = NLMSG_HDRLEN + MSG_LEN;
        old.truncate(cut + info_len);
        old[cut..cut + 2].copy_from_slice(&(info_len as u16).to_ne_bytes());
        let total = old.len() as u32;
        old[0..4].copy_from_slice(&total.to_ne_bytes());
        out.clear();
        assert_eq!(parse_dump(&old, &mut out), Ok(false));
        assert_eq!(out[0].bytes, None);
    }

    /// A real dump (kernel 6.18, x86-64), cut to the sockets of one loopback connection: the
    /// listener on 127.0.0.1:47001, the client that sent 123,456 bytes and read 789, and the
    /// server's side of it (`fixtures/sockdiag/tcp4-loopback-dump.bin`).
    #[test]
    fn a_captured_dump_parses_to_the_bytes_that_were_moved() {
        let buf = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/sockdiag/tcp4-loopback-dump.bin"),
        )
        .unwrap();
        let mut out = Vec::new();
        assert_eq!(parse_dump(&buf, &mut out), Ok(true), "ends with NLMSG_DONE");
        assert_eq!(out.len(), 3);
        let lo = v4("127.0.0.1");
        let find = |lp: u16, rp: u16| {
            out.iter()
                .find(|s| s.local_port == lp && s.remote_port == rp)
                .unwrap_or_else(|| panic!("no socket {lp}→{rp} in {out:?}"))
        };
        let listener = find(47001, 0);
        assert_eq!(listener.remote, v4("0.0.0.0"));
        let client = find(35174, 47001);
        let server = find(47001, 35174);
        assert!(
            [client, server]
                .iter()
                .all(|s| s.local == lo && s.remote == lo)
        );
        assert!(client.inode != 0 && server.inode != 0 && client.cookie != server.cookie);
        // The connecting side's tcpi_bytes_acked counts its SYN too (one byte of sequence
        // space); the payload is the rest, to the byte.
        assert_eq!(client.bytes, Some((123_456 + 1, 789)));
        assert_eq!(server.bytes, Some((789, 123_456)));
        // Loopback: never anyone's traffic.
        assert_eq!(classify(client.local, client.remote, &[]), Peer::Local);
    }

    #[test]
    fn any_bytes_parse_or_fail_without_panicking() {
        let base = msg(AF_INET, &[10, 0, 0, 1], &[8, 8, 8, 8], 1, 1, (1, 1));
        for cut in 0..base.len() {
            let mut out = Vec::new();
            let _ = parse_dump(&base[..cut], &mut out);
            let mut b = base.clone();
            b[cut] ^= 0xff;
            let _ = parse_dump(&b, &mut out);
        }
    }

    #[test]
    fn the_request_is_an_inet_diag_req_v2_for_the_states_that_move_bytes() {
        let r = dump_request(AF_INET6, 7);
        assert_eq!(r.len(), 72);
        assert_eq!(u32_ne(&r, 0), Some(72));
        assert_eq!(u16_ne(&r, 4), Some(SOCK_DIAG_BY_FAMILY));
        assert_eq!(u16_ne(&r, 6), Some(0x301));
        assert_eq!(u32_ne(&r, 8), Some(7));
        assert_eq!(&r[16..20], &[AF_INET6, 6, 0b10, 0]);
        let states = u32_ne(&r, 20).unwrap();
        for moving in [1, 2, 3, 4, 5, 7, 8, 9, 11] {
            assert!(states & (1 << moving) != 0, "state {moving}");
        }
        for idle in [6, 10, 12] {
            assert!(states & (1 << idle) == 0, "state {idle}");
        }
        assert!(r[24..].iter().all(|b| *b == 0));
    }

    fn sock(cookie: u64, inode: u32, remote: &str, bytes: (u64, u64)) -> DiagSocket {
        DiagSocket {
            local: v4("10.9.0.1"),
            remote: v4(remote),
            local_port: 1,
            remote_port: 2,
            cookie,
            inode,
            uid: 1000,
            bytes: Some(bytes),
        }
    }

    /// A tree whose sockets are `now`, and `after` once it is scanned again.
    struct FakeTree {
        now: HashSet<u32>,
        after: Option<HashSet<u32>>,
        generation: u64,
        lookups: u32,
        rescans: u32,
    }

    impl FakeTree {
        fn new(now: &[u32]) -> Self {
            FakeTree {
                now: now.iter().copied().collect(),
                after: None,
                generation: 1,
                lookups: 0,
                rescans: 0,
            }
        }
    }

    impl Tree for FakeTree {
        fn inodes(&mut self) -> HashSet<u32> {
            self.lookups += 1;
            self.now.clone()
        }
        fn generation(&self) -> u64 {
            self.generation
        }
        fn rescan(&mut self) -> bool {
            self.rescans += 1;
            self.generation += 1;
            if let Some(a) = self.after.take() {
                self.now = a;
            }
            true
        }
        fn uid(&self) -> Option<u32> {
            Some(1000)
        }
    }

    fn dump<'a>(sockets: &'a [DiagSocket], destroyed: &'a [DiagSocket]) -> Dump<'a> {
        Dump { sockets, destroyed }
    }

    #[test]
    fn only_the_trees_sockets_count_and_closed_ones_keep_their_last_value() {
        let mut l = Ledger::new(vec![]);
        let mut tree = FakeTree::new(&[11, 12]);
        // Tick 1: ours to a cluster peer (11), ours to the internet (12), someone else's (13,
        // another user's: no rescan for it), and a loopback socket of ours (never counts).
        let mut theirs = sock(3, 13, "10.9.0.2", (999, 999));
        theirs.uid = 0;
        let s = [
            sock(1, 11, "10.9.0.2", (100, 10)),
            sock(2, 12, "1.1.1.1", (7, 70)),
            theirs.clone(),
            sock(4, 11, "127.0.0.1", (5000, 5000)),
        ];
        let t = l.update(&dump(&s, &[]), &mut tree);
        assert_eq!((t.cluster.tx_bytes, t.cluster.rx_bytes), (100, 10));
        assert_eq!((t.internet.tx_bytes, t.internet.rx_bytes), (7, 70));
        assert_eq!(l.open_sockets(), 2);
        assert_eq!((tree.lookups, tree.rescans), (1, 0));
        // Tick 2: the command closed 11 (now orphaned, inode 0, still draining: 150 acked),
        // 12 is gone between ticks, 13 moved more; nothing new: no /proc lookup.
        theirs.bytes = Some((5000, 5000));
        let s = [sock(1, 0, "10.9.0.2", (150, 10)), theirs];
        let t = l.update(&dump(&s, &[]), &mut tree);
        assert_eq!(
            (t.cluster.tx_bytes, t.internet.tx_bytes),
            (150, 7),
            "12 kept at its last value"
        );
        // Tick 3: everything gone; a destroy notification gives 11's final count (200 acked)
        // a tick late; the totals stay.
        let fin = [sock(1, 0, "10.9.0.2", (200, 10))];
        let t = l.update(&dump(&[], &[]), &mut tree);
        assert_eq!(t.cluster.tx_bytes, 150);
        let t = l.update(&dump(&[], &fin), &mut tree);
        assert_eq!((t.cluster.tx_bytes, t.cluster.rx_bytes), (200, 10));
        assert_eq!((t.internet.tx_bytes, t.internet.rx_bytes), (7, 70));
        for _ in 0..3 {
            let t = l.update(&dump(&[], &[]), &mut tree);
            assert_eq!((t.cluster.tx_bytes, t.internet.rx_bytes), (200, 70));
        }
        assert_eq!(l.open_sockets(), 0, "folded into the closed totals");
        assert_eq!(tree.lookups, 1, "one /proc lookup, on the first dump only");
    }

    #[test]
    fn a_new_socket_of_a_child_the_tree_does_not_know_yet_is_found_by_a_rescan() {
        let mut l = Ledger::new(vec![]);
        let mut tree = FakeTree::new(&[]);
        tree.after = Some([21].into());
        let s = [sock(1, 21, "10.9.0.2", (500, 0))];
        let t = l.update(&dump(&s, &[]), &mut tree);
        assert_eq!(t.cluster.tx_bytes, 500);
        assert_eq!((tree.lookups, tree.rescans), (2, 1));
        // Known now: not looked for again.
        let s = [sock(1, 21, "10.9.0.2", (800, 0))];
        let t = l.update(&dump(&s, &[]), &mut tree);
        assert_eq!(t.cluster.tx_bytes, 800);
        assert_eq!((tree.lookups, tree.rescans), (2, 1));
    }

    #[test]
    fn a_socket_found_at_a_later_scan_counts_whole() {
        let mut l = Ledger::new(vec![]);
        // A rescan that is not due finds nothing new: the socket is not the tree's for now.
        struct Late(FakeTree);
        impl Tree for Late {
            fn inodes(&mut self) -> HashSet<u32> {
                self.0.inodes()
            }
            fn generation(&self) -> u64 {
                self.0.generation
            }
            fn rescan(&mut self) -> bool {
                false
            }
            fn uid(&self) -> Option<u32> {
                None
            }
        }
        let mut tree = Late(FakeTree::new(&[]));
        let s = [sock(1, 21, "10.9.0.2", (500, 0))];
        assert_eq!(l.update(&dump(&s, &[]), &mut tree).cluster.tx_bytes, 0);
        // Same generation: not looked for again.
        assert_eq!(l.update(&dump(&s, &[]), &mut tree).cluster.tx_bytes, 0);
        assert_eq!(tree.0.lookups, 1);
        // The tree was scanned again (its own schedule) and has the child: the socket counts
        // from its start.
        tree.0.generation = 2;
        tree.0.now = [21].into();
        let s = [sock(1, 21, "10.9.0.2", (800, 0))];
        assert_eq!(l.update(&dump(&s, &[]), &mut tree).cluster.tx_bytes, 800);
    }
}
