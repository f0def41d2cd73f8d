//! nasd's firewall: the nftables table `inet nasd`, and nothing else.
//!
//! The rule set is documented, as nft text, in `rules/nasd.nft` ([`TEMPLATE`]): forwarding
//! rules (policy accept), TCP MSS clamping to the route MTU, optional isolation of dial-in
//! users from each other, optional masquerade of the pool.
//!
//! # How it is applied
//!
//! Through the `nftables` crate: [`ruleset`] builds the rules as the crate's JSON schema
//! objects and [`Firewall::install`] hands them to `nft -j -f -` (one `nft` run = one netlink
//! batch, so the table is replaced atomically: all or nothing). The crate's helpers always
//! pass `-j`, so they cannot load the text template: nft 1.0.6 then reads standard input as
//! JSON, fails, falls back to the text parser on the already consumed input and applies
//! *nothing* while exiting 0 (the netns test `sys_net::nftables_crate_cannot_apply_text` shows
//! it). Hence the rules exist twice, as the text template and as [`ruleset`]; the netns test
//! `sys_net::firewall_json_matches_text_template` loads both and compares
//! `nft -j list table inet nasd`.
//!
//! The crate's helper lets `nft`'s standard error through to nasd's own and returns an error
//! without nft's message, so after a failure nasd re-runs the batch with `nft -c` (check only,
//! nothing changes) to put nft's message into the [`Error`].
//!
//! A stale `table inet nasd` (left by a crashed nasd) is replaced: the batch is `add table`,
//! `delete table`, `add table`, then the chains and rules.

use std::borrow::Cow;
use std::net::Ipv4Addr;
use std::process::Stdio;

use nftables::batch::Batch;
use nftables::expr::{
    CT, Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, RT, RTKey, Range,
    TcpOption,
};
use nftables::helper::NftablesError;
use nftables::schema::{Chain, NfListObject, Nftables, Rule, Table};
use nftables::stmt::{Mangle, Match, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};
use tokio::io::AsyncWriteExt;

use super::{Error, Result, check_ifname, check_pool};

/// The table's name (family `inet`).
pub const TABLE: &str = "nasd";

/// The documented rule set, `rules/nasd.nft`, with its placeholders (`@TUN@`, `@POOL@`,
/// `@OUT@`) and tags (`# [masquerade]`, `# [isolate_clients]`); see [`render_template`].
pub const TEMPLATE: &str = include_str!("../../rules/nasd.nft");

/// What the firewall is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallConfig {
    /// The TUN device of the dial-in sessions.
    pub tun: String,
    /// First address of the pool.
    pub pool_first: Ipv4Addr,
    /// Last address of the pool.
    pub pool_last: Ipv4Addr,
    /// The interface to masquerade the pool out of; `None`: no NAT.
    pub masquerade: Option<String>,
    /// Drop traffic between two dial-in users.
    pub isolate_clients: bool,
}

impl FirewallConfig {
    fn check(&self) -> Result<()> {
        check_ifname(&self.tun)?;
        if let Some(out) = &self.masquerade {
            check_ifname(out)?;
        }
        check_pool(self.pool_first, self.pool_last)
    }
}

/// The text rule set for `config`: [`TEMPLATE`] without its header comment, with the lines of
/// unconfigured parts left out, the tags removed and the placeholders substituted.
/// `nft -f -` takes it.
pub fn render_template(config: &FirewallConfig) -> Result<String> {
    config.check()?;
    let pool = format!("{}-{}", config.pool_first, config.pool_last);
    let mut out = String::from("# table inet nasd, rendered by nasd from rules/nasd.nft\n");
    // The template's header comment describes the template itself: leave it out.
    let body = TEMPLATE
        .lines()
        .skip_while(|l| l.is_empty() || l.starts_with('#'));
    for line in body {
        let mut line = line.to_string();
        if let Some(at) = line.find(" # [masquerade]") {
            if config.masquerade.is_none() {
                continue;
            }
            line.truncate(at);
        }
        if let Some(at) = line.find(" # [isolate_clients]") {
            if !config.isolate_clients {
                continue;
            }
            line.truncate(at);
        }
        let line = line
            .replace("@TUN@", &config.tun)
            .replace("@POOL@", &pool)
            .replace("@OUT@", config.masquerade.as_deref().unwrap_or(""));
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

fn table() -> Table<'static> {
    Table {
        family: NfFamily::INet,
        name: TABLE.into(),
        handle: None,
    }
}

fn string(s: impl Into<String>) -> Expression<'static> {
    Expression::String(Cow::Owned(s.into()))
}

fn meta_is(key: MetaKey, value: &str) -> Statement<'static> {
    Statement::Match(Match {
        left: Expression::Named(NamedExpression::Meta(Meta { key })),
        right: string(value),
        op: Operator::EQ,
    })
}

fn ip_in_pool(field: &'static str, config: &FirewallConfig) -> Statement<'static> {
    Statement::Match(Match {
        left: Expression::Named(NamedExpression::Payload(Payload::PayloadField(
            PayloadField {
                protocol: "ip".into(),
                field: field.into(),
            },
        ))),
        right: Expression::Range(Box::new(Range {
            range: [
                string(config.pool_first.to_string()),
                string(config.pool_last.to_string()),
            ],
        })),
        op: Operator::EQ,
    })
}

/// `tcp flags syn tcp option maxseg size set rt mtu`.
fn clamp_mss() -> [Statement<'static>; 2] {
    [
        Statement::Match(Match {
            left: Expression::Named(NamedExpression::Payload(Payload::PayloadField(
                PayloadField {
                    protocol: "tcp".into(),
                    field: "flags".into(),
                },
            ))),
            right: string("syn"),
            op: Operator::IN,
        }),
        Statement::Mangle(Mangle {
            key: Expression::Named(NamedExpression::TcpOption(TcpOption {
                name: "maxseg".into(),
                field: Some("size".into()),
            })),
            value: Expression::Named(NamedExpression::RT(RT {
                key: RTKey::MTU,
                family: None,
            })),
        }),
    ]
}

fn chain(name: &'static str, kind: NfChainType, hook: NfHook, prio: i32) -> NfListObject<'static> {
    NfListObject::Chain(Chain {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.into(),
        _type: Some(kind),
        hook: Some(hook),
        prio: Some(prio),
        policy: Some(NfChainPolicy::Accept),
        ..Default::default()
    })
}

fn rule(chain: &'static str, expr: Vec<Statement<'static>>) -> NfListObject<'static> {
    NfListObject::Rule(Rule {
        family: NfFamily::INet,
        table: TABLE.into(),
        chain: chain.into(),
        expr: expr.into(),
        ..Default::default()
    })
}

/// The install transaction for `config`, as the `nftables` crate's JSON objects: replace
/// `table inet nasd` with the rules of [`TEMPLATE`] (see the module documentation).
pub fn ruleset(config: &FirewallConfig) -> Result<Nftables<'static>> {
    config.check()?;
    let tun = config.tun.as_str();
    let mut b = Batch::new();
    // `add` first so that `delete` finds a table even when there was none: no stale table
    // and a stale one end up the same, in one transaction.
    b.add(NfListObject::Table(table()));
    b.delete(NfListObject::Table(table()));
    b.add(NfListObject::Table(table()));
    // priority filter = 0, priority srcnat = 100.
    b.add(chain("forward", NfChainType::Filter, NfHook::Forward, 0));
    if config.masquerade.is_some() {
        b.add(chain(
            "postrouting",
            NfChainType::NAT,
            NfHook::Postrouting,
            100,
        ));
    }

    let mut forward = vec![
        [vec![meta_is(MetaKey::Iifname, tun)], clamp_mss().to_vec()].concat(),
        [vec![meta_is(MetaKey::Oifname, tun)], clamp_mss().to_vec()].concat(),
    ];
    if config.isolate_clients {
        forward.push(vec![
            meta_is(MetaKey::Iifname, tun),
            meta_is(MetaKey::Oifname, tun),
            Statement::Drop(None),
        ]);
    }
    forward.push(vec![
        Statement::Match(Match {
            left: Expression::Named(NamedExpression::CT(CT {
                key: "state".into(),
                family: None,
                dir: None,
            })),
            right: Expression::List(vec![string("established"), string("related")]),
            op: Operator::IN,
        }),
        Statement::Accept(None),
    ]);
    if let Some(out) = config.masquerade.as_deref() {
        forward.push(vec![
            meta_is(MetaKey::Iifname, tun),
            ip_in_pool("saddr", config),
            meta_is(MetaKey::Oifname, out),
            Statement::Accept(None),
        ]);
        forward.push(vec![
            meta_is(MetaKey::Iifname, out),
            meta_is(MetaKey::Oifname, tun),
            ip_in_pool("daddr", config),
            Statement::Accept(None),
        ]);
    }
    for expr in forward {
        b.add(rule("forward", expr));
    }
    if let Some(out) = config.masquerade.as_deref() {
        b.add(rule(
            "postrouting",
            vec![
                ip_in_pool("saddr", config),
                meta_is(MetaKey::Oifname, out),
                Statement::Masquerade(None),
            ],
        ));
    }
    Ok(b.to_nftables())
}

/// The transaction that deletes `table inet nasd`, whether it exists or not.
fn removal() -> Nftables<'static> {
    let mut b = Batch::new();
    b.add(NfListObject::Table(table()));
    b.delete(NfListObject::Table(table()));
    b.to_nftables()
}

/// Runs `nft -c -j -f -` (check only: nothing changes) on `payload` and returns what nft
/// printed on standard error: the message the crate's helper does not capture.
async fn nft_message(payload: &str) -> String {
    let child = tokio::process::Command::new("nft")
        .args(["-c", "-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return format!("cannot run nft: {e}"),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(payload.as_bytes()).await;
    }
    match child.wait_with_output().await {
        Ok(out) if !out.status.success() => {
            let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if text.is_empty() {
                format!("nft failed ({}) without a message", out.status)
            } else {
                text
            }
        }
        Ok(_) => {
            "nft failed, but a check run of the same rules passed (a transient error?)".to_string()
        }
        Err(e) => format!("nft failed: {e}"),
    }
}

/// Applies `rules` with the crate's helper; on failure, the error holds nft's message.
async fn apply(rules: &Nftables<'_>, what: &str) -> Result<()> {
    match nftables::helper::apply_ruleset_async(rules).await {
        Ok(()) => Ok(()),
        Err(NftablesError::NftFailed { .. }) => {
            let payload = serde_json::to_string(rules).unwrap_or_default();
            Err(Error::Nft {
                what: what.to_string(),
                detail: nft_message(&payload).await,
            })
        }
        Err(NftablesError::NftExecution { program, inner }) => Err(Error::Nft {
            what: what.to_string(),
            detail: format!(
                "cannot run {}: {inner} (is the nftables package installed?)",
                program.to_string_lossy()
            ),
        }),
        Err(e) => Err(Error::Nft {
            what: what.to_string(),
            detail: e.to_string(),
        }),
    }
}

/// The calling thread's network namespace (`net:[4026531840]`), to delete the table in the
/// namespace it was installed in and nowhere else.
fn current_netns() -> Option<std::path::PathBuf> {
    std::fs::read_link("/proc/thread-self/ns/net").ok()
}

/// nasd's installed firewall: `table inet nasd`. Deleted by [`Firewall::remove`], or (best
/// effort, blocking on `nft` for a moment) when dropped.
///
/// `nft` runs in the network namespace of the calling thread: removing (or dropping) the
/// firewall on a thread of another namespace than the one it was installed from deletes
/// nothing (`remove` returns an error, `drop` logs a warning).
#[derive(Debug)]
pub struct Firewall {
    config: FirewallConfig,
    installed: bool,
    netns: Option<std::path::PathBuf>,
}

impl Firewall {
    /// Installs (or replaces) `table inet nasd` for `config` in one transaction; no other
    /// table is touched. Needs `nft` in `PATH` and `CAP_NET_ADMIN`.
    pub async fn install(config: &FirewallConfig) -> Result<Firewall> {
        let rules = ruleset(config)?;
        let netns = current_netns();
        apply(&rules, "install table inet nasd").await?;
        Ok(Firewall {
            config: config.clone(),
            installed: true,
            netns,
        })
    }

    /// The configuration the firewall was installed with.
    pub fn config(&self) -> &FirewallConfig {
        &self.config
    }

    /// Deletes `table inet nasd` (succeeds when it is already gone).
    pub async fn remove(mut self) -> Result<()> {
        self.installed = false;
        self.check_netns().map_err(|detail| Error::Nft {
            what: "delete table inet nasd".into(),
            detail,
        })?;
        apply(&removal(), "delete table inet nasd").await
    }

    fn check_netns(&self) -> std::result::Result<(), String> {
        match (&self.netns, current_netns()) {
            (Some(installed), Some(now)) if *installed != now => Err(format!(
                "installed in network namespace {}, but this thread is in {}",
                installed.display(),
                now.display()
            )),
            _ => Ok(()),
        }
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        if !self.installed {
            return;
        }
        if let Err(e) = self.check_netns() {
            tracing::warn!("not deleting table inet nasd: {e}");
        } else if let Err(e) = nftables::helper::apply_ruleset(&removal()) {
            tracing::warn!("cannot delete table inet nasd: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(masquerade: Option<&str>, isolate: bool) -> FirewallConfig {
        FirewallConfig {
            tun: "ppp-nasd0".into(),
            pool_first: Ipv4Addr::new(10, 0, 0, 100),
            pool_last: Ipv4Addr::new(10, 0, 0, 199),
            masquerade: masquerade.map(String::from),
            isolate_clients: isolate,
        }
    }

    fn rule_lines(text: &str) -> Vec<String> {
        text.lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    }

    #[test]
    fn template_with_everything() {
        let text = render_template(&config(Some("eth0"), true)).unwrap();
        assert!(!text.contains('@'), "{text}");
        assert!(!text.contains("# ["), "{text}");
        let lines = rule_lines(&text);
        for want in [
            "iifname \"ppp-nasd0\" tcp flags syn tcp option maxseg size set rt mtu",
            "oifname \"ppp-nasd0\" tcp flags syn tcp option maxseg size set rt mtu",
            "iifname \"ppp-nasd0\" oifname \"ppp-nasd0\" drop",
            "ct state established,related accept",
            "iifname \"ppp-nasd0\" ip saddr 10.0.0.100-10.0.0.199 oifname \"eth0\" accept",
            "iifname \"eth0\" oifname \"ppp-nasd0\" ip daddr 10.0.0.100-10.0.0.199 accept",
            "chain postrouting {",
            "ip saddr 10.0.0.100-10.0.0.199 oifname \"eth0\" masquerade",
        ] {
            assert!(
                lines.iter().any(|l| l == want),
                "missing {want:?} in\n{text}"
            );
        }
    }

    #[test]
    fn template_without_options_leaves_them_out() {
        let text = render_template(&config(None, false)).unwrap();
        assert!(!text.contains('@'), "{text}");
        for absent in ["masquerade", "postrouting", "drop", "saddr", "daddr"] {
            assert!(
                !rule_lines(&text).iter().any(|l| l.contains(absent)),
                "{absent} in\n{text}"
            );
        }
        assert!(text.contains("ct state established,related accept"));
        // Braces still balance.
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }

    #[test]
    fn json_has_the_same_parts() {
        let json = serde_json::to_value(ruleset(&config(Some("eth0"), true)).unwrap()).unwrap();
        let cmds = json["nftables"].as_array().unwrap();
        // add, delete, add table; 2 chains; 6 forward rules; 1 postrouting rule.
        assert_eq!(cmds.len(), 3 + 2 + 6 + 1, "{json:#}");
        assert_eq!(cmds[1]["delete"]["table"]["name"], "nasd");
        let text = json.to_string();
        for part in [
            r#"{"tcp option":{"field":"size","name":"maxseg"}}"#,
            r#"{"rt":{"key":"mtu"}}"#,
            r#"{"range":["10.0.0.100","10.0.0.199"]}"#,
            r#""masquerade":null"#,
            r#"["established","related"]"#,
        ] {
            assert!(text.contains(part), "missing {part} in {text}");
        }
        let plain = serde_json::to_value(ruleset(&config(None, false)).unwrap()).unwrap();
        assert_eq!(plain["nftables"].as_array().unwrap().len(), 3 + 1 + 3);
    }

    #[test]
    fn bad_configuration_is_refused() {
        let mut c = config(Some("eth 0"), false);
        assert!(
            ruleset(&c)
                .unwrap_err()
                .to_string()
                .contains("\"eth 0\" is not a valid interface name")
        );
        c.masquerade = None;
        c.pool_first = Ipv4Addr::new(10, 0, 0, 200);
        assert!(
            render_template(&c)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
    }
}
