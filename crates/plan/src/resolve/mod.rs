//! From the plan as written (`raw`) to the plan that runs (`model`): substitute `${…}`, check
//! every value, compile templates. Every error points at the value that caused it.

mod body;
mod check;
mod monitor;
mod origin;
mod phase;
mod sql;
mod step;
mod threshold;
mod tls;
mod variant;
mod ws;

use check::*;
pub use origin::{parse_origin, parse_url};
use phase::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use step::*;
use threshold::*;

use http::HeaderName;
use serde_json::Value;
use serde_saphyr::Location;

use crate::compile::{compile, Names};
use crate::error::Errs;
use crate::model::*;
use crate::raw::*;
use crate::template::{Escape, Part, Template};
use crate::units::{parse_duration, parse_rate, parse_size};
use crate::PlanError;
/// Upper bound for VU counts and rates: more is a typo, not a test.
pub(super) const ABSURD: f64 = 1_000_000.0;
pub(super) const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

pub(super) type R<T> = Result<T, PlanError>;

pub struct Resolver<'a> {
    pub errs: Errs,
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    pub base_dir: &'a Path,
    /// The names of `databases:`, resolved before the steps that use them.
    pub databases: std::cell::RefCell<Vec<String>>,
}

impl Resolver<'_> {
    fn sub(&self, s: &str, loc: &Location) -> R<String> {
        crate::env::substitute(s, self.lookup)
            .map(|r| r.text)
            .map_err(|e| self.errs.at(loc, e))
    }

    fn string(&self, v: &S<String>) -> R<String> {
        self.sub(&v.value, &v.referenced)
    }

    /// A scalar (string, number or bool) as text, after `${…}` substitution.
    fn scalar(&self, v: &Any, what: &str) -> R<String> {
        match &v.value {
            Value::String(s) => self.sub(s, &v.referenced),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(self.errs.at(
                &v.referenced,
                format!("{what} must be a single value, not a list or a map"),
            )),
        }
    }

    fn duration(&self, v: &Any, what: &str) -> R<Duration> {
        let s = self.scalar(v, what)?;
        let d = parse_duration(&s).map_err(|e| {
            self.errs.hint(
                &v.referenced,
                format!("{what}: {e}"),
                "durations look like 500ms, 30s, 2m, 1h30m",
            )
        })?;
        Ok(d)
    }

    fn positive_duration(&self, v: &Any, what: &str) -> R<Duration> {
        let d = self.duration(v, what)?;
        if d.is_zero() {
            return Err(self.errs.at(&v.referenced, format!("{what} must be longer than 0")));
        }
        Ok(d)
    }

    fn number(&self, v: &Any, what: &str) -> R<f64> {
        let s = self.scalar(v, what)?;
        s.trim().parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| {
            self.errs
                .at(&v.referenced, format!("{what} must be a number, got `{s}`"))
        })
    }

    /// A whole number in `min..=ABSURD`.
    fn count(&self, v: &Any, what: &str, min: u64) -> R<u64> {
        let x = self.number(v, what)?;
        if x.fract() != 0.0 {
            return Err(self
                .errs
                .at(&v.referenced, format!("{what} must be a whole number, got {x}")));
        }
        if x < min as f64 {
            return Err(self
                .errs
                .at(&v.referenced, format!("{what} must be at least {min}, got {x}")));
        }
        if x > ABSURD {
            return Err(self.errs.hint(
                &v.referenced,
                format!("{what} = {x} is absurd"),
                "more than 1,000,000 is a typo, not a test; use `--segment` to spread a large test over machines",
            ));
        }
        Ok(x as u64)
    }

    fn rate(&self, v: &Any, what: &str) -> R<f64> {
        let s = self.scalar(v, what)?;
        let r = parse_rate(&s).map_err(|e| self.errs.at(&v.referenced, format!("{what}: {e}")))?;
        if r <= 0.0 {
            return Err(self.errs.hint(
                &v.referenced,
                format!("{what} must be above 0, got {s}"),
                "an arrival rate is per second, e.g. `rate: 50` or `rate: 3000/m`",
            ));
        }
        if r > ABSURD {
            return Err(self.errs.at(
                &v.referenced,
                format!("{what} = {s} is absurd (more than 1,000,000 arrivals per second)"),
            ));
        }
        Ok(r)
    }

    pub fn think(&self, v: &Any) -> R<Think> {
        match &v.value {
            Value::Object(m) if m.len() == 1 => {
                let (k, x) = m
                    .iter()
                    .next()
                    .map(|(k, x)| (k.as_str(), x))
                    .unwrap_or(("", &Value::Null));
                let d = |x: &Value| -> R<Duration> { self.duration(&spanned(x.clone(), v), "think") };
                match (k, x) {
                    ("fixed", x) => Ok(Think::Fixed(d(x)?)),
                    ("exponential", x) => Ok(Think::Exponential(d(x)?)),
                    ("uniform", Value::Array(a)) if a.len() == 2 => Ok(Think::Uniform(d(&a[0])?, d(&a[1])?)),
                    _ => Err(self.errs.hint(
                        &v.referenced,
                        "think: not understood",
                        "use `think: 2s`, `think: { uniform: [1s, 3s] }` or `think: { exponential: 2s }`",
                    )),
                }
            }
            Value::String(_) => Ok(Think::Fixed(self.duration(v, "think")?)),
            _ => Err(self.errs.hint(
                &v.referenced,
                "think: not understood",
                "use `think: 2s`, `think: { uniform: [1s, 3s] }` or `think: { exponential: 2s }`",
            )),
        }
    }
}

/// Names that references are checked against (scenarios, steps, phases): looked up by hash,
/// kept in plan order for suggestions and hints.
pub(super) struct NameSet<'a> {
    list: Vec<&'a str>,
    index: std::collections::HashMap<&'a str, usize>,
}

/// A hint lists at most this many names.
const LISTED: usize = 10;

impl<'a> NameSet<'a> {
    pub fn new(list: Vec<&'a str>) -> Self {
        let mut index = std::collections::HashMap::with_capacity(list.len());
        for (i, n) in list.iter().enumerate() {
            index.entry(*n).or_insert(i);
        }
        NameSet { list, index }
    }

    /// Where `name` first appears.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// `did you mean …?`, or else `what: a, b, …` (the first few names).
    pub fn hint(&self, name: &str, what: &str) -> String {
        crate::error::did_you_mean(name, self.list.iter().copied()).unwrap_or_else(|| {
            let mut shown = self.list[..self.list.len().min(LISTED)].join(", ");
            if self.list.len() > LISTED {
                shown.push_str(&format!(" and {} more", self.list.len() - LISTED));
            }
            format!("{what}: {shown}")
        })
    }
}

/// Wraps a nested value with its parent's span, for messages about the parent.
pub(super) fn spanned(value: Value, parent: &Any) -> Any {
    serde_saphyr::Spanned {
        value,
        referenced: parent.referenced,
        defined: parent.defined,
    }
}

pub fn resolve(raw: RawPlan, rs: &Resolver, vars: &[(String, String)], source_name: &str) -> R<Plan> {
    let errs = &rs.errs;
    let name = match &raw.name {
        Some(n) => rs.string(n)?,
        None => Path::new(source_name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plan".into()),
    };

    // Constants: plan vars, then --var overrides.
    let mut consts: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &raw.vars {
        consts.insert(k.clone(), rs.scalar(v, &format!("vars.{k}"))?);
    }
    for (k, v) in vars {
        consts.insert(k.clone(), v.clone());
    }

    let (target, target_path) = match &raw.target {
        Some(t) => {
            let url = rs.string(t)?;
            let (o, p) = parse_origin(url.trim()).map_err(|e| {
                errs.hint(
                    &t.referenced,
                    format!("target: {e}"),
                    "e.g. `target: http://127.0.0.1:8080` or `https://api.example.com/v1`",
                )
            })?;
            if p.contains('?') {
                return Err(errs.hint(
                    &t.referenced,
                    format!("target: `{url}` has a query, which cannot prefix the steps' paths"),
                    "put query parameters on the steps, in their URL or under `query:`",
                ));
            }
            (Some(o), p)
        }
        None => (None, String::new()),
    };

    // Data feeders and their column slots.
    let mut slots_by_name: BTreeMap<String, usize> = BTreeMap::new();
    let mut slots: Vec<SlotDef> = Vec::new();
    let mut feeders = Vec::new();
    for (fname, f) in &raw.data {
        let file = rs.string(&f.value.file)?;
        let path = rs.base_dir.join(&file);
        let data = read_beside_plan(&path, "data files")
            .map_err(|why| errs.at(&f.value.file.referenced, format!("data.{fname}: {why}")))?;
        // Located at the plan's `file:` value; the message leads with the place in the data file.
        let (columns, rows) = crate::csv::parse(&data).map_err(|e| {
            errs.at(
                &f.value.file.referenced,
                format!(
                    "data.{fname}: {}:{}:{}: {}",
                    path.display(),
                    e.line,
                    e.column,
                    e.message
                ),
            )
        })?;
        let mode = match f.value.mode.as_ref().map(|m| m.value.as_str()) {
            None | Some("sequential") => FeedMode::Sequential,
            Some("per_vu") => FeedMode::PerVu,
            Some("random") => FeedMode::Random,
            Some(m) => {
                let loc = &f.value.mode.as_ref().map(|m| m.referenced).unwrap_or(f.referenced);
                return Err(errs.hint(
                    loc,
                    format!("data.{fname}.mode: `{m}` is not a mode"),
                    "use sequential, per_vu or random",
                ));
            }
        };
        let fi = feeders.len();
        for (ci, c) in columns.iter().enumerate() {
            let key = format!("{fname}.{c}");
            slots_by_name.insert(key.clone(), slots.len());
            slots.push(SlotDef {
                name: key,
                kind: SlotKind::Data { feeder: fi, column: ci },
            });
        }
        feeders.push(Feeder {
            name: fname.clone(),
            columns,
            rows,
            mode,
        });
    }
    // Capture slots, before any template is compiled (a later step may use an earlier capture).
    for sc in raw.scenarios.values() {
        for st in &sc.value.steps {
            for cname in st.value.capture_names() {
                if !slots_by_name.contains_key(cname) {
                    slots_by_name.insert(cname.clone(), slots.len());
                    slots.push(SlotDef {
                        name: cname.clone(),
                        kind: SlotKind::Capture,
                    });
                }
            }
        }
    }
    let names = Names {
        consts: &consts,
        slots: &slots_by_name,
    };

    let http = resolve_http(rs, raw.http.as_ref(), &names)?;
    let databases = sql::resolve_databases(rs, &raw.databases)?;
    *rs.databases.borrow_mut() = databases.iter().map(|d| d.name.clone()).collect();

    let mut scenarios = Vec::new();
    for (sname, sc) in &raw.scenarios {
        scenarios.push(resolve_scenario(
            rs,
            sname,
            sc,
            &names,
            target.as_ref(),
            &target_path,
            &slots_by_name,
        )?);
    }
    let scenario_names = NameSet::new(scenarios.iter().map(|s: &Scenario| s.name.as_str()).collect());

    // A variant with `vars:` resolves the plan's scenario `i` again with its constants.
    let raw_scenarios: Vec<(&String, &S<RawScenario>)> = raw.scenarios.iter().collect();
    let resolve_again = |i: usize, names: &Names| {
        let (sname, sc) = raw_scenarios[i];
        resolve_scenario(rs, sname, sc, names, target.as_ref(), &target_path, &slots_by_name)
    };
    let plan_scenarios = variant::PlanScenarios {
        resolved: &scenarios,
        again: &resolve_again,
    };
    // The scenarios A/B variants run, appended after the plan's own.
    let mut variant_scenarios: Vec<Scenario> = Vec::new();
    let mut copies = variant::Copies {
        plan: &plan_scenarios,
        plan_target: target.as_ref(),
        names: &names,
        added: &mut variant_scenarios,
    };
    // A scenario's own variants, which every phase that runs it interleaves.
    let mut scenario_variants: Vec<Option<Interleaved>> = Vec::new();
    for (i, (_, sc)) in raw_scenarios.iter().enumerate() {
        scenario_variants.push(match &sc.value.variants {
            Some(v) => Some(variant::scenario(rs, i, v, &mut copies)?),
            None => None,
        });
    }
    let mut phases: Vec<Phase> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, p) in raw.phases.iter().enumerate() {
        let mut phase = resolve_phase(rs, i, p, &scenario_names)?;
        if !seen.insert(phase.name.clone()) {
            let loc = p.value.name.as_ref().map(|n| n.referenced).unwrap_or(p.referenced);
            return Err(errs.at(
                &loc,
                format!("phase `{}` is defined twice; phase names must be unique", phase.name),
            ));
        }
        let interleave = p.value.interleave.as_ref();
        match &p.value.variants {
            None => {
                if let Some(flag) = interleave {
                    return Err(errs.hint(
                        &flag.referenced,
                        format!("phase `{}`: `interleave:` without `variants:`", phase.name),
                        "add the variants to interleave, e.g. variants: { without-cache: { headers: { Cache-Control: no-cache } }, with-cache: {} } (a scenario's own `variants:` are always interleaved)",
                    ));
                }
                for w in &mut phase.mix {
                    if let Some(v) = &scenario_variants[w.scenario] {
                        *w = v.clone().weighted(w.weight);
                    }
                }
                phases.push(phase);
            }
            Some(v) => {
                if let Some(w) = phase.mix.iter().find(|w| scenario_variants[w.scenario].is_some()) {
                    return Err(errs.hint(
                        &v.referenced,
                        format!(
                            "phase `{}` has variants and runs scenario `{}`, which has variants of its own",
                            phase.name, scenarios[w.scenario].name
                        ),
                        "give the variants in one place: on the phase or on the scenario",
                    ));
                }
                if interleave.is_some_and(|f| f.value) {
                    phases.push(variant::interleaved(rs, phase, v, &mut copies)?);
                    continue;
                }
                for vp in variant::back_to_back(rs, &phase, v, &mut copies)? {
                    if !seen.insert(vp.name.clone()) {
                        return Err(errs.hint(
                            &v.referenced,
                            format!(
                                "phase `{}`: its variant phase `{}` is the name of another phase",
                                phase.name, vp.name
                            ),
                            "rename the variant or that phase",
                        ));
                    }
                    phases.push(vp);
                }
            }
        }
    }

    drop(scenario_names);
    scenarios.extend(variant_scenarios);
    let step_names = NameSet::new(
        scenarios
            .iter()
            .flat_map(|s| s.steps.iter().map(|st| st.name.as_str()))
            .collect(),
    );
    let phase_names = NameSet::new(phases.iter().map(|p| p.name.as_str()).collect());
    let mut thresholds = Vec::new();
    for t in &raw.thresholds {
        thresholds.push(resolve_threshold(rs, t, &step_names, &phase_names)?);
    }

    let monitors = monitor::resolve_monitors(rs, &raw.monitors)?;
    let about = match &raw.about {
        Some(a) => resolve_about(rs, a)?,
        None => About::default(),
    };

    Ok(Plan {
        name,
        target,
        target_path,
        http,
        scenarios,
        phases,
        thresholds,
        monitors,
        databases,
        slots,
        feeders,
        redacted: Value::Null,
        secrets: Vec::new(),
        source_name: source_name.to_string(),
        about,
    })
}

/// `about:`: each environment or software row a one-entry map (`- PHP: "8.2"`), so the
/// tables keep the plan's order.
fn resolve_about(rs: &Resolver, a: &S<crate::raw::RawAbout>) -> R<About> {
    let rows = |list: &[S<BTreeMap<String, Any>>], what: &str| -> R<Vec<(String, String)>> {
        list.iter()
            .map(|row| {
                let mut it = row.value.iter();
                match (it.next(), it.next()) {
                    (Some((k, v)), None) => Ok((k.clone(), rs.scalar(v, &format!("about.{what}.{k}"))?)),
                    _ => Err(rs.errs.at(
                        &row.referenced,
                        format!("about.{what}: each row is one `name: value` pair (e.g. `- PHP: \"8.2\"`)"),
                    )),
                }
            })
            .collect()
    };
    Ok(About {
        objectives: a.value.objectives.iter().map(|o| rs.string(o)).collect::<R<_>>()?,
        environment: rows(&a.value.environment, "environment")?,
        software: rows(&a.value.software, "software")?,
    })
}

/// A file the plan names (relative to it: `path` is joined already), read whole if it holds at
/// most `MAX_DATA_BYTES`; the error says why not, naming `kind` (`data files`) in the limit.
pub(super) fn read_beside_plan(path: &Path, kind: &str) -> Result<Vec<u8>, String> {
    crate::read_bounded(path, crate::MAX_DATA_BYTES).map_err(|e| match e {
        crate::ReadError::Io(e) => format!("cannot read `{}`: {e}", path.display()),
        crate::ReadError::TooLarge(size) => format!(
            "{}; {kind} are limited to {} bytes",
            size.describe(&format!("`{}`", path.display())),
            crate::MAX_DATA_BYTES
        ),
    })
}

pub(super) fn header_name(rs: &Resolver, name: &str, loc: &Location) -> R<HeaderName> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| rs.errs.at(loc, format!("`{name}` is not a valid header name")))
}

pub(super) fn template(rs: &Resolver, v: &Any, what: &str, esc: Escape, names: &Names) -> R<Template> {
    let s = rs.scalar(v, what)?;
    compile(&s, esc, names).map_err(|e| rs.errs.at(&v.referenced, format!("{what}: {e}")))
}

pub(super) fn headers(rs: &Resolver, raw: &BTreeMap<String, Any>, names: &Names) -> R<Vec<(HeaderName, Template)>> {
    raw.iter()
        .map(|(k, v)| {
            let name = header_name(rs, k, &v.referenced)?;
            let what = format!("header {k}");
            let t = template(rs, v, &what, Escape::None, names)?;
            for part in &t.parts {
                if let Part::Lit(text) = part {
                    header_value(rs, text, &v.referenced, &what)?;
                }
            }
            Ok((name, t))
        })
        .collect()
}

/// Text that goes into a header value as loaded (from the plan, `vars`, `--var` or the
/// environment) holds no line break, NUL or other control character but tab: one would end
/// the header early or split the request. Values rendered at run time are checked when sent.
pub(super) fn header_value(rs: &Resolver, text: &[u8], loc: &Location, what: &str) -> R<()> {
    let Some(&b) = text.iter().find(|&&b| (b < 0x20 && b != b'\t') || b == 0x7f) else {
        return Ok(());
    };
    let found = match b {
        b'\r' => "a line break (CR)".to_string(),
        b'\n' => "a line break (LF)".to_string(),
        0 => "a NUL byte".to_string(),
        b => format!("the control character 0x{b:02x}"),
    };
    Err(rs.errs.hint(
        loc,
        format!("{what}: the value contains {found}"),
        "a header value cannot hold a line break, NUL or another control character (a tab is fine)",
    ))
}

/// `http.local_addrs`: IP addresses this host has (a socket binds to each here, so a typo or
/// another machine's address is refused at its line, not as failed connects at run time).
fn local_addrs(rs: &Resolver, l: &S<Vec<S<String>>>) -> R<Vec<std::net::IpAddr>> {
    if l.value.is_empty() {
        return Err(rs.errs.hint(
            &l.referenced,
            "http.local_addrs: the list is empty",
            "name source addresses of this host, e.g. [127.0.0.1, 127.0.0.2], or leave the option out",
        ));
    }
    let mut out = Vec::new();
    for a in &l.value {
        let text = rs.string(a)?;
        let ip: std::net::IpAddr = text
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| {
                rs.errs.hint(
                    &a.referenced,
                    format!("http.local_addrs: `{text}` is not an IP address"),
                    "write addresses, not names: 127.0.0.2, 10.0.0.5, ::1",
                )
            })?;
        if let Err(e) = std::net::UdpSocket::bind((ip, 0)) {
            return Err(rs.errs.hint(
                &a.referenced,
                format!("http.local_addrs: `{ip}` is not an address of this host ({e})"),
                "use addresses `ip addr` lists (any of 127.0.0.0/8 works on Linux), or add it to an interface first",
            ));
        }
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    Ok(out)
}

fn resolve_http(rs: &Resolver, raw: Option<&RawHttp>, names: &Names) -> R<HttpOptions> {
    let mut o = HttpOptions {
        http2: true,
        h2c: false,
        insecure: false,
        timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(10),
        headers: Vec::new(),
        max_body: 1 << 20,
        follow_redirects: 10,
        cookies: CookieMode::Clear,
        tls: TlsFiles::default(),
        on_429: On429::Count,
        local_addrs: Vec::new(),
    };
    let Some(h) = raw else { return Ok(o) };
    if let Some(l) = &h.local_addrs {
        o.local_addrs = local_addrs(rs, l)?;
    }
    if let Some(t) = &h.tls {
        o.tls = tls::resolve_tls(rs, t)?;
    }
    if let Some(n) = &h.follow_redirects {
        o.follow_redirects = body::redirects(rs, n, "http.follow_redirects")?;
    }
    if let Some(c) = &h.cookies {
        o.cookies = match rs.string(c)?.as_str() {
            "clear" => CookieMode::Clear,
            "keep" => CookieMode::Keep,
            "off" => CookieMode::Off,
            other => {
                return Err(rs.errs.hint(
                    &c.referenced,
                    format!("http.cookies: `{other}` is not a cookie mode"),
                    "use clear (the default: emptied at each iteration), keep or off",
                ))
            }
        };
    }
    if let Some(c) = &h.on_429 {
        o.on_429 = match rs.string(c)?.as_str() {
            "count" => On429::Count,
            "wait" => On429::Wait,
            other => {
                return Err(rs.errs.hint(
                    &c.referenced,
                    format!("http.on_429: `{other}` is not understood"),
                    "use count (the default: go on at once) or wait (honour Retry-After)",
                ))
            }
        };
    }
    o.http2 = h.http2.unwrap_or(true);
    o.h2c = h.h2c.unwrap_or(false);
    o.insecure = h.insecure.unwrap_or(false);
    if let Some(t) = &h.timeout {
        o.timeout = rs.positive_duration(t, "http.timeout")?;
    }
    if let Some(t) = &h.connect_timeout {
        o.connect_timeout = rs.positive_duration(t, "http.connect_timeout")?;
    }
    if let Some(m) = &h.max_body {
        let s = rs.scalar(m, "http.max_body")?;
        o.max_body = parse_size(&s).map_err(|e| rs.errs.at(&m.referenced, format!("http.max_body: {e}")))?;
    }
    o.headers = headers(rs, &h.headers, names)?;
    Ok(o)
}
