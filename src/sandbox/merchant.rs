//! The merchant account the sandbox plays: its catalogue, the endpoint its webhooks go to, and
//! how strictly it checks bodies. Kept apart from `SandboxConfig` (the faults) because these
//! describe the store being rehearsed, not the network misbehaving.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use super::catalog::{default_discounts, default_products, Discount, Product};
use super::config::ConfigError;
use crate::cli::SandboxArgs;

/// Where `checkout.completed` events go, and the secret they are signed with.
#[derive(Clone, PartialEq)]
pub struct Webhook {
    pub url: String,
    pub secret: String,
}

/// The secret stays out of every `Debug` output (logs, test failures).
impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MerchantConfig {
    pub products: Vec<Product>,
    pub discounts: Vec<Discount>,
    pub webhook: Option<Webhook>,
    /// Delay before the first retry of a failed webhook delivery; it doubles each time.
    pub webhook_backoff: Duration,
    /// Creem's 400 `property X should not exist` for an unknown top-level property.
    pub reject_unknown_properties: bool,
    /// Creem's 404 `Product not found` when a checkout names a product not in the catalogue.
    pub reject_unknown_products: bool,
    /// Every product id and discount code is known (an active product or code made up on the
    /// spot): `run --sandbox` rehearses the user's own campaign, whose ids no catalogue holds.
    pub knows_everything: bool,
}

/// Deliveries per event: the first and three retries, as Creem retries a failing endpoint.
pub const WEBHOOK_ATTEMPTS: u32 = 4;

impl Default for MerchantConfig {
    /// As strict as Creem: a rehearsal that passes here must not fail against Creem.
    fn default() -> Self {
        MerchantConfig {
            products: default_products(),
            discounts: default_discounts(),
            webhook: None,
            webhook_backoff: Duration::from_millis(500),
            reject_unknown_properties: true,
            reject_unknown_products: true,
            knows_everything: false,
        }
    }
}

impl MerchantConfig {
    /// The catalogue's rehearsal for `run --sandbox`: strict about the body, as Creem is, but
    /// knowing whatever product and discount code the campaign names.
    pub fn rehearsal() -> MerchantConfig {
        MerchantConfig {
            knows_everything: true,
            ..MerchantConfig::default()
        }
    }

    pub fn product(&self, id: &str) -> Option<Cow<'_, Product>> {
        match self.products.iter().find(|p| p.id == id) {
            Some(product) => Some(Cow::Borrowed(product)),
            None => self.knows_everything.then(|| Cow::Owned(Product::new(id))),
        }
    }

    pub fn discount(&self, code: &str) -> Option<Cow<'_, Discount>> {
        match self.discounts.iter().find(|d| d.code == code) {
            Some(discount) => Some(Cow::Borrowed(discount)),
            None => self
                .knows_everything
                .then(|| Cow::Owned(Discount::new(code))),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(hook) = &self.webhook {
            let url = url::Url::parse(&hook.url)
                .map_err(|e| ConfigError::new(format!("webhook URL {:?}: {e}", hook.url)))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(ConfigError::new(format!(
                    "webhook URL {:?} must start with http:// or https://",
                    hook.url
                )));
            }
            if hook.secret.is_empty() {
                return Err(ConfigError::new("the webhook secret must not be empty"));
            }
        }
        Ok(())
    }
}

impl TryFrom<&SandboxArgs> for MerchantConfig {
    type Error = ConfigError;

    fn try_from(args: &SandboxArgs) -> Result<Self, Self::Error> {
        let webhook =
            match (&args.webhook_url, &args.webhook_secret) {
                (None, None) => None,
                (Some(url), Some(secret)) => Some(Webhook {
                    url: url.clone(),
                    secret: secret.clone(),
                }),
                (Some(_), None) => return Err(ConfigError::new(
                    "--webhook-url needs --webhook-secret (or CREEM_WEBHOOK_SECRET) to sign events",
                )),
                (None, Some(_)) => None,
            };
        let mut merchant = MerchantConfig {
            webhook,
            reject_unknown_properties: !(args.lenient || args.allow_unknown_properties),
            reject_unknown_products: !(args.lenient || args.allow_unknown_products),
            ..MerchantConfig::default()
        };
        if !args.product.is_empty() {
            merchant.products = args
                .product
                .iter()
                .map(|p| p.parse())
                .collect::<Result<_, _>>()?;
        }
        if !args.discount.is_empty() {
            merchant.discounts = args
                .discount
                .iter()
                .map(|d| d.parse())
                .collect::<Result<_, _>>()?;
        }
        merchant.validate()?;
        Ok(merchant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rehearsal_knows_any_product_and_code_and_stays_strict_about_bodies() {
        let rehearsal = MerchantConfig::rehearsal();
        assert!(rehearsal.reject_unknown_properties);
        assert_eq!(rehearsal.product("prod_mine").unwrap().id, "prod_mine");
        assert_eq!(rehearsal.discount("MINE").unwrap().status, "active");
        let strict = MerchantConfig::default();
        assert!(strict.product("prod_mine").is_none());
        assert!(strict.discount("MINE").is_none());
    }
}
