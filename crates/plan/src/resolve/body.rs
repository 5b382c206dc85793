//! Request bodies beyond `json:` and `body:`: `form:` (urlencoded) and `multipart:` (fields and
//! files), compiled into one template each, so a literal one is a literal body built here, once;
//! and `compress:`.

use serde_json::Value;

use super::*;
use crate::compile::{Builder, Names};
use crate::template::url_escape_into;

/// `form: { name: value, … }`: `application/x-www-form-urlencoded`, names and values
/// percent-encoded (RFC 3986 unreserved kept, which every form decoder reads), values templated.
pub(super) fn form(rs: &Resolver, v: &Any, names: &Names) -> R<Template> {
    let Value::Object(fields) = &v.value else {
        return Err(rs.errs.hint(
            &v.referenced,
            "form: expected a map of field names to values",
            "e.g. `form: { user: ada, note: \"hi {{ vu }}\" }`",
        ));
    };
    let mut b = Builder::default();
    for (i, (k, x)) in fields.iter().enumerate() {
        if i > 0 {
            b.lit(b"&");
        }
        let mut key = Vec::new();
        url_escape_into(k.as_bytes(), &mut key);
        b.lit(&key);
        b.lit(b"=");
        let text = rs.scalar(&spanned(x.clone(), v), &format!("form.{k}"))?;
        b.template(&text, Escape::Url, names)
            .map_err(|e| rs.errs.at(&v.referenced, format!("form.{k}: {e}")))?;
    }
    Ok(b.finish())
}

/// One part of a multipart body, as read from the plan.
enum PartSpec {
    Field(String),
    File {
        filename: String,
        content_type: String,
        data: Vec<u8>,
    },
}

/// `multipart: { field: value, upload: { file: PATH, content_type: …, filename: … } }`:
/// `multipart/form-data` (RFC 7578). Field values are templated; files are read once, here,
/// relative to the plan. Returns the body and its `Content-Type` (with the boundary).
pub(super) fn multipart(rs: &Resolver, v: &Any, names: &Names) -> R<(Template, String)> {
    let hint = "e.g. `multipart: { title: hello, photo: { file: photo.png, content_type: image/png } }`";
    let Value::Object(fields) = &v.value else {
        return Err(rs
            .errs
            .hint(&v.referenced, "multipart: expected a map of part names to values", hint));
    };
    if fields.is_empty() {
        return Err(rs.errs.hint(&v.referenced, "multipart: no parts", hint));
    }
    let mut parts = Vec::new();
    for (name, x) in fields {
        let what = format!("multipart.{name}");
        let spec = match x {
            Value::Object(m) => {
                let known = ["file", "content_type", "filename"];
                if let Some(k) = m.keys().find(|k| !known.contains(&k.as_str())) {
                    return Err(rs.errs.hint(
                        &v.referenced,
                        format!("{what}: unknown key `{k}`"),
                        "a file part takes `file`, `content_type` and `filename`",
                    ));
                }
                let text = |key: &str| -> R<Option<String>> {
                    m.get(key)
                        .map(|x| rs.scalar(&spanned(x.clone(), v), &format!("{what}.{key}")))
                        .transpose()
                };
                let Some(file) = text("file")? else {
                    return Err(rs
                        .errs
                        .hint(&v.referenced, format!("{what}: a file part needs `file:`"), hint));
                };
                let path = rs.base_dir.join(&file);
                let data = read_beside_plan(&path, "uploaded files")
                    .map_err(|why| rs.errs.at(&v.referenced, format!("{what}: {why}")))?;
                let filename = match text("filename")? {
                    Some(f) => f,
                    None => std::path::Path::new(&file)
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_else(|| file.clone()),
                };
                let content_type = match text("content_type")? {
                    Some(c) => c,
                    None => guess_content_type(&filename).to_string(),
                };
                for (key, value) in [("filename", &filename), ("content_type", &content_type)] {
                    header_value(rs, value.as_bytes(), &v.referenced, &format!("{what}.{key}"))?;
                }
                PartSpec::File {
                    filename,
                    content_type,
                    data,
                }
            }
            other => PartSpec::Field(rs.scalar(&spanned(other.clone(), v), &what)?),
        };
        parts.push((name.as_str(), spec));
    }
    let boundary = boundary_for(&parts);
    let mut b = Builder::default();
    for (name, spec) in &parts {
        b.lit(b"--");
        b.lit(boundary.as_bytes());
        b.lit(b"\r\nContent-Disposition: form-data; name=\"");
        b.lit(&disposition_escape(name));
        b.lit(b"\"");
        match spec {
            PartSpec::Field(text) => {
                b.lit(b"\r\n\r\n");
                b.template(text, Escape::None, names)
                    .map_err(|e| rs.errs.at(&v.referenced, format!("multipart.{name}: {e}")))?;
            }
            PartSpec::File {
                filename,
                content_type,
                data,
            } => {
                b.lit(b"; filename=\"");
                b.lit(&disposition_escape(filename));
                b.lit(b"\"\r\nContent-Type: ");
                b.lit(content_type.as_bytes());
                b.lit(b"\r\n\r\n");
                b.lit(data);
            }
        }
        b.lit(b"\r\n");
    }
    b.lit(b"--");
    b.lit(boundary.as_bytes());
    b.lit(b"--\r\n");
    Ok((b.finish(), format!("multipart/form-data; boundary={boundary}")))
}

/// A boundary that appears in none of the parts' literal text (RFC 2046 §5.1.1): a hash of the
/// contents, changed until it is absent, so the same plan always sends the same body.
fn boundary_for(parts: &[(&str, PartSpec)]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |b: &[u8]| {
        for &x in b {
            h = (h ^ x as u64).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (name, spec) in parts {
        feed(name.as_bytes());
        match spec {
            PartSpec::Field(t) => feed(t.as_bytes()),
            PartSpec::File { data, .. } => feed(data),
        }
    }
    loop {
        let candidate = format!("stampede-{h:016x}");
        let found = parts.iter().any(|(name, spec)| {
            let hay: &[u8] = match spec {
                PartSpec::Field(t) => t.as_bytes(),
                PartSpec::File { data, .. } => data,
            };
            contains(hay, candidate.as_bytes()) || name.contains(&candidate)
        });
        if !found {
            return candidate;
        }
        h = h.wrapping_mul(0x0100_0000_01b3).wrapping_add(1);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A name or file name inside `Content-Disposition`'s quotes: `"`, CR and LF percent-encoded,
/// as the HTML standard's form encoding does.
fn disposition_escape(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"%22"),
            b'\r' => out.extend_from_slice(b"%0D"),
            b'\n' => out.extend_from_slice(b"%0A"),
            _ => out.push(b),
        }
    }
    out
}

/// The content type of an uploaded file by its extension, for the common kinds; anything
/// else is `application/octet-stream` (set `content_type:` for it).
fn guess_content_type(filename: &str) -> &'static str {
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// `compress: gzip`.
pub(super) fn compression(rs: &Resolver, v: &S<String>) -> R<Compression> {
    match rs.string(v)?.as_str() {
        "gzip" => Ok(Compression::Gzip),
        other => Err(rs.errs.hint(
            &v.referenced,
            format!("compress: `{other}` is not a compression"),
            "use `compress: gzip`",
        )),
    }
}

/// `follow_redirects: N`: 0 (off) to 100.
pub(super) fn redirects(rs: &Resolver, v: &Any, what: &str) -> R<u32> {
    let n = rs.count(v, what, 0)?;
    if n > MAX_REDIRECTS {
        return Err(rs.errs.hint(
            &v.referenced,
            format!("{what} = {n}: at most {MAX_REDIRECTS} redirects are followed"),
            "browsers stop at 20; 0 turns following off",
        ));
    }
    Ok(n as u32)
}

const MAX_REDIRECTS: u64 = 100;

/// `auth: { basic: [user, password] }` or `auth: { bearer: TOKEN }`, templated.
pub(super) fn auth(rs: &Resolver, v: &Any, names: &Names) -> R<Auth> {
    let hint = "use `auth: { basic: [user, password] }` or `auth: { bearer: TOKEN }`";
    let Value::Object(m) = &v.value else {
        return Err(rs.errs.hint(&v.referenced, "auth: not understood", hint));
    };
    let part = |x: &Value, what: &str| -> R<Template> {
        let t = template(rs, &spanned(x.clone(), v), what, Escape::None, names)?;
        for p in &t.parts {
            if let Part::Lit(text) = p {
                header_value(rs, text, &v.referenced, what)?;
            }
        }
        Ok(t)
    };
    match (m.len(), m.get("basic"), m.get("bearer")) {
        (1, Some(Value::Array(a)), None) if a.len() == 2 => {
            let user = part(&a[0], "auth.basic user")?;
            if user
                .parts
                .iter()
                .any(|p| matches!(p, Part::Lit(t) if t.contains(&b':')))
            {
                return Err(rs.errs.hint(
                    &v.referenced,
                    "auth.basic: the user name contains `:`",
                    "Basic authentication (RFC 7617) cannot carry a `:` in the user name",
                ));
            }
            Ok(Auth::Basic {
                user,
                password: part(&a[1], "auth.basic password")?,
            })
        }
        (1, None, Some(token @ (Value::String(_) | Value::Number(_)))) => {
            let t = part(token, "auth.bearer")?;
            if t.is_empty() {
                return Err(rs.errs.at(&v.referenced, "auth.bearer: the token is empty"));
            }
            Ok(Auth::Bearer(t))
        }
        _ => Err(rs.errs.hint(&v.referenced, "auth: not understood", hint)),
    }
}
