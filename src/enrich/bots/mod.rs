//! Bot, link-preview and scanner detection from the user agent: the rules that decide
//! [`crate::click::Bot`], on top of what woothee knows.
//!
//! Why a table of our own: woothee's crawler list is short and misses most of what opens a
//! short link before (or instead of) a person: chat and social previews (Slackbot,
//! Discordbot, WhatsApp, TelegramBot, Mastodon), mail-link scanners, AI crawlers, headless
//! browsers and HTTP libraries. Operators want those flagged with a name they can group by,
//! as the hosted shorteners do (Linkly's `bot_name`).
//!
//! How the table reads: rules are tried in priority order and the first (lowest) rule that
//! matches anywhere in the agent wins, so a Chrome string that ends in `Googlebot/2.1` is
//! Googlebot and `LinkedInBot (... Apache-HttpClient ...)` is LinkedInBot.
//! 1. Known products with a fixed name and kind, specific before general.
//! 2. Words that contain a bot-like word but are not bots (CUBOT phones): they stop the
//!    generic words below from flagging a browser.
//! 3. Generic words (`bot`, `crawler`, `spider`, `fetch`, `monitor`, ...), named by the
//!    word they sit in: `FooBot/1.2` is reported as `FooBot`.
//! 4. Signs no browser shows: a URL or an e-mail address in the agent, `compatible;`
//!    followed by something that is not a browser; named by the agent's product.
//!
//! App names that are also in-app browsers are matched only where the fetcher's form
//! differs from the browser's: the LINE preview is `line-poker`, the Snapchat preview is
//! `Snap URL Preview`, while `Line/13.1` or `Snapchat/12.4` at the end of a browser string
//! is a person in the app's browser. Mail scanners that present a plain browser agent
//! (Microsoft Safe Links, most Proofpoint and Mimecast fetches) cannot be told from the
//! agent alone; only those that name themselves are caught here.
//!
//! Every needle goes into one case-insensitive Aho-Corasick DFA, built once (a few
//! milliseconds and about 1 MB, on first use); one pass over the agent reports every
//! needle, and the lowest rule that passes its position check wins. This runs for every
//! click on the enrichment threads, next to woothee's 2 µs: a browser agent costs about
//! 0.3-0.4 µs in a release build and allocates nothing (`cargo bench --bench lookups --
//! agent` measures it).

use crate::click::BotKind;
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use std::sync::LazyLock;

/// What the rules found: a stable name and a kind. The name is either one of the table's
/// own names or a slice of the agent (for the generic rules), so detection allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detection<'a> {
    pub name: &'a str,
    pub kind: BotKind,
}

/// The name reported when a rule wants to name the bot by its product and the agent has
/// no product token to take.
pub const OTHER: &str = "other";

/// Names taken from the agent are cut at this many bytes.
const MAX_NAME: usize = 64;

/// Finds the bot, preview fetcher, scanner or tool that `user_agent` names, if any.
///
/// `user_agent` is expected trimmed; an empty one matches nothing (the caller decides
/// what a missing agent is).
pub fn detect(user_agent: &str) -> Option<Detection<'_>> {
    let bytes = user_agent.as_bytes();
    let mut best: Option<(usize, usize, usize)> = None;
    for m in AUTOMATON.find_overlapping_iter(user_agent) {
        let index = m.pattern().as_usize();
        if best.is_some_and(|(b, _, _)| b <= index) {
            continue;
        }
        if RULES[index].at.accepts(bytes, m.start(), m.end()) {
            best = Some((index, m.start(), m.end()));
        }
    }
    let (index, start, end) = best?;
    let rule = &RULES[index];
    let kind = rule.kind?;
    let name = match rule.name {
        Name::Fixed(name) => name,
        Name::Word => word_name(user_agent, rule.needle, start, end),
        Name::Product => product_name(user_agent),
    };
    Some(Detection { name, kind })
}

/// A bot for an agent that does not start like a browser's (`Mozilla/`) and carries no
/// sign of a phone browser, named by its product (`Zabbix`, `Klaviyo/1.0` → `Klaviyo`).
/// Every browser people use today sends a `Mozilla/` agent; what else reaches a short link
/// is a service, an app's HTTP client or a script. The caller asks only when woothee
/// recognised nothing in the agent either (it knows Opera's `Opera/9.80` and the Japanese
/// carriers' phones).
pub fn non_browser(user_agent: &str) -> Option<Detection<'_>> {
    if user_agent.is_empty()
        || starts_with_ignore_case(user_agent, "mozilla/")
        || BROWSER_SIGNS.is_match(user_agent)
    {
        return None;
    }
    Some(Detection {
        name: product_name(user_agent),
        kind: Crawler,
    })
}

/// What browsers write when they do not start with `Mozilla/`: text-mode browsers, and
/// feature phones (Java ME profiles, WAP browsers, the makers that named their phones first).
#[rustfmt::skip]
static BROWSER_SIGNS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    let signs = [
        "browser", "midp", "cldc", "up.link", "netfront", "obigo", "ucweb", "opera", "openwave",
        "teleca", "polaris", "dolfin", "jasmine", "symbian", "series40", "series60",
        "blackberry", "nokia", "sonyericsson", "samsung", "windows ce", "iemobile", "brew",
        "mmp/", "wap", "alcatel", "amoi", "asus-", "acer-", "audiovox", "benq", "lg-", "lge-",
        "mot-", "motorola", "nec-", "panasonic", "philips", "sagem", "sanyo", "sec-", "sharp",
        "sie-", "siemens", "zte", "huawei", "lenovo", "htc", "kyocera", "vodafone", "sendo",
        "palm", "lynx/", "elinks/", "w3m/", "links (",
    ];
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(signs)
        // Constants of this file: a failure is a bug here, caught by every agent test.
        .expect("browser signs build an automaton")
});

/// The product an agent names itself by, for bots no rule knows: the leading token of a
/// non-browser agent (`Zabbix`, `Klaviyo/1.0` → `Klaviyo`), or the token after
/// `compatible;` in a `Mozilla/...` one; [`OTHER`] when there is none.
pub fn product_name(user_agent: &str) -> &str {
    let rest = if starts_with_ignore_case(user_agent, "mozilla/") {
        match find_ignore_case(user_agent, "compatible;") {
            Some(at) => &user_agent[at + "compatible;".len()..],
            None => return OTHER,
        }
    } else {
        user_agent
    };
    let rest = rest.trim_start_matches([' ', '+', '(', '[']);
    let rest = strip_prefix_ignore_case(rest, "http://")
        .or_else(|| strip_prefix_ignore_case(rest, "https://"))
        .unwrap_or(rest);
    let rest = strip_prefix_ignore_case(rest, "www.").unwrap_or(rest);
    let end = rest
        .bytes()
        .position(|b| !is_name_byte(b))
        .unwrap_or(rest.len());
    clean_name(&rest[..end])
}

/// Every rule's needle, in table order: a match's pattern index is its rule's index.
static AUTOMATON: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .kind(Some(AhoCorasickKind::DFA))
        .build(RULES.iter().map(|rule| rule.needle))
        // Constants of this file: a failure is a bug here, caught by every agent test.
        .expect("bot rule needles build an automaton")
});

/// A generic rule's name: the word the needle sits in (`FooBot/1.2` → `FooBot`), unless
/// that word says nothing more than the needle (`bot`, `Crawler`, `monitoring`) or is a
/// file or host name (`bot.html`): then the agent's product, when it has one.
fn word_name<'a>(agent: &'a str, needle: &str, start: usize, end: usize) -> &'a str {
    let word = word_around(agent, start, end);
    let bare = word.len() <= needle.len() + 4 && starts_with_ignore_case(word, needle);
    if bare || word.contains('.') {
        match product_name(agent) {
            OTHER => word,
            product => product,
        }
    } else {
        word
    }
}

/// The word around `start..end`: letters, digits, `-`, `_` and `.`, trimmed of edge
/// punctuation and cut at [`MAX_NAME`].
fn word_around(agent: &str, start: usize, end: usize) -> &str {
    let bytes = agent.as_bytes();
    let mut from = start;
    while from > 0 && is_name_byte(bytes[from - 1]) {
        from -= 1;
    }
    let mut to = end;
    while to < bytes.len() && is_name_byte(bytes[to]) {
        to += 1;
    }
    agent.get(from..to).map_or(OTHER, clean_name)
}

/// Whether the `@` at `at` joins a local part to a domain of letter, digit and `-` labels
/// ending in a top-level domain of letters.
pub(super) fn is_email_at(agent: &[u8], at: usize) -> bool {
    let local = at > 0 && agent.get(at - 1).is_some_and(|b| is_name_byte(*b));
    let domain = agent.get(at + 1..).unwrap_or_default();
    let end = domain
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.')))
        .unwrap_or(domain.len());
    if !local || domain.get(end).is_some_and(|b| *b == b'_') {
        return false;
    }
    let domain = domain[..end].strip_suffix(b".").unwrap_or(&domain[..end]);
    match domain.iter().rposition(|b| *b == b'.') {
        Some(dot) => {
            let tld = &domain[dot + 1..];
            dot > 0 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic)
        }
        None => false,
    }
}

fn clean_name(name: &str) -> &str {
    let name = name.trim_matches(['-', '_', '.']);
    let name = name.get(..name.len().min(MAX_NAME)).unwrap_or(name);
    if name.is_empty() { OTHER } else { name }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

fn starts_with_ignore_case(haystack: &str, prefix: &str) -> bool {
    haystack
        .as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

fn strip_prefix_ignore_case<'a>(haystack: &'a str, prefix: &str) -> Option<&'a str> {
    if starts_with_ignore_case(haystack, prefix) {
        haystack.get(prefix.len()..)
    } else {
        None
    }
}

fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

mod rules;
#[cfg(test)]
mod tests;

use BotKind::Crawler;
use rules::{Name, RULES};
