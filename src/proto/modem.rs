//! The Hayes modem dialogue on the answering side (mgetty's job), sans-IO.
//!
//! A [`Modem`] keeps a modem initialised, checks it while idle, counts RINGs (collecting
//! caller id between them), answers, waits for `CONNECT <speed>`, and after a call resets
//! the modem: DTR drop (where the port has modem control lines), else `+++` with guard time
//! and `ATH0`, then the init chat again. It never touches the port: it asks for
//! [`ModemAction`]s (write bytes, set DTR, reopen the port) and reports [`ModemEvent`]s.
//!
//! Result codes are understood in verbose and numeric form (`OK`/`0`, `CONNECT`/`1`,
//! `RING`/`2`, `NO CARRIER`/`3`, `ERROR`/`4`, `NO DIALTONE`/`6`, `BUSY`/`7`,
//! `NO ANSWER`/`8`, `CONNECT <speed>`/`10`+), and caller id in the usual formats
//! (`NMBR = 5551234`, `NMBR: 5551234`, `CALLER NUMBER: ...`, `NAME = ...`).

use core::time::Duration;
use std::collections::VecDeque;
use std::time::Instant;

/// One command of a chat script and the replies that count as success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatStep {
    /// The command, without the final carriage return.
    pub send: String,
    /// Any of these replies ends the step successfully.
    pub expect: Vec<String>,
    /// How long to wait for a reply.
    pub timeout: Duration,
}

impl ChatStep {
    /// A command that must answer `OK` within 3 s.
    pub fn ok(send: &str) -> Self {
        Self {
            send: send.into(),
            expect: vec!["OK".into()],
            timeout: Duration::from_secs(3),
        }
    }
}

/// Settings of the dialogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModemConfig {
    /// The init chat (default as mgetty's: `ATQ0V1H0`, then `ATS0=0Q0&D3&C1`).
    pub init: Vec<ChatStep>,
    /// RINGs to count before answering.
    pub rings: u32,
    /// The answer command.
    pub answer: String,
    /// How long to wait for CONNECT after answering.
    pub answer_timeout: Duration,
    /// Without a RING for this long the caller has given up.
    pub ring_gap: Duration,
    /// Check the idle modem with `AT` this often (`None`: never).
    pub health_interval: Option<Duration>,
    /// How long DTR stays low to hang up.
    pub toggle_dtr: Duration,
    /// Silence around `+++`.
    pub guard_time: Duration,
    /// The port has modem control lines (DTR, DCD); ptys and some USB adapters do not.
    pub modem_lines: bool,
}

impl Default for ModemConfig {
    fn default() -> Self {
        Self {
            init: vec![ChatStep::ok("ATQ0V1H0"), ChatStep::ok("ATS0=0Q0&D3&C1")],
            rings: 1,
            answer: "ATA".into(),
            answer_timeout: Duration::from_secs(80),
            ring_gap: Duration::from_secs(8),
            health_interval: Some(Duration::from_secs(60)),
            toggle_dtr: Duration::from_millis(500),
            guard_time: Duration::from_secs(1),
            modem_lines: true,
        }
    }
}

/// Who is calling, as the modem reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerId {
    /// The calling number.
    pub number: Option<String>,
    /// The caller's name.
    pub name: Option<String>,
}

/// A connected call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectInfo {
    /// The speed from `CONNECT <speed>`, if given.
    pub speed: Option<u32>,
    /// The whole text after `CONNECT` (speed and extras such as `/ARQ/V42BIS`).
    pub text: String,
    /// Caller id collected while ringing.
    pub caller: CallerId,
}

/// Why a call did not connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallFailure {
    /// `NO CARRIER`.
    NoCarrier,
    /// `BUSY`.
    Busy,
    /// `NO ANSWER`.
    NoAnswer,
    /// `NO DIALTONE`.
    NoDialtone,
    /// `ERROR`.
    Error,
    /// No CONNECT within the answer timeout.
    Timeout,
}

/// What the driver must do to the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModemAction {
    /// Write these bytes.
    Write(Vec<u8>),
    /// Raise or drop DTR.
    SetDtr(bool),
    /// The modem does not respond: close the port and open it again (with back-off).
    Reopen,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModemEvent {
    /// The modem is initialised and waiting for calls.
    Ready,
    /// A RING (the count so far).
    Ring(u32),
    /// The call is connected: start PPP.
    Connected(ConnectInfo),
    /// Answering did not lead to a connection.
    CallFailed(CallFailure),
    /// A command of the init chat failed (the command and what came back, if anything).
    InitFailed {
        /// The command.
        command: String,
        /// The reply that was not expected, or `None` for a timeout.
        reply: Option<String>,
    },
}

/// The dialogue's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModemState {
    /// Not started.
    Closed,
    /// Hanging up a call or resetting the modem.
    Resetting,
    /// Running the init chat.
    Initialising,
    /// Waiting for a call.
    Idle,
    /// RINGs are coming in.
    Ringing,
    /// Answer command sent, waiting for CONNECT.
    Answering,
    /// A call is up; the line carries data.
    Connected,
    /// Gave up: the driver should reopen the port.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reset {
    /// `AT` sent to a freshly opened modem.
    Probe,
    /// DTR is low.
    DtrLow,
    /// DTR is back up; `AT` sent to see whether the modem is in command mode.
    DtrCheck,
    /// Silence before `+++`.
    GuardBefore,
    /// `+++` sent; silence after it, then OK expected.
    Escape,
    /// `ATH0` sent.
    Hangup,
}

/// The answering modem's dialogue.
#[derive(Debug)]
pub struct Modem {
    config: ModemConfig,
    state: ModemState,
    reset: Option<Reset>,
    step: usize,
    /// The command awaiting a reply, to recognise its echo.
    sent: Option<String>,
    deadline: Option<Instant>,
    rings: u32,
    caller: CallerId,
    line: Vec<u8>,
    actions: VecDeque<ModemAction>,
    events: VecDeque<ModemEvent>,
    health_check: bool,
}

/// The longest result line kept; longer lines are noise.
const MAX_LINE: usize = 256;

impl Modem {
    /// A dialogue with the given settings; [`Modem::start`] begins it.
    pub fn new(config: ModemConfig) -> Self {
        Self {
            config,
            state: ModemState::Closed,
            reset: None,
            step: 0,
            sent: None,
            deadline: None,
            rings: 0,
            caller: CallerId::default(),
            line: Vec::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            health_check: false,
        }
    }

    /// The state.
    pub fn state(&self) -> ModemState {
        self.state
    }

    /// The settings.
    pub fn config(&self) -> &ModemConfig {
        &self.config
    }

    /// The port was opened: reset the modem and run the init chat. A freshly opened modem
    /// is usually in command mode already: an `AT` probe comes first, and only when it gets
    /// no OK does the full reset (DTR, or `+++` and `ATH0`) follow.
    pub fn start(&mut self, now: Instant) {
        self.state = ModemState::Resetting;
        self.line.clear();
        self.reset = Some(Reset::Probe);
        self.actions.push_back(ModemAction::Write(b"\r".to_vec()));
        self.send(now, "AT", Duration::from_secs(1));
    }

    /// The call is over (PPP ended, or the call failed): hang up, reset and initialise the
    /// modem for the next call.
    pub fn hangup(&mut self, now: Instant) {
        self.begin_reset(now);
    }

    /// The modem reported the carrier lost (`NO CARRIER`, DCD down): it is back in command
    /// mode already, so `ATH0` and the init chat suffice.
    pub fn carrier_lost(&mut self, now: Instant) {
        self.state = ModemState::Resetting;
        self.line.clear();
        self.rings = 0;
        self.caller = CallerId::default();
        self.reset = Some(Reset::Hangup);
        self.send_hangup(now);
    }

    /// `ATH0`, preceded by a carriage return that ends whatever partial command line (a `+++`
    /// that reached a modem already in command mode) the modem may hold.
    fn send_hangup(&mut self, now: Instant) {
        self.actions.push_back(ModemAction::Write(b"\r".to_vec()));
        self.send(now, "ATH0", Duration::from_secs(3));
    }

    fn begin_reset(&mut self, now: Instant) {
        self.state = ModemState::Resetting;
        self.line.clear();
        self.rings = 0;
        self.caller = CallerId::default();
        self.sent = None;
        if self.config.modem_lines {
            self.actions.push_back(ModemAction::SetDtr(false));
            self.reset = Some(Reset::DtrLow);
            self.deadline = Some(now + self.config.toggle_dtr);
        } else {
            self.reset = Some(Reset::GuardBefore);
            self.deadline = Some(now + self.config.guard_time);
        }
    }

    fn send(&mut self, now: Instant, cmd: &str, timeout: Duration) {
        let mut bytes = cmd.as_bytes().to_vec();
        bytes.push(b'\r');
        self.actions.push_back(ModemAction::Write(bytes));
        self.sent = Some(cmd.to_string());
        self.deadline = Some(now + timeout);
    }

    fn start_init(&mut self, now: Instant) {
        self.state = ModemState::Initialising;
        self.reset = None;
        self.step = 0;
        self.next_init_step(now);
    }

    fn next_init_step(&mut self, now: Instant) {
        match self.config.init.get(self.step).cloned() {
            Some(s) => self.send(now, &s.send, s.timeout),
            None => self.go_idle(now),
        }
    }

    fn go_idle(&mut self, now: Instant) {
        let was_idle = self.state == ModemState::Idle;
        self.state = ModemState::Idle;
        self.sent = None;
        self.rings = 0;
        self.caller = CallerId::default();
        self.health_check = false;
        self.deadline = self.config.health_interval.map(|i| now + i);
        if !was_idle {
            self.events.push_back(ModemEvent::Ready);
        }
    }

    fn fail(&mut self, command: String, reply: Option<String>) {
        self.state = ModemState::Failed;
        self.deadline = None;
        self.sent = None;
        self.events
            .push_back(ModemEvent::InitFailed { command, reply });
        self.actions.push_back(ModemAction::Reopen);
    }

    /// Bytes from the port. Returns how many were consumed: once the call connects, the
    /// rest (the first PPP frames, say) belongs to the PPP session.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> usize {
        for (i, &b) in data.iter().enumerate() {
            if self.state == ModemState::Connected {
                return i;
            }
            match b {
                b'\r' | b'\n' if !self.line.is_empty() => {
                    let line = String::from_utf8_lossy(&self.line).trim().to_string();
                    self.line.clear();
                    if !line.is_empty() {
                        self.handle_line(now, &line);
                    }
                }
                b'\r' | b'\n' => {}
                _ if self.line.len() < MAX_LINE => self.line.push(b),
                _ => {}
            }
        }
        data.len()
    }

    fn handle_line(&mut self, now: Instant, line: &str) {
        // A modem with echo on repeats our command first.
        if self
            .sent
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(line))
        {
            return;
        }
        let result = ResultCode::parse(line);
        match self.state {
            ModemState::Initialising => {
                let Some(step) = self.config.init.get(self.step) else {
                    return;
                };
                if step
                    .expect
                    .iter()
                    .any(|e| line.eq_ignore_ascii_case(e) || result.matches(e))
                {
                    self.step += 1;
                    self.next_init_step(now);
                } else if result.is_final() {
                    let cmd = step.send.clone();
                    self.fail(cmd, Some(line.to_string()));
                }
            }
            // Anything but OK (NO CARRIER, say) while hanging up just confirms the hang-up.
            ModemState::Resetting => {
                if let (
                    Some(Reset::Probe | Reset::DtrCheck | Reset::Escape | Reset::Hangup),
                    ResultCode::Ok,
                ) = (self.reset, result)
                {
                    if self.reset == Some(Reset::Escape) {
                        self.reset = Some(Reset::Hangup);
                        self.send_hangup(now);
                    } else {
                        self.start_init(now);
                    }
                }
            }
            ModemState::Idle | ModemState::Ringing => match result {
                ResultCode::Ring => {
                    self.rings += 1;
                    self.state = ModemState::Ringing;
                    self.events.push_back(ModemEvent::Ring(self.rings));
                    if self.rings >= self.config.rings {
                        self.state = ModemState::Answering;
                        let answer = self.config.answer.clone();
                        self.send(now, &answer, self.config.answer_timeout);
                    } else {
                        self.deadline = Some(now + self.config.ring_gap);
                    }
                }
                ResultCode::Ok if self.health_check => {
                    self.health_check = false;
                    self.deadline = self.config.health_interval.map(|i| now + i);
                }
                ResultCode::Other => self.caller_id(line),
                _ => {}
            },
            ModemState::Answering => match result {
                ResultCode::Connect(text) => {
                    self.state = ModemState::Connected;
                    self.deadline = None;
                    self.sent = None;
                    let speed = text
                        .split(|c: char| !c.is_ascii_digit())
                        .next()
                        .and_then(|s| s.parse().ok());
                    self.events.push_back(ModemEvent::Connected(ConnectInfo {
                        speed,
                        text,
                        caller: core::mem::take(&mut self.caller),
                    }));
                }
                ResultCode::Failure(f) => {
                    self.events.push_back(ModemEvent::CallFailed(f));
                    self.begin_reset(now);
                }
                ResultCode::Other => self.caller_id(line),
                _ => {}
            },
            ModemState::Connected | ModemState::Closed | ModemState::Failed => {}
        }
    }

    fn caller_id(&mut self, line: &str) {
        let Some((key, value)) = line.split_once('=').or_else(|| line.split_once(':')) else {
            return;
        };
        let value = value.trim().trim_matches('"').to_string();
        if value.is_empty() {
            return;
        }
        match key.trim().to_ascii_uppercase().as_str() {
            "NMBR" | "CALLER NUMBER" | "CID" | "CALLER ID" | "DDN_NMBR" => {
                self.caller.number = Some(value)
            }
            "NAME" | "CALLER NAME" => self.caller.name = Some(value),
            _ => {}
        }
    }

    /// When [`Modem::handle_timeout`] should run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Runs the expired timer. Safe to call early.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_none_or(|d| d > now) {
            return;
        }
        self.deadline = None;
        match self.state {
            ModemState::Resetting => match self.reset {
                Some(Reset::Probe) => self.begin_reset(now),
                Some(Reset::DtrLow) => {
                    self.actions.push_back(ModemAction::SetDtr(true));
                    self.reset = Some(Reset::DtrCheck);
                    self.send(now, "AT", Duration::from_secs(2));
                }
                Some(Reset::DtrCheck) => {
                    // DTR did not bring the modem back to command mode: escape.
                    self.reset = Some(Reset::GuardBefore);
                    self.sent = None;
                    self.deadline = Some(now + self.config.guard_time);
                }
                Some(Reset::GuardBefore) => {
                    self.actions.push_back(ModemAction::Write(b"+++".to_vec()));
                    self.reset = Some(Reset::Escape);
                    self.sent = None;
                    self.deadline = Some(now + self.config.guard_time + Duration::from_secs(2));
                }
                Some(Reset::Escape) => {
                    // No OK after +++: the modem may already be in command mode.
                    self.reset = Some(Reset::Hangup);
                    self.send_hangup(now);
                }
                Some(Reset::Hangup) | None => self.fail("ATH0".into(), None),
            },
            ModemState::Initialising => {
                let cmd = self
                    .config
                    .init
                    .get(self.step)
                    .map(|s| s.send.clone())
                    .unwrap_or_default();
                self.fail(cmd, None);
            }
            ModemState::Idle => {
                if self.health_check {
                    // No OK to the health check: reset and initialise again.
                    self.begin_reset(now);
                } else {
                    self.health_check = true;
                    self.send(now, "AT", Duration::from_secs(3));
                }
            }
            ModemState::Ringing => self.go_idle(now),
            ModemState::Answering => {
                self.events
                    .push_back(ModemEvent::CallFailed(CallFailure::Timeout));
                self.begin_reset(now);
            }
            ModemState::Connected | ModemState::Closed | ModemState::Failed => {}
        }
    }

    /// The next thing to do to the port.
    pub fn poll_action(&mut self) -> Option<ModemAction> {
        self.actions.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ModemEvent> {
        self.events.pop_front()
    }
}

/// A modem result line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ResultCode {
    Ok,
    Ring,
    Connect(String),
    Failure(CallFailure),
    Other,
}

impl ResultCode {
    fn parse(line: &str) -> Self {
        let up = line.trim().to_ascii_uppercase();
        match up.as_str() {
            "OK" | "0" => Self::Ok,
            "RING" | "2" => Self::Ring,
            "CONNECT" | "1" => Self::Connect(String::new()),
            "NO CARRIER" | "3" => Self::Failure(CallFailure::NoCarrier),
            "ERROR" | "4" => Self::Failure(CallFailure::Error),
            "NO DIALTONE" | "NO DIAL TONE" | "6" => Self::Failure(CallFailure::NoDialtone),
            "BUSY" | "7" => Self::Failure(CallFailure::Busy),
            "NO ANSWER" | "8" => Self::Failure(CallFailure::NoAnswer),
            _ => {
                if let Some(rest) = up.strip_prefix("CONNECT ") {
                    return Self::Connect(rest.trim().to_string());
                }
                // Numeric CONNECT codes with a speed (10 and up, as many modems use).
                match up.parse::<u32>() {
                    Ok(n) if (5..=200).contains(&n) && n != 6 && n != 7 && n != 8 => {
                        Self::Connect(String::new())
                    }
                    _ => Self::Other,
                }
            }
        }
    }

    fn matches(&self, expect: &str) -> bool {
        match self {
            Self::Ok => expect.eq_ignore_ascii_case("OK"),
            Self::Connect(_) => expect.eq_ignore_ascii_case("CONNECT"),
            _ => false,
        }
    }

    fn is_final(&self) -> bool {
        matches!(self, Self::Ok | Self::Failure(_) | Self::Connect(_))
    }
}

/// Watches the data stream of a connected call on a port without a carrier-detect line
/// for the modem's `NO CARRIER` line: the only sign that the call dropped.
#[derive(Debug, Default, Clone)]
pub struct NoCarrierWatch {
    matched: usize,
}

const NO_CARRIER: &[u8] = b"\r\nNO CARRIER\r\n";

impl NoCarrierWatch {
    /// Feeds received bytes; true once `\r\nNO CARRIER\r\n` has gone by.
    pub fn feed(&mut self, data: &[u8]) -> bool {
        for &b in data {
            if b == NO_CARRIER[self.matched] {
                self.matched += 1;
                if self.matched == NO_CARRIER.len() {
                    self.matched = 0;
                    return true;
                }
            } else {
                self.matched = usize::from(b == NO_CARRIER[0]);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct T {
        m: Modem,
        now: Instant,
        written: Vec<String>,
        dtr: Vec<bool>,
        events: Vec<ModemEvent>,
        reopen: bool,
    }

    impl T {
        fn new(config: ModemConfig) -> Self {
            let now = Instant::now();
            let mut t = Self {
                m: Modem::new(config),
                now,
                written: vec![],
                dtr: vec![],
                events: vec![],
                reopen: false,
            };
            t.m.start(now);
            t.drain();
            assert_eq!(t.written, ["\r", "AT\r"]);
            // No answer to the probe: the full reset follows.
            t.advance();
            t
        }
        fn drain(&mut self) {
            while let Some(a) = self.m.poll_action() {
                match a {
                    ModemAction::Write(b) => self.written.push(String::from_utf8(b).unwrap()),
                    ModemAction::SetDtr(d) => self.dtr.push(d),
                    ModemAction::Reopen => self.reopen = true,
                }
            }
            while let Some(e) = self.m.poll_event() {
                self.events.push(e);
            }
        }
        fn input(&mut self, s: &str) -> usize {
            let n = self.m.handle_input(self.now, s.as_bytes());
            self.drain();
            n
        }
        fn advance(&mut self) {
            self.now = self.m.poll_timeout().expect("a deadline");
            self.m.handle_timeout(self.now);
            self.drain();
        }
        fn last(&self) -> &str {
            self.written.last().map(String::as_str).unwrap_or("")
        }
        /// Answers the reset and init chat of a DTR-capable modem.
        fn init_ok(&mut self) {
            self.advance(); // DTR back up, AT sent
            assert_eq!(self.last(), "AT\r");
            self.input("AT\r\r\nOK\r\n");
            assert_eq!(self.last(), "ATQ0V1H0\r");
            self.input("\r\nOK\r\n");
            assert_eq!(self.last(), "ATS0=0Q0&D3&C1\r");
            self.input("ATS0=0Q0&D3&C1\r\r\nOK\r\n");
            assert_eq!(self.m.state(), ModemState::Idle);
            assert_eq!(self.events.last(), Some(&ModemEvent::Ready));
        }
    }

    #[test]
    fn init_answer_and_connect_with_caller_id() {
        let mut t = T::new(ModemConfig {
            rings: 2,
            ..ModemConfig::default()
        });
        assert_eq!(t.dtr, [false]);
        t.init_ok();
        assert_eq!(t.dtr, [false, true]);
        t.input("\r\nRING\r\n\r\nDATE = 0321\r\nTIME = 1405\r\nNMBR = 5551234\r\nNAME = ALICE\r\n");
        assert_eq!(t.m.state(), ModemState::Ringing);
        t.input("\r\nRING\r\n");
        assert_eq!(t.last(), "ATA\r");
        assert_eq!(t.m.state(), ModemState::Answering);
        let data = b"\r\nCONNECT 33600/ARQ/V42BIS\r\n\x7e\xff";
        let n = t.m.handle_input(t.now, data);
        t.drain();
        assert_eq!(t.m.state(), ModemState::Connected);
        assert_eq!(&data[n..], b"\n\x7e\xff");
        let Some(ModemEvent::Connected(c)) = t.events.last() else {
            panic!("{:?}", t.events)
        };
        assert_eq!(c.speed, Some(33600));
        assert_eq!(c.text, "33600/ARQ/V42BIS");
        assert_eq!(c.caller.number.as_deref(), Some("5551234"));
        assert_eq!(c.caller.name.as_deref(), Some("ALICE"));
    }

    #[test]
    fn a_modem_in_command_mode_is_initialised_at_once() {
        let now = Instant::now();
        let mut m = Modem::new(ModemConfig::default());
        m.start(now);
        m.handle_input(now, b"AT\r\r\nOK\r\n");
        assert_eq!(m.state(), ModemState::Initialising);
        let mut writes = vec![];
        while let Some(a) = m.poll_action() {
            writes.push(a);
        }
        assert_eq!(
            writes.last(),
            Some(&ModemAction::Write(b"ATQ0V1H0\r".to_vec()))
        );
        assert!(
            !writes.contains(&ModemAction::SetDtr(false)),
            "no DTR drop needed"
        );
    }

    #[test]
    fn caller_id_formats() {
        for (line, number) in [
            ("NMBR = 5551234", "5551234"),
            ("NMBR: 5551234", "5551234"),
            ("CALLER NUMBER: 0301234567", "0301234567"),
            ("CID: 12345", "12345"),
        ] {
            let mut t = T::new(ModemConfig::default());
            t.init_ok();
            t.input(&format!("RING\r\n{line}\r\nCONNECT\r\n"));
            // rings=1: ATA went out at the first RING; CONNECT with no speed.
            let Some(ModemEvent::Connected(c)) = t.events.last() else {
                panic!()
            };
            assert_eq!(c.caller.number.as_deref(), Some(number), "{line}");
            assert_eq!(c.speed, None);
        }
    }

    #[test]
    fn every_failure_result_code() {
        for (text, f) in [
            ("NO CARRIER", CallFailure::NoCarrier),
            ("BUSY", CallFailure::Busy),
            ("NO ANSWER", CallFailure::NoAnswer),
            ("NO DIALTONE", CallFailure::NoDialtone),
            ("ERROR", CallFailure::Error),
            ("3", CallFailure::NoCarrier),
            ("7", CallFailure::Busy),
        ] {
            let mut t = T::new(ModemConfig::default());
            t.init_ok();
            t.input("RING\r\n");
            t.input(&format!("\r\n{text}\r\n"));
            assert!(
                t.events.contains(&ModemEvent::CallFailed(f)),
                "{text}: {:?}",
                t.events
            );
            assert_eq!(t.m.state(), ModemState::Resetting, "{text}");
            // The modem is reset and initialised again.
            t.init_ok();
        }
    }

    #[test]
    fn numeric_result_codes() {
        let mut t = T::new(ModemConfig::default());
        t.advance();
        t.input("0\r");
        t.input("0\r");
        t.input("0\r");
        assert_eq!(t.m.state(), ModemState::Idle);
        t.input("2\r");
        t.input("10\r");
        assert_eq!(t.m.state(), ModemState::Connected);
    }

    #[test]
    fn answer_timeout_hangs_up() {
        let mut t = T::new(ModemConfig::default());
        t.init_ok();
        t.input("RING\r\n");
        let before = t.now;
        t.advance();
        assert_eq!(t.now - before, Duration::from_secs(80));
        assert!(
            t.events
                .contains(&ModemEvent::CallFailed(CallFailure::Timeout))
        );
        assert_eq!(t.dtr.last(), Some(&false));
    }

    #[test]
    fn rings_that_stop_return_to_idle() {
        let mut t = T::new(ModemConfig {
            rings: 3,
            ..ModemConfig::default()
        });
        t.init_ok();
        t.input("RING\r\nRING\r\n");
        t.advance();
        assert_eq!(t.m.state(), ModemState::Idle);
        t.input("RING\r\n");
        assert_eq!(t.events.last(), Some(&ModemEvent::Ring(1)));
    }

    #[test]
    fn init_failure_and_timeout_ask_for_a_reopen() {
        let mut t = T::new(ModemConfig::default());
        t.advance();
        t.input("OK\r\n");
        t.input("ERROR\r\n");
        assert!(t.reopen);
        assert_eq!(
            t.events.last(),
            Some(&ModemEvent::InitFailed {
                command: "ATQ0V1H0".into(),
                reply: Some("ERROR".into())
            })
        );
        let mut t = T::new(ModemConfig::default());
        t.advance();
        t.input("OK\r\n");
        t.advance(); // no reply to the first init command
        assert!(t.reopen);
        assert_eq!(t.m.state(), ModemState::Failed);
    }

    #[test]
    fn hangup_without_modem_lines_uses_escape_and_ath() {
        let mut t = T::new(ModemConfig {
            modem_lines: false,
            ..ModemConfig::default()
        });
        assert!(t.dtr.is_empty());
        let t0 = t.now;
        t.advance();
        assert_eq!(t.now - t0, Duration::from_secs(1), "guard time before +++");
        assert_eq!(t.last(), "+++");
        t.input("\r\nOK\r\n");
        assert_eq!(t.written[t.written.len() - 2..], ["\r", "ATH0\r"]);
        t.input("\r\nOK\r\n");
        assert_eq!(t.last(), "ATQ0V1H0\r");
        assert_eq!(t.m.state(), ModemState::Initialising);
    }

    #[test]
    fn after_no_carrier_ath0_is_enough() {
        let mut t = T::new(ModemConfig {
            modem_lines: false,
            ..ModemConfig::default()
        });
        t.advance();
        t.input("OK\r\nOK\r\n");
        t.input("OK\r\nOK\r\n");
        assert_eq!(t.m.state(), ModemState::Idle);
        t.input("RING\r\nCONNECT 33600\r\n");
        assert_eq!(t.m.state(), ModemState::Connected);
        let before = t.written.len();
        t.m.carrier_lost(t.now);
        t.drain();
        assert_eq!(t.written[before..], ["\r", "ATH0\r"]);
        // A +++ that had reached the modem in command mode earns an ERROR first.
        t.input("\r\nERROR\r\n\r\nOK\r\n");
        assert_eq!(t.last(), "ATQ0V1H0\r");
    }

    #[test]
    fn dtr_that_does_not_work_falls_back_to_escape() {
        let mut t = T::new(ModemConfig::default());
        t.advance(); // DTR up, AT
        t.advance(); // no answer to AT
        t.advance(); // guard time, +++
        assert_eq!(t.last(), "+++");
        t.advance(); // no OK after +++: ATH0 anyway
        assert_eq!(t.last(), "ATH0\r");
        t.advance(); // nothing at all: reopen
        assert!(t.reopen);
    }

    #[test]
    fn health_check_while_idle() {
        let mut t = T::new(ModemConfig::default());
        t.init_ok();
        let t0 = t.now;
        t.advance();
        assert_eq!(t.now - t0, Duration::from_secs(60));
        assert_eq!(t.last(), "AT\r");
        t.input("OK\r\n");
        assert_eq!(t.m.state(), ModemState::Idle);
        t.advance();
        assert_eq!(t.last(), "AT\r");
        t.advance(); // no answer: reset
        assert_eq!(t.m.state(), ModemState::Resetting);
        assert_eq!(t.dtr.last(), Some(&false));
    }

    #[test]
    fn noise_and_long_lines_are_harmless() {
        let mut t = T::new(ModemConfig::default());
        t.init_ok();
        let junk: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let n = t.m.handle_input(t.now, &junk);
        assert_eq!(n, junk.len());
        t.drain();
        t.input("\r\nRING\r\n");
        assert!(matches!(
            t.m.state(),
            ModemState::Answering | ModemState::Ringing
        ));
    }

    #[test]
    fn no_carrier_watch() {
        let mut w = NoCarrierWatch::default();
        assert!(!w.feed(b"\x7e\xff\x03\r\nNO CARR"));
        assert!(w.feed(b"IER\r\n"));
        assert!(!w.feed(b"\r\r\nNO CARRIER\r"));
        assert!(w.feed(b"\n"));
        assert!(!w.feed(b"NO CARRIER\r\n"));
    }
}
