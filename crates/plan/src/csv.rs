//! A small CSV reader (RFC 4180: quotes, doubled quotes, CRLF) for data feeders.

use bytes::Bytes;

/// Header and rows. Every row must have as many fields as the header.
pub fn parse(text: &str) -> Result<(Vec<String>, Vec<Vec<Bytes>>), String> {
    let records = records(text)?;
    let mut it = records.into_iter();
    let header = it.next().ok_or("the file is empty (a header row is required)")?;
    if header.iter().any(|h| h.trim().is_empty()) {
        return Err("the header row has an empty column name".into());
    }
    let mut rows = Vec::new();
    for (i, r) in it.enumerate() {
        if r.len() == 1 && r[0].is_empty() {
            continue;
        }
        if r.len() != header.len() {
            return Err(format!(
                "row {} has {} field(s), the header has {}",
                i + 2,
                r.len(),
                header.len()
            ));
        }
        rows.push(r.into_iter().map(Bytes::from).collect());
    }
    if rows.is_empty() {
        return Err("the file has a header but no rows".into());
    }
    Ok((header.into_iter().map(|h| h.trim().to_string()).collect(), rows))
}

fn records(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut out = Vec::new();
    let mut rec = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut line = 1;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => rec.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                line += 1;
                rec.push(std::mem::take(&mut field));
                out.push(std::mem::take(&mut rec));
            }
            _ => field.push(c),
        }
    }
    if quoted {
        return Err(format!("a quoted field is not closed (line {line})"));
    }
    if !field.is_empty() || !rec.is_empty() {
        rec.push(field);
        out.push(rec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_crlf() {
        let (h, rows) = parse("id,name\r\n1,\"a, \"\"b\"\"\"\r\n2,c\n").unwrap();
        assert_eq!(h, ["id", "name"]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][1], "a, \"b\"");
        assert!(parse("a,b\n1\n").unwrap_err().contains("row 2"));
        assert!(parse("").is_err());
        assert!(parse("a\n").is_err());
        assert!(parse("a\n\"x\n").is_err());
    }
}
