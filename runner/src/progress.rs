//! Progress counters shared by a task and its observers (JSON log ticker, the CLI's live view).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Rows, bytes and files moved so far. Cheap to clone; all clones share the counters.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    rows: AtomicU64,
    bytes: AtomicU64,
    files: AtomicU64,
}

/// A point-in-time copy of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub rows: u64,
    pub bytes: u64,
    pub files: u64,
}

impl Progress {
    pub fn add_rows(&self, n: u64) {
        self.inner.rows.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_bytes(&self, n: u64) {
        self.inner.bytes.fetch_add(n, Ordering::Relaxed);
    }
    pub fn add_files(&self, n: u64) {
        self.inner.files.fetch_add(n, Ordering::Relaxed);
    }
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            rows: self.inner.rows.load(Ordering::Relaxed),
            bytes: self.inner.bytes.load(Ordering::Relaxed),
            files: self.inner.files.load(Ordering::Relaxed),
        }
    }

    /// Logs the counters every `every` until the returned guard is dropped.
    pub fn log_every(&self, every: Duration, task: String) -> TickerGuard {
        let progress = self.clone();
        let handle = tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut interval = tokio::time::interval(every);
            interval.tick().await;
            loop {
                interval.tick().await;
                let s = progress.snapshot();
                let secs = started.elapsed().as_secs_f64().max(0.001);
                tracing::info!(
                    task = %task,
                    rows = s.rows,
                    bytes = s.bytes,
                    files = s.files,
                    rows_per_second = (s.rows as f64 / secs) as u64,
                    mib_per_second = format!("{:.1}", s.bytes as f64 / secs / 1048576.0),
                    "progress"
                );
            }
        });
        TickerGuard(handle)
    }
}

/// Stops the progress ticker when dropped.
pub struct TickerGuard(tokio::task::JoinHandle<()>);

impl Drop for TickerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}
