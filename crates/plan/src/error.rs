//! Located errors and "did you mean" hints.

use serde_saphyr::Location;

use crate::PlanError;

/// Builds errors for one file.
#[derive(Debug, Clone)]
pub struct Errs {
    pub file: String,
}

impl Errs {
    pub fn at(&self, loc: &Location, message: impl Into<String>) -> PlanError {
        PlanError {
            file: self.file.clone(),
            line: loc.line() as usize,
            column: loc.column() as usize,
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(&self, loc: &Location, message: impl Into<String>, hint: impl Into<String>) -> PlanError {
        let mut e = self.at(loc, message);
        e.hint = Some(hint.into());
        e
    }

    /// An error not tied to a place in the file (line and column 0 are shown as 1:1).
    pub fn whole(&self, message: impl Into<String>) -> PlanError {
        PlanError {
            file: self.file.clone(),
            line: 1,
            column: 1,
            message: message.into(),
            hint: None,
        }
    }
}

/// At most this many edits make a suggestion, whatever the word's length.
const MAX_EDITS: usize = 8;
/// At most this many candidates (of a length that could match) are compared.
const MAX_CANDIDATES: usize = 10_000;

/// Levenshtein distance between `a` and `b` if it is at most `limit`: only the cells within
/// `limit` of the diagonal are computed, and the comparison stops as soon as a whole row is
/// over the limit, so the cost is at most `a.len() × (2 × limit + 1)`.
pub fn distance_within(a: &[char], b: &[char], limit: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let over = limit + 1;
    // prev[j]: distance between a[..i] and b[..j], capped at `over`. Only the band of cells
    // within `limit` of the diagonal is written: a cell right of every band so far still
    // holds its first value, `over`; the one just left of the band is reset below.
    let mut prev: Vec<usize> = (0..=b.len()).map(|j| j.min(over)).collect();
    let mut cur = vec![over; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        let lo = (i + 1).saturating_sub(limit);
        let hi = (i + 1 + limit).min(b.len());
        if lo == 0 {
            cur[0] = (i + 1).min(over);
        } else {
            cur[lo - 1] = over;
        }
        let mut best = if lo == 0 { cur[0] } else { over };
        for j in lo.max(1)..=hi {
            let cost = usize::from(*ca != b[j - 1]);
            let d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost).min(over);
            cur[j] = d;
            best = best.min(d);
        }
        if best > limit {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[b.len()]).filter(|d| *d <= limit)
}

/// The closest candidate within a small edit distance (a third of the word, at least 2, at
/// most 8; the first of the closest). Only candidates of a length that could be that close
/// are compared, at most 10,000 of them, each in time proportional to its length: the cost
/// grows with the plan's size, never with its square.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word: Vec<char> = word.chars().collect();
    let reach = (word.len() / 3).clamp(2, MAX_EDITS);
    let mut limit = reach;
    let mut best = None;
    let mut buf = Vec::new();
    let near = candidates.into_iter().filter(|c| {
        // A candidate has at least a quarter as many characters as bytes.
        c.len() / 4 <= word.len() + reach && c.len() + reach >= word.len()
    });
    for c in near.take(MAX_CANDIDATES) {
        buf.clear();
        buf.extend(c.chars().take(word.len() + limit + 1));
        if let Some(d) = distance_within(&word, &buf, limit) {
            best = Some(c);
            // Later candidates must be strictly closer to replace this one.
            match d.checked_sub(1) {
                Some(l) => limit = l,
                None => break,
            }
        }
    }
    best
}

/// `did you mean `x`?` when something is close.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Levenshtein distance, over the whole matrix.
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        let mut cur = vec![0; b.len() + 1];
        for (i, ca) in a.chars().enumerate() {
            cur[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cost = usize::from(ca != *cb);
                cur[j + 1] = (prev[j + 1] + 1).min(cur[j] + 1).min(prev[j] + cost);
            }
            std::mem::swap(&mut prev, &mut cur);
        }
        prev[b.len()]
    }

    #[test]
    fn suggestions() {
        assert_eq!(distance("duraton", "duration"), 1);
        assert_eq!(closest("duraton", ["vus", "duration", "rate"]), Some("duration"));
        assert_eq!(closest("zzzzzz", ["vus", "duration"]), None);
    }

    #[test]
    fn bounded_distance_agrees_with_the_full_one_within_its_limit() {
        let words = [
            "",
            "a",
            "ab",
            "kitten",
            "sitting",
            "flaw",
            "lawn",
            "duration",
            "duraton",
            "naïve",
            "naive",
            "abcdefghijklmnop",
            "abcdefhgijklmnpo",
            "bcdefghijklmnopq",
            "xxabcdefghijklmnop",
        ];
        for a in words {
            for b in words {
                let (ac, bc): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
                let full = distance(a, b);
                for limit in 0..10 {
                    let want = (full <= limit).then_some(full);
                    assert_eq!(distance_within(&ac, &bc, limit), want, "{a} {b} {limit}");
                }
            }
        }
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn the_first_closest_candidate_wins_within_eight_edits() {
        assert_eq!(closest("p95", ["p90", "p99", "p50"]), Some("p90"));
        assert_eq!(closest("stpe", ["step", "stop"]), Some("step"));
        assert_eq!(closest("phase", ["phases", "phase"]), Some("phase"));
        let long = "y".repeat(200);
        let other = format!("{long}zz");
        assert_eq!(closest(&long, ["y", other.as_str()]), Some(other.as_str()));
        // The limit stops at 8 edits for long words.
        let w = "abcdefghijklmnopqrstuvwxyz0123";
        assert_eq!(
            closest(w, ["abcdefghijklmnopqrstuvwxyz"]),
            Some("abcdefghijklmnopqrstuvwxyz")
        );
        assert_eq!(closest(w, ["abcdefghijklmnopqrstu"]), None);
    }
}
