//! Quoting for the bash the documents print. Node names, addresses, label values and paths come
//! from the cluster or from files and are untrusted: every one that reaches a command line goes
//! through [`quote`], and every one that reaches a `#` comment or prose through [`one_line`], so
//! no value can end a quote, start a command, or break out of a comment or a code block.

/// Quote `s` as one bash word. Plain words stay as they are; anything else is single-quoted,
/// and a value with control characters (a newline could end a Markdown code block) becomes an
/// ANSI-C `$'...'` string with every such character escaped.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | ',' | '@' | '+'))
        && !s.starts_with('=');
    if plain {
        return s.to_string();
    }
    if !s.chars().any(char::is_control) {
        return format!("'{}'", s.replace('\'', r"'\''"));
    }
    let mut out = String::from("$'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '\'' => out.push_str(r"\'"),
            '\n' => out.push_str(r"\n"),
            '\t' => out.push_str(r"\t"),
            '\r' => out.push_str(r"\r"),
            c if c.is_control() && (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `s` with every control character (newline, carriage return, escape) shown as `?`, for
/// comments and prose: a name can then never start a new line.
pub fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// `s` with the characters of a POSIX extended regular expression escaped, for `grep -E`.
pub fn regex_literal(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if matches!(c, '.' | '[' | ']' | '(' | ')' | '{' | '}' | '*' | '+' | '?' | '^' | '$' | '|' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_and_the_rest_is_one_word() {
        assert_eq!(quote("cp-01.example.com"), "cp-01.example.com");
        assert_eq!(quote("n1;touch /tmp/x"), "'n1;touch /tmp/x'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a\nb'c"), r"$'a\nb\'c'");
        assert_eq!(quote("=x"), "'=x'");
        assert_eq!(one_line("w-1\n```\nrm -rf /"), "w-1?```?rm -rf /");
        assert_eq!(regex_literal("a.b|c"), r"a\.b\|c");
    }
}
