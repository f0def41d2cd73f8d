//! The checks of `[radius]`.

use super::super::raw::{self, Str};
use super::super::{AuthSettings, RadiusPeer, RadiusSettings};
use super::Ctx;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

/// The RFC 5176 port.
const DAE_PORT: u16 = 3799;

impl Ctx<'_> {
    pub(super) fn radius(
        &mut self,
        r: raw::Radius,
        section: super::Span,
        auth: &AuthSettings,
    ) -> Option<RadiusSettings> {
        let servers = self.radius_peers("[[radius.server]]", r.server.as_ref());
        if r.server.as_ref().is_none_or(|s| s.get_ref().is_empty()) {
            self.error(
                Some(r.server.as_ref().map_or(section, |s| s.span())),
                "[radius]: no [[radius.server]]; give at least one server (address and secret)"
                    .into(),
            );
        }
        let nas_ip = match &r.nas_ip {
            Some(s) => self.addr("[radius] nas_ip", s),
            None => None,
        };
        let nas_identifier = match &r.nas_identifier {
            Some(n) if n.get_ref().is_empty() || n.get_ref().len() > 253 => {
                self.error(
                    Some(n.span()),
                    "[radius] nas_identifier: must hold 1 to 253 bytes".into(),
                );
                auth.name.clone()
            }
            Some(n) => n.get_ref().clone(),
            None => auth.name.clone(),
        };
        let timeout = self.num("[radius] timeout", &r.timeout, 3, 1..=60);
        let retries = self.num32("[radius] retries", &r.retries, 3, 1..=10);
        let dae_listen = r.dae_listen.as_ref().and_then(|s| self.dae_listen(s));
        let dae_clients = self.radius_peers("[[radius.dae_client]]", r.dae_client.as_ref());
        if dae_listen.is_some() && dae_clients.is_empty() {
            self.error(
                r.dae_listen.as_ref().map(|s| s.span()),
                "[radius] dae_listen: no [[radius.dae_client]] may send requests; add one \
                 (address and secret) or remove dae_listen"
                    .into(),
            );
        }
        Some(RadiusSettings {
            servers,
            authenticate: r.authenticate.unwrap_or(true),
            accounting: r.accounting.unwrap_or(true),
            nas_identifier,
            nas_ip,
            timeout: Duration::from_secs(timeout),
            retries,
            dae_listen,
            dae_clients,
        })
    }

    fn dae_listen(&mut self, s: &Str) -> Option<SocketAddr> {
        let text = s.get_ref().trim();
        if let Ok(a) = text.parse::<SocketAddr>() {
            return Some(a);
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(SocketAddr::new(ip, DAE_PORT));
        }
        self.error(
            Some(s.span()),
            format!(
                "[radius] dae_listen: \"{text}\" is not an address (e.g. \"0.0.0.0:3799\" or \
                 \"127.0.0.1\")"
            ),
        );
        None
    }

    fn radius_peers(
        &mut self,
        what: &str,
        list: Option<&toml::Spanned<Vec<raw::RadiusServer>>>,
    ) -> Vec<RadiusPeer> {
        let Some(list) = list else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for s in list.get_ref() {
            let address = match s.address.get_ref().trim().parse::<IpAddr>() {
                Ok(a) => a,
                Err(_) => {
                    self.error(
                        Some(s.address.span()),
                        format!(
                            "{what} address: \"{}\" is not an IP address",
                            s.address.get_ref()
                        ),
                    );
                    continue;
                }
            };
            if s.secret.get_ref().is_empty() {
                self.error(
                    Some(s.secret.span()),
                    format!("{what} secret: the shared secret is empty"),
                );
            }
            let auth_port = self.num(&format!("{what} auth_port"), &s.auth_port, 1812, 1..=65535);
            let acct_port = self.num(&format!("{what} acct_port"), &s.acct_port, 1813, 1..=65535);
            out.push(RadiusPeer {
                address,
                secret: s.secret.get_ref().clone(),
                auth_port: u16::try_from(auth_port).unwrap_or(1812),
                acct_port: u16::try_from(acct_port).unwrap_or(1813),
            });
        }
        out
    }
}
