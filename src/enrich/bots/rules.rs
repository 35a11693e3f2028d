//! The bot rules, in priority order: specific names first, then generic words, then
//! signs no browser shows.

use super::{OTHER, is_email_at};
use crate::click::BotKind;

/// Where a needle must sit in the agent for its rule to apply.
#[derive(Debug, Clone, Copy)]
pub(super) enum At {
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
    pub(super) fn accepts(self, agent: &[u8], start: usize, end: usize) -> bool {
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
pub(super) enum Name {
    Fixed(&'static str),
    /// The word the needle sits in.
    Word,
    /// The agent's product, see [`product_name`].
    Product,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Rule {
    pub(super) needle: &'static str,
    pub(super) at: At,
    pub(super) name: Name,
    /// `None`: a word that looks like a bot and is not one; it wins over the generic rules.
    pub(super) kind: Option<BotKind>,
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
pub(super) static RULES: &[Rule] = &[
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
