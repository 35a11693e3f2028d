//! Which events travel in one request.
//!
//! New events go in order, `per_request` at a time. Retries keep the request they
//! failed in: the events of one failed request are sent together again, so that the
//! message id (derived from them) and a batch's `key` stay what the receiver saw, and
//! deduplication on `webhook-id` works across retries.

use std::collections::HashMap;

use super::member::Member;

/// New events, in order, `per` to a request.
pub fn new_events(members: Vec<Member>, per: usize) -> Vec<Vec<Member>> {
    let per = per.max(1);
    let mut groups: Vec<Vec<Member>> = Vec::new();
    for m in members {
        match groups.last_mut() {
            Some(g) if g.len() < per => g.push(m),
            _ => groups.push(vec![m]),
        }
    }
    groups
}

/// Due retries: those that failed in the same request together (at most `per`), in
/// the order they come; retries recorded without their request's id in order, `per`
/// to a request.
pub fn retries(members: Vec<Member>, per: usize) -> Vec<Vec<Member>> {
    let per = per.max(1);
    let mut groups: Vec<Vec<Member>> = Vec::new();
    let mut open: HashMap<Option<String>, usize> = HashMap::new();
    for m in members {
        let key = m.message.clone();
        match open.get(&key) {
            Some(&i) if groups[i].len() < per => groups[i].push(m),
            _ => {
                open.insert(key, groups.len());
                groups.push(vec![m]);
            }
        }
    }
    groups
}
