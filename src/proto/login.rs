//! The classic text login before PPP (`login:` / `Password:`), for old clients that script
//! a terminal login after CONNECT; off by default.
//!
//! The dialogue prints a banner and `login: `, echoes the user name as it is typed (with
//! backspace), asks for the password without echo, and hands both out as credentials. On
//! success the caller starts PPP with the user already authenticated; after a refusal it
//! asks again, up to `max_attempts` times. A client that starts PPP instead of typing (a
//! flag followed by an address or escape byte, as mgetty's AutoPPP detects) ends the
//! dialogue at once and PPP takes over with the bytes that follow.

use super::auth::Secret;
use core::time::Duration;
use std::time::Instant;

/// Settings of the text login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginConfig {
    /// Printed once before the first prompt.
    pub banner: String,
    /// The user name prompt.
    pub prompt: String,
    /// The password prompt.
    pub password_prompt: String,
    /// Printed when the credentials are accepted, before PPP starts.
    pub welcome: String,
    /// The whole dialogue must end within this time.
    pub timeout: Duration,
    /// Refusals before the call is hung up.
    pub max_attempts: u32,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            banner: "\r\nnasd dial-in server\r\n".into(),
            prompt: "login: ".into(),
            password_prompt: "Password: ".into(),
            welcome: "\r\nStarting PPP\r\n".into(),
            timeout: Duration::from_secs(60),
            max_attempts: 3,
        }
    }
}

/// What the login dialogue reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginEvent {
    /// Decide on these, then call [`Login::verdict`].
    Credentials {
        /// The user name typed.
        user: String,
        /// The password typed.
        password: Secret,
    },
    /// The user logged in: start PPP (the user is authenticated).
    LoggedIn(String),
    /// The client sent PPP frames: start PPP with normal authentication. The bytes from
    /// the first PPP byte on were not consumed; the flag that announced them may have been
    /// (it ended an earlier chunk), so hand PPP a flag byte (0x7E) before the rest: an
    /// extra flag is harmless.
    Ppp,
    /// Too many refusals, or the time ran out: hang up.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    User,
    Password,
    Waiting,
    Done,
}

/// The longest user name or password accepted.
const MAX_FIELD: usize = 64;

/// The text login dialogue.
#[derive(Debug)]
pub struct Login {
    config: LoginConfig,
    stage: Stage,
    user: String,
    password: Vec<u8>,
    attempts: u32,
    deadline: Option<Instant>,
    out: Vec<u8>,
    events: Vec<LoginEvent>,
    /// The previous byte was a flag (0x7E): PPP may be starting.
    flag: bool,
}

impl Login {
    /// A dialogue with the given settings.
    pub fn new(config: LoginConfig) -> Self {
        Self {
            config,
            stage: Stage::Done,
            user: String::new(),
            password: Vec::new(),
            attempts: 0,
            deadline: None,
            out: Vec::new(),
            events: Vec::new(),
            flag: false,
        }
    }

    /// Prints the banner and the first prompt.
    pub fn start(&mut self, now: Instant) {
        self.out.extend_from_slice(self.config.banner.as_bytes());
        self.prompt();
        self.deadline = Some(now + self.config.timeout);
    }

    fn prompt(&mut self) {
        self.stage = Stage::User;
        self.user.clear();
        self.password.clear();
        self.out.extend_from_slice(self.config.prompt.as_bytes());
    }

    /// Bytes typed by the client. Returns how many were consumed: when PPP starts, the rest
    /// belongs to it.
    pub fn handle_input(&mut self, _now: Instant, data: &[u8]) -> usize {
        for (i, &b) in data.iter().enumerate() {
            if self.stage == Stage::Done {
                return i;
            }
            // A flag followed by the address (0xFF) or an escape (0x7D) is PPP.
            if self.flag && (b == 0xff || b == 0x7d) {
                self.stage = Stage::Done;
                self.deadline = None;
                self.events.push(LoginEvent::Ppp);
                return i.saturating_sub(1);
            }
            self.flag = b == 0x7e;
            if self.flag {
                continue;
            }
            match (self.stage, b) {
                (Stage::User | Stage::Password, b'\r' | b'\n') => self.end_field(),
                (Stage::User, 0x08 | 0x7f) if self.user.pop().is_some() => {
                    self.out.extend_from_slice(b"\x08 \x08");
                }
                (Stage::Password, 0x08 | 0x7f) => {
                    self.password.pop();
                }
                (Stage::User, 0x20..=0x7e) if self.user.len() < MAX_FIELD => {
                    self.user.push(char::from(b));
                    self.out.push(b);
                }
                (Stage::Password, 0x20..=0xff) if self.password.len() < MAX_FIELD => {
                    self.password.push(b)
                }
                _ => {}
            }
        }
        data.len()
    }

    fn end_field(&mut self) {
        match self.stage {
            Stage::User if self.user.is_empty() => {
                self.out.extend_from_slice(b"\r\n");
                self.out.extend_from_slice(self.config.prompt.as_bytes());
            }
            Stage::User => {
                self.stage = Stage::Password;
                self.out.extend_from_slice(b"\r\n");
                self.out
                    .extend_from_slice(self.config.password_prompt.as_bytes());
            }
            Stage::Password => {
                self.stage = Stage::Waiting;
                self.out.extend_from_slice(b"\r\n");
                self.events.push(LoginEvent::Credentials {
                    user: self.user.clone(),
                    password: Secret::new(core::mem::take(&mut self.password)),
                });
            }
            Stage::Waiting | Stage::Done => {}
        }
    }

    /// The verdict on the last credentials.
    pub fn verdict(&mut self, accepted: bool) {
        if self.stage != Stage::Waiting {
            return;
        }
        if accepted {
            self.out.extend_from_slice(self.config.welcome.as_bytes());
            self.stage = Stage::Done;
            self.deadline = None;
            self.events.push(LoginEvent::LoggedIn(self.user.clone()));
            return;
        }
        self.attempts += 1;
        self.out.extend_from_slice(b"Login incorrect\r\n");
        if self.attempts >= self.config.max_attempts {
            self.stage = Stage::Done;
            self.deadline = None;
            self.events.push(LoginEvent::Failed);
        } else {
            self.prompt();
        }
    }

    /// When [`Login::handle_timeout`] should run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// The time limit may have passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| d <= now) {
            self.deadline = None;
            self.stage = Stage::Done;
            self.out.extend_from_slice(b"\r\nTimed out\r\n");
            self.events.push(LoginEvent::Failed);
        }
    }

    /// Text to send to the client; the caller writes it and clears the vector.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<LoginEvent> {
        (!self.events.is_empty()).then(|| self.events.remove(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> (Login, Instant) {
        let now = Instant::now();
        let mut l = Login::new(LoginConfig::default());
        l.start(now);
        (l, now)
    }

    fn out(l: &mut Login) -> String {
        String::from_utf8(core::mem::take(l.output())).unwrap()
    }

    #[test]
    fn a_terminal_login_then_ppp() {
        let (mut l, now) = login();
        assert!(out(&mut l).ends_with("login: "));
        l.handle_input(now, b"dialx\x7f");
        l.handle_input(now, b"\r");
        let shown = out(&mut l);
        assert!(shown.starts_with("dialx\x08 \x08"), "{shown:?}");
        assert!(shown.ends_with("Password: "));
        l.handle_input(now, b"s3cret\r");
        assert!(
            !out(&mut l).contains("s3cret"),
            "the password is not echoed"
        );
        let Some(LoginEvent::Credentials { user, password }) = l.poll_event() else {
            panic!()
        };
        assert_eq!((user.as_str(), password.expose()), ("dial", &b"s3cret"[..]));
        l.verdict(true);
        assert!(out(&mut l).contains("Starting PPP"));
        assert_eq!(l.poll_event(), Some(LoginEvent::LoggedIn("dial".into())));
        assert_eq!(
            l.handle_input(now, b"\x7e\xff\x7d\x23"),
            0,
            "the rest is PPP's"
        );
    }

    #[test]
    fn refusals_then_hang_up() {
        let (mut l, now) = login();
        for i in 1..=3 {
            l.handle_input(now, b"u\rp\r");
            assert!(matches!(
                l.poll_event(),
                Some(LoginEvent::Credentials { .. })
            ));
            l.verdict(false);
            let o = out(&mut l);
            assert!(o.contains("Login incorrect"));
            assert_eq!(o.ends_with("login: "), i < 3);
        }
        assert_eq!(l.poll_event(), Some(LoginEvent::Failed));
    }

    #[test]
    fn ppp_frames_skip_the_login() {
        let (mut l, now) = login();
        let data = b"\r\x7e\xff\x7d\x23\xc0\x21";
        let n = l.handle_input(now, data);
        assert_eq!(&data[n..], b"\x7e\xff\x7d\x23\xc0\x21");
        assert_eq!(l.poll_event(), Some(LoginEvent::Ppp));
        // Escaped form: 7E 7D DF (0xFF escaped), with the flag ending the previous chunk.
        let (mut l, now) = login();
        assert_eq!(l.handle_input(now, b"\x7e"), 1);
        assert_eq!(l.handle_input(now, b"\x7d\xdf"), 0);
        assert_eq!(l.poll_event(), Some(LoginEvent::Ppp));
    }

    #[test]
    fn the_time_limit_and_long_input() {
        let (mut l, now) = login();
        l.handle_input(now, &[b'a'; 500]);
        assert!(
            out(&mut l).len() < 100,
            "input beyond the field size is not echoed"
        );
        l.handle_timeout(now + Duration::from_secs(59));
        assert_eq!(l.poll_event(), None);
        l.handle_timeout(now + Duration::from_secs(60));
        assert_eq!(l.poll_event(), Some(LoginEvent::Failed));
    }
}
