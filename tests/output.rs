//! Whole outputs where the output is the contract: every command's `--help`, `run`'s summary
//! (first run, re-run, canary), `status`'s report and `verify-redirect`'s verdict, compared as
//! snapshots (`tests/snapshots/`) through [`TestEnv::snapshot`]'s redactions.

use creem_batch::sandbox::SandboxConfig;

use crate::common::{TestEnv, COMMANDS, FAST};

#[test]
fn help_of_every_command() {
    let env = TestEnv::new();
    // "" is the top-level help.
    for command in std::iter::once("").chain(COMMANDS) {
        let mut args: Vec<&str> = command.split_whitespace().collect();
        args.push("--help");
        let run = env.run(&args);
        let name = if command.is_empty() {
            "help".to_owned()
        } else {
            format!("help_{command}")
        };
        // Nothing to redact in help, and its defaults (an address, a port) must stay.
        insta::assert_snapshot!(name, run.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_summary_of_a_send_a_rerun_and_a_canary() {
    let env = TestEnv::sandbox().await;
    // Row 3 is invalid: the summary counts it and the resume command is printed.
    env.send_campaign_csv(
        "email,name,seats\nana@example.com,Ana,1\nbo@example.com,Bo,2\nbroken,Cy,1\n\
         di@example.com,Di,3\nel@example.com,El,1\n",
        FAST,
    );
    let canary = env.send(&["--quiet", "--limit", "2"]).await;
    insta::assert_snapshot!("run_summary_canary", env.snapshot_timed(&canary));
    let rest = env.send(&["--quiet"]).await;
    insta::assert_snapshot!("run_summary_rest", env.snapshot_timed(&rest));
    let again = env.send(&["--quiet"]).await;
    insta::assert_snapshot!("run_summary_nothing_left", env.snapshot_timed(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_summary_when_the_key_is_rejected() {
    let env = TestEnv::sandbox_with(SandboxConfig {
        key: Some("creem_test_the_right_one".into()),
        ..SandboxConfig::default()
    })
    .await;
    env.send_campaign(3, "  rate: unlimited\n  concurrency: 1\n");
    let run = env.send(&["--quiet"]).await;
    insta::assert_snapshot!(env.snapshot_timed(&run));
}

/// The key passes the pre-flight's lookups, then is refused at the first POST (revoked
/// meanwhile, or a gateway that checks only writes): the summary of a stopped run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_summary_when_the_key_is_rejected_mid_run() {
    use wiremock::matchers::method;
    let mock = wiremock::MockServer::start().await;
    wiremock::Mock::given(method("GET"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"id": "x", "status": "active"})),
        )
        .mount(&mock)
        .await;
    wiremock::Mock::given(method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(401).set_body_json(
            serde_json::json!({"status": 401, "error": "Unauthorized", "message": ["invalid API key"]}),
        ))
        .mount(&mock)
        .await;
    let env = TestEnv::at(mock.uri());
    env.send_campaign(3, "  rate: unlimited\n  concurrency: 1\n");
    let run = env.send(&["--quiet"]).await;
    insta::assert_snapshot!(env.snapshot_timed(&run));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_report_by_segment() {
    let env = TestEnv::sandbox().await;
    env.send_campaign_csv(
        "email,name,seats,segment\nana@example.com,Ana,1,vip\nbo@example.com,Bo,1,vip\n\
         cy@example.com,Cy,1,trial\n",
        FAST,
    );
    env.send(&["--quiet"]).await.assert_exit(0);
    let rows = env.ledger();
    assert!(env
        .server()
        .set_checkout_status(&rows[0]["checkout_id"], "completed"));
    assert!(env
        .server()
        .set_checkout_status(&rows[2]["checkout_id"], "expired"));
    let run = env
        .command_at_server(&["status", "campaign.yaml", "--by", "segment", "-q"])
        .await;
    insta::assert_snapshot!(env.snapshot_timed(&run));
}

#[test]
fn verify_redirect_verdicts() {
    // SPEC.md's test vector, then the same URL with one value changed.
    let url = "https://yourdomain.com/success?checkout_id=ch_1QyIQDw9cbFWdA1ry5Qc6I\
               &order_id=ord_4ucZ7Ts3r7EhSrl5yQE4G6&customer_id=cust_2KaCAtu6l3tpjIr8Nr9XOp\
               &subscription_id=sub_ILWMTY6uBim4EB0uxK6WE&product_id=prod_6tW66i0oZM7w1qXReHJrwg\
               &signature=5669161bda068ffb691845d1768fe6935deb510f2cb47b76b23167b33d68b0c2";
    let env = TestEnv::new().key(Some("creem_test_EXAMPLEKEY"));
    let valid = env.run(&["verify-redirect", url]);
    insta::assert_snapshot!("verify_redirect_valid", env.snapshot(&valid));
    let tampered = url.replace("ord_4ucZ7Ts3r7EhSrl5yQE4G6", "ord_4ucZ7Ts3r7EhSrl5yQE4G7");
    let invalid = env.run(&["verify-redirect", &tampered]);
    insta::assert_snapshot!("verify_redirect_invalid", env.snapshot(&invalid));
}
