//! `GET /v1/products/{id}` (the current SDK's form), `GET /v1/products?product_id=` (the April
//! OpenAPI's form) and `GET /v1/discounts?discount_code=` (or `discount_id=`): the catalogue
//! lookups a pre-flight check makes, answered as `ProductEntity` and `DiscountEntity`.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::catalog::stable_id;
use super::state::{bump, ok_json, Shared};

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .filter(|value| !value.is_empty())
}

async fn admitted(s: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    bump(&s.counters.lookups);
    let arrival_ns = s.started.elapsed().as_nanos() as u64;
    s.misbehave(arrival_ns, headers)
        .await
        .map(drop)
        .map_err(|refusal| s.refuse(refusal))
}

fn product(s: &Shared, id: &str) -> Response {
    match s.merchant.product(id) {
        Some(product) => ok_json(product.entity(&s.base_url).to_string().into()),
        None => s.error(StatusCode::NOT_FOUND, ["Product not found"]),
    }
}

/// `GET /v1/products/{id}` and `GET /v1/products?product_id=`: the same lookup, the id in
/// the path or in the query.
pub(super) async fn product_lookup(
    State(s): State<Arc<Shared>>,
    path: Option<Path<String>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(answer) = admitted(&s, &headers).await {
        return answer;
    }
    let id = match path {
        Some(Path(id)) => Some(id),
        None => query_param(query.as_deref(), "product_id"),
    };
    match id {
        Some(id) => product(&s, &id),
        None => s.error(StatusCode::BAD_REQUEST, ["product_id must be a string"]),
    }
}

pub(super) async fn discount(
    State(s): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(answer) = admitted(&s, &headers).await {
        return answer;
    }
    let query = query.as_deref();
    let found = match (
        query_param(query, "discount_code"),
        query_param(query, "discount_id"),
    ) {
        (Some(code), _) => s.merchant.discount(&code),
        (None, Some(id)) => s
            .merchant
            .discounts
            .iter()
            .find(|d| stable_id("dis_", &d.code) == id)
            .map(std::borrow::Cow::Borrowed),
        (None, None) => {
            return s.error(
                StatusCode::BAD_REQUEST,
                ["Either discount_id or discount_code must be provided"],
            )
        }
    };
    match found {
        Some(discount) => ok_json(discount.entity().to_string().into()),
        None => s.error(StatusCode::NOT_FOUND, ["Discount not found"]),
    }
}
