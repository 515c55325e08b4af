//! The ordered copy of a new ledger, built while the run goes on.
//!
//! A run appends records as rows finish and ends by writing them again, in input order, to a
//! temp file that replaces the ledger. On a new ledger that copy is built here instead, on a
//! thread of its own, from the rows that are done from the first row on. At the end only the
//! last rows are left to copy: the run does not stand idle for the rest (about 100 ms per
//! 100,000 rows, with the server waiting) and the copy fills gaps in the sending instead.
//!
//! Nothing here changes what is durable when: the appended file is still the ledger until
//! the finished copy is synced and renamed over it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{copy_record, start_replacement, Appender, Span, SpanReader};

/// How often the copy takes the rows done since its last turn.
const EVERY: Duration = Duration::from_millis(20);

/// The copy is synced to disk whenever this much more was copied, on this thread, so that
/// the sync the replacement needs at the end has only the last part left to write (it took
/// 40 ms for 100,000 rows written at once).
const SYNC_EVERY: usize = 16 << 20;

/// The copy so far: rows before `next_row` are in `out`.
pub(super) struct OrderedCopy {
    pub out: BufWriter<File>,
    pub next_row: usize,
}

/// The thread building the copy.
pub(super) struct Copier {
    signals: mpsc::Sender<Signal>,
    thread: JoinHandle<anyhow::Result<OrderedCopy>>,
}

enum Signal {
    Stop,
    /// Take a turn now and say when it is done (for tests, which must not wait on a timer).
    #[cfg(test)]
    Turn(mpsc::Sender<()>),
}

impl Copier {
    /// Starts copying the ledger at `path`, whose appended records `appended` reads.
    pub fn start(
        shared: Arc<Mutex<Appender>>,
        path: &Path,
        appended: File,
    ) -> anyhow::Result<Copier> {
        let out = start_replacement(path)?;
        let (signals, signalled) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("ledger-copy".into())
            .spawn(move || {
                let mut copy = OrderedCopy { out, next_row: 1 };
                let mut records = SpanReader::new(&appended);
                let mut line = Vec::new();
                let mut no_drops = std::collections::HashSet::new();
                let mut unsynced = 0;
                while let Some(done_turn) = next_turn(&signalled) {
                    let (first, spans) = take_done_rows(&shared);
                    for (i, span) in spans.into_iter().enumerate() {
                        unsynced += span.len();
                        let row = first + i;
                        copy_record(
                            &mut copy.out,
                            &mut records,
                            row,
                            span,
                            &mut no_drops,
                            &mut line,
                        )?;
                        copy.next_row = row + 1;
                    }
                    if unsynced >= SYNC_EVERY {
                        copy.out.flush()?;
                        copy.out.get_ref().sync_data()?;
                        unsynced = 0;
                    }
                    if let Some(done) = done_turn {
                        let _ = done.send(());
                    }
                }
                Ok(copy)
            })?;
        Ok(Copier { signals, thread })
    }

    /// Has the thread take a turn now; returns when it is done.
    #[cfg(test)]
    pub fn take_turn(&self) {
        let (done, turned) = mpsc::channel();
        self.signals
            .send(Signal::Turn(done))
            .expect("copy thread running");
        turned.recv().expect("copy thread running");
    }

    /// Stops the thread after its current turn and hands over the copy.
    pub fn finish(self) -> anyhow::Result<OrderedCopy> {
        let _ = self.signals.send(Signal::Stop);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the ledger copy panicked"))?
    }
}

/// Waits for the next turn: `None` when the copy is to stop, else who waits for the turn.
fn next_turn(signalled: &mpsc::Receiver<Signal>) -> Option<Option<mpsc::Sender<()>>> {
    match signalled.recv_timeout(EVERY) {
        Err(RecvTimeoutError::Timeout) => Some(None),
        #[cfg(test)]
        Ok(Signal::Turn(done)) => Some(Some(done)),
        Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => None,
    }
}

/// The spans of the rows done since the last call, from the first row not yet taken up to
/// the first row not yet done; marks them taken. Returns the first such row and the spans.
fn take_done_rows(shared: &Mutex<Appender>) -> (usize, Vec<Span>) {
    let mut appender = shared.lock().unwrap_or_else(|e| e.into_inner());
    let first = appender.copied_rows + 1;
    let by_row = &appender.state.by_row;
    let done = by_row
        .get(first..)
        .unwrap_or_default()
        .iter()
        .take_while(|span| !span.is_none())
        .count();
    let spans = by_row[first.min(by_row.len())..][..done].to_vec();
    appender.copied_rows += done;
    (first, spans)
}
