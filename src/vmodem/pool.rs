//! The tokio driver of the pool: ptys, sockets, the control socket and the switch's timers.
//!
//! [`run`] creates, under the pool directory,
//!
//! * `server<i>`: a symlink to the slave of server line `i`'s pty (nasd opens it);
//! * `client<i>`: a symlink to the slave of client line `i`'s pty;
//! * `client<i>.sock`: a Unix stream socket; one connection at a time takes client line `i`
//!   over from its pty (a second one is closed at once). The connection gets a freshly reset
//!   modem; closing it hangs up. When the call ends from the server side (or is cut) the
//!   client gets `NO CARRIER` and then EOF;
//! * `control.sock`: the [`super::control`] socket;
//!
//! prints one JSON line on standard output when they all exist
//! (`{"ready":true,"dir":..,"lines":N,"clients":M,"control":"DIR/control.sock",..}`), and
//! runs one loop that owns the [`Switch`]: DTE bytes and control requests in, the switch's
//! deadlines as timers, DTE bytes and call events out. When it stops it removes the links
//! and sockets it made.
//!
//! A pty whose last opener closes it is a DTR drop (the modem hangs up and, when the DTE
//! comes back, is reset as with `AT&D3`). With [`PoolConfig::eof_on_hangup`], every call end
//! also replaces the server line's pty with a new one (the old slave reads EOF or EIO and
//! the symlink moves), as a USB modem that vanishes and comes back would.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use super::control::{self, Pending};
use super::port::{self, DteHandle, DteIo, DteKey, DteKind, FromPort, ToPort};
use super::pty::{Pty, replace_symlink};
use super::switch::{EndCause, Port, Side, Switch, SwitchConfig, SwitchEvent};

/// Bytes queued for the wire after which a DTE's reads are paused.
pub const PAUSE_ABOVE: usize = 16 * 1024;
/// Bytes queued for the wire below which paused reads resume.
pub const RESUME_BELOW: usize = 4 * 1024;

/// How the pool runs.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Where the links and sockets go.
    pub dir: PathBuf,
    /// The lines and the network.
    pub switch: SwitchConfig,
    /// Replace a server line's pty whenever a call on it ends.
    pub eof_on_hangup: bool,
    /// How often a hung-up pty is checked for a new opener.
    pub recheck: Duration,
}

struct ServerDte {
    link: PathBuf,
    pty: DteHandle,
}

struct ClientDte {
    link: PathBuf,
    sock: PathBuf,
    pty: DteHandle,
    socket: Option<DteHandle>,
}

struct Pool {
    config: PoolConfig,
    switch: Switch,
    servers: Vec<ServerDte>,
    clients: Vec<ClientDte>,
    generation: u64,
    to_pool: mpsc::Sender<FromPort>,
}

/// Runs the pool until `shutdown` completes, then removes its files.
pub async fn run(config: PoolConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    let dir = config.dir.clone();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (to_pool, mut from_ports) = mpsc::channel::<FromPort>(256);
    let (sock_tx, mut sockets) = mpsc::channel::<(usize, UnixStream)>(16);
    let (ctl_tx, mut control_rx) = mpsc::channel::<Pending>(16);
    let now = Instant::now();
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut pool = Pool {
        switch: Switch::new(config.switch.clone(), now, unix),
        servers: Vec::new(),
        clients: Vec::new(),
        generation: 0,
        to_pool,
        config,
    };
    let mut made: Vec<PathBuf> = Vec::new();
    let result = async {
        pool.create(&mut made, sock_tx)?;
        let control_path = dir.join("control.sock");
        let listener = bind(&control_path)?;
        made.push(control_path.clone());
        tokio::spawn(control::serve(listener, ctl_tx));
        pool.announce(&control_path)?;
        tokio::pin!(shutdown);
        loop {
            let deadline = pool.switch.poll_timeout();
            let timer = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                Some(msg) = from_ports.recv() => pool.port_message(msg)?,
                Some((line, stream)) = sockets.recv() => pool.socket(line, stream)?,
                Some(p) = control_rx.recv() => {
                    let reply = control::execute(&mut pool.switch, Instant::now(), p.request);
                    let _ = p.reply.send(reply);
                }
                () = timer => pool.switch.handle_timeout(Instant::now()),
            }
            pool.flush()?;
        }
        Ok(())
    }
    .await;
    for s in &pool.servers {
        s.pty.send(ToPort::Close);
    }
    for c in &pool.clients {
        c.pty.send(ToPort::Close);
        if let Some(s) = &c.socket {
            s.send(ToPort::Close);
        }
    }
    for path in made {
        let _ = std::fs::remove_file(path);
    }
    result
}

fn bind(path: &Path) -> Result<UnixListener> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", path.display()));
        }
        _ => {}
    }
    UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))
}

impl Pool {
    fn next_key(&mut self, port: Port, kind: DteKind) -> DteKey {
        self.generation += 1;
        DteKey {
            port,
            kind,
            generation: self.generation,
        }
    }

    /// A new pty for `port`, its task, and its symlink at `link`.
    fn new_pty(&mut self, port: Port, link: &Path) -> Result<DteHandle> {
        let pty = Pty::open().context("opening a pseudo-terminal")?;
        let key = self.next_key(port, DteKind::Pty);
        let handle = port::spawn(
            key,
            DteIo::Pty(pty.master),
            self.to_pool.clone(),
            self.config.recheck,
        )?;
        replace_symlink(&pty.slave, link).with_context(|| format!("linking {}", link.display()))?;
        tracing::debug!(?port, slave = %pty.slave.display(), "pty");
        Ok(handle)
    }

    fn create(
        &mut self,
        made: &mut Vec<PathBuf>,
        sock_tx: mpsc::Sender<(usize, UnixStream)>,
    ) -> Result<()> {
        let dir = self.config.dir.clone();
        for i in 0..self.switch.lines() {
            let link = dir.join(format!("server{i}"));
            let pty = self.new_pty(Port::server(i), &link)?;
            made.push(link.clone());
            self.servers.push(ServerDte { link, pty });
        }
        for i in 0..self.switch.clients() {
            let link = dir.join(format!("client{i}"));
            let pty = self.new_pty(Port::client(i), &link)?;
            made.push(link.clone());
            let sock = dir.join(format!("client{i}.sock"));
            let listener = bind(&sock)?;
            made.push(sock.clone());
            let tx = sock_tx.clone();
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            if tx.send((i, stream)).await.is_err() {
                                return;
                            }
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            });
            self.clients.push(ClientDte {
                link,
                sock,
                pty,
                socket: None,
            });
        }
        Ok(())
    }

    fn announce(&self, control_path: &Path) -> Result<()> {
        use std::io::Write;
        let ready = serde_json::json!({
            "ready": true,
            "dir": self.config.dir,
            "lines": self.servers.len(),
            "clients": self.clients.len(),
            "control": control_path,
            "numbers": self.config.switch.numbers,
            "servers": self.servers.iter().map(|s| &s.link).collect::<Vec<_>>(),
            "client_ptys": self.clients.iter().map(|c| &c.link).collect::<Vec<_>>(),
            "client_sockets": self.clients.iter().map(|c| &c.sock).collect::<Vec<_>>(),
        });
        let mut out = std::io::stdout().lock();
        writeln!(out, "{ready}")?;
        out.flush()?;
        Ok(())
    }

    /// The handle a key refers to, if it is still current.
    fn current(&mut self, key: DteKey) -> Option<&mut DteHandle> {
        let h = match (key.port.side, key.kind) {
            (Side::Server, _) => &mut self.servers.get_mut(key.port.line)?.pty,
            (Side::Client, DteKind::Pty) => &mut self.clients.get_mut(key.port.line)?.pty,
            (Side::Client, DteKind::Socket) => {
                self.clients.get_mut(key.port.line)?.socket.as_mut()?
            }
        };
        (h.key == key).then_some(h)
    }

    /// Whether a client line's pty is shadowed by a socket connection.
    fn shadowed(&self, key: DteKey) -> bool {
        key.port.side == Side::Client
            && key.kind == DteKind::Pty
            && self.clients[key.port.line].socket.is_some()
    }

    fn port_message(&mut self, msg: FromPort) -> Result<()> {
        let now = Instant::now();
        match msg {
            FromPort::Input(key, bytes) => {
                if self.current(key).is_some() && !self.shadowed(key) {
                    self.switch.handle_dte_input(now, key.port, &bytes);
                }
            }
            FromPort::Attached(key) => {
                let Some(h) = self.current(key) else {
                    return Ok(());
                };
                h.attached = true;
                tracing::info!(port = ?key.port, "DTE attached");
                if !self.shadowed(key) {
                    self.switch.dte_reset(now, key.port);
                }
            }
            FromPort::Detached(key) => {
                let Some(h) = self.current(key) else {
                    return Ok(());
                };
                h.attached = false;
                tracing::info!(port = ?key.port, kind = ?key.kind, "DTE gone");
                if key.kind == DteKind::Socket {
                    self.clients[key.port.line].socket = None;
                    self.switch.dte_hangup(now, key.port);
                } else if !self.shadowed(key) {
                    self.switch.dte_hangup(now, key.port);
                }
            }
        }
        Ok(())
    }

    fn socket(&mut self, line: usize, stream: UnixStream) -> Result<()> {
        if self.clients[line].socket.is_some() {
            tracing::warn!(client = line, "second socket connection refused");
            return Ok(());
        }
        let port = Port::client(line);
        let key = self.next_key(port, DteKind::Socket);
        let handle = port::spawn(
            key,
            DteIo::Socket(stream),
            self.to_pool.clone(),
            self.config.recheck,
        )?;
        tracing::info!(client = line, "socket connected");
        self.clients[line].socket = Some(handle);
        self.switch.dte_reset(Instant::now(), port);
        Ok(())
    }

    /// The DTE that receives `port`'s output, if any is there.
    fn output_dte(&mut self, port: Port) -> Option<&mut DteHandle> {
        let h = match port.side {
            Side::Server => &mut self.servers[port.line].pty,
            Side::Client => {
                let c = &mut self.clients[port.line];
                c.socket.as_mut().unwrap_or(&mut c.pty)
            }
        };
        h.attached.then_some(h)
    }

    /// Writes the switch's output, acts on its events and adjusts flow control.
    fn flush(&mut self) -> Result<()> {
        loop {
            while let Some((port, bytes)) = self.switch.poll_transmit() {
                if let Some(h) = self.output_dte(port) {
                    h.send(ToPort::Write(bytes));
                }
            }
            let Some(ev) = self.switch.poll_event() else {
                break;
            };
            tracing::info!(?ev, "call");
            if let SwitchEvent::Ended {
                line,
                client,
                cause,
            } = ev
            {
                self.call_ended(line, client, cause)?;
            }
        }
        let ports = (0..self.servers.len())
            .map(Port::server)
            .chain((0..self.clients.len()).map(Port::client));
        for port in ports.collect::<Vec<_>>() {
            let backlog = self.switch.input_backlog(port);
            if let Some(h) = self.input_dte(port) {
                if backlog > PAUSE_ABOVE {
                    h.set_paused(true);
                } else if backlog < RESUME_BELOW {
                    h.set_paused(false);
                }
            }
        }
        Ok(())
    }

    /// After a call: close the client's socket unless the client hung up itself, and
    /// replace the server's pty with `--eof-on-hangup`.
    fn call_ended(&mut self, line: usize, client: usize, cause: EndCause) -> Result<()> {
        let now = Instant::now();
        if matches!(cause, EndCause::ServerHangup | EndCause::Cut)
            && let Some(s) = self.clients[client].socket.take()
        {
            s.send(ToPort::Close);
            self.switch.dte_hangup(now, Port::client(client));
        }
        if self.config.eof_on_hangup {
            let link = self.servers[line].link.clone();
            let new = self.new_pty(Port::server(line), &link)?;
            let old = std::mem::replace(&mut self.servers[line].pty, new);
            old.send(ToPort::Close);
            self.switch.dte_hangup(now, Port::server(line));
        }
        Ok(())
    }

    fn input_dte(&mut self, port: Port) -> Option<&mut DteHandle> {
        match port.side {
            Side::Server => Some(&mut self.servers[port.line].pty),
            Side::Client => {
                let c = &mut self.clients[port.line];
                Some(c.socket.as_mut().unwrap_or(&mut c.pty))
            }
        }
    }
}
