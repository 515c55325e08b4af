//! Tests of `answer`.

use super::*;
use proptest::prelude::*;

fn answer(status: u16, body: &[u8]) -> Answer {
    classify(
        Parts {
            status,
            retry_after: None,
            location: None,
            body: Some(body),
        },
        Purpose::Create,
    )
}

fn refused(status: u16, body: &[u8]) -> String {
    match answer(status, body) {
        Answer::Refused { error, .. } => error.to_string(),
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn api_errors_in_every_shape() {
    assert_eq!(
        refused(
            400,
            br#"{"trace_id":"t1","status":400,"error":"Bad Request","message":["a","b"]}"#
        ),
        "HTTP 400 Bad Request: a; b (trace_id t1)"
    );
    assert_eq!(
        refused(400, br#"{"message":"just one"}"#),
        "HTTP 400 Bad Request: just one"
    );
    assert_eq!(
        refused(400, br#"{"error":"Bad Request"}"#),
        "HTTP 400 Bad Request: Bad Request"
    );
    assert_eq!(refused(400, b"oops"), "HTTP 400 Bad Request: oops");
    assert_eq!(refused(400, b""), "HTTP 400 Bad Request");
}

#[test]
fn the_error_is_typed_and_its_trace_id_is_a_field() {
    let Answer::Refused { error, auth } = answer(401, br#"{"trace_id":"t9","message":"no"}"#)
    else {
        panic!("not refused")
    };
    assert!(auth);
    assert_eq!(
        error,
        SendError::Http {
            status: 401,
            messages: "no".into(),
            trace_id: Some("t9".into()),
            location: None
        }
    );
    let other = SendError::Http {
        status: 401,
        messages: "no".into(),
        trace_id: Some("t10".into()),
        location: None,
    };
    assert_eq!(error.kind_key(), other.kind_key());
}

#[test]
fn a_redirect_names_its_location_or_says_it_has_none() {
    let with = classify(
        Parts {
            status: 301,
            retry_after: None,
            location: Some("https://api.creem.io/v1/checkouts"),
            body: Some(b""),
        },
        Purpose::Create,
    );
    let Answer::Refused { error, .. } = with else {
        panic!("not refused")
    };
    assert_eq!(
        error.to_string(),
        "HTTP 301 Moved Permanently to https://api.creem.io/v1/checkouts (is the base URL right?)"
    );
    assert_eq!(refused(302, b""), "HTTP 302 Found without a Location");
}

#[test]
fn server_text_is_escaped_when_shown() {
    assert_eq!(
        refused(400, b"{\"message\":\"x\\u001b[2J\\ny\"}"),
        r"HTTP 400 Bad Request: x\u{1b}[2J\u{a}y"
    );
}

#[test]
fn a_200_without_a_usable_link_is_not_a_checkout() {
    let unusable = |body: &[u8]| match answer(200, body) {
        Answer::Unusable { error, checkout_id } => (error.to_string(), checkout_id),
        other => panic!("usable: {other:?}"),
    };
    assert_eq!(
        unusable(br#"{"id":"ch_1"}"#),
        (
            "HTTP 200 but not a usable checkout: no checkout_url".into(),
            "ch_1".into()
        )
    );
    assert!(
        unusable(br#"{"id":"ch_1","checkout_url":"javascript:alert(1)"}"#)
            .0
            .contains("not an http(s) link: javascript:alert(1)")
    );
    assert_eq!(unusable(b"[]").1, "");
    assert!(matches!(
        answer(
            200,
            br#"{"id":"ch_1","checkout_url":"https://creem.io/c/1"}"#
        ),
        Answer::Checkout(_)
    ));
    // A fetched checkout needs no link.
    assert!(matches!(
        classify(
            Parts {
                status: 200,
                retry_after: None,
                location: None,
                body: Some(br#"{"id":"ch_1"}"#)
            },
            Purpose::Fetch
        ),
        Answer::Checkout(_)
    ));
}

#[test]
fn an_answer_too_large_fails_the_attempt() {
    let parts = |status| Parts {
        status,
        retry_after: None,
        location: None,
        body: None,
    };
    assert!(matches!(
        classify(parts(200), Purpose::Create),
        Answer::Unusable {
            error: SendError::TooLarge { status: 200 },
            ..
        }
    ));
    assert!(matches!(
        classify(parts(503), Purpose::Create),
        Answer::Retry {
            error: SendError::TooLarge { status: 503 },
            ..
        }
    ));
    assert_eq!(
        SendError::TooLarge { status: 200 }.to_string(),
        "HTTP 200: the answer is larger than 1 MiB and was not read"
    );
}

#[test]
fn a_429_without_a_usable_retry_after_waits_a_second() {
    let parts = |retry_after| Parts {
        status: 429,
        retry_after,
        location: None,
        body: Some(b""),
    };
    for garbage in [None, Some("soon"), Some("-5"), Some("NaN")] {
        assert!(matches!(
            classify(parts(garbage), Purpose::Create),
            Answer::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(1)
        ));
    }
}

proptest! {
    #[test]
    fn any_answer_is_classified_without_panic(
        status in 0u16..1000,
        retry_after in proptest::option::of(".*"),
        location in proptest::option::of(".*"),
        body in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
        json in proptest::option::of("\\{\"(id|checkout_url|message|trace_id|error)\":(\"[^\"]*\"|[0-9e.-]+|null|\\[\\]|\\{\\})\\}"),
    ) {
        let body = json.map(String::into_bytes).or(body);
        for purpose in [Purpose::Create, Purpose::Fetch] {
            let answer = classify(
                Parts {
                    status,
                    retry_after: retry_after.as_deref(),
                    location: location.as_deref(),
                    body: body.as_deref(),
                },
                purpose,
            );
            if let Answer::Retry { retry_after: Some(wait), .. } = &answer {
                prop_assert!(*wait <= super::super::retry::MAX_PAUSE);
            }
            let shown = match &answer {
                Answer::Checkout(_) => String::new(),
                Answer::Unusable { error, .. } | Answer::Retry { error, .. } | Answer::Refused { error, .. } => error.to_string(),
            };
            prop_assert!(!shown.chars().any(char::is_control), "{shown:?}");
        }
    }
}
