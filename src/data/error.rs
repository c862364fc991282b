//! The data errors a user can cause, each a single line that says what to fix.

use std::path::PathBuf;

use thiserror::Error;

/// Names accepted by `--dataset NAME` (resolved under the data directory).
pub const KNOWN_DATASETS: &[&str] = &[
    "ml-1m",
    "ml-100k",
    "ml-latest-small",
    "amazon-baby",
    "amazon-music-mmb",
];

#[derive(Debug, Error)]
pub enum DataError {
    /// A record that does not fit its format. `found` is the line (shortened); `detail` says which
    /// field is wrong when the shape itself is fine.
    #[error("{file}:{line}: expected {expected}, found {found:?}{}", detail_suffix(.detail))]
    Malformed {
        file: String,
        line: u64,
        expected: String,
        found: String,
        detail: Option<String>,
    },
    #[error("{}: no such file or directory", .path.display())]
    NotFound { path: PathBuf },
    /// The OS error is part of the message, not a chained source: `{:#}` would print it twice.
    #[error("{}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "{}: not a dataset directory: no {missing} (a pre-split dataset needs train.tsv, val.tsv and test.tsv; \
         other directories need one of interactions_all.tsv[.gz], ratings.dat[.gz], u.data, ratings.csv)",
        .dir.display()
    )]
    MissingTriple { dir: PathBuf, missing: String },
    #[error("no interactions left after {step}{}", detail_suffix(.hint))]
    Empty { step: String, hint: Option<String> },
    #[error(
        "unknown dataset {name:?}: no such file or directory, and not a known name ({})",
        KNOWN_DATASETS.join(", ")
    )]
    UnknownDataset { name: String },
    #[error(
        "dataset {name:?} is looked up in the data directory, but none is set: set COBRAR_DATA_DIR \
         (or pass --data-dir) to the folder that holds {name}/"
    )]
    DataDirUnset { name: String },
    #[error("{}: dataset {name:?} not found there (expected {})", .dir.display(), .expected.display())]
    NotInDataDir {
        name: String,
        dir: PathBuf,
        expected: PathBuf,
    },
    #[error("{0}")]
    Invalid(String),
}

fn detail_suffix(detail: &Option<String>) -> String {
    match detail {
        Some(d) => format!(" ({d})"),
        None => String::new(),
    }
}

/// At most this many characters of an offending line go into an error, so one bad line of a binary
/// file cannot flood the terminal.
const MAX_FOUND_CHARS: usize = 80;

/// Shortens an offending line for an error message.
pub(crate) fn shorten(line: &str) -> String {
    match line.char_indices().nth(MAX_FOUND_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_is_one_line_naming_file_line_and_text() {
        let e = DataError::Malformed {
            file: "ratings.dat".into(),
            line: 17,
            expected: "user::item::rating::timestamp".into(),
            found: shorten("abc"),
            detail: None,
        };
        assert_eq!(
            e.to_string(),
            r#"ratings.dat:17: expected user::item::rating::timestamp, found "abc""#
        );
        let with_tab = DataError::Malformed {
            file: "u.data".into(),
            line: 2,
            expected: "x".into(),
            found: shorten("1\t2\tz"),
            detail: Some("rating \"z\" is not a number".into()),
        };
        let s = with_tab.to_string();
        assert!(!s.contains('\n') && !s.contains('\t'), "{s}");
        assert!(s.ends_with("(rating \"z\" is not a number)"), "{s}");
    }

    #[test]
    fn an_os_error_is_printed_once_in_the_chain() {
        let e = DataError::Io {
            path: "ratings.dat".into(),
            error: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        let line = format!("{:#}", anyhow::Error::from(e));
        assert_eq!(line.matches("ermission denied").count(), 1, "{line}");
        assert!(line.starts_with("ratings.dat: "), "{line}");
    }

    #[test]
    fn shorten_cuts_long_lines_on_char_boundaries() {
        let long = "é".repeat(200);
        let s = shorten(&long);
        assert_eq!(s.chars().count(), MAX_FOUND_CHARS + 1);
        assert_eq!(shorten("short"), "short");
    }
}
