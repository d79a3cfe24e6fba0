//! Keeps secrets out of logs and results: strips credentials from URIs and masks known values.

/// Removes `user:password@` from every `scheme://…` URI in `text`.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        // The authority ends at the first character that cannot be part of it.
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => out.push_str(&authority[at + 1..]),
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Replaces every occurrence of each secret value by `***` (values shorter than 4 characters
/// are left alone: masking them would garble ordinary text without protecting anything).
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_stripped_from_every_uri_in_a_message() {
        assert_eq!(
            redact_text("connect mongodb://admin:s3cret@db:27017/x failed; ftp://u:p@h:21/a"),
            "connect mongodb://db:27017/x failed; ftp://h:21/a"
        );
    }

    #[test]
    fn uris_without_credentials_are_unchanged() {
        assert_eq!(redact_text("http://h:1/p?q"), "http://h:1/p?q");
    }

    #[test]
    fn known_secret_values_are_masked() {
        assert_eq!(
            mask("login failed for password hunter22", &["hunter22".into()]),
            "login failed for password ***"
        );
    }
}
