//! Reproducible identifiers: a SplitMix64 generator seeded from the
//! simulator's configuration, so that two runs with the same seed and the
//! same requests hand out the same sids.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast and well distributed —
/// ample for identifiers that need to look random and be reproducible.
#[derive(Debug, Clone)]
pub struct IdGen {
    state: u64,
}

impl IdGen {
    pub fn new(seed: u64) -> Self {
        IdGen { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A 32-character lower-case hex sid, the shape of Exotel's Call and SMS sids.
    pub fn next_sid(&mut self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sids() {
        let (mut a, mut b) = (IdGen::new(7), IdGen::new(7));
        let sid = a.next_sid();
        assert_eq!(sid, b.next_sid());
        assert_eq!(sid.len(), 32);
        assert!(sid.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        assert_ne!(a.next_sid(), IdGen::new(8).next_sid());
    }
}
