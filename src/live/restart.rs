//! Which settings a running clicktap cannot take: the listeners, the threads, the
//! queue, the upstream connection, the sinks. A reload that changes one of them is refused, naming
//! each, and the running configuration stays; a restart or an upgrade (`clicktap run
//! --upgrade`) applies them. Everything else (webhooks, links, QR and page rules, GeoIP,
//! trusted proxies, enrichment's privacy settings and unique window, delivery's settings,
//! the admin token, the log level)
//! a reload applies in place.

use crate::config::Config;

/// The keys whose values differ between `old` and `new` and need a new process.
pub fn keys(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut differ = |differs: bool, key: &'static str| {
        if differs {
            out.push(key);
        }
    };
    let (o, n) = (&old.proxy, &new.proxy);
    differ(o.listen != n.listen, "proxy.listen");
    differ(o.upstream_name != n.upstream_name, "proxy.upstream");
    differ(o.upstream_tls != n.upstream_tls, "proxy.upstream_tls");
    differ(o.upstream_sni != n.upstream_sni, "proxy.upstream_sni");
    differ(
        o.upstream_verify != n.upstream_verify,
        "proxy.upstream_verify",
    );
    differ(o.upstream_ca != n.upstream_ca, "proxy.upstream_ca");
    differ(o.capture != n.capture, "proxy.capture");
    differ(
        o.capture_statuses != n.capture_statuses,
        "proxy.capture_statuses",
    );
    differ(o.threads != n.threads, "proxy.threads");
    differ(o.work_stealing != n.work_stealing, "proxy.work_stealing");
    differ(o.listener_tasks != n.listener_tasks, "proxy.listener_tasks");
    differ(
        o.upstream_keepalive_pool != n.upstream_keepalive_pool,
        "proxy.upstream_keepalive_pool",
    );
    differ(
        o.upstream_connect_timeout != n.upstream_connect_timeout,
        "proxy.upstream_connect_timeout",
    );
    differ(
        o.upstream_read_timeout != n.upstream_read_timeout,
        "proxy.upstream_read_timeout",
    );
    differ(
        o.upstream_idle_timeout != n.upstream_idle_timeout,
        "proxy.upstream_idle_timeout",
    );
    differ(o.grace_period != n.grace_period, "proxy.grace_period");
    differ(
        o.shutdown_timeout != n.shutdown_timeout,
        "proxy.shutdown_timeout",
    );
    let (o, n) = (&old.enrich, &new.enrich);
    differ(
        o.channel_capacity != n.channel_capacity,
        "enrich.channel_capacity",
    );
    differ(o.workers != n.workers, "enrich.workers");
    differ(o.batch_size != n.batch_size, "enrich.batch_size");
    differ(o.poll_interval != n.poll_interval, "enrich.poll_interval");
    differ(
        o.unique_max_bytes != n.unique_max_bytes,
        "enrich.unique_max_bytes",
    );
    let (o, n) = (&old.queue, &new.queue);
    differ(o.path != n.path, "queue.path");
    differ(o.flush_interval != n.flush_interval, "queue.flush_interval");
    differ(o.max_events != n.max_events, "queue.max_events");
    differ(o.max_bytes != n.max_bytes, "queue.max_bytes");
    differ(o.when_full != n.when_full, "queue.when_full");
    differ(o.retention != n.retention, "queue.retention");
    differ(o.cache_size != n.cache_size, "queue.cache_size");
    differ(o.min_free_bytes != n.min_free_bytes, "queue.min_free_bytes");
    let (o, n) = (&old.delivery, &new.delivery);
    differ(o.threads != n.threads, "delivery.threads");
    differ(o.nice != n.nice, "delivery.nice");
    differ(o.log_max_bytes != n.log_max_bytes, "delivery.log_max_bytes");
    differ(old.stats.enabled != new.stats.enabled, "stats.enabled");
    differ(
        old.stats.retention != new.stats.retention,
        "stats.retention",
    );
    let admin = |c: &Config| c.admin.as_ref().map(|a| a.listen);
    differ(admin(old) != admin(new), "admin.listen");
    differ(old.log.json != new.log.json, "log.format");
    differ(old.sinks != new.sinks, "sinks");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> Config {
        let text = format!("[queue]\npath = \"/tmp/clicktap-restart-test\"\n{extra}");
        crate::config::from_str(&text, std::path::Path::new("t.toml")).unwrap()
    }

    #[test]
    fn what_a_reload_can_apply_needs_no_restart_and_the_rest_is_named() {
        let base = cfg("");
        let live = cfg(
            "[enrich]\nkeep_raw_ip = true\nunique_window = \"10m\"\n[log]\nlevel = \"debug\"\n[delivery]\nallow_http = true\n[[webhooks]]\nid = \"w\"\nurl = \"http://h.example/\"\n",
        );
        assert!(keys(&base, &live).is_empty(), "{:?}", keys(&base, &live));
        let moved = cfg(
            "[proxy]\nlisten = \"127.0.0.1:9999\"\nthreads = 3\n[enrich]\nworkers = 2\nunique_max_bytes = \"1MiB\"\n",
        );
        assert_eq!(
            keys(&base, &moved),
            [
                "proxy.listen",
                "proxy.threads",
                "enrich.workers",
                "enrich.unique_max_bytes"
            ]
        );
        let sink = |password: &str| {
            cfg(&format!(
                "[[sinks]]\nid = \"s\"\ntype = \"nats\"\nurls = [\"nats://127.0.0.1:4222\"]\nsubject = \"clicks\"\nuser = \"u\"\npassword = \"{password}\"\n[sinks.stream]\nname = \"C\"\nsubjects = [\"clicks\"]\n"
            ))
        };
        assert_eq!(keys(&base, &sink("a")), ["sinks"]);
        assert_eq!(
            keys(&sink("a"), &sink("b")),
            ["sinks"],
            "a new password too"
        );
        assert!(keys(&sink("a"), &sink("a")).is_empty());
    }
}
