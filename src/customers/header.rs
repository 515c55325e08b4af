//! The header line: the delimiter it uses, its line ending, and its column names.

use std::io::{self, BufRead};
use std::path::Path;

use crate::diagnostic::Diagnostic;

/// Delimiters we recognise, in order of preference on a tie.
pub(super) const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Trims the header's names for matching, drops empty unnamed columns at its end and checks
/// the rest are named once each; returns (trimmed names, names as written).
pub(super) fn named_columns(
    path: &Path,
    mut raw: Vec<String>,
) -> Result<(Vec<String>, Vec<String>), Diagnostic> {
    while raw.len() > 1 && raw.last().is_some_and(|name| name.trim().is_empty()) {
        raw.pop();
    }
    let mut headers: Vec<String> = Vec::with_capacity(raw.len());
    for (i, name) in raw.iter().enumerate() {
        let trimmed = name.trim();
        if trimmed.is_empty() {
            return Err(Diagnostic::file(
                path,
                format!("header, column {}: the column has no name", i + 1),
            ));
        }
        if let Some(first) = headers.iter().position(|h| h == trimmed) {
            return Err(Diagnostic::file(
                path,
                format!(
                    "header, column {}: `{}` appears twice (also column {})",
                    i + 1,
                    crate::escape::escape_control(name),
                    first + 1
                ),
            ));
        }
        headers.push(trimmed.to_owned());
    }
    Ok((headers, raw))
}

/// How a delimiter is named in messages.
pub(super) fn delimiter_name(d: u8) -> String {
    match d {
        b'\t' => "tab".to_owned(),
        other => format!("`{}`", other as char),
    }
}

/// True when the first line outside quotes ends in `\r\n`.
pub(super) fn header_ends_with_crlf(buffer: &[u8]) -> bool {
    let mut quoted = false;
    for (i, &byte) in buffer.iter().enumerate() {
        match byte {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => return i > 0 && buffer[i - 1] == b'\r',
            _ => {}
        }
    }
    false
}

/// Picks the delimiter that appears most often in the header line, outside quotes.
pub(super) fn detect_delimiter(reader: &mut impl BufRead) -> io::Result<u8> {
    let buffer = reader.fill_buf()?;
    let buffer = buffer.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(buffer);
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for &byte in buffer {
        match byte {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                if let Some(i) = DELIMITERS.iter().position(|&d| d == byte) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
    }
    let best = (0..DELIMITERS.len())
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .expect("non-empty");
    Ok(if counts[best] == 0 {
        b','
    } else {
        DELIMITERS[best]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_delimiter_of_the_header_only() {
        let detect = |text: &str| detect_delimiter(&mut text.as_bytes()).unwrap();
        assert_eq!(detect("email;name\na,b;c;d;e\n"), b';');
        assert_eq!(detect("\u{feff}email\tname\n"), b'\t');
        assert_eq!(detect("\"a;b\",c\n"), b',');
        assert_eq!(detect("email|name|x\n"), b'|');
        assert_eq!(detect("email\n"), b',');
    }

    #[test]
    fn names_are_trimmed_and_empty_trailing_columns_dropped() {
        let names = |raw: &[&str]| {
            named_columns(
                Path::new("c.csv"),
                raw.iter().map(|n| n.to_string()).collect(),
            )
        };
        let (trimmed, raw) = names(&["Email Address", " First Name ", "", " "]).unwrap();
        assert_eq!(trimmed, ["Email Address", "First Name"]);
        assert_eq!(raw, ["Email Address", " First Name "]);
        let err = names(&["a", "", "b"]).unwrap_err().to_string();
        assert!(
            err.contains("header, column 2: the column has no name"),
            "{err}"
        );
    }

    #[test]
    fn the_header_line_ending_is_seen_outside_quotes() {
        assert!(header_ends_with_crlf(b"a,b\r\nx,y\n"));
        assert!(!header_ends_with_crlf(b"a,b\nx,y\r\n"));
        assert!(!header_ends_with_crlf(b"\"a\r\nb\",c\nx"));
        assert!(!header_ends_with_crlf(b"a,b"));
    }
}
