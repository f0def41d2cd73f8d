//! A sans-IO Hayes modem: AT commands and result codes, the `+++` escape, and the call states
//! one modem goes through.
//!
//! A [`Modem`] sits between its DTE (the program on the serial line: nasd, chat, a terminal)
//! and the telephone network (the [`super::switch::Switch`]). It never reads a clock and never
//! does I/O: the caller passes `now` in and drains what the modem produced:
//!
//! * [`Modem::handle_dte_input`]: bytes typed by the DTE (commands, or data when online);
//! * [`Modem::handle_timeout`]: the `+++` guard time, S7 (wait for carrier);
//! * network notifications: [`Modem::ring`], [`Modem::ringing_stopped`], [`Modem::ringback`],
//!   [`Modem::connected`], [`Modem::call_failed`], [`Modem::carrier_lost`],
//!   [`Modem::remote_data`];
//! * DTE line changes: [`Modem::dte_hangup`] (DTR dropped), [`Modem::reset`] (a new DTE);
//!
//! and then drains [`Modem::take_dte_output`] (bytes for the DTE), [`Modem::take_line_output`]
//! (data for the remote modem), [`Modem::poll_event`] (what it asks the network to do) and
//! [`Modem::poll_timeout`] (when to call `handle_timeout` next).
//!
//! # Commands
//!
//! Lines start with `AT` (any case) and end with S3 (CR); LF and other characters before the
//! `AT` are ignored, S5 (backspace) edits, and `A/` repeats the last line. One line may carry
//! several commands (`ATE0V1Q0`, `AT&D2&C1S0=0`). Supported: `Z`, `&F`, `E`, `V`, `Q`, `X`,
//! `L`, `M`, `B`, `H`, `I`, `O`, `A`, `D` (with `T`/`P` and the usual dial modifiers),
//! `Sn=v`, `Sn?`, `&C`, `&D`, `&K`, `&Q`, `&S`, `&W` (accepted), and `+VCID=n` / `#CID=n`
//! (caller id on or off, default on). Anything else answers `ERROR`.
//!
//! Result codes are framed as real modems frame them: `\r\nOK\r\n` in verbose mode (V1),
//! `0\r` in numeric mode (V0), nothing in quiet mode (Q1). `CONNECT <speed>` is numeric code 1
//! whatever the speed.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

mod commands;

/// A Hayes result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultCode {
    /// `OK` (0): the command line was executed.
    Ok,
    /// `CONNECT` (1): a call is up and the modem is in data mode.
    Connect,
    /// `RING` (2): an incoming call rings.
    Ring,
    /// `NO CARRIER` (3): the call ended, or could not be set up.
    NoCarrier,
    /// `ERROR` (4): the command line was not understood.
    Error,
    /// `NO DIALTONE` (6): the line cannot dial now.
    NoDialtone,
    /// `BUSY` (7): the called number is busy.
    Busy,
    /// `NO ANSWER` (8): the called number rang but nobody answered within S7 seconds.
    NoAnswer,
}

impl ResultCode {
    /// The numeric code sent in V0 mode.
    pub fn code(self) -> u8 {
        match self {
            ResultCode::Ok => 0,
            ResultCode::Connect => 1,
            ResultCode::Ring => 2,
            ResultCode::NoCarrier => 3,
            ResultCode::Error => 4,
            ResultCode::NoDialtone => 6,
            ResultCode::Busy => 7,
            ResultCode::NoAnswer => 8,
        }
    }

    /// The text sent in V1 mode.
    pub fn text(self) -> &'static str {
        match self {
            ResultCode::Ok => "OK",
            ResultCode::Connect => "CONNECT",
            ResultCode::Ring => "RING",
            ResultCode::NoCarrier => "NO CARRIER",
            ResultCode::Error => "ERROR",
            ResultCode::NoDialtone => "NO DIALTONE",
            ResultCode::Busy => "BUSY",
            ResultCode::NoAnswer => "NO ANSWER",
        }
    }
}

/// What a modem asks of the telephone network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModemEvent {
    /// Go off hook and dial this number (digits, `*` and `#` only).
    Dial(String),
    /// Answer the call that is ringing.
    Answer,
    /// Go on hook: end the call (or the dialling attempt) this modem is part of.
    Hangup,
    /// S7 ran out while dialling or answering: the modem went on hook by itself.
    GaveUp,
}

/// The state of a modem, as shown by the control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModemState {
    /// On hook, in command mode.
    Idle,
    /// Off hook without a call (`ATH1`): callers get `BUSY`.
    OffHook,
    /// On hook, in command mode, and an incoming call rings.
    Ringing,
    /// Dialled; waiting for the call to be answered (or to fail).
    Dialing,
    /// Answered; waiting for the carrier.
    Answering,
    /// In a call, in data mode.
    Online,
    /// In a call, in command mode (after `+++`); `ATO` goes back online.
    OnlineCommand,
}

/// Caller id of an incoming call, shown between the first and the second `RING`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerId {
    /// `MMDD`.
    pub date: String,
    /// `HHMM`.
    pub time: String,
    /// The caller's number.
    pub number: String,
    /// The caller's name.
    pub name: String,
}

/// Settings of a modem that commands do not change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModemConfig {
    /// What `ATI` answers.
    pub identity: String,
}

impl Default for ModemConfig {
    fn default() -> Self {
        Self {
            identity: "vmodem".into(),
        }
    }
}

/// S-register numbers with a meaning here.
pub mod sreg {
    /// Rings before auto-answer (0: never).
    pub const AUTO_ANSWER: usize = 0;
    /// Rings counted on the current incoming call.
    pub const RING_COUNT: usize = 1;
    /// The escape character (`+`; above 127 disables the escape).
    pub const ESCAPE_CHAR: usize = 2;
    /// The command line terminator (CR).
    pub const CR: usize = 3;
    /// The response formatting character (LF).
    pub const LF: usize = 4;
    /// The backspace character.
    pub const BS: usize = 5;
    /// Seconds to wait for carrier after dialling or answering.
    pub const WAIT_CARRIER: usize = 7;
    /// The escape guard time in fiftieths of a second.
    pub const GUARD: usize = 12;
}

/// Longest command line kept; longer lines answer `ERROR`.
pub const MAX_COMMAND_LINE: usize = 255;

const DEFAULT_SREGS: [(usize, u8); 11] = [
    (0, 0),
    (1, 0),
    (2, b'+'),
    (3, b'\r'),
    (4, b'\n'),
    (5, 8),
    (6, 2),
    (7, 60),
    (8, 2),
    (10, 14),
    (12, 50),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Command,
    Dialing { deadline: Instant, ringback: bool },
    Answering { deadline: Instant },
    Online,
    OnlineCommand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seek {
    /// Waiting for `A`.
    A,
    /// Saw `A`, waiting for `T` or `/`.
    T,
    /// Inside a command line.
    Line,
}

/// The `+++` escape detector.
#[derive(Debug, Clone, Copy)]
struct Escape {
    /// When the DTE last sent a byte in data mode (or the call came up).
    last_byte: Instant,
    /// Escape characters seen in a row, each within the guard time of the previous.
    count: u8,
    /// Three escape characters seen: command mode at this time unless more bytes come.
    deadline: Option<Instant>,
}

/// One emulated Hayes modem. See the [module documentation](self).
#[derive(Debug)]
pub struct Modem {
    config: ModemConfig,
    sregs: [u8; 256],
    echo: bool,
    verbose: bool,
    quiet: bool,
    caller_id: bool,
    state: State,
    /// An incoming call rings (on hook only).
    ringing: bool,
    /// Taken off hook by `ATH1` (busy to callers).
    hook_off: bool,
    seek: Seek,
    line: Vec<u8>,
    line_overflow: bool,
    last_line: Vec<u8>,
    speed_text: String,
    escape: Escape,
    dte_out: Vec<u8>,
    line_out: Vec<u8>,
    events: VecDeque<ModemEvent>,
}

impl Modem {
    /// A modem in its factory state, on hook, in command mode.
    pub fn new(config: ModemConfig, now: Instant) -> Self {
        let mut m = Self {
            config,
            sregs: [0; 256],
            echo: true,
            verbose: true,
            quiet: false,
            caller_id: true,
            state: State::Command,
            ringing: false,
            hook_off: false,
            seek: Seek::A,
            line: Vec::new(),
            line_overflow: false,
            last_line: Vec::new(),
            speed_text: String::new(),
            escape: Escape {
                last_byte: now,
                count: 0,
                deadline: None,
            },
            dte_out: Vec::new(),
            line_out: Vec::new(),
            events: VecDeque::new(),
        };
        m.factory_settings();
        m
    }

    fn factory_settings(&mut self) {
        let ring_count = self.sregs[sreg::RING_COUNT];
        self.sregs = [0; 256];
        for (n, v) in DEFAULT_SREGS {
            self.sregs[n] = v;
        }
        self.sregs[sreg::RING_COUNT] = ring_count;
        self.echo = true;
        self.verbose = true;
        self.quiet = false;
        self.caller_id = true;
    }

    // ----- queries -----

    /// The state shown to operators.
    pub fn state(&self) -> ModemState {
        match self.state {
            State::Command if self.hook_off => ModemState::OffHook,
            State::Command if self.ringing => ModemState::Ringing,
            State::Command => ModemState::Idle,
            State::Dialing { .. } => ModemState::Dialing,
            State::Answering { .. } => ModemState::Answering,
            State::Online => ModemState::Online,
            State::OnlineCommand => ModemState::OnlineCommand,
        }
    }

    /// Whether the modem is off hook: dialling, answering, in a call, or after `ATH1`.
    pub fn off_hook(&self) -> bool {
        self.hook_off || !matches!(self.state, State::Command)
    }

    /// Whether command-mode echo (E1) is on.
    pub fn echo(&self) -> bool {
        self.echo
    }

    /// Whether result codes are words (V1) rather than numbers (V0).
    pub fn verbose(&self) -> bool {
        self.verbose
    }

    /// Whether result codes are suppressed (Q1).
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// The value of S-register `n`.
    pub fn sreg(&self, n: usize) -> u8 {
        self.sregs[n]
    }

    /// The escape guard time (S12 fiftieths of a second).
    pub fn guard_time(&self) -> Duration {
        Duration::from_millis(u64::from(self.sregs[sreg::GUARD]) * 20)
    }

    fn wait_carrier(&self) -> Duration {
        Duration::from_secs(u64::from(self.sregs[sreg::WAIT_CARRIER].max(1)))
    }

    // ----- outputs -----

    /// Takes the bytes to send to the DTE.
    pub fn take_dte_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.dte_out)
    }

    /// Takes the data to send to the remote modem (data mode only).
    pub fn take_line_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.line_out)
    }

    /// The next request to the network.
    pub fn poll_event(&mut self) -> Option<ModemEvent> {
        self.events.pop_front()
    }

    /// When [`Modem::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let state = match self.state {
            State::Dialing { deadline, .. } | State::Answering { deadline } => Some(deadline),
            _ => None,
        };
        let escape = match self.state {
            State::Online => self.escape.deadline,
            _ => None,
        };
        match (state, escape) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----- framing -----

    fn crlf(&mut self) {
        self.dte_out.push(self.sregs[sreg::CR]);
        self.dte_out.push(self.sregs[sreg::LF]);
    }

    fn result(&mut self, code: ResultCode) {
        self.result_with(code, "");
    }

    fn result_with(&mut self, code: ResultCode, extra: &str) {
        if self.quiet {
            return;
        }
        if self.verbose {
            self.crlf();
            self.dte_out.extend_from_slice(code.text().as_bytes());
            self.dte_out.extend_from_slice(extra.as_bytes());
            self.crlf();
        } else {
            self.dte_out
                .extend_from_slice(code.code().to_string().as_bytes());
            self.dte_out.push(self.sregs[sreg::CR]);
        }
    }

    fn info(&mut self, text: &str) {
        if self.verbose {
            self.crlf();
        }
        self.dte_out.extend_from_slice(text.as_bytes());
        self.crlf();
    }

    // ----- DTE input -----

    /// Bytes from the DTE: commands in command mode, data in data mode.
    pub fn handle_dte_input(&mut self, now: Instant, bytes: &[u8]) {
        for &b in bytes {
            match self.state {
                State::Online => self.data_byte(now, b),
                State::Dialing { .. } | State::Answering { .. } => {
                    // Any key aborts a call being set up; line feeds and NULs are not keys.
                    if b != self.sregs[sreg::LF] && b != 0 && b != self.sregs[sreg::CR] {
                        self.go_on_hook();
                        self.result(ResultCode::NoCarrier);
                    }
                }
                State::Command | State::OnlineCommand => self.command_byte(now, b),
            }
        }
    }

    fn data_byte(&mut self, now: Instant, b: u8) {
        let guard = self.guard_time();
        let esc = self.sregs[sreg::ESCAPE_CHAR];
        let gap = now.saturating_duration_since(self.escape.last_byte);
        if esc <= 127 && b == esc {
            self.escape.count = match self.escape.count {
                // The first escape character must follow a guard time of silence.
                0 => u8::from(gap >= guard),
                // The next ones must follow within the guard time; after a longer pause,
                // this one may start a new sequence.
                n @ 1..=2 if gap <= guard => n + 1,
                1..=2 => 1,
                // A fourth one cancels the escape.
                _ => 0,
            };
            self.escape.deadline = (self.escape.count == 3).then(|| now + guard);
        } else {
            self.escape.count = 0;
            self.escape.deadline = None;
        }
        self.escape.last_byte = now;
        self.line_out.push(b);
    }

    fn command_byte(&mut self, now: Instant, b: u8) {
        if self.echo {
            self.dte_out.push(b);
        }
        match self.seek {
            Seek::A => {
                if b.eq_ignore_ascii_case(&b'A') {
                    self.seek = Seek::T;
                }
            }
            Seek::T => {
                if b.eq_ignore_ascii_case(&b'T') {
                    self.seek = Seek::Line;
                    self.line.clear();
                    self.line_overflow = false;
                } else if b == b'/' {
                    self.seek = Seek::A;
                    let last = self.last_line.clone();
                    self.execute(now, &last);
                } else if b.eq_ignore_ascii_case(&b'A') {
                    self.seek = Seek::T;
                } else {
                    self.seek = Seek::A;
                }
            }
            Seek::Line => {
                if b == self.sregs[sreg::CR] {
                    self.seek = Seek::A;
                    if self.line_overflow {
                        self.result(ResultCode::Error);
                    } else {
                        let line = std::mem::take(&mut self.line);
                        self.last_line.clone_from(&line);
                        self.execute(now, &line);
                    }
                } else if b == self.sregs[sreg::BS] {
                    self.line.pop();
                } else if b.is_ascii_graphic() || b == b' ' {
                    if self.line.len() < MAX_COMMAND_LINE {
                        self.line.push(b);
                    } else {
                        self.line_overflow = true;
                    }
                }
                // Other control characters (LF among them) are ignored.
            }
        }
    }

    fn go_online(&mut self, now: Instant) {
        self.state = State::Online;
        self.escape = Escape {
            last_byte: now,
            count: 0,
            deadline: None,
        };
    }

    /// Leaves any call (asking the network to end it) and returns to command mode.
    fn go_on_hook(&mut self) {
        self.hook_off = false;
        if self.state != State::Command {
            self.events.push_back(ModemEvent::Hangup);
            self.state = State::Command;
        }
        self.escape.count = 0;
        self.escape.deadline = None;
    }

    fn give_up(&mut self) {
        self.state = State::Command;
        self.hook_off = false;
        self.events.push_back(ModemEvent::GaveUp);
    }

    // ----- timers -----

    /// Runs what is due at `now`: the `+++` guard after the escape, S7 expiry.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Online if self.escape.deadline.is_some_and(|d| d <= now) => {
                self.escape.deadline = None;
                self.escape.count = 0;
                self.state = State::OnlineCommand;
                self.seek = Seek::A;
                self.result(ResultCode::Ok);
            }
            State::Dialing { deadline, ringback } if deadline <= now => {
                self.give_up();
                self.result(if ringback {
                    ResultCode::NoAnswer
                } else {
                    ResultCode::NoCarrier
                });
            }
            State::Answering { deadline } if deadline <= now => {
                self.give_up();
                self.result(ResultCode::NoCarrier);
            }
            _ => {}
        }
    }

    // ----- network notifications -----

    /// The line rings once; `caller` is shown after the first ring when caller id is on.
    /// Answers by itself (emits [`ModemEvent::Answer`]) once S0 rings have been counted.
    pub fn ring(&mut self, now: Instant, caller: Option<&CallerId>) {
        if self.state != State::Command || self.hook_off {
            return;
        }
        self.ringing = true;
        self.sregs[sreg::RING_COUNT] = self.sregs[sreg::RING_COUNT].saturating_add(1);
        self.result(ResultCode::Ring);
        if let (Some(c), true) = (caller, self.caller_id) {
            for (key, value) in [
                ("DATE", &c.date),
                ("TIME", &c.time),
                ("NMBR", &c.number),
                ("NAME", &c.name),
            ] {
                self.crlf();
                self.dte_out
                    .extend_from_slice(format!("{key} = {value}").as_bytes());
            }
            self.crlf();
        }
        let s0 = self.sregs[sreg::AUTO_ANSWER];
        if s0 > 0 && self.sregs[sreg::RING_COUNT] >= s0 {
            self.answer(now);
        }
    }

    /// The caller gave up: the ringing stops (no result code, as on real lines).
    pub fn ringing_stopped(&mut self) {
        self.ringing = false;
        self.sregs[sreg::RING_COUNT] = 0;
        if matches!(self.state, State::Answering { .. }) {
            self.state = State::Command;
            self.result(ResultCode::NoCarrier);
        }
    }

    /// The called line rings: if S7 runs out now, the result is `NO ANSWER`.
    pub fn ringback(&mut self) {
        if let State::Dialing { ringback, .. } = &mut self.state {
            *ringback = true;
        }
    }

    /// The call is up at `speed` bits per second: `CONNECT <speed><suffix>`, data mode.
    pub fn connected(&mut self, now: Instant, speed: u32, suffix: &str) {
        if !matches!(self.state, State::Dialing { .. } | State::Answering { .. }) {
            return;
        }
        self.ringing = false;
        self.sregs[sreg::RING_COUNT] = 0;
        self.speed_text = format!(" {speed}{suffix}");
        self.go_online(now);
        let speed = self.speed_text.clone();
        self.result_with(ResultCode::Connect, &speed);
    }

    /// The dialled call could not be made: `code` is the result (`BUSY`, `NO ANSWER`, ...).
    pub fn call_failed(&mut self, code: ResultCode) {
        if matches!(self.state, State::Dialing { .. }) {
            self.state = State::Command;
            self.result(code);
        }
    }

    /// The remote side hung up (or the line was cut): `NO CARRIER`, command mode.
    pub fn carrier_lost(&mut self) {
        if self.state != State::Command {
            self.state = State::Command;
            self.seek = Seek::A;
            self.escape.count = 0;
            self.escape.deadline = None;
            self.result(ResultCode::NoCarrier);
        }
    }

    /// Data from the remote modem: passed to the DTE in data mode, discarded in command mode.
    pub fn remote_data(&mut self, data: &[u8]) {
        if self.state == State::Online {
            self.dte_out.extend_from_slice(data);
        }
    }

    // ----- DTE line -----

    /// The DTE went away (DTR dropped): the modem hangs up as with `&D2`; output pending for
    /// the DTE is discarded.
    pub fn dte_hangup(&mut self) {
        self.go_on_hook();
        self.seek = Seek::A;
        self.line.clear();
        self.dte_out.clear();
        self.line_out.clear();
    }

    /// A new DTE took the line: like `ATZ` without a result code (an incoming call keeps
    /// ringing).
    pub fn reset(&mut self) {
        self.go_on_hook();
        self.factory_settings();
        self.seek = Seek::A;
        self.line.clear();
        self.dte_out.clear();
        self.line_out.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        Instant::now()
    }

    fn modem() -> (Modem, Instant) {
        let now = t0();
        (Modem::new(ModemConfig::default(), now), now)
    }

    /// Types a line and returns what the DTE received.
    fn cmd(m: &mut Modem, now: Instant, line: &str) -> String {
        m.handle_dte_input(now, line.as_bytes());
        String::from_utf8(m.take_dte_output()).unwrap()
    }

    fn quiet_echo(m: &mut Modem, now: Instant) {
        cmd(m, now, "ATE0\r");
    }

    fn events(m: &mut Modem) -> Vec<ModemEvent> {
        std::iter::from_fn(|| m.poll_event()).collect()
    }

    /// A modem in a call (as the caller), data mode, and the time the call came up.
    fn online() -> (Modem, Instant) {
        let (mut m, now) = modem();
        quiet_echo(&mut m, now);
        assert_eq!(cmd(&mut m, now, "ATD5551234\r"), "");
        assert_eq!(events(&mut m), vec![ModemEvent::Dial("5551234".into())]);
        m.connected(now, 33600, "");
        assert_eq!(
            String::from_utf8(m.take_dte_output()).unwrap(),
            "\r\nCONNECT 33600\r\n"
        );
        assert_eq!(m.state(), ModemState::Online);
        (m, now)
    }

    fn caller() -> CallerId {
        CallerId {
            date: "0321".into(),
            time: "1405".into(),
            number: "5550001".into(),
            name: "CLIENT 1".into(),
        }
    }

    #[test]
    fn result_codes_verbose_and_numeric() {
        let all = [
            (ResultCode::Ok, 0, "OK"),
            (ResultCode::Connect, 1, "CONNECT"),
            (ResultCode::Ring, 2, "RING"),
            (ResultCode::NoCarrier, 3, "NO CARRIER"),
            (ResultCode::Error, 4, "ERROR"),
            (ResultCode::NoDialtone, 6, "NO DIALTONE"),
            (ResultCode::Busy, 7, "BUSY"),
            (ResultCode::NoAnswer, 8, "NO ANSWER"),
        ];
        for (code, n, text) in all {
            assert_eq!(code.code(), n);
            assert_eq!(code.text(), text);
            let (mut m, _) = modem();
            m.result(code);
            assert_eq!(m.take_dte_output(), format!("\r\n{text}\r\n").as_bytes());
            m.verbose = false;
            m.result(code);
            assert_eq!(m.take_dte_output(), format!("{n}\r").as_bytes());
        }
    }

    #[test]
    fn at_answers_ok_with_echo() {
        let (mut m, now) = modem();
        assert_eq!(cmd(&mut m, now, "AT\r"), "AT\r\r\nOK\r\n");
        assert_eq!(cmd(&mut m, now, "at\r"), "at\r\r\nOK\r\n");
    }

    #[test]
    fn echo_off_and_on() {
        let (mut m, now) = modem();
        assert_eq!(cmd(&mut m, now, "ATE0\r"), "ATE0\r\r\nOK\r\n");
        assert!(!m.echo());
        assert_eq!(cmd(&mut m, now, "AT\r"), "\r\nOK\r\n");
        assert_eq!(cmd(&mut m, now, "ATE1\r"), "\r\nOK\r\n");
        assert_eq!(cmd(&mut m, now, "AT\r"), "AT\r\r\nOK\r\n");
        // A missing digit means 0.
        assert_eq!(cmd(&mut m, now, "ATE\r"), "ATE\r\r\nOK\r\n");
        assert!(!m.echo());
    }

    #[test]
    fn numeric_result_codes() {
        let (mut m, now) = modem();
        quiet_echo(&mut m, now);
        assert_eq!(cmd(&mut m, now, "ATV0\r"), "0\r");
        assert!(!m.verbose());
        assert_eq!(cmd(&mut m, now, "ATX\r"), "0\r");
        assert_eq!(cmd(&mut m, now, "ATFOO\r"), "4\r");
        assert_eq!(cmd(&mut m, now, "ATA\r"), "3\r");
        assert_eq!(cmd(&mut m, now, "ATV1\r"), "\r\nOK\r\n");
    }

    #[test]
    fn quiet_mode_suppresses_results_not_information() {
        let (mut m, now) = modem();
        quiet_echo(&mut m, now);
        assert_eq!(cmd(&mut m, now, "ATQ1\r"), "");
        assert!(m.quiet());
        assert_eq!(cmd(&mut m, now, "ATBOGUS\r"), "");
        assert_eq!(cmd(&mut m, now, "ATS7?\r"), "\r\n060\r\n");
        assert_eq!(cmd(&mut m, now, "ATI\r"), "\r\nvmodem\r\n");
        assert_eq!(cmd(&mut m, now, "ATQ0\r"), "\r\nOK\r\n");
    }

    #[test]
    fn several_commands_on_one_line() {
        let (mut m, now) = modem();
        assert_eq!(cmd(&mut m, now, "ATE0V1Q0\r"), "ATE0V1Q0\r\r\nOK\r\n");
        assert_eq!(cmd(&mut m, now, "AT&D2&C1S0=0\r"), "\r\nOK\r\n");
        assert_eq!(cmd(&mut m, now, "AT S0=2 S7=45 X4 M0 L0\r"), "\r\nOK\r\n");
        assert_eq!(m.sreg(0), 2);
        assert_eq!(m.sreg(7), 45);
        assert_eq!(cmd(&mut m, now, "ATV0E1\r"), "0\r");
        assert!(m.echo() && !m.verbose());
        // A mixed-case line.
        assert_eq!(cmd(&mut m, now, "aTe0V1\r"), "aTe0V1\r\r\nOK\r\n");
    }

    #[test]
    fn s_registers_set_and_query() {
        let (mut m, now) = modem();
        quiet_echo(&mut m, now);
        assert_eq!(cmd(&mut m, now, "ATS0?\r"), "\r\n000\r\n\r\nOK\r\n");
        assert_eq!(cmd(&mut m, now, "ATS0=3S0?\r"), "\r\n003\r\n\r\nOK\r\n");
        assert_eq!(
            cmd(&mut m, now, "ATS12?S7?\r"),
            "\r\n050\r\n\r\n060\r\n\r\nOK\r\n"
        );
        assert_eq!(cmd(&mut m, now, "ATS95=44\r"), "\r\nOK\r\n");
        assert_eq!(m.sreg(95), 44);
        assert_eq!(cmd(&mut m, now, "ATS7=256\r"), "\r\nERROR\r\n");
        assert_eq!(cmd(&mut m, now, "ATS256=1\r"), "\r\nERROR\r\n");
        assert_eq!(cmd(&mut m, now, "ATS7\r"), "\r\nERROR\r\n");
        assert_eq!(cmd(&mut m, now, "ATS=1\r"), "\r\nERROR\r\n");
        assert_eq!(cmd(&mut m, now, "ATS99999999999999=1\r"), "\r\nERROR\r\n");
        // Numeric mode: information text without the leading CR LF.
        assert_eq!(cmd(&mut m, now, "ATV0S0?\r"), "003\r\n0\r");
    }

    #[test]
    fn atz_and_at_f_restore_defaults() {
        let (mut m, now) = modem();
        cmd(&mut m, now, "ATE0V0Q0S0=5S12=10\r");
        assert_eq!(cmd(&mut m, now, "ATZ\r"), "\r\nOK\r\n");
        assert!(m.echo() && m.verbose() && !m.quiet());
        assert_eq!((m.sreg(0), m.sreg(12)), (0, 50));
        cmd(&mut m, now, "ATE0S0=5\r");
        assert_eq!(cmd(&mut m, now, "AT&F\r"), "\r\nOK\r\n");
        assert!(m.echo());
        assert_eq!(m.sreg(0), 0);
        assert_eq!(cmd(&mut m, now, "ATZ9\r"), "ATZ9\r\r\nERROR\r\n");
    }

    #[test]
    fn accepted_commands() {
        let (mut m, now) = modem();
        quiet_echo(&mut m, now);
        for c in [
            "ATX0",
            "ATX4",
            "ATL2",
            "ATM1",
            "ATB0",
            "AT&C1",
            "AT&D0",
            "AT&D3",
            "AT&K3",
            "AT&W",
            "ATH",
            "ATH0",
            "AT+VCID=1",
            "AT#CID=1",
            "AT+VCID=0;#CID=2",
        ] {
            assert_eq!(cmd(&mut m, now, &format!("{c}\r")), "\r\nOK\r\n", "{c}");
        }
        assert_eq!(cmd(&mut m, now, "AT+VCID?\r"), "\r\n1\r\n\r\nOK\r\n");
    }

    #[test]
    fn ath1_takes_the_line_off_hook() {
        let (mut m, now) = modem();
        quiet_echo(&mut m, now);
        assert_eq!(cmd(&mut m, now, "ATH1\r"), "\r\nOK\r\n");
        assert_eq!(m.state(), ModemState::OffHook);
        assert!(m.off_hook());
        m.ring(now, None);
        assert!(
            m.take_dte_output().is_empty(),
            "an off-hook line does not ring"
        );
        assert_eq!(cmd(&mut m, now, "ATH0\r"), "\r\nOK\r\n");
        assert_eq!(m.state(), ModemState::Idle);
        assert!(events(&mut m).is_empty());
        cmd(&mut m, now, "ATH1\r");
        assert_eq!(cmd(&mut m, now, "ATZ\r"), "\r\nOK\r\n");
        assert!(!m.off_hook());
    }

    #[test]
    fn ati_identity() {
        let now = t0();
        let mut m = Modem::new(
            ModemConfig {
                identity: "vmodem test".into(),
            },
            now,
        );
        quiet_echo(&mut m, now);
        assert_eq!(cmd(&mut m, now, "ATI\r"), "\r\nvmodem test\r\n\r\nOK\r\n");
        assert_eq!(cmd(&mut m, now, "ATI3\r"), "\r\nvmodem test\r\n\r\nOK\r\n");
        assert_eq!(cmd(&mut m, now, "ATI10\r"), "\r\nERROR\r\n");
    }

    #[test]
    fn bad_input() {
        let (mut m, now) = modem();
        quiet_echo(&mut m, now);
        for c in [
            "ATY",
            "AT&Z",
            "ATE2",
            "ATV7",
            "ATQ2",
            "ATH2",
            "ATX9",
            "AT+FOO=1",
            "AT+VCID=7",
            "AT\\N3",
            "ATE0E2",
            "AT%C",
            "ATD555X1234",
        ] {
            assert_eq!(cmd(&mut m, now, &format!("{c}\r")), "\r\nERROR\r\n", "{c}");
        }
        // Processing stops at the first error: E1 was not executed.
        assert_eq!(cmd(&mut m, now, "ATY E1\r"), "\r\nERROR\r\n");
        assert!(!m.echo());
        // Lines not starting with AT are ignored, as are control characters and garbage.
        assert_eq!(cmd(&mut m, now, "hello\r\n\x00\x01\x7f\r"), "");
        assert_eq!(cmd(&mut m, now, "xxAT\r"), "\r\nOK\r\n");
        // An over-long line answers ERROR and the modem still works.
        let long = format!("AT{}\r", "S0=1".repeat(100));
        assert_eq!(cmd(&mut m, now, &long), "\r\nERROR\r\n");
        assert_eq!(cmd(&mut m, now, "AT\r"), "\r\nOK\r\n");
        // Arbitrary bytes never panic.
        let junk: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        m.handle_dte_input(now, &junk);
        m.take_dte_output();
        assert_eq!(cmd(&mut m, now, "\rAT\r"), "\r\nOK\r\n");
    }

    #[test]
    fn backspace_edits_the_line() {
        let (mut m, now) = modem();
        quiet_echo(&mut m, now);
        assert_eq!(cmd(&mut m, now, "ATE1Y\x08\r"), "\r\nOK\r\n");
        assert!(m.echo());
    }

    #[test]
    fn a_slash_repeats_the_last_line() {
        let (mut m, now) = modem();
        quiet_echo(&mut m, now);
        assert_eq!(cmd(&mut m, now, "ATS0?\r"), "\r\n000\r\n\r\nOK\r\n");
        assert_eq!(cmd(&mut m, now, "A/"), "\r\n000\r\n\r\nOK\r\n");
    }

    #[test]
    fn dialling_and_connect() {
        let (mut m, now) = modem();
        quiet_echo(&mut m, now);
        assert_eq!(cmd(&mut m, now, "ATDT 555-1234\r"), "");
        assert_eq!(events(&mut m), vec![ModemEvent::Dial("5551234".into())]);
        assert_eq!(m.state(), ModemState::Dialing);
        m.ringback();
        m.connected(now, 33600, "/ARQ");
        assert_eq!(m.take_dte_output(), b"\r\nCONNECT 33600/ARQ\r\n");
        assert!(m.off_hook());
        // Data mode: bytes go to the line, remote data to the DTE.
        m.handle_dte_input(now, b"ATH\r");
        assert_eq!(m.take_line_output(), b"ATH\r");
        m.remote_data(b"hello");
        assert_eq!(m.take_dte_output(), b"hello");
        // Numeric CONNECT.
        let (mut m, now) = modem();
        cmd(&mut m, now, "ATE0V0\r");
        cmd(&mut m, now, "ATDP5551234\r");
        m.connected(now, 9600, "");
        assert_eq!(m.take_dte_output(), b"1\r");
    }

    #[test]
    fn dial_failures() {
        for (code, text, num) in [
            (ResultCode::Busy, "\r\nBUSY\r\n", "7\r"),
            (ResultCode::NoAnswer, "\r\nNO ANSWER\r\n", "8\r"),
            (ResultCode::NoDialtone, "\r\nNO DIALTONE\r\n", "6\r"),
        ] {
            let (mut m, now) = modem();
            quiet_echo(&mut m, now);
            cmd(&mut m, now, "ATD1\r");
            m.call_failed(code);
            assert_eq!(m.take_dte_output(), text.as_bytes());
            assert_eq!(m.state(), ModemState::Idle);
            cmd(&mut m, now, "ATV0D1\r");
            m.call_failed(code);
            assert_eq!(m.take_dte_output(), num.as_bytes());
        }
        let (mut m, now) = modem();
        quiet_echo(&mut m, now);
        assert_eq!(cmd(&mut m, now, "ATD\r"), "\r\nERROR\r\n");
        assert_eq!(cmd(&mut m, now, "ATDT\r"), "\r\nERROR\r\n");
        assert!(events(&mut m).is_empty());
    }

    #[test]
    fn s7_expiry_gives_no_answer_or_no_carrier() {
        let (mut m, now) = modem();
        quiet_echo(&mut m, now);
        cmd(&mut m, now, "ATS7=5D5551234\r");
        events(&mut m);
        m.ringback();
        assert_eq!(m.poll_timeout(), Some(now + Duration::from_secs(5)));
        m.handle_timeout(now + Duration::from_millis(4999));
        assert_eq!(m.state(), ModemState::Dialing);
        m.handle_timeout(now + Duration::from_secs(5));
        assert_eq!(m.take_dte_output(), b"\r\nNO ANSWER\r\n");
        assert_eq!(events(&mut m), vec![ModemEvent::GaveUp]);
        assert_eq!(m.poll_timeout(), None);
        // Without ringback (the call never reached a line): NO CARRIER.
        cmd(&mut m, now, "ATD1\r");
        events(&mut m);
        m.handle_timeout(now + Duration::from_secs(60));
        assert_eq!(m.take_dte_output(), b"\r\nNO CARRIER\r\n");
    }

    #[test]
    fn a_key_aborts_dialling() {
        let (mut m, now) = modem();
        quiet_echo(&mut m, now);
        cmd(&mut m, now, "ATD1\r\n");
        events(&mut m);
        assert_eq!(m.state(), ModemState::Dialing);
        assert_eq!(cmd(&mut m, now, "x"), "\r\nNO CARRIER\r\n");
        assert_eq!(events(&mut m), vec![ModemEvent::Hangup]);
        assert_eq!(m.state(), ModemState::Idle);
    }

    #[test]
    fn ringing_caller_id_and_ata() {
        let (mut m, now) = modem();
        quiet_echo(&mut m, now);
        m.ring(now, Some(&caller()));
        assert_eq!(
            String::from_utf8(m.take_dte_output()).unwrap(),
            "\r\nRING\r\n\r\nDATE = 0321\r\nTIME = 1405\r\nNMBR = 5550001\r\nNAME = CLIENT 1\r\n"
        );
        assert_eq!(m.state(), ModemState::Ringing);
        m.ring(now, None);
        assert_eq!(m.take_dte_output(), b"\r\nRING\r\n");
        assert_eq!(cmd(&mut m, now, "ATS1?\r"), "\r\n002\r\n\r\nOK\r\n");
        assert_eq!(cmd(&mut m, now, "ATA\r"), "");
        assert_eq!(events(&mut m), vec![ModemEvent::Answer]);
        assert_eq!(m.state(), ModemState::Answering);
        m.connected(now, 33600, "");
        assert_eq!(m.take_dte_output(), b"\r\nCONNECT 33600\r\n");
        assert_eq!(m.sreg(sreg::RING_COUNT), 0);
        // Numeric RING, and caller id turned off.
        let (mut m, now) = modem();
        cmd(&mut m, now, "ATV0#CID=0\r");
        m.ring(now, Some(&caller()));
        assert_eq!(m.take_dte_output(), b"2\r");
    }

    #[test]
    fn ata_without_ring_is_no_carrier() {
        let (mut m, now) = modem();
        quiet_echo(&mut m, now);
        assert_eq!(cmd(&mut m, now, "ATA\r"), "\r\nNO CARRIER\r\n");
        assert!(events(&mut m).is_empty());
    }

    #[test]
    fn auto_answer_after_s0_rings() {
        let (mut m, now) = modem();
        cmd(&mut m, now, "ATE0S0=2\r");
        m.ring(now, Some(&caller()));
        assert!(events(&mut m).is_empty());
        m.ring(now, None);
        assert_eq!(events(&mut m), vec![ModemEvent::Answer]);
    }

    #[test]
    fn ringing_stops_when_the_caller_gives_up() {
        let (mut m, now) = modem();
        quiet_echo(&mut m, now);
        m.ring(now, None);
        assert_eq!(m.take_dte_output(), b"\r\nRING\r\n");
        m.ringing_stopped();
        assert_eq!(m.state(), ModemState::Idle);
        assert_eq!(m.sreg(sreg::RING_COUNT), 0);
        assert_eq!(cmd(&mut m, now, "ATA\r"), "\r\nNO CARRIER\r\n");
    }

    #[test]
    fn escape_with_guard_time() {
        let (mut m, t) = online();
        let s = Duration::from_secs(1);
        // Too soon after the call came up: just data.
        m.handle_dte_input(t + Duration::from_millis(500), b"+++");
        assert_eq!(m.poll_timeout(), None);
        m.handle_timeout(t + Duration::from_secs(5));
        assert_eq!(m.state(), ModemState::Online);
        // After a second of silence: +++, then a second of silence, then OK.
        let t1 = t + Duration::from_millis(1500) + s;
        m.handle_dte_input(t1, b"+");
        m.handle_dte_input(t1 + Duration::from_millis(100), b"++");
        let due = t1 + Duration::from_millis(100) + s;
        assert_eq!(m.poll_timeout(), Some(due));
        m.handle_timeout(due - Duration::from_millis(1));
        assert_eq!(m.state(), ModemState::Online);
        m.handle_timeout(due);
        assert_eq!(m.state(), ModemState::OnlineCommand);
        assert_eq!(m.take_dte_output(), b"\r\nOK\r\n");
        // The pluses went to the remote side as data.
        assert_eq!(m.take_line_output(), b"++++++");
        // Remote data is discarded in command mode; ATO goes back online.
        m.remote_data(b"lost");
        assert_eq!(cmd(&mut m, due, "ATO\r"), "\r\nCONNECT 33600\r\n");
        assert_eq!(m.state(), ModemState::Online);
        // +++ again, then ATH hangs up.
        let t2 = due + s;
        m.handle_dte_input(t2, b"+++");
        m.handle_timeout(t2 + s);
        assert_eq!(m.take_dte_output(), b"\r\nOK\r\n");
        assert_eq!(cmd(&mut m, t2 + s, "ATH\r"), "\r\nOK\r\n");
        assert_eq!(events(&mut m), vec![ModemEvent::Hangup]);
        assert_eq!(m.state(), ModemState::Idle);
    }

    #[test]
    fn escape_cancelled_by_data_after_or_between() {
        let s = Duration::from_secs(1);
        // A byte within the guard time after +++ cancels it.
        let (mut m, t) = online();
        m.handle_dte_input(t + s, b"+++");
        m.handle_dte_input(t + s + Duration::from_millis(300), b"x");
        assert_eq!(m.poll_timeout(), None);
        m.handle_timeout(t + 3 * s);
        assert_eq!(m.state(), ModemState::Online);
        // A fourth plus cancels it.
        let (mut m, t) = online();
        m.handle_dte_input(t + s, b"++++");
        assert_eq!(m.poll_timeout(), None);
        // Pluses too far apart are data.
        let (mut m, t) = online();
        m.handle_dte_input(t + s, b"+");
        m.handle_dte_input(t + 3 * s, b"+");
        m.handle_dte_input(t + 5 * s, b"+");
        assert_eq!(m.poll_timeout(), None);
        // Pluses inside other data are data.
        let (mut m, t) = online();
        m.handle_dte_input(t + 2 * s, b"a+++");
        assert_eq!(m.poll_timeout(), None);
    }

    #[test]
    fn s12_and_s2_change_the_escape() {
        let (mut m, t) = online();
        cmd(&mut m, t, "");
        m.sregs[sreg::GUARD] = 10; // 200 ms
        let g = Duration::from_millis(200);
        m.handle_dte_input(t + g, b"+++");
        m.handle_timeout(t + 2 * g);
        assert_eq!(m.state(), ModemState::OnlineCommand);
        assert_eq!(m.take_dte_output(), b"\r\nOK\r\n");
        assert_eq!(cmd(&mut m, t, "ATS2=33O\r"), "\r\nCONNECT 33600\r\n");
        let t1 = t + 3 * g;
        m.handle_dte_input(t1 + g, b"+++");
        assert_eq!(m.poll_timeout(), None);
        m.handle_dte_input(t1 + 3 * g, b"!!!");
        m.handle_timeout(t1 + 4 * g);
        assert_eq!(m.state(), ModemState::OnlineCommand);
        assert_eq!(m.take_dte_output(), b"\r\nOK\r\n");
        // Above 127: no escape at all.
        assert_eq!(cmd(&mut m, t, "ATS2=200O\r"), "\r\nCONNECT 33600\r\n");
        m.handle_dte_input(t1 + 6 * g, &[200, 200, 200]);
        assert_eq!(m.poll_timeout(), None);
    }

    #[test]
    fn carrier_loss_in_data_and_command_mode() {
        let (mut m, _) = online();
        m.carrier_lost();
        assert_eq!(m.take_dte_output(), b"\r\nNO CARRIER\r\n");
        assert_eq!(m.state(), ModemState::Idle);
        assert!(events(&mut m).is_empty(), "the network already knows");
        // On hook: nothing to lose.
        m.carrier_lost();
        assert!(m.take_dte_output().is_empty());
    }

    #[test]
    fn commands_while_online_command() {
        let (mut m, t) = online();
        m.handle_dte_input(t + Duration::from_secs(1), b"+++");
        m.handle_timeout(t + Duration::from_secs(2));
        m.take_dte_output();
        assert_eq!(cmd(&mut m, t, "ATD5551234\r"), "\r\nNO DIALTONE\r\n");
        assert_eq!(cmd(&mut m, t, "ATA\r"), "\r\nERROR\r\n");
        assert_eq!(cmd(&mut m, t, "ATS0?\r"), "\r\n000\r\n\r\nOK\r\n");
        assert_eq!(cmd(&mut m, t, "ATZ\r"), "\r\nOK\r\n");
        assert_eq!(events(&mut m), vec![ModemEvent::Hangup]);
        assert_eq!(cmd(&mut m, t, "ATO\r"), "ATO\r\r\nNO CARRIER\r\n");
    }

    #[test]
    fn dtr_drop_and_reset() {
        let (mut m, _) = online();
        m.remote_data(b"pending");
        m.dte_hangup();
        assert_eq!(events(&mut m), vec![ModemEvent::Hangup]);
        assert!(m.take_dte_output().is_empty());
        assert_eq!(m.state(), ModemState::Idle);
        let (mut m, now) = modem();
        cmd(&mut m, now, "ATE0V0\r");
        m.ring(now, None);
        m.reset();
        assert!(m.echo() && m.verbose());
        assert_eq!(m.state(), ModemState::Ringing, "the line still rings");
    }
}
