//! The delivery log as the admin API lists it: newest first, filtered by webhook, by
//! outcome or status code, and by time, with the success rate of what is listed.

use serde_json::json;

use super::answer::{Answer, bad_request, ok};
use super::request::Request;
use crate::deliver::Handle;
use crate::deliver::log::Attempt;

/// Most entries one listing gives.
pub const MAX_LIMIT: u64 = 10_000;

/// `status=`: `success`, `failure`, or a status code.
enum Status {
    Any,
    Success,
    Failure,
    Code(u16),
}

impl Status {
    fn parse(v: Option<&str>) -> Result<Status, String> {
        Ok(match v {
            None => Status::Any,
            Some("success") => Status::Success,
            Some("failure") => Status::Failure,
            Some(code) => Status::Code(
                code.parse()
                    .ok()
                    .filter(|c| (100..600).contains(c))
                    .ok_or_else(|| {
                        format!("status={code:?}: give success, failure or a status code")
                    })?,
            ),
        })
    }

    fn keeps(&self, a: &Attempt) -> bool {
        let delivered = a.answer.error.is_none();
        match self {
            Status::Any => true,
            Status::Success => delivered,
            Status::Failure => !delivered,
            Status::Code(c) => a.answer.status == Some(*c),
        }
    }
}

/// `GET /api/v1/deliveries` (every webhook, or `webhook=`) and
/// `GET /api/v1/webhooks/{id}/deliveries`.
pub fn list(d: &Handle, req: &Request, webhook: Option<&str>) -> Answer {
    let limit = match req.number("limit") {
        Ok(n) => n.unwrap_or(100).min(MAX_LIMIT) as usize,
        Err(e) => return bad_request(&e),
    };
    let since = match req.number("since_ms") {
        Ok(n) => n.unwrap_or(0),
        Err(e) => return bad_request(&e),
    };
    let status = match Status::parse(req.param("status")) {
        Ok(s) => s,
        Err(e) => return bad_request(&e),
    };
    let ids: Vec<String> = match webhook.or(req.param("webhook")) {
        Some(id) => vec![id.to_string()],
        None => d.webhooks().iter().map(|w| w.id().to_string()).collect(),
    };
    let mut list: Vec<Attempt> = ids
        .iter()
        .flat_map(|id| d.log.list_where(id, since, limit, |a| status.keeps(a)))
        .collect();
    // Each webhook's list is newest first; merged, the newest of all come first.
    list.sort_by_key(|a| std::cmp::Reverse(a.at_ms));
    list.truncate(limit);
    let delivered = list.iter().filter(|a| a.answer.error.is_none()).count();
    let rate = (!list.is_empty()).then(|| delivered as f64 / list.len() as f64);
    ok(&json!({ "deliveries": list, "success_rate": rate }))
}
