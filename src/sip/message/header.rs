//! Typed SIP header values (RFC 3261 §19.1, §20, §25): URIs, name-addr (From, To, Contact),
//! Via, CSeq and `;name=value` parameter lists. Parsing is pure and panic-free; every type
//! prints back (`Display`) in a form that parses to the same value.

use core::fmt;

/// A `;name[=value]` parameter list, in order. Names compare case-insensitively; values are
/// kept as written (a quoted value keeps its quotes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// Parses `;a=1;b;c="x;y"` (the leading `;` is optional). `None` on an empty name.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let s = s.strip_prefix(';').unwrap_or(s);
        if s.trim().is_empty() {
            return Some(Self::default());
        }
        let mut out = Vec::new();
        for part in split_outside(s, b';') {
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().to_string())),
                None => (part.trim(), None),
            };
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return None;
            }
            out.push((name.to_string(), value));
        }
        Some(Self(out))
    }

    /// `None` when absent, `Some(None)` when present without a value.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// Sets (replacing the first of that name) or appends a parameter.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        match self
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in &self.0 {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

/// A `sip:` or `sips:` URI: `sip:user:password@host:port;params?headers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sip` or `sips`, lower case.
    pub scheme: String,
    /// The user part, as written (escapes not decoded).
    pub user: Option<String>,
    /// The password part, if any (deprecated but legal).
    pub password: Option<String>,
    /// Host name, IPv4 address or bracketed IPv6 reference.
    pub host: String,
    /// The port, if given.
    pub port: Option<u16>,
    /// URI parameters (`;transport=udp;lr`).
    pub params: Params,
    /// The raw `?headers` part, without the `?`.
    pub headers: Option<String>,
}

impl SipUri {
    /// Parses a SIP or SIPS URI; `None` when it is not one or is malformed.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let colon = s.find(':')?;
        let scheme = s[..colon].to_ascii_lowercase();
        if scheme != "sip" && scheme != "sips" {
            return None;
        }
        let rest = &s[colon + 1..];
        let (rest, headers) = match rest.split_once('?') {
            Some((r, h)) => (r, Some(h.to_string())),
            None => (rest, None),
        };
        let (userinfo, rest) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => match ui.split_once(':') {
                Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
                None => (Some(ui.to_string()), None),
            },
        };
        if user
            .as_deref()
            .is_some_and(|u| u.is_empty() || u.contains(char::is_whitespace))
        {
            return None;
        }
        let (hostport, params) = match rest.find(';') {
            Some(i) => (&rest[..i], Params::parse(&rest[i..])?),
            None => (rest, Params::default()),
        };
        let (host, port) = parse_host_port(hostport)?;
        Some(Self {
            scheme,
            user,
            password,
            host,
            port,
            params,
            headers,
        })
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme)?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

/// `host[:port]` with a bracketed IPv6 reference allowed; whitespace around `:` tolerated.
fn parse_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']')?;
        let host = &s[..=end];
        let rest = s[end + 1..].trim();
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p.trim()),
            None if rest.is_empty() => None,
            None => return None,
        };
        if !host[1..end]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        (host, port)
    } else {
        let (host, port) = match s.split_once(':') {
            Some((h, p)) => (h.trim(), Some(p.trim())),
            None => (s, None),
        };
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return None;
        }
        (host, port)
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
        None => None,
    };
    Some((host.to_string(), port))
}

/// A name-addr or addr-spec with header parameters: From, To, Contact, Route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted (escapes kept), if any.
    pub display_name: Option<String>,
    /// The URI as written (any scheme: `sip:`, `sips:`, `tel:`...).
    pub uri: String,
    /// Header parameters after the URI (`;tag=...`, `;expires=...`).
    pub params: Params,
}

impl NameAddr {
    /// Parses `"Name" <uri>;params`, `Name <uri>;params` or `uri;params`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let lt = find_outside_quotes(s, b'<');
        let (display_name, uri, params) = match lt {
            Some(lt) => {
                let gt = lt + s[lt..].find('>')?;
                let disp = s[..lt].trim();
                let disp = if disp.is_empty() {
                    None
                } else if let Some(q) = disp.strip_prefix('"') {
                    Some(q.strip_suffix('"')?.to_string())
                } else {
                    Some(disp.to_string())
                };
                (disp, s[lt + 1..gt].trim(), &s[gt + 1..])
            }
            None => match s.find(';') {
                Some(i) => (None, s[..i].trim(), &s[i..]),
                None => (None, s, ""),
            },
        };
        let colon = uri.find(':')?;
        if colon == 0 || uri.contains(char::is_whitespace) {
            return None;
        }
        let params = params.trim();
        if !params.is_empty() && !params.starts_with(';') {
            return None;
        }
        Some(Self {
            display_name,
            uri: uri.to_string(),
            params: Params::parse(params)?,
        })
    }

    /// The URI parsed as a SIP URI, when it is one.
    pub fn sip_uri(&self) -> Option<SipUri> {
        SipUri::parse(&self.uri)
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }

    /// The `expires` parameter (Contact).
    pub fn expires(&self) -> Option<u32> {
        self.params.get("expires").flatten()?.parse().ok()
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display_name {
            write!(f, "\"{d}\" ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// The Contact header set: `*` or a list of addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// `Contact: *` (remove all bindings).
    Wildcard,
    /// The addresses, in order (empty when there is no Contact header).
    List(Vec<NameAddr>),
}

/// One Via value: `SIP/2.0/UDP host:port;branch=...;rport;received=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// The transport, upper case (`UDP`).
    pub transport: String,
    /// The sent-by host.
    pub host: String,
    /// The sent-by port, if given.
    pub port: Option<u16>,
    /// The parameters, in order.
    pub params: Params,
}

impl Via {
    /// Parses one Via value (LWS around `/` allowed, as RFC 4475 tests).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (head, params) = match find_outside_quotes(s, b';') {
            Some(i) => (&s[..i], Params::parse(&s[i..])?),
            None => (s, Params::default()),
        };
        let (name, rest) = head.split_once('/')?;
        let (version, rest) = rest.split_once('/')?;
        if !name.trim().eq_ignore_ascii_case("SIP") || version.trim() != "2.0" {
            return None;
        }
        let rest = rest.trim_start();
        let end = rest.find(char::is_whitespace)?;
        let transport = &rest[..end];
        if transport.is_empty() || !transport.bytes().all(is_token_byte) {
            return None;
        }
        let (host, port) = parse_host_port(&rest[end..])?;
        Some(Self {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params,
        })
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }

    /// `None` without `rport`; `Some(None)` for a bare `rport`; `Some(Some(port))` when filled.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// The `received` parameter.
    pub fn received(&self) -> Option<&str> {
        self.params.get("received").flatten()
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// The CSeq header: sequence number and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number (below 2^31 per RFC 3261).
    pub seq: u32,
    /// The method.
    pub method: super::Method,
}

impl CSeq {
    /// Parses `4711 INVITE`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.split_whitespace();
        let seq_s = it.next()?;
        if seq_s.len() > 10 || !seq_s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let seq: u32 = seq_s.parse().ok()?;
        let method = super::Method::parse(it.next()?)?;
        if it.next().is_some() || seq >= 1 << 31 {
            return None;
        }
        Some(Self { seq, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// RFC 3261 `token` characters.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// The first `needle` outside double quotes (backslash escapes honoured).
fn find_outside_quotes(s: &str, needle: u8) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, b) in s.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if !quoted && b == needle {
            return Some(i);
        }
    }
    None
}

/// Splits on `sep` outside double quotes and `<...>`; parts are trimmed.
pub fn split_outside(s: &str, sep: u8) -> Vec<&str> {
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted {
            match b {
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
        } else if b == b'"' {
            quoted = true;
        } else if b == b'<' {
            angle = true;
        } else if b == b'>' {
            angle = false;
        } else if b == sep && !angle {
            out.push(s[start..i].trim());
            start = i + 1;
        }
    }
    out.push(s[start..].trim());
    out
}
