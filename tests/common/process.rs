//! A finished run of the binary ([`Run`]), and the tools for runs still going: waiting for a
//! condition, sending a signal.

use std::process::Output;

/// A finished run of the binary, with its output as text.
#[derive(Debug)]
pub struct Run {
    pub exit: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn from_output(output: Output) -> Run {
        Run {
            exit: output.status.code().expect("exited, not killed"),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// stdout then stderr.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Asserts the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn assert_exit(&self, code: i32) -> &Run {
        assert_eq!(self.exit, code, "exit code\n{self}");
        self
    }

    /// Asserts stdout contains every one of `parts`.
    #[track_caller]
    pub fn stdout_has(&self, parts: &[&str]) -> &Run {
        for part in parts {
            assert!(self.stdout.contains(part), "stdout lacks {part:?}\n{self}");
        }
        self
    }

    /// Asserts stderr contains every one of `parts`.
    #[track_caller]
    pub fn stderr_has(&self, parts: &[&str]) -> &Run {
        for part in parts {
            assert!(self.stderr.contains(part), "stderr lacks {part:?}\n{self}");
        }
        self
    }

    /// Asserts stdout or stderr contains every one of `parts`.
    #[track_caller]
    pub fn has(&self, parts: &[&str]) -> &Run {
        let text = self.text();
        for part in parts {
            assert!(text.contains(part), "output lacks {part:?}\n{self}");
        }
        self
    }

    /// Asserts neither stream contains `secret`.
    #[track_caller]
    pub fn lacks(&self, secret: &str) -> &Run {
        assert!(
            !self.text().contains(secret),
            "output shows {secret:?}\n{self}"
        );
        self
    }

    /// The dry-run lines on stdout, parsed.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{self}"))
            })
            .collect()
    }

    /// The dry-run line of data row `row`, if it would be sent.
    pub fn line_for_row(&self, row: u64) -> Option<serde_json::Value> {
        self.json_lines()
            .into_iter()
            .find(|line| line["row"].as_u64() == Some(row))
    }

    /// The rows that would be sent, in output order.
    pub fn sent_rows(&self) -> Vec<u64> {
        self.json_lines()
            .iter()
            .map(|line| line["row"].as_u64().expect("row is an integer"))
            .collect()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- exit {}\n--- stdout\n{}--- stderr\n{}",
            self.exit, self.stdout, self.stderr
        )
    }
}

/// Polls `condition` every millisecond until it holds; fails the test after 30 s.
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Sends a signal (`libc::SIGINT`, `SIGTERM`, ...) to a running child.
pub fn signal(child: &tokio::process::Child, signal: i32) {
    let pid = child.id().expect("the child is running") as libc::pid_t;
    // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal})");
}

/// Runs `cmd` to its end: the exit code (-1 when killed) and stdout then stderr, decoded
/// lossily (what a user would see on one terminal).
pub async fn exit_and_text(mut cmd: tokio::process::Command) -> (i32, String) {
    let out = cmd.output().await.expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}
