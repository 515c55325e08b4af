//! The products and discount codes the sandbox knows, answered as Creem's `ProductEntity` and
//! `DiscountEntity`. By default they hold what the example campaigns in `campaigns/` name, so a
//! pre-flight check of an example passes; flags replace them for a rehearsal of one's own.

use std::str::FromStr;

use serde_json::{json, Value};

use super::config::ConfigError;

/// When every catalogue entry was "created": fixed, so answers are the same on every run.
pub(super) const CATALOGUE_CREATED: &str = "2026-01-05T09:00:00.000Z";

/// One product. `--product ID[,name=TEXT][,price=CENTS][,currency=EUR]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub id: String,
    pub name: String,
    /// Minor units (cents).
    pub price: u64,
    pub currency: String,
}

/// One discount code.
/// `--discount CODE[,status=active][,expires=RFC3339][,products=prod_a+prod_b][,max=N][,redeemed=N][,percent=N]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Discount {
    pub code: String,
    /// Creem's statuses: `active`, `draft`, `expired`, `scheduled`, `deleted`.
    pub status: String,
    /// RFC 3339, e.g. `2024-12-31T23:59:59Z`.
    pub expiry_date: Option<String>,
    /// Empty: applies to every product.
    pub applies_to_products: Vec<String>,
    pub max_redemptions: Option<u64>,
    pub redeem_count: u64,
    pub percentage: u64,
}

impl Product {
    pub fn new(id: &str) -> Product {
        Product {
            id: id.to_owned(),
            name: "Sandbox product".to_owned(),
            price: 2900,
            currency: "EUR".to_owned(),
        }
    }
}

impl Discount {
    pub fn new(code: &str) -> Discount {
        Discount {
            code: code.to_owned(),
            status: "active".to_owned(),
            expiry_date: None,
            applies_to_products: Vec::new(),
            max_redemptions: None,
            redeem_count: 0,
            percentage: 20,
        }
    }
}

/// What the example campaigns name (their YAML files and customers CSVs).
pub fn default_products() -> Vec<Product> {
    [
        "prod_3kF9aQz7LmN2pR8sTvWx1y",
        "prod_6tW66i0oZM7w1qXReHJrwg",
        "prod_9bC2dE4fG6hJ8kL0mN1pQ3",
    ]
    .into_iter()
    .map(Product::new)
    .collect()
}

pub fn default_discounts() -> Vec<Discount> {
    ["EDU50", "NGO40", "LAUNCH20", "SPRING2026", "WINBACK30"]
        .into_iter()
        .map(Discount::new)
        .collect()
}

/// `KEY=VALUE` pairs.
type Options<'a> = Vec<(&'a str, &'a str)>;

/// The first comma-separated item, and the `KEY=VALUE` options after it.
fn options(text: &str) -> Result<(&str, Options<'_>), ConfigError> {
    let mut parts = text.split(',');
    let head = parts.next().unwrap_or("").trim();
    if head.is_empty() {
        return Err(ConfigError::new(format!(
            "{text:?}: the id or code is empty"
        )));
    }
    let opts = parts
        .map(|part| {
            part.split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| ConfigError::new(format!("{text:?}: {part:?} is not KEY=VALUE")))
        })
        .collect::<Result<_, _>>()?;
    Ok((head, opts))
}

fn number(text: &str, key: &str, value: &str) -> Result<u64, ConfigError> {
    value
        .parse()
        .map_err(|_| ConfigError::new(format!("{text:?}: {key} must be a whole number")))
}

impl FromStr for Product {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (id, opts) = options(text)?;
        let mut product = Product::new(id);
        for (key, value) in opts {
            match key {
                "name" => product.name = value.to_owned(),
                "price" => product.price = number(text, key, value)?,
                "currency" => product.currency = value.to_ascii_uppercase(),
                _ => {
                    return Err(ConfigError::new(format!(
                        "{text:?}: unknown product option {key:?} (name, price, currency)"
                    )))
                }
            }
        }
        Ok(product)
    }
}

impl FromStr for Discount {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const STATUSES: [&str; 5] = ["active", "draft", "expired", "scheduled", "deleted"];
        let (code, opts) = options(text)?;
        let mut discount = Discount::new(code);
        for (key, value) in opts {
            match key {
                "status" if STATUSES.contains(&value) => discount.status = value.to_owned(),
                "status" => {
                    return Err(ConfigError::new(format!(
                        "{text:?}: status must be one of {}",
                        STATUSES.join(", ")
                    )))
                }
                "expires" => {
                    value.parse::<jiff::Timestamp>().map_err(|_| {
                        ConfigError::new(format!(
                            "{text:?}: expires must be a date-time like 2024-12-31T23:59:59Z"
                        ))
                    })?;
                    discount.expiry_date = Some(value.to_owned());
                }
                "products" => {
                    discount.applies_to_products = value
                        .split('+')
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                "max" => discount.max_redemptions = Some(number(text, key, value)?),
                "redeemed" => discount.redeem_count = number(text, key, value)?,
                "percent" => discount.percentage = number(text, key, value)?,
                _ => {
                    return Err(ConfigError::new(format!(
                        "{text:?}: unknown discount option {key:?} \
                         (status, expires, products, max, redeemed, percent)"
                    )))
                }
            }
        }
        Ok(discount)
    }
}

/// Creem's ids are the prefix and 22 base-62 characters; a stable one is made from the name.
pub(super) fn stable_id(prefix: &str, name: &str) -> String {
    use sha2::{Digest, Sha256};
    const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let digest = Sha256::digest(name.as_bytes());
    let mut id = String::with_capacity(prefix.len() + 22);
    id.push_str(prefix);
    id.extend(
        digest
            .iter()
            .take(22)
            .map(|b| char::from(BASE62[usize::from(*b) % 62])),
    );
    id
}

impl Product {
    pub(super) fn entity(&self, base_url: &str) -> Value {
        json!({
            "id": self.id,
            "mode": "test",
            "object": "product",
            "name": self.name,
            "description": "A product of the creem-batch sandbox.",
            "price": self.price,
            "currency": self.currency,
            "billing_type": "onetime",
            "billing_period": "once",
            "status": "active",
            "tax_mode": "inclusive",
            "tax_category": "saas",
            "product_url": format!("{base_url}/product/{}", self.id),
            "default_success_url": null,
            "features": [],
            "created_at": CATALOGUE_CREATED,
            "updated_at": CATALOGUE_CREATED,
        })
    }
}

impl Discount {
    pub(super) fn entity(&self) -> Value {
        let mut entity = json!({
            "id": stable_id("dis_", &self.code),
            "mode": "test",
            "object": "discount",
            "status": self.status,
            "name": format!("Sandbox discount {}", self.code),
            "code": self.code,
            "type": "percentage",
            "amount": self.percentage,
            "percentage": self.percentage,
            "duration": "once",
            "applies_to_products": self.applies_to_products,
            "redeem_count": self.redeem_count,
        });
        if let Some(expiry) = &self.expiry_date {
            entity["expiry_date"] = Value::from(expiry.as_str());
        }
        if let Some(max) = self.max_redemptions {
            entity["max_redemptions"] = Value::from(max);
        }
        entity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_into_entries() {
        let product: Product = "prod_x,price=1500,currency=usd,name=Pro plan"
            .parse()
            .unwrap();
        assert_eq!(
            (
                product.id.as_str(),
                product.price,
                product.currency.as_str()
            ),
            ("prod_x", 1500, "USD")
        );
        assert_eq!(product.name, "Pro plan");
        let discount: Discount =
            "OLD10,status=expired,expires=2024-12-31T23:59:59Z,products=prod_a+prod_b,max=5"
                .parse()
                .unwrap();
        assert_eq!(discount.status, "expired");
        assert_eq!(discount.applies_to_products, ["prod_a", "prod_b"]);
        assert_eq!(discount.max_redemptions, Some(5));
        assert!("X,status=gone".parse::<Discount>().is_err());
        assert!("X,expires=tomorrow".parse::<Discount>().is_err());
        assert!("prod_x,colour=red".parse::<Product>().is_err());
        assert!(",price=1".parse::<Product>().is_err());
    }

    #[test]
    fn stable_ids_depend_only_on_the_name() {
        assert_eq!(stable_id("dis_", "A"), stable_id("dis_", "A"));
        assert_ne!(stable_id("dis_", "A"), stable_id("dis_", "B"));
        assert_eq!(stable_id("cust_", "a@b.c").len(), 5 + 22);
    }
}
