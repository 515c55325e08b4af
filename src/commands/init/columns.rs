//! What init makes of a customers file's columns: which is the email (or the Creem customer
//! id), the product, the seats, the locale, the discount code; which are ids; which look like
//! personal data.

use crate::render::check_email;
use crate::template::column_reference;

/// What init found in the CSV's columns (indexes into the header).
#[derive(Debug, Default)]
pub(super) struct Columns {
    pub(super) email: Option<usize>,
    pub(super) customer_id: Option<usize>,
    pub(super) product: Option<usize>,
    pub(super) units: Option<usize>,
    pub(super) locale: Option<usize>,
    pub(super) discount: Option<usize>,
    /// Id columns (a record or user id): sent as metadata, to find the customer again.
    pub(super) ids: Vec<usize>,
}

impl Columns {
    pub(super) fn guess(headers: &[String], rows: &[Vec<String>]) -> Columns {
        let usable = |i: usize| column_reference(&headers[i], headers).is_some();
        // By the whole name, or its last word (`metadata.seats`, `Preferred Locale`).
        let named = |i: usize, names: &[&str]| {
            names.contains(&normalise(&headers[i]).as_str())
                || last_word(&headers[i]).is_some_and(|w| names.contains(&w.as_str()))
        };
        // Share of the sampled non-empty values that pass `test`; `None` with no values.
        let share = |i: usize, test: &dyn Fn(&str) -> bool| -> Option<f64> {
            let values: Vec<&str> = rows
                .iter()
                .map(|r| r[i].as_str())
                .filter(|v| !v.is_empty())
                .collect();
            let good = values.iter().filter(|v| test(v)).count();
            (!values.is_empty()).then(|| good as f64 / values.len() as f64)
        };
        let all = |i: usize, test: &dyn Fn(&str) -> bool| share(i, test) == Some(1.0);
        let indexes = || (0..headers.len()).filter(|&i| usable(i));
        let is_email = |v: &str| check_email(v).is_ok();

        // The email column: by its name (when its values do not contradict it), then by its
        // values, then by its name alone (`check` will show the bad values).
        let tier = |i: usize| {
            let n = normalise(&headers[i]);
            if n == "email" {
                Some(0)
            } else if EMAIL_NAMES.contains(&n.as_str()) {
                Some(1)
            } else if n.contains("email") {
                Some(2)
            } else {
                None
            }
        };
        let mostly_emails = |i: usize| share(i, &is_email).is_none_or(|s| s >= 0.5);
        let email = indexes()
            .filter(|&i| tier(i).is_some() && mostly_emails(i))
            .min_by_key(|&i| (tier(i), i))
            .or_else(|| indexes().find(|&i| all(i, &is_email)))
            .or_else(|| {
                indexes()
                    .filter(|&i| tier(i).is_some_and(|t| t < 2))
                    .min_by_key(|&i| (tier(i), i))
            });
        let customer_id = match email {
            Some(_) => None,
            None => indexes().find(|&i| all(i, &|v| v.starts_with("cust_"))),
        };
        let product =
            indexes().find(|&i| named(i, PRODUCT_NAMES) && all(i, &|v| v.starts_with("prod_")));
        let units = indexes().find(|&i| {
            named(i, UNITS_NAMES) && all(i, &|v| v.parse::<u64>().is_ok_and(|n| n >= 1))
        });
        let locale = indexes().find(|&i| named(i, LOCALE_NAMES) && all(i, &looks_like_locale));
        let is_code = |v: &str| v.len() <= 64 && !v.contains(char::is_whitespace);
        let discount = indexes().find(|&i| {
            DISCOUNT_NAMES.contains(&normalise(&headers[i]).as_str())
                && share(i, &is_code).is_none_or(|s| s == 1.0)
        });
        let mut columns = Columns {
            email,
            customer_id,
            product,
            units,
            locale,
            discount,
            ids: Vec::new(),
        };
        let wired = columns.wired();
        columns.ids = indexes()
            .filter(|&i| !wired.contains(&i) && is_id_column(&headers[i]))
            .collect();
        columns
    }

    /// The columns wired to a checkout field (the others go to metadata).
    pub(super) fn wired(&self) -> Vec<usize> {
        [
            self.email,
            self.customer_id,
            self.product,
            self.units,
            self.locale,
            self.discount,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The key columns: the email or customer id column, else the first column.
    pub(super) fn key(&self) -> usize {
        self.email.or(self.customer_id).unwrap_or(0)
    }
}

/// Email column names besides `email`, compared lowercase without spaces or punctuation
/// (so `E-Mail Address` is `emailaddress`).
const EMAIL_NAMES: &[&str] = &[
    "emailaddress",
    "mail",
    "mailaddress",
    "emailadresse",
    "courriel",
    "correo",
    "correoelectronico",
    "epost",
    "邮箱",
    "电子邮件",
    "メール",
    "メールアドレス",
];
const PRODUCT_NAMES: &[&str] = &["productid", "product", "creemproductid"];
const UNITS_NAMES: &[&str] = &["units", "seats", "quantity", "qty", "licenses", "licences"];
const LOCALE_NAMES: &[&str] = &[
    "locale",
    "language",
    "lang",
    "locales",
    "preferredlocale",
    "preferredlocales",
];
const DISCOUNT_NAMES: &[&str] = &[
    "discount",
    "discountcode",
    "coupon",
    "couponcode",
    "promo",
    "promocode",
    "promotioncode",
    "voucher",
    "vouchercode",
    "rabattcode",
    "gutschein",
    "gutscheincode",
];
/// Id columns whose last word is not `id` (Mailchimp's member ids).
const ID_NAMES: &[&str] = &[
    "leid",
    "euid",
    "uuid",
    "guid",
    "userid",
    "customerid",
    "memberid",
];

/// The last word of a column name, lowercase (`metadata.seats` -> `seats`, `userId` -> `id`).
fn last_word(name: &str) -> Option<String> {
    let mut words: Vec<String> = Vec::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            previous_lower = false;
            words.push(String::new());
            continue;
        }
        if c.is_uppercase() && previous_lower {
            words.push(String::new());
        }
        previous_lower = c.is_lowercase();
        match words.last_mut() {
            Some(word) => word.extend(c.to_lowercase()),
            None => words.push(c.to_lowercase().collect()),
        }
    }
    words.into_iter().rev().find(|w| !w.is_empty())
}

/// A column that identifies a record (`Record ID`, `user_id`, `LEID`), not a person's data.
/// Tax and card ids are the customer's own data, not a record's: they stay opt-in.
fn is_id_column(name: &str) -> bool {
    let normal = normalise(name);
    let personal = ["vat", "tax", "card", "passport", "national", "ssn"];
    if personal.iter().any(|p| normal.contains(p)) {
        return false;
    }
    ID_NAMES.contains(&normal.as_str())
        || last_word(name).is_some_and(|w| matches!(w.as_str(), "id" | "uuid" | "guid"))
}

/// Personal data a Mailchimp, HubSpot or Shopify export carries: marked as such in the file.
pub(super) fn is_personal(name: &str) -> bool {
    let normal = normalise(name);
    let words = [
        "name",
        "address",
        "street",
        "city",
        "zip",
        "postal",
        "postcode",
        "phone",
        "mobile",
        "birth",
        "latitude",
        "longitude",
        "company",
        "vat",
        "tax",
        "note",
    ];
    words.iter().any(|w| normal.contains(w))
        || last_word(name).is_some_and(|w| matches!(w.as_str(), "ip" | "tel" | "dob" | "cc"))
}

/// Lowercase, letters and digits only.
fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// `en`, `fr`, `zh-CN`, `pt_BR`, `es-419`.
pub(super) fn looks_like_locale(value: &str) -> bool {
    let (language, region) = match value.split_once(['-', '_']) {
        Some((l, r)) => (l, Some(r)),
        None => (value, None),
    };
    (2..=3).contains(&language.len())
        && language.chars().all(|c| c.is_ascii_alphabetic())
        && region.is_none_or(|r| {
            (2..=4).contains(&r.len()) && r.chars().all(|c| c.is_ascii_alphanumeric())
        })
}
