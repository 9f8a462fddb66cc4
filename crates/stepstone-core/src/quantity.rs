//! Kubernetes resource quantities (`500m`, `2`, `128Mi`, `1G`, `1e3`) as integers.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("'{input}' is not a Kubernetes quantity (examples: 500m, 2, 128Mi, 10Gi)")]
    Invalid { input: String },
    #[error("'{input}' is larger than any machine has (at most 2^50: 1 PiB, or 10^12 CPU millicores)")]
    TooLarge { input: String },
}

/// The largest quantity read, in bytes or CPU millicores: far beyond any machine, and small
/// enough that totals over a fleet of many thousand nodes cannot overflow.
pub const MAX_QUANTITY: u64 = 1 << 50;

fn split_suffix(s: &str) -> (&str, &str) {
    let idx = s
        .char_indices()
        .find(|(_, c)| c.is_ascii_alphabetic() && *c != 'e' && *c != 'E')
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    // `1e3` is an exponent, `1E` is exa: only treat e/E as exponent when digits follow.
    let (num, suffix) = s.split_at(idx);
    if let Some(pos) = num.find(['e', 'E'])
        && num[pos + 1..].is_empty()
    {
        return (&s[..pos], &s[pos..]);
    }
    (num, suffix)
}

/// Parse a quantity into units of `1/scale` of the base unit, rounding up as the API server
/// does when it canonicalises (a request of `0.1m` CPU counts as 1 millicore).
fn parse_scaled(input: &str, scale: f64) -> Result<u64, QuantityError> {
    let err = || QuantityError::Invalid { input: input.to_string() };
    let s = input.trim();
    if s.is_empty() {
        return Err(err());
    }
    let (num, suffix) = split_suffix(s);
    let mult: f64 = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0f64.powi(2),
        "Gi" => 1024.0f64.powi(3),
        "Ti" => 1024.0f64.powi(4),
        "Pi" => 1024.0f64.powi(5),
        "Ei" => 1024.0f64.powi(6),
        _ => return Err(err()),
    };
    let value: f64 = num.parse().map_err(|_| err())?;
    if !value.is_finite() || value < 0.0 {
        return Err(err());
    }
    let scaled = (value * mult * scale - 1e-9).ceil().max(0.0);
    if scaled > MAX_QUANTITY as f64 {
        return Err(QuantityError::TooLarge { input: input.to_string() });
    }
    Ok(scaled as u64)
}

/// CPU in millicores.
pub fn parse_cpu_millis(s: &str) -> Result<u64, QuantityError> {
    parse_scaled(s, 1000.0)
}

/// Bytes (memory, storage) or plain counts (pods).
pub fn parse_bytes(s: &str) -> Result<u64, QuantityError> {
    parse_scaled(s, 1.0)
}

/// The schedulable resources the simulator accounts for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub pods: u64,
    pub ephemeral_storage_bytes: u64,
}

impl Resources {
    pub fn saturating_add(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_add(o.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_add(o.memory_bytes),
            pods: self.pods.saturating_add(o.pods),
            ephemeral_storage_bytes: self.ephemeral_storage_bytes.saturating_add(o.ephemeral_storage_bytes),
        }
    }

    pub fn saturating_sub(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_sub(o.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_sub(o.memory_bytes),
            pods: self.pods.saturating_sub(o.pods),
            ephemeral_storage_bytes: self.ephemeral_storage_bytes.saturating_sub(o.ephemeral_storage_bytes),
        }
    }

    /// Element-wise maximum (init containers run one at a time, so a pod's request is the
    /// larger of its biggest init container and the sum of its app containers).
    pub fn max(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.max(o.cpu_millis),
            memory_bytes: self.memory_bytes.max(o.memory_bytes),
            pods: self.pods.max(o.pods),
            ephemeral_storage_bytes: self.ephemeral_storage_bytes.max(o.ephemeral_storage_bytes),
        }
    }
}

/// Render millicores the way kubectl does: `500m`, `2`.
pub fn format_cpu(millis: u64) -> String {
    if millis.is_multiple_of(1000) { format!("{}", millis / 1000) } else { format!("{millis}m") }
}

/// Render bytes in the largest binary unit that divides them, `Ki` at least.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 5] =
        [("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)];
    for (name, size) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{name}", bytes / size);
        }
    }
    if bytes >= 1 << 10 { format!("{}Ki", bytes / 1024) } else { bytes.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu() {
        assert_eq!(parse_cpu_millis("500m").unwrap(), 500);
        assert_eq!(parse_cpu_millis("2").unwrap(), 2000);
        assert_eq!(parse_cpu_millis("0.25").unwrap(), 250);
        assert_eq!(parse_cpu_millis("1500u").unwrap(), 2);
        assert!(parse_cpu_millis("two").is_err());
        assert!(parse_cpu_millis("-1").is_err());
    }

    #[test]
    fn memory() {
        assert_eq!(parse_bytes("128Mi").unwrap(), 128 * 1024 * 1024);
        assert_eq!(parse_bytes("1G").unwrap(), 1_000_000_000);
        assert_eq!(parse_bytes("1e3").unwrap(), 1000);
        assert_eq!(parse_bytes("263882096Ki").unwrap(), 263_882_096 * 1024);
        assert_eq!(parse_bytes("110").unwrap(), 110);
        assert!(parse_bytes("12Xi").is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(format_cpu(2000), "2");
        assert_eq!(format_cpu(2500), "2500m");
        assert_eq!(format_bytes(64 << 30), "64Gi");
        assert_eq!(format_bytes(1536 << 20), "1536Mi");
    }
}
