//! `nasd::radius` against a real FreeRADIUS 3.x (and `radclient` for Dynamic Authorization):
//! PAP and CHAP verdicts, reply attributes, accounting records in the detail file (with
//! Gigawords), fail-over from a dead server, a wrong secret, and Disconnect/CoA requests.
//!
//! Needs the Debian packages `freeradius` and `freeradius-utils`; a test fails with a message
//! saying so when they are missing. Everything runs on 127.0.0.1 on free ports.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use nasd::proto::auth::{Secret, chap_md5};
use nasd::radius::{
    AccessReply, AccessRequest, AccountingRequest, AcctStatus, Credentials, DaeClient, DaeConfig,
    DaeKind, DaeRequest, DaeServer, RadiusClient, RadiusClientConfig, RadiusError, ServerConfig,
    TerminateCause,
};

use crate::support::freeradius::{self, FreeRadius, SECRET};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

fn server(auth_port: u16, acct_port: u16, secret: &str) -> ServerConfig {
    ServerConfig {
        addr: LO,
        auth_port,
        acct_port,
        secret: Secret::new(secret),
    }
}

async fn client_for(fr: &FreeRadius) -> RadiusClient {
    let mut cfg = RadiusClientConfig::new(
        vec![server(fr.auth_port, fr.acct_port, SECRET)],
        "nasd-test",
    );
    cfg.nas_ip = Some(Ipv4Addr::new(192, 0, 2, 1));
    cfg.timeout = Duration::from_secs(2);
    cfg.retries = 1;
    RadiusClient::new(cfg).await.expect("client")
}

fn request(user: &str, credentials: Credentials) -> AccessRequest {
    AccessRequest {
        user: user.into(),
        credentials,
        nas_port: 4,
        port_name: "ttyS4".into(),
        calling_station_id: Some("5551234".into()),
        called_station_id: Some("5550000".into()),
        connect_info: Some("33600".into()),
        acct_session_id: Some("nasd-1".into()),
    }
}

fn pap(user: &str, pw: &str) -> AccessRequest {
    request(
        user,
        Credentials::Pap {
            password: Secret::new(pw),
        },
    )
}

fn chap(user: &str, secret: &str) -> AccessRequest {
    let challenge: Vec<u8> = (0..16).map(|i| i * 7 + 3).collect();
    let response = chap_md5(42, secret.as_bytes(), &challenge);
    request(
        user,
        Credentials::Chap {
            ident: 42,
            challenge,
            response,
        },
    )
}

#[test]
fn radius_pap_accept_applies_reply_attributes() {
    let fr = FreeRadius::start();
    let reply = block_on(async {
        client_for(&fr)
            .await
            .authenticate(&pap("alice", "alicepw"))
            .await
    });
    match reply {
        Ok(AccessReply::Accept {
            framed_ip,
            session_timeout,
            idle_timeout,
            class,
            reply_message,
            ..
        }) => {
            assert_eq!(framed_ip, Some(Ipv4Addr::new(10, 9, 0, 7)));
            assert_eq!(session_timeout, Some(Duration::from_secs(600)));
            assert_eq!(idle_timeout, Some(Duration::from_secs(120)));
            assert_eq!(class, vec![b"gold".to_vec()]);
            assert_eq!(reply_message.as_deref(), Some("Hello alice"));
        }
        other => panic!("{other:?}\n{}", fr.log()),
    }
    // FreeRADIUS saw our NAS attributes.
    let log = fr.log();
    for needle in [
        "NAS-Identifier = \"nasd-test\"",
        "NAS-IP-Address = 192.0.2.1",
        "NAS-Port-Id = \"ttyS4\"",
        "Service-Type = Framed-User",
        "Framed-Protocol = PPP",
        "NAS-Port-Type = Async",
    ] {
        assert!(log.contains(needle), "{needle} missing in:\n{log}");
    }
}

#[test]
fn radius_pap_reject_on_wrong_password() {
    let fr = FreeRadius::start();
    let reply = block_on(async {
        let c = client_for(&fr).await;
        (
            c.authenticate(&pap("alice", "wrong")).await,
            c.authenticate(&pap("bob", "bobpw")).await,
        )
    });
    assert!(
        matches!(reply.0, Ok(AccessReply::Reject { .. })),
        "{:?}\n{}",
        reply.0,
        fr.log()
    );
    assert!(
        matches!(
            reply.1,
            Ok(AccessReply::Accept {
                framed_ip: None,
                ..
            })
        ),
        "{:?}",
        reply.1
    );
}

#[test]
fn radius_chap_accept_and_reject() {
    let fr = FreeRadius::start();
    let (good, bad) = block_on(async {
        let c = client_for(&fr).await;
        (
            c.authenticate(&chap("bob", "bobpw")).await,
            c.authenticate(&chap("bob", "nope")).await,
        )
    });
    assert!(
        matches!(good, Ok(AccessReply::Accept { .. })),
        "{good:?}\n{}",
        fr.log()
    );
    assert!(matches!(bad, Ok(AccessReply::Reject { .. })), "{bad:?}");
}

#[test]
fn radius_wrong_secret_gets_no_verdict() {
    let fr = FreeRadius::start();
    let r = block_on(async {
        let mut cfg = RadiusClientConfig::new(
            vec![server(fr.auth_port, fr.acct_port, "not-the-secret")],
            "nasd-test",
        );
        cfg.timeout = Duration::from_millis(500);
        cfg.retries = 0;
        RadiusClient::new(cfg)
            .await
            .unwrap()
            .authenticate(&pap("alice", "alicepw"))
            .await
    });
    assert!(matches!(r, Err(RadiusError::NoResponse)), "{r:?}");
}

#[test]
fn radius_accounting_start_interim_stop_reach_the_detail_file() {
    let fr = FreeRadius::start();
    block_on(async {
        let c = client_for(&fr).await;
        let mut rec = AccountingRequest::new(AcctStatus::Start, "sess-42");
        rec.user = "alice".into();
        rec.nas_port = 4;
        rec.port_name = "ttyS4".into();
        rec.framed_ip = Some(Ipv4Addr::new(10, 9, 0, 7));
        rec.class = vec![b"gold".to_vec()];
        rec.event_time = Some(1_700_000_000);
        c.account(&rec).await.expect("start");
        rec.status = AcctStatus::InterimUpdate;
        rec.session_time = 60;
        rec.input_octets = 1000;
        rec.output_octets = 2000;
        c.account(&rec).await.expect("interim");
        rec.status = AcctStatus::Stop;
        rec.session_time = 120;
        rec.input_octets = 5 * (1u64 << 32) + 17;
        rec.output_octets = 123_456;
        rec.input_packets = 10;
        rec.output_packets = 20;
        rec.terminate_cause = Some(TerminateCause::LostCarrier);
        c.account(&rec).await.expect("stop");
    });
    // The Accounting-Response comes after the detail module wrote the record.
    let detail = fr.detail();
    for needle in [
        "Acct-Status-Type = Start",
        "Acct-Status-Type = Interim-Update",
        "Acct-Status-Type = Stop",
        "Acct-Session-Id = \"sess-42\"",
        "Acct-Input-Octets = 1000",
        "Acct-Output-Octets = 2000",
        "Acct-Input-Gigawords = 5",
        "Acct-Input-Octets = 17",
        "Acct-Output-Octets = 123456",
        "Acct-Session-Time = 120",
        "Acct-Terminate-Cause = Lost-Carrier",
        "Class = 0x676f6c64",
        "Framed-IP-Address = 10.9.0.7",
    ] {
        assert!(
            detail.contains(needle),
            "{needle} missing in detail:\n{detail}"
        );
    }
    assert_eq!(detail.matches("Acct-Status-Type").count(), 3, "{detail}");
}

#[test]
fn radius_fails_over_from_a_dead_server() {
    let fr = FreeRadius::start();
    let dead = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (reply, acct, stats) = block_on(async {
        let mut cfg = RadiusClientConfig::new(
            vec![
                server(dead, dead, SECRET),
                server(fr.auth_port, fr.acct_port, SECRET),
            ],
            "nasd-test",
        );
        cfg.timeout = Duration::from_millis(300);
        cfg.retries = 1;
        let c = RadiusClient::new(cfg).await.unwrap();
        let reply = c.authenticate(&pap("alice", "alicepw")).await;
        let acct = c
            .account(&AccountingRequest::new(AcctStatus::AccountingOn, "on-1"))
            .await;
        (reply, acct, c.stats())
    });
    assert!(matches!(reply, Ok(AccessReply::Accept { .. })), "{reply:?}");
    assert!(acct.is_ok(), "{acct:?}");
    // Authentication failed over once; accounting went straight to the live server.
    assert_eq!(stats.failovers, 1, "{stats:?}");
    assert!(fr.detail().contains("Accounting-On"), "{}", fr.detail());
}

#[test]
fn radius_dae_disconnect_and_coa_from_radclient() {
    freeradius::require("radclient");
    let seen = Arc::new(std::sync::Mutex::new(Vec::<DaeRequest>::new()));
    let seen2 = seen.clone();
    let handler = Arc::new(move |req: DaeRequest| {
        let matched = usize::from(req.user.as_deref() == Some("alice"));
        seen2.lock().unwrap().push(req);
        async move { matched }
    });
    // The server runs on a thread of its own while this one runs radclient; dropping
    // `stop` (also when an assertion fails) ends it.
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        block_on(async move {
            let mut cfg = DaeConfig::new(vec![DaeClient {
                addr: LO,
                secret: Secret::new("daesecret"),
            }]);
            cfg.listen = (LO, 0).into();
            let srv = Arc::new(DaeServer::bind(cfg).await.unwrap());
            tx.send(srv.clone()).unwrap();
            tokio::select! {
                r = srv.run(handler) => r.unwrap(),
                _ = stopped => {}
            }
        })
    });
    let srv = rx.recv().expect("DAE server started");
    let to = srv.local_addr().unwrap().to_string();

    let (ok, out) = freeradius::radclient(
        &to,
        "disconnect",
        "daesecret",
        "User-Name = alice\nAcct-Session-Id = \"s-1\"\n",
    );
    assert!(ok && out.contains("Disconnect-ACK"), "{out}");
    let (ok, out) = freeradius::radclient(&to, "disconnect", "daesecret", "User-Name = carol\n");
    assert!(
        !ok && out.contains("Disconnect-NAK") && out.contains("Session-Context-Not-Found"),
        "{out}"
    );
    let (ok, out) = freeradius::radclient(
        &to,
        "coa",
        "daesecret",
        "User-Name = alice\nSession-Timeout = 90\n",
    );
    assert!(ok && out.contains("CoA-ACK"), "{out}");
    let (ok, out) = freeradius::radclient(
        &to,
        "coa",
        "daesecret",
        "User-Name = alice\nFilter-Id = \"x\"\n",
    );
    assert!(
        !ok && out.contains("CoA-NAK") && out.contains("Unsupported-Attribute"),
        "{out}"
    );
    let (ok, out) = freeradius::radclient(&to, "disconnect", "wrongsecret", "User-Name = alice\n");
    assert!(
        !ok && !out.contains("Disconnect-ACK") && !out.contains("Disconnect-NAK"),
        "{out}"
    );

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0].kind, DaeKind::Disconnect);
    assert_eq!(seen[0].acct_session_id.as_deref(), Some("s-1"));
    assert_eq!(
        seen[2].kind,
        DaeKind::Coa {
            session_timeout: Some(Duration::from_secs(90)),
            idle_timeout: None
        }
    );
    let st = srv.stats();
    assert_eq!((st.acks, st.naks, st.dropped), (2, 2, 1), "{st:?}");
    drop(stop);
    thread.join().unwrap();
}
