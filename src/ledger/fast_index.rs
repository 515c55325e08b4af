//! The one fast path: indexing a ledger this version wrote, for a re-run over a finished
//! million-row campaign (the CSV reader takes seconds over the bodies; this finds lines with
//! `memchr`). It reads only the plain case: every record one line, its first cells unquoted,
//! the body one quoted cell, and the cells after it unquoted. Anything else returns `None` and the CSV reader indexes the
//! file ([`super::prior`]), which also words any problem. A test pins the two together.

use crate::platform::ReadAt;
use std::fs::File;

use super::index::Index;
use super::record::{Status, COLUMNS};
use super::Span;

/// Cells after `body` (`target`, `reissues`, `previous_checkouts`): never quoted.
const AFTER_BODY: usize = 3;
/// Cells before `body`.
const BEFORE_BODY: usize = COLUMNS.len() - 1 - AFTER_BODY;
const ROW: usize = 1;
const STATUS: usize = 3;
const CHECKOUT_URL: usize = 5;
const CAMPAIGN: usize = 12;
const INPUT_HASH: usize = 14;

/// Indexes the records from byte `start` (after the header) into `index`, or `None`.
pub(super) fn index_lines(file: &File, start: u64, mut index: Index) -> Option<Index> {
    let mut buf = vec![0u8; 1 << 20];
    let mut filled = 0; // bytes in `buf`, which starts at file offset `at`
    let mut at = start;
    loop {
        let read = file.read_at(&mut buf[filled..], at + filled as u64).ok()?;
        filled += read;
        let mut used = 0;
        while let Some(newline) = memchr::memchr(b'\n', &buf[used..filled]) {
            let line = &buf[used..used + newline];
            let end = at + (used + newline + 1) as u64;
            add_line(&mut index, line, Span(at + used as u64), end)?;
            used += newline + 1;
        }
        if read == 0 {
            // A last record without a newline (torn, or saved so) is the CSV reader's case.
            return (used == filled).then_some(index);
        }
        buf.copy_within(used..filled, 0);
        at += used as u64;
        filled -= used;
        if filled == buf.len() {
            buf.resize(buf.len().checked_mul(2)?, 0); // a line longer than the buffer
        }
    }
}

fn add_line(index: &mut Index, line: &[u8], span: Span, end: u64) -> Option<()> {
    let mut cells = [&line[..0]; BEFORE_BODY];
    let mut rest = line;
    for cell in cells.iter_mut() {
        let comma = memchr::memchr(b',', rest)?;
        *cell = &rest[..comma];
        rest = &rest[comma + 1..];
    }
    // The cells after the body hold no comma or quote: split them off from the right.
    let mut after = [&line[..0]; AFTER_BODY];
    for cell in after.iter_mut().rev() {
        let comma = memchr::memrchr(b',', rest)?;
        *cell = &rest[comma + 1..];
        rest = &rest[..comma];
    }
    let plain = cells
        .iter()
        .chain(&after)
        .all(|c| memchr::memchr(b'"', c).is_none());
    let body_is_one_cell = match rest {
        [] => true,
        [b'"', inner @ .., b'"'] => inner.iter().filter(|&&b| b == b'"').count() % 2 == 0,
        _ => false,
    };
    if !plain || !body_is_one_cell || memchr::memchr(b'\r', rest).is_some() {
        return None;
    }
    let text = |cell: &[u8]| std::str::from_utf8(cell).ok().map(str::to_owned);
    let row: usize = std::str::from_utf8(cells[ROW]).ok()?.parse().ok()?;
    let status = Status::parse(cells[STATUS])?;
    index.note_target(after[0], cells[CHECKOUT_URL]); // `target`, the first after the body
    index.add(
        row,
        status,
        &text(cells[CAMPAIGN])?,
        cells[INPUT_HASH],
        span,
        end,
    )
}
