//! What differs from one machine to the next: the build a binary reports (`--version`, for
//! support requests) and files saved on Windows (CRLF line ends in the campaign and the CSV).

use crate::common::{repo, Campaign, TestEnv};

/// `creem-batch 0.1.0 (1a2b3c4)`, or `(unknown)` for a build without git metadata.
#[test]
fn version_names_the_version_and_the_commit() {
    let env = TestEnv::new();
    for (args, name) in [
        (&["--version"][..], "creem-batch"),
        (&["-V"], "creem-batch"),
        (&["run", "--version"], "creem-batch-run"),
    ] {
        let run = env.run(args);
        run.assert_exit(0);
        let prefix = format!("{name} {} (", env!("CARGO_PKG_VERSION"));
        let commit = run
            .stdout
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(")\n"))
            .unwrap_or_else(|| panic!("{args:?}: not `{prefix}COMMIT)`\n{run}"));
        assert!(
            commit == "unknown"
                || (commit.len() >= 7 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
            "{args:?}: commit {commit:?}"
        );
        if let Some(head) = git_head() {
            assert!(
                head.starts_with(commit),
                "HEAD {head}, binary says {commit}"
            );
        }
    }
}

/// The full commit of the checkout the tests run in, when they run in one.
fn git_head() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--show-toplevel", "HEAD"])
        .current_dir(repo())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    let top = std::path::Path::new(lines.next()?).canonicalize().ok()?;
    let ours = top == repo().canonicalize().ok()?;
    (out.status.success() && ours).then(|| lines.next().map(str::to_owned))?
}

/// The same campaign and customers, saved with `\r\n`: the same bodies, no `\r` in any value.
#[test]
fn crlf_campaign_and_csv_send_the_same_bodies_as_lf() {
    let yaml = Campaign::new()
        .checkout("metadata:\n  name: \"{{ name }}\"")
        .build();
    let csv = "email,name\nana@example.com,Ana\nbo@example.com,Bo\n";

    let lf = TestEnv::new();
    lf.campaign(&yaml, csv);
    let lf_run = lf.run(&["run", "--dry-run", "campaign.yaml"]);
    lf_run.assert_exit(0);

    let crlf = TestEnv::new();
    crlf.campaign(&yaml.replace('\n', "\r\n"), csv.replace('\n', "\r\n"));
    let crlf_run = crlf.run(&["run", "--dry-run", "campaign.yaml"]);
    crlf_run.assert_exit(0);

    assert_eq!(lf_run.json_lines().len(), 2, "{lf_run}");
    assert_eq!(crlf_run.stdout, lf_run.stdout);
    assert!(!crlf_run.stdout.contains("\\r"), "{crlf_run}");
}

/// A mistake in a CRLF campaign is located as in an LF one, and no `\r` reaches the terminal.
#[test]
fn crlf_campaign_error_names_the_same_line_and_column() {
    let yaml = Campaign::new().top("sennd:\n  rate: 10/s").build();
    let csv = "email\nana@example.com\n";

    let lf = TestEnv::new();
    lf.campaign(&yaml, csv);
    let lf_run = lf.run(&["check", "campaign.yaml"]);
    lf_run.assert_exit(2).has(&["campaign.yaml:3:1"]);

    let crlf = TestEnv::new();
    crlf.campaign(&yaml.replace('\n', "\r\n"), csv);
    let crlf_run = crlf.run(&["check", "campaign.yaml"]);
    crlf_run.assert_exit(2);
    assert_eq!(crlf_run.text(), lf_run.text());
    assert!(!crlf_run.text().contains('\r'), "{crlf_run:?}");
}
