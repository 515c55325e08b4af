//! The first pass over the customers CSV: how many rows it has, and which key fingerprints
//! occur more than once (see [`super`] for why memory stays flat).

use std::collections::HashSet;

use super::duplicates::fingerprint_of_str;
use crate::campaign::Campaign;
use crate::customers::{CsvRow, CustomerCsv};
use crate::diagnostic::Diagnostics;
use crate::render::Renderer;

/// Counts rows and collects the fingerprints (keys, templated request_ids) seen more than once.
pub(super) fn first_pass(
    campaign: &Campaign,
    renderer: &Renderer,
) -> Result<(u64, HashSet<u64>), Diagnostics> {
    let mut csv = CustomerCsv::open_with(&campaign.customers, &campaign.read_options())?;
    let mut seen = SeenKeys::default();
    let mut rows = 0;
    let mut record = CsvRow::default();
    while csv.read(&mut record)? {
        rows += 1;
        let Ok(fields) = csv.fields(&record) else {
            continue;
        };
        if !renderer.empty_key_columns(&fields).is_empty() {
            continue;
        }
        seen.add(renderer.key_fingerprint(&fields));
        if renderer.has_request_id_template() {
            if let Ok(id) = renderer.request_id(record.row, &fields) {
                seen.add(fingerprint_of_str(&id));
            }
        }
    }
    Ok((rows, seen.repeated))
}

/// Fingerprints in a fixed-size Bloom filter, and those it may have seen before.
#[derive(Default)]
struct SeenKeys {
    filter: BloomFilter,
    repeated: HashSet<u64>,
}

impl SeenKeys {
    fn add(&mut self, fp: u64) {
        if self.filter.insert(fp) {
            self.repeated.insert(fp);
        }
    }
}

/// A fixed-size, blocked Bloom filter over 64-bit fingerprints: 4 MiB of 64-bit words, 4 bits
/// set within one word per key. A false "maybe seen" only costs an entry in `repeated`: the
/// real pass tells a true duplicate from it.
struct BloomFilter {
    words: Vec<u64>,
}

impl Default for BloomFilter {
    fn default() -> BloomFilter {
        BloomFilter {
            words: vec![0; 1 << Self::WORDS_LOG2],
        }
    }
}

impl BloomFilter {
    const WORDS_LOG2: u32 = 19;

    /// Adds `fp`; true when it may have been added before.
    fn insert(&mut self, fp: u64) -> bool {
        let word = &mut self.words[(fp >> (64 - Self::WORDS_LOG2)) as usize];
        let bits = (0..4).fold(0u64, |bits, i| bits | 1 << ((fp >> (i * 6)) & 63));
        let seen = *word & bits == bits;
        *word |= bits;
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bloom_filter_remembers_with_few_false_positives() {
        let mut filter = BloomFilter::default();
        assert!(!filter.insert(42));
        assert!(filter.insert(42));
        let false_positives = (1000..101_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .filter(|fp| filter.insert(*fp))
            .count();
        assert!(false_positives < 10, "{false_positives}");
    }

    #[test]
    fn the_first_pass_counts_rows_and_finds_repeated_keys() {
        // Repeats with other spacing and case; blank lines and a blank record are not rows; a
        // quoted line break stays inside its row.
        let csv =
            "email,name\r\na@x.com,A\r\nb@x.com,B\r\n\r\n ,\r\nA@X.com ,A2\nc@x.com,\"C\nD\"\n\
                   b@x.com,B2\n";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("customers.csv"), csv).unwrap();
        let yaml = "campaign: c\ncustomers: customers.csv\ncheckout:\n  product_id: prod_1\n  customer:\n    email: \"{{ email }}\"\n";
        let campaign = Campaign::parse(&dir.path().join("campaign.yaml"), yaml.to_owned()).unwrap();
        let csv = CustomerCsv::open(&campaign.customers, None).unwrap();
        let renderer = Renderer::new(&campaign, csv.headers()).unwrap();
        let (rows, repeated) = first_pass(&campaign, &renderer).unwrap();
        assert_eq!(rows, 5);
        assert_eq!(repeated.len(), 2, "a and b are repeated");
    }
}
