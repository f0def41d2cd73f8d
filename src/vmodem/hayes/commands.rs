//! The AT command interpreter of [`Modem`]: one command line at a time, several commands
//! per line, processing stopping at the first error.

use std::time::Instant;

use super::{Modem, ModemEvent, ResultCode, State};

impl Modem {
    /// Executes one command line (without its `AT`), answering with result codes.
    pub(super) fn execute(&mut self, now: Instant, line: &[u8]) {
        let cmd: Vec<u8> = line
            .iter()
            .filter(|b| **b != b' ')
            .map(u8::to_ascii_uppercase)
            .collect();
        let mut p = Parser { s: &cmd, i: 0 };
        while let Some(c) = p.next() {
            let ok = match c {
                b'E' => p.flag().map(|v| self.echo = v),
                b'V' => p.flag().map(|v| self.verbose = v),
                b'Q' => p.flag().map(|v| self.quiet = v),
                b'X' => p.ranged(7).map(drop),
                b'L' | b'M' => p.ranged(3).map(drop),
                b'B' => p.ranged(1).map(drop),
                b'Z' => p.ranged(1).map(|_| {
                    self.go_on_hook();
                    self.factory_settings();
                }),
                b'H' => match p.number() {
                    Some(0) => {
                        self.go_on_hook();
                        Some(())
                    }
                    Some(1) => {
                        if self.state == State::Command {
                            self.hook_off = true;
                        }
                        Some(())
                    }
                    _ => None,
                },
                b'I' => p.ranged(9).map(|_| {
                    let id = self.config.identity.clone();
                    self.info(&id);
                }),
                b'S' => self.sreg_command(&mut p),
                b'&' => match p.next() {
                    Some(b'F') => p.ranged(0).map(|_| self.factory_settings()),
                    Some(b'C' | b'D' | b'K' | b'Q' | b'S' | b'W') => p.ranged(9).map(drop),
                    _ => None,
                },
                b'+' | b'#' => self.extended(&mut p),
                b'O' => {
                    if p.ranged(1).is_none() {
                        None
                    } else {
                        if self.state == State::OnlineCommand {
                            self.go_online(now);
                            let speed = self.speed_text.clone();
                            self.result_with(ResultCode::Connect, &speed);
                        } else {
                            self.result(ResultCode::NoCarrier);
                        }
                        return;
                    }
                }
                b'A' => {
                    self.answer(now);
                    return;
                }
                b'D' => {
                    self.dial(now, p.rest());
                    return;
                }
                _ => None,
            };
            if ok.is_none() {
                self.result(ResultCode::Error);
                return;
            }
        }
        self.result(ResultCode::Ok);
    }

    fn sreg_command(&mut self, p: &mut Parser<'_>) -> Option<()> {
        let n = p.digits()?;
        if n > 255 {
            return None;
        }
        let n = n as usize;
        match p.next() {
            Some(b'=') => {
                let v = p.number()?;
                self.sregs[n] = u8::try_from(v).ok()?;
                Some(())
            }
            Some(b'?') => {
                let text = format!("{:03}", self.sregs[n]);
                self.info(&text);
                Some(())
            }
            _ => None,
        }
    }

    /// `+NAME=v`, `+NAME?`, `#NAME=v`: only caller id (`+VCID`, `#CID`) is known.
    fn extended(&mut self, p: &mut Parser<'_>) -> Option<()> {
        let start = p.i;
        while p.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            p.i += 1;
        }
        let name = &p.s[start..p.i];
        if name != b"VCID" && name != b"CID" {
            return None;
        }
        match p.next() {
            Some(b'=') => {
                let on = match p.next() {
                    Some(b'?') => {
                        self.info("(0-2)");
                        true
                    }
                    Some(b'0') => false,
                    Some(b'1' | b'2') => true,
                    _ => return None,
                };
                self.caller_id = on;
            }
            Some(b'?') => {
                let text = u8::from(self.caller_id).to_string();
                self.info(&text);
            }
            _ => return None,
        }
        if p.peek() == Some(b';') {
            p.i += 1;
        }
        Some(())
    }

    /// `ATA`, or an auto-answer after S0 rings.
    pub(super) fn answer(&mut self, now: Instant) {
        match self.state {
            State::Command if self.ringing => {
                self.state = State::Answering {
                    deadline: now + self.wait_carrier(),
                };
                self.events.push_back(ModemEvent::Answer);
            }
            State::Command => self.result(ResultCode::NoCarrier),
            _ => self.result(ResultCode::Error),
        }
    }

    fn dial(&mut self, now: Instant, rest: &[u8]) {
        let mut number = String::new();
        for (i, &c) in rest.iter().enumerate() {
            match c {
                b'0'..=b'9' | b'*' | b'#' => number.push(char::from(c)),
                b'T' | b'P' if i == 0 => {}
                b',' | b'W' | b'@' | b'!' | b';' | b'-' | b'(' | b')' | b'.' => {}
                _ => {
                    self.result(ResultCode::Error);
                    return;
                }
            }
        }
        if self.state != State::Command {
            self.result(ResultCode::NoDialtone);
            return;
        }
        if number.is_empty() {
            self.result(ResultCode::Error);
            return;
        }
        self.state = State::Dialing {
            deadline: now + self.wait_carrier(),
            ringback: false,
        };
        self.events.push_back(ModemEvent::Dial(number));
    }
}

/// A cursor over an upper-cased command line (without the `AT`).
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn rest(&mut self) -> &[u8] {
        let r = &self.s[self.i..];
        self.i = self.s.len();
        r
    }

    /// Decimal digits, if any (saturating at a value no register accepts).
    fn digits(&mut self) -> Option<u32> {
        let start = self.i;
        let mut v: u32 = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            v = v.saturating_mul(10).saturating_add(u32::from(c - b'0'));
            self.i += 1;
        }
        (self.i > start).then_some(v)
    }

    /// An optional number; a missing one is 0.
    fn number(&mut self) -> Option<u32> {
        Some(self.digits().unwrap_or(0))
    }

    /// An optional number no larger than `max`.
    fn ranged(&mut self, max: u32) -> Option<u32> {
        self.number().filter(|v| *v <= max)
    }

    /// `0` or `1` (missing: 0).
    fn flag(&mut self) -> Option<bool> {
        self.ranged(1).map(|v| v == 1)
    }
}
