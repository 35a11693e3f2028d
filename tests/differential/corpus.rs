//! The corpus of the differential test: each case a visitor's steps and the origin's
//! scripts for the paths it asks for. Cases name what they exercise; the findings of
//! issue 22 they cover are named beside them.

use super::common::origin::Act;
use std::time::Duration;

/// One step of a visitor.
pub enum Op {
    Send(Vec<u8>),
    /// Sends one byte at a time, this far apart.
    Trickle(Vec<u8>, Duration),
    /// Reads the next answer: to a HEAD or not, waiting at most this long, slowly or not.
    Answer(bool, Duration, bool),
    /// Reads the head of an interim answer the visitor asked for (`Expect: 100-continue`).
    Interim,
    /// Reads at least this many bytes, and forgets them.
    Skip(usize),
    /// Half-closes: the visitor sends nothing more.
    Shut,
    /// Closes the visitor's connection; a later step opens a new one.
    Close,
    /// Waits (at most this long) until the origin has read this many request heads.
    Heads(usize, Duration),
    /// A visitor who does nothing for a while.
    Pause(Duration),
}

/// Which clicktap configuration a case runs on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Setup {
    /// The defaults, with `upstream_read_timeout = "2s"` to keep stalls short.
    Plain,
    /// `upstream_idle_timeout = "0s"`: no upstream connection is reused.
    NoReuse,
}

pub struct Case {
    pub name: &'static str,
    pub setup: Setup,
    /// The origin's script for paths starting with each prefix (any other path: 200 `ok`).
    pub routes: Vec<(&'static str, Vec<Act>)>,
    pub visitor: Vec<Op>,
    /// Whether the number of upstream connections counts (it does not where a path
    /// may pool differently without anyone noticing).
    pub conns: bool,
}

pub const WAIT: Duration = Duration::from_secs(5);

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: sho.rt\r\n\r\n").into_bytes()
}

fn get10(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.0\r\nHost: sho.rt\r\n\r\n").into_bytes()
}

fn head(path: &str) -> Vec<u8> {
    format!("HEAD {path} HTTP/1.1\r\nHost: sho.rt\r\n\r\n").into_bytes()
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn send(bytes: impl Into<Vec<u8>>) -> Op {
    Op::Send(bytes.into())
}

fn answer() -> Op {
    Op::Answer(false, WAIT, false)
}

fn answer_within(wait: Duration) -> Op {
    Op::Answer(false, wait, false)
}

/// Another request on the same connection, and its answer: shows whether the
/// connection stayed open and in step.
fn probe() -> [Op; 2] {
    [send(get("/probe")), answer()]
}

fn write(bytes: &str) -> Act {
    Act::Write(bytes.as_bytes().to_vec())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
const HELLO: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Origin: a\r\nContent-Length: 5\r\n\r\nhello";
const STRAY: &str =
    "HTTP/1.1 302 Found\r\nLocation: http://evil.example/stale\r\nContent-Length: 0\r\n\r\n";
const HINTS: &str = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n";

/// Routes every case may use.
pub fn shared_routes() -> Vec<(&'static str, Vec<Act>)> {
    vec![
        ("/basic", vec![Act::Body, write(HELLO)]),
        (
            "/echo",
            vec![
                Act::Body,
                write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nthank"),
            ],
        ),
        (
            "/r/",
            vec![
                Act::Body,
                write(
                    "HTTP/1.1 302 Found\r\nLocation: https://example.com/x\r\nContent-Length: 0\r\n\r\n",
                ),
            ],
        ),
    ]
}

pub fn corpus() -> Vec<Case> {
    let plain = |name, routes, visitor: Vec<Op>| Case {
        name,
        setup: Setup::Plain,
        routes,
        visitor,
        conns: false,
    };
    let then_probe = |mut ops: Vec<Op>| {
        ops.extend(probe());
        ops
    };
    let large: String = (0..1 << 20)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let mut cases = vec![
        // HTTP/1.1 and 1.0, the ordinary exchanges.
        plain(
            "get",
            vec![],
            then_probe(vec![send(get("/basic")), answer()]),
        ),
        plain(
            "get_http10",
            vec![],
            then_probe(vec![send(get10("/basic")), answer()]),
        ),
        plain(
            "get_http10_keepalive",
            vec![],
            then_probe(vec![
                send("GET /basic HTTP/1.0\r\nHost: sho.rt\r\nConnection: keep-alive\r\n\r\n"),
                answer(),
            ]),
        ),
        plain(
            "get_connection_close",
            vec![],
            then_probe(vec![
                send("GET /basic HTTP/1.1\r\nHost: sho.rt\r\nConnection: close\r\n\r\n"),
                answer(),
            ]),
        ),
        plain(
            "redirect",
            vec![],
            then_probe(vec![send(get("/r/abc?utm_source=x")), answer()]),
        ),
        plain(
            "post",
            vec![],
            then_probe(vec![send(post("/echo", "a=1&b=2")), answer()]),
        ),
        plain(
            "post_http10",
            vec![],
            then_probe(vec![
                send("POST /echo HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc"),
                answer(),
            ]),
        ),
        plain(
            "get_with_body",
            vec![],
            then_probe(vec![
                send("GET /echo HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 3\r\n\r\nabc"),
                answer(),
            ]),
        ),
        plain(
            "hop_by_hop_fields",
            vec![],
            then_probe(vec![
                send(
                    "GET /basic HTTP/1.1\r\nHost: sho.rt\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic eDp5\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
                ),
                answer(),
            ]),
        ),
        plain(
            "chunked_request",
            vec![],
            then_probe(vec![
                send(
                    "POST /echo HTTP/1.1\r\nHost: sho.rt\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                ),
                answer(),
            ]),
        ),
        plain(
            "expect_100_continue",
            vec![],
            then_probe(vec![
                send(
                    "POST /echo HTTP/1.1\r\nHost: sho.rt\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
                ),
                Op::Interim,
                send("abc"),
                answer(),
            ]),
        ),
        // HEAD, 204, 304 and interim answers.
        plain(
            "head",
            vec![(
                "/head",
                vec![write(
                    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n",
                )],
            )],
            then_probe(vec![send(head("/head")), Op::Answer(true, WAIT, false)]),
        ),
        plain(
            "answer_204",
            vec![(
                "/no-content",
                vec![
                    Act::Body,
                    write("HTTP/1.1 204 No Content\r\nX-Origin: a\r\n\r\n"),
                ],
            )],
            then_probe(vec![send(get("/no-content")), answer()]),
        ),
        plain(
            "answer_304",
            vec![(
                "/not-modified",
                vec![
                    Act::Body,
                    write("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n"),
                ],
            )],
            then_probe(vec![
                send("GET /not-modified HTTP/1.1\r\nHost: sho.rt\r\nIf-None-Match: \"v1\"\r\n\r\n"),
                answer(),
            ]),
        ),
        plain(
            "interim_103",
            vec![("/hints", vec![Act::Body, write(HINTS), write(HELLO)])],
            then_probe(vec![send(get("/hints")), answer()]),
        ),
        plain(
            "interim_100_unasked",
            vec![(
                "/unasked-100",
                vec![
                    Act::Body,
                    write("HTTP/1.1 100 Continue\r\n\r\n"),
                    write(HELLO),
                ],
            )],
            then_probe(vec![send(get("/unasked-100")), answer()]),
        ),
        // Finding 8: an HTTP/1.0 visitor gets neither chunking nor interim answers.
        plain(
            "http10_interim_103",
            vec![],
            then_probe(vec![send(get10("/hints")), answer()]),
        ),
        plain(
            "chunked_answer",
            vec![(
                "/chunked",
                vec![
                    Act::Body,
                    write(
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                    ),
                ],
            )],
            then_probe(vec![send(get("/chunked")), answer()]),
        ),
        plain(
            "chunked_answer_with_trailers",
            vec![(
                "/trailers",
                vec![
                    Act::Body,
                    write(
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\n",
                    ),
                ],
            )],
            then_probe(vec![send(get("/trailers")), answer()]),
        ),
        plain(
            "head_to_chunked_answer",
            vec![(
                "/head-chunked",
                vec![write(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                )],
            )],
            then_probe(vec![
                send(head("/head-chunked")),
                Op::Answer(true, WAIT, false),
            ]),
        ),
        plain(
            "answer_304_http10",
            vec![],
            then_probe(vec![send(get10("/not-modified")), answer()]),
        ),
        plain(
            "http10_chunked_answer",
            vec![],
            then_probe(vec![send(get10("/chunked")), answer()]),
        ),
        // Finding 9: an answer framed by the end of the connection.
        plain(
            "unframed_answer",
            vec![(
                "/unframed",
                vec![
                    Act::Body,
                    write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"),
                    Act::Close,
                ],
            )],
            then_probe(vec![send(get("/unframed")), answer()]),
        ),
        plain(
            "http10_unframed_answer",
            vec![],
            then_probe(vec![send(get10("/unframed")), answer()]),
        ),
        plain(
            "origin_http10_answer",
            vec![(
                "/old-origin",
                vec![
                    Act::Body,
                    write("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"),
                    Act::Close,
                ],
            )],
            then_probe(then_probe(vec![send(get("/old-origin")), answer()])),
        ),
        plain(
            "origin_connection_close",
            vec![(
                "/origin-close",
                vec![
                    Act::Body,
                    write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"),
                    Act::Close,
                ],
            )],
            then_probe(then_probe(vec![send(get("/origin-close")), answer()])),
        ),
        // Early answers: the origin answers before it reads the body.
        plain(
            "early_answer",
            vec![(
                "/early",
                vec![
                    write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly"),
                    Act::Body,
                ],
            )],
            then_probe(vec![
                send("POST /early HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 10\r\n\r\n"),
                answer_within(ms(1000)),
                send("0123456789"),
                answer_within(ms(1500)),
            ]),
        ),
        plain(
            "early_refusal_then_close",
            vec![(
                "/too-large",
                vec![
                    write(
                        "HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ),
                    Act::Body,
                    Act::Close,
                ],
            )],
            then_probe(vec![send(post("/too-large", &"x".repeat(1000))), answer()]),
        ),
        // Closes at every step, on the origin's side.
        plain(
            "origin_closes_before_answer",
            vec![("/vanish", vec![Act::Body, Act::Close])],
            then_probe(vec![send(get("/vanish")), answer()]),
        ),
        plain(
            "origin_closes_before_answer_reused",
            vec![],
            then_probe(vec![
                send(get("/basic")),
                answer(),
                send(get("/vanish")),
                answer(),
            ]),
        ),
        plain(
            "origin_closes_after_head",
            vec![(
                "/cut-head",
                vec![
                    Act::Body,
                    write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"),
                    Act::Close,
                ],
            )],
            then_probe(vec![send(get("/cut-head")), answer()]),
        ),
        plain(
            "origin_closes_mid_chunk",
            vec![(
                "/cut-chunk",
                vec![
                    Act::Body,
                    write(
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n wo",
                    ),
                    Act::Close,
                ],
            )],
            then_probe(vec![send(get("/cut-chunk")), answer()]),
        ),
        plain(
            "origin_stalls",
            vec![("/stall", vec![Act::Body, Act::Hang])],
            then_probe(vec![send(get("/stall")), answer_within(ms(10_000))]),
        ),
        // Finding 7: an interim answer, then nothing.
        plain(
            "interim_then_close",
            vec![(
                "/hint-then-vanish",
                vec![Act::Body, write(HINTS), Act::Close],
            )],
            then_probe(vec![send(get("/hint-then-vanish")), answer()]),
        ),
        // Finding 2: a POST reaches the origin once, whatever the origin does.
        plain(
            "post_origin_closes_unanswered",
            vec![("/post-vanish", vec![Act::Body, Act::Close])],
            then_probe(vec![send(post("/post-vanish", "pay=1")), answer()]),
        ),
        plain(
            "post_origin_closes_unanswered_reused",
            vec![],
            then_probe(vec![
                send(get("/basic")),
                answer(),
                send(post("/post-vanish", "pay=1")),
                answer(),
            ]),
        ),
        plain(
            "post_origin_stalls_reused",
            vec![("/post-stall", vec![Act::Body, Act::Hang])],
            then_probe(vec![
                send(get("/basic")),
                answer(),
                send(post("/post-stall", "pay=1")),
                answer_within(ms(10_000)),
            ]),
        ),
        plain(
            "post_invalid_answer_reused",
            vec![(
                "/nul",
                vec![
                    Act::Body,
                    write("HTTP/1.1 200 OK\r\nX-Bad: a\0b\r\nContent-Length: 2\r\n\r\nok"),
                ],
            )],
            then_probe(vec![
                send(get("/basic")),
                answer(),
                send(post("/nul", "pay=1")),
                answer(),
            ]),
        ),
        plain(
            "post_unasked_101_reused",
            vec![(
                "/switch",
                vec![
                    Act::Body,
                    write(
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                    ),
                    Act::Close,
                ],
            )],
            then_probe(vec![
                send(get("/basic")),
                answer(),
                send(post("/switch", "pay=1")),
                answer(),
            ]),
        ),
        plain(
            "put_origin_closes_unanswered_reused",
            vec![],
            then_probe(vec![
                send(get("/basic")),
                answer(),
                send("PUT /post-vanish HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 5\r\n\r\npay=1"),
                answer(),
            ]),
        ),
        plain(
            "post_with_idempotency_key_origin_closes_reused",
            vec![],
            then_probe(vec![
                send(get("/basic")),
                answer(),
                send(
                    "POST /post-vanish HTTP/1.1\r\nHost: sho.rt\r\nIdempotency-Key: k-1\r\nContent-Length: 5\r\n\r\npay=1",
                ),
                answer(),
            ]),
        ),
        plain(
            "get_origin_stalls_reused",
            vec![],
            then_probe(vec![
                send(get("/basic")),
                answer(),
                send(get("/stall")),
                answer_within(ms(10_000)),
            ]),
        ),
        // Finding 1: bytes after an answer are never the next visitor's answer.
        plain(
            "stray_answer_after_200",
            vec![(
                "/stray",
                vec![Act::Body, Act::Write(format!("{OK}{STRAY}").into_bytes())],
            )],
            then_probe(then_probe(vec![send(get("/stray")), answer()])),
        ),
        plain(
            "stray_answer_later",
            vec![(
                "/stray-later",
                vec![Act::Body, write(OK), Act::Sleep(ms(50)), write(STRAY)],
            )],
            then_probe(then_probe(vec![
                send(get("/stray-later")),
                answer(),
                Op::Pause(ms(300)),
            ])),
        ),
        plain(
            "body_after_head_answer",
            vec![("/legacy-head", vec![write(HELLO)])],
            then_probe(then_probe(vec![
                send(head("/legacy-head")),
                Op::Answer(true, WAIT, false),
            ])),
        ),
        plain(
            "body_after_head_answer_later",
            vec![(
                "/legacy-head-later",
                vec![
                    write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
                    Act::Sleep(ms(50)),
                    write("hello"),
                ],
            )],
            then_probe(then_probe(vec![
                send(head("/legacy-head-later")),
                Op::Answer(true, WAIT, false),
                Op::Pause(ms(300)),
            ])),
        ),
        plain(
            "body_after_204_later",
            vec![(
                "/legacy-204-later",
                vec![
                    Act::Body,
                    write("HTTP/1.1 204 No Content\r\n\r\n"),
                    Act::Sleep(ms(50)),
                    write("hello"),
                ],
            )],
            then_probe(then_probe(vec![
                send(get("/legacy-204-later")),
                answer(),
                Op::Pause(ms(300)),
            ])),
        ),
        plain(
            "body_after_204",
            vec![(
                "/legacy-204",
                vec![Act::Body, write("HTTP/1.1 204 No Content\r\n\r\nhello")],
            )],
            then_probe(then_probe(vec![send(get("/legacy-204")), answer()])),
        ),
        plain(
            "body_after_304",
            vec![(
                "/legacy-304",
                vec![Act::Body, write("HTTP/1.1 304 Not Modified\r\n\r\nhello")],
            )],
            then_probe(then_probe(vec![send(get("/legacy-304")), answer()])),
        ),
        plain(
            "post_after_body_after_204",
            vec![],
            then_probe(vec![
                send(get("/legacy-204")),
                answer(),
                send(post("/echo", "pay=1")),
                answer(),
            ]),
        ),
        // Pipelining.
        plain(
            "pipelined_gets",
            vec![],
            then_probe(vec![
                send([get("/basic"), get("/r/second")].concat()),
                answer(),
                answer(),
            ]),
        ),
        plain(
            "pipelined_post_then_get",
            vec![],
            then_probe(vec![
                send([post("/echo", "a=1"), get("/basic")].concat()),
                answer(),
                answer(),
            ]),
        ),
        // Finding 6: the next head split across reads.
        plain(
            "pipelined_split_head",
            vec![],
            then_probe(vec![
                send([get("/basic"), b"GET /r/split HTTP/1.1\r\nHo".to_vec()].concat()),
                answer(),
                Op::Pause(ms(2500)),
                send("st: sho.rt\r\n\r\n"),
                answer(),
            ]),
        ),
        // Slow senders and readers.
        plain(
            "slow_head",
            vec![],
            then_probe(vec![Op::Trickle(get("/basic"), ms(20)), answer()]),
        ),
        plain(
            "slow_body",
            vec![],
            then_probe(vec![
                send("POST /echo HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 8\r\n\r\n"),
                Op::Trickle(b"slowbody".to_vec(), ms(150)),
                answer(),
            ]),
        ),
        plain(
            "slow_origin",
            vec![(
                "/slow-origin",
                vec![
                    Act::Body,
                    Act::Sleep(ms(300)),
                    write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"),
                    Act::Sleep(ms(300)),
                    write("world"),
                ],
            )],
            then_probe(vec![send(get("/slow-origin")), answer()]),
        ),
        plain(
            "large_answer_slow_reader",
            vec![(
                "/large",
                vec![
                    Act::Body,
                    Act::Write(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{large}",
                            large.len()
                        )
                        .into_bytes(),
                    ),
                ],
            )],
            then_probe(vec![
                send(get("/large")),
                Op::Answer(false, ms(20_000), true),
            ]),
        ),
        // Closes at every step, on the visitor's side.
        plain(
            "visitor_closes_before_answer",
            vec![(
                "/slow-answer",
                vec![Act::Body, Act::Sleep(ms(300)), write(OK)],
            )],
            then_probe(vec![
                send(get("/slow-answer")),
                Op::Heads(1, WAIT),
                Op::Close,
            ]),
        ),
        plain(
            "visitor_closes_mid_body",
            vec![],
            then_probe(vec![
                send("POST /echo HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 10\r\n\r\nabc"),
                Op::Heads(1, ms(1000)),
                Op::Close,
            ]),
        ),
        plain(
            "visitor_closes_mid_answer",
            vec![],
            then_probe(vec![send(get("/large")), Op::Skip(100), Op::Close]),
        ),
        plain(
            "visitor_half_closes",
            vec![],
            // pingora-proxy may forward the request after it has closed the visitor's
            // connection; on a busy machine that came more than the origin's quiet
            // interval later and was counted in the next case. The pause keeps it here.
            vec![send(get("/basic")), Op::Shut, answer(), Op::Pause(ms(1000))],
        ),
        // Finding 10 and other heads a proxy must refuse or pass on exactly.
        plain(
            "host_with_space",
            vec![],
            then_probe(vec![
                send("GET /basic HTTP/1.1\r\nHost: sho.rt x\r\n\r\n"),
                answer(),
            ]),
        ),
        plain(
            "no_host_http11",
            vec![],
            then_probe(vec![send("GET /basic HTTP/1.1\r\n\r\n"), answer()]),
        ),
        plain(
            "two_identical_content_lengths",
            vec![],
            then_probe(vec![
                send(
                    "POST /echo HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
                ),
                answer(),
            ]),
        ),
        plain(
            "content_length_list",
            vec![],
            then_probe(vec![
                send("POST /echo HTTP/1.1\r\nHost: sho.rt\r\nContent-Length: 3, 3\r\n\r\nabc"),
                answer(),
            ]),
        ),
        plain(
            "absolute_form_target",
            vec![],
            then_probe(vec![
                send("GET http://sho.rt/basic HTTP/1.1\r\nHost: sho.rt\r\n\r\n"),
                answer(),
            ]),
        ),
        plain(
            "double_spaces_in_request_line",
            vec![],
            then_probe(vec![
                send("GET  /basic  HTTP/1.1\r\nHost: sho.rt\r\n\r\n"),
                answer(),
            ]),
        ),
        plain(
            "header_line_over_8k",
            vec![],
            then_probe(vec![
                send(format!(
                    "GET /basic HTTP/1.1\r\nHost: sho.rt\r\nX-Long: {}\r\n\r\n",
                    "v".repeat(9000)
                )),
                answer(),
            ]),
        ),
        plain(
            "over_96_header_lines",
            vec![],
            then_probe(vec![
                send(format!(
                    "GET /basic HTTP/1.1\r\nHost: sho.rt\r\n{}\r\n",
                    (0..100)
                        .map(|i| format!("X-{i}: v\r\n"))
                        .collect::<String>()
                )),
                answer(),
            ]),
        ),
    ];
    // Finding 4: with no reuse, every request has its own upstream connection.
    cases.push(Case {
        name: "no_reuse_three_gets",
        setup: Setup::NoReuse,
        routes: vec![],
        // A visitor who pauses between requests: the full path's pool drops an idle
        // connection at once (with no pause, the next request can win the race).
        visitor: then_probe(vec![
            send(get("/basic")),
            answer(),
            Op::Pause(ms(50)),
            send(get("/r/two")),
            answer(),
            Op::Pause(ms(50)),
        ]),
        conns: true,
    });
    cases
}
