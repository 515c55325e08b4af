//! Writing JSON strings fast. Request bodies are written byte by byte on the hot path of
//! every row; most values need no escaping at all, so they are checked eight bytes at a time
//! and copied whole, and only the rare value with a quote, backslash or control character
//! goes through serde_json's escaper. The output is byte-for-byte what serde_json writes.

/// Appends `text` as a JSON string literal (with quotes).
pub fn push_str(out: &mut Vec<u8>, text: &str) {
    if needs_escape(text.as_bytes()) {
        serde_json::to_writer(&mut *out, text).expect("writing to a Vec cannot fail");
    } else {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// True when `bytes` holds `"`, `\` or a control character (< 0x20). Whole words only: a
/// short value is padded to one, and the tail of a longer one is the last eight bytes again
/// (bytes looked at twice cannot change the answer), so no value is read byte by byte.
fn needs_escape(bytes: &[u8]) -> bool {
    if bytes.len() < 8 {
        let mut word = [b' '; 8];
        word[..bytes.len()].copy_from_slice(bytes);
        return has_special(u64::from_le_bytes(word));
    }
    let mut chunks = bytes.chunks_exact(8);
    if chunks.any(|chunk| has_special(u64::from_le_bytes(chunk.try_into().expect("8 bytes")))) {
        return true;
    }
    let tail = &bytes[bytes.len() - 8..];
    has_special(u64::from_le_bytes(tail.try_into().expect("8 bytes")))
}

/// True when one of the eight bytes of `word` is `"`, `\` or below 0x20.
fn has_special(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    let quote = has_zero(word ^ (ONES * u64::from(b'"')));
    let backslash = has_zero(word ^ (ONES * u64::from(b'\\')));
    control | quote | backslash != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_as_serde_json() {
        let samples = [
            "",
            "plain ascii text",
            "ünïcödé 李伟 حسن",
            "quote\" inside",
            "back\\slash",
            "new\nline",
            "tab\tand\u{1}control",
            "12345678\"",
            "1234567\u{7f}8",
            "ends with \u{1f}",
        ];
        for sample in samples {
            let mut ours = Vec::new();
            push_str(&mut ours, sample);
            assert_eq!(ours, serde_json::to_vec(sample).unwrap(), "{sample:?}");
        }
    }

    #[test]
    fn every_byte_value_anywhere_is_judged_as_one_at_a_time_would() {
        let special = |b: &u8| *b < 0x20 || *b == b'"' || *b == b'\\';
        for filler in [b'a', b' ', 0x7f, 0x80, 0xff] {
            for len in 1..20 {
                for pos in 0..len {
                    for byte in 0..=255u8 {
                        let mut bytes = vec![filler; len];
                        bytes[pos] = byte;
                        let expected = bytes.iter().any(special);
                        assert_eq!(
                            needs_escape(&bytes),
                            expected,
                            "{byte:#x} at {pos} of {len}"
                        );
                    }
                }
            }
        }
        assert!(!needs_escape("ü€ 0x20 ~".as_bytes()));
    }
}
