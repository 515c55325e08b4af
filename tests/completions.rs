//! Shell completions that complete: bash is asked, as it would be at a prompt, for what
//! follows `creem-batch run --`.

use crate::common::TestEnv;

/// What bash offers for `words` (the last one being completed), with the script
/// `creem-batch completions bash` prints loaded, as `complete -F` would call it.
fn bash_offers(words: &[&str]) -> Vec<String> {
    let env = TestEnv::new();
    let script = env.run(&["completions", "bash"]);
    script.assert_exit(0);
    let path = env.write("creem-batch.bash", &script.stdout);
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let program = format!(
        "source '{}'\n\
         COMP_WORDS=({})\n\
         COMP_CWORD={cword}\n\
         COMP_LINE=\"${{COMP_WORDS[*]}}\"\n\
         COMP_POINT=${{#COMP_LINE}}\n\
         _creem__batch creem-batch \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        path.display(),
        quoted.join(" ")
    );
    let output = std::process::Command::new("bash")
        .arg("--norc")
        .arg("-c")
        .arg(program)
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_the_options_of_a_subcommand() {
    let offers = bash_offers(&["creem-batch", "run", "--"]);
    for option in ["--dry-run", "--limit", "--sandbox", "--live"] {
        assert!(
            offers.iter().any(|o| o == option),
            "no {option}: {offers:?}"
        );
    }
    assert!(
        !offers.iter().any(|o| o == "--columns"),
        "export's option offered for run: {offers:?}"
    );
    let offers = bash_offers(&["creem-batch", "export", "x.yaml", "--for", ""]);
    assert_eq!(offers, ["mailchimp", "hubspot"]);
    let offers = bash_offers(&["creem-batch", "verify-redirect", "--"]);
    assert!(offers.iter().any(|o| o == "--api-key-file"), "{offers:?}");
}

#[test]
fn bash_completes_subcommand_names() {
    let offers = bash_offers(&["creem-batch", "ex"]);
    assert_eq!(offers, ["export"]);
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let env = TestEnv::new();
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader); // nobody reads: every write fails with a broken pipe
    let output = env
        .command(&["completions", "bash"])
        .stdout(writer)
        .output()
        .expect("run creem-batch");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
