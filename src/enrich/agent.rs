//! The user agent of a click: what woothee reads from it (browser, OS, category, vendor),
//! the device type operators filter on, and whether a bot sent it.
//!
//! woothee gives the names; `UNKNOWN` becomes `None` so that payloads carry nulls rather
//! than a sentinel. woothee has no notion of tablets (an iPad and an Android tablet are
//! `smartphone` to it), so `device_type` adds the usual signs: the iPad OS, Kindle and
//! Silk, `Tablet;`, and Android without `Mobi` (Android browsers mark phones with `Mobile`;
//! TVs and set-top boxes are `other`). iPads since iPadOS 13 send a Mac agent by default and
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

/// woothee's name for crawlers it found by a generic word; not a name to report.
const WOOTHEE_UNNAMED_CRAWLER: &str = "misc crawler";

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
    let recognised = parsed
        .as_ref()
        .is_some_and(|p| is_known(p.category) || is_known(p.name));
    let bot = bots::detect(ua)
        .or_else(|| parsed.as_ref().and_then(|p| woothee_bot(ua, p)))
        .or_else(|| {
            if recognised {
                None
            } else {
                bots::non_browser(ua)
            }
        });
    let device_type = match (&bot, &parsed) {
        (Some(_), _) => DeviceType::Bot,
        (None, Some(p)) => device_type(ua, p),
        (None, None) => DeviceType::Other,
    };

    let agent = match &parsed {
        Some(p) => Agent {
            browser: known(p.name).filter(|name| name != WOOTHEE_UNNAMED_CRAWLER),
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

/// The device type of a person's agent, from woothee's category and OS and the few signs
/// woothee does not read. Only the agents that can be tablets are searched again.
fn device_type(ua: &str, parsed: &WootheeResult) -> DeviceType {
    // woothee takes the category from the OS; a browser on an OS it does not know
    // (Windows NT 6.4, say) still tells a phone from a computer by "Mobi".
    let category = match parsed.category {
        VALUE_UNKNOWN if parsed.browser_type == "browser" && ua.contains("Mobi") => "smartphone",
        VALUE_UNKNOWN if parsed.browser_type == "browser" => "pc",
        category => category,
    };
    match (category, parsed.os) {
        ("smartphone", "iPad") => DeviceType::Tablet,
        // Android browsers mark phones with "Mobile"; what lacks it is a tablet or a TV.
        ("smartphone", "Android") if ua.contains("Mobi") => DeviceType::Mobile,
        ("smartphone", "Android") if is_tv(ua) => DeviceType::Other,
        ("smartphone", "Android") => DeviceType::Tablet,
        ("smartphone", _) if is_other_tablet(ua) => DeviceType::Tablet,
        ("smartphone" | "mobilephone", _) => DeviceType::Mobile,
        // Kindle's Silk can send a Linux or Mac agent.
        ("pc", _) if is_kindle(ua) => DeviceType::Tablet,
        ("pc", _) => DeviceType::Desktop,
        ("crawler", _) => DeviceType::Bot,
        // appliance (consoles, TVs), misc (feed readers, libraries), unknown
        _ => DeviceType::Other,
    }
}

fn is_kindle(ua: &str) -> bool {
    ua.contains("Silk/") || ua.contains("Kindle") || ua.contains("; KF")
}

/// Tablets woothee files as smartphones without an iPad or Android OS: Firefox OS and
/// Firefox's `Tablet;` token, BlackBerry PlayBook, Kindle.
fn is_other_tablet(ua: &str) -> bool {
    ua.contains("Tablet;") || ua.contains("PlayBook") || is_kindle(ua)
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
        ("crawler", WOOTHEE_UNNAMED_CRAWLER) => Some(bots::Detection {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One real agent and what clicktap must read from it.
    struct Case {
        ua: &'static str,
        browser: Option<&'static str>,
        os: Option<&'static str>,
        device_type: &'static str,
        bot: Option<(&'static str, BotKind)>,
    }

    const fn person(
        ua: &'static str,
        browser: &'static str,
        os: &'static str,
        device_type: &'static str,
    ) -> Case {
        Case {
            ua,
            browser: Some(browser),
            os: Some(os),
            device_type,
            bot: None,
        }
    }

    const fn bot(ua: &'static str, name: &'static str, kind: BotKind) -> Case {
        Case {
            ua,
            browser: None,
            os: None,
            device_type: "bot",
            bot: Some((name, kind)),
        }
    }

    use BotKind::{Crawler, Preview, Scanner, Tool};

    #[rustfmt::skip]
    const CASES: &[Case] = &[
        person("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
            "Chrome", "Windows 10", "desktop"),
        person("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
            "Safari", "iPhone", "mobile"),
        person("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
            "Chrome", "Android", "mobile"),
        person("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.230 Safari/537.36",
            "Chrome", "Android", "tablet"),
        person("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
            "Safari", "iPad", "tablet"),
        person("Mozilla/5.0 (Linux; U; en-us; KFTT Build/IML74K) AppleWebKit/535.19 (KHTML, like Gecko) Silk/2.2 Safari/535.19 Silk-Accelerated=true",
            "Safari", "Linux", "tablet"),
        person("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
            "Firefox", "Linux", "desktop"),
        person("Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
            "Firefox", "Android", "mobile"),
        person("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
            "Edge", "Windows 10", "desktop"),
        person("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
            "Safari", "Mac OSX", "desktop"),
        person("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
            "SamsungBrowser", "Android", "mobile"),
        person("Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
            "Internet Explorer", "Windows 10", "desktop"),
        person("Opera/9.80 (Windows NT 6.1; U; en) Presto/2.10.289 Version/12.02",
            "Opera", "Windows 7", "desktop"),
        // A phone maker whose name ends in "bot".
        person("Mozilla/5.0 (Linux; Android 4.2.2; CUBOT C9+ Build/JDQ39) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/31.0.1650.59 Mobile Safari/537.36",
            "Chrome", "Android", "mobile"),
        // In-app browsers are people, even when the app also has a preview fetcher.
        person("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Safari Line/14.5.0",
            "Webview", "iPhone", "mobile"),
        person("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Snapchat/13.10.0.40 (like Safari/8617.2.4.10.8, panda)",
            "Safari", "iPhone", "mobile"),
        person("Mozilla/5.0 (Linux; Android 9; SHIELD Android TV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "Chrome", "Android", "other"),
        bot("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "Slackbot", Preview),
        bot("Twitterbot/1.0", "Twitterbot", Preview),
        bot("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "facebookexternalhit", Preview),
        bot("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "Discordbot", Preview),
        bot("TelegramBot (like TwitterBot)", "TelegramBot", Preview),
        bot("WhatsApp/2.23.20.0 A", "WhatsApp", Preview),
        bot("LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)", "LinkedInBot", Preview),
        bot("http.rb/5.1.1 (Mastodon/4.2.1; +https://mastodon.social/)", "Mastodon", Preview),
        bot("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
            "iMessage", Preview),
        bot("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 (compatible; BingPreview/1.0b)",
            "BingPreview", Scanner),
        bot("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Googlebot", Crawler),
        bot("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Googlebot", Crawler),
        bot("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bingbot", Crawler),
        bot("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
            "Applebot", Crawler),
        bot("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)", "GPTBot", Crawler),
        bot("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.6367.60 Safari/537.36",
            "HeadlessChrome", Crawler),
        bot("Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)", "MJ12bot", Crawler),
        bot("Zabbix", "Zabbix", Crawler),
        bot("curl/8.5.0", "curl", Tool),
        bot("Wget/1.21.4", "Wget", Tool),
        bot("python-requests/2.31.0", "python-requests", Tool),
    ];

    #[test]
    fn real_agents_read_as_expected() {
        for case in CASES {
            let (agent, bot) = classify(Some(case.ua));
            let bot = bot.map(|b| (b.name, b.kind));
            assert_eq!(
                bot.as_ref().map(|(name, kind)| (name.as_str(), *kind)),
                case.bot,
                "bot of {}",
                case.ua
            );
            assert_eq!(
                agent.device_type, case.device_type,
                "device type of {}",
                case.ua
            );
            if case.bot.is_none() {
                assert_eq!(
                    agent.browser.as_deref(),
                    case.browser,
                    "browser of {}",
                    case.ua
                );
                assert_eq!(agent.os.as_deref(), case.os, "os of {}", case.ua);
            }
        }
    }

    #[test]
    fn browser_fields_carry_versions_and_vendor() {
        let (agent, bot) = classify(Some(CASES[0].ua));
        assert_eq!(bot, None);
        assert_eq!(
            agent,
            Agent {
                browser: Some("Chrome".into()),
                browser_version: Some("124.0.0.0".into()),
                os: Some("Windows 10".into()),
                os_version: Some("NT 10.0".into()),
                category: Some("pc".into()),
                vendor: Some("Google".into()),
                device_type: "desktop".into(),
            }
        );
    }

    #[test]
    fn a_missing_or_empty_agent_is_a_tool_with_nothing_known() {
        for ua in [None, Some(""), Some("   "), Some("-")] {
            let (agent, bot) = classify(ua);
            assert_eq!(
                bot,
                Some(Bot {
                    name: NO_USER_AGENT.into(),
                    kind: Tool
                }),
                "{ua:?}"
            );
            assert_eq!(
                agent,
                Agent {
                    device_type: "bot".into(),
                    ..Agent::default()
                },
                "{ua:?}"
            );
        }
    }

    #[test]
    fn unknown_values_become_none_and_a_text_browser_is_a_person() {
        let (agent, bot) = classify(Some(
            "Lynx/2.8.9rel.1 libwww-FM/2.14 SSL-MM/1.4.1 OpenSSL/3.0.2",
        ));
        assert_eq!(bot, None);
        assert_eq!(
            agent,
            Agent {
                device_type: "other".into(),
                ..Agent::default()
            }
        );
    }

    #[test]
    fn a_bot_keeps_what_woothee_read_but_not_its_placeholder_name() {
        let (agent, _) = classify(Some(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.6367.60 Safari/537.36",
        ));
        assert_eq!(agent.browser.as_deref(), Some("Chrome"));
        assert_eq!(agent.os.as_deref(), Some("Linux"));
        let (agent, _) = classify(Some(
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        ));
        assert_eq!(agent.browser, None);
        assert_eq!(agent.category.as_deref(), Some("crawler"));
    }
}
