//! Which client holds which cap, and what goes back when a client leaves — pure, so the rules
//! are tested without sockets or NVML.
//!
//! Per GPU capd keeps the cap found before any client changed it (the original) and, per
//! client that set it, the last cap it asked for. The latest request of a connected client is
//! in force. When a client leaves (or asks `restore`), its request goes; if it was in force,
//! the latest remaining request takes its place, and when none remains the original comes
//! back. A client that asked `keep` leaves its cap as the GPU's new original instead.

use std::collections::BTreeMap;

/// A connection, numbered by capd.
pub type ClientId = u64;

#[derive(Debug, Clone, PartialEq)]
struct Hold {
    original_mw: u32,
    /// (client, cap it asked for), oldest first: the last one is in force.
    by: Vec<(ClientId, u32)>,
}

/// A cap to set because a client left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put {
    pub gpu: String,
    pub mw: u32,
}

#[derive(Debug, Default)]
pub struct Holds {
    gpus: BTreeMap<String, Hold>,
}

impl Holds {
    /// `client` set `gpu` from `old_mw` to `new_mw`.
    pub fn set(&mut self, client: ClientId, gpu: &str, old_mw: u32, new_mw: u32) {
        let h = self.gpus.entry(gpu.to_owned()).or_insert(Hold {
            original_mw: old_mw,
            by: Vec::new(),
        });
        h.by.retain(|(c, _)| *c != client);
        h.by.push((client, new_mw));
    }

    /// Whether `client` holds any cap.
    pub fn holds_any(&self, client: ClientId) -> bool {
        self.gpus
            .values()
            .any(|h| h.by.iter().any(|(c, _)| *c == client))
    }

    /// The GPUs `client` holds.
    pub fn held_by(&self, client: ClientId) -> Vec<String> {
        self.gpus
            .iter()
            .filter(|(_, h)| h.by.iter().any(|(c, _)| *c == client))
            .map(|(g, _)| g.clone())
            .collect()
    }

    /// `client` lets go of `gpu` (keeping its cap as the new original with `keep`): the cap
    /// to set now, if any.
    pub fn release(&mut self, client: ClientId, gpu: &str, keep: bool) -> Option<Put> {
        let h = self.gpus.get_mut(gpu)?;
        let at = h.by.iter().position(|(c, _)| *c == client)?;
        let in_force = at + 1 == h.by.len();
        let (_, mine) = h.by.remove(at);
        if keep && in_force {
            h.original_mw = mine;
        }
        let put = match h.by.last() {
            Some(&(_, mw)) if in_force => Some(mw),
            Some(_) => None,
            None if keep => None,
            None => Some(h.original_mw),
        };
        if h.by.is_empty() {
            self.gpus.remove(gpu);
        }
        put.map(|mw| Put {
            gpu: gpu.to_owned(),
            mw,
        })
    }

    /// What to set when `client` goes: every GPU it held.
    pub fn leave(&mut self, client: ClientId, keep: bool) -> Vec<Put> {
        self.held_by(client)
            .iter()
            .filter_map(|g| self.release(client, g, keep))
            .collect()
    }

    /// The clients holding any cap, for the stop.
    pub fn clients(&self) -> Vec<ClientId> {
        let mut c: Vec<ClientId> = self
            .gpus
            .values()
            .flat_map(|h| h.by.iter().map(|(c, _)| *c))
            .collect();
        c.sort_unstable();
        c.dedup();
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(gpu: &str, mw: u32) -> Option<Put> {
        Some(Put {
            gpu: gpu.into(),
            mw,
        })
    }

    #[test]
    fn one_client_gets_the_original_back_when_it_leaves() {
        let mut h = Holds::default();
        h.set(1, "A", 280, 200);
        h.set(1, "A", 200, 150);
        h.set(1, "B", 300, 250);
        assert!(h.holds_any(1) && !h.holds_any(2));
        let mut back = h.leave(1, false);
        back.sort_by(|a, b| a.gpu.cmp(&b.gpu));
        assert_eq!(back, vec![put("A", 280).unwrap(), put("B", 300).unwrap()]);
        assert!(!h.holds_any(1));
        assert!(h.leave(1, false).is_empty(), "nothing twice");
    }

    #[test]
    fn two_clients_on_one_gpu_the_latest_request_of_those_left_is_in_force() {
        let mut h = Holds::default();
        h.set(1, "A", 280, 200);
        h.set(2, "A", 200, 250);
        // 2 is in force; 1 leaving changes nothing.
        assert_eq!(h.release(1, "A", false), None);
        // 2 leaving: the original, the one found before either came.
        assert_eq!(h.release(2, "A", false), put("A", 280));

        h.set(1, "A", 280, 200);
        h.set(2, "A", 200, 250);
        // 2 leaves first: 1's request comes back into force.
        assert_eq!(h.leave(2, false), vec![put("A", 200).unwrap()]);
        assert_eq!(h.leave(1, false), vec![put("A", 280).unwrap()]);
    }

    #[test]
    fn keep_makes_the_cap_the_new_original() {
        let mut h = Holds::default();
        h.set(1, "A", 280, 200);
        assert!(h.leave(1, true).is_empty(), "kept: nothing set");
        assert!(h.clients().is_empty());
        h.set(1, "A", 200, 150);
        h.set(2, "A", 150, 180);
        // 2 keeps 180 with 1 still there: 1's 150 is in force, 180 the original after it.
        assert_eq!(h.leave(2, true), vec![put("A", 150).unwrap()]);
        assert_eq!(h.leave(1, false), vec![put("A", 180).unwrap()]);
    }
}
