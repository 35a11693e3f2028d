//! Steady load for the crash suites: clicks one after another, each on a new
//! connection, with what the visitor saw of each, so that a suite can tell which
//! process answered a click and how long before a kill or a cut.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request's answer as the visitor saw it.
pub struct Served {
    pub path: String,
    pub at: Instant,
    /// The clicktap process that answered (0 for the first, one more after each kill),
    /// when it is certain: the generation did not change while the request was out.
    pub process: Option<usize>,
}

impl Served {
    /// How long before the end of the process that answered it (a kill or a power cut,
    /// at `ends[process]`) this click was answered; `Duration::MAX` when no end in
    /// `ends` took that process (the graceful stop, which must lose nothing).
    pub fn before_end(&self, ends: &[Instant]) -> Duration {
        let end = match self.process {
            Some(p) => ends.get(p),
            // An answer taken down just after the end's instant (the loader was not
            // scheduled at once) is that end's.
            None => ends
                .iter()
                .find(|e| e.duration_since(self.at) > Duration::ZERO),
        };
        end.map_or(Duration::MAX, |e| e.saturating_duration_since(self.at))
    }
}

/// The load running on its own thread.
pub struct Load {
    stop: Arc<AtomicBool>,
    generation: Arc<AtomicUsize>,
    served: Arc<Mutex<Vec<Served>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    /// Starts sending clicks to the proxy at `addr`.
    pub fn start(addr: SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, generation, served) = (stop.clone(), generation.clone(), served.clone());
            std::thread::spawn(move || load(addr, stop, generation, served))
        };
        Load {
            stop,
            generation,
            served,
            thread: Some(thread),
        }
    }

    /// Waits (bounded) until `n` more clicks were answered.
    pub fn wait_served(&self, n: usize, what: &str) {
        let before = self.served.lock().unwrap().len();
        super::wait_until(what, Duration::from_secs(30), || {
            self.served.lock().unwrap().len() >= before + n
        });
    }

    /// The process answering from now on is the next one: call before it exists, so
    /// that no answer of it is taken for the last one's.
    pub fn next_process(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Stops the load; what was answered, in order.
    pub fn finish(mut self) -> Vec<Served> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        std::mem::take(&mut *self.served.lock().unwrap())
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Sends clicks one after another, each on a new connection, until told to stop;
/// records every redirect answered. Clicks refused while clicktap restarts are not
/// served and not counted.
fn load(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    generation: Arc<AtomicUsize>,
    served: Arc<Mutex<Vec<Served>>>,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let sent_in = generation.load(Ordering::SeqCst);
        let path = format!("/r/c-{n}");
        let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))
        else {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let req = format!("GET {path} HTTP/1.1\r\nHost: sho.rt\r\nConnection: close\r\n\r\n");
        if s.write_all(req.as_bytes()).is_err() {
            continue;
        }
        let mut buf = [0u8; 12];
        if s.read_exact(&mut buf).is_ok() && &buf[9..12] == b"302" {
            let at = Instant::now();
            let answered_in = generation.load(Ordering::SeqCst);
            served.lock().unwrap().push(Served {
                path,
                at,
                process: (sent_in == answered_in).then_some(sent_in),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
