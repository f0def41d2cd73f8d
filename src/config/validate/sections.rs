//! The checks of `[network]`, `[ppp]`, `[auth]`, `[control]` and `[accounting]`.

use super::super::raw::{self, Str};
use super::super::{
    AccountingConfig, AuthSettings, ControlConfig, DEFAULT_JOURNAL, DEFAULT_SECRETS,
    DEFAULT_SOCKET, DEFAULT_TUN, NetworkConfig, Pool, PppConfig,
};
use super::{Ctx, plain_name};
use crate::proto::lcp::{AuthProto, DEFAULT_MRU, MIN_MRU};
use core::net::Ipv4Addr;
use core::time::Duration;
use std::path::PathBuf;

/// The largest MRU we ask for.
const MAX_MRU: u64 = 16384;
/// The longest path of a Unix socket (`sun_path` less its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;
/// Address ranges a pool must not touch, with what they are.
const RESERVED: [(Ipv4Addr, Ipv4Addr, &str); 3] = [
    (
        Ipv4Addr::new(0, 0, 0, 0),
        Ipv4Addr::new(0, 255, 255, 255),
        "0.0.0.0/8 (\"this network\")",
    ),
    (
        Ipv4Addr::new(127, 0, 0, 0),
        Ipv4Addr::new(127, 255, 255, 255),
        "127.0.0.0/8 (loopback)",
    ),
    (
        Ipv4Addr::new(224, 0, 0, 0),
        Ipv4Addr::new(255, 255, 255, 255),
        "224.0.0.0/3 (multicast, reserved and broadcast)",
    ),
];

/// A Linux interface name (`dev_valid_name`): 1-15 bytes, not `.` or `..`, without `/`,
/// `:` or white space.
fn interface_problem(name: &str) -> Option<String> {
    if name.is_empty() || name == "." || name == ".." {
        Some(format!("\"{name}\" is not an interface name"))
    } else if name.len() >= 16 {
        Some(format!(
            "\"{name}\" is {} bytes long; an interface name holds at most 15",
            name.len()
        ))
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        Some(format!(
            "\"{name}\" is not an interface name: it may not hold \"/\", \":\" or white space"
        ))
    } else {
        None
    }
}

impl Ctx<'_> {
    fn interface(&mut self, what: &str, s: &Str) -> String {
        if let Some(p) = interface_problem(s.get_ref()) {
            self.error(Some(s.span()), format!("{what}: {p}"));
        }
        s.get_ref().clone()
    }

    pub(super) fn network(&mut self, n: raw::Network) -> Option<NetworkConfig> {
        let local_ip = self.addr("[network] local_ip", &n.local_ip);
        if let Some(ip) = local_ip
            && (ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback())
        {
            self.error(
                Some(n.local_ip.span()),
                format!("[network] local_ip: {ip} cannot be a host's address"),
            );
        }
        let text = n.pool.get_ref();
        let pool = match text.parse::<Pool>() {
            Ok(p) => {
                for (first, last, what) in RESERVED {
                    if p.overlaps(first, last) {
                        self.error(
                            Some(n.pool.span()),
                            format!("[network] pool: \"{text}\" overlaps {what}"),
                        );
                    }
                }
                Some(p)
            }
            Err(e) => {
                self.error(
                    Some(n.pool.span()),
                    format!("[network] pool: \"{text}\" {e}"),
                );
                None
            }
        };
        if let (Some(ip), Some(p)) = (local_ip, pool)
            && p.contains(ip)
        {
            self.error(
                Some(n.local_ip.span()),
                format!(
                    "[network] local_ip: {ip} is inside the pool {p}: the addresses would \
                     overlap; take local_ip from outside the pool"
                ),
            );
        }
        let dns = self.servers("[network] dns", &n.dns, pool);
        let nbns = self.servers("[network] nbns", &n.nbns, pool);
        let tun = match &n.tun {
            Some(t) => self.interface("[network] tun", t),
            None => DEFAULT_TUN.to_string(),
        };
        let masquerade = n.masquerade.as_ref().map(|m| {
            let name = self.interface("[network] masquerade", m);
            if name == tun {
                self.error(
                    Some(m.span()),
                    format!("[network] masquerade: \"{name}\" is nasd's own TUN interface; name the outgoing interface"),
                );
            }
            name
        });
        Some(NetworkConfig {
            local_ip: local_ip?,
            pool: pool?,
            dns,
            nbns,
            tun,
            masquerade,
            proxy_arp: n.proxy_arp.unwrap_or(false),
            isolate_clients: n.isolate_clients.unwrap_or(false),
        })
    }

    pub(super) fn ppp(&mut self, p: raw::Ppp) -> PppConfig {
        let mut auth = Vec::new();
        match &p.auth {
            None => auth = vec![AuthProto::ChapMd5, AuthProto::Pap],
            Some(list) => {
                for s in list.get_ref() {
                    let proto = match s.get_ref().as_str() {
                        "pap" => AuthProto::Pap,
                        "chap" => AuthProto::ChapMd5,
                        "none" => {
                            self.error(
                                Some(s.span()),
                                "[ppp] auth: \"none\" is not a protocol; write auth = [] for no \
                                 authentication"
                                    .into(),
                            );
                            continue;
                        }
                        other => {
                            self.error(
                                Some(s.span()),
                                format!(
                                    "[ppp] auth: \"{other}\" is not an authentication protocol; \
                                     use \"pap\" or \"chap\""
                                ),
                            );
                            continue;
                        }
                    };
                    if auth.contains(&proto) {
                        self.error(
                            Some(s.span()),
                            format!("[ppp] auth: \"{}\" is listed twice", proto.name()),
                        );
                    } else {
                        auth.push(proto);
                    }
                }
            }
        }
        let mru = self.num(
            "[ppp] mru",
            &p.mru,
            u64::from(DEFAULT_MRU),
            u64::from(MIN_MRU)..=MAX_MRU,
        );
        let echo_interval = self.secs_or_off("[ppp] echo_interval", &p.echo_interval, 30);
        let echo_failure = self.num32("[ppp] echo_failure", &p.echo_failure, 4, 1..=1000);
        let idle_timeout = self.secs_or_off("[ppp] idle_timeout", &p.idle_timeout, 0);
        let session_timeout = self.secs_or_off("[ppp] session_timeout", &p.session_timeout, 0);
        let delay = self.num(
            "[ppp] first_request_delay_ms",
            &p.first_request_delay_ms,
            1000,
            0..=60_000,
        );
        let chap_interval = self.secs_or_off("[ppp] chap_interval", &p.chap_interval, 0);
        if let Some(c) = &p.chap_interval
            && *c.get_ref() > 0
            && !auth.contains(&AuthProto::ChapMd5)
        {
            self.warn(
                Some(&c.span()),
                "[ppp] chap_interval: has no effect: [ppp] auth does not offer chap".into(),
            );
        }
        let restart = self.num("[ppp] restart", &p.restart, 3, 1..=300);
        PppConfig {
            auth,
            mru: u16::try_from(mru).unwrap_or(DEFAULT_MRU),
            echo_interval,
            echo_failure,
            idle_timeout,
            session_timeout,
            first_request_delay: Duration::from_millis(delay),
            chap_interval,
            restart: Duration::from_secs(restart),
            max_configure: self.num32("[ppp] max_configure", &p.max_configure, 10, 1..=1000),
            max_terminate: self.num32("[ppp] max_terminate", &p.max_terminate, 2, 1..=1000),
            max_failure: self.num32("[ppp] max_failure", &p.max_failure, 5, 1..=1000),
            login: p.login.unwrap_or(false),
        }
    }

    /// `[auth]`; `checks_passwords` when some caller must give a password (then a missing
    /// secrets file is worth a warning).
    pub(super) fn auth(
        &mut self,
        a: raw::Auth,
        ppp: &PppConfig,
        checks_passwords: bool,
    ) -> AuthSettings {
        if let Some(s) = &a.pam_service
            && !plain_name(s.get_ref())
        {
            self.error(
                Some(s.span()),
                format!(
                    "[auth] pam_service: \"{}\" is not a PAM service name (letters, digits, \
                     \".\", \"_\", \"-\")",
                    s.get_ref()
                ),
            );
        }
        let secrets = match (&a.secrets, &a.pam_service) {
            (Some(_), _) => Some(self.path("[auth] secrets", &a.secrets, DEFAULT_SECRETS)),
            (None, None) => Some(PathBuf::from(DEFAULT_SECRETS)),
            (None, Some(_)) => None,
        };
        if let (None, Some(pam)) = (&secrets, &a.pam_service)
            && ppp.auth.contains(&AuthProto::ChapMd5)
        {
            self.error(
                Some(pam.span()),
                "[auth] pam_service: CHAP cannot use PAM: it needs the plaintext secret (PAM \
                 works for PAP only); set [auth] secrets for CHAP, or use [ppp] auth = [\"pap\"]"
                    .into(),
            );
        }
        if let Some(path) = &secrets
            && checks_passwords
        {
            let span = a.secrets.as_ref().map(|s| s.span());
            self.warn_missing(
                span.as_ref(),
                "[auth] secrets",
                path,
                "; every password will be refused",
            );
        }
        let name = match &a.name {
            Some(n) if n.get_ref().is_empty() || n.get_ref().len() > 255 => {
                self.error(
                    Some(n.span()),
                    "[auth] name: must hold 1 to 255 bytes".into(),
                );
                "nasd".to_string()
            }
            Some(n) => n.get_ref().clone(),
            None => "nasd".to_string(),
        };
        AuthSettings {
            secrets,
            pam_service: a.pam_service.map(|s| s.into_inner()),
            name,
        }
    }

    pub(super) fn control(&mut self, c: raw::Control) -> ControlConfig {
        let socket = self.path("[control] socket", &c.socket, DEFAULT_SOCKET);
        if let Some(s) = &c.socket
            && s.get_ref().len() > MAX_SOCKET_PATH
        {
            self.error(
                Some(s.span()),
                format!(
                    "[control] socket: the path is {} bytes long; a Unix socket's holds at most {MAX_SOCKET_PATH}",
                    s.get_ref().len()
                ),
            );
        }
        if let Some(g) = &c.group
            && !plain_name(g.get_ref())
        {
            self.error(
                Some(g.span()),
                format!("[control] group: \"{}\" is not a group name", g.get_ref()),
            );
        }
        ControlConfig {
            socket,
            group: c.group.map(|g| g.into_inner()),
        }
    }

    pub(super) fn accounting(&mut self, a: raw::Accounting) -> AccountingConfig {
        AccountingConfig {
            journal: self.path("[accounting] journal", &a.journal, DEFAULT_JOURNAL),
            interim_interval: self.secs_or_off(
                "[accounting] interim_interval",
                &a.interim_interval,
                300,
            ),
        }
    }
}
