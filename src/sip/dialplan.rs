//! The dialplan: Kamailio `dialplan` module semantics, sans-IO.
//!
//! A [`Dialplan`] is one Kamailio dialplan id (`dpid`): an ordered set of [`Rule`]s that map a
//! dialled number to a routing [`Target`] (a registered SIP account or a hunt group of modem
//! lines), optionally rewriting the number on the way.
//!
//! Semantics follow Kamailio's `dp_translate`:
//!
//! * Rules are tried by `priority`, lowest number first; rules of equal priority keep the order
//!   in which they were given.
//! * Rules with a `match_len` are only considered for input of exactly that length, and as in
//!   Kamailio's length index they are tried *before* the rules without a length (length `0`).
//! * `match_op` is string equality, a regular expression (found anywhere in the input unless
//!   anchored, like PCRE) or an fnmatch-style shell pattern (`*`, `?`, `[a-z]`, `[!0]`, `\x`).
//! * The first matching rule wins. Without `subst_exp` and `repl_exp` the number is unchanged;
//!   with only `repl_exp` the whole number is replaced by it; with `subst_exp` its first match
//!   in the number is replaced by `repl_exp` once, keeping the unmatched prefix and suffix.
//!   `\0`..`\9` in `repl_exp` are back-references into `subst_exp`'s groups.
//! * If a regex rule has back-references in `repl_exp` but no `subst_exp`, its `match_exp` is
//!   used as the substitution expression (Kamailio would reject the rule; the operators'
//!   convention is to copy `match_exp` there anyway).
//! * A rule that matches but whose `subst_exp` does not match makes the translation fail
//!   (`None`), as `dp_translate` does.
//!
//! Regular expressions come from the `regex` crate, which matches in linear time; patterns are
//! capped at [`MAX_PATTERN_LEN`] bytes and compiled programs at a fixed size, and inputs longer
//! than [`MAX_INPUT_LEN`] never match.

use regex::{Regex, RegexBuilder};
use thiserror::Error;

/// The longest `match_exp` / `subst_exp` / `repl_exp` accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 1024;
/// The longest dialled string that [`Dialplan::translate`] considers, in bytes.
pub const MAX_INPUT_LEN: usize = 1024;
/// Upper bound on the compiled size of one regular expression, in bytes.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How a rule's `match_exp` is compared with the dialled number (Kamailio `match_op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `0`: the number equals `match_exp` exactly.
    Equal,
    /// `1`: `match_exp` is a regular expression found in the number.
    Regex,
    /// `2`: `match_exp` is a shell pattern matching the whole number.
    Fnmatch,
}

impl MatchOp {
    /// The operation for Kamailio's numeric `match_op` column, if it is 0, 1 or 2.
    pub fn from_code(code: u8) -> Option<MatchOp> {
        match code {
            0 => Some(MatchOp::Equal),
            1 => Some(MatchOp::Regex),
            2 => Some(MatchOp::Fnmatch),
            _ => None,
        }
    }
}

/// Where a matched call is routed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A registered SIP account, by name.
    Account(String),
    /// A named hunt group of modem lines.
    HuntGroup(String),
}

/// One dialplan rule, as an operator writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Kamailio `pr`: lower numbers are tried first.
    pub priority: i32,
    /// Kamailio `match_op`.
    pub match_op: MatchOp,
    /// Kamailio `match_exp`.
    pub match_exp: String,
    /// Kamailio `match_len`: `Some(n)` restricts the rule to inputs of `n` bytes; `None` (or
    /// `Some(0)`) means any length.
    pub match_len: Option<usize>,
    /// Kamailio `subst_exp`: the regex whose first match is replaced.
    pub subst_exp: Option<String>,
    /// Kamailio `repl_exp`: the replacement, with `\0`..`\9` back-references.
    pub repl_exp: Option<String>,
    /// Kamailio `attrs`: free text handed back with the translation.
    pub attrs: String,
    /// Where a call matching this rule goes.
    pub target: Target,
}

impl Rule {
    /// A rule with no length restriction, substitution or attributes.
    pub fn new(priority: i32, match_op: MatchOp, match_exp: &str, target: Target) -> Rule {
        Rule {
            priority,
            match_op,
            match_exp: match_exp.to_string(),
            match_len: None,
            subst_exp: None,
            repl_exp: None,
            attrs: String::new(),
            target,
        }
    }

    /// This rule with `subst_exp` and `repl_exp` set.
    pub fn with_subst(mut self, subst_exp: Option<&str>, repl_exp: Option<&str>) -> Rule {
        self.subst_exp = subst_exp.map(str::to_string);
        self.repl_exp = repl_exp.map(str::to_string);
        self
    }

    /// This rule with `attrs` set.
    pub fn with_attrs(mut self, attrs: &str) -> Rule {
        self.attrs = attrs.to_string();
        self
    }

    /// This rule with `match_len` set.
    pub fn with_match_len(mut self, len: usize) -> Rule {
        self.match_len = Some(len);
        self
    }
}

/// Why a dialplan could not be built. `rule` is the index in the list given to
/// [`Dialplan::new`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DialplanError {
    /// A regular expression does not compile.
    #[error("dialplan rule {rule}: bad {field} regex {pattern:?}: {reason}")]
    BadRegex {
        /// Index of the rule.
        rule: usize,
        /// `match_exp` or `subst_exp`.
        field: &'static str,
        /// The offending pattern.
        pattern: String,
        /// The compiler's message.
        reason: String,
    },
    /// An expression is longer than [`MAX_PATTERN_LEN`].
    #[error("dialplan rule {rule}: {field} is {len} bytes, more than {MAX_PATTERN_LEN}")]
    TooLong {
        /// Index of the rule.
        rule: usize,
        /// The field that is too long.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// `repl_exp` refers to a group that the substitution expression does not have.
    #[error(
        "dialplan rule {rule}: repl_exp refers to \\{group} but subst_exp has {groups} group(s)"
    )]
    BadBackReference {
        /// Index of the rule.
        rule: usize,
        /// The back-reference used.
        group: usize,
        /// Groups available in the substitution expression.
        groups: usize,
    },
}

/// The result of a successful translation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    /// The number after substitution.
    pub number: String,
    /// The matching rule's `attrs`.
    pub attrs: String,
    /// The matching rule's target.
    pub target: Target,
    /// Index of the matching rule in the list given to [`Dialplan::new`].
    pub rule_index: usize,
}

/// A piece of a parsed `repl_exp`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ReplPart {
    Literal(String),
    Group(usize),
}

/// The match part of a compiled rule.
#[derive(Debug, Clone)]
enum Matcher {
    Equal(String),
    Regex(Regex),
    Fnmatch(Vec<char>),
}

#[derive(Debug, Clone)]
struct Compiled {
    index: usize,
    match_len: Option<usize>,
    matcher: Matcher,
    subst: Option<Regex>,
    repl: Option<Vec<ReplPart>>,
    attrs: String,
    target: Target,
}

/// A compiled dialplan (one Kamailio `dpid`).
#[derive(Debug, Clone, Default)]
pub struct Dialplan {
    /// Rules in the order they are tried.
    rules: Vec<Compiled>,
}

fn check_len(rule: usize, field: &'static str, s: &str) -> Result<(), DialplanError> {
    if s.len() > MAX_PATTERN_LEN {
        return Err(DialplanError::TooLong {
            rule,
            field,
            len: s.len(),
        });
    }
    Ok(())
}

fn compile_regex(rule: usize, field: &'static str, pattern: &str) -> Result<Regex, DialplanError> {
    check_len(rule, field, pattern)?;
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| DialplanError::BadRegex {
            rule,
            field,
            pattern: pattern.to_string(),
            reason: e.to_string(),
        })
}

/// Parses `repl_exp`: `\N` is group N, `\\` a backslash, anything else literal.
fn parse_repl(repl: &str) -> Vec<ReplPart> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek().copied() {
                Some(d @ '0'..='9') => {
                    chars.next();
                    if !lit.is_empty() {
                        parts.push(ReplPart::Literal(std::mem::take(&mut lit)));
                    }
                    parts.push(ReplPart::Group(usize::from(d as u8 - b'0')));
                }
                Some('\\') => {
                    chars.next();
                    lit.push('\\');
                }
                _ => lit.push('\\'),
            }
        } else {
            lit.push(c);
        }
    }
    if !lit.is_empty() {
        parts.push(ReplPart::Literal(lit));
    }
    parts
}

fn max_group(parts: &[ReplPart]) -> Option<usize> {
    parts
        .iter()
        .filter_map(|p| match p {
            ReplPart::Group(g) => Some(*g),
            ReplPart::Literal(_) => None,
        })
        .max()
}

impl Dialplan {
    /// Compiles `rules` once and orders them for matching (see the module documentation).
    pub fn new(rules: Vec<Rule>) -> Result<Dialplan, DialplanError> {
        let mut compiled = Vec::with_capacity(rules.len());
        let mut order = Vec::with_capacity(rules.len());
        for (index, rule) in rules.into_iter().enumerate() {
            check_len(index, "match_exp", &rule.match_exp)?;
            let matcher = match rule.match_op {
                MatchOp::Equal => Matcher::Equal(rule.match_exp.clone()),
                MatchOp::Regex => {
                    Matcher::Regex(compile_regex(index, "match_exp", &rule.match_exp)?)
                }
                MatchOp::Fnmatch => Matcher::Fnmatch(rule.match_exp.chars().collect()),
            };
            let repl = match &rule.repl_exp {
                Some(r) => {
                    check_len(index, "repl_exp", r)?;
                    Some(parse_repl(r))
                }
                None => None,
            };
            let wants_groups = repl.as_deref().and_then(max_group);
            let subst = match (&rule.subst_exp, &matcher) {
                (Some(s), _) if !s.is_empty() => Some(compile_regex(index, "subst_exp", s)?),
                (_, Matcher::Regex(re)) if wants_groups.is_some() => Some(re.clone()),
                _ => None,
            };
            if let Some(group) = wants_groups {
                // captures_len counts group 0, the whole match.
                let groups = subst.as_ref().map_or(0, |re| re.captures_len() - 1);
                if group > groups {
                    return Err(DialplanError::BadBackReference {
                        rule: index,
                        group,
                        groups,
                    });
                }
            }
            let key = (
                rule.match_len.filter(|&l| l > 0).is_none(),
                rule.priority,
                index,
            );
            order.push(key);
            compiled.push(Compiled {
                index,
                match_len: rule.match_len.filter(|&l| l > 0),
                matcher,
                subst,
                repl,
                attrs: rule.attrs,
                target: rule.target,
            });
        }
        // Length-specific rules first (Kamailio's length index), then by priority, then as given.
        order.sort();
        let mut slots: Vec<Option<Compiled>> = compiled.into_iter().map(Some).collect();
        let rules = order
            .into_iter()
            .filter_map(|(_, _, i)| slots.get_mut(i).and_then(Option::take))
            .collect();
        Ok(Dialplan { rules })
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Translates a dialled number: the first matching rule decides the target and the
    /// rewritten number. `None` when no rule matches (404) or the matching rule's
    /// substitution fails.
    pub fn translate(&self, dialled: &str) -> Option<Translation> {
        if dialled.len() > MAX_INPUT_LEN {
            return None;
        }
        let chars: Vec<char> = dialled.chars().collect();
        let rule = self.rules.iter().find(|r| {
            r.match_len.is_none_or(|l| l == dialled.len())
                && match &r.matcher {
                    Matcher::Equal(s) => s == dialled,
                    Matcher::Regex(re) => re.is_match(dialled),
                    Matcher::Fnmatch(p) => fnmatch(p, &chars),
                }
        })?;
        let number = substitute(rule, dialled)?;
        Some(Translation {
            number,
            attrs: rule.attrs.clone(),
            target: rule.target.clone(),
            rule_index: rule.index,
        })
    }
}

/// Applies a rule's substitution to `input` (Kamailio `rule_translate`).
fn substitute(rule: &Compiled, input: &str) -> Option<String> {
    let Some(re) = &rule.subst else {
        return Some(match &rule.repl {
            // No substitution expression: the replacement is the whole result.
            Some(parts) => expand(parts, |_| ""),
            None => input.to_string(),
        });
    };
    let caps = re.captures(input)?;
    let whole = caps.get(0)?;
    let mut out = String::with_capacity(input.len() + 16);
    out.push_str(input.get(..whole.start())?);
    if let Some(parts) = &rule.repl {
        out.push_str(&expand(parts, |g| caps.get(g).map_or("", |m| m.as_str())));
    }
    out.push_str(input.get(whole.end()..)?);
    Some(out)
}

fn expand<'a>(parts: &[ReplPart], group: impl Fn(usize) -> &'a str) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            ReplPart::Literal(s) => out.push_str(s),
            ReplPart::Group(g) => out.push_str(group(*g)),
        }
    }
    out
}

/// Matches a whole string against a shell pattern (`*`, `?`, `[...]`, `[!...]`, `\x`).
/// Backtracks only to the last `*`, so it runs in O(pattern × input).
fn fnmatch(pattern: &[char], input: &[char]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < input.len() {
        let step = match pattern.get(p) {
            Some('*') => {
                star = Some((p + 1, i));
                p += 1;
                continue;
            }
            Some('?') => Some(p + 1),
            Some('[') => match class(pattern, p, input[i]) {
                Some((true, next)) => Some(next),
                Some((false, _)) => None,
                // An unterminated '[' is a literal.
                None => (input[i] == '[').then_some(p + 1),
            },
            Some('\\') if p + 1 < pattern.len() => (pattern[p + 1] == input[i]).then_some(p + 2),
            Some(&c) => (c == input[i]).then_some(p + 1),
            None => None,
        };
        match step {
            Some(next) => {
                p = next;
                i += 1;
            }
            None => match star {
                Some((sp, si)) => {
                    p = sp;
                    i = si + 1;
                    star = Some((sp, si + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == '*')
}

/// Evaluates the bracket expression starting at `pattern[start] == '['` against `c`:
/// `(matched, index after ']')`, or `None` when it is not terminated.
fn class(pattern: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut k = start + 1;
    let negate = matches!(pattern.get(k), Some('!') | Some('^'));
    if negate {
        k += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = *pattern.get(k)?;
        if lo == ']' && !first {
            return Some((matched != negate, k + 1));
        }
        first = false;
        if pattern.get(k + 1) == Some(&'-') && pattern.get(k + 2).is_some_and(|&h| h != ']') {
            let hi = pattern[k + 2];
            matched |= lo <= c && c <= hi;
            k += 3;
        } else {
            matched |= lo == c;
            k += 1;
        }
    }
}

#[cfg(test)]
#[path = "dialplan_tests.rs"]
mod tests;
