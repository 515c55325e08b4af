//! A campaign opened for work: the customers CSV, the compiled templates, and a stream of
//! rows, each either ready to send or rejected with a reason. `check`, `run --dry-run` and
//! `run` all read rows through here, so they agree on every row.
//!
//! Duplicate keys are found without keeping every key in memory: a first pass over the CSV
//! puts each key's fingerprint in a fixed-size Bloom filter and notes the few fingerprints
//! seen twice (true duplicates, plus rare false positives); the second pass, the real one,
//! tracks only those. Memory stays flat from a thousand rows to millions, and the first pass
//! also gives the row count before anything is sent.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{mpsc, Arc};

use crate::campaign::Campaign;
use crate::customers::{CustomerCsv, Record};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::render::{Rejection, Renderer, Request};

mod first_pass;
use first_pass::first_pass;

/// What became of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowPlan {
    Ready {
        row: u64,
        request: Request,
    },
    Invalid {
        row: u64,
        rejection: Rejection,
    },
    /// Created before from exactly these inputs (see [`Batch::skip_unchanged`]): not rendered.
    Unchanged {
        row: u64,
    },
}

impl RowPlan {
    /// The row's request_id, when it was worked out (not for an unchanged row).
    pub fn request_id(&self) -> Option<&str> {
        match self {
            RowPlan::Ready { request, .. } => Some(&request.request_id),
            RowPlan::Invalid { rejection, .. } => Some(&rejection.request_id),
            RowPlan::Unchanged { .. } => None,
        }
    }
}

/// A campaign and its CSV, ready to be read row by row.
///
/// Rows are prepared on several threads: one reads the CSV and settles what must be decided
/// in input order (row problems, duplicates) and deals chunks of rows to renderer threads;
/// `next_row` collects the rendered chunks in the order they were dealt, so rows come out in
/// input order. The renderers, the costliest part, then use both cores.
pub struct Batch {
    pub campaign: Campaign,
    total_rows: u64,
    parts: Option<Parts>,
    chunks: Option<Rendered>,
    current: std::vec::IntoIter<RowPlan>,
}

/// What the reading and rendering threads take when the first row is asked for.
struct Parts {
    csv: CustomerCsv,
    renderer: Renderer,
    repeated: HashSet<u64>,
    key_names: String,
    unchanged: Option<Arc<Vec<u64>>>,
}

/// Rows handed from the reader to the renderer at a time.
const CHUNK: usize = 512;

/// A row as the reader leaves it: settled already, or waiting to be rendered.
enum Pending {
    Settled(RowPlan),
    Render {
        row: u64,
        fields: csv::StringRecord,
        request_id: Option<String>,
    },
}

impl Batch {
    /// Opens the CSV, compiles the templates against its header and counts the rows.
    /// Anything wrong with the campaign or the CSV as a whole is reported here.
    pub fn open(campaign: Campaign) -> Result<Batch, Diagnostics> {
        let csv = CustomerCsv::open(&campaign.customers, campaign.csv_delimiter)?;
        let renderer = Renderer::new(&campaign, csv.headers())?;
        let (total_rows, repeated) = first_pass(&campaign, &renderer)?;
        if total_rows == 0 {
            return Err(Diagnostic::file(
                &campaign.customers,
                "the file has a header but no customer rows",
            )
            .into());
        }
        Ok(Batch {
            parts: Some(Parts {
                key_names: campaign.key.join(", "),
                csv,
                renderer,
                repeated,
                unchanged: None,
            }),
            campaign,
            total_rows,
            chunks: None,
            current: Vec::new().into_iter(),
        })
    }

    /// Data rows in the CSV (known before the first row is read).
    pub fn total_rows(&self) -> u64 {
        self.total_rows
    }

    /// Skips each body's SHA-256 and input_hash: a dry run with no ledger to compare against
    /// needs neither. Only has an effect before the first row is read.
    pub fn without_body_hashes(&mut self) {
        if let Some(parts) = &mut self.parts {
            parts.renderer.set_hash_bodies(false);
        }
    }

    /// Rows whose [`input_hash`](Renderer::input_hash) equals the one given for their row
    /// number (a created record's, from [`Prior::unchanged_rows`](crate::ledger::Prior::unchanged_rows))
    /// come out as [`RowPlan::Unchanged`] without being rendered: a re-run over a finished
    /// ledger then costs a hash per row instead of a rendering. Only has an effect before the
    /// first row is read.
    pub fn skip_unchanged(&mut self, input_hashes: Arc<Vec<u64>>) {
        if let Some(parts) = &mut self.parts {
            parts.unchanged = Some(input_hashes);
        }
    }

    /// The next row's plan; `Ok(None)` at the end. An error means the file itself failed.
    pub fn next_row(&mut self) -> Result<Option<RowPlan>, Diagnostic> {
        loop {
            if let Some(plan) = self.current.next() {
                return Ok(Some(plan));
            }
            if let Some(parts) = self.parts.take() {
                self.chunks = Some(start(parts));
            }
            let Some(chunks) = &mut self.chunks else {
                return Ok(None);
            };
            match chunks.recv() {
                Some(chunk) => self.current = chunk?.into_iter(),
                None => {
                    self.chunks = None;
                    return Ok(None);
                }
            }
        }
    }
}

/// Threads that render: the reader deals chunks to them in turn, and [`Rendered`] collects
/// in the same turn, so rows come out in input order.
const RENDER_WORKERS: usize = 2;

type Chunk<T> = Result<Vec<T>, Diagnostic>;

/// Rendered chunks, collected from the workers in the order they were dealt.
struct Rendered {
    workers: Vec<mpsc::Receiver<Chunk<RowPlan>>>,
    next: usize,
}

impl Rendered {
    /// The next chunk in input order; `None` when the reader has finished.
    fn recv(&mut self) -> Option<Chunk<RowPlan>> {
        let chunk = self.workers[self.next].recv().ok()?;
        self.next = (self.next + 1) % self.workers.len();
        Some(chunk)
    }
}

/// Starts the reader and renderer threads; returns where the rendered chunks arrive.
fn start(parts: Parts) -> Rendered {
    let Parts {
        csv,
        renderer,
        repeated,
        key_names,
        unchanged,
    } = parts;
    let renderer = Arc::new(renderer);
    // Records go back to the reader once rendered (a chunk's worth at a time), so reading a
    // row allocates nothing.
    let (spare_tx, spare_rx) = mpsc::channel::<Vec<csv::ByteRecord>>();
    let mut to_workers = Vec::with_capacity(RENDER_WORKERS);
    let mut from_workers = Vec::with_capacity(RENDER_WORKERS);
    for _ in 0..RENDER_WORKERS {
        let (pending_tx, pending_rx) = mpsc::sync_channel::<Chunk<Pending>>(2);
        let (plans_tx, plans_rx) = mpsc::sync_channel(2);
        to_workers.push(pending_tx);
        from_workers.push(plans_rx);
        let (renderer, spare_tx) = (Arc::clone(&renderer), spare_tx.clone());
        let unchanged = unchanged.clone();
        std::thread::Builder::new()
            .name("renderer".into())
            .spawn(move || {
                for chunk in pending_rx {
                    let mut spare = Vec::with_capacity(CHUNK);
                    let rendered = chunk.map(|items| {
                        items
                            .into_iter()
                            .map(|item| {
                                render_pending(
                                    &renderer,
                                    unchanged.as_deref().map(Vec::as_slice),
                                    item,
                                    &mut spare,
                                )
                            })
                            .collect()
                    });
                    let _ = spare_tx.send(spare);
                    if plans_tx.send(rendered).is_err() {
                        return;
                    }
                }
            })
            .expect("start a renderer thread");
    }
    std::thread::Builder::new()
        .name("csv-reader".into())
        .spawn(move || read_rows(csv, &renderer, repeated, &key_names, to_workers, spare_rx))
        .expect("start the CSV reader thread");
    Rendered {
        workers: from_workers,
        next: 0,
    }
}

fn render_pending(
    renderer: &Renderer,
    unchanged: Option<&[u64]>,
    item: Pending,
    spare: &mut Vec<csv::ByteRecord>,
) -> RowPlan {
    match item {
        Pending::Settled(plan) => plan,
        Pending::Render {
            row,
            fields,
            request_id,
        } => {
            // The cells as a slice, on the stack for any usual number of columns.
            let mut on_stack = [""; 16];
            let on_heap: Vec<&str>;
            let cells: &[&str] = if fields.len() <= on_stack.len() {
                for (slot, cell) in on_stack.iter_mut().zip(fields.iter()) {
                    *slot = cell;
                }
                &on_stack[..fields.len()]
            } else {
                on_heap = fields.iter().collect();
                &on_heap
            };
            // 0: no created record for this row (pending, failed, new): nothing to compare.
            let known = unchanged
                .and_then(|hashes| hashes.get(row as usize).copied())
                .filter(|&hash| hash != 0);
            let plan = if known.is_some_and(|hash| hash == renderer.input_hash(row, cells)) {
                RowPlan::Unchanged { row }
            } else {
                render_fields(renderer, row, cells, request_id)
            };
            spare.push(fields.into_byte_record());
            plan
        }
    }
}

fn render_fields(
    renderer: &Renderer,
    row: u64,
    fields: &[&str],
    request_id: Option<String>,
) -> RowPlan {
    let request_id = match request_id.map_or_else(|| renderer.request_id(row, fields), Ok) {
        Ok(id) => id,
        Err(reason) => {
            return RowPlan::Invalid {
                row,
                rejection: Rejection {
                    email: renderer.ledger_email(row, fields),
                    request_id: String::new(),
                    reason,
                },
            }
        }
    };
    match renderer.render(row, fields, request_id) {
        Ok(request) => RowPlan::Ready { row, request },
        Err(rejection) => RowPlan::Invalid { row, rejection },
    }
}

/// Reads every record in order and settles row problems and duplicates.
fn read_rows(
    mut csv: CustomerCsv,
    renderer: &Renderer,
    repeated: HashSet<u64>,
    key_names: &str,
    workers: Vec<mpsc::SyncSender<Chunk<Pending>>>,
    spare: mpsc::Receiver<Vec<csv::ByteRecord>>,
) {
    let mut stash: Vec<csv::ByteRecord> = Vec::new();
    let mut first_seen = HashMap::new();
    let mut chunk = Vec::with_capacity(CHUNK);
    // Chunks are dealt to the workers in turn; `Rendered` collects them in the same turn.
    let mut turn = (0..workers.len()).cycle();
    let mut out = |chunk: Chunk<Pending>| workers[turn.next().expect("endless")].send(chunk);
    loop {
        if stash.is_empty() {
            stash = spare.try_recv().unwrap_or_default();
        }
        let mut record = Record {
            fields: stash.pop().unwrap_or_default(),
            ..Record::default()
        };
        match csv.read(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let _ = out(Err(e));
                return;
            }
        }
        chunk.push(settle(
            &csv,
            renderer,
            &repeated,
            &mut first_seen,
            key_names,
            record,
        ));
        if chunk.len() == CHUNK {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            if out(Ok(full)).is_err() {
                return;
            }
        }
    }
    if !chunk.is_empty() {
        let _ = out(Ok(chunk));
    }
}

/// Decides what can only be decided in order: unusable records, empty keys, duplicates.
fn settle(
    csv: &CustomerCsv,
    renderer: &Renderer,
    repeated: &HashSet<u64>,
    first_seen: &mut HashMap<u64, u64>,
    key_names: &str,
    record: Record,
) -> Pending {
    let Record { row, line, fields } = record;
    let mut bytes = fields;
    // The usual row (no request_id template, key present and not repeated): checked as UTF-8
    // once, in becoming the StringRecord the renderer takes, with no list of cells built.
    // Anything else takes the general path below, which words each problem.
    if !renderer.has_request_id_template() && bytes.len() == csv.headers().len() {
        match csv::StringRecord::from_byte_record(bytes) {
            Ok(fields) => {
                let cell = |i| {
                    fields
                        .get(i)
                        .map(crate::render::trimmed)
                        .filter(|c| !c.is_empty())
                };
                // With no key seen twice in the first pass (the usual file), only whether the
                // key is there matters, and it need not be hashed.
                let usual = if repeated.is_empty() {
                    renderer.has_key_cells(cell)
                } else {
                    renderer
                        .key_fingerprint_of(cell)
                        .is_some_and(|fp| !repeated.contains(&fp))
                };
                if usual {
                    return Pending::Render {
                        row,
                        fields,
                        request_id: None,
                    };
                }
                bytes = fields.into_byte_record();
            }
            Err(e) => bytes = e.into_byte_record(),
        }
    }
    let record = Record {
        row,
        line,
        fields: bytes,
    };
    let invalid = |fields: &[&str], request_id: String, reason: String| {
        Pending::Settled(RowPlan::Invalid {
            row,
            rejection: Rejection {
                email: renderer.ledger_email(row, fields),
                request_id,
                reason,
            },
        })
    };
    let fields = match csv.fields(&record) {
        Ok(fields) => fields,
        Err(problem) => {
            return Pending::Settled(RowPlan::Invalid {
                row,
                rejection: Rejection {
                    request_id: String::new(),
                    email: String::new(),
                    reason: problem.0,
                },
            })
        }
    };
    let empty = renderer.empty_key_columns(&fields);
    if !empty.is_empty() {
        let which = empty.join("`, `");
        return invalid(
            &fields,
            String::new(),
            format!("key column `{which}` is empty"),
        );
    }
    let key_fp = renderer.key_fingerprint(&fields);
    if let Some(first) = seen_before(repeated, first_seen, key_fp, row) {
        let request_id = renderer.request_id(row, &fields).unwrap_or_default();
        return invalid(
            &fields,
            request_id,
            format!("duplicate of row {first} (same {key_names})"),
        );
    }
    let mut request_id = None;
    if renderer.has_request_id_template() {
        let id = match renderer.request_id(row, &fields) {
            Ok(id) => id,
            Err(reason) => return invalid(&fields, String::new(), reason),
        };
        if let Some(first) = seen_before(repeated, first_seen, fingerprint_of_str(&id), row) {
            return invalid(
                &fields,
                id,
                format!("duplicate of row {first} (same request_id)"),
            );
        }
        request_id = Some(id);
    }
    drop(fields);
    let fields = csv::StringRecord::from_byte_record(record.fields)
        .expect("checked as UTF-8 by CustomerCsv::fields");
    Pending::Render {
        row,
        fields,
        request_id,
    }
}

/// Returns the row that first had `fp`, if `fp` is one of the repeated fingerprints.
fn seen_before(
    repeated: &HashSet<u64>,
    first_seen: &mut HashMap<u64, u64>,
    fp: u64,
    row: u64,
) -> Option<u64> {
    if !repeated.contains(&fp) {
        return None;
    }
    match first_seen.entry(fp) {
        std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
        std::collections::hash_map::Entry::Vacant(slot) => {
            slot.insert(row);
            None
        }
    }
}

pub(crate) fn fingerprint_of_str(text: &str) -> u64 {
    // Tagged so a request_id never collides with a key fingerprint by construction.
    let mut hasher = std::hash::DefaultHasher::new();
    ("request_id", text).hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "email,segment\na@example.com,smb\nb@example.com,smb\nc@example.com,vip\n";

    fn open(dir: &std::path::Path, csv: &str, discount: &str) -> Batch {
        std::fs::write(dir.join("customers.csv"), csv).unwrap();
        let yaml = format!(
            "campaign: c\ncustomers: customers.csv\noutput: out.csv\ncheckout:\n  product_id: prod_1\n  discount_code: {discount}\n  customer:\n    email: \"{{{{ email }}}}\"\n  metadata:\n    segment: \"{{{{ segment }}}}\"\n"
        );
        let campaign = Campaign::parse(&dir.join("campaign.yaml"), yaml).unwrap();
        Batch::open(campaign).unwrap()
    }

    fn plans(mut batch: Batch) -> Vec<RowPlan> {
        std::iter::from_fn(|| batch.next_row().unwrap()).collect()
    }

    fn input_hashes(plans: &[RowPlan]) -> Vec<u64> {
        let mut hashes = vec![0];
        for plan in plans {
            match plan {
                RowPlan::Ready { request, .. } => hashes.push(request.input_hash),
                other => panic!("not rendered: {other:?}"),
            }
        }
        hashes
    }

    fn kinds(plans: &[RowPlan]) -> Vec<&'static str> {
        plans
            .iter()
            .map(|p| match p {
                RowPlan::Ready { .. } => "ready",
                RowPlan::Invalid { .. } => "invalid",
                RowPlan::Unchanged { .. } => "unchanged",
            })
            .collect()
    }

    #[test]
    fn rows_whose_inputs_match_their_record_are_not_rendered_again() {
        let dir = tempfile::tempdir().unwrap();
        let first = plans(open(dir.path(), CSV, "SPRING"));
        let hashes = input_hashes(&first);
        assert!(hashes[1..].iter().all(|&h| h != 0));
        assert_ne!(hashes[1], hashes[2], "rows differ in email");

        // The same inputs: nothing is rendered. A row whose record had another hash is.
        let mut batch = open(dir.path(), CSV, "SPRING");
        let mut known = hashes.clone();
        known[2] ^= 1;
        batch.skip_unchanged(Arc::new(known));
        assert_eq!(kinds(&plans(batch)), ["unchanged", "ready", "unchanged"]);

        // A changed cell, or a changed template, is a changed input.
        let mut batch = open(dir.path(), &CSV.replace("vip", "smb"), "SPRING");
        batch.skip_unchanged(Arc::new(hashes.clone()));
        assert_eq!(kinds(&plans(batch)), ["unchanged", "unchanged", "ready"]);
        let mut batch = open(dir.path(), CSV, "SUMMER");
        batch.skip_unchanged(Arc::new(hashes.clone()));
        assert_eq!(kinds(&plans(batch)), ["ready", "ready", "ready"]);

        // A customer moved to another row is rendered (templates may use the row number).
        let moved = "email,segment\nb@example.com,smb\na@example.com,smb\nc@example.com,vip\n";
        let mut batch = open(dir.path(), moved, "SPRING");
        batch.skip_unchanged(Arc::new(hashes));
        assert_eq!(kinds(&plans(batch)), ["ready", "ready", "unchanged"]);
    }

    #[test]
    fn a_large_file_read_in_two_halves_still_finds_a_repeat_across_them() {
        // 100 rows of 50 KB: the first and the last are the same customer.
        let long = "x".repeat(50_000);
        let mut csv = format!("email,segment\na@example.com,{long}\n");
        for i in 2..100 {
            csv.push_str(&format!("u{i}@example.com,{long}\n"));
        }
        csv.push_str("A@example.com,smb\n");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("customers.csv"), &csv).unwrap();
        let cut = first_pass::cut_near_the_middle(
            &dir.path().join("customers.csv"),
            first_pass::TWO_HALVES_FROM_BYTES,
        );
        assert!(cut.is_some(), "{} bytes are read in two halves", csv.len());
        let plans = plans(open(dir.path(), &csv, "SPRING"));
        assert_eq!(plans.len(), 100);
        assert_eq!(kinds(&plans).iter().filter(|k| **k == "ready").count(), 99);
        match &plans[99] {
            RowPlan::Invalid { rejection, .. } => {
                assert_eq!(rejection.reason, "duplicate of row 1 (same email)")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rows_with_more_columns_than_fit_on_the_stack_render_the_same() {
        let names: Vec<String> = (1..=40).map(|i| format!("c{i}")).collect();
        let cells: Vec<String> = (1..=40).map(|i| format!("v{i}")).collect();
        let csv = format!(
            "{},email\n{},ana@example.com\n",
            names.join(","),
            cells.join(",")
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("customers.csv"), csv).unwrap();
        let yaml = "campaign: c\ncustomers: customers.csv\ncheckout:\n  product_id: prod_1\n  customer:\n    email: \"{{ email }}\"\n  metadata:\n    first: \"{{ c1 }}\"\n    last: \"{{ c40 }}\"\n";
        let campaign = Campaign::parse(&dir.path().join("campaign.yaml"), yaml.into()).unwrap();
        let plans = plans(Batch::open(campaign).unwrap());
        let RowPlan::Ready { request, .. } = &plans[0] else {
            panic!("{plans:?}")
        };
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["customer"]["email"], "ana@example.com");
        assert_eq!(
            body["metadata"],
            serde_json::json!({"first": "v1", "last": "v40"})
        );
    }
}
