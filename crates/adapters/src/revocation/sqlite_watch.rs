//! [`SqliteWatch`]: the bus of the embedded default, one server on a SQLite file. Its own
//! changes reach its cache directly (the app invalidates before it publishes), so the only
//! changes it can miss are other processes' on the same file: the `tessera admin` CLI
//! revoking sessions or granting roles, or a second server. SQLite counts those for each
//! connection (`PRAGMA data_version` moves when another connection commits), so the watch
//! asks the server's own writer connection, whose commits never move it, a few times a
//! second, and drops the whole cache when anything else wrote.
//!
//! The writer connection could be replaced (after an error), and a new connection starts
//! counting afresh; a marker in its per-connection temporary schema tells a new connection
//! from the old one, and a new one is treated as a loss (everything dropped).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::SqlitePool;
use tessera_app::ports::{BoxFuture, BusHealth, Changes, RevocationBus, RevocationSink};

/// How often the watch looks: the longest another process's revocation can go unseen.
pub const WATCH_PERIOD: Duration = Duration::from_millis(100);

pub struct SqliteWatch {
    writer: SqlitePool,
    period: Duration,
    watching: Arc<AtomicBool>,
}

impl std::fmt::Debug for SqliteWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteWatch")
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl SqliteWatch {
    pub(crate) fn new(writer: SqlitePool, period: Duration) -> Self {
        Self {
            writer,
            period,
            watching: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// What one look found.
enum Look {
    /// The same connection as last time, at this version.
    Version(i64),
    /// A connection the watch has not marked before (its count is not comparable).
    NewConnection,
}

async fn look(writer: &SqlitePool) -> Result<Look, sqlx::Error> {
    let mut conn = writer.acquire().await?;
    // Fails on a connection without the marker table: one the watch has not seen.
    match sqlx::query_scalar::<_, i64>(
        "SELECT data_version FROM pragma_data_version, temp.tessera_watch_marker",
    )
    .fetch_optional(&mut *conn)
    .await
    {
        Ok(Some(version)) => Ok(Look::Version(version)),
        // Only a missing (or empty) marker means a new connection; any other failure is
        // reported and waited out, never taken for one, which would look again at once.
        Err(sqlx::Error::Database(e)) if !e.message().contains("no such table") => {
            Err(sqlx::Error::Database(e))
        }
        Err(sqlx::Error::Database(_)) | Ok(None) => {
            sqlx::query("CREATE TEMP TABLE IF NOT EXISTS tessera_watch_marker (x INTEGER)")
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "INSERT INTO temp.tessera_watch_marker (x) SELECT 1 \
                 WHERE NOT EXISTS (SELECT 1 FROM temp.tessera_watch_marker)",
            )
            .execute(&mut *conn)
            .await?;
            Ok(Look::NewConnection)
        }
        Err(e) => Err(e),
    }
}

impl RevocationBus for SqliteWatch {
    fn publish_changes<'a>(&'a self, _changes: Changes<'a>) -> BoxFuture<'a, ()> {
        // This process's changes were applied to its cache before publishing.
        Box::pin(async {})
    }

    fn subscribe(&self, sink: Arc<dyn RevocationSink>) {
        if self.watching.swap(true, Ordering::SeqCst) {
            return;
        }
        let (writer, period, watching) =
            (self.writer.clone(), self.period, Arc::clone(&self.watching));
        tokio::spawn(async move {
            let mut last: Option<i64> = None;
            let mut failing = false;
            loop {
                match look(&writer).await {
                    Ok(Look::Version(version)) if last == Some(version) => failing = false,
                    Ok(Look::Version(version)) => {
                        // Another process wrote (or this is the first look): nothing
                        // cached before now is trusted.
                        sink.lost();
                        last = Some(version);
                        failing = false;
                        sink.connected();
                    }
                    Ok(Look::NewConnection) => {
                        // Marked now: look again at once for its first version.
                        sink.lost();
                        last = None;
                        continue;
                    }
                    Err(e) => {
                        last = None;
                        if !std::mem::replace(&mut failing, true) {
                            tracing::warn!(
                                error = &e as &dyn std::error::Error,
                                "cannot watch the database for other processes' changes; \
                                 the session cache is off until it can"
                            );
                        }
                        sink.lost();
                    }
                }
                if writer.is_closed() {
                    watching.store(false, Ordering::SeqCst);
                    sink.lost();
                    return;
                }
                tokio::time::sleep(period).await;
            }
        });
    }

    fn health(&self) -> BusHealth {
        BusHealth::Connected
    }
}
