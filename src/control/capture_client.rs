//! `nasctl capture`: asks nasd for a port's frames and copies the pcap stream to a file or
//! standard output, whole records only, until nasd ends it, `--count` frames or
//! `--duration` seconds have passed, or SIGINT/SIGTERM.

use super::Command;
use super::client::{Client, ClientError};
use crate::capture::pcap::DEFAULT_SNAPLEN;
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::signal::unix::{SignalKind, signal};

/// Runs the capture; `out` is a file name or `-` for standard output.
pub async fn run(
    socket: &Path,
    port: &str,
    out: &str,
    direction: bool,
    count: Option<u64>,
    duration: Option<u64>,
) -> Result<(), ClientError> {
    let io = |what: &str, e: std::io::Error| ClientError::Protocol(format!("{what}: {e}"));
    let mut client = Client::connect(socket).await?;
    let header = client
        .request(Command::Capture {
            port: port.to_string(),
            direction,
        })
        .await?;
    let mut sink: Box<dyn Write> = if out == "-" {
        Box::new(std::io::stdout())
    } else {
        Box::new(std::fs::File::create(out).map_err(|e| io(out, e))?)
    };
    let (mut rd, _wr) = client.into_parts();
    let mut global = [0u8; 24];
    rd.read_exact(&mut global)
        .await
        .map_err(|e| io("reading the capture header", e))?;
    write(&mut sink, &global).map_err(|e| io(out, e))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| io("SIGTERM", e))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| io("SIGINT", e))?;
    eprintln!(
        "nasctl: capturing on {port} (pcap link type {})",
        header["linktype"].as_u64().unwrap_or(0)
    );
    let limit = duration.map_or(Duration::MAX, Duration::from_secs);
    let stop = tokio::time::sleep(limit.min(Duration::from_secs(100 * 365 * 86_400)));
    tokio::pin!(stop);
    let mut frames = 0u64;
    let why = loop {
        if count.is_some_and(|c| frames >= c) {
            break "count reached";
        }
        let record = tokio::select! {
            r = next_record(&mut rd) => r,
            _ = &mut stop => break "duration reached",
            _ = term.recv() => break "stopped",
            _ = int.recv() => break "stopped",
        };
        match record {
            Ok(Some(r)) => {
                if let Err(e) = write(&mut sink, &r) {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        break "reader gone";
                    }
                    return Err(io(out, e));
                }
                frames += 1;
            }
            Ok(None) => break "nasd ended the capture",
            Err(e) => return Err(e),
        }
    };
    eprintln!("nasctl: {frames} frames captured ({why})");
    Ok(())
}

fn write(sink: &mut Box<dyn Write>, bytes: &[u8]) -> std::io::Result<()> {
    sink.write_all(bytes)?;
    sink.flush()
}

/// One whole record (header and data); `None` at the end of the stream.
async fn next_record(rd: &mut (impl AsyncRead + Unpin)) -> Result<Option<Vec<u8>>, ClientError> {
    let mut header = [0u8; 16];
    match rd.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(ClientError::Protocol(format!("capture stream: {e}"))),
    }
    let incl = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if incl > DEFAULT_SNAPLEN {
        return Err(ClientError::Protocol(format!(
            "capture stream: a record of {incl} bytes (at most {DEFAULT_SNAPLEN})"
        )));
    }
    let mut record = header.to_vec();
    record.resize(16 + incl as usize, 0);
    match rd.read_exact(&mut record[16..]).await {
        Ok(_) => Ok(Some(record)),
        // Cut short: keep the file whole.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(ClientError::Protocol(format!("capture stream: {e}"))),
    }
}
