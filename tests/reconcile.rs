//! `reconcile`: a ledger made by a real `run` against the in-process sandbox, then marked from
//! a file of saved webhook events, with no API call.

use creem_batch::sandbox::{Sandbox, SandboxConfig};

use crate::common::send::{campaign, creem_batch, ledger, run, text, KEY};

const OUTPUT: &str = "out/results.csv";

fn completed(
    event_id: &str,
    checkout_id: &str,
    request_id: &str,
    order: serde_json::Value,
) -> String {
    serde_json::json!({
        "id": event_id,
        "eventType": "checkout.completed",
        "created_at": 1_728_734_325_927_u64,
        "object": {
            "id": checkout_id,
            "object": "checkout",
            "request_id": request_id,
            "order": order,
            "status": "completed",
            "metadata": {"name": "x"},
        }
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marks_known_rows_and_counts_the_rest() {
    let server = Sandbox::start("127.0.0.1:0".parse().unwrap(), SandboxConfig::default())
        .await
        .unwrap();
    let (dir, _) = campaign(5, "  rate: unlimited\n");
    let out = run(dir.path(), &server.base_url(), &["--quiet"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let before = ledger(dir.path());
    let rid = |i: usize| before[i]["request_id"].clone();
    let ch = |i: usize| before[i]["checkout_id"].clone();
    let events = [
        completed(
            "evt_1",
            &ch(0),
            &rid(0),
            serde_json::json!({"id": "ord_A", "object": "order"}),
        ),
        completed("evt_2", &ch(3), &rid(3), serde_json::json!("ord_D")),
        String::new(),
        completed(
            "evt_3",
            "ch_elsewhere",
            "other-campaign-1",
            serde_json::json!({"id": "ord_X"}),
        ),
        // Creem delivered the first event again.
        completed("evt_1", &ch(0), &rid(0), serde_json::json!({"id": "ord_A"})),
        r#"{"id":"evt_4","eventType":"subscription.paid","object":{"id":"sub_1"}}"#.to_owned(),
        "{this is not json".to_owned(),
        completed(
            "evt_5",
            "ch_elsewhere2",
            "other-campaign-2",
            serde_json::Value::Null,
        ),
        "   ".to_owned(),
    ];
    std::fs::write(dir.path().join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let requests = server.stats().requests;

    let reconcile = || {
        creem_batch(
            dir.path(),
            &["reconcile", OUTPUT, "--events", "events.jsonl"],
            KEY,
        )
    };
    let out = reconcile().await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unreadable line: {}",
        text(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains("events.jsonl:7: skipped: not a webhook event"),
        "{stderr}"
    );
    for part in [
        "events: 6 read from events.jsonl (1 unreadable line(s) skipped)",
        "checkout.completed: 5 (marked completed: 2, already completed: 0, duplicates: 1, unknown request_id: 2, no request_id: 0)",
        "other event types: 1 (subscription.paid: 1)",
        "unknown request_ids: other-campaign-1, other-campaign-2",
        "5 created checkouts: 3 pending, 0 processing, 2 completed, 0 expired",
        "conversion: 40.0% (2 of 5 completed)",
        "updated out/results.csv",
    ] {
        assert!(stdout.contains(part), "stdout lacks {part:?}\n{stdout}");
    }
    assert_eq!(server.stats().requests, requests, "no API call");

    let after = ledger(dir.path());
    for (i, (old, new)) in before.iter().zip(&after).enumerate() {
        let (status, order) = match i {
            0 => ("completed", "ord_A"),
            3 => ("completed", "ord_D"),
            _ => ("pending", ""),
        };
        assert_eq!(new["checkout_status"], status, "row {}", i + 1);
        assert_eq!(new["order_id"], order, "row {}", i + 1);
        for (column, value) in old {
            if column != "checkout_status" && column != "order_id" {
                assert_eq!(&new[column], value, "row {} column {column}", i + 1);
            }
        }
    }

    // The same events again change nothing; without the bad line, exit 0.
    let clean: Vec<&str> = events
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("{this"))
        .collect();
    std::fs::write(dir.path().join("events.jsonl"), clean.join("\n")).unwrap();
    let bytes = std::fs::read(dir.path().join(OUTPUT)).unwrap();
    let out = reconcile().await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("marked completed: 0, already completed: 2, duplicates: 1"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("unchanged: out/results.csv"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read(dir.path().join(OUTPUT)).unwrap(), bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_files_are_exit_2() {
    let server = Sandbox::start("127.0.0.1:0".parse().unwrap(), SandboxConfig::default())
        .await
        .unwrap();
    let (dir, _) = campaign(1, "  rate: unlimited\n");
    let out = run(dir.path(), &server.base_url(), &["--quiet"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = creem_batch(
        dir.path(),
        &["reconcile", OUTPUT, "--events", "nope.jsonl"],
        KEY,
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("cannot read the events file nope.jsonl"),
        "{}",
        text(&out)
    );
    std::fs::write(dir.path().join("e.jsonl"), "").unwrap();
    let out = creem_batch(
        dir.path(),
        &["reconcile", "nope.csv", "--events", "e.jsonl"],
        KEY,
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("nope.csv does not exist"),
        "{}",
        text(&out)
    );
}
