//! An incremental RFC 4180 reader: bytes go in as they arrive (an HTTP
//! body's chunks), whole records come out with the line they started on.
//! Memory is bounded by one record ([`MAX_RECORD_BYTES`]), never by the
//! upload, so a million-row file streams through a few kilobytes.
//!
//! Lenient where spreadsheets are sloppy: CRLF or LF line ends, a missing
//! final line end, blank lines skipped, text after a closing quote kept.

use std::collections::VecDeque;

/// The longest record accepted; a longer one (an unclosed quote, a binary
/// upload) is reported as that record's error and skipped.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// One record of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRecord {
    /// The 1-based line the record starts on (the header is line 1).
    pub line: u64,
    /// Its fields, or why it could not be read.
    pub fields: Result<Vec<String>, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: an escaped quote or the field's end.
    QuoteInQuoted,
}

/// The reader. Feed it with [`CsvReader::push`], drain [`CsvReader::next`],
/// and call [`CsvReader::finish`] at the end of the input.
#[derive(Debug)]
pub struct CsvReader {
    state: State,
    field: Vec<u8>,
    fields: Vec<String>,
    record_bytes: usize,
    too_long: bool,
    bad_utf8: bool,
    /// The line the current byte is on.
    line: u64,
    record_line: u64,
    ready: VecDeque<CsvRecord>,
}

impl Default for CsvReader {
    fn default() -> Self {
        CsvReader {
            state: State::FieldStart,
            field: Vec::new(),
            fields: Vec::new(),
            record_bytes: 0,
            too_long: false,
            bad_utf8: false,
            line: 1,
            record_line: 1,
            ready: VecDeque::new(),
        }
    }
}

impl CsvReader {
    pub fn new() -> CsvReader {
        CsvReader::default()
    }

    /// Reads `bytes`; the records they complete wait in [`CsvReader::next`].
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }

    /// Ends the input: a last record without a line end is completed.
    pub fn finish(&mut self) {
        if self.state == State::Quoted {
            self.too_long = self.too_long || self.record_bytes > MAX_RECORD_BYTES;
            if !self.too_long {
                // An unclosed quote at the end of the input.
                self.fields.clear();
                self.field.clear();
                self.ready.push_back(CsvRecord {
                    line: self.record_line,
                    fields: Err("a quoted field is not closed".into()),
                });
                self.reset_record();
                return;
            }
        }
        if self.record_bytes > 0 || !self.fields.is_empty() {
            self.end_record();
        }
    }

    /// The next complete record, if any.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<CsvRecord> {
        self.ready.pop_front()
    }

    fn byte(&mut self, b: u8) {
        if b == b'\n' {
            self.line += 1;
        }
        match self.state {
            State::FieldStart | State::Unquoted => match b {
                b'"' if self.state == State::FieldStart => {
                    self.state = State::Quoted;
                    self.record_bytes += 1;
                }
                b',' => self.end_field(),
                b'\n' => self.end_record(),
                // A CR before LF is dropped; a lone CR is kept as text.
                b'\r' => {}
                _ => {
                    self.keep(b);
                    self.state = State::Unquoted;
                }
            },
            State::Quoted => match b {
                b'"' => self.state = State::QuoteInQuoted,
                _ => self.keep(b),
            },
            State::QuoteInQuoted => match b {
                b'"' => {
                    self.keep(b'"');
                    self.state = State::Quoted;
                }
                b',' => self.end_field(),
                b'\n' => self.end_record(),
                b'\r' => {}
                _ => {
                    self.keep(b);
                    self.state = State::Unquoted;
                }
            },
        }
    }

    fn keep(&mut self, b: u8) {
        self.record_bytes += 1;
        if self.record_bytes > MAX_RECORD_BYTES {
            self.too_long = true;
            self.field.clear();
            self.fields.clear();
        } else {
            self.field.push(b);
        }
    }

    fn end_field(&mut self) {
        self.record_bytes += 1;
        self.state = State::FieldStart;
        if self.too_long {
            return;
        }
        match String::from_utf8(std::mem::take(&mut self.field)) {
            Ok(text) => self.fields.push(text),
            Err(_) => {
                self.bad_utf8 = true;
                self.fields.push(String::new());
            }
        }
    }

    fn end_record(&mut self) {
        let blank = self.fields.is_empty() && self.field.is_empty() && !self.too_long && self.record_bytes == 0;
        if blank {
            self.reset_record();
            return;
        }
        self.end_field();
        let fields = if self.too_long {
            Err(format!("the row is longer than {MAX_RECORD_BYTES} bytes (an unclosed quote?)"))
        } else if self.bad_utf8 {
            Err("the row is not UTF-8 text".to_string())
        } else {
            Ok(std::mem::take(&mut self.fields))
        };
        self.ready.push_back(CsvRecord { line: self.record_line, fields });
        self.reset_record();
    }

    fn reset_record(&mut self) {
        self.state = State::FieldStart;
        self.field.clear();
        self.fields.clear();
        self.record_bytes = 0;
        self.too_long = false;
        self.bad_utf8 = false;
        self.record_line = self.line;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(chunks: &[&[u8]]) -> Vec<CsvRecord> {
        let mut r = CsvReader::new();
        let mut out = Vec::new();
        for c in chunks {
            r.push(c);
            while let Some(rec) = r.next() {
                out.push(rec);
            }
        }
        r.finish();
        while let Some(rec) = r.next() {
            out.push(rec);
        }
        out
    }

    fn ok(line: u64, fields: &[&str]) -> CsvRecord {
        CsvRecord { line, fields: Ok(fields.iter().map(|f| f.to_string()).collect()) }
    }

    #[test]
    fn reads_quoted_fields_across_chunks_with_their_lines() {
        let input = b"phone,name\r\n+919800000001,\"Asha, \"\"A\"\"\"\r\n\n9800000002,\"two\nlines\"\n9800000003,x";
        let whole = read(&[input]);
        assert_eq!(
            whole,
            vec![
                ok(1, &["phone", "name"]),
                ok(2, &["+919800000001", "Asha, \"A\""]),
                ok(4, &["9800000002", "two\nlines"]),
                ok(6, &["9800000003", "x"]),
            ]
        );
        // Every split of the input reads the same.
        for at in 0..input.len() {
            assert_eq!(read(&[&input[..at], &input[at..]]), whole, "split at {at}");
        }
    }

    #[test]
    fn bad_rows_are_reported_and_skipped() {
        let mut long = b"a,\"".to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + 10));
        long.extend(b"\"\nb,c\n");
        let recs = read(&[&long]);
        assert!(recs[0].fields.as_ref().unwrap_err().contains("longer than"));
        assert_eq!(recs[1], ok(2, &["b", "c"]));
        let recs = read(&[b"a,\xff\nb\n"]);
        assert_eq!(recs[0].fields, Err("the row is not UTF-8 text".into()));
        assert_eq!(recs[1], ok(2, &["b"]));
        let recs = read(&[b"a\n\"open"]);
        assert_eq!(recs[1].fields, Err("a quoted field is not closed".into()));
        assert_eq!(read(&[b"a,,\n"]), vec![ok(1, &["a", "", ""])]);
    }
}
