//! A workbook (`.xlsx`, `.xlsm`, `.xls`, `.xlsb`, `.ods`) read as rows of text with calamine.
//!
//! calamine loads the chosen sheet whole (the formats are zipped XML or binary records, with
//! no streaming reader), so a workbook costs memory in proportion to its sheet; a CSV export
//! of a very large list streams instead. Cells become the text a user expects: text as it is
//! (`01234` keeps its zero), whole numbers without `.0`, dates as ISO `YYYY-MM-DD` (with the
//! time when there is one), booleans as `TRUE`/`FALSE`.

use std::path::Path;

use calamine::{Data, Range, Reader};

/// The file name endings read as workbooks.
const EXTENSIONS: [&str; 5] = ["xlsx", "xlsm", "xls", "xlsb", "ods"];

/// True when `path` names a workbook by its extension.
pub fn is_workbook(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|w| w.eq_ignore_ascii_case(e)))
}

/// One sheet of a workbook, handed out a row at a time.
pub struct Sheet {
    pub name: String,
    range: Range<Data>,
    /// Index into `range` of the next row to hand out.
    next: usize,
    /// The sheet's own number (1-based) of the range's first row.
    first_row: u64,
}

impl Sheet {
    /// Opens the sheet named `sheet`, or the first one.
    pub fn open(path: &Path, sheet: Option<&str>) -> Result<Sheet, String> {
        let mut workbook = calamine::open_workbook_auto(path)
            .map_err(|e| format!("cannot open the workbook: {e}"))?;
        let names = workbook.sheet_names();
        let name = match sheet {
            Some(wanted) => names
                .iter()
                .find(|n| n.as_str() == wanted)
                .or_else(|| {
                    names
                        .iter()
                        .find(|n| n.trim().eq_ignore_ascii_case(wanted.trim()))
                })
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "the workbook has no sheet `{}` (its sheets: {})",
                        crate::escape::escape_control(wanted),
                        crate::escape::escape_control(&names.join(", "))
                    )
                })?,
            None => names
                .first()
                .cloned()
                .ok_or_else(|| "the workbook has no sheets".to_owned())?,
        };
        let range = workbook
            .worksheet_range(&name)
            .map_err(|e| format!("cannot read sheet `{name}`: {e}"))?;
        let first_row = range.start().map_or(1, |(row, _)| u64::from(row) + 1);
        // Columns left of the used range are empty in every row; the header starts at the
        // range's first column, as the sheet shows it.
        Ok(Sheet {
            name,
            range,
            next: 0,
            first_row,
        })
    }

    /// The next row's cells as text and its row number in the sheet; `None` at the end.
    pub fn next_row(&mut self, cells: &mut Vec<String>) -> Option<u64> {
        let row = self.range.rows().nth(self.next)?;
        let number = self.first_row + self.next as u64;
        self.next += 1;
        cells.clear();
        cells.extend(row.iter().map(cell_text));
        // Trailing empty cells are the range's width, not the row's.
        while cells.last().is_some_and(|c| c.is_empty()) {
            cells.pop();
        }
        Some(number)
    }
}

/// A cell as the text a user expects to see.
pub fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(n) => n.to_string(),
        // `f64`'s Display prints 1234.0 as 1234 and 12.5 as 12.5, and never an exponent.
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        Data::DateTime(dt) if dt.is_datetime() => {
            let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
            if (h, mi, s) == (0, 0, 0) {
                format!("{y:04}-{mo:02}-{d:02}")
            } else {
                format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
            }
        }
        Data::DateTime(dt) => dt.as_f64().to_string(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_shown() {
        assert_eq!(cell_text(&Data::Float(1234.0)), "1234");
        assert_eq!(cell_text(&Data::Float(12.5)), "12.5");
        assert_eq!(cell_text(&Data::Float(1e21)), "1000000000000000000000");
        assert_eq!(cell_text(&Data::Int(7)), "7");
        assert_eq!(cell_text(&Data::String("01234".into())), "01234");
        assert_eq!(cell_text(&Data::Bool(true)), "TRUE");
        let date =
            calamine::ExcelDateTime::new(46082.0, calamine::ExcelDateTimeType::DateTime, false);
        assert_eq!(cell_text(&Data::DateTime(date)), "2026-03-01");
    }

    #[test]
    fn workbooks_are_known_by_their_extension() {
        assert!(is_workbook(Path::new("list.XLSX")));
        assert!(is_workbook(Path::new("a/list.ods")));
        assert!(!is_workbook(Path::new("list.csv")));
        assert!(!is_workbook(Path::new("xlsx")));
    }
}
