//! One port of the pool, for its whole life: open (with a UUCP lock, and exponential
//! back-off while it fails), keep the modem initialised and answer calls (modem mode) or
//! start PPP as soon as the line is open (direct mode), run each call's PPP session, hang
//! up and get ready for the next call. A USB modem that disappears is reopened when it
//! comes back; nothing spins.

use crate::driver::serial::{Port, PortSettings};
use crate::driver::session::{self, CarrierWatch, Hooks, HostPackets};
use crate::proto::auth::{AuthRequest, AuthResult, Credentials, Grant};
use crate::proto::link::{DownReason, Link, LinkConfig, LinkStats, SessionInfo};
use crate::proto::login::{Login, LoginConfig, LoginEvent};
use crate::proto::modem::NoCarrierWatch;
use crate::proto::modem::{ConnectInfo, Modem, ModemAction, ModemConfig, ModemEvent, ModemState};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// How a port is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortMode {
    /// A modem: init chat, RING, ATA, CONNECT.
    Modem(ModemConfig),
    /// A direct (null-modem) line: PPP starts when the line opens.
    Direct,
}

/// Everything a port task needs to know.
#[derive(Debug, Clone)]
pub struct PortSpec {
    /// The port's name in logs and status (`ttyUSB0`).
    pub name: String,
    /// How to open it.
    pub settings: PortSettings,
    /// Modem or direct.
    pub mode: PortMode,
    /// The PPP settings of each session.
    pub link: LinkConfig,
    /// A classic text login before PPP (`None`: off).
    pub login: Option<LoginConfig>,
    /// First back-off after a failure; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// The longest back-off.
    pub max_backoff: Duration,
}

/// What a port is doing, for `nasctl ports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortState {
    /// Opening the device.
    Opening,
    /// Resetting and initialising the modem.
    Initialising,
    /// Waiting for a call.
    Idle,
    /// RINGs coming in.
    Ringing,
    /// Answered, waiting for CONNECT.
    Answering,
    /// A PPP session is running.
    Connected,
    /// Waiting before the next attempt to open the port.
    BackingOff {
        /// Until when.
        until: SystemTime,
    },
}

/// A port's state and history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatus {
    /// The state.
    pub state: PortState,
    /// Calls answered (sessions started) since nasd started.
    pub calls: u64,
    /// When the last call started.
    pub last_call: Option<SystemTime>,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// The port worked since it was last opened.
    pub worked: bool,
}

/// A call that reached PPP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// The port's name.
    pub port: String,
    /// The modem's CONNECT line and caller id (None on a direct line).
    pub connect: Option<ConnectInfo>,
}

/// What a port asks of the daemon around it.
pub trait PortHooks: Send {
    /// Per-session hooks (authentication, routing).
    type Session: Hooks + Send;
    /// A call reached PPP: the hooks and the host side of the datapath for its session.
    /// Cancelling `kill` ends the session (Terminate-Request, hang-up) with reason admin.
    fn new_session(
        &mut self,
        call: &CallInfo,
        kill: &CancellationToken,
    ) -> (Self::Session, HostPackets);
    /// The session ended.
    fn session_ended(&mut self, session: Self::Session, reason: DownReason, stats: LinkStats);
    /// The port's status changed.
    fn status(&mut self, status: &PortStatus);
}

enum Exit {
    /// Close the port and open it again (after a back-off if it failed quickly).
    Reopen(String),
    /// nasd is stopping, or the call budget is spent.
    Stop,
}

/// Runs the port until `cancel`, or until `max_calls` calls have been handled.
pub async fn run<H: PortHooks>(
    spec: PortSpec,
    mut hooks: H,
    cancel: CancellationToken,
    max_calls: Option<u64>,
) {
    let mut status = PortStatus {
        state: PortState::Opening,
        calls: 0,
        last_call: None,
        last_error: None,
        worked: false,
    };
    let mut backoff = spec.min_backoff;
    loop {
        if cancel.is_cancelled() {
            return;
        }
        set_state(&mut hooks, &mut status, PortState::Opening);
        let exit = match Port::open(&spec.settings) {
            Ok(mut port) => {
                tracing::info!(port = %spec.name, modem_lines = port.modem_lines(), "port open");
                let mut ctx = Ctx {
                    spec: &spec,
                    hooks: &mut hooks,
                    status: &mut status,
                    cancel: &cancel,
                    max_calls,
                    pending: Vec::new(),
                };
                match &spec.mode {
                    PortMode::Modem(m) => ctx.modem_loop(&mut port, m).await,
                    PortMode::Direct => ctx.direct_loop(&mut port).await,
                }
            }
            Err(e) => Exit::Reopen(e.to_string()),
        };
        let error = match exit {
            Exit::Stop => return,
            Exit::Reopen(e) => e,
        };
        // A port that worked (its modem became ready, or it carried a call) starts again
        // with the shortest back-off; one that keeps failing waits twice as long each time.
        if status.worked {
            backoff = spec.min_backoff;
            status.worked = false;
        }
        tracing::warn!(port = %spec.name, error = %error, backoff_ms = backoff.as_millis() as u64, "port failed");
        status.last_error = Some(error);
        let until = SystemTime::now() + backoff;
        set_state(&mut hooks, &mut status, PortState::BackingOff { until });
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = cancel.cancelled() => return,
        }
        backoff = (backoff * 2).min(spec.max_backoff);
    }
}

fn set_state<H: PortHooks>(hooks: &mut H, status: &mut PortStatus, state: PortState) {
    if status.state != state {
        status.state = state;
        hooks.status(status);
    }
}

struct Ctx<'a, H: PortHooks> {
    spec: &'a PortSpec,
    hooks: &'a mut H,
    status: &'a mut PortStatus,
    cancel: &'a CancellationToken,
    max_calls: Option<u64>,
    /// Bytes that followed CONNECT in the same read.
    pending: Vec<u8>,
}

impl<H: PortHooks> Ctx<'_, H> {
    fn calls_done(&self) -> bool {
        self.max_calls.is_some_and(|m| self.status.calls >= m)
    }

    /// Runs one PPP session on the open port.
    async fn call(
        &mut self,
        port: &mut Port,
        initial: &[u8],
        connect: Option<ConnectInfo>,
    ) -> DownReason {
        self.status.calls += 1;
        self.status.worked = true;
        self.status.last_call = Some(SystemTime::now());
        set_state(self.hooks, self.status, PortState::Connected);
        let call = CallInfo {
            port: self.spec.name.clone(),
            connect,
        };
        let kill = self.cancel.child_token();
        let (mut session_hooks, mut host) = self.hooks.new_session(&call, &kill);
        let seed = super::random_seed().unwrap_or_else(|_| {
            let t = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            let mut s = [0u8; 32];
            s[..16].copy_from_slice(&t.as_nanos().to_le_bytes());
            s
        });
        let mut config = self.spec.link.clone();
        let mut initial = initial.to_vec();
        let mut grant = None;
        let mut user = None;
        if let Some(login) = &self.spec.login {
            let no_carrier = !port.modem_lines() && matches!(self.spec.mode, PortMode::Modem(_));
            match text_login(port, login, &initial, &mut session_hooks, &kill, no_carrier).await {
                LoginOutcome::LoggedIn(u, g) => {
                    // Authenticated already: PPP asks for nothing more.
                    config.lcp.auth.clear();
                    grant = Some(g);
                    user = Some(u);
                    initial.clear();
                }
                LoginOutcome::Ppp(rest) => initial = [&[0x7e][..], &rest].concat(),
                LoginOutcome::Failed(reason) => {
                    tracing::info!(port = %self.spec.name, reason = %reason, "login failed");
                    session_hooks.down(reason);
                    self.hooks
                        .session_ended(session_hooks, reason, LinkStats::default());
                    return reason;
                }
            }
        }
        let mut link = Link::new(config, seed);
        if let Some(u) = &user {
            link.set_user(u);
        }
        let watch = if port.modem_lines() {
            CarrierWatch {
                dcd: Some(Box::new(port.carrier_probe())),
                no_carrier_text: false,
            }
        } else {
            CarrierWatch {
                dcd: None,
                no_carrier_text: matches!(self.spec.mode, PortMode::Modem(_)),
            }
        };
        let mut hooks = Preauthorized {
            inner: &mut session_hooks,
            grant,
        };
        let reason = session::run(
            &mut port.stream,
            &initial,
            &mut link,
            &mut hooks,
            &mut host,
            kill,
            watch,
        )
        .await;
        tracing::info!(port = %self.spec.name, reason = %reason, "call ended");
        self.hooks
            .session_ended(session_hooks, reason, link.stats());
        reason
    }

    async fn direct_loop(&mut self, port: &mut Port) -> Exit {
        loop {
            let reason = self.call(port, &[], None).await;
            if self.cancel.is_cancelled() || self.calls_done() {
                return Exit::Stop;
            }
            if reason == DownReason::LostCarrier {
                return Exit::Reopen("line closed".into());
            }
        }
    }

    async fn modem_loop(&mut self, port: &mut Port, config: &ModemConfig) -> Exit {
        let mut modem = Modem::new(ModemConfig {
            modem_lines: port.modem_lines(),
            ..config.clone()
        });
        modem.start(Instant::now());
        set_state(self.hooks, self.status, PortState::Initialising);
        let mut buf = vec![0u8; 4096];
        loop {
            while let Some(a) = modem.poll_action() {
                let r = match a {
                    ModemAction::Write(b) => port.stream.write_all(&b).await,
                    ModemAction::SetDtr(on) => port.set_dtr(on),
                    ModemAction::Reopen => {
                        return Exit::Reopen("the modem does not respond".into());
                    }
                };
                if let Err(e) = r {
                    return Exit::Reopen(format!("write to the port failed: {e}"));
                }
            }
            while let Some(ev) = modem.poll_event() {
                match ev {
                    ModemEvent::Ready => {
                        self.status.last_error = None;
                        self.status.worked = true;
                        set_state(self.hooks, self.status, PortState::Idle);
                    }
                    ModemEvent::Ring(n) => {
                        tracing::info!(port = %self.spec.name, ring = n, "RING");
                        set_state(self.hooks, self.status, PortState::Ringing);
                    }
                    ModemEvent::Connected(info) => {
                        tracing::info!(port = %self.spec.name, connect = %info.text, caller = ?info.caller.number, "CONNECT");
                        // Anything read after the CONNECT line belongs to PPP.
                        let initial = std::mem::take(&mut self.pending);
                        let reason = self.call(port, &initial, Some(info)).await;
                        if self.cancel.is_cancelled() || self.calls_done() {
                            if reason != DownReason::LostCarrier {
                                hang_up_now(port, config).await;
                            }
                            return Exit::Stop;
                        }
                        set_state(self.hooks, self.status, PortState::Initialising);
                        if reason == DownReason::LostCarrier {
                            modem.carrier_lost(Instant::now());
                        } else {
                            modem.hangup(Instant::now());
                        }
                    }
                    ModemEvent::CallFailed(f) => {
                        tracing::info!(port = %self.spec.name, failure = ?f, "call failed");
                    }
                    ModemEvent::InitFailed { command, reply } => {
                        let e = format!(
                            "modem init failed: {command} -> {}",
                            reply.as_deref().unwrap_or("no reply")
                        );
                        self.status.last_error = Some(e);
                    }
                }
            }
            if modem.state() == ModemState::Answering {
                set_state(self.hooks, self.status, PortState::Answering);
            }
            let deadline = modem.poll_timeout();
            tokio::select! {
                r = port.stream.read(&mut buf) => match r {
                    Ok(0) => return Exit::Reopen("the line closed".into()),
                    Err(e) => return Exit::Reopen(format!("read from the port failed: {e}")),
                    Ok(n) => {
                        let used = modem.handle_input(Instant::now(), &buf[..n]);
                        if used < n {
                            self.pending.extend_from_slice(&buf[used..n]);
                        }
                    }
                },
                _ = sleep_until(deadline), if deadline.is_some() => modem.handle_timeout(Instant::now()),
                _ = self.cancel.cancelled() => return Exit::Stop,
            }
        }
    }
}

/// Hangs up quickly on the way out (nasd stopping): DTR low where the port has modem
/// control lines, else `+++` with guard time and `ATH0`. Bounded to a few seconds.
async fn hang_up_now(port: &mut Port, config: &ModemConfig) {
    if port.modem_lines() {
        let _ = port.set_dtr(false);
        tokio::time::sleep(config.toggle_dtr).await;
        return;
    }
    let escape = async {
        tokio::time::sleep(config.guard_time).await;
        port.stream.write_all(b"+++").await?;
        tokio::time::sleep(config.guard_time).await;
        port.stream.write_all(b"\rATH0\r").await
    };
    let _ = tokio::time::timeout(config.guard_time * 3, escape).await;
}

enum LoginOutcome {
    LoggedIn(String, Grant),
    Ppp(Vec<u8>),
    Failed(DownReason),
}

/// Runs the text login on the line: prompts, credentials to the hooks, verdicts back.
async fn text_login<S: Hooks>(
    port: &mut Port,
    config: &LoginConfig,
    initial: &[u8],
    hooks: &mut S,
    kill: &CancellationToken,
    no_carrier_text: bool,
) -> LoginOutcome {
    let mut login = Login::new(config.clone());
    let mut watch = no_carrier_text.then(NoCarrierWatch::default);
    login.start(Instant::now());
    let mut pending = initial.to_vec();
    let mut buf = vec![0u8; 1024];
    let mut verdict: Option<session::AuthFuture> = None;
    let mut user = String::new();
    loop {
        if !pending.is_empty() {
            let n = login.handle_input(Instant::now(), &pending);
            pending.drain(..n);
        }
        let out = std::mem::take(login.output());
        if !out.is_empty() && port.stream.write_all(&out).await.is_err() {
            return LoginOutcome::Failed(DownReason::LostCarrier);
        }
        while let Some(ev) = login.poll_event() {
            match ev {
                LoginEvent::Credentials { user: u, password } => {
                    user = u.clone();
                    let req = AuthRequest {
                        user: u,
                        credentials: Credentials::Pap { password },
                    };
                    verdict = Some(hooks.authorize(req));
                }
                LoginEvent::LoggedIn(_) => {
                    // The verdict future produced the grant; see below.
                }
                LoginEvent::Ppp => return LoginOutcome::Ppp(std::mem::take(&mut pending)),
                LoginEvent::Failed => return LoginOutcome::Failed(DownReason::AuthFailed),
            }
        }
        let deadline = login.poll_timeout();
        tokio::select! {
            r = port.stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => return LoginOutcome::Failed(DownReason::LostCarrier),
                Ok(n) => {
                    if watch.as_mut().is_some_and(|w| w.feed(&buf[..n])) {
                        return LoginOutcome::Failed(DownReason::LostCarrier);
                    }
                    pending.extend_from_slice(&buf[..n]);
                }
            },
            v = async { verdict.as_mut().expect("guarded").await }, if verdict.is_some() => {
                verdict = None;
                match v {
                    AuthResult::Accept(g) => {
                        login.verdict(true);
                        let out = std::mem::take(login.output());
                        let _ = port.stream.write_all(&out).await;
                        return LoginOutcome::LoggedIn(user, g);
                    }
                    AuthResult::Reject { .. } => login.verdict(false),
                }
            }
            _ = sleep_until(deadline), if deadline.is_some() => login.handle_timeout(Instant::now()),
            _ = kill.cancelled() => return LoginOutcome::Failed(DownReason::Admin),
        }
    }
}

/// Session hooks for a user who logged in before PPP: the verdict PPP asks for (with no
/// credentials) is the one the login got.
struct Preauthorized<'a, S: Hooks> {
    inner: &'a mut S,
    grant: Option<Grant>,
}

impl<S: Hooks> Hooks for Preauthorized<'_, S> {
    fn authorize(&mut self, req: AuthRequest) -> session::AuthFuture {
        match (&req.credentials, self.grant.clone()) {
            (Credentials::None, Some(g)) => Box::pin(async move { AuthResult::Accept(g) }),
            _ => self.inner.authorize(req),
        }
    }
    fn up(&mut self, info: &SessionInfo) {
        self.inner.up(info);
    }
    fn down(&mut self, reason: DownReason) {
        self.inner.down(reason);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await;
    }
}
