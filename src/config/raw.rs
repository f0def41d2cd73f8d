//! The TOML schema as written by the user: every table denies unknown keys, every value
//! keeps its span (so that a later check can name its line), and every optional key is an
//! `Option` (its default is applied by the validation, which also knows whether the key
//! was written at all).

use crate::sip::dialplan::MatchOp;
use core::fmt;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use toml::Spanned;

/// A string with its place in the file.
pub(super) type Str = Spanned<String>;
/// A number with its place in the file.
pub(super) type Num = Spanned<u64>;
/// A list of strings, each with its place, and the list's place.
pub(super) type StrList = Spanned<Vec<Str>>;

/// `[network]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Network {
    pub local_ip: Str,
    pub pool: Str,
    #[serde(default)]
    pub dns: Option<StrList>,
    #[serde(default)]
    pub nbns: Option<StrList>,
    #[serde(default)]
    pub tun: Option<Str>,
    #[serde(default)]
    pub masquerade: Option<Str>,
    #[serde(default)]
    pub proxy_arp: Option<bool>,
    #[serde(default)]
    pub isolate_clients: Option<bool>,
}

/// `[ppp]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Ppp {
    #[serde(default)]
    pub auth: Option<StrList>,
    #[serde(default)]
    pub mru: Option<Num>,
    #[serde(default)]
    pub echo_interval: Option<Num>,
    #[serde(default)]
    pub echo_failure: Option<Num>,
    #[serde(default)]
    pub idle_timeout: Option<Num>,
    #[serde(default)]
    pub session_timeout: Option<Num>,
    #[serde(default)]
    pub first_request_delay_ms: Option<Num>,
    #[serde(default)]
    pub chap_interval: Option<Num>,
    #[serde(default)]
    pub restart: Option<Num>,
    #[serde(default)]
    pub max_configure: Option<Num>,
    #[serde(default)]
    pub max_terminate: Option<Num>,
    #[serde(default)]
    pub max_failure: Option<Num>,
    #[serde(default)]
    pub login: Option<bool>,
}

/// `[auth]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Auth {
    #[serde(default)]
    pub secrets: Option<Str>,
    #[serde(default)]
    pub pam_service: Option<Str>,
    #[serde(default)]
    pub name: Option<Str>,
}

/// `[control]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Control {
    #[serde(default)]
    pub socket: Option<Str>,
    #[serde(default)]
    pub group: Option<Str>,
}

/// `[accounting]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Accounting {
    #[serde(default)]
    pub journal: Option<Str>,
    #[serde(default)]
    pub interim_interval: Option<Num>,
}

/// `[radius]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Radius {
    #[serde(default)]
    pub server: Option<Spanned<Vec<RadiusServer>>>,
    #[serde(default)]
    pub authenticate: Option<bool>,
    #[serde(default)]
    pub accounting: Option<bool>,
    #[serde(default)]
    pub nas_identifier: Option<Str>,
    #[serde(default)]
    pub nas_ip: Option<Str>,
    #[serde(default)]
    pub timeout: Option<Num>,
    #[serde(default)]
    pub retries: Option<Num>,
    #[serde(default)]
    pub dae_listen: Option<Str>,
    #[serde(default)]
    pub dae_client: Option<Spanned<Vec<RadiusServer>>>,
}

/// One `[[radius.server]]` or `[[radius.dae_client]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RadiusServer {
    pub address: Str,
    pub secret: Str,
    #[serde(default)]
    pub auth_port: Option<Num>,
    #[serde(default)]
    pub acct_port: Option<Num>,
}

/// `mode` of a `[[port]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Mode {
    Modem,
    Direct,
}

/// `flow_control` of a `[[port]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Flow {
    Rtscts,
    None,
}

/// One `[[port]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Port {
    #[serde(default)]
    pub name: Option<Str>,
    pub device: Str,
    #[serde(default)]
    pub mode: Option<Spanned<Mode>>,
    #[serde(default)]
    pub speed: Option<Num>,
    #[serde(default)]
    pub flow_control: Option<Spanned<Flow>>,
    #[serde(default)]
    pub init: Option<StrList>,
    #[serde(default)]
    pub answer: Option<Str>,
    #[serde(default)]
    pub rings: Option<Num>,
    #[serde(default)]
    pub answer_timeout: Option<Num>,
    #[serde(default)]
    pub health_interval: Option<Num>,
    #[serde(default)]
    pub lock_dir: Option<Str>,
    #[serde(default)]
    pub toggle_dtr_ms: Option<Num>,
    #[serde(default)]
    pub login: Option<bool>,
    #[serde(default)]
    pub number: Option<Str>,
}

/// `[sip]`. Its arrays of tables (`account`, `group`, `rule`) are read one table at a time by
/// the validation, so that one bad table does not hide the others; they are only named here
/// so that the list of known keys includes them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Sip {
    #[serde(default)]
    pub listen: Option<Str>,
    #[serde(default)]
    pub public: Option<Str>,
    #[serde(default)]
    pub realm: Option<Str>,
    #[serde(default)]
    pub allow: Option<StrList>,
    #[serde(default)]
    pub qualify: Option<Num>,
    #[serde(default)]
    pub qualify_max_ms: Option<Num>,
    #[serde(default)]
    pub ring_timeout: Option<Num>,
    #[serde(default)]
    pub min_expires: Option<Num>,
    #[serde(default)]
    pub max_expires: Option<Num>,
    #[serde(default)]
    pub default_expires: Option<Num>,
    #[serde(default)]
    pub nonce_lifetime: Option<Num>,
    #[serde(default)]
    pub max_message_size: Option<Num>,
    #[serde(default)]
    pub max_calls: Option<Num>,
    #[serde(default, rename = "account")]
    pub _account: Option<IgnoredAny>,
    #[serde(default, rename = "group")]
    pub _group: Option<IgnoredAny>,
    #[serde(default, rename = "rule")]
    pub _rule: Option<IgnoredAny>,
}

/// A secret as written: any string. A value of another type is refused without being
/// repeated in the message (a numeric PIN written without quotes is still a secret).
pub(super) struct Secret(pub String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
                Err(E::custom(HIDDEN))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
                Err(E::custom(HIDDEN))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom(HIDDEN))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
                Err(E::custom(HIDDEN))
            }
        }
        const HIDDEN: &str = "must be a string in quotes (the value is not shown: it is a secret)";
        d.deserialize_any(V)
    }
}

/// One `[[sip.account]]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SipAccount {
    pub name: Str,
    pub secret: Spanned<Secret>,
    #[serde(default)]
    pub extension: Option<Str>,
    #[serde(default)]
    pub aliases: Option<StrList>,
    #[serde(default)]
    pub port: Option<Str>,
}

/// One `[[sip.group]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SipGroup {
    pub name: Str,
    pub lines: StrList,
}

/// `match_op` of a `[[sip.rule]]`: a name, or Kamailio's number.
#[derive(Debug, Clone, Copy)]
pub(super) struct RawMatchOp(pub MatchOp);

impl<'de> Deserialize<'de> for RawMatchOp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawMatchOp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"equal\", \"regex\" or \"fnmatch\" (or Kamailio's 0, 1 or 2)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawMatchOp, E> {
                match v {
                    "equal" => Ok(RawMatchOp(MatchOp::Equal)),
                    "regex" => Ok(RawMatchOp(MatchOp::Regex)),
                    "fnmatch" => Ok(RawMatchOp(MatchOp::Fnmatch)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawMatchOp, E> {
                u8::try_from(v)
                    .ok()
                    .and_then(MatchOp::from_code)
                    .map(RawMatchOp)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawMatchOp, E> {
                u8::try_from(v)
                    .ok()
                    .and_then(MatchOp::from_code)
                    .map(RawMatchOp)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// One `[[sip.rule]]`: a row of Kamailio's `dialplan` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SipRule {
    #[serde(default)]
    pub priority: Option<Spanned<i64>>,
    pub match_op: Spanned<RawMatchOp>,
    pub match_exp: Str,
    #[serde(default)]
    pub match_len: Option<Num>,
    #[serde(default)]
    pub subst_exp: Option<Str>,
    #[serde(default)]
    pub repl_exp: Option<Str>,
    #[serde(default)]
    pub attrs: Option<Str>,
    #[serde(default)]
    pub account: Option<Str>,
    #[serde(default)]
    pub group: Option<Str>,
}
