//! How many workers of each hardware generation may be drained at once: the operator's
//! `--max-unavailable` (one number, or per generation as `dell-r640=2,default=3`) and, where the
//! operator gives none, the default the fleet itself supports.
//!
//! The default for a generation is its share of that generation's workers, capped by the
//! aggregate capacity bound (the most nodes any safe batch can hold). The share is a blast
//! radius: a batch is what one bad upgrade takes out at once. Later generations get 1/5 of their
//! nodes, the `serial: 20%` kubespray rolls with; the oldest generation, the one most likely to
//! surface a kernel or firmware problem, gets 1/8. Rounded to the nearest node, at least one:
//! on the domain document's fleet (15 workers a generation) that is 2 at a time for the oldest
//! and 3 for the later ones, its own numbers, and on a 12-worker cluster 2, the seed's number.
//! The share sets the number of batches and the limit then cuts the workers evenly, so no
//! generation ends with a batch of a node or two (1,250 workers: 8 of at most 157).
//! While a batch grows, the simulator can still stop it earlier (capacity, or budget waits
//! beyond the generation's fair share that outlast one more batch).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Share of a later generation's workers in one batch, in percent.
pub const LATER_GENERATION_SHARE_PERCENT: u32 = 20;
/// Share of the oldest generation's workers in one batch, in per mille (1/8).
pub const OLDEST_GENERATION_SHARE_PER_MILLE: u32 = 125;

/// The operator's `--max-unavailable`: a number for every generation, or per generation with an
/// optional `default`. Generations it leaves out get the fleet's default.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchLimits {
    /// The limit of every generation not named.
    pub default: Option<u32>,
    /// Per generation, by name.
    pub by_generation: BTreeMap<String, u32>,
}

impl BatchLimits {
    /// No limit from the operator: every generation gets the fleet's default.
    pub fn from_fleet() -> Self {
        BatchLimits::default()
    }

    /// The same limit for every generation.
    pub fn uniform(n: u32) -> Self {
        BatchLimits { default: Some(n.max(1)), by_generation: BTreeMap::new() }
    }

    /// The operator's limit for `generation`, if any.
    pub fn operator(&self, generation: &str) -> Option<u32> {
        self.given(generation).map(|(n, _)| n)
    }

    /// The operator's limit for `generation` and how it was given: by name (or as the one number
    /// for every generation), or through `default=` next to other generations' names.
    fn given(&self, generation: &str) -> Option<(u32, LimitSource)> {
        match self.by_generation.get(generation) {
            Some(&n) => Some((n, LimitSource::Operator)),
            None if self.by_generation.is_empty() => self.default.map(|n| (n, LimitSource::Operator)),
            None => self.default.map(|n| (n, LimitSource::OperatorDefault)),
        }
    }
}

impl fmt::Display for BatchLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.by_generation.iter().map(|(g, n)| format!("{g}={n}")).collect();
        match (self.default, parts.is_empty()) {
            (Some(n), true) => return write!(f, "{n}"),
            (Some(n), false) => parts.push(format!("default={n}")),
            (None, true) => return write!(f, "from the fleet"),
            (None, false) => {}
        }
        write!(f, "{}", parts.join(","))
    }
}

/// A `--max-unavailable` value that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--max-unavailable '{input}': {problem}; use a number of nodes (3) or per hardware generation (dell-r640=2,default=3)"
)]
pub struct BadBatchLimits {
    pub input: String,
    pub problem: String,
}

impl FromStr for BatchLimits {
    type Err = BadBatchLimits;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |problem: String| BadBatchLimits { input: s.to_string(), problem };
        let count = |v: &str| -> Result<u32, BadBatchLimits> {
            match v.trim().parse::<u32>() {
                Ok(0) => Err(bad(format!("'{}' is not at least 1", v.trim()))),
                Ok(n) => Ok(n),
                Err(_) => Err(bad(format!("'{}' is not a whole number of nodes", v.trim()))),
            }
        };
        let mut limits = BatchLimits::default();
        if !s.contains('=') {
            limits.default = Some(count(s)?);
            return Ok(limits);
        }
        for part in s.split(',') {
            let Some((name, value)) = part.split_once('=') else {
                return Err(bad(format!("'{}' has no '=' (name=N)", part.trim())));
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(bad(format!("'{}' has no generation name before '='", part.trim())));
            }
            let n = count(value)?;
            let previous = if name == "default" {
                limits.default.replace(n).is_some()
            } else {
                limits.by_generation.insert(name.to_string(), n).is_some()
            };
            if previous {
                return Err(bad(format!("'{name}' is given twice")));
            }
        }
        Ok(limits)
    }
}

/// What set a generation's batch limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitSource {
    /// `--max-unavailable`: the one number, or the generation's own `name=N`.
    Operator,
    /// `--max-unavailable`'s `default=N`, for a generation it does not name.
    OperatorDefault,
    /// The generation's share of its workers (no limit given).
    GenerationShare,
    /// The aggregate capacity bound, below the share (no limit given).
    Capacity,
}

impl LimitSource {
    /// Given by the operator, by name or through `default=`.
    pub fn is_operator(self) -> bool {
        matches!(self, LimitSource::Operator | LimitSource::OperatorDefault)
    }

    pub fn describe(self) -> &'static str {
        match self {
            LimitSource::Operator => "--max-unavailable",
            LimitSource::OperatorDefault => "--max-unavailable default",
            LimitSource::GenerationShare => "generation share",
            LimitSource::Capacity => "capacity",
        }
    }
}

/// The batch limit of one generation, as the plan used it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationLimit {
    /// Workers of the generation.
    pub workers: u32,
    /// Most of them drained at once.
    pub limit: u32,
    pub source: LimitSource,
}

/// The share of `workers` the default gives one batch: 1/8 for the oldest generation, 1/5 for
/// the others, rounded to the nearest node (halves up), at least 1.
pub fn generation_share(workers: u32, oldest: bool) -> u32 {
    let per_mille = if oldest { OLDEST_GENERATION_SHARE_PER_MILLE } else { LATER_GENERATION_SHARE_PERCENT * 10 };
    let scaled = u64::from(workers) * u64::from(per_mille);
    ((scaled + 500) / 1000).max(1) as u32
}

/// The default limit of a generation of `workers`: its share gives a number of batches (the
/// workers over the share, rounded to the nearest, halves up, at least one), and the limit cuts
/// the workers evenly into that many. 1,250 workers at 1/8 get 8 batches of at most 157, not 8
/// of 156 and a ninth of 2, which would cost a whole batch's time in every hop.
pub fn even_share_limit(workers: u32, oldest: bool) -> u32 {
    let share = u64::from(generation_share(workers, oldest));
    let workers = u64::from(workers.max(1));
    let batches = ((2 * workers + share) / (2 * share)).max(1);
    workers.div_ceil(batches) as u32
}

/// Each generation's limit: the operator's where given, else its share, cut evenly
/// ([`even_share_limit`]), capped by `capacity_bound`. `workers` is the number of workers per generation and `order` the
/// generations oldest first.
pub fn resolve(
    limits: &BatchLimits,
    workers: &BTreeMap<String, u32>,
    order: &[String],
    capacity_bound: u32,
) -> BTreeMap<String, GenerationLimit> {
    let oldest = order.iter().find(|g| workers.contains_key(g.as_str()));
    workers
        .iter()
        .map(|(generation, &count)| {
            let resolved = match limits.given(generation) {
                Some((n, source)) => GenerationLimit { workers: count, limit: n.max(1), source },
                None => {
                    let share = even_share_limit(count, oldest == Some(generation));
                    if capacity_bound < share {
                        GenerationLimit { workers: count, limit: capacity_bound.max(1), source: LimitSource::Capacity }
                    } else {
                        GenerationLimit { workers: count, limit: share, source: LimitSource::GenerationShare }
                    }
                }
            };
            (generation.clone(), resolved)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_numbers_and_per_generation_values_parse() {
        assert_eq!("3".parse::<BatchLimits>().unwrap(), BatchLimits::uniform(3));
        let l: BatchLimits = "dell-r640=2,default=3".parse().unwrap();
        assert_eq!(l.operator("dell-r640"), Some(2));
        assert_eq!(l.operator("hp-dl380"), Some(3));
        let only: BatchLimits = "dell-r640=2".parse().unwrap();
        assert_eq!(only.operator("hp-dl380"), None);
        assert_eq!(l.to_string(), "dell-r640=2,default=3");
        assert_eq!(BatchLimits::uniform(4).to_string(), "4");
    }

    #[test]
    fn bad_values_name_the_input_and_the_fix() {
        for (input, problem) in [
            ("0", "'0' is not at least 1"),
            ("two", "'two' is not a whole number"),
            ("dell-r640=2,dell-r640=3", "'dell-r640' is given twice"),
            ("dell-r640=2,3", "'3' has no '='"),
            ("=2", "no generation name"),
            ("dell-r640=-1", "'-1' is not a whole number"),
        ] {
            let e = input.parse::<BatchLimits>().unwrap_err().to_string();
            assert!(e.contains(&format!("'{input}'")), "{e}");
            assert!(e.contains(problem), "{e}");
            assert!(e.contains("dell-r640=2,default=3"), "{e}");
        }
    }

    #[test]
    fn the_share_gives_the_domain_documents_numbers() {
        // 15 workers per generation: the oldest 2 at a time, the later ones 3.
        assert_eq!(generation_share(15, true), 2);
        assert_eq!(generation_share(15, false), 3);
        assert_eq!(generation_share(12, true), 2);
        assert_eq!(generation_share(1, true), 1);
        assert_eq!(generation_share(0, false), 1);
        assert_eq!(generation_share(250, false), 50);
        assert_eq!(generation_share(249, true), 31);
    }

    #[test]
    fn the_share_cuts_a_generation_into_even_batches() {
        // The domain document's and the seed's numbers stay.
        assert_eq!(even_share_limit(15, true), 2);
        assert_eq!(even_share_limit(15, false), 3);
        assert_eq!(even_share_limit(12, true), 2);
        assert_eq!(even_share_limit(1, true), 1);
        assert_eq!(even_share_limit(0, false), 1);
        // 1,250 at 1/8: share 156 would leave a ninth batch of 2; 8 batches of at most 157.
        assert_eq!(generation_share(1250, true), 156);
        assert_eq!(even_share_limit(1250, true), 157);
        assert_eq!(even_share_limit(249, true), 32);
        assert_eq!(even_share_limit(250, false), 50);
        // 7 workers at 1/5: share 1 gives 7 batches of 1; 11 at 1/5: share 2, 6 batches of 2.
        assert_eq!(even_share_limit(7, false), 1);
        assert_eq!(even_share_limit(11, false), 2);
        // Never more batches than the share makes, never a limit below the share.
        for workers in 1..3000 {
            for oldest in [true, false] {
                let share = generation_share(workers, oldest);
                let limit = even_share_limit(workers, oldest);
                assert!(limit >= share, "{workers} {oldest}: {limit} < {share}");
                assert!(workers.div_ceil(limit) <= workers.div_ceil(share), "{workers} {oldest}");
            }
        }
    }

    #[test]
    fn the_operator_wins_and_capacity_caps_the_share() {
        let workers: BTreeMap<String, u32> = [("old".to_string(), 80), ("new".to_string(), 100)].into();
        let order = vec!["old".to_string(), "new".to_string()];
        let fleet = resolve(&BatchLimits::from_fleet(), &workers, &order, 15);
        assert_eq!(fleet["old"], GenerationLimit { workers: 80, limit: 10, source: LimitSource::GenerationShare });
        assert_eq!(fleet["new"], GenerationLimit { workers: 100, limit: 15, source: LimitSource::Capacity });
        let given = resolve(&"new=4".parse().unwrap(), &workers, &order, 15);
        assert_eq!(given["new"].source, LimitSource::Operator);
        assert_eq!(given["new"].limit, 4);
        assert_eq!(given["old"].source, LimitSource::GenerationShare);
        // `default=` next to a name: the generations it reaches say so; one number is not a default.
        let with_default = resolve(&"new=4,default=6".parse().unwrap(), &workers, &order, 15);
        assert_eq!(with_default["new"], GenerationLimit { workers: 100, limit: 4, source: LimitSource::Operator });
        assert_eq!(
            with_default["old"],
            GenerationLimit { workers: 80, limit: 6, source: LimitSource::OperatorDefault }
        );
        let one_number = resolve(&"6".parse().unwrap(), &workers, &order, 15);
        assert!(one_number.values().all(|l| l.source == LimitSource::Operator && l.limit == 6));
    }
}
