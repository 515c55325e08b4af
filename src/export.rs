//! Merge-ready files for email tools: one row per created checkout, with the customer's
//! email, a few chosen input columns and the checkout link, named the way Mailchimp's or
//! HubSpot's import expects, written as CSV (UTF-8 with a BOM) or as an Excel workbook.
//!
//! Which rows go in (the join of the ledger with the customers file) is the `export`
//! command's business; this module only names the columns and writes the file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The email tool the columns are named for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tool {
    /// `Email Address`, Mailchimp's default merge fields (`First Name`, `Last Name`, ...),
    /// `Checkout URL`.
    Mailchimp,
    /// `Email`, HubSpot's contact properties (`First Name`, `Company Name`, ...),
    /// `Checkout URL`.
    Hubspot,
}

/// The file format written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// UTF-8 with a BOM, so that Excel shows accented names right.
    Csv,
    /// An Excel workbook, one sheet.
    Xlsx,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }

    /// The format a file name asks for (`.xlsx`), if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?;
        if extension.eq_ignore_ascii_case("xlsx") {
            Some(Format::Xlsx)
        } else if extension.eq_ignore_ascii_case("csv") {
            Some(Format::Csv)
        } else {
            None
        }
    }
}

/// Rows an xlsx sheet holds, header included.
const XLSX_MAX_ROWS: u64 = 1_048_576;

/// The header of an export: the email column, `columns` (renamed for `tool`), the link.
pub fn header(tool: Option<Tool>, columns: &[String]) -> Vec<String> {
    let (email, link) = match tool {
        None => ("email", "checkout_url"),
        Some(Tool::Mailchimp) => ("Email Address", "Checkout URL"),
        Some(Tool::Hubspot) => ("Email", "Checkout URL"),
    };
    let mut names = vec![email.to_owned()];
    names.extend(columns.iter().map(|c| field_name(tool, c)));
    names.push(link.to_owned());
    names
}

/// A column's name in `tool`'s import: its standard field when the column is one (so the
/// import matches it without a manual mapping), else the column's own name.
fn field_name(tool: Option<Tool>, column: &str) -> String {
    let key: String = column
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    let standard = match (tool, key.as_str()) {
        (None, _) => None,
        (Some(_), "firstname" | "fname" | "givenname" | "vorname" | "prenom" | "prénom") => {
            Some("First Name")
        }
        (Some(_), "lastname" | "lname" | "surname" | "familyname" | "nachname" | "nom") => {
            Some("Last Name")
        }
        (Some(_), "phone" | "phonenumber" | "telephone" | "mobile") => Some("Phone Number"),
        (Some(Tool::Mailchimp), "address" | "postaladdress") => Some("Address"),
        (Some(Tool::Mailchimp), "birthday" | "birthdate" | "dateofbirth") => Some("Birthday"),
        (Some(Tool::Hubspot), "company" | "companyname" | "firma" | "organisation") => {
            Some("Company Name")
        }
        (Some(Tool::Hubspot), "city" | "stadt" | "ville") => Some("City"),
        (Some(Tool::Hubspot), "country" | "land" | "pays") => Some("Country/Region"),
        _ => None,
    };
    standard.map_or_else(|| column.to_owned(), str::to_owned)
}

/// Writes `header` and then every row `next` gives, to a temp file renamed over `path` at
/// the end (a failed export leaves no half file). Returns the rows written.
pub fn write(
    path: &Path,
    format: Format,
    header: &[String],
    next: impl FnMut() -> anyhow::Result<Option<Vec<String>>>,
) -> anyhow::Result<u64> {
    let temp = temp_path(path);
    let written = match format {
        Format::Csv => write_csv(&temp, header, next),
        Format::Xlsx => write_xlsx(&temp, header, next),
    };
    let written = match written {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    std::fs::rename(&temp, path)
        .with_context(|| format!("cannot write {}", path.display()))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&temp);
        })?;
    Ok(written)
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

fn write_csv(
    path: &Path,
    header: &[String],
    mut next: impl FnMut() -> anyhow::Result<Option<Vec<String>>>,
) -> anyhow::Result<u64> {
    let file = File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut out = BufWriter::new(file);
    // Excel reads a CSV without a BOM in the machine's legacy code page (José -> JosÃ©).
    out.write_all("\u{FEFF}".as_bytes())?;
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(header)?;
    let mut rows = 0;
    while let Some(row) = next()? {
        // Same guard as the ledger: a cell a spreadsheet would run as a formula gets a `'`.
        for cell in &row {
            writer.write_field(crate::ledger::neutralise(cell).as_bytes())?;
        }
        writer.write_record(None::<&[u8]>)?;
        rows += 1;
    }
    let out = writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error()))?;
    let file = out
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write {}: {}", path.display(), e.error()))?;
    file.sync_all()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(rows)
}

fn write_xlsx(
    path: &Path,
    header: &[String],
    mut next: impl FnMut() -> anyhow::Result<Option<Vec<String>>>,
) -> anyhow::Result<u64> {
    use rust_xlsxwriter::{Format as CellFormat, Workbook};
    let xlsx =
        |e: rust_xlsxwriter::XlsxError| anyhow::anyhow!("cannot write {}: {e}", path.display());
    let mut workbook = Workbook::new();
    let bold = CellFormat::new().set_bold();
    let sheet = workbook
        .add_worksheet_with_constant_memory()
        .map_err(xlsx)?;
    sheet.set_name("Checkouts").map_err(xlsx)?;
    sheet.set_freeze_panes(1, 0).map_err(xlsx)?;
    for (column, name) in header.iter().enumerate() {
        let column = u16::try_from(column).map_err(|_| anyhow::anyhow!("too many columns"))?;
        sheet
            .write_string_with_format(0, column, name, &bold)
            .map_err(xlsx)?;
    }
    let mut rows = 0u64;
    while let Some(row) = next()? {
        if rows + 1 >= XLSX_MAX_ROWS {
            anyhow::bail!(
                "more than {} rows do not fit in an Excel sheet: export as --format csv",
                XLSX_MAX_ROWS - 1
            );
        }
        let at = u32::try_from(rows + 1).map_err(|_| anyhow::anyhow!("too many rows"))?;
        for (column, cell) in row.iter().enumerate() {
            let column = u16::try_from(column).map_err(|_| anyhow::anyhow!("too many columns"))?;
            // Always a text cell: an email tool wants `01234` and `=x` as written, and a text
            // cell is never run as a formula, so no `'` guard is needed here.
            sheet.write_string(at, column, cell).map_err(xlsx)?;
        }
        rows += 1;
    }
    workbook.save(path).map_err(xlsx)?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn headers_per_tool() {
        let columns = names(&["first_name", "Company", "plan"]);
        assert_eq!(
            header(None, &columns),
            ["email", "first_name", "Company", "plan", "checkout_url"]
        );
        assert_eq!(
            header(Some(Tool::Mailchimp), &columns),
            [
                "Email Address",
                "First Name",
                "Company",
                "plan",
                "Checkout URL"
            ]
        );
        assert_eq!(
            header(Some(Tool::Hubspot), &columns),
            [
                "Email",
                "First Name",
                "Company Name",
                "plan",
                "Checkout URL"
            ]
        );
    }

    #[test]
    fn format_from_the_file_name() {
        assert_eq!(Format::from_path(Path::new("a/b.XLSX")), Some(Format::Xlsx));
        assert_eq!(Format::from_path(Path::new("b.csv")), Some(Format::Csv));
        assert_eq!(Format::from_path(Path::new("b.txt")), None);
    }
}
