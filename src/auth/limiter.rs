//! Brute-force protection: failure limits per port and per user, with exponential back-off.
//!
//! Sans-IO: every call takes `now`, nothing reads a clock or sleeps. The driver asks
//! [`Limiter::check`] before it verifies a password; an attempt during a back-off is refused
//! without looking at the password at all, so a guesser learns nothing from it. After the
//! verdict of the real check the driver reports [`Limiter::failed`] or [`Limiter::succeeded`].
//!
//! # Rules
//!
//! * Failures are counted per user name and per port. A count is forgotten once `window` has
//!   passed since its last failure (and its back-off, if any, is over).
//! * When a count reaches its limit (`user_failures`, `port_failures`), that user or port is
//!   blocked for `base_delay`; every further failure doubles the delay, up to `max_delay`.
//! * A success clears the user's count. The port's count stays: one valid account must not
//!   let a guesser on that line reset the port limit.
//! * Memory is bounded: at most `max_users` user names are tracked. When the table is full,
//!   expired entries are dropped first, then the least recently failed user that is not
//!   blocked; if every tracked user is blocked, the new name is not tracked (the port limit
//!   still applies to it). A flood of random user names therefore can neither grow memory
//!   nor lift an existing back-off.
//!
//! Passwords never reach this module; its log lines name only the port and the user.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Limits and delays of the [`Limiter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimiterConfig {
    /// Failures of one user name (on any port) before that user is blocked.
    pub user_failures: u32,
    /// Failures on one port (for any user) before that port is blocked.
    pub port_failures: u32,
    /// How long a count is remembered after its last failure.
    pub window: Duration,
    /// The first back-off once a limit is reached; doubled by each further failure.
    pub base_delay: Duration,
    /// The longest back-off (never more than a year, whatever is set here).
    pub max_delay: Duration,
    /// The most user names tracked at once (the memory bound).
    pub max_users: usize,
}

impl Default for LimiterConfig {
    /// 5 failures per user, 10 per port, within 10 minutes; back-off from 2 s up to 5 min;
    /// at most 4096 tracked user names.
    fn default() -> Self {
        Self {
            user_failures: 5,
            port_failures: 10,
            window: Duration::from_secs(10 * 60),
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(5 * 60),
            max_users: 4096,
        }
    }
}

/// The answer of [`Limiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on and check the credentials.
    Allow,
    /// Refuse this attempt without checking the credentials; the back-off ends after this long.
    Wait(Duration),
}

/// The failure record of one user or one port.
#[derive(Debug, Clone)]
struct Entry {
    /// Failures within the window.
    failures: u32,
    /// When the last failure happened.
    last_failure: Instant,
    /// The end of the current back-off, if one was imposed.
    blocked_until: Option<Instant>,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Self {
            failures: 0,
            last_failure: now,
            blocked_until: None,
        }
    }

    /// How much of the back-off remains at `now`, if any.
    fn remaining(&self, now: Instant) -> Option<Duration> {
        self.blocked_until
            .and_then(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Whether this entry no longer matters at `now`: its window has passed and it blocks nothing.
    fn expired(&self, now: Instant, window: Duration) -> bool {
        self.remaining(now).is_none() && now.saturating_duration_since(self.last_failure) >= window
    }

    /// Counts a failure; returns the back-off imposed by it, if the limit is reached.
    fn fail(&mut self, now: Instant, cfg: &LimiterConfig, limit: u32) -> Option<Duration> {
        if self.expired(now, cfg.window) {
            *self = Self::new(now);
        }
        self.failures = self.failures.saturating_add(1);
        self.last_failure = now;
        let limit = limit.max(1);
        if self.failures < limit {
            return None;
        }
        let delay = backoff(cfg, self.failures - limit).min(LONGEST_BACKOFF);
        self.blocked_until = Some(now.checked_add(delay).unwrap_or(now));
        Some(delay)
    }
}

/// No back-off is longer than this, whatever the configuration says, so that `now + delay`
/// always exists.
const LONGEST_BACKOFF: Duration = Duration::from_secs(365 * 24 * 3600);

/// `base_delay * 2^excess`, capped at `max_delay`, without overflow.
fn backoff(cfg: &LimiterConfig, excess: u32) -> Duration {
    let factor = 1u32.checked_shl(excess.min(31)).unwrap_or(u32::MAX);
    cfg.base_delay
        .checked_mul(factor)
        .unwrap_or(Duration::MAX)
        .min(cfg.max_delay)
}

/// Counts authentication failures per port and per user and imposes back-offs.
#[derive(Debug, Clone)]
pub struct Limiter {
    cfg: LimiterConfig,
    users: HashMap<String, Entry>,
    ports: HashMap<String, Entry>,
}

impl Limiter {
    /// A limiter with no failures recorded.
    pub fn new(cfg: LimiterConfig) -> Self {
        Self {
            cfg,
            users: HashMap::new(),
            ports: HashMap::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &LimiterConfig {
        &self.cfg
    }

    /// May `user` try to authenticate on `port` at `now`? During a back-off of the user or
    /// of the port the answer is [`Verdict::Wait`] with the longer remaining back-off, and
    /// the attempt must be refused without checking the credentials.
    pub fn check(&mut self, now: Instant, port: &str, user: &str) -> Verdict {
        let wait = [self.users.get(user), self.ports.get(port)]
            .into_iter()
            .flatten()
            .filter_map(|e| e.remaining(now))
            .max();
        match wait {
            Some(d) => {
                tracing::info!(
                    port,
                    user,
                    wait_ms = d.as_millis() as u64,
                    "authentication attempt refused: back-off in force"
                );
                Verdict::Wait(d)
            }
            None => Verdict::Allow,
        }
    }

    /// Records a failed authentication of `user` on `port` at `now`.
    pub fn failed(&mut self, now: Instant, port: &str, user: &str) {
        let cfg = &self.cfg;
        let port_entry = self
            .ports
            .entry(port.to_owned())
            .or_insert_with(|| Entry::new(now));
        if let Some(delay) = port_entry.fail(now, cfg, cfg.port_failures) {
            tracing::warn!(
                port,
                failures = port_entry.failures,
                delay_ms = delay.as_millis() as u64,
                "too many authentication failures on this port: backing off"
            );
        }

        if !self.users.contains_key(user) && !self.make_room(now) {
            tracing::warn!(
                port,
                user,
                "authentication failure not tracked per user: every tracked user is blocked"
            );
            return;
        }
        let cfg = &self.cfg;
        let entry = self
            .users
            .entry(user.to_owned())
            .or_insert_with(|| Entry::new(now));
        match entry.fail(now, cfg, cfg.user_failures) {
            Some(delay) => tracing::warn!(
                port,
                user,
                failures = entry.failures,
                delay_ms = delay.as_millis() as u64,
                "too many authentication failures for this user: backing off"
            ),
            None => tracing::debug!(
                port,
                user,
                failures = entry.failures,
                "authentication failure"
            ),
        }
    }

    /// Records a successful authentication of `user` on `port` at `now`: the user's count is
    /// cleared (the port's is kept).
    pub fn succeeded(&mut self, now: Instant, port: &str, user: &str) {
        if self.users.remove(user).is_some() {
            tracing::debug!(
                port,
                user,
                "authentication succeeded: failure count cleared"
            );
        }
        self.expire(now);
    }

    /// Forgets every entry whose window has passed. Called by the other methods as needed;
    /// a driver may also call it from a timer.
    pub fn expire(&mut self, now: Instant) {
        let window = self.cfg.window;
        self.users.retain(|_, e| !e.expired(now, window));
        self.ports.retain(|_, e| !e.expired(now, window));
    }

    /// How many user names are tracked.
    pub fn tracked_users(&self) -> usize {
        self.users.len()
    }

    /// How many ports are tracked.
    pub fn tracked_ports(&self) -> usize {
        self.ports.len()
    }

    /// Makes room for one more user entry; false when every tracked user is blocked.
    fn make_room(&mut self, now: Instant) -> bool {
        let cap = self.cfg.max_users;
        if cap == 0 {
            return false;
        }
        if self.users.len() < cap {
            return true;
        }
        self.expire(now);
        if self.users.len() < cap {
            return true;
        }
        let victim = self
            .users
            .iter()
            .filter(|(_, e)| e.remaining(now).is_none())
            .min_by_key(|(_, e)| e.last_failure)
            .map(|(name, _)| name.clone());
        match victim {
            Some(name) => {
                self.users.remove(&name);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LimiterConfig {
        LimiterConfig {
            user_failures: 3,
            port_failures: 5,
            window: Duration::from_secs(600),
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
            max_users: 8,
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn default_config_matches_the_issue() {
        let c = LimiterConfig::default();
        assert_eq!(c.user_failures, 5);
        assert_eq!(c.port_failures, 10);
        assert_eq!(c.window, secs(600));
        assert_eq!(c.base_delay, secs(2));
        assert_eq!(c.max_delay, secs(300));
        assert!(c.max_users > 0);
    }

    #[test]
    fn fresh_limiter_allows() {
        let mut l = Limiter::new(cfg());
        assert_eq!(l.check(Instant::now(), "ttyS0", "alice"), Verdict::Allow);
    }

    #[test]
    fn user_is_blocked_after_its_limit_with_base_delay() {
        let t0 = Instant::now();
        let mut l = Limiter::new(cfg());
        l.failed(t0, "ttyS0", "alice");
        l.failed(t0, "ttyS1", "alice");
        assert_eq!(l.check(t0, "ttyS2", "alice"), Verdict::Allow);
        l.failed(t0, "ttyS2", "alice");
        // Blocked on every port, for base_delay.
        assert_eq!(l.check(t0, "ttyS3", "alice"), Verdict::Wait(secs(2)));
        assert_eq!(
            l.check(t0 + secs(1), "ttyS0", "alice"),
            Verdict::Wait(secs(1))
        );
        // Other users on other ports are not affected.
        assert_eq!(l.check(t0, "ttyS3", "bob"), Verdict::Allow);
        // The back-off ends.
        assert_eq!(l.check(t0 + secs(2), "ttyS3", "alice"), Verdict::Allow);
    }

    #[test]
    fn back_off_doubles_and_is_capped() {
        let t0 = Instant::now();
        let mut l = Limiter::new(cfg());
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..10 {
            l.failed(now, "ttyS0", "alice");
            // Use a fresh port each time so only the user limit matters.
            match l.check(now, "other", "alice") {
                Verdict::Wait(d) => {
                    waits.push(d);
                    now += d;
                }
                Verdict::Allow => waits.push(Duration::ZERO),
            }
        }
        assert_eq!(
            waits,
            vec![
                secs(0),
                secs(0),
                secs(2),
                secs(4),
                secs(8),
                secs(16),
                secs(30),
                secs(30),
                secs(30),
                secs(30)
            ]
        );
    }

    #[test]
    fn port_is_blocked_after_its_limit_for_any_user() {
        let t0 = Instant::now();
        let mut l = Limiter::new(cfg());
        for i in 0..4 {
            l.failed(t0, "ttyS0", &format!("user{i}"));
            assert_eq!(l.check(t0, "ttyS0", "fresh"), Verdict::Allow);
        }
        l.failed(t0, "ttyS0", "user4");
        assert_eq!(l.check(t0, "ttyS0", "fresh"), Verdict::Wait(secs(2)));
        // Another port is free.
        assert_eq!(l.check(t0, "ttyS1", "fresh"), Verdict::Allow);
    }

    #[test]
    fn the_longer_of_user_and_port_back_off_wins() {
        let t0 = Instant::now();
        let mut l = Limiter::new(cfg());
        for _ in 0..5 {
            l.failed(t0, "ttyS0", "alice");
        }
        // alice: 5 failures, 2 over the limit -> 8 s; port: at its limit -> 2 s.
        assert_eq!(l.check(t0, "ttyS0", "alice"), Verdict::Wait(secs(8)));
        assert_eq!(l.check(t0, "ttyS0", "bob"), Verdict::Wait(secs(2)));
        assert_eq!(l.check(t0, "ttyS1", "alice"), Verdict::Wait(secs(8)));
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let t0 = Instant::now();
        let mut l = Limiter::new(cfg());
        l.failed(t0, "ttyS0", "alice");
        l.failed(t0, "ttyS0", "alice");
        // A third failure after the window starts a new count: no block.
        let later = t0 + secs(600);
        l.failed(later, "ttyS0", "alice");
        assert_eq!(l.check(later, "ttyS0", "alice"), Verdict::Allow);
        // Within the window the count goes on.
        l.failed(later + secs(1), "ttyS0", "alice");
        l.failed(later + secs(2), "ttyS0", "alice");
        assert_eq!(
            l.check(later + secs(2), "ttyS0", "alice"),
            Verdict::Wait(secs(2))
        );
    }

    #[test]
    fn success_clears_the_user_but_not_the_port() {
        let t0 = Instant::now();
        let mut l = Limiter::new(cfg());
        for _ in 0..2 {
            l.failed(t0, "ttyS0", "alice");
        }
        l.succeeded(t0, "ttyS0", "alice");
        assert_eq!(l.tracked_users(), 0);
        // Two more failures do not reach alice's limit of 3 ...
        l.failed(t0, "ttyS0", "alice");
        l.failed(t0, "ttyS0", "alice");
        assert_eq!(l.check(t0, "ttyS1", "alice"), Verdict::Allow);
        // ... but the port has now seen 4; one more blocks it.
        l.failed(t0, "ttyS0", "bob");
        assert_eq!(l.check(t0, "ttyS0", "carol"), Verdict::Wait(secs(2)));
    }

    #[test]
    fn success_lifts_a_user_back_off() {
        let t0 = Instant::now();
        let mut l = Limiter::new(cfg());
        for _ in 0..3 {
            l.failed(t0, "ttyS0", "alice");
        }
        assert!(matches!(l.check(t0, "ttyS1", "alice"), Verdict::Wait(_)));
        l.succeeded(t0, "ttyS1", "alice");
        assert_eq!(l.check(t0, "ttyS1", "alice"), Verdict::Allow);
    }

    #[test]
    fn expire_drops_old_entries() {
        let t0 = Instant::now();
        let mut l = Limiter::new(cfg());
        l.failed(t0, "ttyS0", "alice");
        l.failed(t0, "ttyS1", "bob");
        assert_eq!((l.tracked_users(), l.tracked_ports()), (2, 2));
        l.expire(t0 + secs(599));
        assert_eq!((l.tracked_users(), l.tracked_ports()), (2, 2));
        l.expire(t0 + secs(600));
        assert_eq!((l.tracked_users(), l.tracked_ports()), (0, 0));
    }

    #[test]
    fn a_back_off_longer_than_the_window_outlives_it() {
        let t0 = Instant::now();
        let mut l = Limiter::new(LimiterConfig {
            window: secs(10),
            base_delay: secs(60),
            max_delay: secs(60),
            ..cfg()
        });
        for _ in 0..3 {
            l.failed(t0, "ttyS0", "alice");
        }
        l.expire(t0 + secs(30));
        assert_eq!(
            l.check(t0 + secs(30), "ttyS1", "alice"),
            Verdict::Wait(secs(30))
        );
        l.expire(t0 + secs(60));
        assert_eq!(l.tracked_users(), 0);
    }

    #[test]
    fn a_flood_of_user_names_stays_bounded() {
        let t0 = Instant::now();
        let mut l = Limiter::new(cfg());
        for i in 0..10_000u32 {
            l.failed(
                t0 + Duration::from_millis(u64::from(i)),
                &format!("p{}", i % 4),
                &format!("u{i}"),
            );
            assert!(l.tracked_users() <= 8);
        }
        assert_eq!(l.tracked_users(), 8);
        // The most recent names are the ones kept.
        assert!(l.users.contains_key("u9999"));
        assert!(!l.users.contains_key("u0"));
    }

    #[test]
    fn a_flood_does_not_lift_an_existing_user_back_off() {
        let t0 = Instant::now();
        let mut l = Limiter::new(cfg());
        for _ in 0..3 {
            l.failed(t0, "ttyS0", "alice");
        }
        for i in 0..100u32 {
            l.failed(t0, "ttyS1", &format!("junk{i}"));
        }
        assert!(l.tracked_users() <= 8);
        assert_eq!(l.check(t0, "ttyS2", "alice"), Verdict::Wait(secs(2)));
    }

    #[test]
    fn when_every_tracked_user_is_blocked_new_names_are_not_tracked() {
        let t0 = Instant::now();
        let mut l = Limiter::new(LimiterConfig {
            max_users: 2,
            port_failures: 1000,
            ..cfg()
        });
        for name in ["a", "b"] {
            for _ in 0..3 {
                l.failed(t0, "ttyS0", name);
            }
        }
        l.failed(t0, "ttyS0", "c");
        assert_eq!(l.tracked_users(), 2);
        assert!(matches!(l.check(t0, "ttyS1", "a"), Verdict::Wait(_)));
        assert!(matches!(l.check(t0, "ttyS1", "b"), Verdict::Wait(_)));
        // Expired entries make room again.
        let later = t0 + secs(600);
        l.failed(later, "ttyS0", "c");
        assert_eq!(l.tracked_users(), 1);
    }

    #[test]
    fn extreme_settings_do_not_overflow() {
        let t0 = Instant::now();
        let mut l = Limiter::new(LimiterConfig {
            user_failures: 0,
            port_failures: 0,
            window: Duration::MAX,
            base_delay: Duration::MAX,
            max_delay: Duration::MAX,
            max_users: 0,
        });
        for _ in 0..40 {
            l.failed(t0, "ttyS0", "alice");
        }
        assert_eq!(l.tracked_users(), 0);
        // The port is blocked, for the longest back-off there is.
        assert_eq!(
            l.check(t0, "ttyS0", "alice"),
            Verdict::Wait(LONGEST_BACKOFF)
        );
        l.expire(t0);
        assert_eq!(l.tracked_ports(), 1);
    }
}
