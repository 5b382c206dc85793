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

/// Levenshtein distance, for suggestions.
pub fn distance(a: &str, b: &str) -> usize {
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

/// The closest candidate within a small edit distance.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `did you mean `x`?` when something is close.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(distance("duraton", "duration"), 1);
        assert_eq!(closest("duraton", ["vus", "duration", "rate"]), Some("duration"));
        assert_eq!(closest("zzzzzz", ["vus", "duration"]), None);
    }
}
