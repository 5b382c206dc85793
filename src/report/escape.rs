//! Escaping: every string that came from a plan or a target (names, URLs, notes, error kinds)
//! passes through one of these before it reaches a report. One function per output language,
//! used everywhere, so no renderer builds markup from raw values.

/// HTML, SVG and XML text and attribute values (double- or single-quoted).
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0; drop them rather than emit bad XML.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Markdown inline text (table cells, headings, list items). GitHub passes inline HTML through
/// (sanitized, but still markup), so a `<` that could open a tag, comment or autolink and an `&`
/// that could open an entity are backslash-escaped (CommonMark makes escaped ASCII punctuation
/// literal), as are the characters of Markdown's own inline syntax. Characters that cannot start
/// anything (`<` before a space, `_` inside a word) stay bare, so the text reads well in a
/// terminal. Newlines become spaces so a value cannot break a table row.
pub fn md(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        let prev = if i > 0 { chars.get(i - 1).copied() } else { None };
        let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        let escape = match c {
            '<' => next.is_none_or(|n| n.is_alphanumeric() || "/!?".contains(n)),
            '&' => next.is_none_or(|n| n.is_alphanumeric() || n == '#'),
            '>' | '#' | '+' | '-' => i == 0,
            '_' => !(word(prev) && word(next)),
            '!' => next == Some('['),
            '|' | '\\' | '`' | '*' | '[' | ']' | '~' => true,
            _ => false,
        };
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if (c as u32) < 0x20 => out.push(' '),
            c => {
                if escape {
                    out.push('\\');
                }
                out.push(c);
            }
        }
    }
    out
}

/// A file name made from a plan's names (phase, step): only `[A-Za-z0-9._-]`, never empty.
pub fn file_name(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        "_".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            html("<script>alert('1')</script>&\""),
            "&lt;script&gt;alert(&#39;1&#39;)&lt;/script&gt;&amp;&quot;"
        );
        assert_eq!(
            md("<img src=x onerror=alert(1)>|a*b"),
            "\\<img src=x onerror=alert(1)>\\|a\\*b"
        );
        assert_eq!(
            md("error_rate < 5% &amp; </script>"),
            "error_rate < 5% \\&amp; \\</script>"
        );
        assert_eq!(file_name("<img src=x>"), "_img_src_x_");
        assert_eq!(file_name(""), "_");
    }
}
