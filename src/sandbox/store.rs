//! Checkouts and counters. A checkout is kept as the JSON it was created with (one allocation,
//! a few hundred bytes) so a million-request benchmark stays small; its id encodes its index,
//! so looking one up needs no second map.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::faults::splitmix64;
use super::merchant::MerchantConfig;
use super::shapes::{self, custom_fields, customer_entity, now_ms};
use super::validate::NewCheckout;

/// Creem's checkout statuses, in the order a checkout moves through them.
pub(super) const STATUSES: [&str; 4] = ["pending", "processing", "completed", "expired"];
const COMPLETED: u8 = 2;
const EXPIRED: u8 = 3;

struct Record {
    request_id: Option<Box<str>>,
    /// The checkout as created, with status `pending`.
    json: Bytes,
    /// Index into `STATUSES`.
    status: u8,
    /// Index into the keys seen: the key that created a checkout signs its redirect, as a
    /// merchant's own API key does at Creem.
    key: u32,
    discount_code: Option<Box<str>>,
    /// When it was paid, in ms since the epoch (0 until then).
    paid_at_ms: u64,
}

pub(super) struct Store {
    /// Makes ids differ between sandbox runs, so an id from an earlier run is unknown (404)
    /// rather than silently naming some other checkout of this run.
    salt: u64,
    next: AtomicU64,
    /// Indexed by checkout index; a slot stays `None` only while its checkout is being built.
    records: Mutex<Vec<Option<Record>>>,
    keys: Mutex<Keys>,
    merchant: Arc<MerchantConfig>,
}

/// The API keys checkouts were created with, each once: by key, and by index.
type Keys = (HashMap<Arc<str>, u32>, Vec<Arc<str>>);

/// A checkout as the page and the payment see it.
pub(super) struct View {
    /// The checkout as the API answers it now.
    pub checkout: Value,
    pub status: &'static str,
    pub key: Arc<str>,
    pub discount_code: Option<Box<str>>,
}

/// Why a checkout could not be paid or expired: it already was.
pub(super) enum Settled {
    Unknown,
    Already(View),
}

#[derive(Serialize)]
struct CheckoutJson<'a> {
    id: &'a str,
    object: &'static str,
    mode: &'static str,
    status: &'static str,
    product: &'a str,
    units: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_fields: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Value>,
    checkout_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    success_url: Option<&'a str>,
}

impl Store {
    pub fn new(salt: u64, merchant: Arc<MerchantConfig>) -> Self {
        Store {
            salt,
            next: AtomicU64::new(0),
            records: Mutex::new(Vec::new()),
            keys: Mutex::new((HashMap::new(), Vec::new())),
            merchant,
        }
    }

    fn intern_key(&self, key: &str) -> u32 {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&index) = keys.0.get(key) {
            return index;
        }
        let index = u32::try_from(keys.1.len()).unwrap_or(u32::MAX);
        let key: Arc<str> = Arc::from(key);
        keys.0.insert(key.clone(), index);
        keys.1.push(key);
        index
    }

    fn key(&self, index: u32) -> Arc<str> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.1
            .get(index as usize)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    /// Stores a new checkout created with `api_key` and returns its JSON (shared with the
    /// store, not copied).
    pub fn create(&self, checkout: NewCheckout, base_url: &str, api_key: &str) -> Bytes {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        let id = self.encode_id(index);
        let json = CheckoutJson {
            id: &id,
            object: "checkout",
            mode: "test",
            status: STATUSES[0],
            product: &checkout.product_id,
            units: checkout.units,
            request_id: checkout.request_id.as_deref(),
            customer: customer_entity(checkout.customer.as_ref(), now_ms()),
            custom_fields: custom_fields(checkout.custom_fields.as_ref()),
            metadata: checkout.metadata.as_ref(),
            checkout_url: format!("{base_url}/checkout/{id}"),
            success_url: checkout.success_url.as_deref(),
        };
        let json = Bytes::from(serde_json::to_vec(&json).expect("checkout JSON serialises"));
        let record = Record {
            request_id: checkout.request_id.map(String::into_boxed_str),
            json: json.clone(),
            status: 0,
            key: self.intern_key(api_key),
            discount_code: checkout.discount_code.map(String::into_boxed_str),
            paid_at_ms: 0,
        };
        let slot = usize::try_from(index).expect("checkout index fits in memory");
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() <= slot {
            records.resize_with(slot + 1, || None);
        }
        records[slot] = Some(record);
        json
    }

    /// The checkout's JSON with its current status, or `None` if the id is unknown.
    pub fn get(&self, id: &str) -> Option<Bytes> {
        let slot = self.decode_id(id)?;
        let (json, status, paid, discount) = {
            let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
            let record = records.get(slot)?.as_ref()?;
            (
                record.json.clone(),
                record.status,
                record.paid_at_ms,
                record.discount_code.clone(),
            )
        };
        if status == 0 {
            return Some(json);
        }
        let value = self.patched(&json, status, paid, discount.as_deref());
        Some(Bytes::from(
            serde_json::to_vec(&value).expect("checkout JSON serialises"),
        ))
    }

    /// The checkout for its page.
    pub fn view(&self, id: &str) -> Option<View> {
        let slot = self.decode_id(id)?;
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let record = records.get(slot)?.as_ref()?;
        Some(self.view_of(record))
    }

    fn view_of(&self, record: &Record) -> View {
        View {
            checkout: self.patched(
                &record.json,
                record.status,
                record.paid_at_ms,
                record.discount_code.as_deref(),
            ),
            status: STATUSES[usize::from(record.status)],
            key: self.key(record.key),
            discount_code: record.discount_code.clone(),
        }
    }

    /// Moves a checkout to `status`; `None` if the id is unknown or the status is not Creem's.
    pub fn set_status(&self, id: &str, status: &str) -> Option<Bytes> {
        let status = STATUSES.iter().position(|s| *s == status)? as u8;
        let slot = self.decode_id(id)?;
        {
            let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
            let record = records.get_mut(slot)?.as_mut()?;
            if status == COMPLETED && record.paid_at_ms == 0 {
                record.paid_at_ms = now_ms();
            }
            record.status = status;
        }
        self.get(id)
    }

    /// The customer pays (`to` completed) or lets it lapse (`to` expired): only an open
    /// checkout (pending or processing) moves, so paying twice sends one webhook.
    pub fn settle(&self, id: &str, to_completed: bool) -> Result<View, Settled> {
        let slot = self.decode_id(id).ok_or(Settled::Unknown)?;
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let record = records
            .get_mut(slot)
            .and_then(Option::as_mut)
            .ok_or(Settled::Unknown)?;
        if record.status >= COMPLETED {
            return Err(Settled::Already(self.view_of(record)));
        }
        if to_completed {
            record.status = COMPLETED;
            record.paid_at_ms = now_ms();
        } else {
            record.status = EXPIRED;
        }
        Ok(self.view_of(record))
    }

    /// How many checkouts were created per `request_id`; `min` drops the ones below it.
    pub fn per_request_id(&self, min: u64) -> HashMap<String, u64> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for id in records
            .iter()
            .flatten()
            .filter_map(|r| r.request_id.as_deref())
        {
            *counts.entry(id).or_default() += 1;
        }
        counts
            .into_iter()
            .filter(|(_, n)| *n >= min)
            .map(|(id, n)| (id.to_owned(), n))
            .collect()
    }

    /// `ch_` + 22 base-62 digits: the scrambled index, then a check value so that random or
    /// stale ids are rejected instead of decoding to a real index.
    fn encode_id(&self, index: u64) -> String {
        let scrambled = (index ^ self.salt).wrapping_mul(MULTIPLIER);
        let mut id = String::with_capacity(3 + 2 * ID_HALF);
        id.push_str("ch_");
        push_base62(&mut id, scrambled);
        push_base62(&mut id, splitmix64(scrambled ^ self.salt));
        id
    }

    fn decode_id(&self, id: &str) -> Option<usize> {
        let digits = id.strip_prefix("ch_")?;
        if digits.len() != 2 * ID_HALF || !digits.is_ascii() {
            return None;
        }
        let (scrambled, check) = digits.split_at(ID_HALF);
        let scrambled = parse_base62(scrambled)?;
        if parse_base62(check)? != splitmix64(scrambled ^ self.salt) {
            return None;
        }
        usize::try_from(scrambled.wrapping_mul(UNSCRAMBLE) ^ self.salt).ok()
    }
}

impl Store {
    /// Status changes are rare (tests, `status` rehearsals, clicks), so patching a copy on read
    /// is cheaper overall than keeping every checkout as a mutable JSON tree.
    fn patched(&self, json: &[u8], status: u8, paid_at_ms: u64, discount: Option<&str>) -> Value {
        let mut value: Value = serde_json::from_slice(json).expect("stored checkout is JSON");
        value["status"] = Value::from(STATUSES[usize::from(status)]);
        if status == COMPLETED {
            value["order"] = shapes::order(&self.merchant, &value, paid_at_ms, discount);
        }
        value
    }
}

const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
const UNSCRAMBLE: u64 = inverse(MULTIPLIER);
const ID_HALF: usize = 11;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The multiplicative inverse of an odd number modulo 2^64 (Newton's iteration).
const fn inverse(odd: u64) -> u64 {
    let mut inv = odd;
    let mut i = 0;
    while i < 6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inv)));
        i += 1;
    }
    inv
}

fn push_base62(out: &mut String, mut n: u64) {
    let mut digits = [b'0'; ID_HALF];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.extend(digits.iter().map(|&d| char::from(d)));
}

fn parse_base62(digits: &str) -> Option<u64> {
    digits.bytes().try_fold(0u64, |n, d| {
        let value = BASE62.iter().position(|&b| b == d)? as u64;
        n.checked_mul(62)?.checked_add(value)
    })
}
