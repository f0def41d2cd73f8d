//! The telephone network of the pool, sans-IO: lines, the hunt group, ringing, calls.
//!
//! A [`Switch`] owns every modem of the pool: the server-side modems (the ones nasd answers
//! on; "line `i`" means server line `i`) and the client-side modems (the ones dial-in clients
//! use; by default one per line). When a client modem dials one of the pool's numbers, the
//! switch rings the first free server line (a hunt group), shows the caller id after the
//! first ring, and connects the two modems when the server side answers. Data then flows
//! through a pair of [`Channel`]s at the server line's rate and noise.
//!
//! Like [`super::hayes`], it does no I/O and reads no clock. A driver calls
//! [`Switch::handle_dte_input`], [`Switch::dte_hangup`], [`Switch::dte_reset`],
//! [`Switch::handle_timeout`] and the control methods ([`Switch::cut`], [`Switch::set_rate`],
//! [`Switch::set_noise`], [`Switch::status`]), then drains [`Switch::poll_transmit`] (bytes for
//! each DTE), [`Switch::poll_event`] (calls starting and ending) and [`Switch::poll_timeout`].
//!
//! # Call outcomes
//!
//! * A server line is free when it has no call and its modem is on hook (`ATH1` busies it
//!   out, as mgetty does).
//! * A number that is not the pool's: `BUSY` after [`SwitchConfig::reject_delay`].
//! * No free server line: `BUSY` after the same delay.
//! * Dialling from a server-side modem: `NO DIALTONE` (those lines only take calls).
//! * Nobody answers within the caller's S7 seconds: `NO ANSWER` (the ringing stops).
//! * Either side hangs up, or the line is cut: the other side gets `NO CARRIER`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::channel::{Channel, ChannelStats, Noise};
use super::hayes::{CallerId, Modem, ModemConfig, ModemEvent, ResultCode};
use crate::proto::rng::Rng;

mod status;
pub use status::{CallStatus, ClientStatus, EndCause, LineState, LineStatus, SwitchEvent};

/// Lowest accepted line rate in bits per second.
pub const MIN_RATE: u32 = 50;
/// Highest accepted line rate in bits per second.
pub const MAX_RATE: u32 = 10_000_000;

/// How the pool is set up.
#[derive(Debug, Clone)]
pub struct SwitchConfig {
    /// Number of server lines (the pool's modems).
    pub lines: usize,
    /// Number of client lines (modems that dial in).
    pub clients: usize,
    /// The pool's numbers: dialling any of them reaches the hunt group.
    pub numbers: Vec<String>,
    /// The caller number of each client line (missing ones: [`default_caller_number`]).
    pub caller_numbers: Vec<String>,
    /// Initial line rate in bits per second.
    pub rate: u32,
    /// Initial noise of every line.
    pub noise: Noise,
    /// Time between two `RING`s.
    pub ring_interval: Duration,
    /// Delay before `BUSY` for an unknown number or a full pool.
    pub reject_delay: Duration,
    /// Appended to `CONNECT <rate>` (for example `/ARQ`).
    pub connect_suffix: String,
    /// Seed of the noise generators.
    pub seed: u64,
    /// Settings of every modem.
    pub modem: ModemConfig,
    /// Bytes a channel queues before it discards (the driver pauses its reads well before).
    pub max_queue: usize,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        Self {
            lines: 1,
            clients: 1,
            numbers: vec!["5551234".into()],
            caller_numbers: Vec::new(),
            rate: 33_600,
            noise: Noise::default(),
            ring_interval: Duration::from_secs(2),
            reject_delay: Duration::from_secs(1),
            connect_suffix: String::new(),
            seed: 0,
            modem: ModemConfig::default(),
            max_queue: 1 << 20,
        }
    }
}

/// The caller number of client line `line` unless configured: `555` and four digits.
pub fn default_caller_number(line: usize) -> String {
    format!("555{line:04}")
}

/// Which kind of modem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// A modem nasd answers on.
    Server,
    /// A modem a dial-in client uses.
    Client,
}

/// One modem's DTE side: a side and a line number on that side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Port {
    /// The line number.
    pub line: usize,
    /// Server or client.
    pub side: Side,
}

impl Port {
    /// Server line `line`.
    pub fn server(line: usize) -> Self {
        Self {
            line,
            side: Side::Server,
        }
    }

    /// Client line `line`.
    pub fn client(line: usize) -> Self {
        Self {
            line,
            side: Side::Client,
        }
    }
}

enum Phase {
    Ringing {
        next_ring: Instant,
    },
    Connected {
        up: Box<Channel>,
        down: Box<Channel>,
    },
}

struct Call {
    client: usize,
    caller: String,
    called: String,
    rings: u32,
    phase: Phase,
}

struct ServerLine {
    modem: Modem,
    rate: u32,
    noise: Noise,
    call: Option<Call>,
    last: Option<CallStatus>,
}

impl ServerLine {
    fn free(&self) -> bool {
        self.call.is_none() && !self.modem.off_hook()
    }

    fn channels(&mut self) -> Option<(&mut Channel, &mut Channel)> {
        match &mut self.call {
            Some(Call {
                phase: Phase::Connected { up, down },
                ..
            }) => Some((up, down)),
            _ => None,
        }
    }
}

enum Dialing {
    Idle,
    Calling(usize),
    Rejected { at: Instant, result: ResultCode },
}

struct ClientLine {
    modem: Modem,
    number: String,
    dialing: Dialing,
}

/// The pool's telephone network. See the [module documentation](self).
pub struct Switch {
    config: SwitchConfig,
    servers: Vec<ServerLine>,
    clients: Vec<ClientLine>,
    events: VecDeque<SwitchEvent>,
    started: Instant,
    unix_start: u64,
    calls: u64,
}

impl Switch {
    /// A pool of idle lines; `unix_now` is the wall clock at `now`, in seconds since 1970
    /// (for the caller id's DATE and TIME, in UTC).
    pub fn new(config: SwitchConfig, now: Instant, unix_now: u64) -> Self {
        let servers = (0..config.lines)
            .map(|_| ServerLine {
                modem: Modem::new(config.modem.clone(), now),
                rate: config.rate,
                noise: config.noise,
                call: None,
                last: None,
            })
            .collect();
        let clients = (0..config.clients)
            .map(|i| ClientLine {
                modem: Modem::new(config.modem.clone(), now),
                number: config
                    .caller_numbers
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| default_caller_number(i)),
                dialing: Dialing::Idle,
            })
            .collect();
        Self {
            config,
            servers,
            clients,
            events: VecDeque::new(),
            started: now,
            unix_start: unix_now,
            calls: 0,
        }
    }

    /// The number of server lines.
    pub fn lines(&self) -> usize {
        self.servers.len()
    }

    /// The number of client lines.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    fn modem(&mut self, port: Port) -> &mut Modem {
        match port.side {
            Side::Server => &mut self.servers[port.line].modem,
            Side::Client => &mut self.clients[port.line].modem,
        }
    }

    // ----- inputs -----

    /// Bytes typed by the DTE of `port`.
    pub fn handle_dte_input(&mut self, now: Instant, port: Port, bytes: &[u8]) {
        self.modem(port).handle_dte_input(now, bytes);
        self.settle(now);
    }

    /// The DTE of `port` went away (DTR dropped): its modem hangs up.
    pub fn dte_hangup(&mut self, now: Instant, port: Port) {
        self.modem(port).dte_hangup();
        self.settle(now);
    }

    /// A new DTE took `port`: its modem is reset to factory settings (and hangs up).
    pub fn dte_reset(&mut self, now: Instant, port: Port) {
        self.modem(port).reset();
        self.settle(now);
    }

    /// Runs everything due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for l in &mut self.servers {
            l.modem.handle_timeout(now);
        }
        for c in &mut self.clients {
            c.modem.handle_timeout(now);
        }
        self.settle(now);
    }

    // ----- control -----

    fn check_line(&self, line: usize) -> Result<(), String> {
        if line < self.servers.len() {
            Ok(())
        } else {
            Err(format!(
                "no line {line} (the pool has {} lines)",
                self.servers.len()
            ))
        }
    }

    /// Ends the call on server line `line`: both sides get `NO CARRIER`.
    pub fn cut(&mut self, now: Instant, line: usize) -> Result<(), String> {
        self.check_line(line)?;
        let Some(call) = &self.servers[line].call else {
            return Err(format!("line {line} has no call"));
        };
        let client = call.client;
        let modem = &mut self.servers[line].modem;
        modem.carrier_lost();
        modem.ringing_stopped();
        self.clients[client].modem.carrier_lost();
        self.end_call(line, EndCause::Cut);
        self.settle(now);
        Ok(())
    }

    /// Sets the rate of line `line`, for its current call too.
    pub fn set_rate(&mut self, now: Instant, line: usize, bps: u32) -> Result<(), String> {
        self.check_line(line)?;
        if !(MIN_RATE..=MAX_RATE).contains(&bps) {
            return Err(format!(
                "bps must be between {MIN_RATE} and {MAX_RATE}, not {bps}"
            ));
        }
        let l = &mut self.servers[line];
        l.rate = bps;
        if let Some((up, down)) = l.channels() {
            up.set_rate(now, bps);
            down.set_rate(now, bps);
        }
        Ok(())
    }

    /// Sets the noise of line `line`, for its current call too.
    pub fn set_noise(&mut self, line: usize, noise: Noise) -> Result<(), String> {
        self.check_line(line)?;
        noise.validate()?;
        let l = &mut self.servers[line];
        l.noise = noise;
        if let Some((up, down)) = l.channels() {
            up.set_noise(noise);
            down.set_noise(noise);
        }
        Ok(())
    }

    /// The noise of line `line`.
    pub fn noise(&self, line: usize) -> Option<Noise> {
        self.servers.get(line).map(|l| l.noise)
    }

    /// Every server line's state.
    pub fn status(&self) -> Vec<LineStatus> {
        (0..self.servers.len())
            .map(|i| self.line_status(i))
            .collect()
    }

    /// Server line `i`'s state.
    pub fn line_status(&self, i: usize) -> LineStatus {
        let l = &self.servers[i];
        let (state, call) = match &l.call {
            None => (LineState::Idle, l.last.clone()),
            Some(c) => {
                let state = match c.phase {
                    Phase::Ringing { .. } => LineState::Ringing,
                    Phase::Connected { .. } => LineState::Connected,
                };
                (state, Some(call_status(c)))
            }
        };
        LineStatus {
            line: i,
            state,
            modem: l.modem.state(),
            rate: l.rate,
            noise: l.noise,
            call,
        }
    }

    /// Every client line's state.
    pub fn client_status(&self) -> Vec<ClientStatus> {
        self.clients
            .iter()
            .enumerate()
            .map(|(i, c)| ClientStatus {
                client: i,
                modem: c.modem.state(),
                number: c.number.clone(),
                calling: match c.dialing {
                    Dialing::Calling(j) => Some(j),
                    _ => None,
                },
            })
            .collect()
    }

    /// Bytes from `port`'s DTE waiting to go on the wire (the driver stops reading that DTE
    /// while this is large, as a modem would drop CTS).
    pub fn input_backlog(&self, port: Port) -> usize {
        let server = match port.side {
            Side::Server => Some(port.line),
            Side::Client => match self.clients[port.line].dialing {
                Dialing::Calling(j) => Some(j),
                _ => None,
            },
        };
        match server.and_then(|j| self.servers[j].call.as_ref()) {
            Some(Call {
                phase: Phase::Connected { up, down },
                ..
            }) => match port.side {
                Side::Server => down.backlog(),
                Side::Client => up.backlog(),
            },
            _ => 0,
        }
    }

    // ----- outputs -----

    /// The next bytes for a DTE.
    pub fn poll_transmit(&mut self) -> Option<(Port, Vec<u8>)> {
        for (i, l) in self.servers.iter_mut().enumerate() {
            let out = l.modem.take_dte_output();
            if !out.is_empty() {
                return Some((Port::server(i), out));
            }
        }
        for (i, c) in self.clients.iter_mut().enumerate() {
            let out = c.modem.take_dte_output();
            if !out.is_empty() {
                return Some((Port::client(i), out));
            }
        }
        None
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SwitchEvent> {
        self.events.pop_front()
    }

    /// When [`Switch::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut at = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        for l in &self.servers {
            at(l.modem.poll_timeout());
            match &l.call {
                Some(Call {
                    phase: Phase::Ringing { next_ring, .. },
                    ..
                }) => at(Some(*next_ring)),
                Some(Call {
                    phase: Phase::Connected { up, down },
                    ..
                }) => {
                    at(up.poll_timeout());
                    at(down.poll_timeout());
                }
                None => {}
            }
        }
        for c in &self.clients {
            at(c.modem.poll_timeout());
            if let Dialing::Rejected { at: t, .. } = c.dialing {
                at(Some(t));
            }
        }
        next
    }

    // ----- the network -----

    /// Handles modem requests, runs due rings and rejections and moves data until nothing
    /// changes.
    fn settle(&mut self, now: Instant) {
        loop {
            let mut progress = false;
            for i in 0..self.clients.len() {
                while let Some(ev) = self.clients[i].modem.poll_event() {
                    progress = true;
                    self.client_event(now, i, ev);
                }
            }
            for j in 0..self.servers.len() {
                while let Some(ev) = self.servers[j].modem.poll_event() {
                    progress = true;
                    self.server_event(now, j, ev);
                }
            }
            progress |= self.rings_and_rejects(now);
            self.move_data(now);
            if !progress {
                break;
            }
        }
    }

    fn rings_and_rejects(&mut self, now: Instant) -> bool {
        let mut progress = false;
        for c in &mut self.clients {
            if let Dialing::Rejected { at, result } = c.dialing
                && at <= now
            {
                c.dialing = Dialing::Idle;
                c.modem.call_failed(result);
                progress = true;
            }
        }
        let interval = self.config.ring_interval;
        for j in 0..self.servers.len() {
            let ring = match &mut self.servers[j].call {
                Some(Call {
                    phase: Phase::Ringing { next_ring },
                    client,
                    rings,
                    ..
                }) if *next_ring <= now => {
                    *rings += 1;
                    *next_ring = (*next_ring + interval).max(now + interval / 2);
                    Some((*rings, *client))
                }
                _ => None,
            };
            if let Some((rings, client)) = ring {
                progress = true;
                let caller = (rings == 1).then(|| self.caller_id(now, client));
                self.servers[j].modem.ring(now, caller.as_ref());
                if rings == 1 {
                    self.clients[client].modem.ringback();
                }
            }
        }
        progress
    }

    fn move_data(&mut self, now: Instant) {
        for j in 0..self.servers.len() {
            let Some(client) = self.servers[j].call.as_ref().map(|c| c.client) else {
                continue;
            };
            let from_server = self.servers[j].modem.take_line_output();
            let from_client = self.clients[client].modem.take_line_output();
            let Some((up, down)) = self.servers[j].channels() else {
                continue;
            };
            up.push(now, &from_client);
            down.push(now, &from_server);
            up.handle_timeout(now);
            down.handle_timeout(now);
            let to_server = up.take_delivered();
            let to_client = down.take_delivered();
            self.servers[j].modem.remote_data(&to_server);
            self.clients[client].modem.remote_data(&to_client);
        }
        // Data typed by modems that are not in a call goes nowhere.
        for l in &mut self.servers {
            l.modem.take_line_output();
        }
        for c in &mut self.clients {
            c.modem.take_line_output();
        }
    }

    fn caller_id(&self, now: Instant, client: usize) -> CallerId {
        let secs = self.unix_start + now.saturating_duration_since(self.started).as_secs();
        let (month, day, hour, minute) = civil(secs);
        CallerId {
            date: format!("{month:02}{day:02}"),
            time: format!("{hour:02}{minute:02}"),
            number: self.clients[client].number.clone(),
            name: format!("VMODEM CLIENT {client}"),
        }
    }

    fn client_event(&mut self, now: Instant, i: usize, ev: ModemEvent) {
        match ev {
            ModemEvent::Dial(number) => self.dial(now, i, number),
            // Nothing rings on client lines.
            ModemEvent::Answer => self.clients[i].modem.ringing_stopped(),
            ModemEvent::Hangup | ModemEvent::GaveUp => {
                let was = std::mem::replace(&mut self.clients[i].dialing, Dialing::Idle);
                let Dialing::Calling(j) = was else {
                    return;
                };
                let server = &mut self.servers[j];
                let ringing = matches!(
                    server.call,
                    Some(Call {
                        phase: Phase::Ringing { .. },
                        ..
                    })
                );
                let cause = if ringing {
                    server.modem.ringing_stopped();
                    if ev == ModemEvent::GaveUp {
                        EndCause::NoAnswer
                    } else {
                        EndCause::ClientHangup
                    }
                } else {
                    server.modem.carrier_lost();
                    EndCause::ClientHangup
                };
                self.end_call(j, cause);
            }
        }
    }

    fn dial(&mut self, now: Instant, i: usize, number: String) {
        let known = self.config.numbers.contains(&number);
        let free = self.servers.iter().position(ServerLine::free);
        match (known, free) {
            (true, Some(j)) => {
                self.calls += 1;
                self.servers[j].call = Some(Call {
                    client: i,
                    caller: self.clients[i].number.clone(),
                    called: number,
                    rings: 0,
                    phase: Phase::Ringing { next_ring: now },
                });
                self.clients[i].dialing = Dialing::Calling(j);
                self.events
                    .push_back(SwitchEvent::Ringing { line: j, client: i });
            }
            _ => {
                let result = ResultCode::Busy;
                self.events.push_back(SwitchEvent::Rejected {
                    client: i,
                    number,
                    result: result.text(),
                });
                self.clients[i].dialing = Dialing::Rejected {
                    at: now + self.config.reject_delay,
                    result,
                };
            }
        }
    }

    fn server_event(&mut self, now: Instant, j: usize, ev: ModemEvent) {
        match ev {
            ModemEvent::Dial(_) => self.servers[j].modem.call_failed(ResultCode::NoDialtone),
            ModemEvent::Answer => self.answer(now, j),
            ModemEvent::Hangup | ModemEvent::GaveUp => {
                if let Some(call) = &self.servers[j].call {
                    let client = call.client;
                    self.clients[client].modem.carrier_lost();
                    self.end_call(j, EndCause::ServerHangup);
                }
            }
        }
    }

    fn answer(&mut self, now: Instant, j: usize) {
        let client = match &self.servers[j].call {
            Some(Call {
                phase: Phase::Ringing { .. },
                client,
                ..
            }) => *client,
            _ => {
                self.servers[j].modem.ringing_stopped();
                return;
            }
        };
        let (bps, noise) = (self.servers[j].rate, self.servers[j].noise);
        let rng = |dir: u64| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&self.config.seed.to_le_bytes());
            seed[8..16].copy_from_slice(&(j as u64).to_le_bytes());
            seed[16..24].copy_from_slice(&self.calls.to_le_bytes());
            seed[24..].copy_from_slice(&dir.to_le_bytes());
            Rng::new(seed)
        };
        let max = self.config.max_queue;
        let up = Box::new(Channel::new(now, bps, noise, rng(0), max));
        let down = Box::new(Channel::new(now, bps, noise, rng(1), max));
        if let Some(call) = &mut self.servers[j].call {
            call.phase = Phase::Connected { up, down };
        }
        let suffix = &self.config.connect_suffix;
        self.servers[j].modem.connected(now, bps, suffix);
        self.clients[client].modem.connected(now, bps, suffix);
        self.events.push_back(SwitchEvent::Connected {
            line: j,
            client,
            bps,
        });
    }

    fn end_call(&mut self, j: usize, cause: EndCause) {
        let Some(call) = self.servers[j].call.take() else {
            return;
        };
        let mut status = call_status(&call);
        status.state = "ended";
        status.end = Some(cause);
        self.servers[j].last = Some(status);
        let client = call.client;
        if matches!(self.clients[client].dialing, Dialing::Calling(x) if x == j) {
            self.clients[client].dialing = Dialing::Idle;
        }
        self.events.push_back(SwitchEvent::Ended {
            line: j,
            client,
            cause,
        });
    }
}

fn call_status(c: &Call) -> CallStatus {
    let (state, to_server, to_client) = match &c.phase {
        Phase::Ringing { .. } => ("ringing", ChannelStats::default(), ChannelStats::default()),
        Phase::Connected { up, down } => ("connected", up.stats(), down.stats()),
    };
    CallStatus {
        client: c.client,
        caller: c.caller.clone(),
        called: c.called.clone(),
        state,
        rings: c.rings,
        to_server,
        to_client,
        end: None,
    }
}

/// (month, day, hour, minute) in UTC of a Unix time (H. Hinnant's civil-from-days).
fn civil(secs: u64) -> (u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (month, day, (rem / 3600) as u32, ((rem % 3600) / 60) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmodem::hayes::ModemState;

    const S: Duration = Duration::from_secs(1);

    fn sw(lines: usize, clients: usize) -> (Switch, Instant) {
        let now = Instant::now();
        let cfg = SwitchConfig {
            lines,
            clients,
            ..SwitchConfig::default()
        };
        // 2024-03-21 14:05:00 UTC
        (Switch::new(cfg, now, 1_711_029_900), now)
    }

    fn server(line: usize) -> Port {
        Port::server(line)
    }

    fn client(line: usize) -> Port {
        Port::client(line)
    }

    /// Everything the DTEs received, as text.
    fn out(s: &mut Switch) -> Vec<(Port, String)> {
        std::iter::from_fn(|| s.poll_transmit())
            .map(|(p, b)| (p, String::from_utf8_lossy(&b).into_owned()))
            .collect()
    }

    /// What one DTE received (everything else is discarded).
    fn out_for(s: &mut Switch, port: Port) -> String {
        out(s)
            .into_iter()
            .filter(|(p, _)| *p == port)
            .map(|(_, t)| t)
            .collect()
    }

    /// What one DTE received, as bytes (everything else is discarded).
    fn bytes_for(s: &mut Switch, port: Port) -> Vec<u8> {
        std::iter::from_fn(|| s.poll_transmit())
            .filter(|(p, _)| *p == port)
            .flat_map(|(_, b)| b)
            .collect()
    }

    fn events(s: &mut Switch) -> Vec<SwitchEvent> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    /// Runs the switch by its own deadlines up to `until`.
    fn run_until(s: &mut Switch, until: Instant) {
        while let Some(t) = s.poll_timeout() {
            if t > until {
                break;
            }
            s.handle_timeout(t);
        }
    }

    fn init(s: &mut Switch, now: Instant, port: Port) {
        s.handle_dte_input(now, port, b"ATE0\r");
        out(s);
    }

    /// Client `c` calls and the line that rings answers; returns that line.
    fn call(s: &mut Switch, now: Instant, c: usize) -> usize {
        init(s, now, client(c));
        s.handle_dte_input(now, client(c), b"ATD5551234\r");
        let Some(SwitchEvent::Ringing { line, .. }) = s.poll_event() else {
            panic!("no ring");
        };
        init(s, now, server(line));
        s.handle_dte_input(now, server(line), b"ATA\r");
        let o = out(s);
        assert!(
            o.contains(&(server(line), "\r\nCONNECT 33600\r\n".into())),
            "{o:?}"
        );
        assert!(
            o.contains(&(client(c), "\r\nCONNECT 33600\r\n".into())),
            "{o:?}"
        );
        events(s);
        line
    }

    fn connected_pair() -> (Switch, Instant) {
        let (mut s, now) = sw(1, 1);
        assert_eq!(call(&mut s, now, 0), 0);
        (s, now)
    }

    #[test]
    fn civil_time() {
        assert_eq!(civil(0), (1, 1, 0, 0));
        assert_eq!(civil(1_711_029_900), (3, 21, 14, 5));
        assert_eq!(civil(951_782_400), (2, 29, 0, 0));
    }

    #[test]
    fn dial_rings_with_caller_id_and_connects() {
        let (mut s, now) = sw(2, 2);
        init(&mut s, now, server(0));
        init(&mut s, now, client(1));
        s.handle_dte_input(now, client(1), b"ATDT5551234\r");
        assert_eq!(
            events(&mut s),
            vec![SwitchEvent::Ringing { line: 0, client: 1 }]
        );
        assert_eq!(
            out_for(&mut s, server(0)),
            "\r\nRING\r\n\r\nDATE = 0321\r\nTIME = 1405\r\nNMBR = 5550001\r\n\
             NAME = VMODEM CLIENT 1\r\n"
        );
        assert_eq!(s.status()[0].state, LineState::Ringing);
        assert_eq!(s.client_status()[1].calling, Some(0));
        run_until(&mut s, now + 2 * S);
        assert_eq!(out_for(&mut s, server(0)), "\r\nRING\r\n");
        s.handle_dte_input(now + 3 * S, server(0), b"ATA\r");
        assert_eq!(
            out(&mut s),
            vec![
                (server(0), "\r\nCONNECT 33600\r\n".into()),
                (client(1), "\r\nCONNECT 33600\r\n".into())
            ]
        );
        let st = &s.status()[0];
        assert_eq!(
            (st.state, st.modem),
            (LineState::Connected, ModemState::Online)
        );
        assert_eq!(s.client_status()[1].modem, ModemState::Online);
        let call = st.call.as_ref().unwrap();
        assert_eq!(
            (call.caller.as_str(), call.called.as_str()),
            ("5550001", "5551234")
        );
        assert_eq!(
            events(&mut s),
            vec![SwitchEvent::Connected {
                line: 0,
                client: 1,
                bps: 33600
            }]
        );
    }

    #[test]
    fn configured_numbers_and_connect_suffix() {
        let now = Instant::now();
        let cfg = SwitchConfig {
            numbers: vec!["100".into(), "200".into()],
            caller_numbers: vec!["4242".into()],
            connect_suffix: "/ARQ".into(),
            ..SwitchConfig::default()
        };
        let mut s = Switch::new(cfg, now, 0);
        s.handle_dte_input(now, client(0), b"ATE0D200\r");
        assert!(out_for(&mut s, server(0)).contains("NMBR = 4242\r\n"));
        s.handle_dte_input(now, server(0), b"ATE0A\r");
        assert_eq!(out_for(&mut s, client(0)), "\r\nCONNECT 33600/ARQ\r\n");
    }

    #[test]
    fn hunt_group_takes_the_first_free_line() {
        let (mut s, now) = sw(3, 3);
        // Line 0 busied out with ATH1.
        s.handle_dte_input(now, server(0), b"ATH1\r");
        s.handle_dte_input(now, client(0), b"ATD5551234\r");
        s.handle_dte_input(now, client(1), b"ATD5551234\r");
        assert_eq!(
            events(&mut s),
            vec![
                SwitchEvent::Ringing { line: 1, client: 0 },
                SwitchEvent::Ringing { line: 2, client: 1 }
            ]
        );
    }

    #[test]
    fn busy_when_every_line_is_in_a_call() {
        let (mut s, now) = sw(2, 3);
        assert_eq!(call(&mut s, now, 0), 0);
        assert_eq!(call(&mut s, now, 1), 1);
        init(&mut s, now, client(2));
        s.handle_dte_input(now, client(2), b"ATD5551234\r");
        assert_eq!(
            events(&mut s),
            vec![SwitchEvent::Rejected {
                client: 2,
                number: "5551234".into(),
                result: "BUSY"
            }]
        );
        assert_eq!(out_for(&mut s, client(2)), "");
        run_until(&mut s, now + S);
        assert_eq!(out_for(&mut s, client(2)), "\r\nBUSY\r\n");
        assert_eq!(s.client_status()[2].modem, ModemState::Idle);
        // A ringing line is not free either.
        s.cut(now + S, 1).unwrap();
        out(&mut s);
        s.handle_dte_input(now + S, client(1), b"ATD5551234\r");
        s.handle_dte_input(now + S, client(2), b"ATD5551234\r");
        events(&mut s);
        run_until(&mut s, now + 2 * S);
        assert_eq!(out_for(&mut s, client(2)), "\r\nBUSY\r\n");
    }

    #[test]
    fn unknown_number_is_busy_after_a_delay() {
        let (mut s, now) = sw(1, 1);
        init(&mut s, now, client(0));
        s.handle_dte_input(now, client(0), b"ATD999\r");
        assert_eq!(
            events(&mut s),
            vec![SwitchEvent::Rejected {
                client: 0,
                number: "999".into(),
                result: "BUSY"
            }]
        );
        assert_eq!(s.poll_timeout(), Some(now + S));
        run_until(&mut s, now + S);
        assert_eq!(out_for(&mut s, client(0)), "\r\nBUSY\r\n");
        assert_eq!(s.client_status()[0].modem, ModemState::Idle);
    }

    #[test]
    fn server_lines_cannot_dial() {
        let (mut s, now) = sw(1, 1);
        init(&mut s, now, server(0));
        s.handle_dte_input(now, server(0), b"ATD5551234\r");
        assert_eq!(out_for(&mut s, server(0)), "\r\nNO DIALTONE\r\n");
        assert!(events(&mut s).is_empty());
    }

    #[test]
    fn no_answer_after_s7() {
        let (mut s, now) = sw(1, 1);
        init(&mut s, now, client(0));
        init(&mut s, now, server(0));
        s.handle_dte_input(now, client(0), b"ATS7=5D5551234\r");
        run_until(&mut s, now + 5 * S);
        let o = out(&mut s);
        let server_out: String = o
            .iter()
            .filter(|(p, _)| *p == server(0))
            .map(|(_, t)| t.as_str())
            .collect();
        assert_eq!(server_out.matches("RING").count(), 3, "{server_out}");
        assert_eq!(
            o.last(),
            Some(&(client(0), "\r\nNO ANSWER\r\n".to_string()))
        );
        assert_eq!(
            events(&mut s),
            vec![
                SwitchEvent::Ringing { line: 0, client: 0 },
                SwitchEvent::Ended {
                    line: 0,
                    client: 0,
                    cause: EndCause::NoAnswer
                }
            ]
        );
        let st = &s.status()[0];
        assert_eq!((st.state, st.modem), (LineState::Idle, ModemState::Idle));
        assert_eq!(st.call.as_ref().unwrap().end, Some(EndCause::NoAnswer));
        // The ringing stopped for good.
        run_until(&mut s, now + 60 * S);
        assert_eq!(out_for(&mut s, server(0)), "");
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn auto_answer_with_s0() {
        let (mut s, now) = sw(1, 1);
        s.handle_dte_input(now, server(0), b"ATE0S0=2\r");
        s.handle_dte_input(now, client(0), b"ATE0D5551234\r");
        out(&mut s);
        run_until(&mut s, now + 2 * S);
        let o = out(&mut s);
        assert!(
            o.contains(&(client(0), "\r\nCONNECT 33600\r\n".into())),
            "{o:?}"
        );
    }

    #[test]
    fn data_flows_at_the_line_rate() {
        let (mut s, now) = connected_pair();
        s.handle_dte_input(now, client(0), &[b'x'; 3360]);
        assert!(s.input_backlog(client(0)) > 3000);
        run_until(&mut s, now + S / 2);
        let half = out_for(&mut s, server(0)).len();
        assert!((1670..=1690).contains(&half), "{half}");
        run_until(&mut s, now + S + S / 100);
        assert_eq!(out_for(&mut s, server(0)).len(), 3360 - half);
        assert_eq!(s.input_backlog(client(0)), 0);
        // And the other way.
        let t = now + 2 * S;
        s.handle_dte_input(t, server(0), b"hello");
        run_until(&mut s, t + S / 100);
        assert_eq!(out_for(&mut s, client(0)), "hello");
        let st = s.status()[0].call.clone().unwrap();
        assert_eq!((st.to_server.bytes, st.to_client.bytes), (3360, 5));
    }

    #[test]
    fn rate_and_noise_control() {
        let (mut s, now) = connected_pair();
        s.set_rate(now, 0, 9600).unwrap();
        assert!(s.set_rate(now, 0, 10).is_err());
        assert!(s.set_rate(now, 1, 9600).is_err());
        s.handle_dte_input(now, client(0), &[0u8; 960]);
        run_until(&mut s, now + S - S / 100);
        let early = bytes_for(&mut s, server(0)).len();
        assert!((900..960).contains(&early), "{early}");
        run_until(&mut s, now + S + S / 100);
        assert_eq!(bytes_for(&mut s, server(0)).len(), 960 - early);
        assert_eq!(s.input_backlog(client(0)), 0);
        let n = Noise {
            ber: 1.0,
            drop: 0.0,
            latency_ms: 0,
        };
        s.set_noise(0, n).unwrap();
        assert!(s.set_noise(0, Noise { ber: 2.0, ..n }).is_err());
        assert!(s.set_noise(5, n).is_err());
        assert_eq!(s.noise(0), Some(n));
        let t = now + 2 * S;
        s.handle_dte_input(t, client(0), &[0x0f]);
        run_until(&mut s, t + S / 100);
        assert_eq!(bytes_for(&mut s, server(0)), [0xf0]);
    }

    #[test]
    fn client_escape_and_ath_give_the_server_no_carrier() {
        let (mut s, now) = connected_pair();
        let t = now + S;
        s.handle_dte_input(t, client(0), b"+++");
        run_until(&mut s, t + S);
        let o = out(&mut s);
        assert!(o.contains(&(server(0), "+++".into())), "{o:?}");
        assert!(o.contains(&(client(0), "\r\nOK\r\n".into())), "{o:?}");
        s.handle_dte_input(t + S, client(0), b"ATH\r");
        let o = out(&mut s);
        assert!(
            o.contains(&(server(0), "\r\nNO CARRIER\r\n".into())),
            "{o:?}"
        );
        assert!(o.contains(&(client(0), "\r\nOK\r\n".into())), "{o:?}");
        assert_eq!(
            events(&mut s),
            vec![SwitchEvent::Ended {
                line: 0,
                client: 0,
                cause: EndCause::ClientHangup
            }]
        );
        let st = &s.status()[0];
        assert_eq!((st.state, st.modem), (LineState::Idle, ModemState::Idle));
        assert_eq!(s.client_status()[0].modem, ModemState::Idle);
        assert_eq!(st.call.as_ref().unwrap().end, Some(EndCause::ClientHangup));
    }

    #[test]
    fn server_hangup_and_dtr_drop() {
        let (mut s, now) = connected_pair();
        let t = now + S;
        s.handle_dte_input(t, server(0), b"+++");
        run_until(&mut s, t + S);
        out(&mut s);
        s.handle_dte_input(t + S, server(0), b"ATH0\r");
        assert_eq!(out_for(&mut s, client(0)), "\r\nNO CARRIER\r\n");
        assert_eq!(
            events(&mut s),
            vec![SwitchEvent::Ended {
                line: 0,
                client: 0,
                cause: EndCause::ServerHangup
            }]
        );
        // DTR drop on the server side.
        let (mut s, now) = connected_pair();
        s.dte_hangup(now, server(0));
        assert_eq!(out(&mut s), vec![(client(0), "\r\nNO CARRIER\r\n".into())]);
        // DTR drop on the client side.
        let (mut s, now) = connected_pair();
        s.dte_hangup(now, client(0));
        assert_eq!(out(&mut s), vec![(server(0), "\r\nNO CARRIER\r\n".into())]);
        // A new DTE (reset) hangs up too.
        let (mut s, now) = connected_pair();
        s.dte_reset(now, client(0));
        assert_eq!(out(&mut s), vec![(server(0), "\r\nNO CARRIER\r\n".into())]);
    }

    #[test]
    fn client_abort_stops_the_ringing() {
        let (mut s, now) = sw(1, 1);
        init(&mut s, now, client(0));
        s.handle_dte_input(now, client(0), b"ATD5551234\r");
        s.handle_dte_input(now, client(0), b"x");
        assert_eq!(out_for(&mut s, client(0)), "\r\nNO CARRIER\r\n");
        let ev = events(&mut s);
        assert_eq!(
            ev.last(),
            Some(&SwitchEvent::Ended {
                line: 0,
                client: 0,
                cause: EndCause::ClientHangup
            })
        );
        assert_eq!(s.status()[0].modem, ModemState::Idle);
    }

    #[test]
    fn cut_gives_both_sides_no_carrier() {
        let (mut s, now) = connected_pair();
        s.cut(now, 0).unwrap();
        let o = out(&mut s);
        assert!(
            o.contains(&(server(0), "\r\nNO CARRIER\r\n".into())),
            "{o:?}"
        );
        assert!(
            o.contains(&(client(0), "\r\nNO CARRIER\r\n".into())),
            "{o:?}"
        );
        assert!(s.cut(now, 0).is_err());
        assert!(s.cut(now, 7).is_err());
        // Cutting a ringing call.
        let (mut s, now) = sw(1, 1);
        s.handle_dte_input(now, client(0), b"ATE0D5551234\r");
        out(&mut s);
        s.cut(now, 0).unwrap();
        assert_eq!(out(&mut s), vec![(client(0), "\r\nNO CARRIER\r\n".into())]);
        run_until(&mut s, now + 100 * S);
        assert_eq!(out(&mut s), vec![]);
    }

    #[test]
    fn data_in_command_mode_goes_nowhere() {
        let (mut s, now) = sw(1, 1);
        s.handle_dte_input(now, server(0), b"garbage\r\n");
        s.handle_dte_input(now, client(0), b"more garbage\r\n");
        out(&mut s);
        assert!(s.poll_timeout().is_none());
        assert_eq!(s.input_backlog(client(0)), 0);
    }
}
