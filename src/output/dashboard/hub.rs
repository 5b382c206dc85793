//! The dashboard's event hub: a bounded replay buffer (so a browser that connects late still
//! draws complete charts) and a fan-out to every connected `/events` client through a bounded
//! queue of its own. Publishing never waits: a client whose queue is full is a slow client, and
//! it is disconnected and counted; the run never waits for a browser.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::mpsc;

/// Events kept for late clients. When full, every other event of the older half is dropped:
/// the whole run stays in the charts, the older part at a coarser resolution.
pub const REPLAY_CAPACITY: usize = 4096;
/// Events a client may have unread before it counts as slow and is disconnected.
pub const CLIENT_QUEUE: usize = 64;
/// `/events` clients at once; more are refused with 503.
pub const MAX_CLIENTS: usize = 32;

/// What a new client receives at once, and the queue that brings the rest.
pub struct Subscription {
    pub replay: VecDeque<Bytes>,
    /// `None` after [`Hub::close`]: the replay is all there is.
    pub rx: Option<mpsc::Receiver<Bytes>>,
}

/// Counters the server reports when it stops.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HubStats {
    pub events: u64,
    pub clients: u64,
    pub slow_dropped: u64,
    pub thinned: u64,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    replay: VecDeque<(u64, Bytes)>,
    /// The latest `summary` event (findings so far): sent after the replay.
    summary: Option<(u64, Bytes)>,
    clients: Vec<mpsc::Sender<Bytes>>,
    closed: bool,
    final_sent: bool,
    stats: HubStats,
}

#[derive(Default)]
pub struct Hub {
    inner: Mutex<Inner>,
}

/// An SSE frame: `id`, optional `event` name, one `data` line (JSON has no raw newlines).
fn frame(id: u64, event: Option<&str>, json: &str) -> Bytes {
    let mut s = format!("id: {id}\n");
    if let Some(e) = event {
        s.push_str("event: ");
        s.push_str(e);
        s.push('\n');
    }
    s.push_str("data: ");
    s.push_str(json);
    s.push_str("\n\n");
    Bytes::from(s)
}

impl Hub {
    pub fn new() -> Hub {
        Hub::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain data: keep serving it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes a per-second event (the default `message` type), kept for replay.
    pub fn publish(&self, json: &str) {
        let mut g = self.lock();
        g.next_id += 1;
        let f = frame(g.next_id, None, json);
        if g.replay.len() >= REPLAY_CAPACITY {
            let old = g.replay.len() / 2;
            let mut i = 0;
            let before = g.replay.len();
            g.replay.retain(|_| {
                i += 1;
                i > old || i % 2 == 1
            });
            g.stats.thinned += (before - g.replay.len()) as u64;
        }
        let id = g.next_id;
        g.replay.push_back((id, f.clone()));
        g.stats.events += 1;
        send_all(&mut g, &f);
    }

    /// Publishes a `summary` event (findings so far, or the run's end when `is_final`); a late
    /// client gets the latest one after the replay. A phase's summary computed after the final
    /// one (it runs on a thread of its own) is dropped.
    pub fn publish_summary(&self, json: &str, is_final: bool) {
        let mut g = self.lock();
        if g.final_sent {
            return;
        }
        g.final_sent = is_final;
        g.next_id += 1;
        let f = frame(g.next_id, Some("summary"), json);
        g.summary = Some((g.next_id, f.clone()));
        send_all(&mut g, &f);
    }

    /// A new client: the events after `last_id` (the browser's `Last-Event-ID` when it
    /// reconnects, so nothing is shown twice), then a queue of what follows. `None` when
    /// [`MAX_CLIENTS`] are connected.
    pub fn subscribe(&self, last_id: u64) -> Option<Subscription> {
        let mut g = self.lock();
        g.clients.retain(|c| !c.is_closed());
        if g.clients.len() >= MAX_CLIENTS {
            return None;
        }
        let mut replay: VecDeque<Bytes> = g
            .replay
            .iter()
            .filter(|(id, _)| *id > last_id)
            .map(|(_, f)| f.clone())
            .collect();
        if let Some((id, f)) = &g.summary {
            if *id > last_id {
                replay.push_back(f.clone());
            }
        }
        g.stats.clients += 1;
        let rx = if g.closed {
            None
        } else {
            let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
            g.clients.push(tx);
            Some(rx)
        };
        Some(Subscription { replay, rx })
    }

    /// Ends every client's stream once it has read what it was sent; later clients get the
    /// replay and an ended stream.
    pub fn close(&self) {
        let mut g = self.lock();
        g.closed = true;
        g.clients.clear();
    }

    pub fn stats(&self) -> HubStats {
        self.lock().stats
    }

    /// Clients connected now.
    pub fn connected(&self) -> usize {
        let mut g = self.lock();
        g.clients.retain(|c| !c.is_closed());
        g.clients.len()
    }
}

/// Offers `f` to every client without waiting: a full queue disconnects that client.
fn send_all(g: &mut Inner, f: &Bytes) {
    let mut slow = 0;
    g.clients.retain(|c| match c.try_send(f.clone()) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            slow += 1;
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    });
    g.stats.slow_dropped += slow;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &Subscription) -> Vec<String> {
        s.replay
            .iter()
            .map(|f| String::from_utf8_lossy(f).lines().next().unwrap_or("").to_string())
            .collect()
    }

    #[test]
    fn a_late_client_gets_the_history_and_a_reconnect_only_what_it_missed() {
        let hub = Hub::new();
        hub.publish("{\"n\":1}");
        hub.publish("{\"n\":2}");
        hub.publish_summary("{\"findings\":[]}", true);
        hub.publish_summary("{\"late\":1}", false);
        let late = hub.subscribe(0).unwrap();
        assert_eq!(ids(&late), ["id: 1", "id: 2", "id: 3"]);
        let again = hub.subscribe(2).unwrap();
        assert_eq!(ids(&again), ["id: 3"]);
        let s = String::from_utf8_lossy(&late.replay[2]).to_string();
        assert_eq!(s, "id: 3\nevent: summary\ndata: {\"findings\":[]}\n\n");
    }

    #[test]
    fn a_client_that_does_not_read_is_dropped_and_counted_without_blocking() {
        let hub = Hub::new();
        let mut reading = hub.subscribe(0).unwrap();
        let _stuck = hub.subscribe(0).unwrap();
        for i in 0..CLIENT_QUEUE + 1 {
            hub.publish(&format!("{{\"n\":{i}}}"));
            while reading.rx.as_mut().unwrap().try_recv().is_ok() {}
        }
        assert_eq!(hub.stats().slow_dropped, 1);
        assert_eq!(hub.connected(), 1);
    }

    #[test]
    fn the_replay_stays_bounded_and_keeps_the_first_and_latest_events() {
        let hub = Hub::new();
        for i in 0..REPLAY_CAPACITY * 3 {
            hub.publish(&format!("{{\"n\":{i}}}"));
        }
        let s = hub.subscribe(0).unwrap();
        assert!(s.replay.len() <= REPLAY_CAPACITY, "{}", s.replay.len());
        assert_eq!(ids(&s)[0], "id: 1");
        assert_eq!(ids(&s).last().unwrap(), &format!("id: {}", REPLAY_CAPACITY * 3));
        assert_eq!(hub.stats().thinned as usize + s.replay.len(), REPLAY_CAPACITY * 3);
    }

    #[test]
    fn after_close_a_client_gets_the_replay_and_an_ended_stream() {
        let hub = Hub::new();
        hub.publish("{}");
        hub.close();
        let s = hub.subscribe(0).unwrap();
        assert_eq!(s.replay.len(), 1);
        assert!(s.rx.is_none());
    }
}
