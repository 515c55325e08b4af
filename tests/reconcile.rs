//! `reconcile`: a ledger made by a real `run` against the in-process sandbox, then marked from
//! a file of saved webhook events, with no API call.

use crate::common::{TestEnv, OUTPUT};

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
    let env = TestEnv::sandbox().await;
    env.send_campaign(5, "  rate: unlimited\n");
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    let before = env.ledger();
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
    std::fs::write(env.path().join("events.jsonl"), events.join("\n") + "\n").unwrap();
    let requests = env.server().stats().requests;

    let reconcile = || env.run_async(&["reconcile", OUTPUT, "--events", "events.jsonl"]);
    let out = reconcile().await;
    // Exit 1 for the unreadable line 7; the report counts every kind of event.
    insta::assert_snapshot!(env.snapshot(&out));
    assert_eq!(env.server().stats().requests, requests, "no API call");

    let after = env.ledger();
    for (i, (old, new)) in before.iter().zip(&after).enumerate() {
        let (status, order) = match i {
            0 => ("completed", "ord_A"),
            3 => ("completed", "ord_D"),
            _ => ("pending", ""),
        };
        assert_eq!(new["checkout_status"], status, "row {}", i + 1);
        assert_eq!(new["order_id"], order, "row {}", i + 1);
        for (column, value) in old {
            // A marked row's updated_at becomes its event's time.
            let changes = match status {
                "completed" => &["checkout_status", "order_id", "updated_at"][..],
                _ => &["checkout_status", "order_id"][..],
            };
            if !changes.contains(&column.as_str()) {
                assert_eq!(&new[column], value, "row {} column {column}", i + 1);
            }
        }
        if status == "completed" {
            assert_eq!(
                new["updated_at"],
                "2024-10-12T11:58:45.927Z",
                "row {}",
                i + 1
            );
        }
    }

    // The same events again change nothing; without the bad line, exit 0.
    let clean: Vec<&str> = events
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("{this"))
        .collect();
    std::fs::write(env.path().join("events.jsonl"), clean.join("\n")).unwrap();
    let bytes = std::fs::read(env.ledger_path()).unwrap();
    let out = reconcile().await;
    out.assert_exit(0);
    out.has(&["marked completed: 0, already completed: 2, duplicates: 1"]);
    out.has(&["unchanged: out/results.csv"]);
    assert_eq!(std::fs::read(env.ledger_path()).unwrap(), bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_files_are_exit_2() {
    let env = TestEnv::sandbox().await;
    env.send_campaign(1, "  rate: unlimited\n");
    let out = env.send(&["--quiet"]).await;
    out.assert_exit(0);
    let out = env
        .run_async(&["reconcile", OUTPUT, "--events", "nope.jsonl"])
        .await;
    out.assert_exit(2);
    out.has(&["cannot read the events file nope.jsonl"]);
    std::fs::write(env.path().join("e.jsonl"), "").unwrap();
    let out = env
        .run_async(&["reconcile", "nope.csv", "--events", "e.jsonl"])
        .await;
    out.assert_exit(2);
    out.has(&["nope.csv does not exist"]);
}
