//! How long a starting run's first status write waits: long enough that most runs of the
//! moment are over by then and written once, when they finish. Pure.
//!
//! Why it adapts: each status write of a 20-task Pipeline costs the API server as much CPU as
//! ten Job creates, and the load that makes the server slow also makes runs slow. With a fixed
//! wait of three seconds, runs that took five under load were written twice each (start and
//! finish) and the second write took from the server's capacity for Jobs. The wait follows
//! how long the runs that finished lately took, so short runs stay written once as they slow
//! down; when most runs outlast any wait worth making, it falls back to the least, since
//! waiting longer then only hides the start.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Runs finished longer ago than this say nothing about the load now.
const WINDOW: Duration = Duration::from_secs(60);
/// The most finished runs remembered (the newest).
const REMEMBERED: usize = 128;
/// Fewer recent runs than this are no estimate: the least wait applies.
const MIN_SAMPLES: usize = 8;
/// The share of recent runs the wait is to outlast, in percent.
const COVERED_PERCENT: usize = 80;

/// Durations of the runs finished lately.
#[derive(Debug, Default)]
pub struct SettleEstimate {
    finished: VecDeque<(Instant, Duration)>,
}

impl SettleEstimate {
    pub fn new() -> Self {
        SettleEstimate::default()
    }

    /// A run that took `took` finished at `now`.
    pub fn record(&mut self, took: Duration, now: Instant) {
        if self.finished.len() == REMEMBERED {
            self.finished.pop_front();
        }
        self.finished.push_back((now, took));
    }

    /// How long a run starting at `now` waits for its first write: `least`, or long enough to
    /// outlast `COVERED_PERCENT` of the runs finished within `WINDOW` (with a quarter more
    /// for margin) up to `most`. When even that share took longer than `most`, `least`.
    pub fn wait(&mut self, now: Instant, least: Duration, most: Duration) -> Duration {
        while let Some((at, _)) = self.finished.front() {
            if now.saturating_duration_since(*at) <= WINDOW {
                break;
            }
            self.finished.pop_front();
        }
        if self.finished.len() < MIN_SAMPLES {
            return least;
        }
        let mut took: Vec<Duration> = self.finished.iter().map(|(_, took)| *took).collect();
        took.sort_unstable();
        let covering = took[(took.len() - 1) * COVERED_PERCENT / 100];
        if covering > most {
            return least;
        }
        (covering + covering / 4).clamp(least, most)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEAST: Duration = Duration::from_secs(3);
    const MOST: Duration = Duration::from_secs(10);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn estimate_of(durations: &[u64], at: Instant) -> SettleEstimate {
        let mut estimate = SettleEstimate::new();
        for d in durations {
            estimate.record(secs(*d), at);
        }
        estimate
    }

    #[test]
    fn without_enough_recent_runs_the_least_wait_applies() {
        let now = Instant::now();
        let mut estimate = estimate_of(&[6, 6, 6, 6, 6, 6, 6], now);
        assert_eq!(estimate.wait(now, LEAST, MOST), LEAST);
    }

    #[test]
    fn quick_runs_keep_the_least_wait() {
        let now = Instant::now();
        let mut estimate = estimate_of(&[1, 1, 1, 2, 2, 2, 2, 2, 2, 2], now);
        assert_eq!(estimate.wait(now, LEAST, MOST), LEAST);
    }

    #[test]
    fn runs_slowed_by_load_lengthen_the_wait_to_outlast_most_of_them_with_a_margin() {
        let now = Instant::now();
        // 80 % of these took 6 s or less: the wait is 6 s and a quarter.
        let mut estimate = estimate_of(&[4, 5, 5, 5, 5, 6, 6, 6, 7, 7], now);
        assert_eq!(
            estimate.wait(now, LEAST, MOST),
            Duration::from_millis(7_500)
        );
    }

    #[test]
    fn the_wait_is_capped_at_the_most_when_the_margin_would_pass_it() {
        let now = Instant::now();
        let mut estimate = estimate_of(&[9; 10], now);
        assert_eq!(estimate.wait(now, LEAST, MOST), MOST);
    }

    #[test]
    fn runs_longer_than_any_wait_worth_making_fall_back_to_the_least() {
        let now = Instant::now();
        let mut estimate = estimate_of(&[30, 40, 50, 60, 70, 80, 90, 100, 110, 120], now);
        assert_eq!(estimate.wait(now, LEAST, MOST), LEAST);
    }

    #[test]
    fn runs_finished_more_than_a_minute_ago_are_forgotten() {
        let then = Instant::now();
        let mut estimate = estimate_of(&[6; 10], then);
        let later = then + WINDOW + secs(1);
        assert_eq!(estimate.wait(later, LEAST, MOST), LEAST);
        assert!(estimate.finished.is_empty(), "expired runs are dropped");
    }

    #[test]
    fn only_the_newest_runs_are_remembered() {
        let now = Instant::now();
        let mut estimate = estimate_of(&[60; REMEMBERED], now);
        for _ in 0..REMEMBERED {
            estimate.record(secs(6), now);
        }
        assert_eq!(estimate.finished.len(), REMEMBERED);
        assert_eq!(
            estimate.wait(now, LEAST, MOST),
            Duration::from_millis(7_500)
        );
    }
}
