//! sock_diag netlink answers as the kernel sends them (`source::sockdiag`): any bytes parse to
//! sockets or a named error, never a panic; whatever sockets they hold, the command's traffic
//! folded from them never goes down.
#![no_main]

use carbontop::source::sockdiag::{Dump, Ledger, Tree, parse_dump};
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;

/// A tree holding every socket with an odd inode.
struct Odd(HashSet<u32>);

impl Tree for Odd {
    fn inodes(&mut self) -> HashSet<u32> {
        self.0.clone()
    }
    fn generation(&self) -> u64 {
        1
    }
    fn rescan(&mut self) -> bool {
        false
    }
    fn uid(&self) -> Option<u32> {
        None
    }
}

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let _ = parse_dump(data, &mut out);
    let mut tree = Odd(out.iter().map(|s| s.inode).filter(|i| i % 2 == 1).collect());
    let mut l = Ledger::new(Vec::new());
    let mut last = 0u64;
    // The same sockets dumped, then destroyed, then gone.
    for (sockets, destroyed) in [(&out[..], &[][..]), (&[][..], &out[..]), (&[][..], &[][..])] {
        let t = l.update(&Dump { sockets, destroyed }, &mut tree);
        let total = t.cluster.total().saturating_add(t.internet.total());
        assert!(total >= last, "the command's traffic went down");
        last = total;
    }
});
