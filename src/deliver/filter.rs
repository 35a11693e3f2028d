//! Which events a webhook receives, and the link metadata that fills vendor fields.

use std::sync::Arc;

use super::member::Head;
use crate::config::{Filter, LinkMeta};

/// The `[[links]]` entries, shared by every webhook and swapped whole by a reload.
pub type Links = Arc<arc_swap::ArcSwap<Vec<LinkMeta>>>;

pub use crate::config::bare_host;

/// The first `[[links]]` entry matching the event's link.
pub fn link_meta<'a>(links: &'a [LinkMeta], e: &Head) -> Option<&'a LinkMeta> {
    let host = bare_host(&e.link.host);
    links.iter().find(|l| l.matches(host, &e.link.path))
}

pub fn selects(f: &Filter, e: &Head, meta: Option<&LinkMeta>) -> bool {
    if !f.events.contains(&e.event_type()) {
        return false;
    }
    if !f.kinds.contains(&e.kind) {
        return false;
    }
    let host = bare_host(&e.link.host);
    if !f.hosts.is_empty() && !f.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return false;
    }
    if !f.paths.is_empty() && !f.paths.iter().any(|g| g.is_match(&e.link.path)) {
        return false;
    }
    // Unmarked events (the window off when they were stored, or an older clicktap) pass:
    // the filter never drops a click it cannot tell is a repeat.
    if f.unique && e.unique == Some(false) {
        return false;
    }
    if !f.tags.is_empty() {
        let tags = meta.map(|m| m.tags.as_slice()).unwrap_or_default();
        if !f.tags.iter().any(|t| tags.contains(t)) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::click::{ClickKind, EventType};
    use crate::deliver::member::HeadLink;

    #[test]
    fn a_unique_filter_drops_repeats_and_passes_unmarked_events() {
        let filter = |unique| Filter {
            events: EventType::ALL.into_iter().collect(),
            hosts: Vec::new(),
            paths: Vec::new(),
            tags: Vec::new(),
            kinds: ClickKind::ALL.into_iter().collect(),
            unique,
        };
        let head = |unique| Head {
            id: uuid::Uuid::nil(),
            timestamp: String::new(),
            event_type: None,
            kind: ClickKind::Human,
            link: HeadLink {
                host: "sho.rt".into(),
                path: "/r/x".into(),
            },
            unique,
        };
        for marked in [Some(true), Some(false), None] {
            assert!(selects(&filter(false), &head(marked), None));
        }
        assert!(selects(&filter(true), &head(Some(true)), None));
        assert!(!selects(&filter(true), &head(Some(false)), None));
        // Stored with the window off, or before clicktap marked events.
        assert!(selects(&filter(true), &head(None), None));
    }

    #[test]
    fn ports_are_not_part_of_the_host() {
        assert_eq!(bare_host("sho.rt:8080"), "sho.rt");
        assert_eq!(bare_host("sho.rt"), "sho.rt");
        assert_eq!(bare_host("[::1]:8080"), "::1");
    }
}
