//! Sending a turn's requests: up to `concurrency` at once, each in a task of its own,
//! so that one slow receiver's answer does not hold up the next request.
//!
//! Whatever becomes of a task, its events are settled ([`super::settle`]): an answer or
//! a failure is settled as it comes back; a task that panics is a failed attempt with
//! the panic's message (retried, dead-lettered after the last attempt), never a lost
//! event; and on a stop, requests in flight get `delivery.stop_timeout` to finish,
//! after which they are cut short and, with the requests not yet started, recorded as
//! retries due at once. So a stop takes at most that long here, whatever receivers,
//! token endpoints or name servers do. An answer that holds the webhook (a back-off,
//! a 410) stops the turn from sending more: the requests not yet started are recorded
//! as retries due when the hold ends, their attempts unchanged.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::task::JoinSet;

use super::attempt::Outcome;
use super::health::Hold;
use super::member::Member;
use super::settle::Ending;
use super::webhook::Webhook;
use crate::shutdown::Stop;

impl Webhook {
    /// Sends `groups` (a request each) and settles each as it ends. Returns whether
    /// every event's outcome was recorded, so that the caller may move the cursor.
    pub(super) async fn dispatch(
        self: &Arc<Self>,
        groups: Vec<Vec<Member>>,
        stop: &mut Stop,
    ) -> bool {
        let mut waiting: VecDeque<Arc<Vec<Member>>> = groups.into_iter().map(Arc::new).collect();
        let mut running: JoinSet<Outcome> = JoinSet::new();
        let mut sent: HashMap<tokio::task::Id, Arc<Vec<Member>>> = HashMap::new();
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut cut_short = false;
        let mut recorded = true;
        loop {
            // Held (disabled or backing off by an answer of this turn): nothing more is
            // sent; what waits is rescheduled below.
            while deadline.is_none()
                && !stop.is_stopped()
                && running.len() < self.cfg.concurrency
                && self.holding().is_none()
            {
                let Some(group) = waiting.pop_front() else {
                    break;
                };
                let (me, members) = (self.clone(), group.clone());
                let task = running.spawn(async move { me.send(&members).await });
                sent.insert(task.id(), group);
            }
            if running.is_empty() {
                break;
            }
            let until_deadline = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                joined = running.join_next_with_id() => {
                    let Some(joined) = joined else { break };
                    let (id, ending) = match joined {
                        Ok((id, outcome)) => (id, Ending::Answered(outcome)),
                        Err(e) if e.is_panic() => {
                            let id = e.id();
                            (id, Ending::Failed(panic_message(e.into_panic())))
                        }
                        Err(e) => (e.id(), Ending::Interrupted { started: true }),
                    };
                    if let Some(group) = sent.remove(&id) {
                        recorded &= self.settle(&group, ending);
                    }
                }
                _ = stop.stopped(), if deadline.is_none() => {
                    deadline = Some(tokio::time::Instant::now() + self.delivery.stop_timeout);
                }
                _ = until_deadline, if !cut_short => {
                    tracing::warn!(
                        webhook = self.id(),
                        requests = running.len(),
                        stop_timeout = %crate::logging::duration(self.delivery.stop_timeout),
                        "stopping: requests still in flight are cut short and retried after the restart"
                    );
                    running.abort_all();
                    cut_short = true;
                }
            }
        }
        let hold = self.holding();
        for group in waiting {
            recorded &= match hold {
                Some(h) if !stop.is_stopped() => {
                    let (due, why) = match h {
                        Hold::Backoff(left) => (
                            self.queue.clock().now_ms() + left.as_millis() as u64,
                            "not sent: the webhook is backing off",
                        ),
                        Hold::Disabled => (
                            self.queue.clock().now_ms(),
                            "not sent: the webhook is disabled",
                        ),
                    };
                    self.reschedule(&group, due, why)
                }
                _ => self.settle(&group, Ending::Interrupted { started: false }),
            };
        }
        self.flush_log();
        recorded
    }
}

/// The text of a panic, for the delivery log and the dead letter.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    format!("the delivery task failed (a bug in clicktap): {text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::formats::fixtures;
    use crate::deliver::log::DeliveryLog;
    use crate::deliver::webhook::Parts;
    use crate::metrics::Metrics;
    use crate::queue::Record;
    use std::time::Duration;

    /// A webhook of id `id` to `url` on a real queue holding three events.
    fn webhook(id: &str, url: &str) -> (tempfile::TempDir, Arc<Webhook>, Vec<Member>) {
        let toml = format!(
            "[delivery]\nallow_http = true\nallow_private_targets = true\nstop_timeout = \"100ms\"\n\
             [[webhooks]]\nid = \"{id}\"\nurl = \"{url}\"\ntimeout = \"60s\"\n"
        );
        let cfg = crate::config::from_str(&toml, std::path::Path::new("test.toml")).unwrap();
        let (dir, queue) = crate::queue::tests::open_for_tests();
        let json = serde_json::to_vec(&fixtures::chrome_mac_london()).unwrap();
        let records = vec![
            Record {
                at_ms: 1,
                bytes: &json
            };
            3
        ];
        queue.append(&records).unwrap();
        let metrics = Arc::new(Metrics::new());
        let notices = crate::notice::Notices::channel(metrics.clone()).0;
        let parts = Parts {
            notices,
            log: DeliveryLog::open(&queue, 1 << 20, metrics.clone()).unwrap(),
            client: crate::deliver::client(true).unwrap(),
            links: Default::default(),
            metrics,
            delivery: cfg.delivery.clone(),
            queue: queue.clone(),
        };
        let w = Arc::new(Webhook::new(cfg.webhooks[0].clone(), &parts).unwrap());
        let members = queue
            .read(0, 10)
            .unwrap()
            .into_iter()
            .map(|s| Member::read(s, false).unwrap())
            .collect();
        (dir, w, members)
    }

    #[tokio::test]
    async fn a_task_that_panics_is_a_failed_attempt_and_its_events_are_retried() {
        let (_dir, w, members) = webhook("test-panic", "http://127.0.0.1:9/");
        let (_stopper, mut stop) = Stop::new();
        let groups = members.into_iter().map(|m| vec![m]).collect();
        assert!(
            w.dispatch(groups, &mut stop).await,
            "every outcome recorded"
        );
        let (due, _) = w.state.due(u64::MAX / 2, 10).unwrap();
        assert_eq!(due.len(), 3, "each event waits for another attempt");
        for (_, p) in &due {
            assert_eq!(p.attempts, 1);
            assert!(
                p.last_error.contains("injected by a test"),
                "{}",
                p.last_error
            );
        }
        let failures = w
            .metrics
            .delivery_attempts
            .with_label_values(&["test-panic", "failure"])
            .get();
        assert_eq!(failures, 3);
        assert_eq!(w.health().state, crate::deliver::health::State::Alerting);
    }

    #[tokio::test]
    async fn a_stop_cuts_requests_in_flight_short_and_records_them_as_retries() {
        // Accepts connections and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", silent.local_addr().unwrap());
        let (_dir, w, members) = webhook("hangs", &url);
        let (stopper, mut stop) = Stop::new();
        // Three requests, one at a time: one in flight at the stop, two not started.
        let w = Arc::new(Webhook {
            cfg: crate::config::WebhookConfig {
                concurrency: 1,
                ..w.cfg.clone()
            },
            ..Arc::try_unwrap(w).ok().unwrap()
        });
        let groups = members.into_iter().map(|m| vec![m]).collect();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            stopper.stop();
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        let started = std::time::Instant::now();
        assert!(w.dispatch(groups, &mut stop).await);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let (due, _) = w.state.due(u64::MAX / 2, 10).unwrap();
        assert_eq!(due.len(), 3);
        let reasons: Vec<&str> = due.iter().map(|d| d.1.last_error.as_str()).collect();
        assert_eq!(
            reasons.iter().filter(|r| r.contains("cut short")).count(),
            1,
            "{reasons:?}"
        );
        assert_eq!(
            reasons.iter().filter(|r| r.contains("not sent")).count(),
            2,
            "{reasons:?}"
        );
        assert!(
            due.iter().all(|d| d.1.attempts == 0),
            "no answer, no attempt counted"
        );
        let interrupted = w
            .metrics
            .delivery_interrupted
            .with_label_values(&["hangs"])
            .get();
        assert_eq!(interrupted, 3);
        drop(silent);
    }
}
