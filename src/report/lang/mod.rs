//! The report in its reader's language: one message catalog per language, applied to a built
//! [`Document`] (and to chart titles) just before a format writes it.
//!
//! A message's id is its English text, with named arguments in braces (`{n} requests`), as
//! gettext keys messages by their English original. English is the text the code writes, so
//! English output is exactly what it was and needs no table; another language is a table
//! `English template → translation` ([`de::CATALOG`]). A text is translated when a template
//! matches it whole: the arguments are what the braces matched, each translated again (a
//! priority word, a list of reasons) and with its numbers in the locale's format. Composed
//! sentences (a capacity statement's parts joined by `; `) are split by generic joiners
//! (`{a}; {b}`, `{a}: {b}`, `{a}.`); of all parses, the one whose templates cover the most
//! text wins.
//!
//! Why parse the English instead of carrying ids: the sentences a report shows were mostly
//! written into `summary.json` by the analysis (findings, assessments, the capacity statement),
//! and run directories written before this module exist. Matching the stored English against the
//! catalog translates old and new run directories alike, without a second copy of every
//! sentence in the summary. A text no template matches stays English; the test renders the demo
//! in German and fails on any English sentence left.
//!
//! Names from a plan or a target (steps, phases, notes, URLs) are [`Span::Text`]; they are
//! translated only by templates with a space in them (sentences), and only when the templates'
//! own words make up [`MIN_TEXT_SCORE`] characters of the text, so a step named `errors` or an
//! objective that merely contains " of " stays as written. Their numbers are localized only
//! when they stand alone as numbers inside a longer text (never an address like 127.0.0.1, a
//! version like 0.1.0, or a text that is one number, such as a version `8.3`).

mod de;

use std::borrow::Cow;

use super::document::{Block, Document, Span, Text};

/// A report language. Adding one: a variant here, its code in [`Lang::parse`] and
/// [`Lang::code`], a catalog module like [`de`], and its number format in [`Lang::number`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    De,
}

/// How deep sentences nest in each other (a statement's parts joined by `; `).
const MAX_DEPTH: u8 = 16;

/// The score a run's text needs to be translated: at least this many characters of our
/// templates' own words.
const MIN_TEXT_SCORE: usize = 8;

/// Every language a report can be written in, by code.
pub const KNOWN: &[&str] = &["en", "de"];

#[derive(Debug, thiserror::Error)]
#[error("unknown report language `{0}` (known: en, de)")]
pub struct UnknownLang(pub String);

impl Lang {
    pub fn parse(code: &str) -> Result<Lang, UnknownLang> {
        match code {
            "en" => Ok(Lang::En),
            "de" => Ok(Lang::De),
            other => Err(UnknownLang(other.to_string())),
        }
    }

    /// The language's code, as HTML's `lang` attribute wants it.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    fn catalog(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Lang::En => &[],
            Lang::De => de::CATALOG,
        }
    }

    /// A number written the English way (`15,968.5`) in this language's format; `None` when
    /// the text is not one number.
    fn number(self, s: &str) -> Option<String> {
        if !is_english_number(s) {
            return None;
        }
        match self {
            Lang::En => None,
            // German: decimal comma, dot between thousands (DIN 5008).
            Lang::De => Some(
                s.chars()
                    .map(|c| match c {
                        '.' => ',',
                        ',' => '.',
                        c => c,
                    })
                    .collect(),
            ),
        }
    }

    /// A date as the run directory writes it (`2026-01-08T16:33:05.120Z`, or the update
    /// headings' `2026-01-08 16:33`) in this language's format: `08.01.2026 16:33:05 UTC`.
    fn date(self, s: &str) -> Option<String> {
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| b.get(r.clone()).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
        if self == Lang::En
            || !(digits(0..4) && b.get(4) == Some(&b'-') && digits(5..7) && b.get(7) == Some(&b'-') && digits(8..10))
            || !matches!(b.get(10), Some(b'T' | b' '))
            || !(digits(11..13) && b.get(13) == Some(&b':') && digits(14..16))
        {
            return None;
        }
        let (y, m, d) = (&s[0..4], &s[5..7], &s[8..10]);
        let time = &s[11..];
        let time = match time.strip_suffix('Z') {
            Some(t) => format!("{} UTC", t.split('.').next().unwrap_or(t)),
            None if time.len() == 5 => time.to_string(),
            None => return None,
        };
        match self {
            Lang::En => None,
            Lang::De => Some(format!("{d}.{m}.{y} {time}")),
        }
    }

    /// Translates one of our own texts (a label, a heading, a sentence we composed).
    pub fn own<'a>(self, s: &'a str) -> Cow<'a, str> {
        self.translate(s, true)
    }

    /// Translates a label we keep as `&'static str` (the facts' labels).
    pub fn label(self, s: &'static str) -> &'static str {
        self.catalog().iter().find(|(en, _)| *en == s).map_or(s, |(_, t)| *t)
    }

    /// Translates a text that came from a run: a stored sentence when templates with a space
    /// explain enough of it, else only its standalone numbers.
    pub fn text<'a>(self, s: &'a str) -> Cow<'a, str> {
        self.translate(s, false)
    }

    fn translate<'a>(self, s: &'a str, own: bool) -> Cow<'a, str> {
        if self == Lang::En || s.is_empty() {
            return Cow::Borrowed(s);
        }
        if let Some(d) = self.date(s) {
            return Cow::Owned(d);
        }
        if self.number(s).is_some() {
            // A whole text that is one number: ours is formatted, a run's may be a version.
            return if own {
                Cow::Owned(self.number(s).unwrap_or_default())
            } else {
                Cow::Borrowed(s)
            };
        }
        let mut memo = std::collections::HashMap::new();
        let (out, score) = self.best(s, own, 0, &mut memo);
        // A run's text is ours only when our words make up a good part of it: a name that
        // merely contains " of " or ": " is left alone.
        if score == 0 || (!own && score < MIN_TEXT_SCORE) {
            return self.numbers_in(s);
        }
        Cow::Owned(out)
    }

    /// The best translation of `s` and its score: the literal characters of every template
    /// used, so the parse that explains the most text wins (a specific sentence over the
    /// generic joiners). Memoized per text, since the joiners try many splits.
    fn best(
        self,
        s: &str,
        own: bool,
        depth: u8,
        memo: &mut std::collections::HashMap<(String, bool), (String, usize)>,
    ) -> (String, usize) {
        if let Some(hit) = memo.get(&(s.to_string(), own)) {
            return hit.clone();
        }
        let mut best = (self.numbers_in(s).into_owned(), 0);
        if depth < MAX_DEPTH {
            for (en, to) in self.catalog() {
                if !own && !en.contains(' ') {
                    continue;
                }
                let Some(args) = matches(en, s) else { continue };
                let mut score = en.len() - args.iter().map(|(k, _)| k.len() + 2).sum::<usize>();
                let mut filled = Vec::with_capacity(args.len());
                for (k, v) in args {
                    // Arguments of our sentences are our words or names; names rarely equal
                    // one of our words, so every template may translate them.
                    let (t, sc) = self.best(v, true, depth + 1, memo);
                    score += sc;
                    filled.push((k, t));
                }
                if score > best.1 {
                    best = (fill(to, &filled), score);
                }
            }
        }
        memo.insert((s.to_string(), own), best.clone());
        best
    }

    /// Every standalone number in `s` in this language's format: a run of digits, dots and
    /// commas, not glued to a letter or another dot (so `p99.9`, `v1.2` and `127.0.0.1` stay).
    fn numbers_in<'a>(self, s: &'a str) -> Cow<'a, str> {
        let b = s.as_bytes();
        let mut out = String::new();
        let mut last = 0;
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_digit() && (i == 0 || !is_glue(b[i - 1])) {
                let mut j = i;
                while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.' || b[j] == b',') {
                    j += 1;
                }
                // A trailing separator is punctuation ("5 VUs, 30 VUs"), not part of the number.
                let mut end = j;
                while end > i && !b[end - 1].is_ascii_digit() {
                    end -= 1;
                }
                if let Some(n) = self.number(&s[i..end]) {
                    out.push_str(&s[last..i]);
                    out.push_str(&n);
                    last = end;
                }
                i = j.max(i + 1);
            } else {
                i += 1;
            }
        }
        if last == 0 {
            Cow::Borrowed(s)
        } else {
            out.push_str(&s[last..]);
            Cow::Owned(out)
        }
    }

    /// A chart with its title, axis titles and legend in this language.
    pub fn chart(self, c: &super::svg::Chart) -> super::svg::Chart {
        let mut c = c.clone();
        if self == Lang::En {
            return c;
        }
        c.title = self.own(&c.title).into_owned();
        c.x_label = self.own(&c.x_label).into_owned();
        c.y_label = self.own(&c.y_label).into_owned();
        c.y2_label = c.y2_label.map(|l| self.own(&l).into_owned());
        for l in &mut c.lines {
            l.name = self.own(&l.name).into_owned();
        }
        c
    }

    /// Translates a whole document in place: headings, labels, sentences, table cells, facts.
    pub fn document(self, d: &mut Document) {
        if self == Lang::En {
            return;
        }
        d.title = self.text(&d.title).into_owned();
        for b in &mut d.blocks {
            self.block(b);
        }
    }

    fn block(self, b: &mut Block) {
        match b {
            Block::Heading { text, .. } | Block::Paragraph(text) | Block::Footer(text) => self.spans(text),
            Block::Facts(facts) => {
                for (label, t) in facts {
                    *label = self.label(label);
                    self.spans(t);
                }
            }
            Block::List { items, .. } => {
                for it in items {
                    self.spans(&mut it.text);
                    for c in &mut it.children {
                        self.spans(c);
                    }
                }
            }
            Block::Table { head, rows, .. } => {
                for t in head.iter_mut().chain(rows.iter_mut().flatten()) {
                    self.spans(t);
                }
            }
            Block::Charts { heading, .. } => self.spans(heading),
            Block::Section { blocks, .. } => {
                for b in blocks {
                    self.block(b);
                }
            }
        }
    }

    /// A text's spans; a text made only of our own spans is first translated as one string,
    /// so a sentence composed from several pieces matches its template whole.
    fn spans(self, t: &mut Text) {
        if t.len() > 1 && t.iter().all(|s| matches!(s, Span::Own(_))) {
            let whole: String = t
                .iter()
                .map(|s| match s {
                    Span::Own(s) => s.as_str(),
                    _ => "",
                })
                .collect();
            let tr = self.own(&whole);
            if tr != whole {
                *t = vec![Span::Own(tr.into_owned())];
                return;
            }
        }
        for s in t.iter_mut() {
            match s {
                Span::Own(s) => *s = self.own(s).into_owned(),
                Span::Text(s) => *s = self.text(s).into_owned(),
                Span::Strong(t) | Span::Class(_, t) => self.spans(t),
                Span::Code(_) | Span::Verbatim(_) => {}
            }
        }
    }
}

/// A letter, digit, dot or underscore before a digit glues it into a name (`p99`, `v1.2`).
fn is_glue(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b':'
}

/// `1234`, `15,968`, `0.25`, `1,258.5`: digits with English thousands commas and at most one
/// decimal point.
fn is_english_number(s: &str) -> bool {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if frac.is_some_and(|f| f.is_empty() || !f.bytes().all(|c| c.is_ascii_digit())) {
        return false;
    }
    let groups: Vec<&str> = int.split(',').collect();
    !groups[0].is_empty()
        && groups[0].len() <= if groups.len() > 1 { 3 } else { usize::MAX }
        && groups.iter().all(|g| g.bytes().all(|c| c.is_ascii_digit()))
        && groups[1..].iter().all(|g| g.len() == 3)
}

/// The pieces of a template: literal text and argument names, alternating, starting with a
/// literal (possibly empty).
fn pieces(template: &str) -> (Vec<&str>, Vec<&str>) {
    let mut lits = Vec::new();
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        match rest[open..].find('}') {
            Some(close) => {
                lits.push(&rest[..open]);
                names.push(&rest[open + 1..open + close]);
                rest = &rest[open + close + 1..];
            }
            None => break,
        }
    }
    lits.push(rest);
    (lits, names)
}

/// The arguments if `template` matches all of `s` (each argument non-empty), trying every
/// split when a literal occurs more than once.
fn matches<'t, 's>(template: &'t str, s: &'s str) -> Option<Vec<(&'t str, &'s str)>> {
    let (lits, names) = pieces(template);
    let first = lits[0];
    let rest = s.strip_prefix(first)?;
    if names.is_empty() {
        return rest.is_empty().then(Vec::new);
    }
    if !rest.ends_with(lits[lits.len() - 1]) {
        return None;
    }
    let mut args = Vec::new();
    fit(&lits[1..], &names, rest, &mut args).then_some(args)
}

fn fit<'t, 's>(lits: &[&'t str], names: &[&'t str], s: &'s str, args: &mut Vec<(&'t str, &'s str)>) -> bool {
    let (lit, name) = (lits[0], names[0]);
    if lits.len() == 1 {
        // The last argument takes everything up to the final literal.
        return match s.strip_suffix(lit) {
            Some(v) if !v.is_empty() => {
                args.push((name, v));
                true
            }
            _ => false,
        };
    }
    if lit.is_empty() {
        return false; // two arguments side by side cannot be told apart
    }
    let mut from = 1;
    while let Some(at) = s.get(from..).and_then(|t| t.find(lit)).map(|i| i + from) {
        args.push((name, &s[..at]));
        if fit(&lits[1..], &names[1..], &s[at + lit.len()..], args) {
            return true;
        }
        args.pop();
        from = at + 1;
        while !s.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

/// A translation with its arguments filled in.
fn fill(template: &str, args: &[(&str, String)]) -> String {
    let (lits, names) = pieces(template);
    let mut out = String::from(lits[0]);
    for (name, lit) in names.iter().zip(&lits[1..]) {
        match args.iter().find(|(k, _)| k == name) {
            Some((_, v)) => out.push_str(v),
            None => {
                out.push('{');
                out.push_str(name);
                out.push('}');
            }
        }
        out.push_str(lit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_whole_texts_and_fill_translations() {
        let args = matches("{n} of {m} requests", "234 of 702 requests").unwrap();
        assert_eq!(args, vec![("n", "234"), ("m", "702")]);
        assert!(matches("{n} requests", "234 requests left").is_none());
        assert!(matches("Charts", "Charts").is_some());
        assert_eq!(
            fill("{m} Anfragen, davon {n}", &[("n", "1".into()), ("m", "2".into())]),
            "2 Anfragen, davon 1"
        );
    }

    #[test]
    fn numbers_take_the_locale_format_but_addresses_and_names_stay() {
        let de = Lang::De;
        assert_eq!(
            de.numbers_in("15,968 requests, 1.26s, 33.33%"),
            "15.968 requests, 1,26s, 33,33%"
        );
        assert_eq!(
            de.numbers_in("http://127.0.0.1:8080 v1.2 p99.9 0.1.0"),
            "http://127.0.0.1:8080 v1.2 p99.9 0.1.0"
        );
        assert_eq!(de.numbers_in("5 VUs, 30 VUs."), "5 VUs, 30 VUs.");
        assert_eq!(Lang::En.numbers_in("1.5"), "1.5");
    }

    #[test]
    fn dates_take_the_locale_format() {
        assert_eq!(Lang::De.text("2026-01-08T16:33:05.120Z"), "08.01.2026 16:33:05 UTC");
        assert_eq!(Lang::De.text("2026-01-08 16:51"), "08.01.2026 16:51");
        assert_eq!(Lang::En.text("2026-01-08 16:51"), "2026-01-08 16:51");
        assert_eq!(Lang::De.text("2026-01-08 and more"), "2026-01-08 and more");
    }

    #[test]
    fn sentences_nest_and_names_stay() {
        let de = Lang::De;
        assert_eq!(
            de.text("call: holds 30 concurrent users (VUs) with p95 < 500ms (breaks at 76.7); saturates at ~52.2 VUs; throughput peaks at 78 req/s; recommended operating point 24 VUs (20% margin)."),
            "call: hält 30 gleichzeitige Nutzer (VUs) mit p95 < 500ms (bricht bei 76,7); Sättigung bei ~52,2 VUs; der Durchsatz erreicht höchstens 78 req/s; empfohlener Arbeitspunkt 24 VUs (20 % Sicherheitsmarge)."
        );
        // A plan's sentence that merely contains " of " stays as written; a version too.
        assert_eq!(
            de.text("What breaks first under a peak of 100 calls"),
            "What breaks first under a peak of 100 calls"
        );
        assert_eq!(de.text("8.3"), "8.3");
        assert_eq!(de.text("errors"), "errors");
        assert_eq!(de.own("errors"), "Fehler");
        assert_eq!(
            de.own("2 regressions, 1 improvement"),
            "2 Verschlechterungen, 1 Verbesserung"
        );
        assert_eq!(
            de.own(": p95 latency 20.0ms → 30.0ms (+50%)"),
            ": p95 Latenz 20,0ms → 30,0ms (+50%)"
        );
        assert_eq!(
            de.text("p95 latency 874 ms while saturated vs 406 ms otherwise (threshold `p95 < 500ms` crossed)"),
            "p95 Latenz 874 ms während der Sättigung gegenüber 406 ms sonst (Schwellenwert `p95 < 500ms` überschritten)"
        );
    }

    #[test]
    fn every_german_template_uses_the_english_arguments() {
        for (en, de) in de::CATALOG {
            let mut a = pieces(en).1;
            let mut b = pieces(de).1;
            a.sort();
            b.sort();
            assert_eq!(a, b, "{en} → {de}");
            assert!(!en.contains("}{"), "two arguments side by side cannot match: {en}");
        }
    }

    #[test]
    fn unknown_languages_are_refused_with_the_known_ones() {
        assert_eq!(Lang::parse("de").unwrap(), Lang::De);
        let e = Lang::parse("fr").unwrap_err().to_string();
        assert!(e.contains("en, de"), "{e}");
    }
}
