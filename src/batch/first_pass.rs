//! The first pass over the customers CSV: how many rows it has, and which key fingerprints
//! occur more than once (see [`super`] for why). On a large file it runs on two threads,
//! one per half, since it is all the work there is before the first row can be rendered;
//! and when the file holds no quote character, its lines are split without the CSV reader.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use super::fingerprint_of_str;
use crate::campaign::Campaign;
use crate::customers::{CustomerCsv, Record};
use crate::diagnostic::Diagnostics;
use crate::render::Renderer;

/// Counts rows and collects the fingerprints (keys, templated request_ids) seen more than once.
pub(super) fn first_pass(
    campaign: &Campaign,
    renderer: &Renderer,
) -> Result<(u64, HashSet<u64>), Diagnostics> {
    let mut csv = CustomerCsv::open(&campaign.customers, campaign.csv_delimiter)?;
    if !renderer.has_request_id_template() {
        if let Some(cut) = cut_near_the_middle(&campaign.customers, TWO_HALVES_FROM_BYTES) {
            if let Some(found) = keys_in_plain_halves(&csv, cut, renderer) {
                return Ok(found);
            }
            // A quote somewhere (or a half could not be read): the CSV reader's way.
            if let Some(found) = keys_in_two_halves(&mut csv, cut, renderer) {
                return Ok(found);
            }
            // The cut was inside a record (or a half could not be read): again, alone.
            csv = CustomerCsv::open(&campaign.customers, campaign.csv_delimiter)?;
        }
    }
    keys_in_one_pass(csv, renderer)
}

fn keys_in_one_pass(
    mut csv: CustomerCsv,
    renderer: &Renderer,
) -> Result<(u64, HashSet<u64>), Diagnostics> {
    let filter = BloomFilter::default();
    let mut keys = KeyCount::new(&filter, csv.headers().len());
    let mut record = Record::default();
    while csv.read(&mut record)? {
        if !renderer.has_request_id_template() {
            keys.add(renderer, &record.fields);
            continue;
        }
        keys.rows += 1;
        let mut fields = Vec::with_capacity(keys.columns);
        if csv.fields_into(&record, &mut fields).is_err()
            || !renderer.empty_key_columns(&fields).is_empty()
        {
            continue;
        }
        keys.seen.add(renderer.key_fingerprint(&fields));
        if let Ok(id) = renderer.request_id(record.row, &fields) {
            keys.seen.add(fingerprint_of_str(&id));
        }
    }
    Ok((keys.rows, keys.seen.repeated()))
}

/// Files smaller than this are read by one thread: a second one would not pay for itself.
pub(super) const TWO_HALVES_FROM_BYTES: u64 = 4 << 20;

/// The start of the first line after the middle of a large file, where a second reader can
/// begin (if no quoted field spans that line end: see [`keys_in_two_halves`]).
pub(super) fn cut_near_the_middle(path: &std::path::Path, smallest: u64) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len < smallest {
        return None;
    }
    let middle = len / 2;
    file.seek(SeekFrom::Start(middle)).ok()?;
    let mut window = vec![0; 64 * 1024];
    let read = file.read(&mut window).ok()?;
    let line_end = memchr::memchr(b'\n', &window[..read])?;
    Some(middle + line_end as u64 + 1).filter(|&cut| cut < len)
}

/// The first pass on two threads, one per half of the file, into one Bloom filter whose
/// words are updated atomically, so a key in both halves is caught whichever thread gets
/// there first: the result is the one a single thread would find (up to the filter's rare
/// false positives, which only cost a map entry). The cut is trusted only if the first
/// half's reader, which knows where records really start (a quoted field may hold a line
/// break), reaches it exactly; `None` when it does not, or a half cannot be read.
fn keys_in_two_halves(
    csv: &mut CustomerCsv,
    cut: u64,
    renderer: &Renderer,
) -> Option<(u64, HashSet<u64>)> {
    let filter = BloomFilter::default();
    let columns = csv.headers().len();
    let mut second_half = csv.records_from(cut).ok()?;
    // The reader skips empty lines along with the record before them, so it may stop before
    // the cut or step past it: anywhere in the run of line ends just before the cut is as good
    // as the cut itself.
    let boundary = cut - line_ends_before(csv.path(), cut)?..=cut;
    let (first, second) = std::thread::scope(|scope| {
        let second = scope.spawn(|| -> Option<KeyCount> {
            let mut keys = KeyCount::new(&filter, columns);
            let mut fields = csv::ByteRecord::new();
            while second_half.read_byte_record(&mut fields).ok()? {
                if !crate::customers::is_blank(&fields) {
                    keys.add(renderer, &fields);
                }
            }
            Some(keys)
        });
        let mut keys = KeyCount::new(&filter, columns);
        let mut fields = csv::ByteRecord::new();
        while csv.position() < *boundary.start() {
            match csv.read_raw(&mut fields) {
                Ok(true) if crate::customers::is_blank(&fields) => {}
                Ok(true) => keys.add(renderer, &fields),
                Ok(false) | Err(_) => break,
            }
        }
        let reached = boundary.contains(&csv.position());
        (reached.then_some(keys), second.join().ok().flatten())
    });
    let (first, second) = (first?, second?);
    let mut repeated = first.seen.repeated();
    repeated.extend(second.seen.repeated());
    Some((first.rows + second.rows, repeated))
}

/// The first pass on two threads like [`keys_in_two_halves`], for a file without a single
/// quote character: then every line is a record and every delimiter ends a cell, so the
/// halves are split into lines and cells with `memchr` instead of the CSV reader's
/// byte-by-byte state machine: on a million rows the pass took 90 ms instead of 175. `None`
/// as soon as either half meets a quote, or cannot be read.
fn keys_in_plain_halves(
    csv: &CustomerCsv,
    cut: u64,
    renderer: &Renderer,
) -> Option<(u64, HashSet<u64>)> {
    if csv.position() > cut {
        return None; // a header longer than half the file: the cut is inside it
    }
    let filter = BloomFilter::default();
    let columns = csv.headers().len();
    let end = std::fs::metadata(csv.path()).ok()?.len();
    let half = |range: std::ops::Range<u64>| {
        let mut keys = KeyCount::new(&filter, columns);
        plain_lines(csv.path(), range, |line| {
            keys.add_line(renderer, line, csv.delimiter())
        })?;
        Some(keys)
    };
    let (first, second) = std::thread::scope(|scope| {
        let second = scope.spawn(|| half(cut..end));
        let first = half(csv.position()..cut);
        (first, second.join().ok().flatten())
    });
    let (first, second) = (first?, second?);
    let mut repeated = first.seen.repeated();
    repeated.extend(second.seen.repeated());
    Some((first.rows + second.rows, repeated))
}

/// Calls `each` with every non-empty line in `range` of a file, a line ending at `\n`, `\r`
/// or `\r\n` as a CSV record does. `None` when a quote character is met (from there the
/// lines may not be the records) or the file cannot be read. The range is read in blocks,
/// never whole.
fn plain_lines(
    path: &std::path::Path,
    range: std::ops::Range<u64>,
    mut each: impl FnMut(&[u8]),
) -> Option<()> {
    use std::io::{Read, Seek, SeekFrom};
    const BLOCK: usize = 256 * 1024;
    let mut file = std::fs::File::open(path).ok()?;
    file.seek(SeekFrom::Start(range.start)).ok()?;
    let mut file = file.take(range.end.saturating_sub(range.start));
    let mut buffer = vec![0u8; BLOCK];
    // `buffer[..kept]` is the start of a line whose end has not been read yet.
    let mut kept = 0;
    loop {
        if kept == buffer.len() {
            buffer.resize(buffer.len() * 2, 0); // a line longer than a block
        }
        let read = file.read(&mut buffer[kept..]).ok()?;
        if memchr::memchr(b'"', &buffer[kept..kept + read]).is_some() {
            return None;
        }
        let filled = kept + read;
        let mut start = 0;
        for end in memchr::memchr2_iter(b'\n', b'\r', &buffer[..filled]) {
            if end > start {
                each(&buffer[start..end]);
            }
            start = end + 1;
        }
        if read == 0 {
            if filled > start {
                each(&buffer[start..filled]); // the last line, without a line end
            }
            return Some(());
        }
        buffer.copy_within(start..filled, 0);
        kept = filled - start;
    }
}

/// How many `\r` and `\n` bytes end the file's bytes before `at`.
fn line_ends_before(path: &std::path::Path, at: u64) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let start = at.saturating_sub(4096);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut before = vec![0; (at - start) as usize];
    file.read_exact(&mut before).ok()?;
    let line_ends = before
        .iter()
        .rev()
        .take_while(|b| matches!(b, b'\r' | b'\n'));
    Some(line_ends.count() as u64)
}

/// Rows and key fingerprints of (part of) a file, for the first pass.
struct KeyCount<'f> {
    rows: u64,
    columns: usize,
    seen: SeenKeys<'f>,
}

impl<'f> KeyCount<'f> {
    fn new(filter: &'f BloomFilter, columns: usize) -> KeyCount<'f> {
        KeyCount {
            rows: 0,
            columns,
            seen: SeenKeys::new(filter),
        }
    }

    /// Counts a non-blank record as a row and notes its key (no request_id template).
    fn add(&mut self, renderer: &Renderer, cells: &csv::ByteRecord) {
        self.rows += 1;
        // Only the key cells are needed. The record is checked as UTF-8 in one go, which lets
        // through the rare record the cell-by-cell check of the second pass rejects (a
        // character split across cells): that only adds a fingerprint to `repeated`.
        let Ok(text) = std::str::from_utf8(cells.as_slice()) else {
            return;
        };
        let cell = |i| {
            let cell = cells.range(i).and_then(|range| text.get(range))?;
            let cell = crate::render::trimmed(cell);
            (!cell.is_empty()).then_some(cell)
        };
        if let Some(fp) = renderer
            .key_fingerprint_of(cell)
            .filter(|_| cells.len() == self.columns)
        {
            self.seen.add(fp);
        }
    }
}

impl KeyCount<'_> {
    /// [`add`](Self::add) for a line of a file without quotes: a record whose cells are
    /// split at `delimiter`.
    fn add_line(&mut self, renderer: &Renderer, line: &[u8], delimiter: u8) {
        // Blank as the CSV reader's record would be: every cell empty or whitespace.
        if line
            .iter()
            .all(|&b| b == delimiter || b.is_ascii_whitespace())
        {
            return;
        }
        self.rows += 1;
        // Counted in a loop the compiler vectorises; only the key cells are looked for.
        let cells = 1 + line.iter().filter(|&&byte| byte == delimiter).count();
        if cells != self.columns {
            return;
        }
        // Only the key cells are checked as UTF-8: a row the second pass rejects for another
        // cell only adds a fingerprint to `repeated`, as a Bloom false positive does.
        let cell = |i: usize| {
            let mut starts =
                std::iter::once(0).chain(memchr::memchr_iter(delimiter, line).map(|at| at + 1));
            let start = starts.nth(i)?;
            let end = starts.next().map_or(line.len(), |next| next - 1);
            let cell = std::str::from_utf8(&line[start..end]).ok()?;
            let cell = crate::render::trimmed(cell);
            (!cell.is_empty()).then_some(cell)
        };
        if let Some(fp) = renderer.key_fingerprint_of(cell) {
            self.seen.add(fp);
        }
    }
}

/// The first pass's fingerprints, put in the Bloom filter a few hundred at a time: each
/// insert is a likely cache miss, and a tight loop of independent inserts lets the processor
/// wait for many of them at once, where one insert between two parsed rows waits alone.
struct SeenKeys<'f> {
    filter: &'f BloomFilter,
    waiting: Vec<u64>,
    repeated: HashSet<u64>,
}

impl<'f> SeenKeys<'f> {
    const AT_ONCE: usize = 256;

    fn new(filter: &'f BloomFilter) -> SeenKeys<'f> {
        SeenKeys {
            filter,
            waiting: Vec::with_capacity(Self::AT_ONCE),
            repeated: HashSet::new(),
        }
    }

    fn add(&mut self, fp: u64) {
        self.waiting.push(fp);
        if self.waiting.len() == Self::AT_ONCE {
            self.insert_waiting();
        }
    }

    /// In the order they were added, so "seen before" means what it says.
    fn insert_waiting(&mut self) {
        // Each insert is an atomic read-modify-write, which waits for its cache miss alone;
        // plain loads first let the processor fetch all the batch's words at once.
        let fetched = self
            .waiting
            .iter()
            .fold(0, |acc, &fp| acc ^ self.filter.peek(fp));
        std::hint::black_box(fetched);
        for fp in self.waiting.drain(..) {
            if self.filter.insert(fp) {
                self.repeated.insert(fp);
            }
        }
    }

    /// Fingerprints added more than once (and the filter's rare false positives).
    fn repeated(mut self) -> HashSet<u64> {
        self.insert_waiting();
        self.repeated
    }
}

/// A fixed-size, blocked Bloom filter over 64-bit fingerprints: 4 MiB of 64-bit words,
/// 4 bits set within one word per key, so a lookup costs one cache miss. At a million keys
/// about one key in five thousand is a false "maybe seen", which only costs a map entry.
struct BloomFilter {
    words: Vec<AtomicU64>,
}

impl Default for BloomFilter {
    fn default() -> BloomFilter {
        BloomFilter {
            words: (0..1 << Self::WORDS_LOG2)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }
}

impl BloomFilter {
    const WORDS_LOG2: u32 = 19;

    fn word_of(fp: u64) -> usize {
        (fp >> (64 - Self::WORDS_LOG2)) as usize
    }

    /// The word `fp` would be added to, read without changing it (to bring it into cache).
    fn peek(&self, fp: u64) -> u64 {
        self.words[Self::word_of(fp)].load(Ordering::Relaxed)
    }

    /// Adds `fp`; true when it may have been added before. A key's bits are all in one word,
    /// set by one atomic `fetch_or`: of two threads adding the same key, the later one always
    /// sees the earlier one's bits.
    fn insert(&self, fp: u64) -> bool {
        let word = Self::word_of(fp);
        let bits = (0..4).fold(0u64, |bits, i| bits | 1 << ((fp >> (i * 6)) & 63));
        self.words[word].fetch_or(bits, Ordering::Relaxed) & bits == bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A customers CSV and the renderer of a campaign keyed by email, for the first pass.
    fn first_pass_parts(dir: &std::path::Path, csv: &str) -> (Campaign, Renderer) {
        std::fs::write(dir.join("customers.csv"), csv).unwrap();
        let yaml = "campaign: c\ncustomers: customers.csv\ncheckout:\n  product_id: prod_1\n  customer:\n    email: \"{{ email }}\"\n";
        let campaign = Campaign::parse(&dir.join("campaign.yaml"), yaml.to_owned()).unwrap();
        let csv = CustomerCsv::open(&campaign.customers, None).unwrap();
        let renderer = Renderer::new(&campaign, csv.headers()).unwrap();
        (campaign, renderer)
    }

    #[test]
    fn seen_keys_finds_repeats_within_across_and_after_batches() {
        let filter = BloomFilter::default();
        let mut seen = SeenKeys::new(&filter);
        let fp = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let n = SeenKeys::AT_ONCE as u64;
        for i in 0..3 * n + 10 {
            seen.add(fp(i));
            match i {
                5 => seen.add(fp(2)),               // its first sighting is in the same batch
                _ if i == n + 5 => seen.add(fp(1)), // in an earlier batch
                _ => {}
            }
        }
        seen.add(fp(3 * n + 9)); // both sightings in the last, unfilled batch
        let repeated = seen.repeated();
        for i in [2, 1, 3 * n + 9] {
            assert!(repeated.contains(&fp(i)), "{i}");
        }
        assert!(repeated.len() < 10, "{}", repeated.len());
    }

    #[test]
    fn bloom_filter_remembers() {
        let filter = BloomFilter::default();
        assert!(!filter.insert(42));
        assert!(filter.insert(42));
        let false_positives = (1000..101_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .filter(|fp| filter.insert(*fp))
            .count();
        assert!(false_positives < 10, "{false_positives}");
    }

    #[test]
    fn two_halves_find_what_one_pass_finds_wherever_the_cut_is() {
        // Repeats within the first half, within the second and across; blank lines; a
        // record ending in a lone CR; the other rows with CRLF or LF line ends.
        let csv = "email,name\r\na@x.com,A\r\nb@x.com,B\r\n\r\n ,\r\nA@X.com ,A2\rc@x.com,C\n\
                   d@x.com,D\nb@x.com,B2\n\ne@x.com,E\ne@x.com,E2\nf@x.com,\"F\"\nc@x.com,C2\n";
        let dir = tempfile::tempdir().unwrap();
        let (campaign, renderer) = first_pass_parts(dir.path(), csv);
        let open = || CustomerCsv::open(&campaign.customers, None).unwrap();
        let (rows, repeated) = keys_in_one_pass(open(), &renderer).unwrap();
        assert_eq!(rows, 10);
        assert_eq!(repeated.len(), 4, "a, b, c and e are repeated");
        let header_end = csv.find('\n').unwrap() + 1;
        let mut cuts = 0;
        for (at, _) in csv
            .match_indices('\n')
            .filter(|(at, _)| at + 1 > header_end)
        {
            let cut = (at + 1) as u64;
            if cut as usize == csv.len() {
                continue;
            }
            let found = keys_in_two_halves(&mut open(), cut, &renderer);
            assert_eq!(found, Some((rows, repeated.clone())), "cut at byte {cut}");
            cuts += 1;
        }
        assert!(cuts >= 10, "{cuts}");
    }

    #[test]
    fn plain_halves_find_what_the_csv_reader_finds_wherever_the_cut_is() {
        // No quote anywhere: repeats within each half and across; empty and blank lines
        // (spaces, only delimiters); CR, LF and CRLF line ends; a row with a cell too many,
        // whose key is not counted; trimmed and differently cased emails; no final line end.
        let long = "x".repeat(300 * 1024); // longer than a block
        let csv = format!(
            "email;name\r\na@x.com;A\r\nb@x.com;B\r\n\r\n ;\r\n;\nA@X.com ;A2\rc@x.com;C\n\
             d@x.com;D;extra\nd@x.com;D\n   \nb@x.com;{long}\n\ne@x.com;E\n\te@x.com\t;E2\nc@x.com;C2"
        );
        let dir = tempfile::tempdir().unwrap();
        let (campaign, renderer) = first_pass_parts(dir.path(), &csv);
        let open = || CustomerCsv::open(&campaign.customers, Some(b';')).unwrap();
        let (rows, repeated) = keys_in_one_pass(open(), &renderer).unwrap();
        assert_eq!(rows, 10);
        assert_eq!(repeated.len(), 4, "a, b, c and e are repeated (not d)");
        let header_end = csv.find('\n').unwrap() + 1;
        let cuts: Vec<u64> = csv
            .match_indices(['\n', '\r'])
            .map(|(at, _)| (at + 1) as u64)
            .filter(|&cut| cut as usize > header_end)
            .collect();
        assert!(cuts.len() >= 14, "{}", cuts.len());
        for cut in cuts {
            let found = keys_in_plain_halves(&open(), cut, &renderer);
            assert_eq!(found, Some((rows, repeated.clone())), "cut at byte {cut}");
        }
    }

    #[test]
    fn the_plain_pass_declines_what_it_cannot_split() {
        let dir = tempfile::tempdir().unwrap();
        let declines = |csv: &str, cut: usize| {
            let (campaign, renderer) = first_pass_parts(dir.path(), csv);
            let csv_file = CustomerCsv::open(&campaign.customers, None).unwrap();
            let plain = keys_in_plain_halves(&csv_file, cut as u64, &renderer);
            // What the first pass finds instead: the CSV reader's answer.
            (plain.is_none(), first_pass(&campaign, &renderer).unwrap())
        };
        // A quoted line break would be two plain lines, the second one a row.
        let csv = "email,note\na@x.com,\"two\nb@x.com\"\nb@x.com,x\n";
        let (declined, (rows, repeated)) = declines(csv, csv.len() - "b@x.com,x\n".len());
        assert!(declined, "a quote");
        assert_eq!((rows, repeated.len()), (2, 0));
        // A cut inside a header longer than half the file.
        let (declined, (rows, _)) = declines("email,a_very_long_column_name\na@x.com,1\n", 10);
        assert!(declined, "a cut inside the header");
        assert_eq!(rows, 1);
    }

    #[test]
    fn a_cut_inside_a_quoted_line_break_is_not_trusted() {
        let csv = "email,note\na@x.com,\"two\nlines\"\nb@x.com,x\n";
        let dir = tempfile::tempdir().unwrap();
        let (campaign, renderer) = first_pass_parts(dir.path(), csv);
        let inside = (csv.find("lines").unwrap()) as u64;
        let mut csv = CustomerCsv::open(&campaign.customers, None).unwrap();
        assert_eq!(keys_in_two_halves(&mut csv, inside, &renderer), None);
    }

    #[test]
    fn large_files_are_cut_where_a_line_starts_after_the_middle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("customers.csv");
        std::fs::write(&path, "email\na@x.com\nb@x.com\nc@x.com\nd@x.com\n").unwrap();
        // 6 + 4 * 8 = 38 bytes: the middle (19) is inside `b@x.com`, whose line ends at 21.
        assert_eq!(cut_near_the_middle(&path, 0), Some(22));
        assert_eq!(cut_near_the_middle(&path, 39), None, "too small to share");
        std::fs::write(&path, "email\na@x.com\nb@x.com").unwrap();
        assert_eq!(cut_near_the_middle(&path, 0), Some(14));
        std::fs::write(&path, "email\nabcdefghij@x.com\n").unwrap();
        assert_eq!(
            cut_near_the_middle(&path, 0),
            None,
            "no line starts after the middle"
        );
    }
}
