//! Calls: routing, serial hunting over lines, the two legs of the B2BUA, CANCEL, BYE,
//! re-INVITE, 2xx retransmission and the call record.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::super::dialplan::Target;
use super::super::message::{Message, Method, NameAddr};
use super::super::transaction::TransactionId;
use super::super::view::CallView;
use super::{Bridge, BridgeEvent, ClientRole, LineState, Now, build};
use crate::accounting::CallRecord;

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallState {
    /// Looking for a line / INVITE sent, nothing heard yet.
    Routing,
    /// A line is ringing.
    Ringing,
    /// Answered.
    Answered,
}

/// The leg towards the line being rung or connected.
#[derive(Debug)]
pub(crate) struct Line {
    pub(crate) account: String,
    pub(crate) port: Option<String>,
    /// Our From with our tag; the To gets the line's tag once answered.
    d: Dialog,
    invite: Message,
    ring_deadline: Option<Instant>,
    answered: bool,
    /// Our ACK for the line's 2xx, repeated when the 2xx is.
    ack: Option<Vec<u8>>,
}

/// One leg's dialog as the bridge sees it, for the requests it sends on that leg.
#[derive(Debug)]
struct Dialog {
    call_id: String,
    /// Our side (From of our requests), with our tag.
    local: String,
    /// The peer's side (To of our requests), with its tag.
    remote: String,
    /// The peer's Contact: the Request-URI of our requests.
    remote_uri: String,
    /// Where the peer's datagrams come from (rport), where ours go.
    target: SocketAddr,
    /// Our last CSeq on this leg.
    cseq: u32,
}

/// A 2xx we repeat until its ACK arrives (§13.3.1.4).
#[derive(Debug)]
struct Retx {
    peer: SocketAddr,
    bytes: Vec<u8>,
    call_id: String,
    cseq: u32,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

/// One call: the caller's leg (A) and the current line's leg.
#[derive(Debug)]
pub(crate) struct Call {
    id: u64,
    pub(crate) caller: String,
    dialled: String,
    number: String,
    state: CallState,
    started_unix: u64,
    answered_unix: Option<u64>,
    attempts: u32,
    a_invite: Message,
    a_tx: Option<TransactionId>,
    a_tag: String,
    /// The caller's leg: local = the caller's To with our tag, remote = the caller's From.
    a: Dialog,
    max_forwards: u32,
    candidates: VecDeque<String>,
    hunt: bool,
    busy_seen: bool,
    last_status: Option<u16>,
    line: Option<Line>,
    /// The last line rung (account, port), for the record.
    last_line: Option<(String, Option<String>)>,
    /// The dialplan rule's attributes (Kamailio `attrs`), for the record.
    attrs: String,
    retx: Vec<Retx>,
}

impl Call {
    pub(crate) fn view(&self) -> CallView {
        CallView {
            id: self.id,
            call_id: self.a.call_id.clone(),
            caller: self.caller.clone(),
            callee: self.dialled.clone(),
            line: self.line.as_ref().map(|l| l.account.clone()),
            port: self.line.as_ref().and_then(|l| l.port.clone()),
            state: match self.state {
                CallState::Routing => "routing",
                CallState::Ringing => "ringing",
                CallState::Answered => "answered",
            }
            .to_string(),
            started: self.started_unix,
            answered: self.answered_unix,
            attempts: self.attempts,
        }
    }

    /// The modem port of the answered line, if any.
    pub(crate) fn answered_port(&self) -> Option<&str> {
        self.line
            .as_ref()
            .filter(|l| l.answered)
            .and_then(|l| l.port.as_deref())
    }
}

/// Keeps a user part safe to put back into a URI and a quoted display name.
fn clean_user(s: &str) -> String {
    let s: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/%#".contains(*c))
        .take(64)
        .collect();
    if s.is_empty() { "anonymous".into() } else { s }
}

/// The SIP status that makes the bridge try the next line.
fn hunts_on(status: u16) -> bool {
    matches!(status, 486 | 408 | 480 | 503)
}

fn disposition(status: u16) -> &'static str {
    match status {
        200..=299 => "answered",
        486 | 600 => "busy",
        408 => "no-answer",
        404 | 484 => "not-found",
        480 => "unavailable",
        487 => "cancelled",
        603 => "declined",
        _ => "failed",
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        491 => "Request Pending",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        _ => "Failed",
    }
}

/// A URI's host:port as a socket address, when the host is an IP literal.
fn uri_addr(uri: &str) -> Option<SocketAddr> {
    let u = super::super::message::SipUri::parse(uri)?;
    let ip: IpAddr = u.host.trim_matches(['[', ']']).parse().ok()?;
    Some(SocketAddr::new(ip, u.port.unwrap_or(5060)))
}

impl Bridge {
    /// Where a dialled number goes: the number to send on, the accounts to try, whether it
    /// is a hunt group, and the matching rule's attributes.
    fn route(&self, dialled: &str) -> Option<(String, VecDeque<String>, bool, String)> {
        if let Some(t) = self.dialplan.translate(dialled) {
            return match t.target {
                Target::Account(a) => Some((t.number, VecDeque::from([a]), false, t.attrs)),
                Target::HuntGroup(g) => {
                    let group = self.config.groups.iter().find(|x| x.name == g)?;
                    let lines = group.lines.iter().cloned().collect();
                    Some((t.number, lines, true, t.attrs))
                }
            };
        }
        self.config
            .accounts
            .iter()
            .find(|a| {
                a.name == dialled
                    || a.extension.as_deref() == Some(dialled)
                    || a.aliases.iter().any(|x| x == dialled)
            })
            .map(|a| {
                let lines = VecDeque::from([a.name.clone()]);
                (dialled.to_string(), lines, false, String::new())
            })
    }

    /// Answers a request in its server transaction with a bare status.
    fn refuse(&mut self, now: Now, id: TransactionId, req: &Message, status: u16) {
        let tag = self.token();
        let r = build::response(req, status, reason(status), Some(&tag), None, None);
        self.respond(now, id, r);
    }

    pub(super) fn on_invite(
        &mut self,
        now: Now,
        id: TransactionId,
        req: Message,
        from: SocketAddr,
    ) {
        let mf = req.max_forwards().unwrap_or(70);
        if mf == 0 {
            return self.refuse(now, id, &req, 483);
        }
        let Some(a_call_id) = req.call_id().map(str::to_string) else {
            return self.refuse(now, id, &req, 400);
        };
        if self.by_call_id.contains_key(&a_call_id) {
            return self.refuse(now, id, &req, 482);
        }
        if self.calls.len() >= self.config.max_calls {
            return self.refuse(now, id, &req, 503);
        }
        let dialled = req
            .request_uri()
            .and_then(|u| u.user)
            .map(|u| clean_user(&u))
            .unwrap_or_default();
        let caller = req
            .from()
            .and_then(|f| f.sip_uri())
            .and_then(|u| u.user)
            .map_or_else(|| "anonymous".to_string(), |u| clean_user(&u));
        let a_tag = self.token();
        let base = CallRecord {
            call_id: Some(a_call_id.clone()),
            caller: Some(caller.clone()),
            callee: Some(dialled.clone()),
            start: Some(now.unix),
            end: Some(now.unix),
            ..Default::default()
        };
        let Some((number, candidates, hunt, attrs)) = self.route(&dialled) else {
            tracing::info!(caller = %caller, callee = %dialled, "SIP call: no route (404)");
            self.refuse(now, id, &req, 404);
            self.events.push_back(BridgeEvent::Record(CallRecord {
                disposition: Some("not-found".into()),
                status: Some(404),
                ..base
            }));
            return;
        };
        self.stats.calls += 1;
        let mut a_to = req.headers().get("To").unwrap_or_default().to_string();
        if let Some(mut t) = NameAddr::parse(&a_to) {
            t.params.set("tag", Some(a_tag.clone()));
            a_to = t.to_string();
        }
        let call_no = self.next_call;
        self.next_call += 1;
        let call = Call {
            id: call_no,
            caller,
            dialled,
            number,
            state: CallState::Routing,
            started_unix: now.unix,
            answered_unix: None,
            attempts: 0,
            a_tx: Some(id),
            a: Dialog {
                call_id: a_call_id.clone(),
                local: a_to,
                remote: req.headers().get("From").unwrap_or_default().to_string(),
                remote_uri: build::contact_uri(&req)
                    .unwrap_or_else(|| format!("sip:{}", build::hostport(from))),
                target: from,
                cseq: 1,
            },
            a_tag,
            max_forwards: mf - 1,
            candidates,
            hunt,
            busy_seen: false,
            last_status: None,
            line: None,
            last_line: None,
            attrs,
            retx: Vec::new(),
            a_invite: req,
        };
        tracing::info!(call = call_no, caller = %call.caller, callee = %call.dialled, lines = call.candidates.len(), "SIP call");
        self.calls.insert(call_no, call);
        self.by_call_id.insert(a_call_id, call_no);
        self.by_server_tx.insert(id, call_no);
        self.next_line(now, call_no);
    }

    /// Rings the next usable line of the call, or gives up.
    fn next_line(&mut self, now: Now, cid: u64) {
        loop {
            let Some(call) = self.calls.get_mut(&cid) else {
                return;
            };
            let Some(account) = call.candidates.pop_front() else {
                return self.give_up(now, cid);
            };
            let port = self.config.account(&account).and_then(|a| a.port.clone());
            // A modem line takes one call at a time; a phone decides for itself.
            if port.is_some() && self.line_calls.contains_key(&account) {
                call.busy_seen = true;
                continue;
            }
            if let Some(p) = &port {
                match self.port_state(p) {
                    LineState::Free => {}
                    LineState::Busy => {
                        if let Some(c) = self.calls.get_mut(&cid) {
                            c.busy_seen = true;
                        }
                        continue;
                    }
                    LineState::Down => continue,
                }
            }
            let Some(binding) = self.lookup(now.at, &account).into_iter().next() else {
                continue;
            };
            self.ring(now, cid, account, port, binding.contact, binding.source);
            return;
        }
    }

    fn ring(
        &mut self,
        now: Now,
        cid: u64,
        account: String,
        port: Option<String>,
        contact: String,
        target: SocketAddr,
    ) {
        let (local, host) = (self.local, build::host(self.local));
        let call_id = format!("{}@{host}", self.token());
        let branch = build::branch(&self.token());
        let tag = self.token();
        let ring_timeout = self.config.ring_timeout;
        let Some(call) = self.calls.get_mut(&cid) else {
            return;
        };
        let from = format!("\"{0}\" <sip:{0}@{host}>;tag={tag}", call.caller);
        let to = format!("<sip:{}@{host}>", call.number);
        let ctype = call
            .a_invite
            .headers()
            .get("Content-Type")
            .map(str::to_string);
        let body = call.a_invite.body().to_vec();
        let contact_hdr = build::contact(local);
        let mut extra = vec![
            ("Contact", contact_hdr.as_str()),
            ("Allow", build::ALLOW),
            ("User-Agent", build::AGENT),
        ];
        if let Some(t) = &ctype {
            extra.push(("Content-Type", t));
        }
        let invite = build::request(
            Method::Invite,
            &contact,
            local,
            &branch,
            call.max_forwards,
            &from,
            &to,
            &call_id,
            1,
            &extra,
            body,
        );
        call.attempts += 1;
        call.last_line = Some((account.clone(), port.clone()));
        let attempt = call.attempts;
        tracing::info!(call = cid, line = %account, attempt, "SIP call: ringing line");
        call.line = Some(Line {
            account: account.clone(),
            port,
            d: Dialog {
                call_id: call_id.clone(),
                local: from,
                remote: to,
                remote_uri: contact,
                target,
                cseq: 1,
            },
            invite: invite.clone(),
            ring_deadline: now.at.checked_add(ring_timeout),
            answered: false,
            ack: None,
        });
        match self.tl.send_request(now.at, invite, target) {
            Ok(tx) => {
                self.clients
                    .insert(tx, ClientRole::LineInvite { call: cid, attempt });
                if self
                    .config
                    .account(&account)
                    .is_some_and(|a| a.port.is_some())
                {
                    self.line_calls.insert(account, cid);
                }
                self.by_call_id.insert(call_id, cid);
            }
            Err(e) => {
                tracing::warn!(call = cid, error = %e, "SIP call: cannot ring line");
                if let Some(c) = self.calls.get_mut(&cid) {
                    c.line = None;
                    c.last_status = Some(503);
                }
                self.next_line(now, cid);
            }
        }
    }

    /// No line left: the final answer to the caller.
    fn give_up(&mut self, now: Now, cid: u64) {
        let Some(call) = self.calls.get(&cid) else {
            return;
        };
        let status = if call.busy_seen || call.hunt {
            486
        } else {
            match call.last_status {
                Some(408) | None => 480,
                Some(s) => s,
            }
        };
        let disp = match (status, call.last_status) {
            (486, Some(408)) if !call.busy_seen => "no-answer",
            (480, Some(408)) => "no-answer",
            _ => disposition(status),
        };
        self.answer_caller(now, cid, status);
        self.end_call(now, cid, disp, status, false);
    }

    /// A final non-2xx to the caller's INVITE (if it is still pending).
    fn answer_caller(&mut self, now: Now, cid: u64, status: u16) {
        let Some(call) = self.calls.get_mut(&cid) else {
            return;
        };
        let Some(tx) = call.a_tx.take() else {
            return;
        };
        let r = build::response(
            &call.a_invite,
            status,
            reason(status),
            Some(&call.a_tag),
            None,
            None,
        );
        self.by_server_tx.remove(&tx);
        self.respond(now, tx, r);
    }

    /// Removes the call and writes its record.
    fn end_call(&mut self, now: Now, cid: u64, disp: &str, status: u16, notify_port: bool) {
        let Some(call) = self.calls.remove(&cid) else {
            return;
        };
        self.by_call_id.remove(&call.a.call_id);
        if let Some(tx) = call.a_tx {
            self.by_server_tx.remove(&tx);
        }
        let (line, port, answered) = match &call.line {
            Some(l) => {
                self.by_call_id.remove(&l.d.call_id);
                if self.line_calls.get(&l.account) == Some(&cid) {
                    self.line_calls.remove(&l.account);
                }
                (Some(l.account.clone()), l.port.clone(), l.answered)
            }
            None => match &call.last_line {
                Some((a, p)) => (Some(a.clone()), p.clone(), false),
                None => (None, None, false),
            },
        };
        if answered
            && notify_port
            && let Some(p) = &port
        {
            self.events.push_back(BridgeEvent::Ended {
                call: cid,
                port: p.clone(),
            });
        }
        tracing::info!(call = cid, disposition = disp, status, "SIP call ended");
        self.events.push_back(BridgeEvent::Record(CallRecord {
            call_id: Some(call.a.call_id),
            caller: Some(call.caller),
            callee: Some(call.dialled),
            line,
            port,
            start: Some(call.started_unix),
            answer: call.answered_unix,
            end: Some(now.unix),
            disposition: Some(disp.to_string()),
            duration_s: call.answered_unix.map(|a| now.unix.saturating_sub(a)),
            attempts: Some(call.attempts),
            status: Some(status),
            attrs: Some(call.attrs).filter(|a| !a.is_empty()),
        }));
    }

    pub(super) fn on_line_response(&mut self, now: Now, cid: u64, attempt: u32, resp: Message) {
        let Message::Response { status, .. } = &resp else {
            return;
        };
        let status = *status;
        let current = self
            .calls
            .get(&cid)
            .is_some_and(|c| c.attempts == attempt && c.line.as_ref().is_some_and(|l| !l.answered));
        if !current {
            if (200..300).contains(&status) {
                self.reject_late_2xx(now, &resp);
            }
            return;
        }
        match status {
            100 => {}
            101..=199 => self.relay_provisional(now, cid, &resp),
            200..=299 => self.line_answered(now, cid, resp),
            _ => {
                let Some(call) = self.calls.get_mut(&cid) else {
                    return;
                };
                if hunts_on(status) {
                    if status == 486 {
                        call.busy_seen = true;
                    }
                    call.last_status = Some(status);
                    self.drop_line(cid);
                    self.next_line(now, cid);
                } else {
                    self.answer_caller(now, cid, status);
                    self.end_call(now, cid, disposition(status), status, false);
                }
            }
        }
    }

    /// Forgets the current line (its transaction is over or cancelled).
    fn drop_line(&mut self, cid: u64) {
        if let Some(call) = self.calls.get_mut(&cid)
            && let Some(l) = call.line.take()
        {
            self.by_call_id.remove(&l.d.call_id);
            if self.line_calls.get(&l.account) == Some(&cid) {
                self.line_calls.remove(&l.account);
            }
        }
    }

    pub(super) fn on_line_failure(&mut self, now: Now, cid: u64, attempt: u32, status: u16) {
        let current = self.calls.get(&cid).is_some_and(|c| c.attempts == attempt);
        if !current {
            return;
        }
        if let Some(c) = self.calls.get_mut(&cid) {
            c.last_status = Some(status);
        }
        self.drop_line(cid);
        self.next_line(now, cid);
    }

    fn relay_provisional(&mut self, now: Now, cid: u64, resp: &Message) {
        let contact = build::contact(self.local);
        let Some(call) = self.calls.get_mut(&cid) else {
            return;
        };
        call.state = CallState::Ringing;
        let Some(tx) = call.a_tx else { return };
        let Message::Response { status, reason, .. } = resp else {
            return;
        };
        let r = build::relayed(
            &call.a_invite,
            *status,
            reason,
            Some(&call.a_tag),
            Some(&contact),
            resp,
        );
        self.respond(now, tx, r);
    }

    fn line_answered(&mut self, now: Now, cid: u64, resp: Message) {
        let local = self.local;
        let ack_branch = build::branch(&self.token());
        let Some(call) = self.calls.get_mut(&cid) else {
            return;
        };
        let Some(line) = call.line.as_mut() else {
            return;
        };
        if let Some(to) = resp.headers().get("To") {
            line.d.remote = to.to_string();
        }
        if let Some(uri) = build::contact_uri(&resp) {
            line.d.remote_uri = uri;
        }
        line.answered = true;
        line.ring_deadline = None;
        let ack =
            build::ack_for_2xx(&resp, &line.d.remote_uri, local, &ack_branch).map(|m| m.to_bytes());
        if let Some(a) = &ack {
            self.tl.transmit_raw(line.d.target, a.clone());
        }
        line.ack = ack;
        let Some(tx) = call.a_tx.take() else {
            // The caller went away meanwhile: hang the line up.
            self.bye_leg(now, cid, false);
            self.end_call(now, cid, "cancelled", 487, false);
            return;
        };
        self.by_server_tx.remove(&tx);
        call.state = CallState::Answered;
        call.answered_unix = Some(now.unix);
        let r = build::relayed(
            &call.a_invite,
            200,
            "OK",
            Some(&call.a_tag),
            Some(&build::contact(local)),
            &resp,
        );
        let t1 = self.tl.config().t1;
        call.retx.push(Retx {
            peer: call.a.target,
            bytes: r.to_bytes(),
            call_id: call.a.call_id.clone(),
            cseq: call.a_invite.cseq().map_or(0, |c| c.seq),
            next: now.at + t1,
            interval: t1,
            give_up: now.at + super::ACK_WAIT,
        });
        self.stats.answered += 1;
        let port = call.line.as_ref().and_then(|l| l.port.clone());
        tracing::info!(call = cid, line = ?call.line.as_ref().map(|l| &l.account), "SIP call answered");
        if let Some(port) = port {
            self.events.push_back(BridgeEvent::Answered {
                call: cid,
                port,
                caller: call.caller.clone(),
            });
        }
        self.respond(now, tx, r);
    }

    /// A 2xx for an INVITE the bridge no longer wants: ACK it and hang up (§15).
    pub(super) fn reject_late_2xx(&mut self, now: Now, resp: &Message) {
        if resp.cseq().map(|c| c.method) != Some(Method::Invite) {
            return;
        }
        let Some(uri) = build::contact_uri(resp) else {
            return;
        };
        let Some(target) = uri_addr(&uri) else {
            return;
        };
        let local = self.local;
        let (b1, b2) = (build::branch(&self.token()), build::branch(&self.token()));
        if let Some(ack) = build::ack_for_2xx(resp, &uri, local, &b1) {
            self.tl.transmit(target, &ack);
        }
        let h = resp.headers();
        let (Some(from), Some(to), Some(cid), Some(seq)) =
            (h.get("From"), h.get("To"), h.get("Call-ID"), resp.cseq())
        else {
            return;
        };
        let bye = build::request(
            Method::Bye,
            &uri,
            local,
            &b2,
            70,
            from,
            to,
            cid,
            seq.seq + 1,
            &[],
            Vec::new(),
        );
        if let Ok(tx) = self.tl.send_request(now.at, bye, target) {
            self.clients.insert(tx, ClientRole::Fire);
        }
    }

    /// Sends a request on one leg of an established call: towards the caller (`to_a`) or
    /// the line. Returns the client transaction.
    fn leg_request(
        &mut self,
        now: Now,
        cid: u64,
        to_a: bool,
        method: Method,
        extra: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Option<TransactionId> {
        let local = self.local;
        let branch = build::branch(&self.token());
        let call = self.calls.get_mut(&cid)?;
        let d = if to_a {
            &mut call.a
        } else {
            &mut call.line.as_mut()?.d
        };
        d.cseq += 1;
        let msg = build::request(
            method,
            &d.remote_uri,
            local,
            &branch,
            70,
            &d.local,
            &d.remote,
            &d.call_id,
            d.cseq,
            extra,
            body,
        );
        let target = d.target;
        self.tl.send_request(now.at, msg, target).ok()
    }

    /// BYE on one leg (fire and forget).
    fn bye_leg(&mut self, now: Now, cid: u64, to_a: bool) {
        if let Some(tx) = self.leg_request(now, cid, to_a, Method::Bye, &[], Vec::new()) {
            self.clients.insert(tx, ClientRole::Fire);
        }
    }

    /// CANCEL the ringing line's INVITE.
    fn cancel_line(&mut self, now: Now, cid: u64) {
        let Some(cancel) = self
            .calls
            .get(&cid)
            .and_then(|c| c.line.as_ref())
            .filter(|l| !l.answered)
            .and_then(|l| Some((build::cancel_for(&l.invite)?, l.d.target)))
        else {
            return;
        };
        if let Ok(tx) = self.tl.send_request(now.at, cancel.0, cancel.1) {
            self.clients.insert(tx, ClientRole::Fire);
        }
        self.drop_line(cid);
    }

    pub(super) fn on_cancel(&mut self, now: Now, id: TransactionId, req: &Message) {
        let target = self.tl.cancel_target(req);
        let cid = target.and_then(|t| self.by_server_tx.get(&t).copied());
        let Some(cid) = cid else {
            return self.refuse(now, id, req, 481);
        };
        let tag = self.calls.get(&cid).map(|c| c.a_tag.clone());
        let r = build::response(req, 200, "OK", tag.as_deref(), None, None);
        self.respond(now, id, r);
        self.cancel_line(now, cid);
        self.answer_caller(now, cid, 487);
        self.end_call(now, cid, "cancelled", 487, false);
    }

    pub(super) fn on_in_dialog(&mut self, now: Now, id: TransactionId, req: Message) {
        let Some((cid, from_a)) = req.call_id().and_then(|c| {
            let cid = *self.by_call_id.get(c)?;
            Some((cid, self.calls.get(&cid)?.a.call_id == c))
        }) else {
            return self.refuse(now, id, &req, 481);
        };
        let Message::Request { method, .. } = &req else {
            return;
        };
        match method {
            Method::Bye => {
                let r = build::response(&req, 200, "OK", None, None, None);
                self.respond(now, id, r);
                let answered = self
                    .calls
                    .get(&cid)
                    .is_some_and(|c| c.state == CallState::Answered);
                if answered {
                    self.bye_leg(now, cid, !from_a);
                    self.end_call(now, cid, "answered", 200, true);
                } else {
                    self.cancel_line(now, cid);
                    self.answer_caller(now, cid, 487);
                    self.end_call(now, cid, "cancelled", 487, false);
                }
            }
            Method::Invite => {
                let answered = self
                    .calls
                    .get(&cid)
                    .is_some_and(|c| c.state == CallState::Answered);
                if !answered {
                    return self.refuse(now, id, &req, 491);
                }
                let contact = build::contact(self.local);
                let ctype = req.headers().get("Content-Type").map(str::to_string);
                let mut extra = vec![("Contact", contact.as_str())];
                if let Some(t) = &ctype {
                    extra.push(("Content-Type", t.as_str()));
                }
                let body = req.body().to_vec();
                match self.leg_request(now, cid, !from_a, Method::Invite, &extra, body) {
                    Some(tx) => {
                        self.clients.insert(
                            tx,
                            ClientRole::ReInvite {
                                call: cid,
                                server: id,
                                from_a,
                            },
                        );
                    }
                    None => self.refuse(now, id, &req, 500),
                }
            }
            _ => {
                let r = build::response(&req, 200, "OK", None, None, None);
                self.respond(now, id, r);
            }
        }
    }

    pub(super) fn on_reinvite_response(
        &mut self,
        now: Now,
        cid: u64,
        server: TransactionId,
        from_a: bool,
        resp: Message,
    ) {
        let Message::Response { status, reason, .. } = &resp else {
            return;
        };
        if *status < 200 {
            return;
        }
        let Some(orig) = self.tl.request(server).cloned() else {
            return;
        };
        let local = self.local;
        let ack_branch = build::branch(&self.token());
        let Some(call) = self.calls.get_mut(&cid) else {
            return;
        };
        if *status >= 300 {
            let r = build::response(&orig, *status, reason, None, None, None);
            let _ = self.tl.respond(now.at, server, r);
            return;
        }
        // Our ACK on the answering leg, our 2xx to the originator.
        let (remote, target) = if from_a {
            call.line
                .as_ref()
                .map(|l| (l.d.remote_uri.clone(), l.d.target))
                .unwrap_or((call.a.remote_uri.clone(), call.a.target))
        } else {
            (call.a.remote_uri.clone(), call.a.target)
        };
        if let Some(ack) = build::ack_for_2xx(&resp, &remote, local, &ack_branch) {
            self.tl.transmit(target, &ack);
        }
        let r = build::relayed(&orig, 200, "OK", None, Some(&build::contact(local)), &resp);
        let peer = if from_a {
            call.a.target
        } else {
            call.line.as_ref().map_or(call.a.target, |l| l.d.target)
        };
        let t1 = self.tl.config().t1;
        call.retx.push(Retx {
            peer,
            bytes: r.to_bytes(),
            call_id: orig.call_id().unwrap_or_default().to_string(),
            cseq: orig.cseq().map_or(0, |c| c.seq),
            next: now.at + t1,
            interval: t1,
            give_up: now.at + super::ACK_WAIT,
        });
        let _ = self.tl.respond(now.at, server, r);
    }

    pub(super) fn on_reinvite_timeout(&mut self, now: Now, _cid: u64, server: TransactionId) {
        if let Some(orig) = self.tl.request(server).cloned() {
            let r = build::response(&orig, 408, "Request Timeout", None, None, None);
            let _ = self.tl.respond(now.at, server, r);
        }
    }

    /// The caller's INVITE transaction timed out without a final answer (a bound on very
    /// long hunting): give up.
    pub(super) fn on_caller_timeout(&mut self, now: Now, cid: u64) {
        if let Some(c) = self.calls.get_mut(&cid) {
            c.a_tx = None;
        }
        self.cancel_line(now, cid);
        self.end_call(now, cid, "failed", 408, false);
    }

    /// ACKs for 2xx, and 2xx retransmissions from lines after our ACK.
    pub(super) fn on_stray(&mut self, m: Message) {
        // A stray message of no dialog of ours is dropped: answering it (say, ACK and BYE for
        // a forged 2xx) would let anyone aim the bridge at a third party.
        let Some(cid) = m.call_id().and_then(|c| self.by_call_id.get(c).copied()) else {
            return;
        };
        match &m {
            Message::Request {
                method: Method::Ack,
                ..
            } => {
                let (call_id, seq) = (
                    m.call_id().unwrap_or_default(),
                    m.cseq().map_or(0, |c| c.seq),
                );
                if let Some(c) = self.calls.get_mut(&cid) {
                    c.retx.retain(|r| !(r.call_id == call_id && r.cseq == seq));
                }
            }
            Message::Response {
                status: 200..=299, ..
            } => {
                let again = self
                    .calls
                    .get(&cid)
                    .and_then(|c| c.line.as_ref())
                    .filter(|l| Some(l.d.call_id.as_str()) == m.call_id())
                    .and_then(|l| Some((l.d.target, l.ack.clone()?)));
                if let Some((target, ack)) = again {
                    self.tl.transmit_raw(target, ack);
                }
            }
            _ => {}
        }
    }

    /// Ring timeouts and 2xx retransmissions.
    pub(super) fn call_timers(&mut self, now: Now) {
        let t2 = self.tl.config().t2;
        let mut rung_out = Vec::new();
        let mut unacked = Vec::new();
        let mut sends = Vec::new();
        for (cid, c) in &mut self.calls {
            if c.line
                .as_ref()
                .and_then(|l| l.ring_deadline)
                .is_some_and(|d| d <= now.at)
            {
                rung_out.push(*cid);
            }
            for r in &mut c.retx {
                if r.give_up <= now.at {
                    unacked.push(*cid);
                } else if r.next <= now.at {
                    sends.push((r.peer, r.bytes.clone()));
                    r.interval = (r.interval * 2).min(t2);
                    r.next = now.at + r.interval;
                }
            }
        }
        for (peer, bytes) in sends {
            self.tl.transmit_raw(peer, bytes);
        }
        for cid in rung_out {
            tracing::info!(
                call = cid,
                "SIP call: line did not answer in time, next line"
            );
            self.cancel_line(now, cid);
            if let Some(c) = self.calls.get_mut(&cid) {
                c.last_status = Some(408);
            }
            self.next_line(now, cid);
        }
        unacked.dedup();
        for cid in unacked {
            tracing::warn!(call = cid, "SIP call: 2xx never acknowledged, hanging up");
            self.bye_leg(now, cid, true);
            self.bye_leg(now, cid, false);
            self.end_call(now, cid, "failed", 408, true);
        }
    }

    /// The earliest ring timeout or 2xx retransmission.
    pub(super) fn call_deadline(&self) -> Option<Instant> {
        self.calls
            .values()
            .flat_map(|c| {
                let ring = c.line.as_ref().and_then(|l| l.ring_deadline);
                ring.into_iter()
                    .chain(c.retx.iter().map(|r| r.next.min(r.give_up)))
            })
            .min()
    }

    /// The PPP session on a modem port ended: hang up the answered call on it. Whether there
    /// was one.
    pub fn hangup_port(&mut self, now: Now, port: &str) -> bool {
        let Some(cid) = self
            .calls
            .iter()
            .find(|(_, c)| c.answered_port() == Some(port))
            .map(|(id, _)| *id)
        else {
            return false;
        };
        tracing::info!(
            call = cid,
            port,
            "PPP session ended: hanging up the SIP call"
        );
        self.bye_leg(now, cid, true);
        self.bye_leg(now, cid, false);
        self.end_call(now, cid, "answered", 200, false);
        true
    }
}

impl Bridge {
    /// nasd is stopping: every call ends now (answered ones with BYE on both legs, ringing
    /// ones with CANCEL and 503 to the caller), each with its record.
    pub fn shutdown(&mut self, now: Now) {
        let ids: Vec<u64> = self.calls.keys().copied().collect();
        for cid in ids {
            let answered = self
                .calls
                .get(&cid)
                .is_some_and(|c| c.state == CallState::Answered);
            if answered {
                self.bye_leg(now, cid, true);
                self.bye_leg(now, cid, false);
                self.end_call(now, cid, "answered", 200, false);
            } else {
                self.cancel_line(now, cid);
                self.answer_caller(now, cid, 503);
                self.end_call(now, cid, "failed", 503, false);
            }
        }
    }
}
