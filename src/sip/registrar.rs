//! The registrar's location service (RFC 3261 §10.3), sans-IO.
//!
//! A [`Registrar`] keeps, per address-of-record (an account name), the contact bindings that
//! REGISTER requests created. It never reads a clock: every operation takes `now`. It is bounded:
//! at most [`RegistrarConfig::max_bindings_per_aor`] bindings per AOR (a new contact replaces
//! the least recently refreshed one) and at most [`RegistrarConfig::max_aors`] AORs.
//!
//! Qualify (the `qualify=` keepalive): [`Registrar::due_for_qualify`] says which bindings to
//! probe with OPTIONS, [`Registrar::qualified`] records the answer (or its absence).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use thiserror::Error;

/// The longest contact URI, Call-ID or AOR accepted, in bytes.
pub const MAX_FIELD_LEN: usize = 1024;

/// Limits and defaults of the registrar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Shortest accepted non-zero expiry, seconds (shorter ones get 423 with Min-Expires).
    pub min_expires: u32,
    /// Longest expiry granted, seconds (longer requests are shortened).
    pub max_expires: u32,
    /// Expiry when neither the contact nor the request says, seconds.
    pub default_expires: u32,
    /// Bindings kept per AOR.
    pub max_bindings_per_aor: usize,
    /// AORs kept at once.
    pub max_aors: usize,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig {
            min_expires: 60,
            max_expires: 7200,
            default_expires: 3600,
            max_bindings_per_aor: 10,
            max_aors: 10_000,
        }
    }
}

/// One contact of a REGISTER request.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactReq {
    /// The contact URI.
    pub uri: String,
    /// The contact's `expires` parameter, seconds.
    pub expires: Option<u32>,
    /// The contact's `q` parameter.
    pub q: Option<f32>,
}

/// The Contact header field(s) of a REGISTER request.
#[derive(Debug, Clone, PartialEq)]
pub enum Contact {
    /// A list of contacts; empty means "tell me my bindings".
    List(Vec<ContactReq>),
    /// `Contact: *` (only valid with `Expires: 0`): remove every binding.
    Wildcard,
}

/// A REGISTER request, as far as the location service cares.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterRequest {
    /// The address-of-record (the account name).
    pub aor: String,
    /// The request's Call-ID.
    pub call_id: String,
    /// The request's CSeq number.
    pub cseq: u32,
    /// The Contact header field(s).
    pub contacts: Contact,
    /// The request's Expires header, seconds.
    pub expires: Option<u32>,
    /// Where the request came from (received/rport): where to send requests for this binding.
    pub source: SocketAddr,
}

/// One binding of an AOR to a contact.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The contact URI.
    pub contact: String,
    /// Where the REGISTER came from (the NAT-facing address to use).
    pub source: SocketAddr,
    /// When the binding lapses.
    pub expires_at: Instant,
    /// Call-ID of the REGISTER that last refreshed it.
    pub call_id: String,
    /// CSeq of the REGISTER that last refreshed it.
    pub cseq: u32,
    /// Preference, 0.0 to 1.0.
    pub q: Option<f32>,
    /// When it was created or last refreshed.
    pub updated_at: Instant,
    /// Outcome of the last qualify probe (`None` before any).
    pub reachable: Option<bool>,
    /// Round-trip time of the last answered probe.
    pub latency: Option<Duration>,
    /// When the last qualify probe was handed out.
    pub last_probe: Option<Instant>,
}

impl Binding {
    /// Seconds left until it lapses (for the 200 OK's `expires` parameter).
    pub fn remaining(&self, now: Instant) -> u32 {
        let secs = self.expires_at.saturating_duration_since(now).as_secs();
        u32::try_from(secs).unwrap_or(u32::MAX)
    }
}

/// Why a REGISTER was refused; [`RegError::status`] gives the SIP response code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegError {
    /// A non-zero expiry below the minimum: 423, with `Min-Expires: min`.
    #[error("interval too brief, minimum {min} s")]
    IntervalTooBrief {
        /// The registrar's minimum, for the Min-Expires header.
        min: u32,
    },
    /// Same Call-ID with a CSeq below the stored one: 500.
    #[error("out-of-order REGISTER (Call-ID {call_id}, CSeq {cseq} < {stored})")]
    OutOfOrder {
        /// The request's Call-ID.
        call_id: String,
        /// The request's CSeq.
        cseq: u32,
        /// The CSeq of the binding.
        stored: u32,
    },
    /// `Contact: *` without `Expires: 0`: 400.
    #[error("wildcard contact requires Expires: 0")]
    BadWildcard,
    /// An empty or oversized AOR, Call-ID or contact URI: 400.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// The registrar holds as many AORs as allowed: 503.
    #[error("registrar full")]
    Full,
}

impl RegError {
    /// The SIP status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            RegError::IntervalTooBrief { .. } => 423,
            RegError::OutOfOrder { .. } => 500,
            RegError::BadWildcard | RegError::Invalid(_) => 400,
            RegError::Full => 503,
        }
    }
}

/// The location service.
#[derive(Debug, Clone, Default)]
pub struct Registrar {
    config: RegistrarConfig,
    aors: BTreeMap<String, Vec<Binding>>,
    /// AORs purged by [`Registrar::register`] to make room, reported by the next `expire`.
    lapsed: Vec<String>,
}

/// `now + secs`, never overflowing.
fn deadline(now: Instant, secs: u32) -> Instant {
    now.checked_add(Duration::from_secs(u64::from(secs)))
        .unwrap_or(now)
}

fn valid(field: &'static str, s: &str) -> Result<(), RegError> {
    if s.is_empty() || s.len() > MAX_FIELD_LEN {
        return Err(RegError::Invalid(field));
    }
    Ok(())
}

fn sane_q(q: Option<f32>) -> Option<f32> {
    q.filter(|q| !q.is_nan()).map(|q| q.clamp(0.0, 1.0))
}

/// RFC 3261 §10.3 step 7, except that an equal CSeq is taken as a retransmission of the
/// same request and applied again (the bridge answers REGISTER statelessly, as Kamailio's
/// `sl` does, so a retransmission reaches the registrar).
fn check_order(b: &Binding, call_id: &str, cseq: u32) -> Result<(), RegError> {
    if b.call_id == call_id && cseq < b.cseq {
        return Err(RegError::OutOfOrder {
            call_id: call_id.to_string(),
            cseq,
            stored: b.cseq,
        });
    }
    Ok(())
}

impl Registrar {
    /// An empty registrar with these limits.
    pub fn new(config: RegistrarConfig) -> Registrar {
        Registrar {
            config,
            aors: BTreeMap::new(),
            lapsed: Vec::new(),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &RegistrarConfig {
        &self.config
    }

    /// Processes a REGISTER (RFC 3261 §10.3 steps 6–8). All updates of the request are applied
    /// or none is. Returns the AOR's live bindings afterwards (for the 200 OK's Contacts),
    /// highest preference first; empty means the AOR is now unregistered. Contacts are
    /// compared as exact strings.
    pub fn register(
        &mut self,
        now: Instant,
        req: RegisterRequest,
    ) -> Result<Vec<Binding>, RegError> {
        valid("address-of-record", &req.aor)?;
        valid("Call-ID", &req.call_id)?;
        let cfg = &self.config;
        let mut bindings: Vec<Binding> = self
            .aors
            .get(&req.aor)
            .map(|v| v.iter().filter(|b| b.expires_at > now).cloned().collect())
            .unwrap_or_default();
        match &req.contacts {
            Contact::Wildcard => {
                if req.expires != Some(0) {
                    return Err(RegError::BadWildcard);
                }
                for b in &bindings {
                    check_order(b, &req.call_id, req.cseq)?;
                }
                bindings.clear();
            }
            Contact::List(contacts) => {
                // Validate everything before touching anything.
                let mut granted = Vec::with_capacity(contacts.len());
                for c in contacts {
                    valid("contact URI", &c.uri)?;
                    let asked = c.expires.or(req.expires).unwrap_or(cfg.default_expires);
                    if asked != 0 && asked < cfg.min_expires {
                        return Err(RegError::IntervalTooBrief {
                            min: cfg.min_expires,
                        });
                    }
                    granted.push(asked.min(cfg.max_expires.max(cfg.min_expires)));
                    if let Some(b) = bindings.iter().find(|b| b.contact == c.uri) {
                        check_order(b, &req.call_id, req.cseq)?;
                    }
                }
                for (c, secs) in contacts.iter().zip(granted) {
                    let existing = bindings.iter().position(|b| b.contact == c.uri);
                    if let Some(i) = existing {
                        if secs == 0 {
                            bindings.remove(i);
                            continue;
                        }
                        let b = &mut bindings[i];
                        b.source = req.source;
                        b.expires_at = deadline(now, secs);
                        b.call_id.clone_from(&req.call_id);
                        b.cseq = req.cseq;
                        b.q = sane_q(c.q);
                        b.updated_at = now;
                    } else if secs != 0 {
                        if bindings.len() >= cfg.max_bindings_per_aor.max(1) {
                            // Replace the least recently refreshed binding.
                            if let Some(oldest) =
                                (0..bindings.len()).min_by_key(|&i| bindings[i].updated_at)
                            {
                                bindings.remove(oldest);
                            }
                        }
                        bindings.push(Binding {
                            contact: c.uri.clone(),
                            source: req.source,
                            expires_at: deadline(now, secs),
                            call_id: req.call_id.clone(),
                            cseq: req.cseq,
                            q: sane_q(c.q),
                            updated_at: now,
                            reachable: None,
                            latency: None,
                            last_probe: None,
                        });
                    }
                }
            }
        }
        if bindings.is_empty() {
            self.aors.remove(&req.aor);
            return Ok(bindings);
        }
        if !self.aors.contains_key(&req.aor) && self.aors.len() >= self.config.max_aors {
            let purged = self.purge(now);
            self.lapsed.extend(purged);
            self.lapsed.truncate(self.config.max_aors);
            if self.aors.len() >= self.config.max_aors {
                return Err(RegError::Full);
            }
        }
        self.aors.insert(req.aor, bindings.clone());
        sort_by_preference(&mut bindings);
        Ok(bindings)
    }

    /// The live bindings of `aor`, highest q first (no q counts as 1.0), then the most
    /// recently refreshed first.
    pub fn lookup(&self, now: Instant, aor: &str) -> Vec<Binding> {
        let mut live: Vec<Binding> = self
            .aors
            .get(aor)
            .map(|v| v.iter().filter(|b| b.expires_at > now).cloned().collect())
            .unwrap_or_default();
        sort_by_preference(&mut live);
        live
    }

    /// Whether `aor` has a live binding.
    pub fn is_registered(&self, now: Instant, aor: &str) -> bool {
        self.aors
            .get(aor)
            .is_some_and(|v| v.iter().any(|b| b.expires_at > now))
    }

    /// Drops lapsed bindings; returns the AORs that lost their last one (now unregistered),
    /// including any that [`Registrar::register`] purged to make room since the last call.
    /// (An AOR whose last binding a REGISTER removes is not reported here: `register`
    /// returned no bindings for it.)
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut gone = std::mem::take(&mut self.lapsed);
        gone.extend(self.purge(now));
        gone
    }

    fn purge(&mut self, now: Instant) -> Vec<String> {
        let mut gone = Vec::new();
        self.aors.retain(|aor, v| {
            v.retain(|b| b.expires_at > now);
            if v.is_empty() {
                gone.push(aor.clone());
            }
            !v.is_empty()
        });
        gone
    }

    /// The earliest moment a binding lapses: when the driver should call [`Registrar::expire`].
    pub fn next_expiry(&self) -> Option<Instant> {
        self.aors.values().flatten().map(|b| b.expires_at).min()
    }

    /// Every AOR with its bindings (live or not yet expired away), in AOR order: for
    /// `nasctl sip registrations`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Binding])> {
        self.aors.iter().map(|(a, v)| (a.as_str(), v.as_slice()))
    }

    /// The number of AORs held.
    pub fn len(&self) -> usize {
        self.aors.len()
    }

    /// Whether no AOR is held.
    pub fn is_empty(&self) -> bool {
        self.aors.is_empty()
    }

    /// Removes every binding of `aor` (an administrative unregister); whether it had any.
    pub fn remove(&mut self, aor: &str) -> bool {
        self.aors.remove(aor).is_some()
    }

    /// The live bindings that need a qualify probe: never probed, or last probed at least
    /// `interval` ago. Each returned binding is marked as probed at `now`, so it is not
    /// handed out again before `interval` passes. Items: (AOR, contact URI, source address).
    pub fn due_for_qualify(
        &mut self,
        now: Instant,
        interval: Duration,
    ) -> Vec<(String, String, SocketAddr)> {
        let mut due = Vec::new();
        for (aor, bindings) in &mut self.aors {
            for b in bindings.iter_mut().filter(|b| b.expires_at > now) {
                let is_due = b
                    .last_probe
                    .is_none_or(|t| t.checked_add(interval).is_none_or(|next| next <= now));
                if is_due {
                    b.last_probe = Some(now);
                    due.push((aor.clone(), b.contact.clone(), b.source));
                }
            }
        }
        due
    }

    /// When the next binding becomes due for a qualify probe at `interval`.
    pub fn next_qualify(&self, now: Instant, interval: Duration) -> Option<Instant> {
        self.aors
            .values()
            .flatten()
            .filter(|b| b.expires_at > now)
            .map(|b| {
                b.last_probe
                    .and_then(|t| t.checked_add(interval))
                    .unwrap_or(now)
            })
            .min()
    }

    /// Records a qualify outcome for a binding: `Some(rtt)` if it answered, `None` if not.
    /// Returns whether the binding exists.
    pub fn qualified(
        &mut self,
        aor: &str,
        contact: &str,
        now: Instant,
        result: Option<Duration>,
    ) -> bool {
        let Some(b) = self
            .aors
            .get_mut(aor)
            .and_then(|v| v.iter_mut().find(|b| b.contact == contact))
        else {
            return false;
        };
        b.reachable = Some(result.is_some());
        b.latency = result;
        if b.last_probe.is_none() {
            b.last_probe = Some(now);
        }
        true
    }
}

fn sort_by_preference(bindings: &mut [Binding]) {
    bindings.sort_by(|a, b| {
        let (qa, qb) = (a.q.unwrap_or(1.0), b.q.unwrap_or(1.0));
        qb.total_cmp(&qa).then(b.updated_at.cmp(&a.updated_at))
    });
}

#[cfg(test)]
#[path = "registrar_tests.rs"]
mod tests;
