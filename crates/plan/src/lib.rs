//! stampede plan files: parse (YAML, with spans), validate, resolve `${ENV:-default}` and
//! `--var`s, compile templates. The result, [`Plan`], is immutable and ready to run.
//!
//! Two stages, as ripgrep does with arguments: [`raw`] mirrors the file (strict about unknown
//! keys, spans on values), `resolve` checks and builds the [`model`]. Errors carry
//! `file:line:column` and a one-line hint; nothing here panics on any input.

pub mod adjust;
mod compile;
mod csv;
mod env;
mod error;
mod jsonpath;
pub mod model;
mod raw;
pub mod redact;
mod resolve;
pub mod template;
mod threshold;
mod units;

pub use model::*;
/// The regex engine of `include: [/regex/]` filters, for building `SeriesFilter`s by hand.
pub use regex_lite::Regex;
pub use resolve::{parse_origin, parse_url};
pub use threshold::parse_list as parse_thresholds;
pub use units::{parse_duration, parse_rate, parse_size};

use std::path::Path;

use error::Errs;

/// Plans larger than this are refused before parsing.
pub const MAX_PLAN_BYTES: usize = 4 << 20;
/// Data files (`data:`) larger than this are refused before parsing: a CSV file is held in
/// memory whole, its rows shared by every worker.
pub const MAX_DATA_BYTES: usize = 256 << 20;

/// Where a plan gets outside values from.
pub struct LoadOptions<'a> {
    /// `--var K=V` pairs, in command-line order (later wins). They override `vars:` in the plan
    /// and the environment for `${K}`.
    pub vars: Vec<(String, String)>,
    /// Environment lookup (`std::env::var` in the CLI; a map in tests).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// A plan problem, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}{}", hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
pub struct PlanError {
    pub file: String,
    /// 1-based.
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// Reads, parses and resolves the plan at `path` (data files are resolved relative to it).
pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<Plan, PlanError> {
    let name = path.display().to_string();
    let errs = Errs { file: name.clone() };
    let bytes = read_bounded(path, MAX_PLAN_BYTES).map_err(|e| match e {
        ReadError::Io(e) => errs.whole(format!("cannot read the plan: {e}")),
        ReadError::TooLarge(size) => errs.whole(format!(
            "{}; plans are limited to {MAX_PLAN_BYTES} bytes",
            size.describe("the plan")
        )),
    })?;
    let src = String::from_utf8(bytes).map_err(|_| errs.whole("cannot read the plan: it is not UTF-8 text"))?;
    let base = path.parent().unwrap_or(Path::new("."));
    load_str(&src, &name, base, opts)
}

/// Parses and resolves plan text. `source_name` is used in messages; `base_dir` resolves data
/// files.
pub fn load_str(src: &str, source_name: &str, base_dir: &Path, opts: &LoadOptions) -> Result<Plan, PlanError> {
    let errs = Errs {
        file: source_name.to_string(),
    };
    if src.len() > MAX_PLAN_BYTES {
        return Err(errs.whole(format!(
            "the plan is {} bytes; plans are limited to {MAX_PLAN_BYTES} bytes",
            src.len()
        )));
    }
    // Comments and document markers only: YAML's parser calls `---` alone a syntax error.
    let blank = src
        .lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#') || l == "---" || l == "...");
    let raw: Option<raw::RawPlan> = if blank {
        None
    } else {
        Some(serde_saphyr::from_str_with_options(src, yaml_options()).map_err(|e| yaml_error(&errs, &e))?)
    };
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        // An empty file, or one of comments only, is a mistake (a wrong path, a file not yet
        // written), not a plan that checks out.
        return Err(PlanError {
            file: source_name.to_string(),
            line: 1,
            column: 1,
            message: "the plan is empty: it has no scenarios, phases or any other key".into(),
            hint: Some("a plan needs at least `scenarios:` (and `phases:` to run); see docs/plan.md".into()),
        });
    };
    let lookup = |k: &str| -> Option<String> {
        opts.vars
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .or_else(|| (opts.env)(k))
    };
    let resolver = resolve::Resolver {
        errs: errs.clone(),
        lookup: &lookup,
        base_dir,
        databases: Default::default(),
    };
    let mut plan = resolve::resolve(raw, &resolver, &opts.vars, source_name)?;
    (plan.redacted, plan.secrets) = redact::redacted_and_secrets(src, &lookup, &opts.vars);
    Ok(plan)
}

/// Why a file could not be read whole.
pub(crate) enum ReadError {
    Io(std::io::Error),
    TooLarge(Size),
}

/// How large a file over its limit is: known from its metadata, or only that it went on past
/// the limit (a pipe, a device).
pub(crate) enum Size {
    Exactly(u64),
    Over(usize),
}

impl Size {
    /// `the plan is 5000000 bytes`, `the plan is over 4194304 bytes`.
    pub fn describe(&self, what: &str) -> String {
        match self {
            Size::Exactly(n) => format!("{what} is {n} bytes"),
            Size::Over(limit) => format!("{what} is over {limit} bytes"),
        }
    }
}

/// Reads the file at `path` if it holds at most `limit` bytes. A regular file's size is
/// checked first; anything else (a pipe, `/dev/zero`, a file that grows) is read through
/// `take(limit + 1)`, so that no more than that is ever held in memory.
pub(crate) fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let known = file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
    if let Some(n) = known.filter(|n| *n > limit as u64) {
        return Err(ReadError::TooLarge(Size::Exactly(n)));
    }
    let mut buf = Vec::with_capacity(known.map_or(0, |n| n as usize + 1));
    file.take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(ReadError::Io)?;
    if buf.len() > limit {
        return Err(ReadError::TooLarge(Size::Over(limit)));
    }
    Ok(buf)
}

/// Strict limits: a plan is a small document, so aliases, nodes and events are capped well
/// below what an alias bomb needs.
fn yaml_options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    let mut b = serde_saphyr::Budget::default();
    b.max_reader_input_bytes = Some(MAX_PLAN_BYTES);
    b.max_events = 200_000;
    b.max_aliases = 1_000;
    b.max_anchors = 1_000;
    b.max_nodes = 100_000;
    b.max_recorded_anchor_events = 100_000;
    b.max_recorded_anchor_bytes = 4 << 20;
    b.max_documents = 1;
    o.budget = Some(b);
    o
}

fn yaml_error(errs: &Errs, e: &serde_saphyr::Error) -> PlanError {
    let options = serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
    let mut message = e.render_with_options(options);
    // The rendered message ends with its own location; ours leads the line instead.
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    let message = message.lines().next().unwrap_or("invalid YAML").trim().to_string();
    let (message, hint) = match unknown_field(&message) {
        Some((field, hint)) => (format!("unknown key `{field}`"), Some(hint)),
        None => (message, None),
    };
    let (line, column) = e
        .location()
        .map(|l| (l.line() as usize, l.column() as usize))
        .unwrap_or((1, 1));
    PlanError {
        file: errs.file.clone(),
        line: line.max(1),
        column: column.max(1),
        message,
        hint,
    }
}

/// serde says "unknown field `duraton`, expected one of name, duration, …": the field, and a
/// hint with the closest known key (or the list of them).
fn unknown_field(message: &str) -> Option<(String, String)> {
    let rest = message.split("unknown field `").nth(1)?;
    let (field, rest) = rest.split_once('`')?;
    let list = rest
        .split("expected one of")
        .nth(1)
        .or_else(|| rest.split("expected").nth(1))
        .unwrap_or("");
    let expected: Vec<&str> = list
        .split(',')
        .map(|k| k.trim().trim_matches('`'))
        .filter(|k| !k.is_empty())
        .collect();
    let hint = error::did_you_mean(field, expected.iter().copied())
        .unwrap_or_else(|| format!("known keys here: {}", expected.join(", ")));
    Some((field.to_string(), hint))
}
