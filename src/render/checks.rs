//! Checks of rendered values: the email address and the success URL.

/// A practical email check (not RFC 5322): one `@`, a plausible local part and a dotted
/// domain, no spaces. It catches the typos a spreadsheet produces, not exotic addresses.
pub fn check_email(email: &str) -> Result<(), &'static str> {
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains spaces");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err("has no @");
    };
    if domain.contains('@') {
        return Err("has more than one @");
    }
    if local.is_empty() || local.len() > 64 {
        return Err("has no name before the @");
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("has a misplaced dot before the @");
    }
    if local.contains(['(', ')', '<', '>', '[', ']', '\\', ',', ';', ':', '"']) {
        return Err("has a character not allowed before the @");
    }
    if !domain.contains('.') {
        return Err("has no dot in the domain");
    }
    let mut last = "";
    for label in domain.split('.') {
        if label.is_empty() || label.starts_with('-') || label.ends_with('-') {
            return Err("has a malformed domain");
        }
        if !label.chars().all(|c| c.is_alphanumeric() || c == '-') {
            return Err("has a character not allowed in the domain");
        }
        last = label;
    }
    if last.chars().nth(1).is_none() {
        return Err("has a malformed domain");
    }
    Ok(())
}

pub(super) fn check_url(text: &str) -> Result<(), &'static str> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        Ok(_) => Err("is not an http(s) URL"),
        Err(_) => Err("is not an absolute http(s) URL"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for good in ["a@b.co", "first.last+tag@sub.example.org", "zoë@exämple.de"] {
            assert_eq!(check_email(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("ab.co", "has no @"),
            ("a@b", "has no dot in the domain"),
            ("a b@c.co", "contains spaces"),
            ("a@@b.co", "has more than one @"),
            ("@b.co", "has no name before the @"),
            ("a@b..co", "has a malformed domain"),
            ("a@b.c", "has a malformed domain"),
        ] {
            assert_eq!(check_email(bad), Err(why), "{bad}");
        }
    }
}
