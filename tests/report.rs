//! `report`: the HTML page of a ledger after a real run, statuses moved on in the sandbox and
//! a `status`. Every number on the page is read back (the page is well-formed XML, so a strict
//! parser reads it) and checked against the ledger; then headless Chromium opens it and prints
//! it, when the machine has a browser.

use std::collections::HashMap;
use std::path::Path;

use quick_xml::events::Event;

use crate::common::{Campaign, Row, TestEnv, FAST, OUTPUT};

fn segment(row: usize) -> &'static str {
    match row {
        1..=4 => "vip",
        5..=7 => "regular",
        _ => "trial",
    }
}

/// Ten customers and two without an email (invalid); sent; rows 1, 2, 5 completed, 3 and 9
/// expired; `status`; then `report --by segment`. Returns the ledger and the page.
async fn walked(env: &TestEnv) -> (Vec<Row>, String) {
    let mut csv = String::from("email,name,seats,segment\n");
    for i in 1..=12 {
        let email = if i > 10 {
            String::new()
        } else {
            format!("user{i}@example.com")
        };
        csv.push_str(&format!("{email},User {i},1,{}\n", segment(i)));
    }
    env.campaign(&Campaign::sending(FAST).build(), csv);
    env.send(&["--quiet"]).await;
    let rows = env.ledger();
    assert_eq!(rows.len(), 12);
    env.move_checkouts_and_refresh(
        &rows,
        &[
            (1, "completed"),
            (2, "completed"),
            (5, "completed"),
            (3, "expired"),
            (9, "expired"),
        ],
    )
    .await;
    let out = env
        .run_async_with_key(
            None,
            &[
                "report",
                "campaign.yaml",
                "--by",
                "segment",
                "--out",
                "r.html",
            ],
        )
        .await;
    out.assert_exit(0);
    out.stderr_has(&["wrote r.html (12 rows, 10 created, 3 completed, conversion 30.0%)"]);
    let page = std::fs::read_to_string(env.path().join("r.html")).unwrap();
    (env.ledger(), page)
}

/// Every `data-n` cell of the page: its name and its text. Panics if the page is not
/// well-formed.
fn numbers(page: &str) -> HashMap<String, String> {
    let mut reader = quick_xml::Reader::from_str(page);
    let mut numbers = HashMap::new();
    let mut open: Option<(String, String)> = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(element)) => {
                for attribute in element.attributes() {
                    let attribute = attribute.expect("a well-formed attribute");
                    if attribute.key.as_ref() == "data-n" {
                        let name = quick_xml::escape::unescape(&attribute.value)
                            .expect("known entities")
                            .into_owned();
                        open = Some((name, String::new()));
                    }
                }
            }
            Ok(Event::Text(text)) => {
                if let Some((_, value)) = &mut open {
                    value.push_str(&text);
                }
            }
            Ok(Event::End(_)) => {
                if let Some((name, value)) = open.take() {
                    assert!(
                        numbers.insert(name.clone(), value).is_none(),
                        "`{name}` twice"
                    );
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("not well-formed at {}: {e}", reader.buffer_position()),
        }
    }
    numbers
}

fn count(rows: &[Row], keep: impl Fn(&Row) -> bool) -> String {
    rows.iter().filter(|r| keep(r)).count().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_number_on_the_page_matches_the_ledger() {
    let env = TestEnv::sandbox().await;
    let (rows, page) = walked(&env).await;
    let n = numbers(&page);
    let get = |name: &str| {
        n.get(name)
            .unwrap_or_else(|| panic!("no `{name}` on the page: {n:?}"))
            .clone()
    };
    let created = |r: &Row| r["status"] == "created";

    assert_eq!(get("rows"), rows.len().to_string());
    assert_eq!(get("created"), count(&rows, created));
    for outcome in ["created", "failed", "invalid", "skipped", "pending"] {
        assert_eq!(
            get(&format!("outcome:{outcome}")),
            count(&rows, |r| r["status"] == outcome),
            "{outcome}"
        );
    }
    assert_eq!(get("outcome:invalid"), "2");
    for status in ["pending", "completed", "expired"] {
        assert_eq!(
            get(&format!("checkout:{status}")),
            count(&rows, |r| created(r) && r["checkout_status"] == status),
            "{status}"
        );
    }
    assert_eq!(get("completed"), "3");
    assert_eq!(get("conversion"), "30.0%");
    assert_eq!(get("reissued"), "0");

    // Conversion per segment, joined to the customers on `row`.
    for group in ["vip", "regular", "trial"] {
        let in_group = |r: &Row| created(r) && segment(r["row"].parse().unwrap()) == group;
        let with = |status: &str| count(&rows, |r| in_group(r) && r["checkout_status"] == status);
        assert_eq!(
            get(&format!("group:{group}:created")),
            count(&rows, in_group)
        );
        assert_eq!(get(&format!("group:{group}:completed")), with("completed"));
        assert_eq!(get(&format!("group:{group}:expired")), with("expired"));
    }
    assert_eq!(get("group:vip:conversion"), "50.0%");
    assert_eq!(get("group:trial:conversion"), "0.0%");

    // Completions over time add up to the completed rows; failure reasons to the bad rows.
    let sum = |prefix: &str| -> u64 {
        n.iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(sum("completions:"), 3);
    assert_eq!(
        sum("reason:").to_string(),
        count(&rows, |r| r["status"] == "failed"
            || r["status"] == "invalid")
    );

    // Self-contained: nothing fetched from elsewhere, no script.
    for outside in ["<script", "src=", "href=", "@import", "url("] {
        assert!(!page.contains(outside), "the page has {outside}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_opens_and_prints_on_at_most_two_pages_in_a_browser() {
    let Some((chromium, driver)) = crate::browser::browser() else {
        eprintln!("skipped: no browser (install chromium and chromium-driver, or set CHROMIUM and CHROMEDRIVER)");
        return;
    };
    let env = TestEnv::sandbox().await;
    let (rows, _) = walked(&env).await;
    let (_driver, port) = crate::browser::chromedriver(&driver).await;
    let profile = tempfile::tempdir().unwrap();
    let client = crate::browser::headless(&chromium, port, profile.path()).await;
    let page = env.path().join("r.html");
    let outcome = async {
        client.goto(&file_url(&page)).await?;
        let title = client.title().await?;
        let completed = client
            .find(fantoccini::Locator::Css("[data-n='checkout:completed']"))
            .await?
            .text()
            .await?;
        let bars = client
            .find_all(fantoccini::Locator::Css("svg rect"))
            .await?;
        let pdf = client
            .print(fantoccini::wd::PrintConfiguration::default())
            .await?;
        Ok::<_, fantoccini::error::CmdError>((title, completed, bars.len(), pdf))
    }
    .await;
    let _ = client.close().await;
    let (title, completed, bars, pdf) = outcome.expect("the browser opened the page");
    assert_eq!(title, "test-run: checkout report");
    assert_eq!(
        completed,
        count(&rows, |r| r["checkout_status"] == "completed")
    );
    // outcomes (5) + statuses (3) + groups (3) + at least one completion time + one reason
    assert!(bars >= 13, "{bars} bars");
    let pages = regex::bytes::Regex::new(r"/Type\s*/Page[^s]")
        .unwrap()
        .find_iter(&pdf)
        .count();
    assert!((1..=2).contains(&pages), "printed on {pages} pages");
}

fn file_url(path: &Path) -> String {
    url::Url::from_file_path(path)
        .expect("an absolute path")
        .to_string()
}

#[test]
fn offline_with_the_output_csv_and_a_default_file_name() {
    let env = TestEnv::new();
    env.write(
        OUTPUT,
        "request_id,row,email,status,checkout_id,checkout_url,http_status,attempts,error,\
         body_sha256,updated_at,checkout_status,campaign,order_id,input_hash,body\n\
         w-1,1,a@x.com,created,ch_1,https://x/1,200,1,,,2026-03-01T10:00:00Z,completed,wave,,,\n\
         w-2,2,b@x.com,failed,,,400,1,HTTP 400: <img src=x>,,2026-03-01T10:00:00Z,,wave,,,\n",
    );
    let out = env.run(&["report", OUTPUT]);
    out.assert_exit(0);
    let page = std::fs::read_to_string(env.path().join("out/results.report.html")).unwrap();
    let n = numbers(&page);
    assert_eq!(n["outcome:created"], "1");
    assert_eq!(n["completions:2026-03-01 10:00"], "1");
    assert_eq!(n["reason:failed: HTTP 400: <img src=x>"], "1");
    assert!(!page.contains("<img"), "outside text is escaped");
    assert!(
        page.contains("<h1>wave</h1>"),
        "the campaign's name from the ledger"
    );
}
