//! Calls and PPP sessions are one thing: a real pppd (in User-Mode Linux) dials through vmodem
//! into the nasd port whose ATA line a SIP call rang; the session carries the caller's number,
//! and hanging up either one hangs up the other. Also: a hunt group skips the line whose port
//! is in a PPP session.
//!
//! The one stand-in: a real ATA's analogue phone port would ring the modem on the nasd port;
//! here the SIP line is a sipp UAS registered for that port, and the modem call is pppd
//! dialling through vmodem onto the same port. The SIP and PPP sides are both real.

use crate::daemon::{dial, guest_as};
use crate::sip_rig::{NAS_IP, PEER_IP, SIP_PORT, SipRig, Sipp, eventually};
use crate::support::netns::{NetNs, Proc, nasctl};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Two modem lines bound to the ports `m0` and `m1`, a hunt group of both, `555…` to it.
const BOUND_LINES: &str = r#"
[[sip.account]]
name = "line1"
secret = "pw1"
extension = "201"
port = "m0"

[[sip.account]]
name = "line2"
secret = "pw2"
extension = "202"
port = "m1"

[[sip.group]]
name = "modems"
lines = ["line1", "line2"]

[[sip.rule]]
priority = 0
match_op = "regex"
match_exp = "^555"
group = "modems"
"#;

/// One modem line bound to the port `m0`, and `555…` to it.
const ONE_LINE: &str = r#"
[[sip.account]]
name = "line1"
secret = "pw1"
extension = "201"
port = "m0"

[[sip.rule]]
priority = 0
match_op = "regex"
match_exp = "^555"
account = "line1"
"#;

/// A SIP line answering one call and holding it until the bridge's BYE.
fn held_line(rig: &SipRig, account: &str, secret: &str, port: u16) -> crate::sip_rig::SippProc {
    rig.register(account, secret, port, 600);
    rig.spawn(&Sipp {
        timeout: Duration::from_secs(150),
        ..Sipp::line("line_held.xml", account, port, 1)
    })
}

/// A baresip softphone as the caller (number 5550100), driven through its UDP console.
struct Phone<'a> {
    proc: Proc,
    peers: &'a NetNs,
    _dir: tempfile::TempDir,
}

impl<'a> Phone<'a> {
    fn start(peers: &'a NetNs) -> Phone<'a> {
        crate::support::freeradius::require("baresip");
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "poll_method\t\tepoll\nsip_listen\t\t{PEER_IP}:5090\n\
             module_path\t\t/usr/lib/baresip/modules\nmodule\t\t\tg711.so\n\
             module\t\t\taubridge.so\nmodule\t\t\tcons.so\nmodule_app\t\taccount.so\n\
             module_app\t\tmenu.so\naudio_player\t\taubridge,nasd\n\
             audio_source\t\taubridge,nasd\naudio_alert\t\taubridge,nasd\naudio_level\t\tno\n\
             rtp_ports\t\t10100-10120\nnet_interface\t\teth0\ncons_listen\t\t{PEER_IP}:5555\n"
        );
        std::fs::write(dir.path().join("config"), config).unwrap();
        std::fs::write(
            dir.path().join("accounts"),
            format!("<sip:5550100@{PEER_IP}:5090;transport=udp>;regint=0\n"),
        )
        .unwrap();
        let mut c = peers.command("baresip");
        c.arg("-f").arg(dir.path()).stdin(Stdio::null());
        let proc = Proc::spawn(c).unwrap();
        let phone = Phone {
            proc,
            peers,
            _dir: dir,
        };
        let up = eventually(Duration::from_secs(10), || {
            phone.command("/uadefault 0").is_some()
        });
        assert!(up, "baresip's console does not answer:\n{}", phone.log());
        phone
    }

    /// Sends a console command; its answer, if one came within a second.
    fn command(&self, cmd: &str) -> Option<String> {
        let script = "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
                      s.settimeout(1.0)\ns.sendto(sys.argv[1].encode()+b'\\n',(sys.argv[2],5555))\n\
                      try:\n  print(s.recvfrom(65535)[0].decode('utf-8','replace'))\n\
                      except socket.timeout:\n  sys.exit(1)\n";
        let out = self
            .peers
            .command("python3")
            .args(["-c", script, cmd, PEER_IP])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn log(&self) -> String {
        format!("{}{}", self.proc.stdout.text(), self.proc.stderr.text())
    }
}

/// Waits for the bridge to show one answered call; that call.
fn answered_call(rig: &SipRig, phone: &Phone<'_>) -> Value {
    let mut last = Vec::new();
    let ok = eventually(Duration::from_secs(20), || {
        last = rig.nasctl_list(&["sip", "calls"]);
        last.len() == 1 && last[0]["state"] == "answered"
    });
    assert!(
        ok,
        "no answered call: {last:?}\nphone:\n{}\nnasd:\n{}",
        phone.log(),
        rig.log()
    );
    last.remove(0)
}

fn sessions(rig: &SipRig) -> Vec<Value> {
    rig.nasctl_list(&["sessions"])
}

#[test]
fn a_ppp_session_carries_the_callers_number_and_hang_ups_cross_over() {
    let rig = SipRig::start_with(1, ONE_LINE);
    let phone = Phone::start(&rig.peers);
    let mut g = guest_as(rig.vm(), 0, "dial", "dial", false);

    // 1. The call comes first, then the modem call on the same port: the PPP session is the
    //    call's. Ending the PPP session hangs the call up on both sides.
    let line = held_line(&rig, "line1", "pw1", 5071);
    assert!(
        phone
            .command(&format!("/dial sip:5551234@{NAS_IP}:{SIP_PORT}"))
            .is_some()
    );
    let call = answered_call(&rig, &phone);
    assert_eq!(call["caller"], "5550100");
    assert_eq!(call["port"], "m0");
    dial(&mut g, &rig.nas);
    let s = sessions(&rig);
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0]["port"], "m0");
    assert_eq!(
        s[0]["caller_id"], "5550100",
        "the session carries the SIP caller's number"
    );
    let out = Command::new(nasctl())
        .arg("--socket")
        .arg(rig.dir().join("nasd.sock"))
        .args(["kill", &s[0]["id"].to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let run = line.finish(Duration::from_secs(20));
    run.assert_ok(&format!(
        "the line gets the BYE when PPP ends\nnasd:\n{}",
        rig.log()
    ));
    let bye_to_phone = eventually(Duration::from_secs(10), || {
        rig.nasctl_list(&["sip", "calls"]).is_empty() && phone.log().contains("terminated")
    });
    assert!(bye_to_phone, "the caller was not hung up:\n{}", phone.log());
    let rec = rig.wait_calls(1);
    assert_eq!(rec[0]["disposition"], "answered");
    assert_eq!(rec[0]["port"], "m0");
    assert_eq!(rec[0]["caller"], "5550100");
    let journal = crate::daemon::journal(rig.dir());
    let stop = journal
        .iter()
        .find(|r| r["kind"] == "stop")
        .expect("a Stop record");
    assert_eq!(
        stop["caller_id"], "5550100",
        "Calling-Station-Id in accounting"
    );
    g.ctl("ppp_down", Duration::from_secs(30)).unwrap();

    // 2. This time the caller hangs up: nasd ends the PPP session on the line.
    let line = held_line(&rig, "line1", "pw1", 5071);
    assert!(
        phone
            .command(&format!("/dial sip:201@{NAS_IP}:{SIP_PORT}"))
            .is_some()
    );
    answered_call(&rig, &phone);
    dial(&mut g, &rig.nas);
    assert_eq!(sessions(&rig).len(), 1);
    assert!(phone.command("/hangup").is_some());
    let gone = eventually(Duration::from_secs(20), || sessions(&rig).is_empty());
    assert!(gone, "the PPP session outlived its call:\n{}", rig.log());
    line.finish(Duration::from_secs(20))
        .assert_ok("the line gets the caller's BYE");
    let stops = eventually(Duration::from_secs(10), || {
        crate::daemon::journal(rig.dir())
            .iter()
            .filter(|r| r["kind"] == "stop")
            .count()
            == 2
    });
    assert!(stops, "no second Stop record");
    let last_stop = crate::daemon::journal(rig.dir())
        .into_iter()
        .rfind(|r| r["kind"] == "stop")
        .unwrap();
    assert_eq!(
        last_stop["terminate_cause"], "lost-carrier",
        "the call's end is the modem's carrier loss: {last_stop}"
    );
    assert_eq!(rig.wait_calls(2).len(), 2);
}

#[test]
fn a_call_skips_the_line_whose_port_is_in_a_ppp_session() {
    let rig = SipRig::start_with(2, BOUND_LINES);
    let mut g = guest_as(rig.vm(), 0, "dial", "dial", false);
    dial(&mut g, &rig.nas);
    let s = sessions(&rig);
    assert_eq!(s.len(), 1, "{s:?}");
    let busy_port = s[0]["port"].as_str().unwrap().to_string();
    let (busy, free) = if busy_port == "m0" {
        (("line1", "pw1"), ("line2", "pw2"))
    } else {
        (("line2", "pw2"), ("line1", "pw1"))
    };
    // Both lines are registered and would answer; the one on the busy port must not ring.
    rig.register(busy.0, busy.1, 5071, 600);
    let busy_line = rig.spawn(&Sipp {
        timeout: Duration::from_secs(30),
        ..Sipp::line("line_held.xml", busy.0, 5071, 1)
    });
    let free_line = held_line(&rig, free.0, free.1, 5072);
    let caller = rig.run(&Sipp::caller("call.xml", "5551234", 5080));
    caller.assert_ok("the caller is answered by the free line");
    let rec = rig.wait_calls(1);
    assert_eq!(
        rec[0]["line"],
        free.0,
        "routed past the busy port: {rec:?}\n{}",
        caller.describe()
    );
    assert_eq!(rec[0]["attempts"], 1);
    free_line
        .finish(Duration::from_secs(20))
        .assert_ok("the free line answered and got the BYE");
    let busy_run = busy_line.stop();
    assert!(
        busy_run.requests("INVITE").is_empty(),
        "the line whose modem is in a PPP session was rung:\n{}",
        busy_run.describe()
    );
    g.ctl("ppp_down", Duration::from_secs(30)).unwrap();
}
