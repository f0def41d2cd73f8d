use super::*;

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

fn pw(user: &str) -> Option<Credential> {
    (user == "alice").then(|| Credential::Password("secret".into()))
}

/// An Authorization value a UA would send for `nonce`.
fn answer(c: &Challenger, nonce: &str, password: &str, qop: bool) -> String {
    let h1 = ha1("alice", c.realm(), password);
    let uri = "sip:nas.example";
    if qop {
        let r = response_auth(&h1, nonce, "00000001", "0a4f113b", "REGISTER", uri);
        format!(
            "Digest username=\"alice\", realm=\"{}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{r}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"0a4f113b\"",
            c.realm()
        )
    } else {
        let r = response_no_qop(&h1, nonce, "REGISTER", uri);
        format!(
            "Digest username=\"alice\",realm=\"{}\",nonce=\"{nonce}\",uri=\"{uri}\",response=\"{r}\"",
            c.realm()
        )
    }
}

#[test]
fn rfc2617_vector() {
    let h1 = ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
    let r = response_auth(
        &h1,
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "00000001",
        "0a4f113b",
        "GET",
        "/dir/index.html",
    );
    assert_eq!(r, "6629fae49393a05397450978507c4ef1");
}

#[test]
fn challenge_format() {
    let c = Challenger::new("nas.example", KEY, 300);
    let ch = c.challenge(1000, false);
    assert!(ch.starts_with("Digest realm=\"nas.example\", nonce=\""));
    assert!(ch.contains("qop=\"auth\""));
    assert!(!ch.contains("stale"));
    assert!(c.challenge(1000, true).ends_with(", stale=true"));
    let p = parse_authorization(&ch).unwrap();
    assert_eq!(p[1], ("nonce".to_string(), c.nonce(1000)));
}

#[test]
fn accepts_right_password_with_and_without_qop() {
    let c = Challenger::new("nas.example", KEY, 300);
    let n = c.nonce(1000);
    for qop in [true, false] {
        let a = answer(&c, &n, "secret", qop);
        assert_eq!(
            c.verify(1100, "REGISTER", &a, pw),
            Verdict::Ok("alice".into())
        );
        // HA1 stored instead of the password.
        let h1 = ha1("alice", "nas.example", "secret").to_uppercase();
        let v = c.verify(1100, "REGISTER", &a, |_| Some(Credential::Ha1(h1.clone())));
        assert_eq!(v, Verdict::Ok("alice".into()));
        // Another method than the one signed.
        assert_eq!(c.verify(1100, "INVITE", &a, pw), Verdict::Wrong);
    }
}

#[test]
fn wrong_password_user_realm() {
    let c = Challenger::new("nas.example", KEY, 300);
    let n = c.nonce(1000);
    assert_eq!(
        c.verify(1000, "REGISTER", &answer(&c, &n, "nope", true), pw),
        Verdict::Wrong
    );
    assert_eq!(
        c.verify(1000, "REGISTER", &answer(&c, &n, "secret", true), |_| None),
        Verdict::Wrong
    );
    let other = Challenger::new("other.example", KEY, 300);
    let a = answer(&other, &other.nonce(1000), "secret", true);
    assert_eq!(c.verify(1000, "REGISTER", &a, pw), Verdict::Wrong);
}

#[test]
fn expired_nonce_is_stale_only_when_right() {
    let c = Challenger::new("nas.example", KEY, 300);
    let n = c.nonce(1000);
    assert_eq!(
        c.verify(1300, "REGISTER", &answer(&c, &n, "secret", true), pw),
        Verdict::Ok("alice".into())
    );
    assert_eq!(
        c.verify(1301, "REGISTER", &answer(&c, &n, "secret", true), pw),
        Verdict::Stale
    );
    assert_eq!(
        c.verify(1301, "REGISTER", &answer(&c, &n, "nope", true), pw),
        Verdict::Wrong
    );
    // A nonce from the future is not accepted.
    let f = c.nonce(5000);
    assert_eq!(
        c.verify(1000, "REGISTER", &answer(&c, &f, "secret", true), pw),
        Verdict::Wrong
    );
}

#[test]
fn tampered_or_foreign_nonce() {
    let c = Challenger::new("nas.example", KEY, 300);
    let n = c.nonce(1000);
    // Move the timestamp forward to dodge expiry: the tag no longer matches.
    let tampered = format!("{:016x}{}", 5000u64, &n[16..]);
    assert_eq!(
        c.verify(5000, "REGISTER", &answer(&c, &tampered, "secret", true), pw),
        Verdict::Wrong
    );
    let other_key = Challenger::new("nas.example", b"another key", 300);
    let foreign = other_key.nonce(1000);
    assert_eq!(
        c.verify(1000, "REGISTER", &answer(&c, &foreign, "secret", true), pw),
        Verdict::Wrong
    );
    assert_eq!(
        c.verify(1000, "REGISTER", &answer(&c, "short", "secret", true), pw),
        Verdict::Wrong
    );
}

#[test]
fn malformed_headers() {
    let c = Challenger::new("nas.example", KEY, 300);
    let n = c.nonce(1000);
    let good = answer(&c, &n, "secret", true);
    for bad in [
        "",
        "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
        "Digest",
        "Digest username=\"alice\"",
        "Digest username=\"alice, realm=x",
        "Digest =x",
        "Digest username=\"a\" realm=\"b\"",
        &good.replace("algorithm=MD5", "algorithm=SHA-256"),
        &good.replace("qop=auth", "qop=auth-int"),
        &good.replace(", nc=00000001", ""),
        &good.replace("nc=00000001", "nc=1"),
    ] {
        assert_eq!(
            c.verify(1000, "REGISTER", bad, pw),
            Verdict::Malformed,
            "{bad}"
        );
    }
}

#[test]
fn param_parsing_quotes_and_commas() {
    let p = parse_authorization(
        "digest  username = \"a\\\"b, c\" ,realm=r,  uri=\"sip:x;y=z\",nc=00000001",
    )
    .unwrap();
    assert_eq!(p[0], ("username".into(), "a\"b, c".into()));
    assert_eq!(p[1], ("realm".into(), "r".into()));
    assert_eq!(p[2], ("uri".into(), "sip:x;y=z".into()));
    assert_eq!(p[3], ("nc".into(), "00000001".into()));
}

#[test]
fn secrets_not_in_debug() {
    let c = Challenger::new("nas.example", b"TOPSECRETKEY", 300);
    assert!(!format!("{c:?}").contains("TOPSECRET"));
    let p = Credential::Password("hunter2".into());
    assert!(!format!("{p:?}").contains("hunter2"));
    let h = Credential::Ha1("abcdef".into());
    assert!(!format!("{h:?}").contains("abcdef"));
}

proptest::proptest! {
    #[test]
    fn verify_never_panics(s in ".{0,300}", now in proptest::prelude::any::<u64>()) {
        let c = Challenger::new("nas.example", KEY, 300);
        let _ = c.verify(now, "REGISTER", &s, pw);
        let _ = c.verify(now, "REGISTER", &format!("Digest {s}"), pw);
    }
}
