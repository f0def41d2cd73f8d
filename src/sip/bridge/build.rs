//! Building the bridge's own requests and responses, and answering what the parser refused.

use std::net::SocketAddr;

use super::super::message::{Headers, Message, Method, NameAddr, SipUri};
use super::super::transaction::MAGIC_COOKIE;

/// The methods the bridge handles, for `Allow`.
pub(super) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER";

/// The product token in User-Agent and Server.
pub(super) const AGENT: &str = concat!("nasd/", env!("CARGO_PKG_VERSION"));

/// `host` or `[v6]`, for URIs and Via.
pub(super) fn host(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    }
}

/// `host:port`.
pub(super) fn hostport(addr: SocketAddr) -> String {
    format!("{}:{}", host(addr), addr.port())
}

/// Our Contact header value.
pub(super) fn contact(local: SocketAddr) -> String {
    format!("<sip:nasd@{}>", hostport(local))
}

/// A new request from us: Via (with `branch`), Max-Forwards, From, To, Call-ID, CSeq, then
/// `extra` headers and the body.
#[allow(clippy::too_many_arguments)]
pub(super) fn request(
    method: Method,
    uri: &str,
    local: SocketAddr,
    branch: &str,
    max_forwards: u32,
    from: &str,
    to: &str,
    call_id: &str,
    cseq: u32,
    extra: &[(&str, &str)],
    body: Vec<u8>,
) -> Message {
    let mut h = Headers::default();
    h.push(
        "Via",
        format!("SIP/2.0/UDP {};branch={branch};rport", hostport(local)),
    );
    h.push("Max-Forwards", max_forwards.to_string());
    h.push("From", from);
    h.push("To", to);
    h.push("Call-ID", call_id);
    h.push("CSeq", format!("{cseq} {method}"));
    for (n, v) in extra {
        h.push(n, *v);
    }
    h.push("Content-Length", body.len().to_string());
    Message::Request {
        method,
        uri: uri.to_string(),
        headers: h,
        body,
    }
}

/// A fresh RFC 3261 branch from a random token.
pub(super) fn branch(token: &str) -> String {
    format!("{MAGIC_COOKIE}{token}")
}

/// A response to `req` with our To tag, Server, and optional Contact and body.
pub(super) fn response(
    req: &Message,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
    contact: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Message {
    let mut r = Message::response_to(req, status, reason, to_tag);
    let h = r.headers_mut();
    h.remove("Content-Length");
    if let Some(c) = contact {
        h.push("Contact", c);
    }
    h.push("Server", AGENT);
    if let Some((ctype, bytes)) = body {
        h.push("Content-Type", ctype);
        h.push("Content-Length", bytes.len().to_string());
        if let Message::Response { body, .. } = &mut r {
            *body = bytes.to_vec();
        }
    } else {
        h.push("Content-Length", "0");
    }
    r
}

/// A response to `req` carrying `from`'s body and Content-Type (SDP passed through).
pub(super) fn relayed(
    req: &Message,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
    contact: Option<&str>,
    from: &Message,
) -> Message {
    let ctype = from
        .headers()
        .get("Content-Type")
        .filter(|_| !from.body().is_empty());
    response(
        req,
        status,
        reason,
        to_tag,
        contact,
        ctype.map(|t| (t, from.body())),
    )
}

/// The ACK for a 2xx to our INVITE (§13.2.2.4): a new branch, the dialog's From/To/Call-ID,
/// the INVITE's CSeq number, sent to the remote target.
pub(super) fn ack_for_2xx(
    resp: &Message,
    remote_uri: &str,
    local: SocketAddr,
    branch: &str,
) -> Option<Message> {
    let h = resp.headers();
    let seq = resp.cseq()?.seq;
    Some(request(
        Method::Ack,
        remote_uri,
        local,
        branch,
        70,
        h.get("From")?,
        h.get("To")?,
        h.get("Call-ID")?,
        seq,
        &[],
        Vec::new(),
    ))
}

/// The CANCEL for our pending INVITE (§9.1): same Request-URI, top Via, From, To, Call-ID
/// and CSeq number.
pub(super) fn cancel_for(invite: &Message) -> Option<Message> {
    let Message::Request { uri, headers, .. } = invite else {
        return None;
    };
    let mut h = Headers::default();
    h.push("Via", headers.list("Via").next()?);
    h.push("Max-Forwards", "70");
    for name in ["From", "To", "Call-ID"] {
        h.push(name, headers.get(name)?);
    }
    h.push("CSeq", format!("{} CANCEL", invite.cseq()?.seq));
    h.push("Content-Length", "0");
    Some(Message::Request {
        method: Method::Cancel,
        uri: uri.clone(),
        headers: h,
        body: Vec::new(),
    })
}

/// The remote target (Contact URI) of a message, if it has one.
pub(super) fn contact_uri(msg: &Message) -> Option<String> {
    msg.headers()
        .list("Contact")
        .next()
        .and_then(NameAddr::parse)
        .map(|n| n.uri)
        .filter(|u| usable_uri(u))
}

/// Whether a peer's URI can be a Request-URI of ours: a SIP URI without controls or spaces.
pub(super) fn usable_uri(u: &str) -> bool {
    u.bytes().all(|b| b > b' ' && b != 0x7f) && SipUri::parse(u).is_some()
}

/// A response to a request the parser refused (400 or 513), built from the raw header lines
/// it has: Via, From, To, Call-ID and CSeq are copied as written. `None` when the datagram
/// is not a request (responses and junk get no answer) or is an ACK.
pub(super) fn raw_error_response(buf: &[u8], status: u16, reason: &str) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(&buf[..buf.len().min(16 * 1024)]);
    let mut lines = text.split("\r\n").map(|l| l.trim_end_matches('\n'));
    let first = lines.by_ref().find(|l| !l.trim().is_empty())?;
    let mut words = first.split_whitespace();
    let method = words.next()?;
    if method.starts_with("SIP/") || method == "ACK" || !first.ends_with("SIP/2.0") {
        return None;
    }
    let mut out = format!("SIP/2.0 {status} {reason}\r\n");
    let mut vias = 0;
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let canon = super::super::message::canonical_name(name.trim());
        if matches!(canon.as_str(), "Via" | "From" | "To" | "Call-ID" | "CSeq") {
            vias += usize::from(canon == "Via");
            out.push_str(&format!("{canon}: {}\r\n", value.trim()));
        }
    }
    if vias == 0 {
        return None;
    }
    out.push_str(&format!("Server: {AGENT}\r\nContent-Length: 0\r\n\r\n"));
    Some(out.into_bytes())
}
