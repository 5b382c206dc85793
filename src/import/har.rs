//! `stampede import har FILE`: a browser recording (HAR 1.2, as Chromium's devtools and
//! Playwright write it) as a flow: the page and API requests in the order they started, the
//! gaps between them as think time; static assets (images, fonts, styles, scripts, media) left
//! out and counted, since a load test of an API does not fetch a page's CDN files.

use serde::Deserialize;

use super::{curl::body_of, Body, ImportError, Imported, Request};

#[derive(Deserialize)]
struct Har {
    log: Log,
}

#[derive(Deserialize)]
struct Log {
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(default)]
    started_date_time: String,
    /// Milliseconds the whole exchange took.
    #[serde(default)]
    time: f64,
    request: HarRequest,
    #[serde(default)]
    response: Option<HarResponse>,
    /// Chromium's: `document`, `xhr`, `fetch`, `script`, `image` …
    #[serde(default, rename = "_resourceType")]
    resource_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HarRequest {
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<NameValue>,
    #[serde(default)]
    post_data: Option<PostData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostData {
    #[serde(default)]
    mime_type: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    params: Vec<NameValue>,
}

#[derive(Deserialize)]
struct HarResponse {
    #[serde(default)]
    status: i64,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Content {
    #[serde(default)]
    mime_type: String,
}

#[derive(Deserialize)]
struct NameValue {
    name: String,
    value: String,
}

/// Resource types and content types a load test of the API leaves out.
const STATIC_TYPES: &[&str] = &[
    "image",
    "font",
    "stylesheet",
    "script",
    "media",
    "manifest",
    "texttrack",
    "websocket",
    "other",
];
const STATIC_MIME: &[&str] = &["image/", "font/", "text/css", "javascript", "video/", "audio/"];

/// Think time between two requests is the gap between the end of one and the start of the
/// next, at most this long (a user who left the tab open says nothing about pacing).
const MAX_THINK_MS: u64 = 10_000;

fn is_static(e: &Entry) -> bool {
    if let Some(t) = &e.resource_type {
        return STATIC_TYPES.contains(&t.as_str());
    }
    let mime = e
        .response
        .as_ref()
        .and_then(|r| r.content.as_ref())
        .map(|c| c.mime_type.to_ascii_lowercase())
        .unwrap_or_default();
    STATIC_MIME.iter().any(|m| mime.contains(m))
}

/// Milliseconds since the epoch of an RFC 3339 time (`2026-12-02T06:40:00.123Z`), enough for
/// gaps between entries of one recording.
fn millis(t: &str) -> Option<f64> {
    let (date, time) = t.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (clock, offset_s) = match time.find(['Z', '+', '-']) {
        Some(i) if &time[i..i + 1] == "Z" => (&time[..i], 0),
        Some(i) => {
            let sign = if &time[i..i + 1] == "-" { -1 } else { 1 };
            let mut o = time[i + 1..].split(':').map(|x| x.parse::<i64>().ok());
            (
                &time[..i],
                sign * (o.next()?? * 3600 + o.next().flatten().unwrap_or(0) * 60),
            )
        }
        None => (time, 0),
    };
    let mut c = clock.split(':');
    let (h, min) = (c.next()?.parse::<i64>().ok()?, c.next()?.parse::<i64>().ok()?);
    let s: f64 = c.next()?.parse().ok()?;
    // Days since the epoch (civil from days, proleptic Gregorian).
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + min * 60 - offset_s) as f64 + s) * 1000.0)
}

/// The requests of a HAR document, in the order they started.
pub fn import(text: &str, name: &str) -> Result<Imported, ImportError> {
    let har: Har = serde_json::from_str(text).map_err(|e| ImportError::Input(format!("not a HAR file: {e}")))?;
    let mut entries: Vec<&Entry> = har.log.entries.iter().collect();
    entries.sort_by(|a, b| {
        millis(&a.started_date_time)
            .unwrap_or(0.0)
            .total_cmp(&millis(&b.started_date_time).unwrap_or(0.0))
    });
    let total = entries.len();
    let mut skipped = 0;
    let mut out: Vec<Request> = Vec::new();
    let mut last_end: Option<f64> = None;
    for e in entries {
        if is_static(e) || !(e.request.url.starts_with("http://") || e.request.url.starts_with("https://")) {
            skipped += 1;
            continue;
        }
        let start = millis(&e.started_date_time);
        if let (Some(prev), Some(s), Some(r)) = (last_end, start, out.last_mut()) {
            r.think_ms = ((s - prev).max(0.0) as u64).min(MAX_THINK_MS);
        }
        last_end = start.map(|s| s + e.time.max(0.0));
        let mut r = Request::new(&e.request.method, &e.request.url);
        r.headers = e
            .request
            .headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        if let Some(p) = &e.request.post_data {
            let ct = (!p.mime_type.is_empty()).then(|| p.mime_type.clone());
            r.body = match &p.text {
                Some(t) => Some(body_of(t, ct)),
                None if !p.params.is_empty() => Some(Body::Form(
                    p.params.iter().map(|x| (x.name.clone(), x.value.clone())).collect(),
                )),
                None => None,
            };
        }
        let status = e.response.as_ref().map(|r| r.status).unwrap_or(0);
        if !(200..400).contains(&status) && (100..600).contains(&status) {
            r.expect = Some(status as u16);
        }
        out.push(r);
    }
    let mut notes = vec![format!(
        "from a HAR recording: {} of {total} requests, in the order they started, the gaps between them as think time (at most {} s)",
        out.len(),
        MAX_THINK_MS / 1000
    )];
    if skipped > 0 {
        notes.push(format!(
            "{skipped} static or non-HTTP requests (images, fonts, styles, scripts, media, WebSockets) left out"
        ));
    }
    notes.push("recorded cookies are left out: the cookie jar collects them as the flow runs".into());
    Ok(Imported {
        name: name.to_string(),
        requests: out,
        insecure: false,
        notes,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_milliseconds() {
        let a = millis("2026-12-02T06:40:00.000Z").unwrap();
        let b = millis("2026-12-02T07:40:01.500+01:00").unwrap();
        assert_eq!(b - a, 1500.0);
        assert_eq!(millis("1970-01-01T00:00:01Z"), Some(1000.0));
    }
}
