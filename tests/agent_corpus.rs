//! The user-agent classifier against public corpora (tests/data, sources in
//! tests/data/LICENSES.md): nearly every known crawler string is a bot, and no string of a
//! mainstream browser is.

use clicktap::enrich::agent::classify;
use serde::Deserialize;

#[derive(Deserialize)]
struct Crawler {
    pattern: String,
    #[serde(default)]
    instances: Vec<String>,
}

fn crawler_instances() -> Vec<(String, String)> {
    let text = include_str!("data/crawler-user-agents.json");
    let crawlers: Vec<Crawler> = serde_json::from_str(text).expect("crawler list parses");
    crawlers
        .into_iter()
        .flat_map(|c| {
            let pattern = c.pattern;
            c.instances.into_iter().map(move |i| (pattern.clone(), i))
        })
        .collect()
}

fn browser_agents() -> Vec<&'static str> {
    include_str!("data/browser-user-agents.txt")
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect()
}

#[test]
fn at_least_99_percent_of_known_crawler_strings_are_bots() {
    let instances = crawler_instances();
    assert!(
        instances.len() > 2000,
        "the crawler list lost its instances"
    );
    let misses: Vec<_> = instances
        .iter()
        .filter(|(_, ua)| classify(Some(ua)).1.is_none())
        .collect();
    for (pattern, ua) in &misses {
        println!("not flagged ({pattern}): {ua}");
    }
    let flagged = instances.len() - misses.len();
    let rate = flagged as f64 / instances.len() as f64;
    println!(
        "flagged {flagged} of {} crawler strings ({:.2}%)",
        instances.len(),
        rate * 100.0
    );
    assert!(
        rate >= 0.99,
        "only {:.2}% of crawler strings flagged",
        rate * 100.0
    );
}

#[test]
fn no_mainstream_browser_string_is_a_bot() {
    let agents = browser_agents();
    assert!(agents.len() > 3000, "the browser list lost its lines");
    let offenders: Vec<_> = agents
        .iter()
        .filter_map(|ua| classify(Some(ua)).1.map(|bot| (bot, ua)))
        .collect();
    for (bot, ua) in &offenders {
        println!("flagged as {} ({:?}): {ua}", bot.name, bot.kind);
    }
    assert!(
        offenders.is_empty(),
        "{} browser strings flagged as bots",
        offenders.len()
    );
}

#[test]
fn mainstream_browsers_get_a_browser_name_and_a_device_type() {
    for ua in browser_agents() {
        let (agent, _) = classify(Some(ua));
        assert!(agent.browser.is_some(), "no browser for {ua}");
        // "other" is right for the few TV boxes in the list.
        assert!(
            ["desktop", "mobile", "tablet", "other"].contains(&agent.device_type.as_str()),
            "device type {} for {ua}",
            agent.device_type
        );
    }
}

#[test]
fn device_types_follow_the_platform_in_the_browser_list() {
    for ua in browser_agents() {
        let expected = if ua.contains("iPad") {
            "tablet"
        } else if ua.contains("iPhone")
            || ua.contains("iPod")
            || (ua.contains("Android") && ua.contains("Mobile"))
        {
            "mobile"
        } else if ua.contains("Windows NT") || ua.contains("Macintosh") || ua.contains("X11;") {
            "desktop"
        } else {
            continue;
        };
        assert_eq!(classify(Some(ua)).0.device_type, expected, "{ua}");
    }
}
