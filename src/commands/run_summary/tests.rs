//! Tests of `run_summary`.

use super::*;
use crate::sender::SendError;
use clap::Parser;

fn args(extra: &[&str]) -> RunArgs {
    let argv = ["creem-batch", "run", "my campaign.yaml"]
        .into_iter()
        .chain(extra.iter().copied());
    let crate::cli::Command::Run(args) = crate::cli::Cli::parse_from(argv).command else {
        panic!("parsed as another command");
    };
    args
}

#[test]
fn the_resume_command_keeps_the_send_settings_and_not_the_limit() {
    let args = args(&[
        "--sandbox",
        "--rate",
        "20/s",
        "--concurrency",
        "4",
        "--limit",
        "10",
        "--json",
    ]);
    assert_eq!(
        resume_command(&args),
        "creem-batch run 'my campaign.yaml' --rate 20/s --concurrency 4 --sandbox"
    );
}

fn summary(deliveries: &[Delivery]) -> RunSummary {
    let mut ended = Ended::default();
    for (row, delivery) in deliveries.iter().enumerate() {
        ended.add(row as u64 + 1, delivery);
    }
    let mut plan = Plan::default();
    plan.rows = deliveries.len() as u64;
    RunSummary {
        campaign: "c".into(),
        output: "out.csv".into(),
        plan,
        ended,
        requests: 0,
        retries: 0,
        throttled: 0,
        rate: None,
        target: "the sandbox".into(),
        elapsed: Duration::from_secs(1),
        abort: None,
        interrupted: false,
    }
}

fn text(summary: &RunSummary) -> String {
    let mut out = Vec::new();
    summary.write_text(&mut out, &args(&[])).unwrap();
    String::from_utf8(out).unwrap()
}

fn refused(status: u16, messages: &str, kind: FailureKind) -> Delivery {
    Delivery::Failed {
        error: SendError::Http {
            status,
            messages: messages.into(),
            trace_id: Some(format!("t{status}")),
            location: None,
        },
        attempts: 1,
        kind,
        ambiguous: false,
    }
}

#[test]
fn the_top_reasons_are_counted_and_a_re_run_that_cannot_help_is_said() {
    let summary = summary(&[
        refused(400, "bad product", FailureKind::Permanent),
        refused(400, "bad product", FailureKind::Permanent),
        refused(409, "conflict", FailureKind::Permanent),
    ]);
    assert_eq!(summary.outcome(), Outcome::Partial);
    let text = text(&summary);
    assert!(text.contains("why rows failed:\n  2 row(s): HTTP 400 Bad Request: bad product\n  1 row(s): HTTP 409 Conflict: conflict\n"), "{text}");
    assert!(text.contains("a re-run will not help"), "{text}");
    assert!(!text.contains("to send the rest"), "{text}");
}

#[test]
fn exhausted_retries_point_at_a_re_run() {
    let text = text(&summary(&[refused(503, "busy", FailureKind::Exhausted)]));
    assert!(text.contains("to send the rest: creem-batch run"), "{text}");
    assert!(!text.contains("will not help"), "{text}");
}

#[test]
fn unusable_and_doubtful_rows_are_named_and_fail_the_exit() {
    let unusable = Delivery::Unusable {
        error: SendError::NotACheckout {
            status: 200,
            why: "no checkout_url".into(),
        },
        checkout_id: "ch_1".into(),
        attempts: 2,
        ambiguous: true,
    };
    let created = Delivery::Created {
        checkout: crate::sender::Checkout::default(),
        http_status: 200,
        attempts: 1,
        ambiguous: false,
    };
    let summary = summary(&[created, unusable]);
    assert_eq!(summary.outcome(), Outcome::Partial);
    let text = text(&summary);
    assert!(text.contains("2 rows: 1 created, 1 failed"), "{text}");
    assert!(
        text.contains("1 row(s) were answered without a usable checkout"),
        "{text}"
    );
    assert!(text.contains("rows 2\n"), "{text}");
    assert!(
        text.contains("1 row(s) may have a second checkout in Creem"),
        "{text}"
    );
    assert!(text.contains("`error` column of out.csv"), "{text}");
    let json = summary.json();
    assert_eq!(
        (json["unusable"].as_u64(), json["may_exist_twice"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(json["exit"], "some_rows_failed");
}

#[test]
fn pending_counts_rows_stopped_before_sending_and_held_by_the_limit() {
    let mut summary = summary(&[Delivery::NotSent { attempts: 0 }]);
    summary.ended.not_sent += 4; // never queued: the run was stopping
    summary.plan.limited = 2;
    summary.interrupted = true;
    assert_eq!(summary.pending(), 7);
    assert_eq!(summary.json()["pending"], 7);
    assert!(text(&summary).contains("7 pending"));
    assert_eq!(summary.outcome(), Outcome::Interrupted);
}

#[test]
fn rate_auto_says_found_only_when_the_server_pushed_back() {
    let mut summary = summary(&[]);
    summary.throttled = 3;
    summary.rate = Some(RateNow {
        per_second: 23.4,
        adapting: false,
        found: Some(19.6),
    });
    assert!(text(&summary).contains("rate auto: found 20/s; 3 request(s) throttled (429)"));
    assert_eq!(summary.rate_found(), Some(19.6));
    summary.throttled = 0;
    summary.rate = Some(RateNow {
        per_second: 80.0,
        adapting: true,
        found: None,
    });
    let text = text(&summary);
    assert!(
        text.contains("rate auto: reached 80/s, never pushed back by the server; 0 request(s) throttled (429)"),
        "{text}"
    );
    assert_eq!(summary.rate_found(), Some(80.0));
    summary.rate = None;
    assert_eq!(summary.rate_found(), None);
}
