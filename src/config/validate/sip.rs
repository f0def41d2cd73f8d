//! The checks of `[sip]` and its `[[sip.account]]`, `[[sip.group]]` and `[[sip.rule]]`
//! tables. Secrets are never repeated in a message.

use super::super::raw::{self, Num, Str};
use super::super::{LineMode, PortConfig};
use super::{Ctx, MAX_SECONDS, Span};
use crate::sip::config::{Account, Cidr, HuntGroup, SipConfig};
use crate::sip::dialplan::{Dialplan, DialplanError, Rule, Target};
use crate::sip::message::{MAX_DATAGRAM, is_token_byte};
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use toml::Spanned;
use toml::de::DeValue;

/// The SIP port used when an address is given without one.
const SIP_PORT: u16 = 5060;
/// The longest account, group, extension or alias name.
const MAX_NAME: usize = 64;

/// `[sip]` as read: the section's own keys and its arrays of tables, each table with its
/// 1-based index and its place.
pub(in super::super) struct RawSip {
    section: raw::Sip,
    span: Span,
    accounts: Vec<(usize, raw::SipAccount, Span)>,
    groups: Vec<(usize, raw::SipGroup, Span)>,
    rules: Vec<(usize, raw::SipRule, Span)>,
    /// Names of account and group tables that could not be read (already reported): a
    /// reference to one is not reported again as unknown.
    unread_accounts: Vec<String>,
    unread_groups: Vec<String>,
}

/// A name of SIP token characters (RFC 3261: letters, digits and ``-.!%*_+`'~``), at most 64.
fn sip_token(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && name.bytes().all(is_token_byte)
}

/// The accounts and groups a reference may name.
struct Known<'a> {
    accounts: &'a [Account],
    groups: &'a [HuntGroup],
    unread_accounts: &'a [String],
    unread_groups: &'a [String],
}

impl Known<'_> {
    /// Whether `name` is an account (or an account table already reported as unreadable).
    fn account(&self, name: &str) -> bool {
        self.accounts.iter().any(|a| a.name == name)
            || self.unread_accounts.iter().any(|a| a == name)
    }

    /// Whether `name` is a group (or a group table already reported as unreadable).
    fn group(&self, name: &str) -> bool {
        self.groups.iter().any(|g| g.name == name) || self.unread_groups.iter().any(|g| g == name)
    }
}

const TOKEN_RULE: &str = "letters, digits and -.!%*_+`'~; at most 64";

impl Ctx<'_> {
    /// Reads `[sip]`: the section itself and each of its tables on its own.
    pub(in super::super) fn sip_section(&mut self, value: &Spanned<DeValue<'_>>) -> Option<RawSip> {
        let span = value.span();
        let DeValue::Table(table) = value.get_ref() else {
            self.error(
                Some(span),
                format!("[sip] must be a table, not {}", value.get_ref().type_str()),
            );
            return None;
        };
        let mut own = table.clone();
        let account = own.remove("account");
        let group = own.remove("group");
        let rule = own.remove("rule");
        let section =
            self.section::<raw::Sip>("[sip]", &Spanned::new(span.clone(), DeValue::Table(own)));
        let mut unread_accounts = Vec::new();
        let mut unread_groups = Vec::new();
        let accounts = account.map_or_else(Vec::new, |v| {
            self.sip_tables("[[sip.account]]", &v, &mut unread_accounts)
        });
        let groups = group.map_or_else(Vec::new, |v| {
            self.sip_tables("[[sip.group]]", &v, &mut unread_groups)
        });
        let rules = rule.map_or_else(Vec::new, |v| {
            self.sip_tables("[[sip.rule]]", &v, &mut Vec::new())
        });
        Some(RawSip {
            section: section?,
            span,
            accounts,
            groups,
            rules,
            unread_accounts,
            unread_groups,
        })
    }

    /// The tables of one `[[sip.x]]` array that could be read; the `name`s of those that could
    /// not go to `unread`.
    fn sip_tables<T: DeserializeOwned>(
        &mut self,
        what: &str,
        value: &Spanned<DeValue<'_>>,
        unread: &mut Vec<String>,
    ) -> Vec<(usize, T, Span)> {
        match value.get_ref() {
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match self.section::<T>(&format!("{what} #{}", i + 1), item) {
                        Some(t) => out.push((i + 1, t, item.span())),
                        None => {
                            if let DeValue::Table(t) = item.get_ref()
                                && let Some(name) = t.get("name")
                                && let DeValue::String(name) = name.get_ref()
                            {
                                unread.push(name.to_string());
                            }
                        }
                    }
                }
                out
            }
            DeValue::Table(_) => {
                self.error(
                    Some(value.span()),
                    format!("write {what} with double brackets: one such table for each entry"),
                );
                Vec::new()
            }
            other => {
                self.error(
                    Some(value.span()),
                    format!("{what} must be tables, not {}", other.type_str()),
                );
                Vec::new()
            }
        }
    }

    /// Checks `[sip]` against itself and the configured ports.
    pub(in super::super) fn sip(&mut self, r: RawSip, ports: &[PortConfig]) -> SipConfig {
        let d = SipConfig::default();
        let s = &r.section;
        let listen = s
            .listen
            .as_ref()
            .and_then(|v| self.sip_addr("[sip] listen", v))
            .unwrap_or(d.listen);
        let public = s
            .public
            .as_ref()
            .and_then(|v| self.sip_addr("[sip] public", v));
        if let (Some(p), Some(v)) = (public, &s.public)
            && p.ip().is_unspecified()
        {
            self.error(
                Some(v.span()),
                format!("[sip] public: {p} is a wildcard; give the address peers reach nasd at"),
            );
        }
        let realm = match &s.realm {
            Some(v) => {
                let t = v.get_ref();
                if t.is_empty()
                    || t.len() > 128
                    || !t
                        .bytes()
                        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
                {
                    self.error(
                        Some(v.span()),
                        "[sip] realm: must be 1 to 128 printable ASCII characters without \" or \\"
                            .into(),
                    );
                }
                t.clone()
            }
            None => d.realm.clone(),
        };
        let allow = self.sip_allow(s.allow.as_ref());
        let qualify_interval = self.secs_or_off("[sip] qualify", &s.qualify, 0);
        let qualify_max = self.num("[sip] qualify_max_ms", &s.qualify_max_ms, 200, 1..=60_000);
        let ring_timeout = self.num("[sip] ring_timeout", &s.ring_timeout, 20, 1..=3600);
        let expires = self.sip_expires(s, &d, r.span.clone());
        let nonce = self.num(
            "[sip] nonce_lifetime",
            &s.nonce_lifetime,
            d.nonce_lifetime.as_secs(),
            1..=86_400,
        );
        let max_message_size = self.num(
            "[sip] max_message_size",
            &s.max_message_size,
            d.max_message_size as u64,
            1024..=MAX_DATAGRAM as u64,
        );
        let max_calls = self.num("[sip] max_calls", &s.max_calls, 1000, 1..=100_000);

        let accounts = self.sip_accounts(r.accounts, ports);
        let known = Known {
            accounts: &accounts,
            groups: &[],
            unread_accounts: &r.unread_accounts,
            unread_groups: &r.unread_groups,
        };
        let groups = self.sip_groups(r.groups, &known);
        let known = Known {
            groups: &groups,
            ..known
        };
        let rules = self.sip_rules(r.rules, &known);
        SipConfig {
            listen,
            public,
            realm,
            accounts,
            groups,
            rules,
            allow,
            qualify_interval,
            qualify_max: Duration::from_millis(qualify_max),
            ring_timeout: Duration::from_secs(ring_timeout),
            min_expires: expires.0,
            max_expires: expires.1,
            default_expires: expires.2,
            nonce_lifetime: Duration::from_secs(nonce),
            max_message_size: usize::try_from(max_message_size).unwrap_or(d.max_message_size),
            max_calls: usize::try_from(max_calls).unwrap_or(d.max_calls),
        }
    }

    /// `"192.0.2.1:5060"`, or an address alone (port 5060).
    fn sip_addr(&mut self, what: &str, s: &Str) -> Option<SocketAddr> {
        let text = s.get_ref().trim();
        if let Ok(a) = text.parse::<SocketAddr>() {
            return Some(a);
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(SocketAddr::new(ip, SIP_PORT));
        }
        self.error(
            Some(s.span()),
            format!(
                "{what}: \"{text}\" is not an address (e.g. \"0.0.0.0:5060\", \"192.0.2.1\" or \
                 \"[2001:db8::1]:5060\")"
            ),
        );
        None
    }

    fn sip_allow(&mut self, list: Option<&raw::StrList>) -> Vec<Cidr> {
        let mut out = Vec::new();
        for s in list.map_or(&[][..], |l| l.get_ref().as_slice()) {
            match Cidr::parse(s.get_ref()) {
                Some(c) => out.push(c),
                None => self.error(
                    Some(s.span()),
                    format!(
                        "[sip] allow: \"{}\" is not an address or network (e.g. \"10.0.0.0/8\" \
                         or \"127.0.0.1\")",
                        s.get_ref()
                    ),
                ),
            }
        }
        out
    }

    /// `(min, max, default)`, with `min <= default <= max`.
    fn sip_expires(&mut self, s: &raw::Sip, d: &SipConfig, section: Span) -> (u32, u32, u32) {
        let max = u32::try_from(MAX_SECONDS).unwrap_or(u32::MAX);
        let min_e = self.num32("[sip] min_expires", &s.min_expires, d.min_expires, 1..=max);
        let max_e = self.num32("[sip] max_expires", &s.max_expires, d.max_expires, 1..=max);
        let def_e = self.num32(
            "[sip] default_expires",
            &s.default_expires,
            d.default_expires,
            1..=max,
        );
        if !(min_e <= def_e && def_e <= max_e) {
            let at = [&s.default_expires, &s.min_expires, &s.max_expires]
                .into_iter()
                .find_map(|n: &Option<Num>| n.as_ref().map(|n| n.span()))
                .unwrap_or(section);
            self.error(
                Some(at),
                format!(
                    "[sip] expires: need min_expires <= default_expires <= max_expires, but \
                     they are {min_e}, {def_e} and {max_e}"
                ),
            );
        }
        (min_e, max_e, def_e)
    }

    fn sip_accounts(
        &mut self,
        raws: Vec<(usize, raw::SipAccount, Span)>,
        ports: &[PortConfig],
    ) -> Vec<Account> {
        // Every name, extension and alias reaches one account: who owns it, and where.
        let mut owners: HashMap<String, (String, Span)> = HashMap::new();
        let mut port_users: HashMap<String, String> = HashMap::new();
        let mut out: Vec<Account> = Vec::new();
        for (index, a, _) in &raws {
            let name = a.name.get_ref();
            let label = format!("[[sip.account]] \"{name}\"");
            if !sip_token(name) {
                self.error(
                    Some(a.name.span()),
                    format!(
                        "[[sip.account]] #{index} name: \"{name}\" is not a SIP name ({TOKEN_RULE})"
                    ),
                );
            } else if let Some((_, first)) = owners.get(name) {
                let line = self.line(first);
                self.error(
                    Some(a.name.span()),
                    format!("{label}: the name is already used by the account on line {line}"),
                );
            } else {
                owners.insert(name.clone(), (name.clone(), a.name.span()));
            }
        }
        for (_, a, _) in raws {
            let name = a.name.get_ref().clone();
            let label = format!("[[sip.account]] \"{name}\"");
            let secret = &a.secret.get_ref().0;
            if secret.is_empty() {
                self.error(
                    Some(a.secret.span()),
                    format!("{label} secret: the secret is empty"),
                );
            } else if secret.chars().count() < 8 || secret.eq_ignore_ascii_case("password") {
                // Never the secret itself: only that it is weak.
                self.warn(
                    Some(&a.secret.span()),
                    format!(
                        "{label} secret: weak (a common word or under 8 characters); anyone who \
                         reaches the SIP port can guess it and take over the line"
                    ),
                );
            }
            let numbers = a.extension.iter().map(|e| ("extension", e)).chain(
                a.aliases
                    .iter()
                    .flat_map(|l| l.get_ref().iter().map(|e| ("aliases", e))),
            );
            for (key, n) in numbers {
                let text = n.get_ref();
                if !sip_token(text) {
                    self.error(
                        Some(n.span()),
                        format!("{label} {key}: \"{text}\" is not a SIP user part ({TOKEN_RULE})"),
                    );
                    continue;
                }
                match owners.get(text) {
                    Some((owner, _)) if *owner == name => {}
                    Some((owner, first)) => {
                        let line = self.line(first);
                        self.error(
                            Some(n.span()),
                            format!(
                                "{label} {key}: \"{text}\" already reaches account \"{owner}\" \
                                 (line {line})"
                            ),
                        );
                    }
                    None => {
                        owners.insert(text.clone(), (name.clone(), n.span()));
                    }
                }
            }
            if let Some(p) = &a.port {
                let port = p.get_ref();
                match ports.iter().find(|c| c.name == *port) {
                    None => self.error(
                        Some(p.span()),
                        format!("{label}: port \"{port}\" is not a configured [[port]]"),
                    ),
                    Some(c) if c.mode == LineMode::Direct => self.error(
                        Some(p.span()),
                        format!("{label}: port \"{port}\" is a direct line; only a modem can be rung"),
                    ),
                    Some(_) => match port_users.get(port) {
                        Some(other) => self.error(
                            Some(p.span()),
                            format!("{label}: port \"{port}\" is already the line of account \"{other}\""),
                        ),
                        None => {
                            port_users.insert(port.clone(), name.clone());
                        }
                    },
                }
            }
            out.push(Account {
                name,
                secret: a.secret.into_inner().0,
                extension: a.extension.map(Spanned::into_inner),
                aliases: a
                    .aliases
                    .map(|l| {
                        l.into_inner()
                            .into_iter()
                            .map(Spanned::into_inner)
                            .collect()
                    })
                    .unwrap_or_default(),
                port: a.port.map(Spanned::into_inner),
            });
        }
        out
    }

    fn sip_groups(
        &mut self,
        raws: Vec<(usize, raw::SipGroup, Span)>,
        known: &Known<'_>,
    ) -> Vec<HuntGroup> {
        let mut seen: HashMap<String, Span> = HashMap::new();
        let mut out = Vec::new();
        for (index, g, _) in raws {
            let name = g.name.get_ref().clone();
            let label = format!("[[sip.group]] \"{name}\"");
            if !sip_token(&name) {
                self.error(
                    Some(g.name.span()),
                    format!(
                        "[[sip.group]] #{index} name: \"{name}\" is not a SIP name ({TOKEN_RULE})"
                    ),
                );
            } else if let Some(first) = seen.get(&name) {
                let line = self.line(first);
                self.error(
                    Some(g.name.span()),
                    format!("{label}: the name is already used by the group on line {line}"),
                );
            } else {
                seen.insert(name.clone(), g.name.span());
            }
            if g.lines.get_ref().is_empty() {
                self.error(
                    Some(g.lines.span()),
                    format!("{label} lines: the list is empty"),
                );
            }
            let mut lines: Vec<String> = Vec::new();
            for l in g.lines.get_ref() {
                let line = l.get_ref();
                if !known.account(line) {
                    self.error(
                        Some(l.span()),
                        format!("{label} lines: \"{line}\" is not a [[sip.account]]"),
                    );
                } else if lines.contains(line) {
                    self.error(
                        Some(l.span()),
                        format!("{label} lines: \"{line}\" is listed twice"),
                    );
                } else {
                    lines.push(line.clone());
                }
            }
            out.push(HuntGroup { name, lines });
        }
        out
    }

    fn sip_rules(
        &mut self,
        raws: Vec<(usize, raw::SipRule, Span)>,
        known: &Known<'_>,
    ) -> Vec<Rule> {
        let mut out = Vec::new();
        let mut places = Vec::new();
        for (index, r, table) in raws {
            let label = format!("[[sip.rule]] #{index}");
            let priority = match &r.priority {
                Some(p) => match i32::try_from(*p.get_ref()) {
                    Ok(p) => p,
                    Err(_) => {
                        self.error(
                            Some(p.span()),
                            format!("{label} priority: {} does not fit 32 bits", p.get_ref()),
                        );
                        0
                    }
                },
                None => 0,
            };
            let match_len = self.num(&format!("{label} match_len"), &r.match_len, 0, 0..=1024);
            let target = match (&r.account, &r.group) {
                (Some(a), None) => {
                    if !known.account(a.get_ref()) {
                        self.error(
                            Some(a.span()),
                            format!(
                                "{label} account: \"{}\" is not a [[sip.account]]",
                                a.get_ref()
                            ),
                        );
                    }
                    Some(Target::Account(a.get_ref().clone()))
                }
                (None, Some(g)) => {
                    if !known.group(g.get_ref()) {
                        self.error(
                            Some(g.span()),
                            format!("{label} group: \"{}\" is not a [[sip.group]]", g.get_ref()),
                        );
                    }
                    Some(Target::HuntGroup(g.get_ref().clone()))
                }
                (Some(_), Some(g)) => {
                    self.error(
                        Some(g.span()),
                        format!("{label}: give account or group, not both"),
                    );
                    None
                }
                (None, None) => {
                    self.error(
                        Some(table.clone()),
                        format!("{label}: no target; give account = \"...\" or group = \"...\""),
                    );
                    None
                }
            };
            let Some(target) = target else {
                continue;
            };
            out.push(Rule {
                priority,
                match_op: r.match_op.get_ref().0,
                match_exp: r.match_exp.get_ref().clone(),
                match_len: usize::try_from(match_len).ok().filter(|&l| l > 0),
                subst_exp: r.subst_exp.map(Spanned::into_inner),
                repl_exp: r.repl_exp.map(Spanned::into_inner),
                attrs: r.attrs.map(Spanned::into_inner).unwrap_or_default(),
                target,
            });
            places.push((index, table));
        }
        // Compiling stops at the first bad rule: compile each alone to report them all.
        for (rule, (index, table)) in out.iter().zip(places) {
            if let Err(e) = Dialplan::new(vec![rule.clone()]) {
                self.error(Some(table), dialplan_message(index, &e));
            }
        }
        out
    }
}

/// A dialplan error in the words of the configuration file.
fn dialplan_message(index: usize, e: &DialplanError) -> String {
    let label = format!("[[sip.rule]] #{index}");
    match e {
        DialplanError::BadRegex {
            field,
            pattern,
            reason,
            ..
        } => {
            // The compiler's message spans lines (the pattern, a caret, the error): keep the
            // error.
            let last = reason.lines().last().unwrap_or_default();
            let why = last.trim().strip_prefix("error: ").unwrap_or(last.trim());
            format!("{label} {field}: {pattern:?} is not a regular expression: {why}")
        }
        DialplanError::TooLong { field, len, .. } => format!(
            "{label} {field}: {len} bytes, more than {}",
            crate::sip::dialplan::MAX_PATTERN_LEN
        ),
        DialplanError::BadBackReference { group, groups, .. } => format!(
            "{label} repl_exp: refers to \\{group} but the substitution expression has {groups} \
             group(s)"
        ),
    }
}
