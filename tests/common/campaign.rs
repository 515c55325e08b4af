//! Campaign files for tests: one builder for every campaign a test writes.

/// The file names [`super::TestEnv::campaign`] writes.
pub const CAMPAIGN_FILE: &str = "campaign.yaml";
pub const CUSTOMERS_FILE: &str = "customers.csv";

/// The smallest useful campaign: campaign `spring`, customers by `{{ email }}`.
pub const MINIMAL_YAML: &str = "\
campaign: spring
customers: customers.csv
checkout:
  product_id: prod_1
  customer:
    email: \"{{ email }}\"
";

/// Builds a campaign YAML from [`MINIMAL_YAML`]'s parts, adding lines where needed.
#[derive(Debug, Clone)]
pub struct Campaign {
    name: String,
    product: String,
    top: Vec<String>,
    checkout: Vec<String>,
    customer: Option<String>,
    send: Option<String>,
}

impl Default for Campaign {
    fn default() -> Campaign {
        Campaign::new()
    }
}

impl Campaign {
    /// The same campaign as [`MINIMAL_YAML`].
    pub fn new() -> Campaign {
        Campaign {
            name: "spring".to_owned(),
            product: "prod_1".to_owned(),
            top: Vec::new(),
            checkout: Vec::new(),
            customer: Some("email: \"{{ email }}\"".to_owned()),
            send: None,
        }
    }

    /// The sending tests' campaign `test-run`: output `out/results.csv`, product `prod_TEST`,
    /// units from `seats`, discount `SPRING`, `metadata.name` from `name`, and `send` (lines
    /// already indented) as its `send:` section.
    pub fn sending(send: &str) -> Campaign {
        Campaign::new()
            .name("test-run")
            .product("prod_TEST")
            .top(&format!("output: {}", super::OUTPUT))
            .checkout("units: \"{{ seats }}\"\ndiscount_code: SPRING")
            .checkout("metadata:\n  name: \"{{ name }}\"")
            .send(send)
    }

    pub fn name(mut self, name: &str) -> Campaign {
        self.name = name.to_owned();
        self
    }

    pub fn product(mut self, product: &str) -> Campaign {
        self.product = product.to_owned();
        self
    }

    /// Adds top-level YAML (e.g. `"key: [email, user_id]"`, or a whole `csv:` section).
    pub fn top(mut self, yaml: &str) -> Campaign {
        self.top.push(yaml.trim_end().to_owned());
        self
    }

    /// Adds lines under `checkout:`, written without indentation (it is added).
    pub fn checkout(mut self, yaml: &str) -> Campaign {
        for line in yaml.trim_end().lines() {
            self.checkout.push(format!("  {line}"));
        }
        self
    }

    /// Replaces the `customer:` section's lines (without indentation); `None` leaves it out.
    pub fn customer(mut self, yaml: Option<&str>) -> Campaign {
        self.customer = yaml.map(str::to_owned);
        self
    }

    /// The `send:` section's lines, indented as they are to go.
    pub fn send(mut self, yaml: &str) -> Campaign {
        self.send = Some(yaml.to_owned());
        self
    }

    pub fn build(&self) -> String {
        let mut yaml = format!("campaign: {}\ncustomers: {CUSTOMERS_FILE}\n", self.name);
        for top in &self.top {
            yaml.push_str(top);
            yaml.push('\n');
        }
        yaml.push_str(&format!("checkout:\n  product_id: {}\n", self.product));
        if let Some(customer) = &self.customer {
            yaml.push_str("  customer:\n");
            for line in customer.lines() {
                yaml.push_str(&format!("    {line}\n"));
            }
        }
        for line in &self.checkout {
            yaml.push_str(line);
            yaml.push('\n');
        }
        if let Some(send) = &self.send {
            yaml.push_str("send:\n");
            yaml.push_str(send);
        }
        yaml
    }
}

/// `rows` customers: `user{i}@example.com,User {i},{i % 3 + 1}` under `email,name,seats`.
pub fn customers(rows: usize) -> String {
    let mut csv = String::from("email,name,seats\n");
    for i in 1..=rows {
        csv.push_str(&format!("user{i}@example.com,User {i},{}\n", i % 3 + 1));
    }
    csv
}

/// The default request_id, computed here from the spec (not with the crate's code):
/// `<campaign>-` + the first 16 hex digits of SHA-256(`campaign\x1Fvalue1\x1Fvalue2...`),
/// values trimmed, the `email` column lowercased.
pub fn expected_request_id(campaign: &str, key: &[(&str, &str)]) -> String {
    use sha2::{Digest, Sha256};
    let mut text = campaign.as_bytes().to_vec();
    for (column, value) in key {
        text.push(0x1F);
        let value = value.trim();
        // An email column, whatever the export calls it (`Email`, `E-Mail`, `Email Address`).
        let folded: String = column
            .to_lowercase()
            .chars()
            .filter(|c| !" -_".contains(*c))
            .collect();
        let value = if folded == "email" || folded == "emailaddress" {
            value.to_lowercase()
        } else {
            value.to_owned()
        };
        text.extend_from_slice(value.as_bytes());
    }
    let hex = hex::encode(Sha256::digest(&text));
    format!("{campaign}-{}", &hex[..16])
}
