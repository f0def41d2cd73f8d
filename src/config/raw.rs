//! The TOML schema as written by the user: every table denies unknown keys, every value
//! keeps its span (so that a later check can name its line), and every optional key is an
//! `Option` (its default is applied by the validation, which also knows whether the key
//! was written at all).

use serde::Deserialize;
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
