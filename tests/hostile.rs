//! Issue 15, the hostile environment, end to end through the binary: a disk that fills up
//! mid-run (through the debug-build seam, and through a real tmpfs where root may mount one),
//! and SIGTERM's counts against the ledger.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use creem_batch::sandbox::{Latency, SandboxConfig};

use crate::common::{signal, wait_until, CrashedLedger, Run, TestEnv, CAMPAIGN_FILE};

const ROWS: usize = 200;
const SEND: &str = "  rate: unlimited\n  concurrency: 4\n";
/// The debug-build seam of the ledger writer (see docs/DESIGN.md, "Disk full").
const FAIL_PAST: &str = "CREEM_BATCH_TEST_FAIL_PAST";

// ---------------------------------------------------------------------------------------
// Disk full mid-run

/// How the disk fills up.
enum Full {
    /// The writer's seam: writes fail with ENOSPC past this many bytes.
    Seam(u64),
    /// A real tmpfs of a few pages, mounted for the test (root only).
    Tmpfs(Tmpfs),
}

/// A tmpfs mounted in the test's dir, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` (and why) when this process may not mount one.
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("no mount command: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }

    fn grow(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("mount");
        assert!(status.success(), "remount {}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// `creem-batch run` in `env` with the temp folder inside the test's dir (where the rescue
/// file goes), `--out ledger`, and the seam when `fail_past` is given.
async fn run(env: &TestEnv, ledger: &Path, fail_past: Option<u64>) -> Run {
    let out = ledger.to_string_lossy().into_owned();
    command(env, &["run", CAMPAIGN_FILE, "--out", &out], fail_past).await
}

/// `creem-batch ARGS --base-url <sandbox> --quiet` with the temp folder of [`run`].
async fn command(env: &TestEnv, args: &[&str], fail_past: Option<u64>) -> Run {
    let base = env.base_url();
    let mut args = args.to_vec();
    args.extend(["--base-url", &base, "--quiet"]);
    let mut command = env.command(&args);
    command.env("TMPDIR", env.path().join("tmp"));
    command.env_remove(FAIL_PAST);
    if let Some(len) = fail_past {
        command.env(FAIL_PAST, len.to_string());
    }
    let output = tokio::process::Command::from(command).output().await;
    Run::from_output(output.expect("run creem-batch"))
}

fn rescue_files(env: &TestEnv) -> Vec<PathBuf> {
    match std::fs::read_dir(env.path().join("tmp")) {
        Ok(dir) => dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().contains("creem-batch-rescue-"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The request_ids of the CSV printed after "could not be written to the ledger".
fn printed_unrecorded(stderr: &str) -> HashSet<String> {
    let mut lines = stderr
        .lines()
        .skip_while(|l| !l.contains("could not be written to the ledger; keep them:"))
        .skip(1);
    assert_eq!(
        lines.next(),
        Some("request_id,checkout_id,checkout_url"),
        "{stderr}"
    );
    lines
        .take_while(|l| !l.starts_with('('))
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), 3, "{l}");
            assert!(
                cells[1].starts_with("ch_") && cells[2].starts_with("http"),
                "{l}"
            );
            cells[0].to_owned()
        })
        .collect()
}

/// After the failed run: the next run takes the rescue file, or `status` or `reconcile` does
/// first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TakenBy {
    Resume,
    Status,
    Reconcile,
}

/// The first failed ledger write stops sending at once; what was created but could not be
/// written is printed as CSV and saved to a rescue file, the run exits 3, a dry run warns of
/// it, and the resume (or `status`) adds the rescued checkouts to the ledger; nothing is
/// created twice.
async fn disk_full(env: TestEnv, ledger: PathBuf, full: Full, taken: TakenBy) {
    std::fs::create_dir_all(env.path().join("tmp")).unwrap();
    let seam = match &full {
        Full::Seam(len) => Some(*len),
        Full::Tmpfs(_) => None,
    };
    let first = run(&env, &ledger, seam).await;
    first.assert_exit(3);
    let stderr = &first.stderr;
    assert!(stderr.contains("cannot write"), "{stderr}");
    assert!(!stderr.contains("nothing was sent"), "{stderr}");
    assert!(!stderr.contains("incomplete last record"), "{stderr}");
    let printed = printed_unrecorded(stderr);
    assert!(!printed.is_empty(), "in-flight answers came back: {stderr}");

    let server = env.server().stats().created_per_request_id;
    assert!(
        server.len() < ROWS,
        "sending stopped at once: {}",
        server.len()
    );
    let recorded = CrashedLedger::read(&ledger);
    assert_eq!(recorded.torn_tail, None, "a failed write is cut back whole");
    let kept: HashSet<String> = recorded.created().union(&printed).cloned().collect();
    let created: HashSet<String> = server.keys().cloned().collect();
    assert_eq!(kept, created, "every checkout is in the ledger or printed");
    let rescues = rescue_files(&env);
    assert_eq!(rescues.len(), 1, "{rescues:?}");
    let out = ledger.to_string_lossy().into_owned();
    let dry = command(
        &env,
        &["run", CAMPAIGN_FILE, "--dry-run", "--out", &out],
        None,
    )
    .await;
    dry.assert_exit(0);
    dry.stderr_has(&[
        &format!(
            "warning: {} checkout(s) created by an earlier run are not in",
            printed.len()
        ),
        "so this dry run does not see them",
    ]);
    assert_eq!(rescue_files(&env), rescues, "a dry run leaves it");
    // So do the other commands that only read the ledger, and they say so too.
    // (Their files go beside the test, not on the full disk.)
    let links = env.path().join("links.csv").to_string_lossy().into_owned();
    let page = env
        .path()
        .join("report.html")
        .to_string_lossy()
        .into_owned();
    for (args, what) in [
        (
            ["export", &out, "--out", &links],
            "so this export does not see them",
        ),
        (
            ["report", &out, "--out", &page],
            "so this report does not see them",
        ),
    ] {
        let mut command = env.command(&args);
        command.env("TMPDIR", env.path().join("tmp"));
        let read = Run::from_output(command.output().expect("run creem-batch"));
        read.assert_exit(0);
        read.stderr_has(&[what]);
    }
    assert_eq!(rescue_files(&env), rescues, "reading commands leave it");

    if let Full::Tmpfs(tmpfs) = &full {
        tmpfs.grow("4m"); // room again
    }
    let note = format!("{} checkout(s) created by an earlier run", printed.len());
    if taken != TakenBy::Resume {
        let taker = if taken == TakenBy::Status {
            command(&env, &["status", &out], None).await
        } else {
            let events = env.write("events.jsonl", "");
            let mut command = env.command(&["reconcile", &out, "--events"]);
            command.arg(events).env("TMPDIR", env.path().join("tmp"));
            Run::from_output(command.output().expect("run creem-batch"))
        };
        taker.assert_exit(0);
        taker.stderr_has(&[&note]);
        assert_eq!(rescue_files(&env), Vec::<PathBuf>::new(), "taken");
        let rows = crate::common::ledger::read(&ledger);
        let created: HashSet<String> = rows
            .iter()
            .filter(|r| r["status"] == "created")
            .map(|r| r["request_id"].clone())
            .collect();
        assert!(
            created.is_superset(&printed),
            "the rescued rows are in the ledger"
        );
    }
    let resume = run(&env, &ledger, None).await;
    resume.assert_exit(0);
    assert_eq!(
        resume.stderr.contains(&note),
        taken == TakenBy::Resume,
        "{resume}"
    );
    assert_eq!(rescue_files(&env), Vec::<PathBuf>::new(), "taken");
    let per_id = env.server().stats().created_per_request_id;
    assert_eq!(per_id.len(), ROWS);
    let twice: Vec<_> = per_id.iter().filter(|(_, &n)| n > 1).collect();
    assert!(
        twice.is_empty(),
        "created twice after the resume: {twice:?}"
    );
    let rows = crate::common::ledger::read(&ledger);
    assert_eq!(rows.len(), ROWS);
    assert!(rows.iter().all(|r| r["status"] == "created"), "{rows:?}");
}

/// [`disk_full`] through the debug builds' write seam.
async fn disk_full_through_the_seam(taken: TakenBy) {
    if !cfg!(debug_assertions) {
        eprintln!("skipped: the {FAIL_PAST} seam exists in debug builds only");
        return;
    }
    let env = TestEnv::sandbox().await;
    env.send_campaign(ROWS, SEND);
    let ledger = env.path().join("out/results.csv");
    disk_full(env, ledger, Full::Seam(6_000), taken).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_through_the_seam_stops_at_once_rescues_and_resumes_without_duplicates() {
    disk_full_through_the_seam(TakenBy::Resume).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_then_status_adds_the_rescued_checkouts_before_the_resume() {
    disk_full_through_the_seam(TakenBy::Status).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_then_reconcile_adds_the_rescued_checkouts_before_the_resume() {
    disk_full_through_the_seam(TakenBy::Reconcile).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_on_a_real_tmpfs_stops_at_once_rescues_and_resumes_without_duplicates() {
    let env = TestEnv::sandbox().await;
    env.send_campaign(ROWS, SEND);
    // Two pages: the lock file takes one, the ledger fills the other.
    let tmpfs = match Tmpfs::mount(&env.path().join("disk"), "8k") {
        Ok(tmpfs) => tmpfs,
        Err(why) => {
            eprintln!("skipped: cannot mount a tmpfs here ({why}); the seam test covers this");
            return;
        }
    };
    let ledger = tmpfs.0.join("results.csv");
    disk_full(env, ledger, Full::Tmpfs(tmpfs), TakenBy::Resume).await;
}

// ---------------------------------------------------------------------------------------
// SIGTERM: the counts agree with the ledger

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_the_summary_and_json_pending_agree_with_the_ledger() {
    const ROWS: usize = 120;
    let env = TestEnv::sandbox_with(SandboxConfig {
        latency: Some(Latency::Uniform {
            min: Duration::from_millis(5),
            max: Duration::from_millis(20),
        }),
        ..SandboxConfig::default()
    })
    .await;
    let server = env.server();
    env.send_campaign(ROWS, "  rate: 200/s\n  burst: 1\n  concurrency: 4\n");
    let child = env.spawn_send(&["--quiet", "--json"]);
    wait_until("15 checkouts exist", || server.stats().created >= 15).await;
    signal(&child, libc::SIGTERM);
    let out = Run::from_output(child.wait_with_output().await.unwrap());
    out.assert_exit(130);

    let rows = env.ledger();
    assert_eq!(rows.len(), ROWS);
    let count = |status: &str| rows.iter().filter(|r| r["status"] == status).count() as u64;
    let (created, pending) = (count("created"), count("pending"));
    assert!(pending > 0, "stopped before the end");
    assert_eq!(created + pending, ROWS as u64, "{out}");

    let json: serde_json::Value =
        serde_json::from_str(out.stdout.lines().last().expect("a JSON summary")).unwrap();
    assert_eq!(json["pending"], pending, "{out}");
    assert_eq!(json["created"], created, "{out}");
    assert_eq!(json["exit"], "interrupted");
    let text = format!("{ROWS} rows: {created} created, 0 failed, 0 invalid, {pending} pending");
    assert!(out.stderr.contains(&text), "{text}\n{out}");
}
