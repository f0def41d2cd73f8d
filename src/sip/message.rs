//! SIP messages (RFC 3261 §7, §18.3, §20): parse a UDP datagram into a [`Message`], read its
//! headers through typed accessors, build responses (§8.2.6) and stamp the top Via with
//! `received`/`rport` (RFC 3581), and serialise back to bytes. Pure and panic-free on any input.

mod header;
#[cfg(test)]
mod tests;

use core::fmt;
use std::net::SocketAddr;

pub use header::{CSeq, Contacts, NameAddr, Params, SipUri, Via, is_token_byte, split_outside};

/// The largest UDP payload over IPv4: no datagram can be larger.
pub const MAX_DATAGRAM: usize = 65507;
/// The default size limit for [`Message::parse`]; larger messages get [`ParseError::TooLarge`].
pub const DEFAULT_MAX_SIZE: usize = 8192;

/// A request method. Methods are case-sensitive (RFC 3261 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE.
    Invite,
    /// ACK.
    Ack,
    /// BYE.
    Bye,
    /// CANCEL.
    Cancel,
    /// REGISTER.
    Register,
    /// OPTIONS.
    Options,
    /// Any other token, kept as written.
    Other(String),
}

impl Method {
    /// Parses a method token; `None` when it is not a token.
    pub fn parse(s: &str) -> Option<Self> {
        if s.is_empty() || !s.bytes().all(is_token_byte) {
            return None;
        }
        Some(match s {
            "INVITE" => Self::Invite,
            "ACK" => Self::Ack,
            "BYE" => Self::Bye,
            "CANCEL" => Self::Cancel,
            "REGISTER" => Self::Register,
            "OPTIONS" => Self::Options,
            o => Self::Other(o.to_string()),
        })
    }

    /// The method as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Invite => "INVITE",
            Self::Ack => "ACK",
            Self::Bye => "BYE",
            Self::Cancel => "CANCEL",
            Self::Register => "REGISTER",
            Self::Options => "OPTIONS",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a datagram is not an acceptable SIP message, and what to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Syntax error, missing mandatory header or body shorter than Content-Length: 400.
    #[error("malformed SIP message: {0}")]
    Malformed(&'static str),
    /// Larger than the configured maximum: 513.
    #[error("SIP message too large")]
    TooLarge,
}

impl ParseError {
    /// The status code a server answers with (when it can answer at all).
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) => 400,
            Self::TooLarge => 513,
        }
    }
}

/// Compact forms (RFC 3261 §7.3.3) and the canonical spelling of common headers.
const CANONICAL: &[(&str, Option<&str>)] = &[
    ("Via", Some("v")),
    ("From", Some("f")),
    ("To", Some("t")),
    ("Call-ID", Some("i")),
    ("Contact", Some("m")),
    ("Content-Length", Some("l")),
    ("Content-Type", Some("c")),
    ("Supported", Some("k")),
    ("Subject", Some("s")),
    ("Content-Encoding", Some("e")),
    ("CSeq", None),
    ("Max-Forwards", None),
    ("Expires", None),
    ("Min-Expires", None),
    ("Authorization", None),
    ("WWW-Authenticate", None),
    ("Proxy-Authenticate", None),
    ("Proxy-Authorization", None),
    ("Allow", None),
    ("Require", None),
    ("Unsupported", None),
    ("Route", None),
    ("Record-Route", None),
    ("User-Agent", None),
    ("Server", None),
];

/// The canonical name of a header: compact forms expanded, known names in their usual case,
/// others as written.
pub fn canonical_name(name: &str) -> String {
    for (long, short) in CANONICAL {
        if long.eq_ignore_ascii_case(name) || short.is_some_and(|s| s.eq_ignore_ascii_case(name)) {
            return (*long).to_string();
        }
    }
    name.to_string()
}

/// Headers in order; lookups are case-insensitive and see compact forms as their long names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// The value of the first header of this name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).next()
    }

    /// Every value of this name, in order (each header line once; not split on commas).
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = canonical_name(name);
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_str())
    }

    /// Appends a header.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((canonical_name(name), value.into()));
    }

    /// Replaces every header of this name with one value, at the first one's place.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let canon = canonical_name(name);
        match self
            .0
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(&canon))
        {
            Some(i) => {
                self.0[i].1 = value.into();
                let mut k = 0;
                self.0.retain(|(n, _)| {
                    k += 1;
                    k - 1 == i || !n.eq_ignore_ascii_case(&canon)
                });
            }
            None => self.push(&canon, value),
        }
    }

    /// Removes every header of this name.
    pub fn remove(&mut self, name: &str) {
        let canon = canonical_name(name);
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(&canon));
    }

    /// All headers as (name, value), in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Every comma-separated element of every header of this name, in order.
    pub fn list<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name)
            .flat_map(|v| split_outside(v, b','))
            .filter(|s| !s.is_empty())
    }
}

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request {
        /// The method.
        method: Method,
        /// The Request-URI, as written (see [`Message::request_uri`]).
        uri: String,
        /// The headers.
        headers: Headers,
        /// The body (exactly Content-Length bytes).
        body: Vec<u8>,
    },
    /// A response.
    Response {
        /// The status code, 100..=699.
        status: u16,
        /// The reason phrase.
        reason: String,
        /// The headers.
        headers: Headers,
        /// The body.
        body: Vec<u8>,
    },
}

impl Message {
    /// Parses with [`DEFAULT_MAX_SIZE`].
    pub fn parse(buf: &[u8]) -> Result<Self, ParseError> {
        Self::parse_with_limit(buf, DEFAULT_MAX_SIZE)
    }

    /// Parses a datagram no larger than `max_size` (capped at [`MAX_DATAGRAM`]), checking
    /// the mandatory headers (§8.1.1) and Content-Length framing (§18.3: bytes past the body
    /// are dropped, a short body is an error).
    pub fn parse_with_limit(buf: &[u8], max_size: usize) -> Result<Self, ParseError> {
        use ParseError::Malformed as M;
        if buf.len() > max_size.min(MAX_DATAGRAM) {
            return Err(ParseError::TooLarge);
        }
        // Leading CRLFs are tolerated (§7.5).
        let start = buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .ok_or(M("empty"))?;
        let buf = &buf[start..];
        let (head, body) = split_head(buf).ok_or(M("no end of headers"))?;
        let head = core::str::from_utf8(head).map_err(|_| M("headers not UTF-8"))?;
        let mut lines = unfold(head).into_iter();
        let first = lines.next().ok_or(M("empty"))?;
        let mut headers = Headers::default();
        for line in lines {
            let (name, value) = line.split_once(':').ok_or(M("header without colon"))?;
            let name = name.trim_end();
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(M("bad header name"));
            }
            headers.push(name, value.trim());
        }
        let mut msg = parse_start_line(&first, headers)?;
        let headers = msg.headers();
        let len = match headers.get("Content-Length") {
            Some(v) if v.len() <= 10 && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                v.parse::<usize>().map_err(|_| M("bad Content-Length"))?
            }
            Some(_) => return Err(M("bad Content-Length")),
            None => body.len(),
        };
        let body = body
            .get(..len)
            .ok_or(M("body shorter than Content-Length"))?;
        msg.check_mandatory()?;
        match &mut msg {
            Message::Request { body: b, .. } | Message::Response { body: b, .. } => {
                *b = body.to_vec()
            }
        }
        Ok(msg)
    }

    fn check_mandatory(&self) -> Result<(), ParseError> {
        use ParseError::Malformed as M;
        let h = self.headers();
        if self.via().ok_or(M("bad Via"))?.is_empty() {
            return Err(M("missing Via"));
        }
        self.from().ok_or(M("missing or bad From"))?;
        self.to().ok_or(M("missing or bad To"))?;
        if self.call_id().is_none_or(str::is_empty) {
            return Err(M("missing Call-ID"));
        }
        let cseq = self.cseq().ok_or(M("missing or bad CSeq"))?;
        if h.get("Contact").is_some() && self.contact().is_none() {
            return Err(M("bad Contact"));
        }
        if h.get("Expires").is_some() && self.expires().is_none() {
            return Err(M("bad Expires"));
        }
        if let Message::Request { method, .. } = self {
            if *method != cseq.method {
                return Err(M("CSeq method differs from request method"));
            }
            self.max_forwards()
                .ok_or(M("missing or bad Max-Forwards"))?;
        }
        Ok(())
    }

    /// The headers.
    pub fn headers(&self) -> &Headers {
        match self {
            Self::Request { headers, .. } | Self::Response { headers, .. } => headers,
        }
    }

    /// The headers, to change.
    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Self::Request { headers, .. } | Self::Response { headers, .. } => headers,
        }
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        match self {
            Self::Request { body, .. } | Self::Response { body, .. } => body,
        }
    }

    /// The Request-URI parsed as a SIP URI (requests with a `sip:`/`sips:` URI only).
    pub fn request_uri(&self) -> Option<SipUri> {
        match self {
            Self::Request { uri, .. } => SipUri::parse(uri),
            Self::Response { .. } => None,
        }
    }

    /// Every Via value, top first (several per header or several headers). `None` when one
    /// is malformed.
    pub fn via(&self) -> Option<Vec<Via>> {
        self.headers().list("Via").map(Via::parse).collect()
    }

    /// The From header.
    pub fn from(&self) -> Option<NameAddr> {
        NameAddr::parse(self.headers().get("From")?)
    }

    /// The To header.
    pub fn to(&self) -> Option<NameAddr> {
        NameAddr::parse(self.headers().get("To")?)
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.headers().get("Call-ID")
    }

    /// The CSeq header.
    pub fn cseq(&self) -> Option<CSeq> {
        CSeq::parse(self.headers().get("CSeq")?)
    }

    /// The Contact set: `*`, or every address of every Contact header (an empty list when
    /// there is none). `None` when malformed (`*` mixed with addresses included).
    pub fn contact(&self) -> Option<Contacts> {
        let items: Vec<&str> = self.headers().list("Contact").collect();
        if items.contains(&"*") {
            return (items.len() == 1).then_some(Contacts::Wildcard);
        }
        items
            .into_iter()
            .map(NameAddr::parse)
            .collect::<Option<Vec<_>>>()
            .map(Contacts::List)
    }

    /// The Expires header, in seconds.
    pub fn expires(&self) -> Option<u32> {
        parse_decimal(self.headers().get("Expires")?)
    }

    /// The Max-Forwards header.
    pub fn max_forwards(&self) -> Option<u32> {
        parse_decimal(self.headers().get("Max-Forwards")?)
    }

    /// The Content-Length header.
    pub fn content_length(&self) -> Option<usize> {
        parse_decimal(self.headers().get("Content-Length")?).map(|n| n as usize)
    }

    /// A response to `request` (§8.2.6.2): Via (all, in order), From, To, Call-ID and CSeq
    /// copied; `to_tag` added to To when it has no tag yet; no body (`Content-Length: 0`).
    pub fn response_to(request: &Message, status: u16, reason: &str, to_tag: Option<&str>) -> Self {
        let src = request.headers();
        let mut headers = Headers::default();
        for v in src.get_all("Via") {
            headers.push("Via", v);
        }
        for name in ["From", "To", "Call-ID", "CSeq"] {
            let Some(v) = src.get(name) else { continue };
            if name == "To"
                && let Some(tag) = to_tag
                && let Some(mut to) = NameAddr::parse(v)
                && to.tag().is_none()
            {
                to.params.set("tag", Some(tag.to_string()));
                headers.push(name, to.to_string());
            } else {
                headers.push(name, v);
            }
        }
        headers.push("Content-Length", "0");
        Self::Response {
            status,
            reason: reason.to_string(),
            headers,
            body: Vec::new(),
        }
    }

    /// RFC 3581 / RFC 3261 §18.2.1: on the top Via, fills a bare `rport` with the source port
    /// and adds `received` when rport is asked for or the sent-by host differs from the source
    /// address. Does nothing when the top Via is missing or malformed.
    pub fn stamp_via(&mut self, source: SocketAddr) {
        let headers = self.headers_mut();
        let Some(slot) = headers
            .0
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case("Via"))
        else {
            return;
        };
        let mut items: Vec<String> = split_outside(&slot.1, b',')
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let Some(mut top) = items.first().and_then(|s| Via::parse(s)) else {
            return;
        };
        let ip = source.ip().to_string();
        let wants_rport = top.rport().is_some();
        if wants_rport {
            top.params.set("rport", Some(source.port().to_string()));
        }
        let host = top.host.trim_start_matches('[').trim_end_matches(']');
        if wants_rport || host != ip {
            top.params.set("received", Some(ip));
        }
        items[0] = top.to_string();
        slot.1 = items.join(", ");
    }

    /// The message on the wire. Content-Length is always written, equal to the body length
    /// (replacing any given value, at its place; at the end otherwise).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body().len());
        match self {
            Self::Request { method, uri, .. } => {
                out.extend_from_slice(format!("{method} {uri} SIP/2.0\r\n").as_bytes());
            }
            Self::Response { status, reason, .. } => {
                out.extend_from_slice(format!("SIP/2.0 {status} {reason}\r\n").as_bytes());
            }
        }
        let len = self.body().len().to_string();
        let mut wrote_len = false;
        for (n, v) in self.headers().iter() {
            let v = if n == "Content-Length" {
                if wrote_len {
                    continue;
                }
                wrote_len = true;
                len.as_str()
            } else {
                v
            };
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        if !wrote_len {
            out.extend_from_slice(format!("Content-Length: {len}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body());
        out
    }
}

/// A decimal number of at most 10 digits that fits in u32.
fn parse_decimal(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Splits at the first empty line (CRLF CRLF, or bare LF LF): (head, body).
fn split_head(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut i = 0;
    while let Some(off) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + off;
        let next = nl + 1;
        if buf.get(next) == Some(&b'\n') {
            return Some((&buf[..nl], &buf[next + 1..]));
        }
        if buf.get(next) == Some(&b'\r') && buf.get(next + 1) == Some(&b'\n') {
            return Some((&buf[..nl], &buf[next + 2..]));
        }
        i = next;
    }
    None
}

/// Header lines with continuation lines (leading SP/HT) joined by one space (§7.3.1).
fn unfold(head: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for raw in head.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        match lines.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => {
                last.push(' ');
                last.push_str(line.trim());
            }
            _ => lines.push(line.to_string()),
        }
    }
    lines
}

fn parse_start_line(line: &str, headers: Headers) -> Result<Message, ParseError> {
    use ParseError::Malformed as M;
    if let Some(rest) = line.strip_prefix("SIP/") {
        let (version, rest) = rest.split_once(' ').ok_or(M("bad status line"))?;
        if version != "2.0" {
            return Err(M("bad SIP version"));
        }
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(M("bad status code"));
        }
        let status: u16 = code.parse().map_err(|_| M("bad status code"))?;
        if !(100..=699).contains(&status) {
            return Err(M("bad status code"));
        }
        return Ok(Message::Response {
            status,
            reason: reason.to_string(),
            headers,
            body: Vec::new(),
        });
    }
    let mut parts = line.split(' ');
    let (Some(m), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(M("bad request line"));
    };
    if version != "SIP/2.0" {
        return Err(M("bad SIP version"));
    }
    let method = Method::parse(m).ok_or(M("bad method"))?;
    let colon = uri.find(':').ok_or(M("bad Request-URI"))?;
    if colon == 0 || uri.bytes().any(|b| b.is_ascii_control()) {
        return Err(M("bad Request-URI"));
    }
    if uri[..colon].eq_ignore_ascii_case("sip") || uri[..colon].eq_ignore_ascii_case("sips") {
        SipUri::parse(uri).ok_or(M("bad Request-URI"))?;
    }
    Ok(Message::Request {
        method,
        uri: uri.to_string(),
        headers,
        body: Vec::new(),
    })
}
