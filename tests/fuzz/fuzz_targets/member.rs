//! What delivery reads of a stored event: `Member::read` on arbitrary bytes, as the
//! queue would hand them over, and the bodies rendered from whatever it accepts.
//!
//! What must hold: never a panic; bytes that are not a stored event are an error, and
//! what is read wholly is also read in part (the head is a subset of the event, the
//! same values). An accepted event renders in the native format from its stored bytes
//! to a JSON object by the RFC's grammar (see `common::json_grammar`), and in every
//! format from the whole event to a JSON object serde_json parses.

#![no_main]

mod common;

use clicktap::deliver::formats::{Envelope, Item, render};
use clicktap::deliver::member::Member;
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, UNIX_EPOCH};

fuzz_target!(|data: &[u8]| {
    let head = Member::read(common::stored(7, data), false);
    let whole = Member::read(common::stored(7, data), true);
    if let Ok(w) = &whole {
        let h = head.as_ref().expect("what is read wholly is read in part");
        assert_eq!(w.head.id, h.head.id);
        assert_eq!(w.head.timestamp, h.head.timestamp);
        assert_eq!(w.head.kind, h.head.kind);
        assert_eq!(w.head.link.host, h.head.link.host);
        assert_eq!(w.head.link.path, h.head.link.path);
    }
    let Ok(member) = head else { return };
    let _ = member.event_age();
    for max_events in [1, 10] {
        common::json_grammar(&common::native_body(
            member.stored.bytes(),
            None,
            max_events,
        ));
    }
    let Ok(whole) = whole else { return };
    let event = whole.event.as_ref().expect("read wholly");
    for format in common::FORMATS {
        let webhook = common::webhook(format, "crm", "W0123456789", Some("secret"), 1);
        let env = Envelope {
            webhook: &webhook,
            message_id: "msg",
            sent_at: UNIX_EPOCH + Duration::from_secs(1_795_749_957),
        };
        let out = render(format, &[Item { event, link: None }], &env);
        common::json_object(format, &out.body);
    }
});
