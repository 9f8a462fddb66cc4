//! The one parser for every flag that takes a duration: the same units everywhere (`ms`, `s`,
//! `m`, `h`, `d`, combined as in `1h30m`, a decimal as in `1.5h`), and a bare number in the
//! flag's own unit (seconds for timeouts and ages, minutes for the plan's soaks and waits).
//! Flags use [`seconds`] or [`minutes`] as clap value parsers, so clap's error names the flag
//! and this module's message names the accepted forms.

use std::time::Duration;

/// What a bare number counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bare {
    Seconds,
    Minutes,
}

impl Bare {
    fn name(self) -> &'static str {
        match self {
            Bare::Seconds => "seconds",
            Bare::Minutes => "minutes",
        }
    }

    fn secs(self) -> f64 {
        match self {
            Bare::Seconds => 1.0,
            Bare::Minutes => 60.0,
        }
    }
}

/// A duration in which a bare number is seconds: `90`, `90s`, `1500ms`, `5m`, `1h`, `1m30s`.
pub fn seconds(text: &str) -> Result<Duration, String> {
    parse(text, Bare::Seconds)
}

/// A whole number of minutes, in which a bare number is minutes: `30`, `30m`, `1h30m`, `2d`, `120s`.
pub fn minutes(text: &str) -> Result<u32, String> {
    let d = parse(text, Bare::Minutes)?;
    if d.subsec_nanos() != 0 || d.as_secs() % 60 != 0 {
        return Err(format!("'{text}' is not a whole number of minutes; this flag counts minutes, e.g. 30m or 1h30m"));
    }
    u32::try_from(d.as_secs() / 60).map_err(|_| format!("'{text}' is too long; the most is {} minutes", u32::MAX))
}

fn forms(bare: Bare) -> String {
    format!("write a number and a unit (ms, s, m, h, d), several together (1h30m), or a bare number of {}", bare.name())
}

fn parse(text: &str, bare: Bare) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("empty duration; {}", forms(bare)));
    }
    if let Ok(n) = t.parse::<u64>() {
        return Duration::try_from_secs_f64(n as f64 * bare.secs())
            .map_err(|_| format!("'{text}' is too long; {}", forms(bare)));
    }
    let mut total = Duration::ZERO;
    let mut number = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        if c.is_whitespace() && number.is_empty() {
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let value: f64 = number.parse().map_err(|_| format!("'{text}' is not a duration; {}", forms(bare)))?;
        number.clear();
        let secs = match unit.as_str() {
            "ms" => value / 1000.0,
            "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            "d" => value * 86_400.0,
            _ => return Err(format!("'{text}': unknown unit '{}'; use ms, s, m, h or d", unit.trim())),
        };
        total = Duration::try_from_secs_f64(secs)
            .ok()
            .and_then(|d| total.checked_add(d))
            .ok_or_else(|| format!("'{text}' is too long; {}", forms(bare)))?;
    }
    if !number.is_empty() {
        return Err(format!("'{text}': a number without a unit at the end; write e.g. 1m30s"));
    }
    Ok(total)
}

/// `d` as Go's `time.ParseDuration` reads it (for `kubectl --timeout`): `15m`, `1h30m`, `1m30s`, `250ms`.
pub fn go(d: Duration) -> String {
    let (mut secs, millis) = (d.as_secs(), d.subsec_millis());
    let mut out = String::new();
    for (unit, size) in [("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    if millis > 0 {
        out.push_str(&format!("{millis}ms"));
    }
    if out.is_empty() { "0s".into() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_forms_for_every_flag() {
        let s = Duration::from_secs;
        // (input, as seconds, as minutes)
        let ok: &[(&str, Duration, Option<u32>)] = &[
            ("300s", s(300), Some(5)),
            ("90", s(90), Some(90)),
            ("0", s(0), Some(0)),
            ("1m30s", s(90), None),
            ("250ms", Duration::from_millis(250), None),
            ("1.5h", s(5400), Some(90)),
            ("30m", s(1800), Some(30)),
            ("1h30m", s(5400), Some(90)),
            ("1h 30m", s(5400), Some(90)),
            ("2h", s(7200), Some(120)),
            ("2d", s(172_800), Some(2880)),
            ("120s", s(120), Some(2)),
        ];
        for (text, secs, mins) in ok {
            assert_eq!(seconds(text).as_ref(), Ok(secs), "{text}");
            let bare = text.parse::<u32>().ok();
            match (bare, mins) {
                (Some(n), _) => assert_eq!(minutes(text), Ok(n), "{text}: a bare number is minutes"),
                (None, Some(m)) => assert_eq!(minutes(text), Ok(*m), "{text}"),
                (None, None) => assert!(minutes(text).unwrap_err().contains("whole number of minutes"), "{text}"),
            }
        }
        // (input, what the error says)
        let bad: &[(&str, &str)] = &[
            ("", "empty duration"),
            ("soon", "is not a duration"),
            ("5 minutes", "unknown unit 'minutes'"),
            ("1m30", "without a unit"),
            ("m", "is not a duration"),
            ("1..5h", "is not a duration"),
            ("99999999999999999999d", "too long"),
        ];
        for (text, says) in bad {
            let e = seconds(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
            let e = minutes(text).unwrap_err();
            assert!(e.contains(says), "{text:?} as minutes: {e}");
        }
        assert!(seconds("").unwrap_err().contains("bare number of seconds"));
        assert!(minutes("").unwrap_err().contains("bare number of minutes"));
    }

    #[test]
    fn go_durations_read_back() {
        for (text, go_form) in [("15m", "15m"), ("90s", "1m30s"), ("1.5h", "1h30m"), ("250ms", "250ms"), ("0", "0s")] {
            assert_eq!(go(seconds(text).unwrap()), go_form, "{text}");
        }
    }
}
