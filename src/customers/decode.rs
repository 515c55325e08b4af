//! Which text encoding a customers file is in, and a reader that turns it into UTF-8 as it
//! streams (one buffer at a time; the file is never loaded whole).
//!
//! The rule, in order: the campaign's `csv.encoding`; a byte-order mark (UTF-8, UTF-16LE,
//! UTF-16BE); NUL bytes at the odd or even positions of the first 4 KiB (UTF-16 without a mark:
//! Latin letters are one byte and one NUL); the start of the file being valid UTF-8; else
//! Windows-1252, which Excel on Windows writes and which covers ISO-8859-1 (WHATWG maps that
//! label to it). A UTF-8 file is read as bytes, untouched, so a later bad byte makes one row
//! invalid rather than the file.

use std::io::{self, Read};

use encoding_rs::{DecoderResult, Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};

/// How many bytes of the start decide between UTF-8 and Windows-1252.
const SNIFF: usize = 64 * 1024;

/// The encoding a file is read in, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextEncoding {
    pub encoding: &'static Encoding,
    pub why: Why,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    Campaign,
    ByteOrderMark,
    Nuls,
    ValidUtf8,
    NotUtf8,
}

impl std::fmt::Display for TextEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match self.why {
            Why::Campaign => "set by csv.encoding",
            Why::ByteOrderMark => "from its byte-order mark",
            Why::Nuls => "no byte-order mark; detected from its NUL bytes",
            Why::ValidUtf8 => "detected",
            Why::NotUtf8 => "detected: not valid UTF-8",
        };
        write!(f, "{} ({why})", self.encoding.name())
    }
}

/// The encoding named by a `csv.encoding` value (any WHATWG label: `utf-8`, `utf-16le`,
/// `windows-1252`, `latin1`, `iso-8859-15`, ...).
pub fn for_label(label: &str) -> Option<&'static Encoding> {
    Encoding::for_label(label.trim().as_bytes())
}

/// Decides the encoding from the start of the file, or says why it is not text.
pub fn detect(start: &[u8], set: Option<&'static Encoding>) -> Result<TextEncoding, String> {
    let found = |encoding, why| Ok(TextEncoding { encoding, why });
    if let Some(encoding) = set {
        return found(encoding, Why::Campaign);
    }
    if let Some((encoding, _)) = Encoding::for_bom(start) {
        return found(encoding, Why::ByteOrderMark);
    }
    if start.starts_with(b"PK\x03\x04") || start.starts_with(b"\xD0\xCF\x11\xE0") {
        return Err("the file is a workbook or another binary file, not text \
                    (give it its .xlsx, .xls or .ods name, or save it as CSV)"
            .to_owned());
    }
    let head = &start[..start.len().min(4096)];
    let nuls_at = |parity: usize| {
        head.iter()
            .skip(parity)
            .step_by(2)
            .filter(|&&b| b == 0)
            .count()
    };
    let (even, odd, half) = (nuls_at(0), nuls_at(1), head.len() / 2);
    // Mostly ASCII text in UTF-16: one side is NUL far more than the other. A stray NUL in a
    // text file is left to make its row invalid.
    if odd * 4 >= half && even * 8 <= odd && odd > 0 {
        return found(UTF_16LE, Why::Nuls);
    }
    if even * 4 >= half && odd * 8 <= even && even > 0 {
        return found(UTF_16BE, Why::Nuls);
    }
    if (even + odd) * 10 >= head.len() && even + odd > 0 {
        return Err(
            "the file has NUL bytes and is not text in UTF-8, UTF-16 or Windows-1252 \
                    (is it a spreadsheet saved in another format?)"
                .to_owned(),
        );
    }
    let sniff = &start[..start.len().min(SNIFF)];
    match std::str::from_utf8(sniff) {
        Ok(_) => found(UTF_8, Why::ValidUtf8),
        // Cut in the middle of a character at the end of the buffer: still UTF-8.
        Err(e) if e.error_len().is_none() => found(UTF_8, Why::ValidUtf8),
        Err(_) => found(WINDOWS_1252, Why::NotUtf8),
    }
}

/// Reads `inner` in `encoding` and yields UTF-8, a buffer at a time. A byte sequence that is
/// not valid in the encoding is an error naming its offset (the whole file is then unusable,
/// in one message), never a silent replacement character.
pub struct DecodeReader<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    encoding: &'static Encoding,
    input: Box<[u8]>,
    in_start: usize,
    in_end: usize,
    output: Box<[u8]>,
    out_start: usize,
    out_end: usize,
    consumed: u64,
    eof: bool,
    done: bool,
}

impl<R: Read> DecodeReader<R> {
    pub fn new(inner: R, encoding: &'static Encoding) -> DecodeReader<R> {
        const BUFFER: usize = 64 * 1024;
        DecodeReader {
            inner,
            decoder: encoding.new_decoder_with_bom_removal(),
            encoding,
            input: vec![0; BUFFER].into_boxed_slice(),
            in_start: 0,
            in_end: 0,
            // Room for any one decoded character whatever the input.
            output: vec![0; BUFFER * 3 + 16].into_boxed_slice(),
            out_start: 0,
            out_end: 0,
            consumed: 0,
            eof: false,
            done: false,
        }
    }

    /// Decodes the next piece of input into the output buffer.
    fn refill(&mut self) -> io::Result<()> {
        while self.out_start == self.out_end && !self.done {
            if self.in_start == self.in_end && !self.eof {
                self.in_start = 0;
                self.in_end = self.inner.read(&mut self.input)?;
                self.eof = self.in_end == 0;
            }
            let last = self.eof && self.in_start == self.in_end;
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.input[self.in_start..self.in_end],
                &mut self.output,
                last,
            );
            self.in_start += read;
            self.consumed += read as u64;
            self.out_start = 0;
            self.out_end = written;
            match result {
                DecoderResult::InputEmpty => self.done = last,
                DecoderResult::OutputFull => {}
                DecoderResult::Malformed(bad, _) => {
                    let at = self.consumed.saturating_sub(u64::from(bad)) + 1;
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the file is not valid {} at byte {at} (set `csv.encoding:` to the \
                             file's encoding, or save it as UTF-8)",
                            self.encoding.name()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for DecodeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.refill()?;
        let n = (self.out_end - self.out_start).min(buf.len());
        buf[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
        self.out_start += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most 3 bytes per read: characters split across reads still decode.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(3);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn decode(bytes: &[u8], encoding: &'static Encoding) -> io::Result<String> {
        let mut out = String::new();
        DecodeReader::new(Trickle(bytes), encoding).read_to_string(&mut out)?;
        Ok(out)
    }

    fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
        text.encode_utf16()
            .flat_map(|u| {
                if big_endian {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                }
            })
            .collect()
    }

    #[test]
    fn detection_follows_the_rule() {
        let name = |bytes: &[u8]| detect(bytes, None).map(|e| (e.encoding.name(), e.why));
        assert_eq!(name(b"email\na@x.com\n"), Ok(("UTF-8", Why::ValidUtf8)));
        assert_eq!(
            name("\u{feff}email".as_bytes()),
            Ok(("UTF-8", Why::ByteOrderMark))
        );
        assert_eq!(name(b"\xFF\xFEe\0"), Ok(("UTF-16LE", Why::ByteOrderMark)));
        assert_eq!(name(b"\xFE\xFF\0e"), Ok(("UTF-16BE", Why::ByteOrderMark)));
        assert_eq!(
            name(&utf16("email\nJosé\n", false)),
            Ok(("UTF-16LE", Why::Nuls))
        );
        assert_eq!(
            name(&utf16("email\nJosé\n", true)),
            Ok(("UTF-16BE", Why::Nuls))
        );
        assert_eq!(name(b"name\nJos\xE9\n"), Ok(("windows-1252", Why::NotUtf8)));
        // A character cut by the end of the sniffed bytes is not a reason to leave UTF-8.
        assert_eq!(name(b"name\nJos\xC3"), Ok(("UTF-8", Why::ValidUtf8)));
        assert!(name(b"PK\x03\x04rest").unwrap_err().contains("workbook"));
        assert!(name(b"\0\0\0\x01\x02\0\0\0ab")
            .unwrap_err()
            .contains("NUL bytes"));
        let set = detect(b"\xFF\xFEe\0", for_label("latin1")).unwrap();
        assert_eq!(
            (set.encoding.name(), set.why),
            ("windows-1252", Why::Campaign)
        );
        assert_eq!(set.to_string(), "windows-1252 (set by csv.encoding)");
    }

    #[test]
    fn decodes_across_reads_and_drops_the_mark() {
        let text = "email\tname\nana@example.com\tJosé Müller 😀\n";
        let mut le = vec![0xFF, 0xFE];
        le.extend(utf16(text, false));
        assert_eq!(decode(&le, UTF_16LE).unwrap(), text);
        let mut be = vec![0xFE, 0xFF];
        be.extend(utf16(text, true));
        assert_eq!(decode(&be, UTF_16BE).unwrap(), text);
        assert_eq!(decode(b"Jos\xE9 \x80", WINDOWS_1252).unwrap(), "José €");
    }

    #[test]
    fn an_undecodable_byte_is_an_error_with_its_offset() {
        // A lone low surrogate after "ab" (bytes 5-6).
        let bytes = [b'a', 0, b'b', 0, 0x00, 0xDC, b'c', 0];
        let err = decode(&bytes, UTF_16LE).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(
            err.to_string().contains("not valid UTF-16LE at byte 5"),
            "{err}"
        );
    }
}
