//! Thermal design power of CPUs, for the CPU estimate when RAPL is absent (DESIGN.md §5).
//!
//! The table is CodeCarbon 3.3.2's `cpu_power.csv` (4,918 models, Intel ARK and AMD
//! specifications; MIT licence, attribution in `data/hardware/README.md`), embedded and parsed
//! once into rows that borrow their names from the embedded text (no copy per row: a
//! recorder's peak memory stays small; each row's lower-cased name and words are made while a
//! brand string is matched, one row at a time). A brand string is matched against it with
//! CodeCarbon 3.3.2's own rules (`TDP._get_matching_cpu` in `codecarbon/core/cpu.py`), so the
//! same CPU gets the same TDP in both tools:
//!
//! 1. direct match: the first row whose name equals the brand string, case-insensitively
//!    (rapidfuzz `process.extractOne` with `str.lower` and `fuzz.ratio` ≥ 100);
//! 2. the brand string is normalised — `(R)` removed, everything from ` CPU @ ` on cut, ` CPU`
//!    removed, ` @ 2.30GHz` removed — and the direct match is tried again;
//! 3. token-set match: every row scored by rapidfuzz's `fuzz.token_set_ratio` after
//!    `utils.default_process`, keeping scores ≥ 100 (`THRESHOLD_TOKEN_SET`), the five best
//!    (`process.extract`'s default limit), best first, ties by row order. One such row, or a
//!    best score above the second's, is the match; two or more rows tied at the top match
//!    nothing (CodeCarbon's non-greedy mode). With the threshold at 100 a row matches when
//!    its words are a subset of the brand's or the brand's of its, so a bare
//!    `Intel(R) Xeon(R) CPU @ 2.20GHz` (a GCP VM, no model number) matches every Xeon row and
//!    therefore none.
//!
//! A model that does not match falls back to CodeCarbon's 4 W per thread
//! (`engine::constants::unknown_cpu_tdp_w`); `--cpu-tdp W` overrides both.

use std::sync::OnceLock;

/// The embedded table (CodeCarbon 3.3.2 `cpu_power.csv`, columns `Name,TDP`).
const CPU_TDP_CSV: &str = include_str!("../../data/hardware/cpu_tdp.csv");

/// CodeCarbon's `THRESHOLD_DIRECT` and `THRESHOLD_TOKEN_SET` (both 100).
const THRESHOLD: f64 = 100.0;
/// rapidfuzz `process.extract`'s default `limit`.
const EXTRACT_LIMIT: usize = 5;

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuRow {
    /// The model as the table writes it, e.g. `Intel Xeon Platinum 8380`.
    pub name: &'static str,
    /// TDP per package in W; `None` where the table's cell is not a positive number (four
    /// Celerons read `27.29.5` and the like, on which CodeCarbon raises; the Quark D1000 reads
    /// 0, which CodeCarbon's `if power:` takes for unknown).
    pub tdp_w: Option<f64>,
}

/// The rows in file order, parsed on first use.
pub fn table() -> &'static [CpuRow] {
    static TABLE: OnceLock<Vec<CpuRow>> = OnceLock::new();
    TABLE.get_or_init(|| parse_table(CPU_TDP_CSV))
}

/// `Name,TDP` lines after the header: the name up to the line's last comma (a name with a comma
/// is quoted, and no name holds a quote; `the_table_reads_as_csv_does` checks this against the
/// csv crate), the TDP after it.
fn parse_table(text: &'static str) -> Vec<CpuRow> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let (name, tdp) = line.rsplit_once(',')?;
            let name = name
                .strip_prefix('"')
                .and_then(|n| n.strip_suffix('"'))
                .unwrap_or(name);
            let tdp_w = tdp
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|w| w.is_finite() && *w > 0.0);
            Some(CpuRow { name, tdp_w })
        })
        .collect()
}

/// How a row was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// The brand string equals the row's name (case-insensitive), as given or normalised.
    Direct,
    /// The row's words and the normalised brand's words: one set contains the other, and no
    /// other row ties with it.
    TokenSet,
}

/// A matched model.
#[derive(Debug, Clone, PartialEq)]
pub struct TdpMatch {
    pub row: &'static CpuRow,
    pub kind: MatchKind,
}

/// The table row CodeCarbon 3.3.2 would pick for `brand` (non-greedy), if any.
pub fn lookup(brand: &str) -> Option<TdpMatch> {
    matching_row(table(), brand)
}

/// The first row whose lower-cased name is `s` lower-cased.
fn direct(rows: &'static [CpuRow], s: &str) -> Option<&'static CpuRow> {
    let q = s.to_lowercase();
    rows.iter().find(|r| {
        if r.name.is_ascii() {
            // `q` is lower-cased, so its ASCII letters are lower case: equal to the name's
            // ASCII lower-casing (what `to_lowercase` makes of ASCII) exactly when this holds.
            r.name.eq_ignore_ascii_case(&q)
        } else {
            r.name.to_lowercase() == q
        }
    })
}

/// `TDP._get_matching_cpu(model_raw, cpu_df, greedy=False)` over `rows`.
pub fn matching_row(rows: &'static [CpuRow], brand: &str) -> Option<TdpMatch> {
    if let Some(row) = direct(rows, brand) {
        return Some(TdpMatch {
            row,
            kind: MatchKind::Direct,
        });
    }
    let model = normalise(brand);
    if let Some(row) = direct(rows, &model) {
        return Some(TdpMatch {
            row,
            kind: MatchKind::Direct,
        });
    }
    let query = token_set(&default_process(&model));
    let mut hits: Vec<(f64, usize)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let name = default_process(r.name);
            let words = word_set(&name);
            (token_set_ratio_sorted(&query, &words, THRESHOLD), i)
        })
        .filter(|&(score, _)| score >= THRESHOLD)
        .collect();
    // Best first, ties in row order (rapidfuzz sorts by score, then by index).
    hits.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    hits.truncate(EXTRACT_LIMIT);
    match hits.as_slice() {
        [(_, i)] => Some(*i),
        [(best, i), (second, _), ..] if best != second => Some(*i),
        _ => None,
    }
    .map(|i| TdpMatch {
        row: &rows[i],
        kind: MatchKind::TokenSet,
    })
}

/// CodeCarbon's clean-up of the brand string before its second direct match and the token-set
/// match (`codecarbon/core/cpu.py`, `_get_matching_cpu`): `(R)` removed; from ` CPU @ ` on cut
/// off (when it is not at the start); ` CPU` removed; ` @ <d>.<d>GHz` removed. `(TM)` and
/// `Processor` stay: the token-set match copes with them, since extra words in the brand do
/// not lower a subset score.
pub fn normalise(brand: &str) -> String {
    static GHZ: OnceLock<Option<regex::Regex>> = OnceLock::new();
    let mut m = brand.replace("(R)", "");
    if let Some(i) = m.find(" CPU @ ")
        && i > 0
    {
        m.truncate(i);
    }
    let m = m.replace(" CPU", "");
    // The pattern needs "GHz": without it, no regex is compiled (a few hundred KiB at start).
    if !m.contains("GHz") {
        return m;
    }
    match GHZ
        .get_or_init(|| regex::Regex::new(r" @\s*\d+\.\d+GHz").ok())
        .as_ref()
    {
        Some(re) => re.replace_all(&m, "").into_owned(),
        None => m,
    }
}

/// rapidfuzz's `utils.default_process` (its compiled implementation, the one CodeCarbon runs):
/// every character that is not alphanumeric becomes a space (the underscore included), then
/// the ends are trimmed and the rest lower-cased. Rust's `char::is_alphanumeric` (Unicode
/// Alphabetic or Numeric) stands for rapidfuzz's table; they agree on every name in the table.
pub fn default_process(s: &str) -> String {
    let spaced: String = s
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    spaced.trim().to_lowercase()
}

/// The Indel distance (insertions and deletions only): `|a| + |b| − 2 × LCS(a, b)`, over
/// Unicode scalar values as Python counts a `str`.
pub fn indel_distance(a: &[char], b: &[char]) -> usize {
    // One row of the longest-common-subsequence table at a time.
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for &ca in a {
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = if ca == cb {
                prev[j] + 1
            } else {
                cur[j].max(prev[j + 1])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    a.len() + b.len() - 2 * prev[b.len()]
}

/// [`indel_distance`], or any value above `max` when it exceeds `max` (rapidfuzz's
/// `score_cutoff`): the lengths alone bound it from below, and a cutoff of 0 needs only
/// equality.
fn indel_distance_bounded(a: &[char], b: &[char], max: usize) -> usize {
    if a.len().abs_diff(b.len()) > max {
        max + 1
    } else if max == 0 {
        usize::from(a != b)
    } else {
        indel_distance(a, b)
    }
}

/// rapidfuzz's `_norm_distance`: 100 × (1 − dist / lensum) (100 for two empty strings),
/// 0 below `cutoff`.
fn norm_distance(dist: usize, lensum: usize, cutoff: f64) -> f64 {
    let score = if lensum == 0 {
        100.0
    } else {
        100.0 - 100.0 * dist as f64 / lensum as f64
    };
    if score >= cutoff { score } else { 0.0 }
}

/// rapidfuzz's `fuzz.ratio`: the normalised Indel similarity in percent.
pub fn ratio(a: &str, b: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    norm_distance(indel_distance(&a, &b), a.len() + b.len(), 0.0)
}

/// The whitespace-separated words of `s`, sorted (byte order, which for UTF-8 is Python's
/// code-point order) and unique: a set.
fn token_set(s: &str) -> Vec<String> {
    word_set(s).into_iter().map(str::to_owned).collect()
}

/// [`token_set`] borrowing from `s`.
fn word_set(s: &str) -> Vec<&str> {
    let mut t: Vec<&str> = s.split_whitespace().collect();
    t.sort_unstable();
    t.dedup();
    t
}

/// rapidfuzz 3.x `fuzz.token_set_ratio(s1, s2, score_cutoff=cutoff)` on already processed
/// strings (`fuzz_py.py`, the reference its compiled version follows):
/// - split both on whitespace into sets of words; either empty → 0;
/// - a common word and one set inside the other → 100;
/// - otherwise the best of: `ratio` of the two sorted, space-joined differences (its length
///   sum counted as `sect + diff_ab` plus `sect + diff_ba`, the separators included), and the
///   ratios of the intersection against intersection + each difference, whose Indel distance
///   is only the difference's length (plus its separator);
/// - each part is 0 when below `cutoff`.
pub fn token_set_ratio(s1: &str, s2: &str, cutoff: f64) -> f64 {
    token_set_ratio_sorted(&token_set(s1), &token_set(s2), cutoff)
}

/// [`token_set_ratio`] on two word sets already split, sorted and deduplicated.
fn token_set_ratio_sorted<A: AsRef<str>, B: AsRef<str>>(a: &[A], b: &[B], cutoff: f64) -> f64 {
    if cutoff > 100.0 || a.is_empty() || b.is_empty() {
        return 0.0;
    }
    // One merge of the sorted sets: the intersection and both differences.
    let (mut sect, mut diff_ab, mut diff_ba) = (Vec::new(), Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i).map(AsRef::as_ref), b.get(j).map(AsRef::as_ref)) {
            (Some(x), Some(y)) if x == y => {
                sect.push(x);
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => {
                diff_ab.push(x);
                i += 1;
            }
            (Some(_), Some(y)) | (None, Some(y)) => {
                diff_ba.push(y);
                j += 1;
            }
            (Some(x), None) => {
                diff_ab.push(x);
                i += 1;
            }
            (None, None) => break,
        }
    }
    if !sect.is_empty() && (diff_ab.is_empty() || diff_ba.is_empty()) {
        return 100.0;
    }
    let ab: Vec<char> = diff_ab.join(" ").chars().collect();
    let ba: Vec<char> = diff_ba.join(" ").chars().collect();
    let sect_len = sect.join(" ").chars().count();
    let sep = usize::from(sect_len != 0);
    let sect_ab_len = sect_len + sep + ab.len();
    let sect_ba_len = sect_len + sep + ba.len();

    let total = sect_ab_len + sect_ba_len;
    let cutoff_distance = (total as f64 * (1.0 - cutoff / 100.0)).ceil() as usize;
    let dist = indel_distance_bounded(&ab, &ba, cutoff_distance);
    let mut result = 0.0;
    if dist <= cutoff_distance {
        result = norm_distance(dist, total, cutoff);
    }
    if sect_len == 0 {
        return result;
    }
    let sect_ab_ratio = norm_distance(sep + ab.len(), sect_len + sect_ab_len, cutoff);
    let sect_ba_ratio = norm_distance(sep + ba.len(), sect_len + sect_ba_len, cutoff);
    result.max(sect_ab_ratio).max(sect_ba_ratio)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tdp(brand: &str) -> Option<(&'static str, Option<f64>)> {
        lookup(brand).map(|m| (m.row.name, m.row.tdp_w))
    }

    #[test]
    fn the_whole_table_is_embedded() {
        let t = table();
        assert_eq!(t.len(), 4918);
        assert_eq!(t[0].name, "1075T");
        assert_eq!(t[0].tdp_w, Some(95.0));
        // Quoted names with commas survive.
        assert!(
            t.iter()
                .any(|r| r.name == "Intel EP80579 Integrated, 1066 MHz")
        );
        // Cells that are not numbers, and a 0 W row (which CodeCarbon's `if power:` treats as
        // unknown), are kept as rows without a TDP.
        let c = t.iter().find(|r| r.name == "Intel Celeron 1000A").unwrap();
        assert_eq!(c.tdp_w, None);
        assert_eq!(t.iter().filter(|r| r.tdp_w.is_none()).count(), 5);
    }

    #[test]
    fn the_table_reads_as_csv_does() {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(CPU_TDP_CSV.as_bytes());
        let want: Vec<(String, Option<f64>)> = rdr
            .records()
            .map(|r| {
                let r = r.unwrap();
                let w = r[1].trim().parse::<f64>().ok();
                (r[0].to_owned(), w.filter(|w| w.is_finite() && *w > 0.0))
            })
            .collect();
        let got: Vec<(String, Option<f64>)> = table()
            .iter()
            .map(|r| (r.name.to_owned(), r.tdp_w))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn cloud_and_desktop_brand_strings() {
        // Expected rows and TDPs are what CodeCarbon 3.3.2 itself returns for these strings
        // (TDP()._get_matching_cpu run on its own cpu_power.csv).
        assert_eq!(
            tdp("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"),
            Some(("Intel Xeon Platinum 8375C", Some(300.0)))
        );
        assert_eq!(
            tdp("AMD EPYC 7R13 Processor"),
            Some(("AMD EPYC 7R13", Some(225.0)))
        );
        assert_eq!(tdp("AMD EPYC 7B12"), Some(("AMD EPYC 7B12", Some(240.0))));
        assert_eq!(
            tdp("Intel(R) Core(TM) i9-13900K"),
            Some(("Intel Core i9-13900K", Some(125.0)))
        );
        assert_eq!(
            tdp("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz"),
            Some(("Intel Xeon Platinum 8380", Some(270.0)))
        );
        assert_eq!(
            tdp("AMD EPYC 7763 64-Core Processor"),
            Some(("AMD EPYC 7763", Some(280.0)))
        );
        // No model number (GCP's brand string; this VM's "AMD EPYC"): many rows tie, none wins.
        assert_eq!(tdp("Intel(R) Xeon(R) CPU @ 2.20GHz"), None);
        assert_eq!(tdp("AMD EPYC"), None);
        assert_eq!(tdp(""), None);
        // Case-insensitive direct match; the first of two rows differing only in case wins.
        assert_eq!(
            tdp("intel core i5-750s"),
            Some(("Intel Core i5-750S", Some(82.0)))
        );
        // A row whose TDP is not a number matches, but gives no TDP.
        assert_eq!(
            tdp("Intel Celeron 1000A"),
            Some(("Intel Celeron 1000A", None))
        );
    }

    #[test]
    fn normalisation_follows_codecarbon() {
        assert_eq!(
            normalise("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"),
            "Intel Xeon Gold 6248"
        );
        assert_eq!(
            normalise("Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz"),
            "Intel Core(TM) i7-8700"
        );
        assert_eq!(
            normalise("Intel(R) Core(TM) i7-8700 @ 3.20GHz"),
            "Intel Core(TM) i7-8700"
        );
        // " CPU @ " at the very start is not cut (CodeCarbon tests `> 0`).
        assert_eq!(normalise("X CPU @ 1.00GHz extra"), "X");
        assert_eq!(normalise(" CPU @ 1.00GHz extra"), " extra");
        assert_eq!(
            default_process(" Core(TM) i9_13900K® "),
            "core tm  i9 13900k"
        );
    }

    #[test]
    fn token_set_ratio_matches_rapidfuzz() {
        // Values printed by rapidfuzz 3.14.6 (fuzz.token_set_ratio, no processor).
        let close = |a: &str, b: &str, want: f64| {
            let got = token_set_ratio(a, b, 0.0);
            assert!((got - want).abs() < 1e-9, "{a:?} {b:?}: {got} != {want}");
        };
        close("fuzzy was a bear", "fuzzy fuzzy was a bear", 100.0);
        close(
            "fuzzy was a bear but not a dog",
            "fuzzy was a bear but not a cat",
            92.3076923076923,
        );
        close("", "a", 0.0);
        close("abc", "xyz", 0.0);
        // The cutoff zeroes what falls below it.
        assert_eq!(
            token_set_ratio(
                "fuzzy was a bear but not a dog",
                "fuzzy was a bear but not a cat",
                95.0
            ),
            0.0
        );
        assert!((ratio("this is a test", "this is a test!") - 96.55172413793103).abs() < 1e-9);
        assert_eq!(ratio("", ""), 100.0);
    }
}
