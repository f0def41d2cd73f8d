use super::*;
use proptest::prelude::*;

fn acct(s: &str) -> Target {
    Target::Account(s.to_string())
}

fn hunt(s: &str) -> Target {
    Target::HuntGroup(s.to_string())
}

#[test]
fn match_op_codes() {
    assert_eq!(MatchOp::from_code(0), Some(MatchOp::Equal));
    assert_eq!(MatchOp::from_code(1), Some(MatchOp::Regex));
    assert_eq!(MatchOp::from_code(2), Some(MatchOp::Fnmatch));
    assert_eq!(MatchOp::from_code(3), None);
}

#[test]
fn lower_priority_number_wins_and_ties_keep_order() {
    let dp = Dialplan::new(vec![
        Rule::new(10, MatchOp::Regex, ".*", hunt("modems")),
        Rule::new(1, MatchOp::Regex, "^555", acct("first")),
        Rule::new(1, MatchOp::Regex, "^5", acct("second")),
    ])
    .unwrap();
    let t = dp.translate("5551234").unwrap();
    assert_eq!((t.target, t.rule_index), (acct("first"), 1));
    let t = dp.translate("5000").unwrap();
    assert_eq!((t.target, t.rule_index), (acct("second"), 2));
    let t = dp.translate("123").unwrap();
    assert_eq!(
        (t.target, t.rule_index, t.number.as_str()),
        (hunt("modems"), 0, "123")
    );
}

#[test]
fn equal_regex_and_fnmatch() {
    let dp = Dialplan::new(vec![
        Rule::new(1, MatchOp::Equal, "101", acct("equal")),
        Rule::new(2, MatchOp::Fnmatch, "2?[0-4]*", acct("glob")),
        Rule::new(3, MatchOp::Regex, "99", acct("regex")),
    ])
    .unwrap();
    assert_eq!(dp.translate("101").unwrap().target, acct("equal"));
    // Equal is exact: no prefix or substring match.
    assert_eq!(dp.translate("1010"), None);
    assert_eq!(dp.translate("2x3").unwrap().target, acct("glob"));
    assert_eq!(dp.translate("213").unwrap().target, acct("glob"));
    assert_eq!(dp.translate("21"), None);
    assert_eq!(dp.translate("2x7"), None);
    // The regex is unanchored, like PCRE in Kamailio.
    assert_eq!(dp.translate("1992").unwrap().target, acct("regex"));
    assert_eq!(dp.translate("12345"), None);
}

#[test]
fn fnmatch_details() {
    let m = |p: &str, s: &str| {
        fnmatch(
            &p.chars().collect::<Vec<_>>(),
            &s.chars().collect::<Vec<_>>(),
        )
    };
    assert!(m("*", ""));
    assert!(m("a*b*c", "aXXbYYc"));
    assert!(!m("a*b*c", "aXXbYY"));
    assert!(m("[!0]*", "123"));
    assert!(!m("[!0]*", "0123"));
    assert!(m("[^0]", "5"));
    assert!(m("\\*1", "*1"));
    assert!(!m("\\*1", "21"));
    assert!(m("[]]", "]"));
    assert!(m("[", "["));
    assert!(m("0[1-3-]", "0-"));
    assert!(!m("?", ""));
}

#[test]
fn back_references() {
    let dp = Dialplan::new(vec![
        Rule::new(1, MatchOp::Regex, r"^0(\d+)$", acct("out"))
            .with_subst(Some(r"^0(\d+)$"), Some(r"+49\1")),
    ])
    .unwrap();
    assert_eq!(dp.translate("0301234").unwrap().number, "+49301234");
    assert_eq!(dp.translate("301234"), None);
}

#[test]
fn back_references_default_to_match_exp() {
    let dp = Dialplan::new(vec![
        Rule::new(1, MatchOp::Regex, r"^(0)(3)(\d{8})$", acct("a"))
            .with_subst(None, Some(r"61\2\3")),
    ])
    .unwrap();
    assert_eq!(dp.translate("0399999999").unwrap().number, "61399999999");
}

#[test]
fn substitution_replaces_first_match_once_keeping_rest() {
    let dp = Dialplan::new(vec![
        Rule::new(1, MatchOp::Regex, "^9", acct("a")).with_subst(Some("^9"), Some("")),
        Rule::new(2, MatchOp::Regex, "1", acct("b")).with_subst(Some("1"), Some("[\\0]")),
    ])
    .unwrap();
    assert_eq!(dp.translate("90123").unwrap().number, "0123");
    // Only the first occurrence is replaced; `\0` is the whole match.
    assert_eq!(dp.translate("2121").unwrap().number, "2[1]21");
}

#[test]
fn repl_without_subst_replaces_the_whole_number() {
    let dp = Dialplan::new(vec![
        Rule::new(1, MatchOp::Equal, "101", acct("a")).with_subst(None, Some("0212341234")),
    ])
    .unwrap();
    assert_eq!(dp.translate("101").unwrap().number, "0212341234");
}

#[test]
fn replacement_dollar_and_backslash_are_literal() {
    let dp = Dialplan::new(vec![
        Rule::new(1, MatchOp::Regex, "(x)", acct("a")).with_subst(Some("(x)"), Some(r"$1\\\1\q")),
    ])
    .unwrap();
    assert_eq!(dp.translate("x").unwrap().number, r"$1\x\q");
}

#[test]
fn subst_not_matching_fails_translation() {
    let dp = Dialplan::new(vec![
        Rule::new(1, MatchOp::Regex, "^1", acct("a")).with_subst(Some("^2"), Some("3")),
        Rule::new(2, MatchOp::Regex, ".*", acct("b")),
    ])
    .unwrap();
    assert_eq!(dp.translate("123"), None);
}

#[test]
fn attrs_pass_through() {
    let dp = Dialplan::new(vec![
        Rule::new(1, MatchOp::Regex, ".", hunt("pool")).with_attrs("isp;ring=20"),
    ])
    .unwrap();
    let t = dp.translate("5551234").unwrap();
    assert_eq!(t.attrs, "isp;ring=20");
    assert_eq!(t.target, hunt("pool"));
}

#[test]
fn no_match_is_none() {
    let dp = Dialplan::new(vec![Rule::new(1, MatchOp::Equal, "1", acct("a"))]).unwrap();
    assert_eq!(dp.translate("2"), None);
    assert_eq!(dp.translate(""), None);
    assert_eq!(Dialplan::new(vec![]).unwrap().translate("1"), None);
}

#[test]
fn match_len_rules_come_first_and_need_the_length() {
    let dp = Dialplan::new(vec![
        Rule::new(1, MatchOp::Regex, ".", acct("any")),
        Rule::new(5, MatchOp::Regex, ".", acct("four")).with_match_len(4),
    ])
    .unwrap();
    assert_eq!(dp.translate("1234").unwrap().target, acct("four"));
    assert_eq!(dp.translate("123").unwrap().target, acct("any"));
}

#[test]
fn bad_regex_names_the_rule() {
    let err = Dialplan::new(vec![
        Rule::new(1, MatchOp::Regex, "ok", acct("a")),
        Rule::new(2, MatchOp::Regex, "(unclosed", acct("b")),
    ])
    .unwrap_err();
    assert!(matches!(
        err,
        DialplanError::BadRegex {
            rule: 1,
            field: "match_exp",
            ..
        }
    ));
    assert!(err.to_string().contains("rule 1"), "{err}");

    let err = Dialplan::new(vec![
        Rule::new(1, MatchOp::Equal, "1", acct("a")).with_subst(Some("[z-a]"), Some("x")),
    ])
    .unwrap_err();
    assert!(matches!(
        err,
        DialplanError::BadRegex {
            rule: 0,
            field: "subst_exp",
            ..
        }
    ));
}

#[test]
fn bad_back_reference_is_an_error() {
    let err = Dialplan::new(vec![
        Rule::new(1, MatchOp::Regex, "(a)", acct("a")).with_subst(Some("(a)"), Some(r"\2")),
    ])
    .unwrap_err();
    assert_eq!(
        err,
        DialplanError::BadBackReference {
            rule: 0,
            group: 2,
            groups: 1
        }
    );
    let err = Dialplan::new(vec![
        Rule::new(1, MatchOp::Equal, "a", acct("a")).with_subst(None, Some(r"\1")),
    ])
    .unwrap_err();
    assert_eq!(
        err,
        DialplanError::BadBackReference {
            rule: 0,
            group: 1,
            groups: 0
        }
    );
}

#[test]
fn long_and_huge_patterns_are_refused() {
    let long = "a".repeat(MAX_PATTERN_LEN + 1);
    let err = Dialplan::new(vec![Rule::new(1, MatchOp::Equal, &long, acct("a"))]).unwrap_err();
    assert!(matches!(
        err,
        DialplanError::TooLong {
            rule: 0,
            field: "match_exp",
            ..
        }
    ));
    // Short to write, enormous to compile.
    let err = Dialplan::new(vec![Rule::new(
        1,
        MatchOp::Regex,
        r"\w{1000}{1000}",
        acct("a"),
    )])
    .unwrap_err();
    assert!(matches!(err, DialplanError::BadRegex { rule: 0, .. }));
    let dp = Dialplan::new(vec![Rule::new(1, MatchOp::Regex, ".", acct("a"))]).unwrap();
    assert_eq!(dp.translate(&"1".repeat(MAX_INPUT_LEN + 1)), None);
}

proptest! {
    #[test]
    fn translate_never_panics(
        pattern in "[a-z0-9*?\\[\\]!^\\\\-]{0,12}",
        repl in "[0-9\\\\$+]{0,8}",
        input in "\\PC{0,40}",
    ) {
        for op in [MatchOp::Equal, MatchOp::Regex, MatchOp::Fnmatch] {
            let rule = Rule::new(0, op, &pattern, Target::Account("a".into()))
                .with_subst(Some(&pattern), Some(&repl));
            if let Ok(dp) = Dialplan::new(vec![rule]) {
                let _ = dp.translate(&input);
            }
        }
    }

    #[test]
    fn fnmatch_star_suffix(prefix in "[0-9]{0,6}", rest in "[0-9]{0,6}") {
        let p: Vec<char> = format!("{prefix}*").chars().collect();
        let s: Vec<char> = format!("{prefix}{rest}").chars().collect();
        prop_assert!(fnmatch(&p, &s));
    }
}
