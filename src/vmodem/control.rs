//! The control socket: newline-delimited JSON requests and replies.
//!
//! One request per line, one reply line each:
//!
//! | request | reply |
//! | --- | --- |
//! | `{"cmd":"list"}` | `{"ok":true,"lines":[..],"clients":[..]}` |
//! | `{"cmd":"noise","line":0,"ber":1e-5,"drop":0.0,"latency_ms":0}` | `{"ok":true,"line":{..}}` |
//! | `{"cmd":"rate","line":0,"bps":9600}` | `{"ok":true,"line":{..}}` |
//! | `{"cmd":"cut","line":0}` | `{"ok":true}` |
//!
//! `lines` holds each server line's state (`idle`, `ringing`, `connected`), its modem's state,
//! rate, noise and current (or last) call: client line, caller and called numbers, and
//! per-direction counters (`bytes`, `bits_flipped`, `bytes_dropped`, `bytes_overrun`).
//! `clients` holds each client line's modem state, caller number and the line it is calling.
//! The fields of `noise` are optional (a missing one keeps its value). Anything wrong
//! (malformed JSON, unknown command or field, out-of-range value, a line over
//! [`MAX_REQUEST`] bytes, whose rest is then skipped) gets `{"ok":false,"error":"..."}`, and
//! the connection goes on.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::channel::Noise;
use super::switch::Switch;

/// Longest request line accepted, in bytes.
pub const MAX_REQUEST: usize = 4096;

/// Most control connections served at once (more wait to be accepted).
pub const MAX_CONNECTIONS: usize = 16;

/// A control request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Every line's state.
    List,
    /// Sets a line's noise.
    Noise {
        /// The server line.
        line: usize,
        /// Bit error rate.
        ber: Option<f64>,
        /// Byte drop probability.
        drop: Option<f64>,
        /// Added latency in milliseconds.
        latency_ms: Option<u64>,
    },
    /// Drops the call on a line: both sides get `NO CARRIER`.
    Cut {
        /// The server line.
        line: usize,
    },
    /// Sets a line's rate.
    Rate {
        /// The server line.
        line: usize,
        /// Bits per second.
        bps: u32,
    },
}

/// Parses one request line.
pub fn parse(line: &[u8]) -> Result<Request, String> {
    serde_json::from_slice(line).map_err(|e| format!("bad request: {e}"))
}

/// The reply to a failed request.
pub fn error(msg: &str) -> Value {
    json!({ "ok": false, "error": msg })
}

/// Carries out a request on the switch.
pub fn execute(switch: &mut Switch, now: Instant, req: Request) -> Value {
    let result = match req {
        Request::List => Ok(json!({
            "ok": true,
            "lines": switch.status(),
            "clients": switch.client_status(),
        })),
        Request::Noise {
            line,
            ber,
            drop,
            latency_ms,
        } => switch
            .noise(line)
            .ok_or_else(|| format!("no line {line} (the pool has {} lines)", switch.lines()))
            .and_then(|old| {
                let noise = Noise {
                    ber: ber.unwrap_or(old.ber),
                    drop: drop.unwrap_or(old.drop),
                    latency_ms: latency_ms.unwrap_or(old.latency_ms),
                };
                switch.set_noise(line, noise)?;
                Ok(json!({ "ok": true, "line": switch.line_status(line) }))
            }),
        Request::Cut { line } => switch.cut(now, line).map(|()| json!({ "ok": true })),
        Request::Rate { line, bps } => switch
            .set_rate(now, line, bps)
            .map(|()| json!({ "ok": true, "line": switch.line_status(line) })),
    };
    result.unwrap_or_else(|e| error(&e))
}

/// A request on its way to the pool, with where to send the reply.
#[derive(Debug)]
pub struct Pending {
    /// The request.
    pub request: Request,
    /// Where the reply goes.
    pub reply: oneshot::Sender<Value>,
}

/// Accepts control connections until the pool goes away.
pub async fn serve(listener: UnixListener, to_pool: mpsc::Sender<Pending>) {
    let slots = std::sync::Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors or similar: wait instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let to_pool = to_pool.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, to_pool).await {
                tracing::debug!("control connection: {e}");
            }
            drop(permit);
        });
    }
}

async fn connection(mut stream: UnixStream, to_pool: mpsc::Sender<Pending>) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 1024];
    // Inside an over-long line: its bytes are discarded up to the next newline.
    let mut skipping = false;
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            if !buf.is_empty() && !skipping {
                let line = std::mem::take(&mut buf);
                answer(&mut stream, &line, &to_pool).await?;
            }
            return Ok(());
        }
        let mut data = &chunk[..n];
        if skipping {
            match data.iter().position(|&b| b == b'\n') {
                Some(pos) => {
                    skipping = false;
                    data = &data[pos + 1..];
                }
                None => continue,
            }
        }
        buf.extend_from_slice(data);
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            if !answer(&mut stream, &line[..pos], &to_pool).await? {
                return Ok(());
            }
        }
        if buf.len() > MAX_REQUEST {
            buf.clear();
            skipping = true;
            let reply = error(&format!("request longer than {MAX_REQUEST} bytes"));
            stream.write_all(format!("{reply}\n").as_bytes()).await?;
        }
    }
}

/// Answers one line; `false` when the pool is gone.
async fn answer(
    stream: &mut UnixStream,
    line: &[u8],
    to_pool: &mpsc::Sender<Pending>,
) -> std::io::Result<bool> {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Ok(true);
    }
    let reply = if line.len() > MAX_REQUEST {
        error(&format!("request longer than {MAX_REQUEST} bytes"))
    } else {
        match parse(line) {
            Err(e) => error(&e),
            Ok(request) => {
                let (tx, rx) = oneshot::channel();
                if to_pool.send(Pending { request, reply: tx }).await.is_err() {
                    return Ok(false);
                }
                match rx.await {
                    Ok(v) => v,
                    Err(_) => return Ok(false),
                }
            }
        }
    };
    stream.write_all(format!("{reply}\n").as_bytes()).await?;
    Ok(true)
}

/// Sends one request to the control socket at `path` and returns the reply line.
pub async fn request(path: &Path, json: &str) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(path).await?;
    let mut line = json.trim().to_string();
    line.push('\n');
    stream.write_all(line.as_bytes()).await?;
    stream.shutdown().await?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    while !reply.contains(&b'\n') {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&chunk[..n]);
        if reply.len() > 16 * 1024 * 1024 {
            return Err(std::io::Error::other("reply too long"));
        }
    }
    let text = String::from_utf8_lossy(&reply);
    Ok(text.lines().next().unwrap_or("").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmodem::switch::SwitchConfig;

    #[test]
    fn parses_requests() {
        assert_eq!(parse(br#"{"cmd":"list"}"#), Ok(Request::List));
        assert_eq!(
            parse(br#"{"cmd":"noise","line":0,"ber":1e-5,"drop":0.0,"latency_ms":0}"#),
            Ok(Request::Noise {
                line: 0,
                ber: Some(1e-5),
                drop: Some(0.0),
                latency_ms: Some(0)
            })
        );
        assert_eq!(
            parse(br#"{"cmd":"noise","line":1,"ber":0.5}"#),
            Ok(Request::Noise {
                line: 1,
                ber: Some(0.5),
                drop: None,
                latency_ms: None
            })
        );
        assert_eq!(
            parse(br#"{"cmd":"cut","line":2}"#),
            Ok(Request::Cut { line: 2 })
        );
        assert_eq!(
            parse(br#"{"line":0,"bps":9600,"cmd":"rate"}"#),
            Ok(Request::Rate { line: 0, bps: 9600 })
        );
    }

    #[test]
    fn rejects_bad_requests() {
        for bad in [
            &b"{"[..],
            b"not json",
            b"[]",
            b"{}",
            br#"{"cmd":"reboot"}"#,
            br#"{"cmd":"cut"}"#,
            br#"{"cmd":"cut","line":-1}"#,
            br#"{"cmd":"cut","line":"0"}"#,
            br#"{"cmd":"rate","line":0,"bps":99999999999}"#,
            br#"{"cmd":"noise","line":0,"bre":0.1}"#,
            b"\xff\xfe",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.starts_with("bad request"), "{e}");
        }
    }

    #[test]
    fn executes_requests() {
        let now = Instant::now();
        let mut s = Switch::new(SwitchConfig::default(), now, 0);
        let v = execute(&mut s, now, Request::List);
        assert_eq!(v["ok"], true);
        assert_eq!(v["lines"][0]["state"], "idle");
        assert_eq!(v["lines"][0]["modem"], "idle");
        assert_eq!(v["lines"][0]["rate"], 33600);
        assert_eq!(v["clients"][0]["number"], "5550000");
        let v = execute(
            &mut s,
            now,
            Request::Noise {
                line: 0,
                ber: Some(1e-3),
                drop: None,
                latency_ms: Some(5),
            },
        );
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["line"]["noise"]["ber"], 1e-3);
        assert_eq!(v["line"]["noise"]["latency_ms"], 5);
        let v = execute(
            &mut s,
            now,
            Request::Noise {
                line: 0,
                ber: None,
                drop: Some(2.0),
                latency_ms: None,
            },
        );
        assert_eq!(v["ok"], false);
        assert!(v["error"].as_str().unwrap().contains("drop"));
        let v = execute(&mut s, now, Request::Rate { line: 0, bps: 9600 });
        assert_eq!(v["line"]["rate"], 9600);
        let v = execute(&mut s, now, Request::Rate { line: 4, bps: 9600 });
        assert_eq!(v["ok"], false);
        let v = execute(&mut s, now, Request::Cut { line: 0 });
        assert_eq!(v, error("line 0 has no call"));
    }
}
