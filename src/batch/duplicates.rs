//! The second pass's half of finding duplicates: only the fingerprints the first pass saw
//! more than once are remembered, with the row that had each first.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// Returns the row that first had `fp`, if `fp` is one of the repeated fingerprints.
pub(super) fn seen_before(
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
