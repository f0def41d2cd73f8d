//! From TOML text to a [`Config`]: parsing, deserialization of each table on its own (so that
//! a problem in one table does not hide those in another), and the semantic checks. Every
//! problem found is collected with its place in the file.

use super::raw::{self, Num, Str, StrList};
use super::{Config, ConfigError, Pool, Problem, Warning};
use core::net::Ipv4Addr;
use core::ops::{Range, RangeInclusive};
use core::time::Duration;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

mod ports;
mod radius;
mod sections;
mod sip;

type Span = Range<usize>;

/// The longest time any setting in seconds may hold (a year), so that deadlines never
/// overflow.
const MAX_SECONDS: u64 = 365 * 24 * 3600;

/// Reads and checks a whole file.
pub(super) fn validate(text: &str, source: &str) -> Result<Config, ConfigError> {
    let mut cx = Ctx {
        text,
        source,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        // The parser recovers and goes on, but what follows an error on the same line is
        // mostly its echo: one error per line.
        let mut lines = Vec::new();
        for e in errors {
            let line = e.span().map(|s| cx.line(&s));
            if !lines.contains(&line) {
                lines.push(line);
                cx.error(e.span(), format!("TOML syntax: {}", e.message()));
            }
        }
        return Err(cx.into_error());
    }

    let mut network = None;
    let mut ppp = None;
    let mut auth = None;
    let mut control = None;
    let mut accounting = None;
    let mut radius = None;
    let mut ports = None;
    let mut sip = None;
    for (key, value) in root.get_ref().iter() {
        let name: &str = key.get_ref();
        match name {
            "network" => network = Some(cx.section::<raw::Network>("[network]", value)),
            "ppp" => ppp = cx.section::<raw::Ppp>("[ppp]", value),
            "auth" => auth = cx.section::<raw::Auth>("[auth]", value),
            "control" => control = cx.section::<raw::Control>("[control]", value),
            "accounting" => accounting = cx.section::<raw::Accounting>("[accounting]", value),
            "radius" => {
                radius = Some((cx.section::<raw::Radius>("[radius]", value), key.span()));
            }
            "port" => ports = Some(cx.port_tables(value)),
            "sip" => sip = cx.sip_section(value),
            _ => cx.error(
                Some(key.span()),
                format!(
                    "unknown section [{name}]; the sections are [network], [ppp], [auth], \
                     [control], [accounting], [radius], [sip] and [[port]]"
                ),
            ),
        }
    }

    let network = match network {
        Some(Some(n)) => cx.network(n),
        Some(None) => None,
        None => {
            cx.error(
                None,
                "[network] is missing: local_ip and pool are required".into(),
            );
            None
        }
    };
    let ppp = cx.ppp(ppp.unwrap_or_default());
    let ports = match ports {
        Some(p) => cx.ports(p),
        None => {
            cx.error(
                None,
                "no [[port]]: nasd needs at least one line to answer".into(),
            );
            Vec::new()
        }
    };
    // Passwords are checked when PPP authenticates, or a port offers the text login.
    let checks_passwords =
        !ppp.auth.is_empty() || ports.iter().any(|p| p.login.unwrap_or(ppp.login));
    if !checks_passwords {
        cx.warn(
            None,
            "[ppp] auth is empty and no port has a text login: anyone who calls gets an address"
                .into(),
        );
    }
    let auth = cx.auth(auth.unwrap_or_default(), &ppp, checks_passwords);
    let control = cx.control(control.unwrap_or_default());
    let accounting = cx.accounting(accounting.unwrap_or_default());
    let radius = match radius {
        Some((Some(r), span)) => cx.radius(r, span, &auth),
        _ => None,
    };
    let sip = sip.map(|s| cx.sip(s, &ports));

    match network {
        Some(network) if cx.problems.is_empty() => Ok(Config {
            network,
            ppp,
            auth,
            control,
            accounting,
            radius,
            ports,
            sip,
            source: source.to_string(),
            warnings: cx.warnings,
        }),
        _ => Err(cx.into_error()),
    }
}

/// serde's message in the words of a configuration file.
fn plain_message(message: &str) -> String {
    match message.strip_prefix("unknown field ") {
        Some(rest) => format!(
            "unknown key {}",
            rest.replacen(", expected one of ", "; the keys are ", 1)
                .replacen(", expected ", "; the only key is ", 1)
                .replacen(", there are no fields", "; this table has no keys", 1)
        ),
        None => message
            .replace("expected u64", "expected a whole number of at least 0")
            .replace("expected a boolean", "expected true or false"),
    }
}

/// Whether `inner` lies within `outer`.
fn within(inner: &Span, outer: &Span) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// A name of letters, digits and `._-@+`, at most 64 long (port, group and PAM service names).
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+'))
}

struct Ctx<'a> {
    text: &'a str,
    source: &'a str,
    problems: Vec<(Option<Span>, String)>,
    warnings: Vec<Warning>,
}

impl Ctx<'_> {
    /// The 1-based line and column of a byte offset.
    fn place(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        (line, before[line_start..].chars().count() + 1)
    }

    fn line(&self, span: &Span) -> usize {
        self.place(span.start).0
    }

    /// `nasd.toml:3:5: ` (or `nasd.toml: ` without a span).
    fn prefix(&self, span: Option<&Span>) -> String {
        match span {
            Some(s) => {
                let (l, c) = self.place(s.start);
                format!("{}:{l}:{c}: ", self.source)
            }
            None => format!("{}: ", self.source),
        }
    }

    fn error(&mut self, span: Option<Span>, message: String) {
        self.problems.push((span, message));
    }

    fn warn(&mut self, span: Option<&Span>, message: String) {
        let w = format!("{}{message}", self.prefix(span));
        self.warnings.push(Warning::Fixed(w));
    }

    /// Warns, when asked for warnings, if `path` does not exist then.
    fn warn_missing(&mut self, span: Option<&Span>, what: &str, path: &Path, rest: &'static str) {
        let prefix = format!("{}{what}: ", self.prefix(span));
        self.warnings.push(Warning::MissingPath {
            prefix,
            path: path.to_path_buf(),
            rest,
        });
    }

    fn into_error(self) -> ConfigError {
        let mut problems: Vec<Problem> = self
            .problems
            .iter()
            .map(|(span, message)| {
                let (line, column) = match span {
                    Some(s) => {
                        let (l, c) = self.place(s.start);
                        (Some(l), Some(c))
                    }
                    None => (None, None),
                };
                Problem {
                    source: self.source.to_string(),
                    line,
                    column,
                    message: message.clone(),
                }
            })
            .collect();
        problems.sort_by_key(|p| (p.line.is_none(), p.line, p.column));
        ConfigError { problems }
    }

    /// Deserializes one table. A key whose value is wrong (or unknown) is reported and left
    /// out, and the rest is tried again, so that every bad key of the table is reported;
    /// `None` when the table cannot be read at all (a required key missing, not a table).
    fn section<T: DeserializeOwned>(
        &mut self,
        what: &str,
        value: &Spanned<DeValue<'_>>,
    ) -> Option<T> {
        let span = value.span();
        let DeValue::Table(table) = value.get_ref() else {
            self.error(
                Some(span),
                format!("{what} must be a table, not {}", value.get_ref().type_str()),
            );
            return None;
        };
        let mut table = table.clone();
        let mut dropped: Vec<String> = Vec::new();
        loop {
            let attempt = Spanned::new(span.clone(), DeValue::Table(table.clone()));
            let e = match T::deserialize(ValueDeserializer::from(attempt)) {
                Ok(t) => return Some(t),
                Err(e) => e,
            };
            let at = e.span();
            let key = at.as_ref().and_then(|at| {
                table
                    .iter()
                    .find(|(k, v)| within(at, &k.span()) || within(at, &v.span()))
                    .map(|(k, _)| (k.get_ref().to_string(), k.span()))
            });
            match key {
                Some((name, key_span)) => {
                    let message = plain_message(e.message());
                    if message.starts_with("unknown key") {
                        self.error(Some(key_span), format!("{what} {message}"));
                    } else {
                        self.error(at, format!("{what} {name}: {message}"));
                    }
                    table.remove(name.as_str());
                    dropped.push(name);
                }
                None => {
                    let missing = e
                        .message()
                        .strip_prefix("missing field `")
                        .and_then(|m| m.strip_suffix('`'));
                    // A required key already reported as wrong is not missing as well.
                    if !missing.is_some_and(|m| dropped.iter().any(|d| d == m)) {
                        self.error(at.or(Some(span)), format!("{what}: {}", e.message()));
                    }
                    return None;
                }
            }
        }
    }

    /// The `[[port]]` tables that could be read, with their 1-based index and their place.
    fn port_tables(&mut self, value: &Spanned<DeValue<'_>>) -> Vec<(usize, raw::Port, Span)> {
        match value.get_ref() {
            DeValue::Array(items) if items.is_empty() => {
                self.error(
                    Some(value.span()),
                    "no [[port]]: nasd needs at least one line to answer".into(),
                );
                Vec::new()
            }
            DeValue::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    self.section::<raw::Port>(&format!("[[port]] #{}", i + 1), item)
                        .map(|p| (i + 1, p, item.span()))
                })
                .collect(),
            DeValue::Table(_) => {
                self.error(
                    Some(value.span()),
                    "write [[port]] with double brackets: one such table for each line".into(),
                );
                Vec::new()
            }
            other => {
                self.error(
                    Some(value.span()),
                    format!("port must be [[port]] tables, not {}", other.type_str()),
                );
                Vec::new()
            }
        }
    }

    /// A number within `range` (`default` when absent or wrong).
    fn num(
        &mut self,
        what: &str,
        v: &Option<Num>,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> u64 {
        let Some(v) = v else { return default };
        let n = *v.get_ref();
        if n < *range.start() {
            self.error(
                Some(v.span()),
                format!("{what}: {n} is too small; the least is {}", range.start()),
            );
            default
        } else if n > *range.end() {
            self.error(
                Some(v.span()),
                format!("{what}: {n} is too large; the most is {}", range.end()),
            );
            default
        } else {
            n
        }
    }

    /// A number that fits a `u32`.
    fn num32(
        &mut self,
        what: &str,
        v: &Option<Num>,
        default: u32,
        range: RangeInclusive<u32>,
    ) -> u32 {
        let r = u64::from(*range.start())..=u64::from(*range.end());
        u32::try_from(self.num(what, v, u64::from(default), r)).unwrap_or(default)
    }

    /// Seconds where 0 means off.
    fn secs_or_off(&mut self, what: &str, v: &Option<Num>, default: u64) -> Option<Duration> {
        let n = self.num(what, v, default, 0..=MAX_SECONDS);
        (n > 0).then(|| Duration::from_secs(n))
    }

    fn addr(&mut self, what: &str, s: &Str) -> Option<Ipv4Addr> {
        match s.get_ref().trim().parse::<Ipv4Addr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.error(
                    Some(s.span()),
                    format!("{what}: \"{}\" is not an IPv4 address", s.get_ref()),
                );
                None
            }
        }
    }

    /// Up to two server addresses, none in the pool.
    fn servers(&mut self, what: &str, list: &Option<StrList>, pool: Option<Pool>) -> Vec<Ipv4Addr> {
        let Some(list) = list else {
            return Vec::new();
        };
        if list.get_ref().len() > 2 {
            self.error(
                Some(list.span()),
                format!(
                    "{what}: {} servers listed; PPP offers at most two",
                    list.get_ref().len()
                ),
            );
        }
        let mut out = Vec::new();
        for s in list.get_ref() {
            let Some(a) = self.addr(what, s) else {
                continue;
            };
            if a.is_unspecified() || a.is_broadcast() || a.is_multicast() {
                self.error(Some(s.span()), format!("{what}: {a} cannot be a server"));
            } else if let Some(p) = pool.filter(|p| p.contains(a)) {
                self.error(
                    Some(s.span()),
                    format!("{what}: {a} is inside the pool {p}; a caller could be given it"),
                );
            }
            out.push(a);
        }
        out
    }

    /// A path that must not be empty.
    fn path(&mut self, what: &str, s: &Option<Str>, default: &str) -> PathBuf {
        match s {
            Some(s) if s.get_ref().is_empty() => {
                self.error(Some(s.span()), format!("{what}: the path is empty"));
                PathBuf::from(default)
            }
            Some(s) => PathBuf::from(s.get_ref()),
            None => PathBuf::from(default),
        }
    }
}
