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
//! 0.3-0.4 µs in a release build and allocates nothing (`cost_per_agent` in
//! tests/agent_corpus.rs measures it).

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

/// Where a needle must sit in the agent for its rule to apply.
#[derive(Debug, Clone, Copy)]
enum At {
    Anywhere,
    /// At the start of the agent: for app names whose in-app browsers carry the same name
    /// later in a browser string.
    Start,
    /// Not followed by a letter: `bot` in `FooBot/1.0` or `bot.html`, not in `Bottle`.
    WordEnd,
    /// `@` inside an e-mail address: `name@example.com`, not `ICS@ROM_04.2012` (a build
    /// name) or `; @TAB-7` (a device).
    Email,
    /// `compatible;` followed by anything but a browser or a system that browsers write
    /// there (`MSIE`, `Konqueror`, `Linux` of the Kindle's NetFront, phone browsers).
    CompatibleNotBrowser,
}

impl At {
    fn accepts(self, agent: &[u8], start: usize, end: usize) -> bool {
        match self {
            At::Anywhere => true,
            At::Start => start == 0,
            At::WordEnd => agent.get(end).is_none_or(|b| !b.is_ascii_alphabetic()),
            At::Email => is_email_at(agent, start),
            At::CompatibleNotBrowser => {
                let rest = agent.get(end..).unwrap_or_default();
                let rest = match rest.iter().position(|b| *b != b' ') {
                    Some(skip) => &rest[skip..],
                    None => return true,
                };
                !COMPATIBLE_BROWSERS.iter().any(|browser| {
                    rest.get(..browser.len())
                        .is_some_and(|head| head.eq_ignore_ascii_case(browser.as_bytes()))
                })
            }
        }
    }
}

/// What browsers write after `compatible;`, lower case.
#[rustfmt::skip]
const COMPATIBLE_BROWSERS: &[&str] = &[
    "msie", "konqueror", "linux", "windows", "opera", "netfront", "teleca", "polaris", "icab",
];

/// How a matching rule names the bot.
#[derive(Debug, Clone, Copy)]
enum Name {
    Fixed(&'static str),
    /// The word the needle sits in.
    Word,
    /// The agent's product, see [`product_name`].
    Product,
}

#[derive(Debug, Clone, Copy)]
struct Rule {
    needle: &'static str,
    at: At,
    name: Name,
    /// `None`: a word that looks like a bot and is not one; it wins over the generic rules.
    kind: Option<BotKind>,
}

use BotKind::{Crawler, Preview, Scanner, Tool};

/// A known product, matched anywhere.
const fn named(needle: &'static str, name: &'static str, kind: BotKind) -> Rule {
    Rule {
        needle,
        at: At::Anywhere,
        name: Name::Fixed(name),
        kind: Some(kind),
    }
}

/// A known product, matched only at the start of the agent.
const fn leading(needle: &'static str, name: &'static str, kind: BotKind) -> Rule {
    Rule {
        needle,
        at: At::Start,
        name: Name::Fixed(name),
        kind: Some(kind),
    }
}

/// A generic word, named by the word it sits in.
const fn word(needle: &'static str, kind: BotKind) -> Rule {
    Rule {
        needle,
        at: At::Anywhere,
        name: Name::Word,
        kind: Some(kind),
    }
}

/// A generic word that must end a word, named by the word it ends.
const fn word_end(needle: &'static str, kind: BotKind) -> Rule {
    Rule {
        needle,
        at: At::WordEnd,
        name: Name::Word,
        kind: Some(kind),
    }
}

/// A word that contains a generic needle but belongs to browsers and devices.
const fn not_a_bot(needle: &'static str) -> Rule {
    Rule {
        needle,
        at: At::Anywhere,
        name: Name::Fixed(OTHER),
        kind: None,
    }
}

/// A sign no browser shows, named by the agent's product.
const fn sign(needle: &'static str, at: At) -> Rule {
    Rule {
        needle,
        at,
        name: Name::Product,
        kind: Some(Crawler),
    }
}

#[rustfmt::skip]
static RULES: &[Rule] = &[
    // Agents that name another bot as well: Apple's iMessage sends three names at once,
    // Telegram says it is "like TwitterBot", Snapchat's preview says "bot; snapchat", LINE
    // and KakaoTalk append their names to facebookexternalhit.
    named("facebookexternalhit/1.1 Facebot Twitterbot/1.0", "iMessage", Preview),
    named("TelegramBot", "TelegramBot", Preview),
    named("Snap URL Preview", "Snapchat", Preview),
    named("line-poker", "Line", Preview),
    named("kakaotalk-scrap", "KakaoTalk", Preview),
    // Link previews of chat apps and social networks.
    named("Slackbot", "Slackbot", Preview),
    named("Slack-ImgProxy", "Slack-ImgProxy", Preview),
    named("Twitterbot", "Twitterbot", Preview),
    named("facebookexternalhit", "facebookexternalhit", Preview),
    named("facebookcatalog", "facebookcatalog", Preview),
    named("Facebot", "Facebot", Preview),
    named("meta-externalfetcher", "meta-externalfetcher", Preview),
    named("meta-externalads", "meta-externalads", Crawler),
    named("meta-externalagent", "meta-externalagent", Crawler),
    named("Discordbot", "Discordbot", Preview),
    leading("WhatsApp", "WhatsApp", Preview),
    named("LinkedInBot", "LinkedInBot", Preview),
    named("Mastodon/", "Mastodon", Preview),
    named("Pleroma", "Pleroma", Preview),
    named("Akkoma", "Akkoma", Preview),
    named("Misskey", "Misskey", Preview),
    named("GoToSocial", "GoToSocial", Preview),
    named("Friendica", "Friendica", Preview),
    leading("Bluesky", "Bluesky", Preview),
    named("Cardyb", "Bluesky", Preview),
    named("SkypeUriPreview", "SkypeUriPreview", Preview),
    named("MicrosoftPreview", "MicrosoftPreview", Preview),
    named("Microsoft Office Existence Discovery", "Microsoft Office", Preview),
    named("Iframely", "Iframely", Preview),
    named("Embedly", "Embedly", Preview),
    named("redditbot", "redditbot", Preview),
    named("Pinterestbot", "Pinterestbot", Preview),
    leading("Pinterest/0.", "Pinterestbot", Preview),
    named("vkShare", "vkShare", Preview),
    leading("Viber", "Viber", Preview),
    named("Google-PageRenderer", "Google-PageRenderer", Preview),
    named("Google Web Preview", "Google Web Preview", Preview),
    named("Mattermost-Bot", "Mattermost", Preview),
    named("Rocket.Chat", "Rocket.Chat", Preview),
    named("ZulipURLPreview", "Zulip", Preview),
    named("Discourse Forum Onebox", "Discourse", Preview),
    named("Nuzzel", "Nuzzel", Preview),
    named("GoogleImageProxy", "GoogleImageProxy", Preview),
    named("PrintFriendly", "PrintFriendly", Preview),
    named("Quora Link Preview", "Quora", Preview),
    named("XING-contenttabreceiver", "XING", Preview),
    leading("Tumblr/", "Tumblr", Preview),
    named("Asana/", "Asana", Preview),
    // AI assistants fetching a link a person gave them in a chat.
    named("ChatGPT-User", "ChatGPT-User", Preview),
    named("Claude-User", "Claude-User", Preview),
    named("Perplexity-User", "Perplexity-User", Preview),
    named("Manus-User", "Manus-User", Preview),
    // Mail-link and URL-safety scanners.
    named("BingPreview", "BingPreview", Scanner),
    named("Google-Safety", "Google-Safety", Scanner),
    named("Barracuda", "Barracuda", Scanner),
    named("Proofpoint", "Proofpoint", Scanner),
    named("Mimecast", "Mimecast", Scanner),
    named("Symantec", "Symantec", Scanner),
    named("TrendMicro", "Trend Micro", Scanner),
    named("Trend Micro", "Trend Micro", Scanner),
    named("Sophos", "Sophos", Scanner),
    named("Websense", "Forcepoint", Scanner),
    named("Forcepoint", "Forcepoint", Scanner),
    named("Zscaler", "Zscaler", Scanner),
    named("McAfee", "McAfee", Scanner),
    named("Fortinet", "Fortinet", Scanner),
    named("FortiGuard", "Fortinet", Scanner),
    named("Bitdefender", "Bitdefender", Scanner),
    named("Kaspersky", "Kaspersky", Scanner),
    named("urlscan", "urlscan", Scanner),
    named("VirusTotal", "VirusTotal", Scanner),
    named("Cisco Umbrella", "Cisco Umbrella", Scanner),
    // Search engines, AI crawlers, SEO tools.
    named("Googlebot", "Googlebot", Crawler),
    named("AdsBot-Google", "AdsBot-Google", Crawler),
    named("Mediapartners-Google", "Mediapartners-Google", Crawler),
    named("Storebot-Google", "Storebot-Google", Crawler),
    named("GoogleOther", "GoogleOther", Crawler),
    named("Google-InspectionTool", "Google-InspectionTool", Crawler),
    named("Google-Extended", "Google-Extended", Crawler),
    named("Google-Read-Aloud", "Google-Read-Aloud", Crawler),
    named("Google Favicon", "Google Favicon", Crawler),
    named("Google-HTTP-Java-Client", "Google-HTTP-Java-Client", Tool),
    named("Google-Apps-Script", "Google-Apps-Script", Tool),
    word("-Google", Crawler),
    word("Google-", Crawler),
    named("google-xrawler", "google-xrawler", Crawler),
    named("GoogleAssociationService", "GoogleAssociationService", Crawler),
    named("Chrome-Lighthouse", "Lighthouse", Crawler),
    named("bingbot", "bingbot", Crawler),
    named("msnbot", "msnbot", Crawler),
    named("adidxbot", "bingbot", Crawler),
    named("Applebot", "Applebot", Crawler),
    named("Apple-PubSub", "Apple-PubSub", Crawler),
    named("YandexBot", "YandexBot", Crawler),
    named("Baiduspider", "Baiduspider", Crawler),
    named("DuckDuckBot", "DuckDuckBot", Crawler),
    named("DuckAssistBot", "DuckAssistBot", Crawler),
    named("Yahoo! Slurp", "Yahoo! Slurp", Crawler),
    named("AhrefsBot", "AhrefsBot", Crawler),
    named("AhrefsSiteAudit", "AhrefsBot", Crawler),
    named("SemrushBot", "SemrushBot", Crawler),
    named("MJ12bot", "MJ12bot", Crawler),
    named("DotBot", "DotBot", Crawler),
    named("PetalBot", "PetalBot", Crawler),
    named("SeznamBot", "SeznamBot", Crawler),
    named("Sogou ", "Sogou", Crawler),
    named("Exabot", "Exabot", Crawler),
    named("coccoc", "coccocbot", Crawler),
    named("Daumoa", "Daumoa", Crawler),
    named("Yeti/", "Naver Yeti", Crawler),
    named("ia_archiver", "ia_archiver", Crawler),
    named("archive.org_bot", "archive.org_bot", Crawler),
    named("GPTBot", "GPTBot", Crawler),
    named("OAI-SearchBot", "OAI-SearchBot", Crawler),
    named("ClaudeBot", "ClaudeBot", Crawler),
    named("Claude-SearchBot", "Claude-SearchBot", Crawler),
    named("anthropic-ai", "anthropic-ai", Crawler),
    named("PerplexityBot", "PerplexityBot", Crawler),
    named("CCBot", "CCBot", Crawler),
    named("Bytespider", "Bytespider", Crawler),
    named("Amazonbot", "Amazonbot", Crawler),
    named("cohere-ai", "cohere-ai", Crawler),
    named("Diffbot", "Diffbot", Crawler),
    named("YouBot", "YouBot", Crawler),
    named("Spawning-AI", "Spawning-AI", Crawler),
    // Headless browsers, monitors, page testers.
    named("HeadlessChrome", "HeadlessChrome", Crawler),
    named("PhantomJS", "PhantomJS", Crawler),
    named("PTST/", "WebPageTest", Crawler),
    named("GTmetrix", "GTmetrix", Crawler),
    named("Pingdom", "Pingdom", Crawler),
    named("UptimeRobot", "UptimeRobot", Crawler),
    named("StatusCake", "StatusCake", Crawler),
    named("Site24x7", "Site24x7", Crawler),
    named("Datadog", "Datadog", Crawler),
    named("NewRelicSynthetics", "New Relic", Crawler),
    named("RuxitSynthetic", "Dynatrace", Crawler),
    named("Catchpoint", "Catchpoint", Crawler),
    named("Zabbix", "Zabbix", Crawler),
    named("Nagios", "Nagios", Crawler),
    named("check_http", "Nagios", Crawler),
    named("Blackbox Exporter", "Prometheus", Crawler),
    named("NodePing", "NodePing", Crawler),
    named("updown.io", "updown.io", Crawler),
    named("Uptimia", "Uptimia", Crawler),
    named("uptrends", "Uptrends", Crawler),
    named("Panopta", "Panopta", Crawler),
    named("Rigor", "Rigor", Crawler),
    named("Ghost Inspector", "Ghost Inspector", Crawler),
    named("Silktide", "Silktide", Crawler),
    named("Siteimprove", "Siteimprove", Crawler),
    named("DareBoost", "DareBoost", Crawler),
    named("Hardenize", "Hardenize", Crawler),
    named("SecurityHeaders", "SecurityHeaders", Crawler),
    named("SSL Labs", "SSL Labs", Crawler),
    named("Netcraft", "Netcraft", Crawler),
    named("Cloudflare", "Cloudflare", Crawler),
    named("Amazon CloudFront", "Amazon CloudFront", Crawler),
    named("Hotjar", "Hotjar", Crawler),
    named("Criticalcss", "Criticalcss", Crawler),
    named("Critical Path CSS", "Penthouse", Crawler),
    named("Miniature.io", "Miniature.io", Crawler),
    named("splash Version", "Splash", Crawler),
    named("Datanyze", "Datanyze", Crawler),
    named("Playwright", "Playwright", Crawler),
    named("Selenium", "Selenium", Crawler),
    named("AppInsights", "AppInsights", Crawler),
    named("ThousandEyes", "ThousandEyes", Crawler),
    named("LinkTiger", "LinkTiger", Crawler),
    named("MarketGoo", "MarketGoo", Crawler),
    named("PWABuilder", "PWABuilder", Crawler),
    named("Scope3", "Scope3", Crawler),
    named("adbeat", "adbeat", Crawler),
    named("ips-agent", "ips-agent", Crawler),
    named("BIGLOTRON", "BIGLOTRON", Crawler),
    named("NewsNow", "NewsNow", Crawler),
    named("ModularConnector", "ManageWP", Crawler),
    leading("PS_Daily", "PS_Daily", Crawler),
    named("zgrab", "zgrab", Crawler),
    named("masscan", "masscan", Crawler),
    named("Nuclei", "Nuclei", Crawler),
    named("acunetix", "Acunetix", Crawler),
    named("OpenVAS", "OpenVAS", Crawler),
    named("WhatWeb", "WhatWeb", Crawler),
    named("Nmap", "Nmap", Crawler),
    named("sqlmap", "sqlmap", Crawler),
    named("Nikto", "Nikto", Crawler),
    named("ZmEu", "ZmEu", Crawler),
    named("watchTowr", "watchTowr", Crawler),
    named("l9explore", "LeakIX", Crawler),
    named("HTTrack", "HTTrack", Crawler),
    named("SiteSucker", "SiteSucker", Crawler),
    named("WebCopier", "WebCopier", Crawler),
    named("larbin", "larbin", Crawler),
    named("binlar", "larbin", Crawler),
    named("Nutch", "Nutch", Crawler),
    named("Scrapy", "Scrapy", Crawler),
    named("colly", "colly", Crawler),
    named("newspaper/", "newspaper", Crawler),
    named("PostRank", "PostRank", Crawler),
    named("MetaURI", "MetaURI", Crawler),
    named("Zapier", "Zapier", Crawler),
    named("Integromat", "Make", Crawler),
    named("Make/production", "Make", Crawler),
    named("WordPress/", "WordPress", Crawler),
    named("Hatena", "Hatena", Crawler),
    leading("Feedly", "Feedly", Crawler),
    named("Inoreader", "Inoreader", Crawler),
    named("NewsBlur", "NewsBlur", Crawler),
    named("Tiny Tiny RSS", "Tiny Tiny RSS", Crawler),
    named("NextCloud-News", "NextCloud-News", Crawler),
    // Command-line clients and HTTP libraries.
    named("curl/", "curl", Tool),
    named("Wget", "Wget", Tool),
    named("python-requests", "python-requests", Tool),
    named("Python-urllib", "Python-urllib", Tool),
    named("aiohttp", "aiohttp", Tool),
    named("python-httpx", "httpx", Tool),
    named("httpx", "httpx", Tool),
    named("urllib3", "urllib3", Tool),
    named("PycURL", "PycURL", Tool),
    named("Go-http-client", "Go-http-client", Tool),
    named("okhttp", "okhttp", Tool),
    named("Apache-HttpClient", "Apache-HttpClient", Tool),
    named("Apache-HttpAsyncClient", "Apache-HttpClient", Tool),
    named("Commons-HttpClient", "Apache-HttpClient", Tool),
    named("Java/", "Java", Tool),
    named("AHC/", "AsyncHttpClient", Tool),
    named("Jetty/", "Jetty", Tool),
    named("libwww-perl", "libwww-perl", Tool),
    leading("lwp-", "libwww-perl", Tool),
    leading("LWP::", "libwww-perl", Tool),
    named("WWW-Mechanize", "WWW-Mechanize", Tool),
    named("node-fetch", "node-fetch", Tool),
    named("axios/", "axios", Tool),
    named("undici", "undici", Tool),
    leading("node", "node", Tool),
    leading("got ", "got", Tool),
    named("PostmanRuntime", "PostmanRuntime", Tool),
    named("insomnia/", "Insomnia", Tool),
    named("HTTPie", "HTTPie", Tool),
    named("PowerShell", "PowerShell", Tool),
    leading("Dalvik/", "Dalvik", Tool),
    named("CFNetwork/", "CFNetwork", Tool),
    leading("Dart/", "Dart", Tool),
    leading("Deno/", "Deno", Tool),
    leading("Bun/", "Bun", Tool),
    named("GuzzleHttp", "Guzzle", Tool),
    leading("PHP/", "PHP", Tool),
    leading("Ruby", "Ruby", Tool),
    named("Faraday", "Faraday", Tool),
    named("rest-client", "rest-client", Tool),
    named("http.rb", "http.rb", Tool),
    named("reqwest", "reqwest", Tool),
    named("aws-sdk", "aws-sdk", Tool),
    // Browsers and devices whose names contain a generic word.
    not_a_bot("CUBOT"),
    // Lynx names the library it is built on.
    not_a_bot("libwww-FM"),
    // Generic words.
    word_end("bot", Crawler),
    word("crawl", Crawler),
    word("spider", Crawler),
    word("slurp", Crawler),
    word("scrap", Crawler),
    word("fetch", Crawler),
    word("monitor", Crawler),
    word("uptime", Crawler),
    word("synthetic", Crawler),
    word("headless", Crawler),
    word("lighthouse", Crawler),
    word("archiv", Crawler),
    word("indexer", Crawler),
    word("sitemap", Crawler),
    word("checker", Crawler),
    word("validator", Crawler),
    word("verif", Crawler),
    word("scan", Crawler),
    word("probe", Crawler),
    word("survey", Crawler),
    word("audit", Crawler),
    word("resolver", Crawler),
    word("retriever", Crawler),
    word("extractor", Crawler),
    word("screenshot", Crawler),
    word("capture", Crawler),
    word("webhook", Crawler),
    word("favicon", Crawler),
    word("daemon", Crawler),
    word("parser", Crawler),
    word("feed", Crawler),
    word("rss", Crawler),
    word("watchdog", Crawler),
    word("watcher", Crawler),
    word("robot", Crawler),
    word("linkcheck", Crawler),
    word("optimizer", Crawler),
    word("preview", Preview),
    word("unfurl", Preview),
    word("httpclient", Tool),
    word("http-client", Tool),
    word("http_client", Tool),
    word("http client", Tool),
    word("python", Tool),
    word("java", Tool),
    word("libwww", Tool),
    // Signs no browser shows.
    sign("http://", At::Anywhere),
    sign("https://", At::Anywhere),
    sign("www.", At::Anywhere),
    sign("mailto:", At::Anywhere),
    sign("@", At::Email),
    sign("(at)", At::Anywhere),
    sign("[at]", At::Anywhere),
    sign("compatible;", At::CompatibleNotBrowser),
];

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
fn is_email_at(agent: &[u8], at: usize) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn found(ua: &str) -> Option<(&str, BotKind)> {
        detect(ua).map(|d| (d.name, d.kind))
    }

    #[test]
    fn a_specific_name_wins_over_a_later_rule_found_earlier_in_the_agent() {
        // Apache-HttpClient and the URL come later in the table than LinkedInBot.
        assert_eq!(
            found(
                "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)"
            ),
            Some(("LinkedInBot", Preview))
        );
        assert_eq!(
            found("TelegramBot (like TwitterBot)"),
            Some(("TelegramBot", Preview))
        );
    }

    #[test]
    fn matching_ignores_case() {
        assert_eq!(found("SLACKBOT 1.0"), Some(("Slackbot", Preview)));
        assert_eq!(
            found("Mozilla/5.0 (compatible; GoogleBot/2.1)"),
            Some(("Googlebot", Crawler))
        );
    }

    #[test]
    fn a_generic_word_names_the_bot_by_the_word_it_sits_in() {
        assert_eq!(
            found("Mozilla/5.0 (compatible; FooBot/1.2; +https://example.com/bot)"),
            Some(("FooBot", Crawler))
        );
        assert_eq!(
            found("acme-link-preview/3"),
            Some(("acme-link-preview", Preview))
        );
        assert_eq!(found("AcmeHttpClient/2.0"), Some(("AcmeHttpClient", Tool)));
    }

    #[test]
    fn a_bare_generic_word_names_the_bot_by_the_agent_product() {
        assert_eq!(found("Acme/2.0 (Crawler)"), Some(("Acme", Crawler)));
        assert_eq!(
            found("Mozilla/5.0 (compatible; Acme; +http://acme.example/bot.html)"),
            Some(("Acme", Crawler))
        );
    }

    #[test]
    fn bot_must_end_a_word_and_cubot_phones_are_not_bots() {
        assert_eq!(found("Bottle/1.0"), None);
        assert_eq!(
            found(
                "Mozilla/5.0 (Linux; Android 4.2.2; CUBOT ONE Build/JDQ39) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/27.0.1453.90 Mobile Safari/537.36"
            ),
            None
        );
    }

    #[test]
    fn app_names_count_only_where_the_fetcher_puts_them() {
        assert_eq!(found("WhatsApp/2.23.20.0 A"), Some(("WhatsApp", Preview)));
        assert_eq!(found("Viber"), Some(("Viber", Preview)));
        assert_eq!(
            found("facebookexternalhit/1.1;line-poker/1.0"),
            Some(("Line", Preview))
        );
        let in_app = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.0.0 Mobile Safari/537.36 Line/14.5.0 Viber WhatsApp";
        assert_eq!(found(in_app), None);
    }

    #[test]
    fn an_email_address_is_a_sign_but_an_at_in_a_build_name_is_not() {
        assert_eq!(
            found(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/96.0 Safari/537.36 (Test from Acme, contact ops@acme.example)"
            ),
            Some((OTHER, Crawler))
        );
        assert_eq!(
            found(
                "Mozilla/5.0 (Linux; Android 4.0.3; ARCHOS 101G9 Build/ICS@ROM_04.06.2012) AppleWebKit/535.19 (KHTML, like Gecko) Chrome/18.0.1025.166 Safari/535.19"
            ),
            None
        );
        assert_eq!(
            found(
                "Mozilla/5.0 (Linux; Android 4.1.1; @TAB-NINE-X2-B Build/JRO03H) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/28.0.1500.63 Safari/537.36"
            ),
            None
        );
    }

    #[test]
    fn compatible_is_a_sign_unless_a_browser_follows() {
        assert_eq!(
            found("Mozilla/5.0 (compatible; Dataprovider.com)"),
            Some(("Dataprovider.com", Crawler))
        );
        assert_eq!(
            found("Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; Trident/6.0)"),
            None
        );
        assert_eq!(
            found("Mozilla/5.0 (compatible; Konqueror/4.5; Linux) KHTML/4.5.4 (like Gecko)"),
            None
        );
        assert_eq!(
            found(
                "Mozilla/4.0 (compatible; Linux 2.6.10) NetFront/3.3 Kindle/1.0 (screen 600x800)"
            ),
            None
        );
    }

    #[test]
    fn mainstream_browsers_match_nothing() {
        for ua in [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
            "",
        ] {
            assert_eq!(found(ua), None, "{ua}");
        }
    }

    #[test]
    fn product_name_takes_the_leading_or_compatible_token() {
        assert_eq!(product_name("Klaviyo/1.0"), "Klaviyo");
        assert_eq!(product_name("Hello World"), "Hello");
        assert_eq!(
            product_name("Mozilla/5.0 (compatible; Uptimia; www.uptimia.com)"),
            "Uptimia"
        );
        assert_eq!(
            product_name("Mozilla/5.0 (compatible; +https://www.acme.example/bot)"),
            "acme.example"
        );
        assert_eq!(product_name("Mozilla/5.0 (X11; Linux x86_64)"), OTHER);
        assert_eq!(product_name("(((("), OTHER);
        assert_eq!(product_name(&"a".repeat(100)).len(), MAX_NAME);
    }

    #[test]
    fn non_browser_agents_are_bots_unless_they_are_phone_or_text_browsers() {
        assert_eq!(non_browser("Zabbix").map(|d| d.name), Some("Zabbix"));
        assert_eq!(
            non_browser("SendGrid Event API").map(|d| d.name),
            Some("SendGrid")
        );
        assert_eq!(
            non_browser("Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
            None
        );
        assert_eq!(
            non_browser(
                "Alcatel-OT-800/1.0 Profile/MIDP-2.0 Configuration/CLDC-1.1 ObigoInternetBrowser/Q05A"
            ),
            None
        );
        assert_eq!(non_browser("w3m/0.5.3+git20230121"), None);
        assert_eq!(non_browser(""), None);
    }

    #[test]
    fn names_never_split_a_multibyte_character() {
        for ua in [
            "ÄÖÜbot/1.0 ÿ",
            "crawlerü",
            "éé@éé.com",
            "Mozilla/5.0 (compatible; ü)",
        ] {
            let _ = detect(ua);
            let _ = product_name(ua);
            let _ = non_browser(ua);
        }
    }
}
