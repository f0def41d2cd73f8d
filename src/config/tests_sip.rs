//! Tests of the `[sip]` section.

use super::*;
use crate::sip::config::{Cidr, SipConfig};
use crate::sip::dialplan::{MatchOp, Target};

/// Two modem ports and a direct line: 11 lines, so that `[sip]` text starts on line 12.
const BASE: &str = "[network]\nlocal_ip = \"10.0.0.1\"\npool = \"10.0.0.100-10.0.0.199\"\n\
    [[port]]\ndevice = \"/dev/ttyUSB0\"\n[[port]]\ndevice = \"/dev/ttyUSB1\"\n\
    [[port]]\nname = \"console\"\ndevice = \"/dev/ttyS0\"\nmode = \"direct\"\n";
/// The line of the file where the `[sip]` text's first line lands.
const FIRST: usize = 12;

/// The schema of the README, every key given.
const FULL: &str = r#"[sip]
listen = "0.0.0.0:5070"
public = "192.0.2.1:5070"
realm = "dialup"
allow = ["10.0.0.0/8", "127.0.0.1", "2001:db8::/32"]
qualify = 60
qualify_max_ms = 150
ring_timeout = 25
min_expires = 30
max_expires = 600
default_expires = 300
nonce_lifetime = 120
max_message_size = 4096
max_calls = 10

[[sip.account]]
name = "line1"
secret = "s3cret"
extension = "101"
aliases = ["modem1"]
port = "ttyUSB0"

[[sip.account]]
name = "line2"
secret = "other"
port = "ttyUSB1"

[[sip.account]]
name = "phone"
secret = "phone-pw"
extension = "200"

[[sip.group]]
name = "modems"
lines = ["line1", "line2"]

[[sip.rule]]
priority = 1
match_op = "regex"
match_exp = "^9[0-9]+$"
match_len = 5
subst_exp = "^9(.*)$"
repl_exp = "\\1"
attrs = "outside"
group = "modems"

[[sip.rule]]
match_op = 0
match_exp = "200"
account = "phone"
"#;

fn file(sip: &str) -> String {
    format!("{BASE}{sip}")
}

#[track_caller]
fn parse(sip: &str) -> Config {
    match Config::from_str(&file(sip), "nasd.toml") {
        Ok(c) => c,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

#[track_caller]
fn sip(text: &str) -> SipConfig {
    parse(text).sip.expect("a [sip] section")
}

#[track_caller]
fn problems(sip: &str) -> ConfigError {
    match Config::from_str(&file(sip), "nasd.toml") {
        Ok(_) => panic!("accepted:\n{sip}"),
        Err(e) => e,
    }
}

/// Asserts one problem, on `line` of the `[sip]` text (1-based), holding `needle`.
#[track_caller]
fn one_error(text: &str, line: usize, needle: &str) -> String {
    let e = problems(text);
    let p = e.problems();
    assert_eq!(p.len(), 1, "expected one problem, got {p:#?}");
    assert_eq!(p[0].line, Some(FIRST + line - 1), "wrong line: {}", p[0]);
    assert!(
        p[0].message.contains(needle),
        "{:?} lacks {needle:?}",
        p[0].message
    );
    p[0].to_string()
}

/// An account for the error tests.
const ACCOUNT: &str = "[[sip.account]]\nname = \"line1\"\nsecret = \"pw\"\n";

#[test]
fn the_full_schema() {
    let s = sip(FULL);
    assert_eq!(s.listen, "0.0.0.0:5070".parse().unwrap());
    assert_eq!(s.public, Some("192.0.2.1:5070".parse().unwrap()));
    assert_eq!(s.realm, "dialup");
    assert_eq!(
        s.allow,
        vec![
            Cidr::parse("10.0.0.0/8").unwrap(),
            Cidr::parse("127.0.0.1/32").unwrap(),
            Cidr::parse("2001:db8::/32").unwrap()
        ]
    );
    assert_eq!(s.qualify_interval, Some(Duration::from_secs(60)));
    assert_eq!(s.qualify_max, Duration::from_millis(150));
    assert_eq!(s.ring_timeout, Duration::from_secs(25));
    assert_eq!(
        (s.min_expires, s.default_expires, s.max_expires),
        (30, 300, 600)
    );
    assert_eq!(s.nonce_lifetime, Duration::from_secs(120));
    assert_eq!(s.max_message_size, 4096);
    assert_eq!(s.max_calls, 10);

    assert_eq!(s.accounts.len(), 3);
    let a = s.account("line1").unwrap();
    assert_eq!(a.secret, "s3cret");
    assert_eq!(a.extension.as_deref(), Some("101"));
    assert_eq!(a.aliases, vec!["modem1".to_string()]);
    assert_eq!(a.port.as_deref(), Some("ttyUSB0"));
    let p = s.account("phone").unwrap();
    assert_eq!(p.port, None);
    assert!(p.aliases.is_empty());

    assert_eq!(s.groups.len(), 1);
    assert_eq!(s.groups[0].name, "modems");
    assert_eq!(s.groups[0].lines, vec!["line1", "line2"]);

    assert_eq!(s.rules.len(), 2);
    let r = &s.rules[0];
    assert_eq!(r.priority, 1);
    assert_eq!(r.match_op, MatchOp::Regex);
    assert_eq!(r.match_exp, "^9[0-9]+$");
    assert_eq!(r.match_len, Some(5));
    assert_eq!(r.subst_exp.as_deref(), Some("^9(.*)$"));
    assert_eq!(r.repl_exp.as_deref(), Some("\\1"));
    assert_eq!(r.attrs, "outside");
    assert_eq!(r.target, Target::HuntGroup("modems".into()));
    let r = &s.rules[1];
    assert_eq!((r.priority, r.match_op), (0, MatchOp::Equal));
    assert_eq!(r.match_len, None);
    assert_eq!(r.target, Target::Account("phone".into()));

    // The rules make a working dialplan.
    let plan = crate::sip::dialplan::Dialplan::new(s.rules.clone()).unwrap();
    let t = plan.translate("91234").unwrap();
    assert_eq!(t.number, "1234");
    assert_eq!(t.target, Target::HuntGroup("modems".into()));
    assert_eq!(
        plan.translate("200").unwrap().target,
        Target::Account("phone".into())
    );
}

#[test]
fn the_daemon_gets_the_section() {
    let c = parse(FULL);
    let spec = crate::daemon::DaemonSpec::from_config(&c).unwrap();
    assert_eq!(spec.sip, c.sip);
    assert!(spec.sip.is_some());
}

#[test]
fn defaults() {
    assert_eq!(parse("").sip, None);
    assert_eq!(sip("[sip]\n"), SipConfig::default());
    let s = sip("[sip]\nqualify = 0\nallow = []\n");
    assert_eq!(s.qualify_interval, None);
    assert!(s.allow.is_empty());
    // An address without a port gets 5060; an account needs only a name and a secret.
    let s = sip(&format!("[sip]\nlisten = \"127.0.0.1\"\n{ACCOUNT}"));
    assert_eq!(s.listen, "127.0.0.1:5060".parse().unwrap());
    let a = &s.accounts[0];
    assert_eq!((a.extension.as_ref(), a.port.as_ref()), (None, None));
    // A rule needs only match_op, match_exp and a target.
    let s = sip(&format!(
        "[sip]\n{ACCOUNT}[[sip.rule]]\nmatch_op = \"fnmatch\"\nmatch_exp = \"*\"\naccount = \"line1\"\n"
    ));
    let r = &s.rules[0];
    assert_eq!((r.priority, r.match_len, r.attrs.as_str()), (0, None, ""));
    assert_eq!((r.subst_exp.as_ref(), r.repl_exp.as_ref()), (None, None));
}

#[test]
fn kamailio_match_op_numbers_and_names() {
    for (op, want) in [
        ("0", MatchOp::Equal),
        ("1", MatchOp::Regex),
        ("2", MatchOp::Fnmatch),
        ("\"equal\"", MatchOp::Equal),
        ("\"regex\"", MatchOp::Regex),
        ("\"fnmatch\"", MatchOp::Fnmatch),
    ] {
        let s = sip(&format!(
            "[sip]\n{ACCOUNT}[[sip.rule]]\nmatch_op = {op}\nmatch_exp = \"1\"\naccount = \"line1\"\n"
        ));
        assert_eq!(s.rules[0].match_op, want, "match_op = {op}");
    }
    for op in ["3", "-1", "\"glob\"", "true"] {
        let text = format!(
            "[sip]\n{ACCOUNT}[[sip.rule]]\nmatch_op = {op}\nmatch_exp = \"1\"\naccount = \"line1\"\n"
        );
        let m = one_error(&text, 6, "[[sip.rule]] #1 match_op");
        assert!(m.contains("\"equal\", \"regex\" or \"fnmatch\""), "{m}");
    }
}

#[test]
fn section_errors() {
    for (text, line, needle) in [
        (
            "[sip]\nlisten = \"nowhere\"\n",
            2,
            "[sip] listen: \"nowhere\" is not an address",
        ),
        (
            "[sip]\npublic = \"0.0.0.0:5060\"\n",
            2,
            "[sip] public: 0.0.0.0:5060 is a wildcard",
        ),
        ("[sip]\nrealm = \"\"\n", 2, "[sip] realm"),
        ("[sip]\nrealm = \"a\\\"b\"\n", 2, "[sip] realm"),
        (
            "[sip]\nallow = [\"10.0.0.0/33\"]\n",
            2,
            "[sip] allow: \"10.0.0.0/33\"",
        ),
        (
            "[sip]\nring_timeout = 0\n",
            2,
            "[sip] ring_timeout: 0 is too small",
        ),
        ("[sip]\nqualify_max_ms = 0\n", 2, "[sip] qualify_max_ms"),
        (
            "[sip]\nmax_message_size = 1023\n",
            2,
            "[sip] max_message_size: 1023 is too small",
        ),
        (
            "[sip]\nmax_message_size = 65508\n",
            2,
            "[sip] max_message_size: 65508 is too large",
        ),
        ("[sip]\nmax_calls = 0\n", 2, "[sip] max_calls"),
        ("[sip]\nnonce_lifetime = 0\n", 2, "[sip] nonce_lifetime"),
        (
            "[sip]\nmin_expires = 4000\n",
            2,
            "need min_expires <= default_expires <= max_expires",
        ),
        (
            "[sip]\ndefault_expires = 9000\n",
            2,
            "they are 60, 9000 and 7200",
        ),
        ("[sip]\nmax_expires = 10\n", 2, "[sip] expires"),
        ("[sip]\nlisten = 5060\n", 2, "[sip] listen: invalid type"),
        (
            "[sip]\nlisen = \"0.0.0.0\"\n",
            2,
            "[sip] unknown key `lisen`",
        ),
        (
            "[sip.account]\nname = \"a\"\nsecret = \"b\"\n",
            1,
            "write [[sip.account]] with double brackets",
        ),
    ] {
        let file = file(text);
        let e = problems(text);
        assert_eq!(e.problems().len(), 1, "{file}\n{e}");
        one_error(text, line, needle);
    }
    // The unknown-key message lists the tables too.
    let m = one_error("[sip]\nacount = 1\n", 2, "unknown key");
    assert!(m.contains("`account`, `group`, `rule`"), "{m}");
}

#[test]
fn account_errors() {
    let two = |second: &str| format!("[sip]\n{ACCOUNT}[[sip.account]]\n{second}");
    for (text, line, needle) in [
        (
            format!("[sip]\n{ACCOUNT}port = \"ttyUSB9\"\n"),
            5,
            "[[sip.account]] \"line1\": port \"ttyUSB9\" is not a configured [[port]]",
        ),
        (
            format!("[sip]\n{ACCOUNT}port = \"console\"\n"),
            5,
            "port \"console\" is a direct line",
        ),
        (
            two(
                "name = \"line2\"\nsecret = \"x\"\nport = \"ttyUSB0\"\n[[sip.account]]\nname = \"line3\"\nsecret = \"x\"\nport = \"ttyUSB0\"\n",
            ),
            12,
            "[[sip.account]] \"line3\": port \"ttyUSB0\" is already the line of account \"line2\"",
        ),
        (
            two("name = \"line1\"\nsecret = \"x\"\n"),
            6,
            "[[sip.account]] \"line1\": the name is already used by the account on line 14",
        ),
        (
            format!("[sip]\n{ACCOUNT}extension = \"1 01\"\n"),
            5,
            "[[sip.account]] \"line1\" extension: \"1 01\" is not a SIP user part",
        ),
        (
            format!("[sip]\n{ACCOUNT}aliases = [\"\"]\n"),
            5,
            "[[sip.account]] \"line1\" aliases",
        ),
        (
            format!(
                "[sip]\n{ACCOUNT}extension = \"101\"\n[[sip.account]]\nname = \"line2\"\nsecret = \"x\"\nextension = \"101\"\n"
            ),
            9,
            "[[sip.account]] \"line2\" extension: \"101\" already reaches account \"line1\" (line 16)",
        ),
        (
            two("name = \"line2\"\nsecret = \"x\"\naliases = [\"line1\"]\n"),
            8,
            "[[sip.account]] \"line2\" aliases: \"line1\" already reaches account \"line1\"",
        ),
        (
            format!(
                "[sip]\n{ACCOUNT}aliases = [\"modem\"]\n[[sip.account]]\nname = \"line2\"\nsecret = \"x\"\nextension = \"modem\"\n"
            ),
            9,
            "\"modem\" already reaches account \"line1\"",
        ),
        (
            "[sip]\n[[sip.account]]\nname = \"bad name\"\nsecret = \"x\"\n".into(),
            3,
            "[[sip.account]] #1 name: \"bad name\" is not a SIP name",
        ),
        (
            "[sip]\n[[sip.account]]\nname = \"a\"\nsecret = \"\"\n".into(),
            4,
            "[[sip.account]] \"a\" secret: the secret is empty",
        ),
        (
            "[sip]\n[[sip.account]]\nsecret = \"x\"\n".into(),
            2,
            "[[sip.account]] #1: missing field `name`",
        ),
        (
            "[sip]\n[[sip.account]]\nname = \"a\"\n".into(),
            2,
            "[[sip.account]] #1: missing field `secret`",
        ),
        (
            format!("[sip]\n{ACCOUNT}context = \"default\"\n"),
            5,
            "[[sip.account]] #1 unknown key `context`",
        ),
    ] {
        one_error(&text, line, needle);
    }
    // An account's own name repeated as its alias is harmless.
    let s = sip(&format!(
        "[sip]\n{ACCOUNT}aliases = [\"line1\"]\nextension = \"7\"\n"
    ));
    assert_eq!(s.accounts[0].aliases, vec!["line1"]);
}

#[test]
fn group_errors() {
    for (text, line, needle) in [
        (
            format!("[sip]\n{ACCOUNT}[[sip.group]]\nname = \"g\"\nlines = [\"line9\"]\n"),
            7,
            "[[sip.group]] \"g\" lines: \"line9\" is not a [[sip.account]]",
        ),
        (
            format!("[sip]\n{ACCOUNT}[[sip.group]]\nname = \"g\"\nlines = []\n"),
            7,
            "[[sip.group]] \"g\" lines: the list is empty",
        ),
        (
            format!(
                "[sip]\n{ACCOUNT}[[sip.group]]\nname = \"g\"\nlines = [\"line1\", \"line1\"]\n"
            ),
            7,
            "\"line1\" is listed twice",
        ),
        (
            format!(
                "[sip]\n{ACCOUNT}[[sip.group]]\nname = \"g\"\nlines = [\"line1\"]\n[[sip.group]]\nname = \"g\"\nlines = [\"line1\"]\n"
            ),
            9,
            "[[sip.group]] \"g\": the name is already used by the group on line 17",
        ),
        (
            format!("[sip]\n{ACCOUNT}[[sip.group]]\nname = \"g/h\"\nlines = [\"line1\"]\n"),
            6,
            "[[sip.group]] #1 name: \"g/h\" is not a SIP name",
        ),
        (
            format!("[sip]\n{ACCOUNT}[[sip.group]]\nname = \"g\"\n"),
            5,
            "[[sip.group]] #1: missing field `lines`",
        ),
    ] {
        one_error(&text, line, needle);
    }
}

#[test]
fn rule_errors() {
    let rule = |body: &str| {
        format!(
            "[sip]\n{ACCOUNT}[[sip.group]]\nname = \"g\"\nlines = [\"line1\"]\n\
             [[sip.rule]]\nmatch_op = \"regex\"\nmatch_exp = \"^1\"\naccount = \"line1\"\n\
             [[sip.rule]]\n{body}"
        )
    };
    // The second rule's first body line is line 13 of the [sip] text, its header line 12.
    for (body, line, needle) in [
        (
            "match_op = 1\nmatch_exp = \"(\"\naccount = \"line1\"\n",
            12,
            "[[sip.rule]] #2 match_exp: \"(\" is not a regular expression: unclosed group",
        ),
        (
            "match_op = 0\nmatch_exp = \"1\"\nsubst_exp = \"[\"\naccount = \"line1\"\n",
            12,
            "[[sip.rule]] #2 subst_exp",
        ),
        (
            "match_op = 0\nmatch_exp = \"1\"\nsubst_exp = \"(1)\"\nrepl_exp = \"\\\\2\"\naccount = \"line1\"\n",
            12,
            "[[sip.rule]] #2 repl_exp: refers to \\2 but the substitution expression has 1 group(s)",
        ),
        (
            "match_op = 0\nmatch_exp = \"1\"\n",
            12,
            "[[sip.rule]] #2: no target",
        ),
        (
            "match_op = 0\nmatch_exp = \"1\"\naccount = \"line1\"\ngroup = \"g\"\n",
            16,
            "[[sip.rule]] #2: give account or group, not both",
        ),
        (
            "match_op = 0\nmatch_exp = \"1\"\naccount = \"nobody\"\n",
            15,
            "[[sip.rule]] #2 account: \"nobody\" is not a [[sip.account]]",
        ),
        (
            "match_op = 0\nmatch_exp = \"1\"\ngroup = \"nogroup\"\n",
            15,
            "[[sip.rule]] #2 group: \"nogroup\" is not a [[sip.group]]",
        ),
        (
            "priority = 4294967296\nmatch_op = 0\nmatch_exp = \"1\"\naccount = \"line1\"\n",
            13,
            "[[sip.rule]] #2 priority: 4294967296 does not fit 32 bits",
        ),
        (
            "match_op = 0\nmatch_exp = \"1\"\nmatch_len = -1\naccount = \"line1\"\n",
            15,
            "[[sip.rule]] #2 match_len",
        ),
        (
            "match_op = 0\naccount = \"line1\"\n",
            12,
            "[[sip.rule]] #2: missing field `match_exp`",
        ),
        (
            "match_exp = \"1\"\naccount = \"line1\"\n",
            12,
            "[[sip.rule]] #2: missing field `match_op`",
        ),
        (
            "match_op = 0\nmatch_exp = \"1\"\naccount = \"line1\"\ndpid = 1\n",
            16,
            "[[sip.rule]] #2 unknown key `dpid`",
        ),
    ] {
        one_error(&rule(body), line, needle);
    }
    // A negative priority is Kamailio's too.
    let s = sip(&rule(
        "priority = -5\nmatch_op = 0\nmatch_exp = \"1\"\naccount = \"line1\"\n",
    ));
    assert_eq!(s.rules[1].priority, -5);
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = "[sip]\nring_timeout = 0\n[[sip.account]]\nname = \"a\"\nsecret = \"x\"\nport = \"nope\"\n\
                [[sip.account]]\nname = \"b\"\nsecret = \"x\"\nbogus = 1\n\
                [[sip.rule]]\nmatch_op = 9\nmatch_exp = \"1\"\naccount = \"a\"\n";
    let e = problems(text);
    let lines: Vec<_> = e
        .problems()
        .iter()
        .map(|p| p.line.unwrap() + 1 - FIRST)
        .collect();
    assert_eq!(lines, vec![2, 6, 10, 12], "{e}");
}

#[test]
fn secrets_never_appear() {
    const SECRET: &str = "hunter2-secret";
    // Every kind of problem around an account with a secret.
    let text = format!(
        "[sip]\nring_timeout = 0\n\
         [[sip.account]]\nname = \"a b\"\nsecret = \"{SECRET}\"\nport = \"nope\"\nextension = \"?? \"\ntypo = 1\n\
         [[sip.account]]\nname = \"c\"\nsecret = \"{SECRET}\"\nport = \"console\"\n\
         [[sip.group]]\nname = \"g\"\nlines = [\"zz\"]\n\
         [[sip.rule]]\nmatch_op = 1\nmatch_exp = \"(\"\naccount = \"zz\"\n"
    );
    let e = problems(&text);
    assert!(e.problems().len() >= 5, "{e}");
    assert!(!e.to_string().contains(SECRET), "{e}");
    assert!(!format!("{e:?}").contains(SECRET));
    // A secret of the wrong type (a PIN without quotes) is not repeated.
    for value in ["918273", "918273.5", "true", "[918273]", "{ pin = 918273 }"] {
        let text = format!("[sip]\n[[sip.account]]\nname = \"a\"\nsecret = {value}\n");
        let m = one_error(&text, 4, "[[sip.account]] #1 secret");
        assert!(!m.contains("918273"), "{m}");
    }
    // Nor is a valid configuration's secret shown by Debug.
    let c = parse(FULL);
    let shown = format!("{c:?}");
    assert!(shown.contains("line1"), "{shown}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("phone-pw"),
        "{shown}"
    );
}

#[test]
fn an_unreadable_table_is_reported_once() {
    // The account's secret is not a string: that is the only problem, not also the group's
    // and the rule's references to it.
    let text = "[sip]\n[[sip.account]]\nname = \"line1\"\nsecret = 1234\n\
                [[sip.group]]\nname = \"g\"\nlines = [\"line1\"]\nbad = 1\n\
                [[sip.rule]]\nmatch_op = 0\nmatch_exp = \"1\"\naccount = \"line1\"\n\
                [[sip.rule]]\nmatch_op = 0\nmatch_exp = \"1\"\ngroup = \"g\"\n";
    let e = problems(text);
    let lines: Vec<_> = e
        .problems()
        .iter()
        .map(|p| p.line.unwrap() + 1 - FIRST)
        .collect();
    assert_eq!(lines, vec![4, 8], "{e}");
    // A name that no table has is still unknown.
    let e = problems(
        "[sip]\n[[sip.account]]\nname = \"line1\"\nsecret = 1234\n\
         [[sip.rule]]\nmatch_op = 0\nmatch_exp = \"1\"\naccount = \"line2\"\n",
    );
    let p = e.problems();
    assert_eq!(p.len(), 2, "{e}");
    assert!(
        p[1].message.contains("\"line2\" is not a [[sip.account]]"),
        "{e}"
    );
}

#[test]
fn weak_secrets_are_warned_about_without_being_shown() {
    let c = parse(
        "\n[sip]\n[[sip.account]]\nname = \"ata\"\nsecret = \"password\"\n\
         [[sip.account]]\nname = \"ata2\"\nsecret = \"x7\"\n\
         [[sip.account]]\nname = \"ata3\"\nsecret = \"a-long-enough-one\"\n",
    );
    let w = c.warnings();
    let weak: Vec<_> = w.iter().filter(|x| x.contains("secret: weak")).collect();
    assert_eq!(weak.len(), 2, "{w:#?}");
    assert!(
        weak[0].contains("\"ata\"") && weak[1].contains("\"ata2\""),
        "{w:#?}"
    );
    assert!(
        !w.iter().any(|x| x.contains("password") || x.contains("x7")),
        "{w:#?}"
    );
}
