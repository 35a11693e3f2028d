//! The two forwarding paths side by side: one corpus of visitors' requests and origins'
//! behaviours (the findings of issue 22, HTTP/1.0 and 1.1, HEAD, 204, 304 and 1xx
//! answers, unframed and chunked answers, early answers, closes at every step,
//! pipelining, slow senders and readers, stray bytes after an answer), each case run
//! through clicktap with `proxy.forwarding = "lean"` and with `"full"` (pingora-proxy) in
//! front of a recording origin. What the origin received (every request on every
//! connection, sorted, and the bytes after the last whole one) and what the visitor got
//! (each answer's status line, fields but `Date`, body, framing, and whether the
//! connection ended) must be the same on both paths, or the difference must be in
//! [`KNOWN`] with its reason; docs/proxy.md "Two forwarding paths" lists the same.
//!
//! The cases are in `tests/differential/corpus.rs`. One clicktap per path serves every
//! case of a configuration; the origin ends every upstream connection between cases and
//! waits until clicktap let go of it, and every case opens its own visitor connections,
//! so cases do not disturb each other.

mod common;
#[path = "differential/corpus.rs"]
mod corpus;

use common::exchange::{self, Got, Visitor};
use common::origin::{Act, Origin, Recorded};
use common::{Clicktap, Options};
use corpus::{Case, Op, Setup, WAIT, corpus, shared_routes};
use std::time::{Duration, Instant};

/// A difference between the paths that is known and accepted, with its reason.
struct Known {
    case: &'static str,
    side: Side,
    /// The difference shows in some runs only (it depends on which of two events on
    /// different connections comes first); otherwise a known difference that no longer
    /// shows fails the test, so that the list stays true.
    varies: bool,
    why: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// What the visitor got.
    Visitor,
    /// What the origin received.
    Origin,
}

/// Every difference between the paths; docs/proxy.md "Two forwarding paths" lists the same.
const KNOWN: &[Known] = &[
    Known {
        case: "pipelined_gets",
        side: Side::Visitor,
        varies: false,
        why: PIPELINING,
    },
    Known {
        case: "pipelined_gets",
        side: Side::Origin,
        varies: false,
        why: PIPELINING,
    },
    Known {
        case: "pipelined_post_then_get",
        side: Side::Visitor,
        varies: false,
        why: PIPELINING,
    },
    Known {
        case: "pipelined_post_then_get",
        side: Side::Origin,
        varies: false,
        why: PIPELINING,
    },
    Known {
        case: "pipelined_split_head",
        side: Side::Visitor,
        varies: false,
        why: PIPELINING,
    },
    Known {
        case: "pipelined_split_head",
        side: Side::Origin,
        varies: false,
        why: PIPELINING,
    },
    Known {
        case: "visitor_half_closes",
        side: Side::Visitor,
        // On a busy machine pingora-proxy sometimes has the answer before it notices the
        // close, and then answers as the lean path does.
        varies: true,
        why: HALF_CLOSE,
    },
    Known {
        case: "visitor_half_closes",
        side: Side::Origin,
        varies: true,
        why: HALF_CLOSE,
    },
];

const PIPELINING: &str = "pingora-proxy answers the first of pipelined requests and closes \
                          the connection; the lean path answers each in order (RFC 9112 \
                          §9.3.2)";
const HALF_CLOSE: &str = "pingora-proxy closes a connection whose visitor half-closed it \
                          after sending a request, mostly unanswered, and forwards the \
                          request or not depending on which it notices first; the lean path forwards \
                          and answers it (RFC 9112 §9.6 lets a client close its sending side \
                          and still read)";

/// What one path did with one case.
#[derive(Debug)]
struct Outcome {
    visitor: Vec<Got>,
    origin: Vec<String>,
    /// The bytes of each upstream connection, as received (shown, not compared).
    #[allow(dead_code)]
    raw: Vec<String>,
}

/// Runs the cases of `setup` through one clicktap on `path`, in order.
fn run(path: &str, setup: Setup) -> Vec<(&'static str, Outcome, Duration)> {
    let cases: Vec<Case> = corpus().into_iter().filter(|c| c.setup == setup).collect();
    let mut routes: Vec<(String, Vec<Act>)> = shared_routes()
        .into_iter()
        .map(|(p, a)| (p.to_string(), a))
        .collect();
    for c in corpus() {
        routes.extend(c.routes.into_iter().map(|(p, a)| (p.to_string(), a)));
    }
    let origin = Origin::start(routes);
    let dir = tempfile::tempdir().unwrap();
    let mut o = Options::default()
        .forwarding(path)
        .proxy(r#"upstream_read_timeout = "2s""#);
    if setup == Setup::NoReuse {
        o = o.proxy(r#"upstream_idle_timeout = "0s""#);
    }
    let ct = Clicktap::start(dir.path(), origin.addr, &o);
    cases
        .iter()
        .map(|case| {
            let started = Instant::now();
            let visitor = play(&ct, &origin, case);
            let recorded = origin.finish_case();
            let outcome = Outcome {
                visitor,
                origin: normalise(&recorded, case.conns),
                raw: recorded
                    .conns
                    .iter()
                    .map(|c| c.escape_ascii().to_string())
                    .collect(),
            };
            (case.name, outcome, started.elapsed())
        })
        .collect()
}

/// Plays a case's visitor; returns what it got at each answer.
fn play(ct: &Clicktap, origin: &Origin, case: &Case) -> Vec<Got> {
    let mut v = Visitor::connect(ct.proxy);
    let mut got = Vec::new();
    for op in &case.visitor {
        match op {
            Op::Send(b) => v.send(b),
            Op::Trickle(b, pause) => v.trickle(b, *pause),
            Op::Answer(to_head, wait, slowly) => got.push(v.answer(*to_head, *wait, *slowly)),
            Op::Interim => got.push(v.interim(WAIT)),
            Op::Skip(n) => v.read_some(*n, WAIT),
            Op::Shut => v.shut(),
            Op::Close => v = Visitor::connect(ct.proxy),
            Op::Heads(n, within) => {
                if !origin.wait_heads(*n, *within) {
                    got.push(Got::Silent {
                        partial: format!("the origin did not read {n} request heads"),
                    });
                }
            }
            Op::Pause(d) => std::thread::sleep(*d),
        }
    }
    got
}

/// What the origin received, comparable across paths: every request (head and body)
/// of every connection, sorted, then the bytes that followed the last whole request on
/// each connection that had any, the number of connections when it counts, and any
/// connection clicktap held on to after the origin closed its side.
fn normalise(r: &Recorded, conns: bool) -> Vec<String> {
    let mut requests = Vec::new();
    let mut tails = Vec::new();
    let mut used = 0;
    for bytes in r.conns.iter().filter(|b| !b.is_empty()) {
        used += 1;
        let (reqs, tail) = exchange::requests(bytes);
        requests.extend(reqs);
        if !tail.is_empty() {
            tails.push(format!("after the last request: {tail}"));
        }
    }
    requests.sort();
    tails.sort();
    requests.extend(tails);
    if conns {
        requests.push(format!("{used} connections"));
    }
    if r.lingering > 0 {
        requests.push(format!(
            "{} connections held after the origin closed",
            r.lingering
        ));
    }
    requests
}

#[test]
fn both_forwarding_paths_behave_alike() {
    let cases = corpus();
    let mut names = std::collections::HashSet::new();
    for c in &cases {
        assert!(names.insert(c.name), "two cases named {}", c.name);
    }
    for k in KNOWN {
        assert!(names.contains(k.case), "KNOWN names no case: {}", k.case);
    }
    let mut failures = Vec::new();
    for setup in [Setup::Plain, Setup::NoReuse] {
        let lean = std::thread::spawn(move || run("lean", setup));
        let full = std::thread::spawn(move || run("full", setup));
        let (lean, full) = (lean.join().unwrap(), full.join().unwrap());
        for ((name, l, lt), (_, f, ft)) in lean.into_iter().zip(full) {
            eprintln!(
                "{name:<40} lean {:>6} ms  full {:>6} ms",
                lt.as_millis(),
                ft.as_millis()
            );
            // DIFFERENTIAL_SHOW=<case>[,<case>] or =all prints both outcomes in full.
            let show = std::env::var("DIFFERENTIAL_SHOW").unwrap_or_default();
            if show == "all" || show.split(',').any(|c| c == name) {
                eprintln!("--- {name}, lean:\n{l:#?}\n--- {name}, full:\n{f:#?}");
            }
            for (side, differs) in [
                (Side::Visitor, l.visitor != f.visitor),
                (Side::Origin, l.origin != f.origin),
            ] {
                let known = KNOWN.iter().find(|k| k.case == name && k.side == side);
                let (known, varies) = (known.is_some(), known.is_some_and(|k| k.varies));
                if differs && !known {
                    let (a, b) = match side {
                        Side::Visitor => (format!("{:#?}", l.visitor), format!("{:#?}", f.visitor)),
                        Side::Origin => (format!("{:#?}", l.origin), format!("{:#?}", f.origin)),
                    };
                    failures.push(format!(
                        "{name}: what the {side:?} side saw differs\n--- lean:\n{a}\n--- full:\n{b}"
                    ));
                } else if known && !differs && !varies {
                    let why = KNOWN
                        .iter()
                        .find(|k| k.case == name && k.side == side)
                        .map_or("", |k| k.why);
                    failures.push(format!(
                        "{name}: the {side:?} side no longer differs ({why}): remove it from KNOWN and docs/proxy.md"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
