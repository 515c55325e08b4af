//! The page `checkout_url` points to: a small HTML form (no script, no external asset) where
//! a person rehearsing a campaign plays the customer. Pay does what Creem does after a
//! payment: the checkout completes with an order, the browser goes to `success_url` with a
//! signed query, and a signed `checkout.completed` webhook goes out.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::{context, Environment, UndefinedBehavior};
use serde_json::Value;

use super::shapes::{customer_id, order_id};
use super::state::Shared;
use super::store::{Settled, View};
use super::webhook;
use crate::signature::{redirect_signature, SIGNATURE_PARAM};

const TEMPLATE: &str = "checkout.html";

/// Built once per sandbox; strict, so a name missing from the context is a bug, not a blank.
pub(super) fn templates() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_template(TEMPLATE, include_str!("checkout.html"))
        .expect("the checkout template parses");
    env
}

pub(super) async fn show(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match s.store.view(&id) {
        Some(view) => render(&s, StatusCode::OK, &id, &view, title_for(view.status), None),
        None => unknown(),
    }
}

/// The customer walks away: nothing changes, the link keeps working until it expires.
pub(super) async fn cancel(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match s.store.view(&id) {
        Some(view) => render(
            &s,
            StatusCode::OK,
            &id,
            &view,
            "Checkout left",
            Some("You left the checkout: nothing was paid and nothing was sent. The link still works."),
        ),
        None => unknown(),
    }
}

pub(super) async fn expire(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match s.store.settle(&id, false) {
        Ok(view) => render(
            &s,
            StatusCode::OK,
            &id,
            &view,
            "Checkout expired",
            Some("The checkout expired: nothing was paid and no webhook was sent."),
        ),
        Err(settled) => already(&s, &id, settled),
    }
}

pub(super) async fn pay(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let view = match s.store.settle(&id, true) {
        Ok(view) => view,
        Err(settled) => return already(&s, &id, settled),
    };
    if let Some(hook) = &s.merchant.webhook {
        let event = webhook::completed_event(&view.checkout, &s.merchant, &s.base_url);
        webhook::deliver(
            s.webhook_client.clone(),
            hook.clone(),
            s.merchant.webhook_backoff,
            &event,
            s.webhooks.clone(),
        );
    }
    match view.checkout["success_url"]
        .as_str()
        .and_then(|url| signed_redirect(url, &view))
    {
        Some(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        None => render(
            &s,
            StatusCode::OK,
            &id,
            &view,
            "Payment complete",
            Some("Paid (in the sandbox). The checkout has no success_url, so Creem would show its own page here."),
        ),
    }
}

/// `success_url` with Creem's parameters and their signature appended after any of the
/// merchant's own. Only Creem's parameters are signed, as Creem does.
pub(super) fn signed_redirect(success_url: &str, view: &View) -> Option<String> {
    let mut url = url::Url::parse(success_url).ok()?;
    let checkout = &view.checkout;
    let checkout_id = checkout["id"].as_str().unwrap_or("");
    let mut params: Vec<(&str, String)> = vec![
        ("checkout_id", checkout_id.to_owned()),
        ("order_id", order_id(checkout_id)),
    ];
    if let Some(customer) = customer_id(checkout) {
        params.push(("customer_id", customer));
    }
    params.push((
        "product_id",
        checkout["product"].as_str().unwrap_or("").to_owned(),
    ));
    if let Some(request_id) = checkout["request_id"].as_str() {
        params.push(("request_id", request_id.to_owned()));
    }
    let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let signature = redirect_signature(&borrowed, &view.key);
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in &borrowed {
            query.append_pair(name, value);
        }
        query.append_pair(SIGNATURE_PARAM, &signature);
    }
    Some(url.into())
}

fn title_for(status: &str) -> &'static str {
    match status {
        "completed" => "Payment complete",
        "expired" => "Checkout expired",
        _ => "Checkout",
    }
}

fn already(s: &Shared, id: &str, settled: Settled) -> Response {
    match settled {
        Settled::Unknown => unknown(),
        Settled::Already(view) => render(
            s,
            StatusCode::CONFLICT,
            id,
            &view,
            title_for(view.status),
            Some("This checkout is already closed: nothing changed and nothing was sent."),
        ),
    }
}

fn unknown() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "No such sandbox checkout (the sandbox that made it may have stopped).\n",
    )
        .into_response()
}

/// The fields the checkout asks for, as the template reads them.
fn custom_fields(checkout: &Value) -> Vec<minijinja::Value> {
    let fields = checkout["custom_fields"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    fields
        .iter()
        .map(|field| {
            context! {
                kind => field["type"].as_str().unwrap_or("text"),
                key => field["key"].as_str().unwrap_or(""),
                label => field["label"].as_str().unwrap_or(""),
                optional => field["optional"].as_bool().unwrap_or(false),
            }
        })
        .collect()
}

fn render(
    s: &Shared,
    code: StatusCode,
    id: &str,
    view: &View,
    title: &str,
    message: Option<&str>,
) -> Response {
    let checkout = &view.checkout;
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let product_id = text(&checkout["product"]);
    let units = checkout["units"].as_u64().unwrap_or(1);
    let product = s.merchant.product(&product_id);
    let product = product.as_deref();
    let price = product.map_or_else(
        || "(not in the sandbox's catalogue)".to_owned(),
        |p| {
            let total = p.price.saturating_mul(units);
            format!("{}.{:02} {}", total / 100, total % 100, p.currency)
        },
    );
    let email = checkout["customer"]["email"].as_str();
    let page = s.templates.get_template(TEMPLATE).and_then(|t| {
        t.render(context! {
            title,
            message,
            id,
            product_id,
            product_name => product.map_or("Unknown product", |p| p.name.as_str()),
            units,
            price,
            email,
            discount_code => view.discount_code.as_deref(),
            status => view.status,
            order_id => text(&checkout["order"]["id"]),
            open => matches!(view.status, "pending" | "processing"),
            custom_fields => custom_fields(checkout),
            success_url => checkout["success_url"].as_str(),
            webhook => s.merchant.webhook.is_some(),
        })
    });
    match page {
        Ok(html) => (
            code,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the checkout page could not be drawn: {err}\n"),
        )
            .into_response(),
    }
}
