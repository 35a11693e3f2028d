//! The user agent of a click: what woothee reads from it (browser, OS, category, vendor),
//! the device type operators filter on, and whether a bot sent it.
//!
//! woothee gives the names; `UNKNOWN` becomes `None` so that payloads carry nulls rather
//! than a sentinel. woothee has no notion of tablets (an iPad and an Android tablet are
//! `smartphone` to it), so `device_type` adds the usual signs: `iPad`, Kindle and Silk,
//! `Tablet;`, and Android without `Mobi` (Android browsers mark phones with `Mobile`; TVs
//! and set-top boxes are `other`). iPads since iPadOS 13 send a Mac agent by default and
//! count as desktops: nothing in the agent tells them apart.
//!
//! Whether the agent is a bot is decided in this order: the rules of [`super::bots`];
//! then woothee's own crawler and HTTP-library lists; then an agent that woothee does not
//! recognise and that does not start like a browser's (`Mozilla/`) is a bot named by its
//! product ([`bots::non_browser`]), since every browser a person uses today sends a
//! `Mozilla/` agent. A bot's `device_type` is `bot`, whatever it imitates.
//!
//! A missing or empty agent (or `-`, the log placeholder) is a bot of kind
//! [`BotKind::Tool`] named [`NO_USER_AGENT`]: every browser sends one, and what sends none
//! is a script or a raw HTTP client, not a crawler (crawlers name themselves) and not a
//! person. Counting such requests as clicks would inflate the numbers operators pay
//! attention to; flagging them keeps them visible and filterable.

use super::bots;
use crate::click::{Agent, Bot, BotKind};
use woothee::parser::{Parser, WootheeResult};
use woothee::woothee::VALUE_UNKNOWN;

/// The bot name of a click that carried no user agent, or an empty one.
pub const NO_USER_AGENT: &str = "no-user-agent";

/// Reads one user agent. Runs on the enrichment threads for every click: no I/O, no lock;
/// the rule automaton is built on first use.
pub fn classify(user_agent: Option<&str>) -> (Agent, Option<Bot>) {
    let ua = user_agent.map(str::trim).unwrap_or_default();
    if ua.is_empty() || ua == "-" {
        let agent = Agent {
            device_type: DeviceType::Bot.as_str().to_owned(),
            ..Agent::default()
        };
        return (
            agent,
            Some(Bot {
                name: NO_USER_AGENT.to_owned(),
                kind: BotKind::Tool,
            }),
        );
    }

    let parsed = Parser::new().parse(ua);
    let category = parsed.as_ref().map_or(VALUE_UNKNOWN, |p| p.category);
    let bot = bots::detect(ua)
        .or_else(|| parsed.as_ref().and_then(|p| woothee_bot(ua, p)))
        .or_else(|| match category {
            VALUE_UNKNOWN => bots::non_browser(ua),
            _ => None,
        });
    let device_type = match bot {
        Some(_) => DeviceType::Bot,
        None => device_type(ua, category),
    };

    let agent = match &parsed {
        Some(p) => Agent {
            browser: known(p.name),
            browser_version: known(p.version),
            os: known(p.os),
            os_version: known(&p.os_version),
            category: known(p.category),
            vendor: known(p.vendor),
            device_type: device_type.as_str().to_owned(),
        },
        None => Agent {
            device_type: device_type.as_str().to_owned(),
            ..Agent::default()
        },
    };
    let bot = bot.map(|d| Bot {
        name: d.name.to_owned(),
        kind: d.kind,
    });
    (agent, bot)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeviceType {
    Desktop,
    Mobile,
    Tablet,
    Bot,
    Other,
}

impl DeviceType {
    fn as_str(self) -> &'static str {
        match self {
            DeviceType::Desktop => "desktop",
            DeviceType::Mobile => "mobile",
            DeviceType::Tablet => "tablet",
            DeviceType::Bot => "bot",
            DeviceType::Other => "other",
        }
    }
}

fn device_type(ua: &str, category: &str) -> DeviceType {
    match category {
        "pc" if is_tablet(ua) => DeviceType::Tablet,
        "pc" => DeviceType::Desktop,
        "smartphone" if is_tv(ua) => DeviceType::Other,
        "smartphone" if is_tablet(ua) => DeviceType::Tablet,
        "smartphone" | "mobilephone" => DeviceType::Mobile,
        "crawler" => DeviceType::Bot,
        // appliance (consoles, TVs), misc (feed readers, libraries), unknown
        _ => DeviceType::Other,
    }
}

fn is_tablet(ua: &str) -> bool {
    ua.contains("iPad")
        || ua.contains("Kindle")
        || ua.contains("Silk/")
        || ua.contains("; KF")
        || ua.contains("PlayBook")
        || (ua.contains("Tablet") && !ua.contains("Tablet PC"))
        || (ua.contains("Android") && !ua.contains("Mobi"))
}

fn is_tv(ua: &str) -> bool {
    [
        "Android TV",
        "GoogleTV",
        "SmartTV",
        "SMART-TV",
        "BRAVIA",
        "; AFT",
        "CrKey",
        "HbbTV",
    ]
    .iter()
    .any(|sign| ua.contains(sign))
}

/// woothee's own verdict, for what the rules do not name: its crawler list, and the HTTP
/// libraries it files under `misc`.
fn woothee_bot<'a>(ua: &'a str, parsed: &WootheeResult<'a>) -> Option<bots::Detection<'a>> {
    match (parsed.category, parsed.name) {
        ("crawler", "misc crawler") => Some(bots::Detection {
            name: bots::product_name(ua),
            kind: BotKind::Crawler,
        }),
        ("crawler", name) => Some(bots::Detection {
            name,
            kind: BotKind::Crawler,
        }),
        ("misc", "HTTP Library") => Some(bots::Detection {
            name: if is_known(parsed.version) {
                parsed.version
            } else {
                bots::OTHER
            },
            kind: BotKind::Tool,
        }),
        _ => None,
    }
}

fn is_known(value: &str) -> bool {
    !value.is_empty() && value != VALUE_UNKNOWN
}

fn known(value: &str) -> Option<String> {
    is_known(value).then(|| value.to_owned())
}
