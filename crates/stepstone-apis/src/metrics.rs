//! The apiserver's `apiserver_requested_deprecated_apis` gauge, read from Prometheus text format
//! (a live `/metrics` response or a saved file). Each series is a deprecated group/version/resource
//! some client has requested since that apiserver started: what clients actually call, which no
//! manifest scan can see.

use std::collections::BTreeMap;

pub const METRIC: &str = "apiserver_requested_deprecated_apis";

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("{origin}:{line}: malformed {METRIC} series: {problem}")]
    Malformed { origin: String, line: usize, problem: String },
}

/// One series of the metric.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeprecatedRequest {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    /// `1.25`, or empty when the apiserver does not know the removal release.
    pub removed_release: String,
    pub line: usize,
}

/// Every non-zero series of the metric in `text`. Other metrics are skipped.
pub fn parse(origin: &str, text: &str) -> Result<Vec<DeprecatedRequest>, MetricsError> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let Some(rest) = line.strip_prefix(METRIC) else { continue };
        // Only the metric itself, not e.g. `apiserver_requested_deprecated_apis_total_x`.
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        let malformed = |problem: &str| MetricsError::Malformed {
            origin: origin.to_string(),
            line: index + 1,
            problem: problem.into(),
        };
        let (labels, value_part) = if let Some(body) = rest.strip_prefix('{') {
            let end = closing_brace(body).ok_or_else(|| malformed("no closing '}'"))?;
            (parse_labels(&body[..end]).map_err(|p| malformed(&p))?, &body[end + 1..])
        } else {
            (BTreeMap::new(), rest)
        };
        let value = value_part.split_whitespace().next().ok_or_else(|| malformed("no value"))?;
        let value: f64 = value.parse().map_err(|_| malformed(&format!("value '{value}' is not a number")))?;
        if value == 0.0 {
            continue;
        }
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        if get("version").is_empty() || get("resource").is_empty() {
            return Err(malformed("missing version or resource label"));
        }
        out.push(DeprecatedRequest {
            group: get("group"),
            version: get("version"),
            resource: get("resource"),
            subresource: get("subresource"),
            removed_release: get("removed_release"),
            line: index + 1,
        });
    }
    Ok(out)
}

/// Index of the `}` that closes the label set, skipping braces inside quoted values.
fn closing_brace(body: &str) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return Some(i),
            _ => {}
        }
    }
    None
}

/// `group="policy",version="v1beta1"` → map, with `\"`, `\\` and `\n` unescaped.
fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(labels);
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if chars.next() != Some('=') || chars.next() != Some('"') {
            return Err(format!("label '{}' has no quoted value", name.trim()));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => return Err("unterminated escape".into()),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => return Err(format!("label '{}' has an unterminated value", name.trim())),
            }
        }
        labels.insert(name.trim().to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_read_and_zero_series_skipped() {
        let text = "# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested\n\
# TYPE apiserver_requested_deprecated_apis gauge\n\
apiserver_requested_deprecated_apis{group=\"flowcontrol.apiserver.k8s.io\",removed_release=\"1.32\",resource=\"flowschemas\",subresource=\"\",version=\"v1beta3\"} 1\n\
apiserver_requested_deprecated_apis{group=\"policy\",removed_release=\"\",resource=\"pods\",subresource=\"eviction\",version=\"v1beta1\"} 0\n\
apiserver_request_total{code=\"200\"} 7\n";
        let got = parse("m.txt", text).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].resource, "flowschemas");
        assert_eq!(got[0].removed_release, "1.32");
        assert_eq!(got[0].line, 3);
    }

    #[test]
    fn a_broken_series_names_file_and_line() {
        let err = parse("m.txt", "apiserver_requested_deprecated_apis{group=\"x\" 1\n").unwrap_err().to_string();
        assert!(err.starts_with("m.txt:1:"), "{err}");
    }
}
