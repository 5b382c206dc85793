//! PostgreSQL through `tokio-postgres` (no TLS: monitors talk to databases on loopback or a
//! private network). One connection, kept between samples and re-opened after a failure; it
//! counts among the connections it reports, as it takes a slot like any other client.
//!
//! Series: `connections_in_use` (client backends), `max_connections`, `waiting` (backends
//! waiting on a lock), `cache_hit_ratio` (shared-buffer hits over the last interval, or since
//! the statistics reset on the first sample), `transactions_per_s`, `longest_query_s` (the
//! oldest active query), `deadlocks` (since the monitor started).

use stampede_plan::Secret;
use tokio::time::Instant;

use super::{rate, round3, MonitorError, Series};

const ACTIVITY: &str = "SELECT count(*) FILTER (WHERE backend_type = 'client backend'), \
     count(*) FILTER (WHERE wait_event_type = 'Lock'), \
     coalesce(max(extract(epoch FROM now() - query_start)) FILTER (WHERE state = 'active' AND pid <> pg_backend_pid()), 0), \
     current_setting('max_connections') \
     FROM pg_stat_activity";
const DATABASE: &str = "SELECT coalesce(sum(blks_hit), 0), coalesce(sum(blks_read), 0), \
     coalesce(sum(xact_commit + xact_rollback), 0), coalesce(sum(deadlocks), 0) FROM pg_stat_database";

pub struct Postgres {
    url: Secret,
    client: Option<tokio_postgres::Client>,
    /// (blocks hit, blocks read, transactions, deadlocks) at the previous sample.
    prev: Option<([f64; 4], Instant)>,
    deadlocks_at_start: Option<f64>,
}

impl Postgres {
    pub fn new(url: Secret) -> Self {
        Postgres {
            url,
            client: None,
            prev: None,
            deadlocks_at_start: None,
        }
    }

    fn err(&self, e: tokio_postgres::Error, connecting: bool) -> MonitorError {
        let what = self.url.shown();
        let reason = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        };
        let auth = e.code().is_some_and(|c| c.code().starts_with("28"));
        if auth {
            MonitorError::Auth { what, reason }
        } else if connecting {
            MonitorError::Connect { what, reason }
        } else {
            MonitorError::Failed { what, reason }
        }
    }

    pub async fn sample(&mut self) -> Result<Series, MonitorError> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            let (client, conn) = tokio_postgres::connect(self.url.expose(), tokio_postgres::NoTls)
                .await
                .map_err(|e| self.err(e, true))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.client = Some(client);
        }
        let Some(client) = self.client.as_ref() else {
            return Err(MonitorError::Failed {
                what: self.url.shown(),
                reason: "no connection".into(),
            });
        };
        let q = async {
            let a = client.simple_query(ACTIVITY).await?;
            let d = client.simple_query(DATABASE).await?;
            Ok::<_, tokio_postgres::Error>((a, d))
        };
        let (a, d) = match q.await {
            Ok(x) => x,
            Err(e) => {
                let err = self.err(e, false);
                self.client = None;
                return Err(err);
            }
        };
        let now = Instant::now();
        let a = first_row(&a, 4);
        let d = first_row(&d, 4);
        let mut s = Series::new();
        if let [Some(in_use), Some(waiting), Some(longest), Some(max)] = a[..] {
            s.insert("connections_in_use".into(), in_use);
            s.insert("waiting".into(), waiting);
            s.insert("longest_query_s".into(), round3(longest));
            s.insert("max_connections".into(), max);
        }
        if let [Some(hit), Some(read), Some(xact), Some(dl)] = d[..] {
            let cur = [hit, read, xact, dl];
            let base = self.deadlocks_at_start.get_or_insert(dl);
            s.insert("deadlocks".into(), (dl - *base).max(0.0));
            let (dh, dr) = match self.prev {
                Some((p, _)) if (hit - p[0]) + (read - p[1]) > 0.0 => (hit - p[0], read - p[1]),
                Some(_) => (0.0, 0.0),
                None => (hit, read),
            };
            if dh + dr > 0.0 {
                s.insert("cache_hit_ratio".into(), round3(dh / (dh + dr) * 1000.0) / 1000.0);
            }
            if let Some(r) = rate(self.prev.map(|(p, t)| (p[2], t)), (xact, now)) {
                s.insert("transactions_per_s".into(), round3(r));
            }
            self.prev = Some((cur, now));
        }
        Ok(s)
    }
}

/// The first row's first `n` columns as numbers (`None` for a NULL or a non-number).
fn first_row(msgs: &[tokio_postgres::SimpleQueryMessage], n: usize) -> Vec<Option<f64>> {
    for m in msgs {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            return (0..n)
                .map(|i| r.get(i).and_then(|v| v.trim().parse::<f64>().ok()))
                .collect();
        }
    }
    vec![None; n]
}
