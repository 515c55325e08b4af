//! The JSON body of a checkout request, as Creem's `CreateCheckoutRequest` shapes it.

/// The request body, borrowing the row's rendered values; fields that are not set are left
/// out. Only fields of Creem's `CreateCheckoutRequest` belong here: Creem answers 400 to any
/// other top-level property.
#[derive(serde::Serialize)]
pub(super) struct Body<'a> {
    pub(super) product_id: &'a str,
    pub(super) request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) units: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) custom_price: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) discount_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) affiliate_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) success_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) customer: Option<Customer<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub(super) custom_fields: &'a [CustomFieldBody<'a>],
    #[serde(skip_serializing_if = "Metadata::is_empty")]
    pub(super) metadata: Metadata<'a>,
}

/// Creem's `CustomFieldRequestEntity`.
#[derive(serde::Serialize)]
pub(super) struct CustomFieldBody<'a> {
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    pub(super) key: &'a str,
    pub(super) label: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) optional: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) text: Option<TextBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) checkbox: Option<CheckboxBody<'a>>,
}

#[derive(serde::Serialize)]
pub(super) struct TextBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) max_length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) min_length: Option<u64>,
}

#[derive(serde::Serialize)]
pub(super) struct CheckboxBody<'a> {
    pub(super) label: &'a str,
}

/// A customer is given by email or by id, never both.
#[derive(serde::Serialize)]
pub(super) struct Customer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) email: Option<&'a str>,
}

/// Metadata entries as a JSON object, in campaign order.
pub(super) struct Metadata<'a>(pub(super) &'a [(&'a str, String)]);

impl Metadata<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl serde::Serialize for Metadata<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(key, value)| (key, value)))
    }
}
