//! The one policy for a poisoned lock: take the data anyway. Every lock here guards counts
//! or a first reason; a panic that poisoned one already ends the command, and the rows
//! finished so far must still reach the ledger and the summary.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
