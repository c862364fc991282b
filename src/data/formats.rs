//! The interaction formats of SPEC §2: their names, separators and line layouts, the [`Parser`] that
//! turns one line into a record without allocating, and detection of a file's format and layout from
//! its name and first lines.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::error::DataError;
use super::error::shorten;

/// The supported input formats. `PreSplit` is a directory, every other format one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// MovieLens 1M/10M `ratings.dat`: `user::item::rating::timestamp`.
    MovielensDat,
    /// MovieLens 100K `u.data`: `user<TAB>item<TAB>rating<TAB>timestamp`.
    Movielens100k,
    /// MovieLens `ratings.csv`: header `userId,movieId,rating,timestamp`, then records.
    MovielensCsv,
    /// Amazon reviews (2014/2018) JSON lines: `reviewerID`, `asin`, `overall`, `unixReviewTime`.
    AmazonJson,
    /// Amazon 2018 ratings-only CSV: `item,user,rating,timestamp`, no header (item first).
    AmazonCsv,
    /// Any delimited text; separator, columns and header given by flags or detected.
    Delimited,
    /// A directory with `train.tsv`, `val.tsv`, `test.tsv` (`user<TAB>item[<TAB>rating]`), used as published.
    PreSplit,
}

impl Format {
    pub const ALL: [Format; 7] = [
        Format::MovielensDat,
        Format::Movielens100k,
        Format::MovielensCsv,
        Format::AmazonJson,
        Format::AmazonCsv,
        Format::Delimited,
        Format::PreSplit,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Format::MovielensDat => "movielens-dat",
            Format::Movielens100k => "movielens-100k",
            Format::MovielensCsv => "movielens-csv",
            Format::AmazonJson => "amazon-json",
            Format::AmazonCsv => "amazon-csv",
            Format::Delimited => "delimited",
            Format::PreSplit => "pre-split",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let f = match s.to_ascii_lowercase().as_str() {
            "movielens-dat" | "ml-dat" | "dat" => Format::MovielensDat,
            "movielens-100k" | "ml-100k" | "u.data" => Format::Movielens100k,
            "movielens-csv" | "ml-csv" => Format::MovielensCsv,
            "amazon-json" | "json" | "jsonl" => Format::AmazonJson,
            "amazon-csv" => Format::AmazonCsv,
            "delimited" | "generic" | "tsv" | "csv" => Format::Delimited,
            "pre-split" | "presplit" | "split" | "triple" => Format::PreSplit,
            _ => {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
                return Err(format!(
                    "unknown format {s:?} (one of {})",
                    names.join(", ")
                ));
            }
        };
        Ok(f)
    }
}

/// A column separator for delimited text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Separator {
    Tab,
    Comma,
    DoubleColon,
    Semicolon,
    Pipe,
    /// Runs of spaces or tabs.
    Whitespace,
    Other(String),
}

impl Separator {
    fn as_text(&self) -> &str {
        match self {
            Separator::Tab => "<TAB>",
            Separator::Comma => ",",
            Separator::DoubleColon => "::",
            Separator::Semicolon => ";",
            Separator::Pipe => "|",
            Separator::Whitespace => " ",
            Separator::Other(s) => s,
        }
    }

    fn fields<'l, 's>(&'s self, line: &'l str) -> Fields<'l, 's> {
        match self {
            Separator::Tab => Fields::Char(line.split('\t')),
            Separator::Comma => Fields::Char(line.split(',')),
            Separator::Semicolon => Fields::Char(line.split(';')),
            Separator::Pipe => Fields::Char(line.split('|')),
            Separator::DoubleColon => Fields::Str(line.split("::")),
            Separator::Whitespace => Fields::Ws(line.split_ascii_whitespace()),
            Separator::Other(s) => Fields::Str(line.split(s.as_str())),
        }
    }
}

impl fmt::Display for Separator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Separator::Tab => f.write_str("tab"),
            Separator::Comma => f.write_str("comma"),
            Separator::Whitespace => f.write_str("whitespace"),
            other => write!(f, "{:?}", other.as_text()),
        }
    }
}

impl FromStr for Separator {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "tab" | "\\t" | "\t" | "TAB" => Separator::Tab,
            "comma" | "," => Separator::Comma,
            "::" => Separator::DoubleColon,
            "semicolon" | ";" => Separator::Semicolon,
            "pipe" | "|" => Separator::Pipe,
            "space" | "whitespace" | " " => Separator::Whitespace,
            "" => return Err("the separator must not be empty".into()),
            other => Separator::Other(other.to_string()),
        })
    }
}

/// One of the three splitting strategies, as a concrete iterator (no boxing per line).
enum Fields<'l, 's> {
    Char(std::str::Split<'l, char>),
    Str(std::str::Split<'l, &'s str>),
    Ws(std::str::SplitAsciiWhitespace<'l>),
}

impl<'l> Iterator for Fields<'l, '_> {
    type Item = &'l str;

    #[inline]
    fn next(&mut self) -> Option<&'l str> {
        match self {
            Fields::Char(s) => s.next(),
            Fields::Str(s) => s.next(),
            Fields::Ws(s) => s.next(),
        }
    }
}

/// How generic delimited text is laid out. `None` / `false` fields are detected from the first lines.
#[derive(Debug, Clone, PartialEq)]
pub struct DelimitedSpec {
    pub sep: Option<Separator>,
    /// 0-based column of the user id.
    pub user_col: usize,
    /// 0-based column of the item id.
    pub item_col: usize,
    /// 0-based column of the rating; detected (column 2 when numeric) when `None`.
    pub rating_col: Option<usize>,
    /// The first line is a header. Also detected from well-known column names.
    pub header: bool,
}

impl Default for DelimitedSpec {
    fn default() -> Self {
        DelimitedSpec {
            sep: None,
            user_col: 0,
            item_col: 1,
            rating_col: None,
            header: false,
        }
    }
}

/// How many fields a record has.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Arity {
    Exactly(usize),
    AtLeast(usize),
}

/// A resolved line format: everything detection decided, ready to parse lines.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parser {
    pub(crate) format: Format,
    pub(crate) sep: Separator,
    user: usize,
    item: usize,
    rating: Option<usize>,
    timestamp: Option<usize>,
    arity: Arity,
    /// For fixed formats, rating and timestamp are checked on every line; for generic text only the
    /// columns actually needed are.
    strict: bool,
    pub(crate) header: Header,
    /// What a good record looks like, for error messages.
    pub(crate) expected: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Header {
    None,
    Skip,
    Expect(&'static str),
}

/// One parsed record, borrowing from the line where it can.
#[derive(Debug, PartialEq)]
pub(crate) struct Record<'a> {
    pub user: Cow<'a, str>,
    pub item: Cow<'a, str>,
    pub rating: Option<f32>,
}

#[derive(Deserialize)]
struct Review<'a> {
    #[serde(rename = "reviewerID", borrow)]
    reviewer: Cow<'a, str>,
    #[serde(borrow)]
    asin: Cow<'a, str>,
    overall: Option<f32>,
    #[serde(rename = "unixReviewTime")]
    _time: Option<i64>,
}

impl Parser {
    /// The parser of a fixed-layout format (everything but `Delimited`, whose layout is resolved
    /// from a [`DelimitedSpec`] and the file, and `PreSplit`, a directory).
    pub(crate) fn fixed(format: Format) -> Parser {
        let (sep, user, item, expected, header) = match format {
            Format::MovielensDat => (
                Separator::DoubleColon,
                0,
                1,
                "user::item::rating::timestamp",
                Header::None,
            ),
            Format::Movielens100k => (
                Separator::Tab,
                0,
                1,
                "user<TAB>item<TAB>rating<TAB>timestamp",
                Header::None,
            ),
            Format::MovielensCsv => (
                Separator::Comma,
                0,
                1,
                "userId,movieId,rating,timestamp",
                Header::Expect("userId,movieId,rating,timestamp"),
            ),
            Format::AmazonCsv => (
                Separator::Comma,
                1,
                0,
                "item,user,rating,timestamp",
                Header::None,
            ),
            Format::AmazonJson => (
                Separator::Tab,
                0,
                1,
                "a JSON object with \"reviewerID\", \"asin\" and \"overall\"",
                Header::None,
            ),
            Format::PreSplit => {
                return Parser {
                    format,
                    sep: Separator::Tab,
                    user: 0,
                    item: 1,
                    rating: Some(2),
                    timestamp: None,
                    arity: Arity::AtLeast(2),
                    strict: false,
                    header: Header::None,
                    expected: "user<TAB>item[<TAB>rating]".into(),
                };
            }
            Format::Delimited => {
                return Parser::delimited(Separator::Tab, &DelimitedSpec::default(), false);
            }
        };
        Parser {
            format,
            sep,
            user,
            item,
            rating: Some(2),
            timestamp: Some(3),
            arity: Arity::Exactly(4),
            strict: true,
            header,
            expected: expected.into(),
        }
    }

    fn delimited(sep: Separator, spec: &DelimitedSpec, header: bool) -> Parser {
        // The rating column is only required on a line when a rating is needed (`--min-rating`).
        let last = spec.user_col.max(spec.item_col);
        let expected = format!(
            "at least {} fields separated by {} (user in column {}, item in column {}{})",
            last + 1,
            sep.as_text(),
            spec.user_col,
            spec.item_col,
            spec.rating_col
                .map(|r| format!(", rating in column {r}"))
                .unwrap_or_default()
        );
        Parser {
            format: Format::Delimited,
            sep,
            user: spec.user_col,
            item: spec.item_col,
            rating: spec.rating_col,
            timestamp: None,
            arity: Arity::AtLeast(last + 1),
            strict: false,
            header: if header { Header::Skip } else { Header::None },
            expected,
        }
    }

    /// Whether records can carry a rating (for `--min-rating`).
    pub(crate) fn has_rating(&self) -> bool {
        self.rating.is_some() || self.format == Format::AmazonJson
    }

    /// Parses one line. `need_rating`: the rating is required (for `--min-rating`). On failure, the
    /// detail, if any, says what is wrong beyond "does not match the layout".
    pub(crate) fn parse<'a>(
        &self,
        line: &'a str,
        need_rating: bool,
    ) -> Result<Record<'a>, Option<String>> {
        if self.format == Format::AmazonJson {
            return parse_json(line, need_rating);
        }
        let mut user = None;
        let mut item = None;
        let mut rating = None;
        let mut timestamp = None;
        let mut n = 0;
        let stop = match self.arity {
            Arity::Exactly(_) => usize::MAX,
            Arity::AtLeast(k) => k.max(self.rating.map_or(0, |r| r + 1)),
        };
        for (i, field) in self.sep.fields(line).enumerate() {
            if i >= stop {
                n = i + 1;
                break;
            }
            let field = unquote(field.trim_ascii());
            if i == self.user {
                user = Some(field);
            }
            if i == self.item {
                item = Some(field);
            }
            if Some(i) == self.rating {
                rating = Some(field);
            }
            if Some(i) == self.timestamp {
                timestamp = Some(field);
            }
            n = i + 1;
        }
        let shape_ok = match self.arity {
            Arity::Exactly(k) => n == k,
            Arity::AtLeast(k) => n >= k,
        };
        let (Some(user), Some(item), true) = (user, item, shape_ok) else {
            return Err(None);
        };
        if user.is_empty() {
            return Err(Some("empty user id".into()));
        }
        if item.is_empty() {
            return Err(Some("empty item id".into()));
        }
        // A rating column, where a line has it, holds a number: a word there is a malformed line (a
        // stray header, a shifted column), never a positive interaction. (A negative rating drops
        // the record as explicit negative feedback.)
        let rating = match rating {
            Some(r) => Some(parse_rating(r)?),
            None => None,
        };
        if need_rating && rating.is_none() {
            return Err(Some("no rating column, which --min-rating needs".into()));
        }
        if self.strict
            && let Some(t) = timestamp
            && t.parse::<i64>().is_err()
        {
            return Err(Some(format!("timestamp {t:?} is not an integer")));
        }
        Ok(Record {
            user: Cow::Borrowed(user),
            item: Cow::Borrowed(item),
            rating,
        })
    }
}

fn unquote(f: &str) -> &str {
    if f.len() >= 2 && f.starts_with('"') && f.ends_with('"') {
        &f[1..f.len() - 1]
    } else {
        f
    }
}

fn parse_rating(r: &str) -> Result<f32, Option<String>> {
    match r.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(Some(format!("rating {r:?} is not a number"))),
    }
}

fn parse_json(line: &str, need_rating: bool) -> Result<Record<'_>, Option<String>> {
    let review: Review<'_> = serde_json::from_str(line).map_err(|e| {
        // serde's message ends with " at line 1 column N"; the column is useful, "line 1" is not.
        let msg = e.to_string();
        Some(msg.replace(" at line 1 column", " at column"))
    })?;
    if review.reviewer.trim().is_empty() {
        return Err(Some("empty reviewerID".into()));
    }
    if review.asin.trim().is_empty() {
        return Err(Some("empty asin".into()));
    }
    if need_rating && review.overall.is_none() {
        return Err(Some(
            "no \"overall\" rating, which --min-rating needs".into(),
        ));
    }
    Ok(Record {
        user: review.reviewer,
        item: review.asin,
        rating: review.overall,
    })
}

/// Guesses a single file's format from its name (without `.gz`) and first lines. The rules, in order:
/// `.json`/`.jsonl` or a line starting with `{` → Amazon JSON; the MovieLens CSV header → MovieLens
/// CSV; four `::` fields → `ratings.dat`; four tab fields in a `*.data` file → `u.data`; four comma
/// fields shaped `ASIN,reviewerID,rating,timestamp` → Amazon CSV; anything else → generic delimited.
pub fn detect_format(base_name: &str, sample: &[String]) -> Format {
    let Some(first) = sample.first() else {
        return Format::Delimited;
    };
    let first = first.trim();
    if base_name.ends_with(".json") || base_name.ends_with(".jsonl") || first.starts_with('{') {
        return Format::AmazonJson;
    }
    if first.eq_ignore_ascii_case("userId,movieId,rating,timestamp") {
        return Format::MovielensCsv;
    }
    if first.contains("::") {
        return if first.split("::").count() == 4 {
            Format::MovielensDat
        } else {
            Format::Delimited
        };
    }
    if first.contains('\t') {
        let f: Vec<&str> = first.split('\t').collect();
        return if base_name.ends_with(".data") && f.len() == 4 && f.iter().all(|x| is_number(x)) {
            Format::Movielens100k
        } else {
            Format::Delimited
        };
    }
    if first.contains(',') {
        let f: Vec<&str> = first.split(',').map(str::trim).collect();
        if f.len() == 4 && looks_like_asin(f[0]) && looks_like_reviewer(f[1]) && is_number(f[2]) {
            return Format::AmazonCsv;
        }
    }
    Format::Delimited
}

fn is_number(s: &str) -> bool {
    s.trim().parse::<f64>().is_ok_and(f64::is_finite)
}

/// ASINs (and ISBN-10s standing in for them) are 10 upper-case alphanumerics.
fn looks_like_asin(s: &str) -> bool {
    s.len() == 10
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// Amazon reviewer ids start with `A` followed by upper-case alphanumerics.
fn looks_like_reviewer(s: &str) -> bool {
    s.len() >= 8
        && s.starts_with('A')
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

const HEADER_NAMES: &[&str] = &[
    "user",
    "userid",
    "user_id",
    "uid",
    "users",
    "reviewerid",
    "reviewer_id",
    "customer_id",
    "item",
    "itemid",
    "item_id",
    "iid",
    "items",
    "movieid",
    "movie_id",
    "asin",
    "product_id",
    "parent_asin",
    "rating",
    "score",
];

/// Resolves the layout of generic delimited text: the separator (given, else the first of `::`, tab,
/// comma, `;`, `|`, whitespace found in the first line), whether there is a header (given, or a user
/// or item column named like `user`, `userId`, `item`, `asin`…), and the rating column (given, else
/// column 2 when the user and item are columns 0 and 1 and column 2 of the first record is numeric).
pub(crate) fn resolve_delimited(
    spec: &DelimitedSpec,
    sample: &[String],
    file: &str,
) -> Result<Parser, DataError> {
    let first = sample.first().map(String::as_str).unwrap_or("");
    let sep = match &spec.sep {
        Some(s) => s.clone(),
        None => {
            let candidates = [
                ("::", Separator::DoubleColon),
                ("\t", Separator::Tab),
                (",", Separator::Comma),
                (";", Separator::Semicolon),
                ("|", Separator::Pipe),
                (" ", Separator::Whitespace),
            ];
            match candidates.into_iter().find(|(pat, _)| first.contains(pat)) {
                Some((_, s)) => s,
                None => {
                    return Err(DataError::Invalid(format!(
                        "{file}: cannot tell the column separator from the first line {:?}; pass --sep",
                        shorten(first)
                    )));
                }
            }
        }
    };
    let fields = |line: &str| -> Vec<String> {
        sep.fields(line)
            .map(|f| unquote(f.trim_ascii()).to_ascii_lowercase())
            .collect()
    };
    let first_fields = fields(first);
    let named = |c: usize| {
        first_fields
            .get(c)
            .is_some_and(|f| HEADER_NAMES.contains(&f.as_str()))
    };
    let rating_text_then_number = spec.rating_col.is_some_and(|r| {
        let second = sample.get(1).map(|l| fields(l)).unwrap_or_default();
        first_fields.get(r).is_some_and(|f| !is_number(f))
            && second.get(r).is_some_and(|f| is_number(f))
    });
    let header =
        spec.header || named(spec.user_col) || named(spec.item_col) || rating_text_then_number;
    let mut spec = spec.clone();
    if spec.rating_col.is_none() && spec.user_col <= 1 && spec.item_col <= 1 {
        let data_line = if header {
            sample.get(1)
        } else {
            sample.first()
        };
        if let Some(l) = data_line
            && fields(l).get(2).is_some_and(|f| is_number(f))
        {
            spec.rating_col = Some(2);
        }
    }
    if spec.user_col == spec.item_col {
        return Err(DataError::Invalid(format!(
            "--user-col and --item-col are both {}",
            spec.user_col
        )));
    }
    Ok(Parser::delimited(sep, &spec, header))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(p: &Parser, line: &str) -> Result<(String, String, Option<f32>), Option<String>> {
        p.parse(line, false)
            .map(|r| (r.user.into_owned(), r.item.into_owned(), r.rating))
    }

    #[test]
    fn fixed_formats_parse_their_layout() {
        let dat = Parser::fixed(Format::MovielensDat);
        assert_eq!(
            rec(&dat, "1::1193::5::978300760"),
            Ok(("1".into(), "1193".into(), Some(5.0)))
        );
        assert_eq!(rec(&dat, "1::1193::5"), Err(None));
        assert!(
            rec(&dat, "1::1193::x::978300760")
                .unwrap_err()
                .unwrap()
                .contains("rating")
        );
        assert!(
            rec(&dat, "1::1193::5::t")
                .unwrap_err()
                .unwrap()
                .contains("timestamp")
        );
        let amazon = Parser::fixed(Format::AmazonCsv);
        assert_eq!(
            rec(&amazon, "0972683275,A1CMD08Z49PGKQ,4.0,1379289600"),
            Ok(("A1CMD08Z49PGKQ".into(), "0972683275".into(), Some(4.0)))
        );
        let u = Parser::fixed(Format::Movielens100k);
        assert_eq!(
            rec(&u, "196\t242\t3\t881250949"),
            Ok(("196".into(), "242".into(), Some(3.0)))
        );
        assert!(
            rec(&u, "196\t\t3\t881250949")
                .unwrap_err()
                .unwrap()
                .contains("item")
        );
    }

    #[test]
    fn json_borrows_and_reports_missing_fields() {
        let j = Parser::fixed(Format::AmazonJson);
        let line = r#"{"overall": 5.0, "verified": true, "reviewerID": "A1", "asin": "B2", "style": {"a": 1}, "unixReviewTime": 1}"#;
        let r = j.parse(line, false).unwrap();
        assert!(matches!(r.user, Cow::Borrowed("A1")));
        assert_eq!(r.rating, Some(5.0));
        let err = rec(&j, r#"{"reviewerID": "A1"}"#).unwrap_err().unwrap();
        assert!(err.contains("asin"), "{err}");
        assert!(rec(&j, "not json").is_err());
    }

    #[test]
    fn presplit_rows_take_an_optional_rating() {
        let p = Parser::fixed(Format::PreSplit);
        assert_eq!(rec(&p, "u\ti"), Ok(("u".into(), "i".into(), None)));
        assert_eq!(p.parse("u\ti\t4.0", true).map(|r| r.rating), Ok(Some(4.0)));
        assert!(p.parse("u\ti", true).is_err());
        assert_eq!(rec(&p, "u"), Err(None));
    }

    #[test]
    fn detects_formats_from_names_and_first_lines() {
        let s = |l: &str| vec![l.to_string()];
        assert_eq!(
            detect_format("ratings.dat", &s("1::2::5::9")),
            Format::MovielensDat
        );
        assert_eq!(
            detect_format("u.data", &s("1\t2\t5\t9")),
            Format::Movielens100k
        );
        assert_eq!(detect_format("x.tsv", &s("1\t2\t5\t9")), Format::Delimited);
        assert_eq!(
            detect_format("ratings.csv", &s("userId,movieId,rating,timestamp")),
            Format::MovielensCsv
        );
        assert_eq!(
            detect_format("a.txt", &s(r#"{"asin":"x"}"#)),
            Format::AmazonJson
        );
        assert_eq!(
            detect_format("baby.json", &s("garbage")),
            Format::AmazonJson
        );
        assert_eq!(
            detect_format("baby.csv", &s("0972683275,A1CMD08Z49PGKQ,4.0,1379289600")),
            Format::AmazonCsv
        );
        assert_eq!(
            detect_format("x.csv", &s("1,2,4.0,1379289600")),
            Format::Delimited
        );
    }

    #[test]
    fn delimited_layout_is_detected() {
        let lines = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let p = resolve_delimited(
            &DelimitedSpec::default(),
            &lines(&["user,item,rating", "a,b,5"]),
            "f",
        )
        .unwrap();
        assert_eq!(p.sep, Separator::Comma);
        assert_eq!(p.header, Header::Skip);
        assert_eq!(p.rating, Some(2));
        let p = resolve_delimited(&DelimitedSpec::default(), &lines(&["a b", "c d"]), "f").unwrap();
        assert_eq!(p.sep, Separator::Whitespace);
        assert_eq!(p.header, Header::None);
        assert_eq!(p.rating, None);
        assert!(resolve_delimited(&DelimitedSpec::default(), &lines(&["abc"]), "f").is_err());
        let spec = DelimitedSpec {
            sep: Some(Separator::Tab),
            user_col: 2,
            item_col: 0,
            rating_col: Some(1),
            header: false,
        };
        let p = resolve_delimited(&spec, &lines(&["i\t3\tu"]), "f").unwrap();
        assert_eq!(rec(&p, "i\t3\tu"), Ok(("u".into(), "i".into(), Some(3.0))));
        assert_eq!(p.parse("i\t3\tu", true).unwrap().rating, Some(3.0));
        assert_eq!(rec(&p, "i\t3"), Err(None));
    }

    #[test]
    fn separators_parse_from_names_and_symbols() {
        assert_eq!("tab".parse::<Separator>(), Ok(Separator::Tab));
        assert_eq!("\\t".parse::<Separator>(), Ok(Separator::Tab));
        assert_eq!("::".parse::<Separator>(), Ok(Separator::DoubleColon));
        assert_eq!(",".parse::<Separator>(), Ok(Separator::Comma));
        assert!("".parse::<Separator>().is_err());
        assert_eq!("ml-dat".parse::<Format>(), Ok(Format::MovielensDat));
        assert!("nope".parse::<Format>().is_err());
    }
}
