//! Text from outside (a server's answer, a CSV cell) on its way to a terminal or a ledger
//! cell: control characters are shown escaped, so an escape sequence, a BEL or a newline in
//! it can neither forge an output line nor drive the terminal.

use std::borrow::Cow;

/// `text` with every control character (C0, DEL, C1) written as `\u{..}`; unchanged, and not
/// copied, when it has none.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_plain_text_is_borrowed() {
        assert!(matches!(escape_control("plain – ünï"), Cow::Borrowed(_)));
        assert_eq!(
            escape_control("a\u{1b}]0;pwned\u{7}\nb\rc\u{9b}d\u{7f}"),
            r"a\u{1b}]0;pwned\u{7}\u{a}b\u{d}c\u{9b}d\u{7f}"
        );
    }
}
