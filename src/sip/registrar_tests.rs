use super::*;
use proptest::prelude::*;

fn src() -> SocketAddr {
    "192.0.2.10:5060".parse().unwrap()
}

fn contact(uri: &str, expires: Option<u32>) -> ContactReq {
    ContactReq {
        uri: uri.to_string(),
        expires,
        q: None,
    }
}

/// Registers `sip:a@h1` and `sip:a@h2` for AOR `a` (Call-ID `c`, CSeq 1).
fn register_two(r: &mut Registrar, t0: Instant, expires: Option<u32>) {
    let contacts = vec![contact("sip:a@h1", None), contact("sip:a@h2", None)];
    r.register(t0, req("a", "c", 1, contacts, expires)).unwrap();
}

fn req(
    aor: &str,
    call_id: &str,
    cseq: u32,
    contacts: Vec<ContactReq>,
    expires: Option<u32>,
) -> RegisterRequest {
    RegisterRequest {
        aor: aor.to_string(),
        call_id: call_id.to_string(),
        cseq,
        contacts: Contact::List(contacts),
        expires,
        source: src(),
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn expires_from_contact_then_header_then_default() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    let b = r
        .register(
            t0,
            req(
                "a",
                "c1",
                1,
                vec![contact("sip:a@h1", Some(120))],
                Some(300),
            ),
        )
        .unwrap();
    assert_eq!(b[0].expires_at, t0 + secs(120));
    let b = r
        .register(
            t0,
            req("b", "c2", 1, vec![contact("sip:b@h1", None)], Some(300)),
        )
        .unwrap();
    assert_eq!(b[0].expires_at, t0 + secs(300));
    let b = r
        .register(t0, req("c", "c3", 1, vec![contact("sip:c@h1", None)], None))
        .unwrap();
    assert_eq!(b[0].expires_at, t0 + secs(3600));
    assert_eq!(b[0].remaining(t0 + secs(600)), 3000);
}

#[test]
fn min_and_max_clamp() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    let err = r
        .register(
            t0,
            req("a", "c", 1, vec![contact("sip:a@h", Some(30))], None),
        )
        .unwrap_err();
    assert_eq!(err, RegError::IntervalTooBrief { min: 60 });
    assert_eq!(err.status(), 423);
    assert!(r.is_empty());
    let b = r
        .register(
            t0,
            req("a", "c", 2, vec![contact("sip:a@h", Some(99_999))], None),
        )
        .unwrap();
    assert_eq!(b[0].expires_at, t0 + secs(7200));
    let b = r
        .register(
            t0,
            req("a", "c", 3, vec![contact("sip:a@h", Some(60))], None),
        )
        .unwrap();
    assert_eq!(b[0].expires_at, t0 + secs(60));
}

#[test]
fn one_bad_contact_refuses_the_whole_request() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    let err = r
        .register(
            t0,
            req(
                "a",
                "c",
                1,
                vec![contact("sip:a@h1", Some(600)), contact("sip:a@h2", Some(5))],
                None,
            ),
        )
        .unwrap_err();
    assert_eq!(err.status(), 423);
    assert!(r.lookup(t0, "a").is_empty());
}

#[test]
fn refresh_updates_and_expires_zero_removes() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    register_two(&mut r, t0, Some(600));
    assert_eq!(r.lookup(t0, "a").len(), 2);
    let t1 = t0 + secs(300);
    let b = r
        .register(
            t1,
            req("a", "c", 2, vec![contact("sip:a@h1", None)], Some(600)),
        )
        .unwrap();
    assert_eq!(b.len(), 2);
    let h1 = b.iter().find(|b| b.contact == "sip:a@h1").unwrap();
    assert_eq!((h1.expires_at, h1.cseq), (t1 + secs(600), 2));
    let b = r
        .register(
            t1,
            req("a", "c", 3, vec![contact("sip:a@h2", Some(0))], None),
        )
        .unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].contact, "sip:a@h1");
    // An empty Contact list only fetches.
    assert_eq!(
        r.register(t1, req("a", "c", 4, vec![], None))
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn out_of_order_cseq_is_refused() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    r.register(
        t0,
        req("a", "call", 5, vec![contact("sip:a@h", None)], None),
    )
    .unwrap();
    // The same CSeq again is a retransmission: applied again.
    let again = r
        .register(
            t0,
            req("a", "call", 5, vec![contact("sip:a@h", None)], None),
        )
        .unwrap();
    assert_eq!(again.len(), 1);
    for cseq in [4, 1] {
        let err = r
            .register(
                t0,
                req("a", "call", cseq, vec![contact("sip:a@h", Some(0))], None),
            )
            .unwrap_err();
        assert!(matches!(err, RegError::OutOfOrder { stored: 5, .. }));
        assert_eq!(err.status(), 500);
    }
    assert_eq!(r.lookup(t0, "a").len(), 1);
    // A different Call-ID (a rebooted UA) may use any CSeq.
    assert!(
        r.register(
            t0,
            req("a", "other", 1, vec![contact("sip:a@h", Some(0))], None)
        )
        .unwrap()
        .is_empty()
    );
    // The same contact twice in one request is not out of order with itself.
    let b = r
        .register(
            t0,
            req(
                "a",
                "x",
                1,
                vec![contact("sip:a@h", Some(100)), contact("sip:a@h", Some(200))],
                None,
            ),
        )
        .unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].expires_at, t0 + secs(200));
}

#[test]
fn wildcard_unregister() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    register_two(&mut r, t0, None);
    let mut wild = req("a", "c", 2, vec![], Some(600));
    wild.contacts = Contact::Wildcard;
    assert_eq!(
        r.register(t0, wild.clone()).unwrap_err(),
        RegError::BadWildcard
    );
    wild.expires = None;
    assert_eq!(r.register(t0, wild.clone()).unwrap_err().status(), 400);
    wild.expires = Some(0);
    wild.cseq = 0;
    assert!(matches!(
        r.register(t0, wild.clone()),
        Err(RegError::OutOfOrder { .. })
    ));
    wild.cseq = 2;
    assert!(r.register(t0, wild).unwrap().is_empty());
    assert!(r.lookup(t0, "a").is_empty());
    assert!(r.is_empty());
}

#[test]
fn expiry_over_virtual_time() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    r.register(
        t0,
        req("a", "c", 1, vec![contact("sip:a@h1", Some(100))], None),
    )
    .unwrap();
    r.register(
        t0,
        req("a", "c", 2, vec![contact("sip:a@h2", Some(200))], None),
    )
    .unwrap();
    r.register(
        t0,
        req("b", "d", 1, vec![contact("sip:b@h", Some(150))], None),
    )
    .unwrap();
    assert_eq!(r.next_expiry(), Some(t0 + secs(100)));
    assert!(r.expire(t0 + secs(99)).is_empty());
    // Lapsed bindings vanish from lookups even before expire() runs.
    assert_eq!(r.lookup(t0 + secs(100), "a").len(), 1);
    assert!(r.expire(t0 + secs(100)).is_empty());
    assert_eq!(r.next_expiry(), Some(t0 + secs(150)));
    assert_eq!(r.expire(t0 + secs(150)), vec!["b".to_string()]);
    assert!(!r.is_registered(t0 + secs(150), "b"));
    assert!(r.is_registered(t0 + secs(150), "a"));
    assert_eq!(r.expire(t0 + secs(1000)), vec!["a".to_string()]);
    assert_eq!(r.next_expiry(), None);
}

#[test]
fn lookup_orders_by_q() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    let mut cs = vec![
        contact("sip:low", None),
        contact("sip:none", None),
        contact("sip:high", None),
    ];
    cs[0].q = Some(0.1);
    cs[2].q = Some(0.9);
    r.register(t0, req("a", "c", 1, cs, None)).unwrap();
    let order: Vec<String> = r.lookup(t0, "a").into_iter().map(|b| b.contact).collect();
    assert_eq!(order, ["sip:none", "sip:high", "sip:low"]);
}

#[test]
fn bindings_per_aor_are_capped_replacing_the_oldest() {
    let t0 = Instant::now();
    let cfg = RegistrarConfig {
        max_bindings_per_aor: 3,
        ..RegistrarConfig::default()
    };
    let mut r = Registrar::new(cfg);
    for i in 0..5u64 {
        let uri = format!("sip:a@h{i}");
        r.register(
            t0 + secs(i),
            req("a", "c", i as u32 + 1, vec![contact(&uri, None)], None),
        )
        .unwrap();
    }
    let mut kept: Vec<String> = r
        .lookup(t0 + secs(5), "a")
        .into_iter()
        .map(|b| b.contact)
        .collect();
    kept.sort();
    assert_eq!(kept, ["sip:a@h2", "sip:a@h3", "sip:a@h4"]);
}

#[test]
fn aors_are_capped() {
    let t0 = Instant::now();
    let cfg = RegistrarConfig {
        max_aors: 2,
        ..RegistrarConfig::default()
    };
    let mut r = Registrar::new(cfg);
    r.register(t0, req("a", "c", 1, vec![contact("sip:a", Some(60))], None))
        .unwrap();
    r.register(
        t0,
        req("b", "c", 1, vec![contact("sip:b", Some(600))], None),
    )
    .unwrap();
    let err = r
        .register(t0, req("c", "c", 1, vec![contact("sip:c", None)], None))
        .unwrap_err();
    assert_eq!((err.clone(), err.status()), (RegError::Full, 503));
    // Existing AORs still refresh; once one lapses there is room again.
    r.register(t0, req("b", "c", 2, vec![contact("sip:b2", None)], None))
        .unwrap();
    r.register(
        t0 + secs(60),
        req("c", "c", 1, vec![contact("sip:c", None)], None),
    )
    .unwrap();
    assert_eq!(r.len(), 2);
    // The AOR purged to make room is still reported as unregistered.
    assert_eq!(r.expire(t0 + secs(60)), vec!["a".to_string()]);
    assert!(r.expire(t0 + secs(60)).is_empty());
}

#[test]
fn invalid_fields_are_400() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    assert_eq!(
        r.register(t0, req("", "c", 1, vec![], None))
            .unwrap_err()
            .status(),
        400
    );
    assert_eq!(
        r.register(t0, req("a", "", 1, vec![], None))
            .unwrap_err()
            .status(),
        400
    );
    let long = "x".repeat(MAX_FIELD_LEN + 1);
    assert_eq!(
        r.register(t0, req("a", "c", 1, vec![contact(&long, None)], None))
            .unwrap_err()
            .status(),
        400
    );
}

#[test]
fn qualify_cycle() {
    let t0 = Instant::now();
    let mut r = Registrar::new(RegistrarConfig::default());
    r.register(t0, req("a", "c", 1, vec![contact("sip:a@h", None)], None))
        .unwrap();
    let every = secs(30);
    assert_eq!(r.next_qualify(t0, every), Some(t0));
    let due = r.due_for_qualify(t0, every);
    assert_eq!(due, vec![("a".to_string(), "sip:a@h".to_string(), src())]);
    assert!(r.due_for_qualify(t0 + secs(10), every).is_empty());
    assert_eq!(r.next_qualify(t0, every), Some(t0 + every));
    assert!(r.qualified(
        "a",
        "sip:a@h",
        t0 + secs(1),
        Some(Duration::from_millis(40))
    ));
    let b = &r.lookup(t0, "a")[0];
    assert_eq!(
        (b.reachable, b.latency),
        (Some(true), Some(Duration::from_millis(40)))
    );
    assert_eq!(r.due_for_qualify(t0 + every, every).len(), 1);
    assert!(r.qualified("a", "sip:a@h", t0 + secs(62), None));
    let b = &r.lookup(t0, "a")[0];
    assert_eq!((b.reachable, b.latency), (Some(false), None));
    assert!(!r.qualified("a", "sip:nobody", t0, None));
    assert!(!r.qualified("zz", "sip:a@h", t0, None));
}

proptest! {
    #[test]
    fn never_panics_and_stays_bounded(ops in proptest::collection::vec(
        (0u8..6, 0u8..4, 0u32..6, proptest::option::of(0u32..10_000), 0u64..5000, any::<bool>()), 0..80)
    ) {
        let t0 = Instant::now();
        let cfg = RegistrarConfig { max_bindings_per_aor: 3, max_aors: 4, ..RegistrarConfig::default() };
        let mut r = Registrar::new(cfg);
        for (aor, uri, cseq, expires, at, wild) in ops {
            let now = t0 + secs(at);
            let mut rq = req(&format!("aor{aor}"), "cid", cseq, vec![contact(&format!("sip:{uri}"), expires)], expires);
            if wild {
                rq.contacts = Contact::Wildcard;
            }
            if let Ok(b) = r.register(now, rq) {
                prop_assert!(b.len() <= 3);
            }
            r.due_for_qualify(now, secs(30));
            r.expire(now);
        }
        prop_assert!(r.len() <= 4);
        prop_assert!(r.iter().all(|(_, b)| b.len() <= 3 && !b.is_empty()));
    }
}
