//! The nearest known zones to one the tables do not know, for the error message.

use super::{AliasKind, data};

/// Only this much of what was typed is compared: a zone is short, and any input stays cheap.
const MAX_CHARS: usize = 48;

/// Levenshtein distance between two short strings, by characters.
fn distance(a: &[char], b: &[char]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Up to `n` zones nearest `zone`: a place whose name starts with it first (`italy` → IT,
/// `georgia` → GE and US-GA), then codes it begins, then codes or names within a few edits
/// (`gcp:europe-west7` → gcp:europe-west1, …; `itly` → IT).
pub fn nearest(zone: &str, n: usize) -> Vec<String> {
    let q: Vec<char> = super::key(zone).chars().take(MAX_CHARS).collect();
    if q.is_empty() {
        return Vec::new();
    }
    let qs: String = q.iter().collect();
    let t = data::table();
    let max = (q.len() / 3).clamp(1, 3);
    let mut scored: Vec<(usize, usize, String)> = Vec::new();
    let codes = t
        .entries
        .iter()
        .map(|e| (e.zone.as_str(), Some(&e.name), 0))
        .chain(
            t.aliases
                .iter()
                .filter(|a| a.kind != AliasKind::WattTimePrefix)
                .map(|a| (a.code.as_str(), None, 1)),
        );
    for (code, name, rank) in codes {
        let c: Vec<char> = code.to_ascii_uppercase().chars().collect();
        let by_name =
            q.len() >= 3 && name.is_some_and(|n| n.to_ascii_uppercase().starts_with(qs.as_str()));
        let by_prefix = q.len() >= 2 && c.starts_with(&q);
        // A misspelt place (`itly`, `germny`) is as near as a misspelt code.
        let name_distance = || {
            name.filter(|_| q.len() >= 4).map_or(usize::MAX, |n| {
                let n: Vec<char> = n.to_ascii_uppercase().chars().take(MAX_CHARS).collect();
                distance(&q, &n)
            })
        };
        let score = if by_name {
            0
        } else if by_prefix {
            1
        } else {
            distance(&q, &c).min(name_distance()).saturating_add(1)
        };
        if score <= max + 1 {
            scored.push((score, rank, code.to_owned()));
        }
    }
    scored.sort();
    scored.dedup_by(|a, b| a.2 == b.2);
    scored.into_iter().take(n).map(|(.., c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(a: &str, b: &str) -> usize {
        let a: Vec<char> = a.chars().collect();
        let b: Vec<char> = b.chars().collect();
        distance(&a, &b)
    }

    #[test]
    fn edit_distance() {
        assert_eq!(d("", ""), 0);
        assert_eq!(d("FR", ""), 2);
        assert_eq!(d("KITTEN", "SITTING"), 3);
        assert_eq!(d("GCP:EUROPE-WEST7", "GCP:EUROPE-WEST1"), 1);
    }

    #[test]
    fn near_misses_find_their_zone() {
        let s = nearest("gcp:europe-west7", 5);
        assert_eq!(s.len(), 5, "{s:?}");
        assert!(s.iter().all(|z| z.starts_with("gcp:europe-west")), "{s:?}");
        assert_eq!(s[0], "gcp:europe-west1");
        assert_eq!(nearest("italy", 3).first().map(String::as_str), Some("IT"));
        assert_eq!(nearest("itly", 3).first().map(String::as_str), Some("IT"));
        assert!(nearest("germny", 3).contains(&"DE".into()));
        let g = nearest("Georgia", 5);
        assert!(
            g.contains(&"GE".into()) && g.contains(&"US-GA".into()),
            "{g:?}"
        );
        assert_eq!(
            nearest("US-CX", 5).first().map(String::as_str),
            Some("US-CA")
        );
        assert_eq!(
            nearest("aws:us-east-9", 2),
            vec!["aws:us-east-1".to_owned(), "aws:us-east-2".to_owned()]
        );
        assert!(nearest("", 5).is_empty());
        assert!(nearest("   ", 5).is_empty());
    }

    #[test]
    fn hostile_input_is_cheap_and_harmless() {
        let long = "x".repeat(100_000);
        assert!(nearest(&long, 5).len() <= 5);
        for s in ["\u{0}", "é", "🦀🦀", "-", ":", "::", "gcp:", ":x", "a\nb"] {
            let _ = nearest(s, 5);
        }
    }
}
