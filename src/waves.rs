//! `exclude:`: the customers who paid in earlier waves. Each earlier output CSV is streamed
//! once, when the batch opens, and only its completed rows' request_ids are kept (and their
//! emails, for campaigns whose request_ids come from a template).
//!
//! A row is the same customer as an earlier row when it has the same key: its default
//! request_id, worked out under the earlier campaign's name, is that row's request_id (a
//! re-issued row's without its `-r<N>`). With a `request_id:` template the ids cannot be
//! worked out again, so the email (lowercased) decides.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::diagnostic::Diagnostic;
use crate::escape::escape_control;
use crate::render::Renderer;

/// The paid customers of every earlier output named by `exclude:`.
#[derive(Debug, Default)]
pub(crate) struct Exclusions {
    /// By earlier campaign: the request_ids of its completed rows.
    paid: HashMap<String, HashSet<String>>,
    /// Completed rows' emails (lowercased), with their campaign.
    emails: HashMap<String, String>,
}

impl Exclusions {
    /// Reads the earlier outputs; a missing or foreign file stops the campaign here.
    pub(crate) fn load(files: &[PathBuf]) -> Result<Exclusions, Diagnostic> {
        let mut exclusions = Exclusions::default();
        for file in files {
            exclusions.read(file)?;
        }
        Ok(exclusions)
    }

    fn read(&mut self, file: &Path) -> Result<(), Diagnostic> {
        let fail = |message: String| {
            Diagnostic::file(file, message)
                .with_help("`exclude:` names earlier output CSVs (ledgers) of creem-batch")
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(file)
            .map_err(|e| fail(format!("cannot read this earlier output: {e}")))?;
        let header = reader
            .headers()
            .map_err(|e| fail(format!("cannot read the header: {e}")))?
            .clone();
        let column = |name: &str| {
            header.iter().position(|h| h == name).ok_or_else(|| {
                fail(format!(
                    "this is not a creem-batch output: no `{name}` column"
                ))
            })
        };
        let (id, status, checkout, campaign, email) = (
            column("request_id")?,
            column("status")?,
            column("checkout_status")?,
            column("campaign")?,
            column("email")?,
        );
        let reissues = header.iter().position(|h| h == "reissues");
        let mut record = csv::StringRecord::new();
        loop {
            match reader.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(fail(format!("cannot read a record: {e}"))),
            }
            let cell = |i: usize| record.get(i).unwrap_or_default().trim();
            if cell(status) != "created" || cell(checkout) != "completed" {
                continue;
            }
            let reissued = reissues.map_or("", |i| cell(i));
            let request_id = match reissued.parse::<u32>() {
                Ok(n) if n > 0 => cell(id).strip_suffix(&format!("-r{n}")).unwrap_or(cell(id)),
                _ => cell(id),
            };
            let name = escape_control(cell(campaign)).into_owned();
            if !cell(email).is_empty() {
                self.emails
                    .entry(cell(email).to_lowercase())
                    .or_insert_with(|| name.clone());
            }
            self.paid
                .entry(name)
                .or_default()
                .insert(request_id.to_owned());
        }
        Ok(())
    }

    /// The earlier campaign this row's customer paid in, if any.
    pub(crate) fn paid_in(
        &self,
        renderer: &Renderer,
        fields: &[&str],
        email: &str,
    ) -> Option<&str> {
        if renderer.has_request_id_template() {
            return self
                .emails
                .get(&email.trim().to_lowercase())
                .map(String::as_str);
        }
        self.paid
            .iter()
            .find(|(campaign, ids)| ids.contains(&renderer.request_id_in(campaign, fields)))
            .map(|(campaign, _)| campaign.as_str())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.paid.is_empty()
    }
}
