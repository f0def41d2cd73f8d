//! Tests of the journal file: round trips, repair, crash recovery, the delivery cursor and
//! rotation.

use super::*;
use proptest::prelude::*;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

const T0: u64 = 1_767_225_600;

fn session(id: &str) -> SessionRecord {
    SessionRecord {
        session_id: id.into(),
        user: "alice".into(),
        port: "ttyUSB0".into(),
        nas_port: 3,
        caller_id: Some("5551234".into()),
        ip: Some("10.0.0.2".parse().unwrap()),
        auth: Some("chap".into()),
        class: vec!["c0ffee".into()],
        ..SessionRecord::default()
    }
}

fn interim(id: &str, secs: u64, rx: u64, tx: u64) -> Body {
    Body::Interim(SessionRecord {
        session_time_s: secs,
        rx_bytes: rx,
        tx_bytes: tx,
        rx_packets: rx / 100,
        tx_packets: tx / 100,
        ..session(id)
    })
}

fn stop(id: &str) -> Body {
    Body::Stop(SessionRecord {
        terminate_cause: Some(cause::USER_REQUEST.into()),
        ..session(id)
    })
}

fn journal_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("acct").join("accounting.jsonl")
}

fn open(path: &Path, forwarding: bool, now: u64) -> (Journal, Recovery) {
    let options = Options {
        forwarding,
        ..Options::default()
    };
    Journal::open(path, options, now).expect("open")
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn record_is_one_flat_json_line() {
    let rec = Record {
        seq: 7,
        time: T0,
        body: Body::Start(session("A-1")),
    };
    let line = serde_json::to_string(&rec).unwrap();
    assert!(line.starts_with(r#"{"seq":7,"time":1767225600,"kind":"start","session_id":"A-1""#));
    assert!(line.contains(r#""ip":"10.0.0.2""#), "{line}");
    assert!(
        !line.contains("terminate_cause"),
        "empty options are left out: {line}"
    );
    assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), rec);
    let on = serde_json::to_string(&Record {
        seq: 1,
        time: T0,
        body: Body::AccountingOn,
    })
    .unwrap();
    assert_eq!(on, r#"{"seq":1,"time":1767225600,"kind":"accounting-on"}"#);
    let call = Body::Call(CallRecord {
        caller: Some("100".into()),
        duration_s: Some(42),
        ..CallRecord::default()
    });
    let rec = Record {
        seq: 2,
        time: T0,
        body: call,
    };
    let line = serde_json::to_string(&rec).unwrap();
    assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), rec);
}

#[test]
fn session_ids_are_fixed_width_hex() {
    assert_eq!(new_session_id(0x695A_4F00, 3), "695A4F00-00000003");
    assert_ne!(new_session_id(1, 23), new_session_id(12, 3));
}

#[test]
fn append_and_reopen_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    let (mut j, rec) = open(&path, true, T0);
    assert_eq!(
        rec,
        Recovery {
            boot_stamp: T0,
            ..Recovery::default()
        }
    );
    let a = j.append(Body::AccountingOn, T0).unwrap();
    let b = j.append(Body::Start(session("A-1")), T0 + 1).unwrap();
    let c = j.append(interim("A-1", 60, 1000, 2000), T0 + 61).unwrap();
    let d = j.append(stop("A-1"), T0 + 70).unwrap();
    assert_eq!((a.seq, b.seq, c.seq, d.seq), (1, 2, 3, 4));
    assert_eq!(
        j.pending(),
        vec![a.clone(), b.clone(), c.clone(), d.clone()]
    );
    drop(j);

    let (mut j, rec) = open(&path, true, T0 + 100);
    assert_eq!(rec.records, 4);
    assert_eq!(rec.corrupt_lines, 0);
    assert!(rec.closed.is_empty());
    assert_eq!(rec.last_time, Some(T0 + 70));
    assert_eq!(rec.boot_stamp, T0 + 100);
    assert_eq!(j.pending(), vec![a, b, c, d]);
    assert_eq!(j.append(Body::AccountingOff, T0 + 100).unwrap().seq, 5);
    assert_eq!(lines(&path).len(), 5);
}

#[test]
fn boot_stamp_passes_the_last_record_even_when_the_clock_lags() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    let (mut j, _) = open(&path, true, T0);
    j.append(Body::AccountingOn, T0 + 50).unwrap();
    drop(j);
    let (_, rec) = open(&path, true, T0);
    assert_eq!(rec.boot_stamp, T0 + 51);
}

#[test]
fn torn_last_line_is_cut_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    let (mut j, _) = open(&path, true, T0);
    j.append(Body::AccountingOn, T0).unwrap();
    j.append(Body::AccountingOff, T0 + 1).unwrap();
    drop(j);
    let good = fs::read(&path).unwrap();
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(br#"{"seq":3,"time":1767225602,"kind":"sta"#)
        .unwrap();
    drop(f);

    let (mut j, rec) = open(&path, true, T0 + 5);
    assert!(rec.torn_tail);
    assert_eq!((rec.records, rec.corrupt_lines), (2, 1));
    assert_eq!(fs::read(&path).unwrap(), good, "the torn bytes are gone");
    let next = j.append(Body::AccountingOn, T0 + 5).unwrap();
    assert_eq!(next.seq, 3);
    drop(j);
    let (j, rec) = open(&path, true, T0 + 6);
    assert_eq!(
        (rec.records, rec.corrupt_lines, rec.torn_tail),
        (3, 0, false)
    );
    assert_eq!(j.pending().last(), Some(&next));
}

#[test]
fn whole_last_record_without_newline_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(
        &path,
        r#"{"seq":4,"time":1767225600,"kind":"accounting-on"}"#,
    )
    .unwrap();
    let (mut j, rec) = open(&path, true, T0);
    assert_eq!(
        (rec.records, rec.corrupt_lines, rec.torn_tail),
        (1, 0, false)
    );
    assert_eq!(j.append(Body::AccountingOff, T0).unwrap().seq, 5);
    drop(j);
    let (j, rec) = open(&path, true, T0);
    assert_eq!((rec.records, rec.corrupt_lines), (2, 0));
    assert_eq!(j.pending_len(), 2);
}

#[test]
fn corrupt_and_unknown_lines_are_skipped_and_good_records_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text = concat!(
        "{\"seq\":1,\"time\":1767225600,\"kind\":\"accounting-on\"}\n",
        "\u{0}\u{0}garbage\n",
        "\n",
        "{\"seq\":9,\"time\":1767225601,\"kind\":\"from-the-future\",\"x\":1}\n",
        "{\"seq\":2,\"time\":1767225602,\"kind\":\"accounting-off\"}\n",
    );
    fs::write(&path, text).unwrap();
    let (mut j, rec) = open(&path, true, T0);
    assert_eq!(
        (rec.records, rec.corrupt_lines, rec.unknown_lines),
        (2, 1, 1)
    );
    assert!(!rec.torn_tail);
    assert_eq!(
        j.pending().iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2]
    );
    assert_eq!(
        j.append(Body::AccountingOn, T0).unwrap().seq,
        10,
        "seq passes unknown lines"
    );
}

#[test]
fn recovery_stops_each_open_session_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    let (mut j, _) = open(&path, true, T0);
    j.append(Body::Start(session("A-1")), T0).unwrap();
    j.append(Body::Start(session("A-2")), T0 + 10).unwrap();
    j.append(Body::Start(session("A-3")), T0 + 20).unwrap();
    j.append(interim("A-1", 300, 5000, 7000), T0 + 300).unwrap();
    j.append(stop("A-3"), T0 + 400).unwrap();
    j.append(Body::AccountingOn, T0 + 500).unwrap();
    drop(j); // a crash: no Stops for A-1 and A-2

    let (j, rec) = open(&path, true, T0 + 900);
    assert_eq!(rec.closed.len(), 2);
    let stops: Vec<&SessionRecord> = rec
        .closed
        .iter()
        .map(|r| r.body.session().unwrap())
        .collect();
    assert!(
        rec.closed
            .iter()
            .all(|r| r.time == T0 + 900 && r.body.kind() == "stop")
    );
    assert_eq!(stops[0].session_id, "A-1");
    assert_eq!(stops[0].terminate_cause.as_deref(), Some(cause::NAS_REBOOT));
    assert_eq!(stops[0].session_time_s, 500, "alive until the last record");
    assert_eq!(
        (stops[0].rx_bytes, stops[0].tx_bytes),
        (5000, 7000),
        "octets of the last Interim"
    );
    assert_eq!(stops[0].class, vec!["c0ffee".to_string()]);
    assert_eq!(stops[1].session_id, "A-2");
    assert_eq!(stops[1].session_time_s, 490);
    assert_eq!(stops[1].rx_bytes, 0);
    assert_eq!(rec.closed.iter().map(|r| r.seq).collect::<Vec<_>>(), [7, 8]);
    assert_eq!(j.open_sessions(), 0);
    assert_eq!(
        j.pending()[6..],
        rec.closed[..],
        "the Stops are pending too"
    );
    drop(j);

    let (_, rec) = open(&path, true, T0 + 1000);
    assert!(rec.closed.is_empty(), "reopening writes no more Stops");
    assert_eq!(rec.records, 8);
}

#[test]
fn interim_without_start_is_still_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    let (mut j, _) = open(&path, true, T0);
    j.append(interim("B-1", 100, 1, 2), T0 + 100).unwrap();
    drop(j);
    let (_, rec) = open(&path, true, T0 + 200);
    let s = rec.closed[0].body.session().unwrap();
    assert_eq!((s.session_id.as_str(), s.session_time_s), ("B-1", 100));
}

#[test]
fn delivery_cursor_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    let (mut j, _) = open(&path, true, T0);
    for i in 0..5 {
        j.append(Body::AccountingOn, T0 + i).unwrap();
    }
    j.mark_delivered(2).unwrap();
    assert_eq!(j.next_pending().map(|r| r.seq), Some(3));
    j.mark_delivered(1).unwrap(); // going back is ignored
    assert_eq!(j.delivered(), 2);
    drop(j);
    let (mut j, _) = open(&path, true, T0 + 10);
    assert_eq!(j.delivered(), 2);
    assert_eq!(
        j.pending().iter().map(|r| r.seq).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    j.mark_delivered(99).unwrap(); // clamped to the last record
    assert_eq!((j.delivered(), j.pending_len()), (5, 0));
    assert_eq!(j.append(Body::AccountingOff, T0).unwrap().seq, 6);
    drop(j);
    let (j, _) = open(&path, true, T0 + 10);
    assert_eq!(j.pending().iter().map(|r| r.seq).collect::<Vec<_>>(), [6]);
}

#[test]
fn nothing_is_pending_without_forwarding_nor_after_turning_it_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    let (mut j, _) = open(&path, false, T0);
    j.append(Body::Start(session("A-1")), T0).unwrap();
    assert_eq!(j.pending_len(), 0);
    j.close().unwrap();
    let (j, rec) = open(&path, true, T0 + 5);
    assert_eq!(rec.closed.len(), 1);
    assert_eq!(
        j.pending(),
        rec.closed,
        "only what was written while forwarding"
    );
}

#[test]
fn rotation_keeps_open_sessions_and_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    let options = Options {
        forwarding: true,
        rotate_bytes: 600,
    };
    let (mut j, _) = Journal::open(&path, options, T0).unwrap();
    j.append(Body::Start(session("A-1")), T0).unwrap();
    j.append(interim("A-1", 60, 10, 20), T0 + 60).unwrap();
    for i in 0..4 {
        j.append(Body::Start(session(&format!("X-{i}"))), T0)
            .unwrap();
        j.append(stop(&format!("X-{i}")), T0).unwrap();
    }
    let old_len = fs::metadata(&path).unwrap().len();
    assert!(old_len > 600, "pending records hold rotation back");
    let last = j.next_seq() - 1;
    j.mark_delivered(last).unwrap();
    let old = suffixed_1(&path);
    assert_eq!(
        fs::metadata(&old).unwrap().len(),
        old_len,
        "the old file is kept"
    );
    let kept = lines(&path);
    assert_eq!(
        kept.len(),
        2,
        "the open session's Start and latest Interim: {kept:?}"
    );
    drop(j);

    let (mut j, rec) = Journal::open(&path, options, T0 + 100).unwrap();
    assert_eq!(j.pending_len(), 1, "only the recovery Stop");
    let s = rec.closed[0].body.session().unwrap();
    assert_eq!((s.session_id.as_str(), s.rx_bytes), ("A-1", 10));
    assert_eq!(rec.closed[0].seq, last + 1);
    j.mark_delivered(last + 1).unwrap();
    drop(j);
    let (mut j, _) = Journal::open(&path, options, T0 + 100).unwrap();
    assert_eq!(j.append(Body::AccountingOn, T0).unwrap().seq, last + 2);
}

fn suffixed_1(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".1");
    PathBuf::from(s)
}

#[test]
fn interrupted_rotation_is_finished_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = journal_path(&dir);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut new = path.as_os_str().to_owned();
    new.push(".new");
    fs::write(
        &new,
        "{\"seq\":3,\"time\":1767225600,\"kind\":\"accounting-on\"}\n",
    )
    .unwrap();
    let (j, rec) = open(&path, true, T0);
    assert_eq!(rec.records, 1);
    assert_eq!(j.next_seq(), 4);
    assert!(!Path::new(&new).exists());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn garbage_never_panics_nor_loses_good_records(
        chunks in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..60),
                Just(b"{\"seq\":".to_vec()),
                Just(b"{\"seq\":18446744073709551615,\"time\":18446744073709551615,\"kind\":\"interim\",\"session_id\":\"Z\",\"user\":\"\",\"port\":\"\",\"nas_port\":0,\"session_time_s\":18446744073709551615}".to_vec()),
                Just(b"\n".to_vec()),
            ],
            0..12,
        )
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = journal_path(&dir);
        let (mut j, _) = open(&path, true, T0);
        let good = j.append(Body::Start(session("G-1")), T0).unwrap();
        drop(j);
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        for c in &chunks {
            f.write_all(c).unwrap();
        }
        drop(f);
        let (mut j, rec) = open(&path, true, T0 + 10);
        prop_assert_eq!(j.pending().first().cloned(), Some(good.clone()));
        let reboot_stop = rec.closed.iter().find(|r| r.body.session().is_some_and(|s| s.session_id == "G-1")).cloned();
        prop_assert!(reboot_stop.is_some(), "G-1 was open");
        let next = j.append(Body::AccountingOff, T0 + 10).unwrap();
        drop(j);
        let (j, rec) = open(&path, true, T0 + 20);
        prop_assert!(!rec.torn_tail);
        prop_assert!(j.pending().contains(&next));
        prop_assert!(j.pending().contains(&good));
        prop_assert!(j.pending().contains(&reboot_stop.unwrap()));
    }
}
