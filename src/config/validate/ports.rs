//! The checks of the `[[port]]` tables.

use super::super::raw;
use super::super::{DEFAULT_INIT, DEFAULT_LOCK_DIR, FlowControl, LineMode, PortConfig};
use super::{Ctx, Span, plain_name};
use core::time::Duration;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Line speeds Linux names with a `B` constant; others may not be settable.
const STANDARD_SPEEDS: [u32; 30] = [
    50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600,
    115_200, 230_400, 460_800, 500_000, 576_000, 921_600, 1_000_000, 1_152_000, 1_500_000,
    2_000_000, 2_500_000, 3_000_000, 3_500_000, 4_000_000,
];

/// An AT command: starts with `AT`, printable ASCII only.
fn at_command(cmd: &str) -> bool {
    cmd.as_bytes()
        .get(..2)
        .is_some_and(|at| at.eq_ignore_ascii_case(b"AT"))
        && cmd.bytes().all(|b| (0x20..0x7f).contains(&b))
}

impl Ctx<'_> {
    pub(super) fn ports(&mut self, raws: Vec<(usize, raw::Port, Span)>) -> Vec<PortConfig> {
        let mut names: HashMap<String, Span> = HashMap::new();
        let mut devices: HashMap<String, Span> = HashMap::new();
        let mut out = Vec::new();
        for (index, p, table) in raws {
            let device = p.device.get_ref();
            let derived = Path::new(device)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            let (name, name_span) = match &p.name {
                Some(n) => (n.get_ref().clone(), n.span()),
                None => (derived.clone().unwrap_or_default(), p.device.span()),
            };
            let label = if name.is_empty() {
                format!("[[port]] #{index}")
            } else {
                format!("[[port]] {name}")
            };
            if device.is_empty() {
                self.error(
                    Some(p.device.span()),
                    format!("{label} device: the path is empty"),
                );
            } else if p.name.is_none() && derived.is_none() {
                self.error(
                    Some(p.device.span()),
                    format!("{label}: no name can be made from \"{device}\"; set name"),
                );
            } else if !plain_name(&name) {
                self.error(
                    Some(name_span.clone()),
                    format!(
                        "{label} name: \"{name}\" is not a port name (letters, digits, \".\", \
                         \"_\", \"-\", \"@\", \"+\"; at most 64)"
                    ),
                );
            }
            let device_taken = devices.contains_key(device.as_str());
            // A name made from a device already taken is reported with the device.
            if !name.is_empty() && (p.name.is_some() || !device_taken) {
                if let Some(first) = names.get(&name) {
                    let line = self.line(first);
                    self.error(
                        Some(name_span.clone()),
                        format!(
                            "{label} name: \"{name}\" is already the name of the port on line {line}"
                        ),
                    );
                } else {
                    names.insert(name.clone(), table.clone());
                }
            }
            if !device.is_empty() {
                if let Some(first) = devices.get(device.as_str()) {
                    let line = self.line(first);
                    self.error(
                        Some(p.device.span()),
                        format!(
                            "{label} device: {device} is already used by the port on line {line}"
                        ),
                    );
                } else {
                    devices.insert(device.clone(), table.clone());
                    self.warn_missing(
                        Some(&p.device.span()),
                        &format!("{label} device"),
                        Path::new(device),
                        " (yet); nasd will keep trying to open it",
                    );
                }
            }

            let mode = match p.mode.as_ref().map(|m| *m.get_ref()) {
                Some(raw::Mode::Direct) => LineMode::Direct,
                _ => LineMode::Modem,
            };
            let flow_control = match p.flow_control.as_ref().map(|f| *f.get_ref()) {
                Some(raw::Flow::Rtscts) => FlowControl::RtsCts,
                Some(raw::Flow::None) => FlowControl::None,
                None if mode == LineMode::Modem => FlowControl::RtsCts,
                None => FlowControl::None,
            };
            let speed = self.num32(&format!("{label} speed"), &p.speed, 115_200, 1..=4_000_000);
            if let Some(s) = &p.speed
                && !STANDARD_SPEEDS.contains(&speed)
            {
                self.warn(
                    Some(&s.span()),
                    format!("{label} speed: {speed} is not a standard line speed; the port may refuse it"),
                );
            }
            let init = match &p.init {
                None => DEFAULT_INIT.iter().map(|s| s.to_string()).collect(),
                Some(list) => {
                    for c in list.get_ref() {
                        if !at_command(c.get_ref()) {
                            self.error(
                                Some(c.span()),
                                format!(
                                    "{label} init: \"{}\" is not an AT command (it must start \
                                     with AT and hold printable characters only)",
                                    c.get_ref().escape_debug()
                                ),
                            );
                        }
                    }
                    list.get_ref().iter().map(|c| c.get_ref().clone()).collect()
                }
            };
            let answer = match &p.answer {
                Some(a) => {
                    if !at_command(a.get_ref()) {
                        self.error(
                            Some(a.span()),
                            format!(
                                "{label} answer: \"{}\" is not an AT command",
                                a.get_ref().escape_debug()
                            ),
                        );
                    }
                    a.get_ref().clone()
                }
                None => "ATA".to_string(),
            };
            let rings = self.num32(&format!("{label} rings"), &p.rings, 1, 1..=100);
            let answer_timeout = self.num(
                &format!("{label} answer_timeout"),
                &p.answer_timeout,
                80,
                1..=3600,
            );
            let health_interval =
                self.secs_or_off(&format!("{label} health_interval"), &p.health_interval, 60);
            let toggle_dtr = self.num(
                &format!("{label} toggle_dtr_ms"),
                &p.toggle_dtr_ms,
                500,
                1..=10_000,
            );
            let lock_dir = match &p.lock_dir {
                Some(l) if l.get_ref() == "none" => None,
                l => Some(self.path(&format!("{label} lock_dir"), l, DEFAULT_LOCK_DIR)),
            };
            if let Some(dir) = &lock_dir {
                let span = p.lock_dir.as_ref().map(|l| l.span());
                self.warn_missing(
                    span.as_ref(),
                    &format!("{label} lock_dir"),
                    dir,
                    "; the port cannot be locked and opened until it does",
                );
            }
            let number = match &p.number {
                Some(n)
                    if n.get_ref().is_empty()
                        || n.get_ref().len() > 64
                        || n.get_ref().chars().any(|c| c.is_control()) =>
                {
                    self.error(
                        Some(n.span()),
                        format!(
                            "{label} number: \"{}\" is not a telephone number (1 to 64 \
                             printable characters)",
                            n.get_ref()
                        ),
                    );
                    None
                }
                n => n.as_ref().map(|n| n.get_ref().clone()),
            };
            if mode == LineMode::Direct {
                let modem_only: [(&str, Option<Span>); 6] = [
                    ("init", p.init.as_ref().map(|v| v.span())),
                    ("answer", p.answer.as_ref().map(|v| v.span())),
                    ("rings", p.rings.as_ref().map(|v| v.span())),
                    (
                        "answer_timeout",
                        p.answer_timeout.as_ref().map(|v| v.span()),
                    ),
                    (
                        "health_interval",
                        p.health_interval.as_ref().map(|v| v.span()),
                    ),
                    ("toggle_dtr_ms", p.toggle_dtr_ms.as_ref().map(|v| v.span())),
                ];
                for (key, span) in modem_only {
                    if let Some(span) = span {
                        self.warn(
                            Some(&span),
                            format!("{label} {key}: has no effect on a direct line"),
                        );
                    }
                }
            }
            out.push(PortConfig {
                name,
                device: PathBuf::from(device),
                mode,
                speed,
                flow_control,
                init,
                answer,
                rings,
                answer_timeout: Duration::from_secs(answer_timeout),
                health_interval,
                lock_dir,
                toggle_dtr: Duration::from_millis(toggle_dtr),
                login: p.login,
                number,
            });
        }
        out
    }
}
