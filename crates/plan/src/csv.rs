//! Data feeder files: CSV (RFC 4180: quoted fields, doubled quotes, embedded newlines, CRLF) read
//! with the `csv` crate. A UTF-8 byte-order mark is skipped, header names are trimmed, blank
//! lines are ignored, every row must have as many fields as the header, and text must be UTF-8.

use bytes::Bytes;

/// A problem in a data file, at a 1-based line and column (columns count characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The column names and the rows of a data file.
pub type Table = (Vec<String>, Vec<Vec<Bytes>>);

/// Reads a whole data file.
pub fn parse(data: &[u8]) -> Result<Table, CsvError> {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::Headers)
        .from_reader(data);
    let header = rdr.headers().map_err(|e| located(data, &e))?.clone();
    if header.is_empty() {
        return Err(at(1, 1, "the file is empty (a header row is required)"));
    }
    let header_start = header.position().map_or(0, |p| p.byte() as usize);
    let mut columns: Vec<String> = Vec::with_capacity(header.len());
    for (i, name) in header.iter().enumerate() {
        if name.is_empty() {
            let (line, column) = field_start(data, header_start, i);
            return Err(at(line, column, "the header row has an empty column name"));
        }
        if columns.iter().any(|c| c == name) {
            let (line, column) = field_start(data, header_start, i);
            return Err(at(line, column, format!("the header names column `{name}` twice")));
        }
        columns.push(name.to_string());
    }
    let mut rows = Vec::new();
    let mut last_start = None;
    for record in rdr.records() {
        let record = record.map_err(|e| located(data, &e))?;
        last_start = record.position().map(|p| p.byte() as usize);
        rows.push(record.iter().map(|f| Bytes::copy_from_slice(f.as_bytes())).collect());
    }
    // The csv crate reads an unclosed quote as a field running to the end of the file: in a
    // data file that is a mistake, so it is refused where the quote opened.
    if let Some((line, column)) = open_quote(data, last_start.unwrap_or(0)) {
        return Err(at(line, column, "this quoted field is not closed"));
    }
    if rows.is_empty() {
        return Err(at(2, 1, "the file has a header but no rows"));
    }
    Ok((columns, rows))
}

fn at(line: usize, column: usize, message: impl Into<String>) -> CsvError {
    CsvError {
        line,
        column,
        message: message.into(),
    }
}

/// A csv error, placed as precisely as the error allows.
fn located(data: &[u8], e: &csv::Error) -> CsvError {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            pos: Some(pos),
            expected_len,
            len,
        } => {
            let start = pos.byte() as usize;
            if let Some((line, column)) = open_quote(data, start) {
                return at(line, column, "this quoted field is not closed");
            }
            // Too many fields: at the first extra one. Too few: at the end of the row.
            let (line, column) = field_start(data, start, *expected_len as usize);
            let row = pos.record() + 1;
            let fields = if *len == 1 { "field" } else { "fields" };
            at(
                line,
                column,
                format!("row {row} has {len} {fields}, the header has {expected_len}"),
            )
        }
        csv::ErrorKind::Utf8 { pos: Some(pos), err } => {
            let (line, column) = field_start(data, pos.byte() as usize, err.field());
            at(line, column, "this field is not UTF-8 text")
        }
        _ => {
            let line = e.position().map_or(1, |p| p.line() as usize);
            at(line, 1, e.to_string())
        }
    }
}

/// Where a record's field begins (or, past its last field, where the record ends), given the
/// byte offset at which the record starts.
fn field_start(data: &[u8], start: usize, field: usize) -> (usize, usize) {
    let mut scan = Scan::new(data, start);
    let mut index = 0;
    while index < field {
        match scan.next_separator() {
            Some(b',') => index += 1,
            _ => break,
        }
    }
    scan.place()
}

/// Where a quoted field that never closes opens, scanning from the start of the last record.
fn open_quote(data: &[u8], start: usize) -> Option<(usize, usize)> {
    let mut scan = Scan::new(data, start);
    while let Some(sep) = scan.next_separator() {
        if sep != b',' {
            scan.bump();
        }
    }
    scan.open_quote
}

/// A cursor that follows RFC 4180 quoting, only to turn the csv crate's byte offsets into lines
/// and columns for messages; the fields themselves are the crate's.
struct Scan<'a> {
    data: &'a [u8],
    at: usize,
    line: usize,
    column: usize,
    /// Where the quoted field being read opened, while inside it.
    open_quote: Option<(usize, usize)>,
}

impl<'a> Scan<'a> {
    fn new(data: &'a [u8], start: usize) -> Self {
        let start = start.min(data.len());
        let before = &data[..start];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let mut scan = Scan {
            data,
            at: start,
            line,
            column: 1 + chars(&data[line_start..start]),
            open_quote: None,
        };
        // A record's position is where the reader began looking for it, before the blank lines
        // it skips.
        while matches!(data.get(scan.at), Some(b'\n' | b'\r')) {
            scan.bump();
        }
        scan
    }

    fn place(&self) -> (usize, usize) {
        (self.line, self.column)
    }

    fn bump(&mut self) -> u8 {
        let b = self.data[self.at];
        self.at += 1;
        if b == b'\n' {
            self.line += 1;
            self.column = 1;
        } else if b & 0xC0 != 0x80 {
            self.column += 1;
        }
        b
    }

    /// Reads the current field and stops just past the comma that ends it (returning `,`), or at
    /// the line break that ends the record (returning it, not consumed), or at the end (`None`).
    fn next_separator(&mut self) -> Option<u8> {
        let mut field_start = true;
        while self.at < self.data.len() {
            let b = self.data[self.at];
            if self.open_quote.is_some() {
                self.bump();
                if b == b'"' {
                    if self.data.get(self.at) == Some(&b'"') {
                        self.bump();
                    } else {
                        self.open_quote = None;
                    }
                }
                continue;
            }
            match b {
                b',' => {
                    self.bump();
                    return Some(b',');
                }
                b'\n' | b'\r' => return Some(b),
                b'"' if field_start => {
                    self.open_quote = Some(self.place());
                    self.bump();
                }
                _ => {
                    self.bump();
                }
            }
            field_start = false;
        }
        None
    }
}

fn chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> CsvError {
        parse(text.as_bytes()).expect_err("the file should be refused")
    }

    #[test]
    fn quotes_and_crlf() {
        let (h, rows) = parse(b"id,name\r\n1,\"a, \"\"b\"\"\"\r\n2,c\n").unwrap();
        assert_eq!(h, ["id", "name"]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][1], "a, \"b\"");
        assert_eq!(rows[1][1], "c");
    }

    #[test]
    fn embedded_newlines_and_blank_lines() {
        let (_, rows) = parse(b"id,note\n1,\"two\nlines\"\n\n2,\"\"\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][1], "two\nlines");
        assert_eq!(rows[1][1], "");
    }

    #[test]
    fn byte_order_mark_and_header_spaces() {
        let (h, rows) = parse("\u{feff}id , name\n1,ann\n".as_bytes()).unwrap();
        assert_eq!(h, ["id", "name"]);
        assert_eq!(rows[0][0], "1");
    }

    #[test]
    fn ragged_rows_are_placed() {
        let e = err("id,name\n1,ann\n2,bo,extra\n");
        assert_eq!((e.line, e.column), (3, 6), "{e:?}");
        assert_eq!(e.message, "row 3 has 3 fields, the header has 2");
        let e = err("id,name\n1\n");
        assert_eq!((e.line, e.column), (2, 2), "{e:?}");
        assert_eq!(e.message, "row 2 has 1 field, the header has 2");
        // After a quoted field spanning lines, the row still starts where it does.
        let e = err("id,note\n1,\"a\nb\"\r\n\r\n2,\"x,y\",z\n");
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (5, 9, "row 3 has 3 fields, the header has 2")
        );
    }

    #[test]
    fn bad_files() {
        assert_eq!(err("").message, "the file is empty (a header row is required)");
        assert_eq!(err("a\n").message, "the file has a header but no rows");
        let e = err("a,,b\n1,2,3\n");
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (1, 3, "the header row has an empty column name")
        );
        let e = err("\n\nid,name,id\n1,2,3\n");
        assert_eq!((e.line, e.column), (3, 9));
        assert!(e.message.contains("`id` twice"), "{e:?}");
        let e = err("a,b\n1,x\n2,\"open\n3,y\n");
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (3, 3, "this quoted field is not closed")
        );
        let e = err("a,b\n\"open,x\n3,y\n");
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (2, 1, "this quoted field is not closed")
        );
        let e = parse(b"a,b\n1,\xff\n").unwrap_err();
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (2, 3, "this field is not UTF-8 text")
        );
    }
}
