//! pppd-compatible secrets files (`pap-secrets`, `chap-secrets`).
//!
//! Each entry is `client server secret [address ...]` on one line. Words are separated by
//! white space and may be quoted with `"` or `'` (a backslash escapes the next character
//! inside quotes); `#` starts a comment outside quotes; `*` in the client or server column
//! matches anyone. The best match is an exact name over a wildcard, then the earliest line.
//!
//! The address columns differ from pppd on purpose: a line with **no** address column
//! means "any address from the pool" (pppd would refuse every address, a frequent surprise).
//! `*` also means any address, `-` means none (the user may not get a session), and a list of
//! addresses or `a.b.c.d/n` networks restricts the user to those; the first single address
//! is the one assigned.

use crate::proto::auth::Secret;
use core::fmt;
use core::net::Ipv4Addr;
use std::path::Path;

/// One permitted address form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrSpec {
    /// `*`: any address.
    Any,
    /// `-`: no address at all.
    Nothing,
    /// One address.
    Host(Ipv4Addr),
    /// A network `a.b.c.d/n`.
    Net(Ipv4Addr, u8),
}

impl AddrSpec {
    /// Whether `ip` is permitted by this form.
    pub fn permits(&self, ip: Ipv4Addr) -> bool {
        match *self {
            Self::Any => true,
            Self::Nothing => false,
            Self::Host(h) => h == ip,
            Self::Net(n, len) => {
                let mask = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(len))
                };
                u32::from(n) & mask == u32::from(ip) & mask
            }
        }
    }
}

/// One line of a secrets file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretEntry {
    /// The client (user) name, or `*`.
    pub client: String,
    /// The server name, or `*`.
    pub server: String,
    /// The secret (password).
    pub secret: Secret,
    /// The address columns; empty means any address from the pool.
    pub addresses: Vec<AddrSpec>,
    /// The line number, for messages.
    pub line: usize,
}

impl SecretEntry {
    /// The address this user must get, when the entry names exactly one.
    pub fn fixed_address(&self) -> Option<Ipv4Addr> {
        self.addresses.iter().find_map(|a| match a {
            AddrSpec::Host(h) => Some(*h),
            _ => None,
        })
    }

    /// Whether the entry allows a session with address `ip`.
    pub fn permits(&self, ip: Ipv4Addr) -> bool {
        self.addresses.is_empty() || self.addresses.iter().any(|a| a.permits(ip))
    }

    /// Whether the entry allows any session at all (`-` forbids).
    pub fn allows_session(&self) -> bool {
        !matches!(self.addresses.as_slice(), [AddrSpec::Nothing])
    }
}

/// A syntax error, with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsError {
    /// The file, when known.
    pub path: Option<String>,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SecretsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{p}:{}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

impl std::error::Error for SecretsError {}

/// The entries of a secrets file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    entries: Vec<SecretEntry>,
}

impl Secrets {
    /// Parses the text of a secrets file.
    pub fn parse(text: &str) -> Result<Self, SecretsError> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: String| SecretsError {
                path: None,
                line,
                message,
            };
            let words = split_words(raw).map_err(err)?;
            if words.is_empty() {
                continue;
            }
            if words.len() < 3 {
                return Err(err(format!(
                    "expected `client server secret [addresses]`, found {} word(s)",
                    words.len()
                )));
            }
            let mut addresses = Vec::new();
            for w in &words[3..] {
                addresses.push(parse_addr(w).ok_or_else(|| err(format!("bad address `{w}`")))?);
            }
            let mut it = words.into_iter();
            let (client, server, secret) = (
                it.next().unwrap_or_default(),
                it.next().unwrap_or_default(),
                it.next().unwrap_or_default(),
            );
            entries.push(SecretEntry {
                client,
                server,
                secret: Secret::new(secret.into_bytes()),
                addresses,
                line,
            });
        }
        Ok(Self { entries })
    }

    /// Reads and parses a file. Returns the entries and warnings (a file others can read).
    pub fn load(path: &Path) -> Result<(Self, Vec<String>), SecretsError> {
        let io_err = |e: std::io::Error| SecretsError {
            path: Some(path.display().to_string()),
            line: 0,
            message: format!("cannot read: {e}"),
        };
        let text = std::fs::read_to_string(path).map_err(io_err)?;
        let mut warnings = Vec::new();
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(io_err)?
                .permissions()
                .mode();
            if mode & 0o004 != 0 {
                warnings.push(format!(
                    "{} is readable by every user (mode {:o}): chmod 600 it",
                    path.display(),
                    mode & 0o777
                ));
            }
        }
        let s = Self::parse(&text).map_err(|mut e| {
            e.path = Some(path.display().to_string());
            e
        })?;
        Ok((s, warnings))
    }

    /// All entries.
    pub fn entries(&self) -> &[SecretEntry] {
        &self.entries
    }

    /// The best entry for `client` talking to `server`: exact names beat wildcards.
    pub fn lookup(&self, client: &str, server: &str) -> Option<&SecretEntry> {
        self.entries
            .iter()
            .filter(|e| {
                (e.client == client || e.client == "*") && (e.server == server || e.server == "*")
            })
            .min_by_key(|e| {
                (
                    u8::from(e.client == "*") * 2 + u8::from(e.server == "*"),
                    e.line,
                )
            })
    }
}

fn parse_addr(w: &str) -> Option<AddrSpec> {
    match w {
        "*" => Some(AddrSpec::Any),
        "-" => Some(AddrSpec::Nothing),
        _ => match w.split_once('/') {
            Some((a, n)) => {
                let len: u8 = n.parse().ok().filter(|l| *l <= 32)?;
                Some(AddrSpec::Net(a.parse().ok()?, len))
            }
            None => Some(AddrSpec::Host(w.parse().ok()?)),
        },
    }
}

fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        if c == '#' {
            break;
        }
        let mut word = String::new();
        if c == '"' || c == '\'' {
            chars.next();
            let quote = c;
            loop {
                match chars.next() {
                    None => return Err("unterminated quote".into()),
                    Some('\\') => match chars.next() {
                        Some(e) => word.push(e),
                        None => return Err("backslash at end of line".into()),
                    },
                    Some(ch) if ch == quote => break,
                    Some(ch) => word.push(ch),
                }
            }
        } else {
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || ch == '#' {
                    break;
                }
                word.push(ch);
                chars.next();
            }
        }
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
# Secrets for authentication using PAP
# client    server  secret          IP addresses
dial        *       dial
"john doe"  nasd    "pass word#1"   10.0.0.150
guest       *       guest           -
*           *       fallback        10.0.0.0/24
alice       *       'it\'s'        *   # comment
"#;

    #[test]
    fn parses_pppd_format() {
        let s = Secrets::parse(FILE).unwrap();
        assert_eq!(s.entries().len(), 5);
        let dial = s.lookup("dial", "nasd").unwrap();
        assert_eq!(dial.secret.expose(), b"dial");
        assert!(dial.addresses.is_empty());
        assert!(
            dial.permits(Ipv4Addr::new(192, 0, 2, 1)),
            "no address column = any pool address"
        );
        let john = s.lookup("john doe", "nasd").unwrap();
        assert_eq!(john.secret.expose(), b"pass word#1");
        assert_eq!(john.fixed_address(), Some(Ipv4Addr::new(10, 0, 0, 150)));
        assert!(
            s.lookup("john doe", "other").unwrap().client == "*",
            "server must match"
        );
        assert!(!s.lookup("guest", "nasd").unwrap().allows_session());
        let any = s.lookup("nobody", "nasd").unwrap();
        assert_eq!(any.secret.expose(), b"fallback");
        assert!(any.permits(Ipv4Addr::new(10, 0, 0, 77)));
        assert!(!any.permits(Ipv4Addr::new(10, 0, 1, 77)));
        let alice = s.lookup("alice", "x").unwrap();
        assert_eq!(alice.secret.expose(), b"it's");
        assert_eq!(alice.addresses, [AddrSpec::Any]);
    }

    #[test]
    fn errors_name_the_line() {
        let e = Secrets::parse("ok * ok\nbad line\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = Secrets::parse("a b \"unterminated\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (1, "unterminated quote"));
        let e = Secrets::parse("a b c 10.0.0.300\n").unwrap_err();
        assert!(e.to_string().contains("bad address"), "{e}");
    }

    /// Debian's ppp package ships these (`/usr/share/ppp/`): mgetty's AUTO_PPP convention,
    /// where `""` means "the system password" and `-` blocks system accounts.
    #[test]
    fn debians_example_files() {
        let pap = Secrets::parse(include_str!("testdata/debian-pap-secrets")).unwrap();
        assert_eq!(pap.entries().len(), 6);
        let any = pap.lookup("alice", "hostname").unwrap();
        assert_eq!((any.client.as_str(), any.secret.expose()), ("*", &b""[..]));
        assert_eq!(any.addresses, [AddrSpec::Any]);
        // An empty secret lets nobody in by itself, not even with an empty password.
        for password in ["", "anything"] {
            let req = crate::proto::auth::AuthRequest {
                user: "alice".into(),
                credentials: crate::proto::auth::Credentials::Pap {
                    password: Secret::new(password),
                },
            };
            assert!(!req.verify_secret(any.secret.expose()), "{password:?}");
        }
        for blocked in ["guest", "master", "root", "support", "stats"] {
            let e = pap.lookup(blocked, "hostname").unwrap();
            assert_eq!(e.client, blocked);
            assert!(!e.allows_session(), "{blocked} may not use PPP");
        }
        // The chap-secrets example holds only comments.
        let chap = Secrets::parse(include_str!("testdata/debian-chap-secrets")).unwrap();
        assert!(chap.entries().is_empty());
    }

    #[test]
    fn edge_cases() {
        let s = Secrets::parse(
            "\t tab\t*\tt1\t10.0.0.5 10.0.0.6\n\
             \"\" * empty-name\n\
             quoted \"*\" q\n\
             esc * \"a\\\"b\"\n\
             hash * \"#notacomment\" # a comment\n\
             \n   \n# only a comment\n",
        )
        .unwrap();
        assert_eq!(s.entries().len(), 5);
        let t = s.lookup("tab", "nasd").unwrap();
        assert_eq!(t.fixed_address(), Some(Ipv4Addr::new(10, 0, 0, 5)));
        assert!(t.permits(Ipv4Addr::new(10, 0, 0, 6)));
        assert!(!t.permits(Ipv4Addr::new(10, 0, 0, 7)));
        assert_eq!(s.lookup("", "nasd").unwrap().secret.expose(), b"empty-name");
        assert_eq!(s.lookup("esc", "x").unwrap().secret.expose(), b"a\"b");
        assert_eq!(
            s.lookup("hash", "x").unwrap().secret.expose(),
            b"#notacomment"
        );
        // Exact names beat wildcards whatever the order; the earliest line wins a tie.
        let s = Secrets::parse("* * wild\nbob * first\nbob * second\n").unwrap();
        assert_eq!(s.lookup("bob", "x").unwrap().secret.expose(), b"first");
        assert_eq!(s.lookup("eve", "x").unwrap().secret.expose(), b"wild");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let s = Secrets::parse("u * topsecret\n").unwrap();
        assert!(!format!("{s:?}").contains("topsecret"));
    }
}
