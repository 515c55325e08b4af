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

use crate::campaign::Campaign;
use crate::customers::{CustomerCsv, Record};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::render::{Rejection, Renderer, Request};

/// What became of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowPlan {
    Ready { row: u64, request: Request },
    Invalid { row: u64, rejection: Rejection },
}

impl RowPlan {
    pub fn row(&self) -> u64 {
        match self {
            RowPlan::Ready { row, .. } | RowPlan::Invalid { row, .. } => *row,
        }
    }

    pub fn request_id(&self) -> &str {
        match self {
            RowPlan::Ready { request, .. } => &request.request_id,
            RowPlan::Invalid { rejection, .. } => &rejection.request_id,
        }
    }
}

/// A campaign and its CSV, ready to be read row by row.
pub struct Batch {
    pub campaign: Campaign,
    csv: CustomerCsv,
    renderer: Renderer,
    total_rows: u64,
    repeated: HashSet<u64>,
    first_seen: HashMap<u64, u64>,
    record: Record,
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
            campaign,
            csv,
            renderer,
            total_rows,
            repeated,
            first_seen: HashMap::new(),
            record: Record::default(),
        })
    }

    /// Data rows in the CSV (known before the first row is read).
    pub fn total_rows(&self) -> u64 {
        self.total_rows
    }

    pub fn headers(&self) -> &[String] {
        self.csv.headers()
    }

    /// The next row's plan; `Ok(None)` at the end. An error means the file itself failed.
    pub fn next_row(&mut self) -> Result<Option<RowPlan>, Diagnostic> {
        if !self.csv.read(&mut self.record)? {
            return Ok(None);
        }
        let row = self.record.row;
        let fields = match self.csv.fields(&self.record) {
            Ok(fields) => fields,
            Err(problem) => {
                return Ok(Some(RowPlan::Invalid {
                    row,
                    rejection: Rejection {
                        request_id: String::new(),
                        email: String::new(),
                        reason: problem.0,
                    },
                }))
            }
        };
        let renderer = &self.renderer;
        let invalid = |request_id: String, reason: String| RowPlan::Invalid {
            row,
            rejection: Rejection {
                email: renderer.ledger_email(row, &fields),
                request_id,
                reason,
            },
        };
        let empty = renderer.empty_key_columns(&fields);
        if !empty.is_empty() {
            let which = empty.join("`, `");
            return Ok(Some(invalid(
                String::new(),
                format!("key column `{which}` is empty"),
            )));
        }
        let digest = renderer.key_digest(&fields);
        let request_id = match renderer.request_id(row, &fields, &digest) {
            Ok(id) => id,
            Err(reason) => return Ok(Some(invalid(String::new(), reason))),
        };
        let key_fp = fingerprint_of_digest(&digest);
        if let Some(first) = seen_before(&self.repeated, &mut self.first_seen, key_fp, row) {
            let key = self.campaign.key.join(", ");
            return Ok(Some(invalid(
                request_id,
                format!("duplicate of row {first} (same {key})"),
            )));
        }
        if renderer.has_request_id_template() {
            let id_fp = fingerprint_of_str(&request_id);
            if let Some(first) = seen_before(&self.repeated, &mut self.first_seen, id_fp, row) {
                return Ok(Some(invalid(
                    request_id,
                    format!("duplicate of row {first} (same request_id)"),
                )));
            }
        }
        Ok(Some(match renderer.render(row, &fields, request_id) {
            Ok(request) => RowPlan::Ready { row, request },
            Err(rejection) => RowPlan::Invalid { row, rejection },
        }))
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

fn fingerprint_of_digest(digest: &[u8; 32]) -> u64 {
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn fingerprint_of_str(text: &str) -> u64 {
    // Tagged so a request_id never collides with a key fingerprint by construction.
    let mut hasher = std::hash::DefaultHasher::new();
    ("request_id", text).hash(&mut hasher);
    hasher.finish()
}

/// Counts rows and collects the fingerprints (keys, templated request_ids) seen more than once.
fn first_pass(
    campaign: &Campaign,
    renderer: &Renderer,
) -> Result<(u64, HashSet<u64>), Diagnostics> {
    let mut csv = CustomerCsv::open(&campaign.customers, campaign.csv_delimiter)?;
    let mut filter = BloomFilter::new();
    let mut repeated = HashSet::new();
    let mut record = Record::default();
    let mut rows = 0;
    while csv.read(&mut record)? {
        rows += 1;
        let mut fields = Vec::with_capacity(csv.headers().len());
        if csv.fields_into(&record, &mut fields).is_err()
            || !renderer.empty_key_columns(&fields).is_empty()
        {
            continue;
        }
        let digest = renderer.key_digest(&fields);
        let fp = fingerprint_of_digest(&digest);
        if filter.insert(fp) {
            repeated.insert(fp);
        }
        if renderer.has_request_id_template() {
            if let Ok(id) = renderer.request_id(record.row, &fields, &digest) {
                let fp = fingerprint_of_str(&id);
                if filter.insert(fp) {
                    repeated.insert(fp);
                }
            }
        }
    }
    Ok((rows, repeated))
}

/// A fixed-size Bloom filter over 64-bit fingerprints: 4 MiB, 4 probes. At a million keys
/// about one in twenty thousand is a false "maybe seen", which only costs a map entry.
struct BloomFilter {
    bits: Vec<u64>,
}

impl BloomFilter {
    const BITS_LOG2: u32 = 25;
    const PROBES: u64 = 4;

    fn new() -> BloomFilter {
        BloomFilter {
            bits: vec![0; 1 << (Self::BITS_LOG2 - 6)],
        }
    }

    /// Adds `fp`; true when it may have been added before.
    fn insert(&mut self, fp: u64) -> bool {
        let mask = (1u64 << Self::BITS_LOG2) - 1;
        let h1 = fp;
        let h2 = fp.rotate_left(32) | 1;
        let mut all_set = true;
        for i in 0..Self::PROBES {
            let bit = h1.wrapping_add(i.wrapping_mul(h2)) & mask;
            let (word, offset) = ((bit >> 6) as usize, bit & 63);
            if self.bits[word] & (1 << offset) == 0 {
                all_set = false;
                self.bits[word] |= 1 << offset;
            }
        }
        all_set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bloom_filter_remembers() {
        let mut filter = BloomFilter::new();
        assert!(!filter.insert(42));
        assert!(filter.insert(42));
        let false_positives = (1000..101_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .filter(|fp| filter.insert(*fp))
            .count();
        assert!(false_positives < 10, "{false_positives}");
    }
}
