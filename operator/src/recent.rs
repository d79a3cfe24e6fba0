//! Keys remembered with the instant they were noted, for a time to live: what the operator
//! keeps about recent Job creates, finishes and status writes. Pure.
//!
//! Why not a map pruned whenever it passes a size: when every entry is still young (a
//! burst of a few thousand Jobs within the time to live) each insert then walked the whole
//! map and removed nothing, which made the operator's hottest function a `retain`. Here a
//! prune runs only once the map has doubled since the last one: amortized constant time,
//! and the map holds at most twice what the time to live lets in.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Recent {
    ttl: Duration,
    noted: HashMap<String, Instant>,
    /// The size at which the next insert first drops the expired entries.
    prune_at: usize,
    /// The least `prune_at`: below it the map is never walked.
    min_prune_at: usize,
}

impl Recent {
    /// Entries expire `ttl` after they were noted; the map is not pruned below `min_prune_at`.
    pub fn new(ttl: Duration, min_prune_at: usize) -> Self {
        Recent {
            ttl,
            noted: HashMap::new(),
            prune_at: min_prune_at.max(1),
            min_prune_at: min_prune_at.max(1),
        }
    }

    /// When `key` was noted, if that is less than the time to live before `now`.
    pub fn get(&self, key: &str, now: Instant) -> Option<Instant> {
        self.noted
            .get(key)
            .copied()
            .filter(|at| self.is_live(*at, now))
    }

    /// Notes `key` at `at`, replacing an earlier noting.
    pub fn insert(&mut self, key: &str, at: Instant, now: Instant) {
        self.make_room(now);
        match self.noted.get_mut(key) {
            Some(noted) => *noted = at,
            None => {
                self.noted.insert(key.to_string(), at);
            }
        }
    }

    /// Notes `key` at `now` unless it is noted and still live: the first noting counts.
    pub fn note_first(&mut self, key: &str, now: Instant) {
        if self.get(key, now).is_none() {
            self.insert(key, now, now);
        }
    }

    /// Takes `key`'s noting out, live or expired but not yet pruned.
    pub fn take(&mut self, key: &str) -> Option<Instant> {
        self.noted.remove(key)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.noted.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.noted.is_empty()
    }

    fn is_live(&self, at: Instant, now: Instant) -> bool {
        now.saturating_duration_since(at) < self.ttl
    }

    fn make_room(&mut self, now: Instant) {
        if self.noted.len() < self.prune_at {
            return;
        }
        let ttl = self.ttl;
        self.noted
            .retain(|_, at| now.saturating_duration_since(*at) < ttl);
        self.prune_at = (2 * self.noted.len()).max(self.min_prune_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_key_is_found_until_its_time_to_live_has_passed() {
        let start = Instant::now();
        let mut recent = Recent::new(30 * SECOND, 10);
        recent.insert("shop/a", start, start);
        assert_eq!(recent.get("shop/a", start + 29 * SECOND), Some(start));
        assert_eq!(recent.get("shop/a", start + 30 * SECOND), None);
        assert_eq!(recent.get("shop/b", start), None);
    }

    #[test]
    fn the_first_noting_counts_while_it_is_live_and_a_new_one_after_it_expired() {
        let start = Instant::now();
        let mut recent = Recent::new(60 * SECOND, 10);
        recent.note_first("shop/a", start);
        recent.note_first("shop/a", start + SECOND);
        assert_eq!(recent.get("shop/a", start + 2 * SECOND), Some(start));
        let later = start + 61 * SECOND;
        recent.note_first("shop/a", later);
        assert_eq!(recent.get("shop/a", later), Some(later));
    }

    #[test]
    fn expired_keys_are_dropped_once_the_map_reaches_its_prune_size() {
        let start = Instant::now();
        let mut recent = Recent::new(SECOND, 4);
        for key in ["a", "b", "c", "d"] {
            recent.insert(key, start, start);
        }
        assert_eq!(recent.len(), 4);
        let later = start + 2 * SECOND;
        recent.insert("e", later, later);
        assert_eq!(recent.len(), 1);
        assert_eq!(recent.get("e", later), Some(later));
    }

    #[test]
    fn a_map_of_live_keys_is_walked_again_only_after_it_doubled() {
        let start = Instant::now();
        let mut recent = Recent::new(60 * SECOND, 4);
        for i in 0..5 {
            recent.insert(&format!("k{i}"), start, start);
        }
        // The prune at the fifth insert found all four live: the next waits for eight.
        assert_eq!(recent.prune_at, 8);
        for i in 5..8 {
            recent.insert(&format!("k{i}"), start, start);
        }
        assert_eq!(recent.prune_at, 8);
        assert_eq!(recent.len(), 8);
        let later = start + 61 * SECOND;
        recent.insert("fresh", later, later);
        assert_eq!(recent.len(), 1);
        assert_eq!(recent.prune_at, 4);
    }

    #[test]
    fn taking_a_key_returns_its_noting_even_when_expired() {
        let start = Instant::now();
        let mut recent = Recent::new(SECOND, 10);
        recent.insert("a", start, start);
        assert_eq!(recent.take("a"), Some(start));
        assert_eq!(recent.take("a"), None);
        assert!(recent.is_empty());
    }
}
