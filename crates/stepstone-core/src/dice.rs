//! `Dice`: seeded pseudo-random numbers for the places that want a repeatable sequence without a
//! dependency (the chaos campaign's faults, the readers' fuzzer). The same seed gives the same
//! numbers on every machine, so a run can be repeated from its seed. Not for anything secret.

/// splitmix64 (Steele, Lea and Flood): one `u64` of state; each number is the finalised next
/// state.
#[derive(Debug, Clone)]
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Self {
        Dice(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in [0, 1), from the top 53 bits (all a `f64` holds).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() <= p
    }

    /// A number below `n`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }

    /// One of `items`, which must not be empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_splitmix64s() {
        // The reference implementation's first numbers from seed 0.
        let mut d = Dice::new(0);
        assert_eq!(
            [d.next_u64(), d.next_u64(), d.next_u64()],
            [0xe220_a839_7b1d_cdaf, 0x6e78_9e6a_a1b9_65f4, 0x06c4_5d18_8009_454f]
        );
    }

    #[test]
    fn the_helpers_stay_in_range_and_repeat_for_a_seed() {
        let mut d = Dice::new(7);
        for _ in 0..1000 {
            assert!((0.0..1.0).contains(&d.unit()));
            assert!(d.below(3) < 3);
        }
        assert_eq!(d.below(0), 0);
        let draw = |seed| {
            let mut d = Dice::new(seed);
            (0..20).map(|_| *d.pick(&["a", "b", "c"])).collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
        assert!(!Dice::new(1).chance(-1.0));
        assert!(Dice::new(1).chance(1.0));
    }
}
