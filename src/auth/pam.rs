//! PAM for PAP: checks a PAP user name and password against the system's PAM stack.
//!
//! The service is `nasd` by default (`/etc/pam.d/nasd`, shipped as `pam.d/nasd` in the
//! repository). **A missing service file silently falls back to `/etc/pam.d/other`**, so
//! install it.
//!
//! Only PAP can use PAM: CHAP needs the plaintext secret on the server side, and PAM never
//! hands out a password, it only checks one.
//!
//! PAM calls block (pam_unix alone sleeps about 2 s after a failure, and an LDAP or RADIUS
//! module may wait on the network), so every check runs on tokio's blocking thread pool, and a
//! semaphore bounds how many run at once. A slow PAM stack therefore never stalls the other
//! lines. `PAM_TTY` is set to the port name and `PAM_RHOST` to the caller id, when known, so
//! that PAM modules and their logs can tell where an attempt came from.
//!
//! The crate is `nonstick` (hand-written FFI, no bindgen). The `pam` crate (0.8) starts its
//! transaction without a user name and fails against pam_matrix with `PAM_BAD_ITEM`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::sync::Arc;

use nonstick::items::ItemsMut;
use nonstick::{
    AuthnFlags, ConversationAdapter, ErrorCode, PamShared, Transaction, TransactionBuilder,
};
use tokio::sync::Semaphore;

use crate::proto::auth::Secret;

/// The PAM service name nasd uses unless configured otherwise.
pub const DEFAULT_SERVICE: &str = "nasd";

/// Why PAM did not accept a login. Either way the login must be refused; the two kinds differ
/// in how they are logged and counted. Neither ever contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PamError {
    /// The PAM stack said no: wrong password, unknown user, expired or locked account, a
    /// password that must be changed first, or a name or password PAM cannot carry.
    #[error("refused by PAM: {0}")]
    Refused(String),
    /// PAM could not decide: a broken or missing module or service file, a failing script,
    /// an unreachable back end, a worker thread that died.
    #[error("PAM system error: {0}")]
    System(String),
}

impl PamError {
    /// Whether the PAM stack actually refused the credentials (as opposed to failing).
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Refused(_))
    }
}

/// Checks PAP credentials through PAM, at most `max_concurrent` at a time.
#[derive(Debug, Clone)]
pub struct Pam {
    service: String,
    limit: Arc<Semaphore>,
}

impl Pam {
    /// A checker for PAM service `service` (the file `/etc/pam.d/<service>`) running at most
    /// `max_concurrent` PAM transactions at once (0 is taken as 1).
    pub fn new(service: impl Into<String>, max_concurrent: usize) -> Self {
        Self {
            service: service.into(),
            limit: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// The PAM service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Authenticates `user` with `password` (`pam_authenticate`) and checks the account
    /// (`pam_acct_mgmt`: expiry, access restrictions), on a blocking thread. `tty` becomes
    /// `PAM_TTY` (the port name, e.g. `ttyUSB0`) and `rhost` `PAM_RHOST` (the caller id).
    ///
    /// Empty passwords are refused (`PAM_DISALLOW_NULL_AUTHTOK`). If the returned future is
    /// dropped, the PAM transaction still runs to its end and keeps its slot until then.
    pub async fn check(
        &self,
        user: &str,
        password: &Secret,
        tty: &str,
        rhost: Option<&str>,
    ) -> Result<(), PamError> {
        let request = Request::new(&self.service, user, password, tty, rhost)?;
        let permit = Arc::clone(&self.limit)
            .acquire_owned()
            .await
            .map_err(|_| PamError::System("PAM concurrency limit closed".into()))?;
        let result = tokio::task::spawn_blocking(move || {
            let result = request.run();
            drop(permit);
            result
        })
        .await
        .map_err(|e| PamError::System(format!("PAM worker thread failed: {e}")))?;
        match &result {
            Ok(()) => tracing::info!(service = %self.service, user, tty, rhost, "PAM accepted"),
            Err(e @ PamError::Refused(_)) => {
                tracing::info!(service = %self.service, user, tty, rhost, "{e}")
            }
            Err(e @ PamError::System(_)) => {
                tracing::error!(service = %self.service, user, tty, rhost, "{e}")
            }
        }
        result
    }
}

/// One PAM transaction's inputs, checked to be representable as C strings.
struct Request {
    service: String,
    user: String,
    password: Secret,
    tty: Option<String>,
    rhost: Option<String>,
}

impl Request {
    fn new(
        service: &str,
        user: &str,
        password: &Secret,
        tty: &str,
        rhost: Option<&str>,
    ) -> Result<Self, PamError> {
        if service.is_empty() || service.contains('\0') {
            return Err(PamError::System(format!(
                "invalid PAM service name {service:?}"
            )));
        }
        if user.is_empty() {
            return Err(PamError::Refused("empty user name".into()));
        }
        // PAM strings are C strings: a NUL cannot be passed (and no real name or password
        // contains one).
        if user.contains('\0') {
            return Err(PamError::Refused("user name contains a NUL byte".into()));
        }
        if password.expose().contains(&0) {
            return Err(PamError::Refused("password contains a NUL byte".into()));
        }
        // The location items are only informative: drop one that cannot be passed.
        let item = |s: &str| (!s.is_empty() && !s.contains('\0')).then(|| s.to_owned());
        Ok(Self {
            service: service.to_owned(),
            user: user.to_owned(),
            password: password.clone(),
            tty: item(tty),
            rhost: rhost.and_then(item),
        })
    }

    /// Runs the blocking PAM transaction.
    fn run(self) -> Result<(), PamError> {
        let conv = PapConversation {
            user: OsString::from(&self.user),
            password: OsString::from_vec(self.password.expose().to_vec()),
        };
        let mut txn = TransactionBuilder::new_with_service(&self.service)
            .username(&self.user)
            .build(conv.into_conversation())
            .map_err(|e| PamError::System(format!("pam_start: {e}")))?;
        {
            let mut items = txn.items_mut();
            if let Some(tty) = &self.tty {
                items
                    .set_tty_name(Some(OsStr::new(tty)))
                    .map_err(|e| PamError::System(format!("setting PAM_TTY: {e}")))?;
            }
            if let Some(rhost) = &self.rhost {
                items
                    .set_remote_host(Some(OsStr::new(rhost)))
                    .map_err(|e| PamError::System(format!("setting PAM_RHOST: {e}")))?;
            }
        }
        txn.authenticate(AuthnFlags::SILENT | AuthnFlags::DISALLOW_NULL_AUTHTOK)
            .map_err(|e| classify("pam_authenticate", e))?;
        txn.account_management(AuthnFlags::SILENT | AuthnFlags::DISALLOW_NULL_AUTHTOK)
            .map_err(|e| classify("pam_acct_mgmt", e))
    }
}

/// Sorts a PAM error code into a refusal or a system error.
fn classify(step: &str, code: ErrorCode) -> PamError {
    let msg = format!("{step}: {code}");
    match code {
        ErrorCode::AuthenticationError
        | ErrorCode::UserUnknown
        | ErrorCode::PermissionDenied
        | ErrorCode::CredentialsInsufficient
        | ErrorCode::MaxTries
        | ErrorCode::AccountExpired
        | ErrorCode::NewAuthTokRequired
        | ErrorCode::AuthTokExpired => PamError::Refused(msg),
        _ => PamError::System(msg),
    }
}

/// Answers PAM's prompts non-interactively: the echoed prompt gets the user name, the masked
/// one the password. Messages from modules are logged (they never contain the password).
struct PapConversation {
    user: OsString,
    password: OsString,
}

impl ConversationAdapter for PapConversation {
    fn prompt(&self, _request: impl AsRef<OsStr>) -> nonstick::Result<OsString> {
        Ok(self.user.clone())
    }

    fn masked_prompt(&self, _request: impl AsRef<OsStr>) -> nonstick::Result<OsString> {
        Ok(self.password.clone())
    }

    fn error_msg(&self, message: impl AsRef<OsStr>) {
        tracing::debug!(message = %message.as_ref().to_string_lossy(), "PAM error message");
    }

    fn info_msg(&self, message: impl AsRef<OsStr>) {
        tracing::debug!(message = %message.as_ref().to_string_lossy(), "PAM info message");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_sorts_refusals_from_system_errors() {
        for code in [
            ErrorCode::AuthenticationError,
            ErrorCode::UserUnknown,
            ErrorCode::PermissionDenied,
            ErrorCode::AccountExpired,
            ErrorCode::NewAuthTokRequired,
            ErrorCode::MaxTries,
        ] {
            assert!(classify("x", code).is_refusal(), "{code:?}");
        }
        for code in [
            ErrorCode::SystemError,
            ErrorCode::ServiceError,
            ErrorCode::OpenError,
            ErrorCode::AuthInfoUnavailable,
            ErrorCode::ConversationError,
            ErrorCode::BufferError,
        ] {
            assert!(!classify("x", code).is_refusal(), "{code:?}");
        }
        assert!(
            classify("pam_acct_mgmt", ErrorCode::AccountExpired)
                .to_string()
                .starts_with("refused by PAM: pam_acct_mgmt: ")
        );
    }

    #[test]
    fn unrepresentable_inputs_are_refused_before_pam() {
        let pw = Secret::new(b"pw".to_vec());
        let nul = Secret::new(b"p\0w".to_vec());
        assert!(Request::new("nasd", "", &pw, "ttyS0", None).is_err_and(|e| e.is_refusal()));
        assert!(Request::new("nasd", "a\0b", &pw, "ttyS0", None).is_err_and(|e| e.is_refusal()));
        assert!(Request::new("nasd", "alice", &nul, "ttyS0", None).is_err_and(|e| e.is_refusal()));
        assert!(Request::new("", "alice", &pw, "ttyS0", None).is_err_and(|e| !e.is_refusal()));
        assert!(
            Request::new("na\0sd", "alice", &pw, "ttyS0", None).is_err_and(|e| !e.is_refusal())
        );
        // Bad location items are dropped, not fatal.
        let r = Request::new("nasd", "alice", &pw, "tty\0S0", Some("")).map_err(|e| e.to_string());
        let r = r.as_ref().map(|r| (r.tty.clone(), r.rhost.clone()));
        assert_eq!(r, Ok((None, None)));
        let r =
            Request::new("nasd", "alice", &pw, "ttyS0", Some("5551234")).map_err(|e| e.to_string());
        let r = r.as_ref().map(|r| (r.tty.clone(), r.rhost.clone()));
        assert_eq!(r, Ok((Some("ttyS0".into()), Some("5551234".into()))));
    }

    #[tokio::test]
    async fn refused_inputs_never_reach_pam_and_never_show_the_password() {
        // A service that does not exist would be a system error if PAM were consulted.
        let pam = Pam::new("nasd-no-such-service", 0);
        let err = pam
            .check(
                "alice",
                &Secret::new(b"hunter\0two".to_vec()),
                "ttyS0",
                None,
            )
            .await;
        let err = err.err().map(|e| (e.is_refusal(), format!("{e} {e:?}")));
        let (refused, text) = err.unwrap_or_default();
        assert!(refused);
        assert!(!text.contains("hunter"), "{text}");
    }
}
