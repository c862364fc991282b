//! Side information: each user's or item's categorical features (a movie's genres and release decade,
//! a user's age bracket, gender and occupation), as a sparse row per entity over a vocabulary of
//! `group=value` names. Models that take it (`cobrar-si`) add one projection row per feature to the
//! entity's interaction projection.
//!
//! Sources: a generic file of `id<TAB>feature` lines per side (`--user-features FILE`,
//! `--item-features FILE`), or `builtin`: MovieLens's own files beside the ratings (ML-100K `u.item`,
//! `u.user`; ML-1M `movies.dat`, `users.dat`). Ids are the dataset's original ids; ids the pipeline
//! dropped (k-core) are counted and skipped, entities without a line have no features.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Csr;
use super::DataError;

/// Users or items (the side a feature file describes, or a cold-start split holds out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureSide {
    Users,
    Items,
}

impl FeatureSide {
    /// The flag that gives this side's features (`--user-features`).
    pub fn flag(self) -> &'static str {
        match self {
            FeatureSide::Users => "--user-features",
            FeatureSide::Items => "--item-features",
        }
    }

    /// Singular noun for messages.
    pub fn one(self) -> &'static str {
        match self {
            FeatureSide::Users => "user",
            FeatureSide::Items => "item",
        }
    }

    /// Plural noun for messages.
    pub fn noun(self) -> &'static str {
        match self {
            FeatureSide::Users => "users",
            FeatureSide::Items => "items",
        }
    }
}

/// Where one side's features come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureSource {
    /// MovieLens's own files beside the ratings file (ML-100K, ML-1M).
    Builtin,
    /// A file of `id<TAB>feature` lines.
    File(PathBuf),
}

impl std::str::FromStr for FeatureSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "" => Err("expected a file of id<TAB>feature lines, or builtin".into()),
            "builtin" => Ok(FeatureSource::Builtin),
            path => Ok(FeatureSource::File(PathBuf::from(path))),
        }
    }
}

/// One side's features over the dataset's dense ids.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureSet {
    /// Feature names (`genre=Comedy`), sorted; a feature's index is its position.
    pub names: Vec<String>,
    /// Per entity (dense id), its sorted feature indices.
    #[serde(skip)]
    pub rows: Csr,
    /// Where they came from (a file, or `ml-100k u.item`).
    pub source: String,
    /// Entities with at least one feature.
    pub covered: usize,
    /// Lines whose id the dataset does not have (dropped by the pipeline, or unknown).
    pub unknown_ids: u64,
}

impl FeatureSet {
    pub fn n_features(&self) -> usize {
        self.names.len()
    }

    /// Builds the set from (original id, feature name) pairs: `ids` are the dataset's original ids of
    /// this side (dense order).
    pub fn from_pairs(ids: &[String], pairs: &[(String, String)], source: String) -> FeatureSet {
        let index: std::collections::HashMap<&str, u32> = ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.as_str(), i as u32))
            .collect();
        let mut names: Vec<String> = pairs.iter().map(|p| p.1.clone()).collect();
        names.sort_unstable();
        names.dedup();
        let mut unknown_ids = 0;
        let mut entries = Vec::with_capacity(pairs.len());
        let mut used = vec![false; names.len()];
        for (id, feature) in pairs {
            let Some(&e) = index.get(id.as_str()) else {
                unknown_ids += 1;
                continue;
            };
            let f = names
                .binary_search(feature)
                .expect("every name is in the vocabulary");
            used[f] = true;
            entries.push((e, f as u32));
        }
        // Features only unknown ids had carry nothing the model could learn: left out.
        let remap: Vec<u32> = used
            .iter()
            .scan(0u32, |next, &u| {
                let r = *next;
                *next += u as u32;
                Some(r)
            })
            .collect();
        let names: Vec<String> = names
            .into_iter()
            .zip(&used)
            .filter_map(|(n, &u)| u.then_some(n))
            .collect();
        for e in &mut entries {
            e.1 = remap[e.1 as usize];
        }
        let rows = Csr::from_pairs(ids.len(), &entries);
        let covered = (0..rows.n_rows()).filter(|&r| rows.row_len(r) > 0).count();
        FeatureSet {
            names,
            rows,
            source,
            covered,
            unknown_ids,
        }
    }

    /// The (original id, feature name) pairs, entity by entity: what a run directory saves.
    pub fn pairs<'a>(&'a self, ids: &'a [String]) -> impl Iterator<Item = (&'a str, &'a str)> {
        (0..self.rows.n_rows()).flat_map(move |e| {
            self.rows
                .row(e)
                .iter()
                .map(move |&f| (ids[e].as_str(), self.names[f as usize].as_str()))
        })
    }

    /// The run directory's copy: a `# source: …` line, then `id<TAB>feature` lines ([`read_pairs`]
    /// reads it back).
    pub fn to_tsv(&self, ids: &[String]) -> String {
        let mut text = format!("{SOURCE_LINE}{}\n", self.source.replace('\n', " "));
        for (id, name) in self.pairs(ids) {
            text.push_str(id);
            text.push('\t');
            text.push_str(name);
            text.push('\n');
        }
        text
    }

    /// One line for reports: `19 + 8 features on 1,682 of 1,682 items (ml-100k u.item)`.
    pub fn summary(&self, side: FeatureSide, n: usize) -> String {
        let unknown = if self.unknown_ids > 0 {
            format!(
                "; {} lines name {} the dataset does not have",
                self.unknown_ids,
                side.noun()
            )
        } else {
            String::new()
        };
        format!(
            "{} features on {} of {} {} ({}){unknown}",
            self.n_features(),
            self.covered,
            n,
            side.noun(),
            self.source
        )
    }
}

/// Both sides' features (either may be absent).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Features {
    pub users: Option<FeatureSet>,
    pub items: Option<FeatureSet>,
}

impl Features {
    pub fn is_empty(&self) -> bool {
        self.users.is_none() && self.items.is_none()
    }

    pub fn side(&self, side: FeatureSide) -> Option<&FeatureSet> {
        match side {
            FeatureSide::Users => self.users.as_ref(),
            FeatureSide::Items => self.items.as_ref(),
        }
    }

    /// Gives `side` the features `set`.
    pub fn set(&mut self, side: FeatureSide, set: FeatureSet) {
        match side {
            FeatureSide::Users => self.users = Some(set),
            FeatureSide::Items => self.items = Some(set),
        }
    }

    /// Features per side (0 where absent): what a model's parameter shapes depend on.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.users.as_ref().map_or(0, FeatureSet::n_features),
            self.items.as_ref().map_or(0, FeatureSet::n_features),
        )
    }
}

/// The file `data split` writes one side's features to in a split directory (where `builtin` finds
/// them when the directory is loaded).
pub fn split_feature_file(side: FeatureSide) -> &'static str {
    match side {
        FeatureSide::Users => "user_features.tsv",
        FeatureSide::Items => "item_features.tsv",
    }
}

/// The first line of a feature file a run directory writes ([`FeatureSet::to_tsv`]) names where the
/// features came from.
const SOURCE_LINE: &str = "# source: ";

/// Reads a generic feature file: one `id<TAB>feature` pair per line (an entity has as many lines as
/// features; blank lines and lines starting with `#` are skipped). Also returns the source a first
/// `# source: …` line names (run directories' copies have one).
pub fn read_pairs(path: &Path, side: FeatureSide) -> Result<FilePairs, DataError> {
    let text = read_text(path)?;
    let source = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix(SOURCE_LINE))
        .map(|s| s.trim_end_matches('\r').to_string());
    let mut pairs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.split('\t');
        let (id, feature) = (f.next().unwrap_or(""), f.next());
        match feature {
            Some(feature) if !id.is_empty() && !feature.is_empty() && f.next().is_none() => {
                pairs.push((id.to_string(), feature.to_string()));
            }
            _ => {
                return Err(DataError::Malformed {
                    file: path.display().to_string(),
                    line: n as u64 + 1,
                    expected: format!(
                        "{}<TAB>feature (one pair per line, {})",
                        match side {
                            FeatureSide::Users => "user",
                            FeatureSide::Items => "item",
                        },
                        side.flag()
                    ),
                    found: shorten(line),
                    detail: None,
                });
            }
        }
    }
    if pairs.is_empty() {
        return Err(DataError::Invalid(format!(
            "{}: {}: no id<TAB>feature lines",
            side.flag(),
            path.display()
        )));
    }
    Ok((pairs, source))
}

/// A feature file's (id, feature) pairs and the source its first line names, if any.
pub type FilePairs = (Vec<(String, String)>, Option<String>);

/// The built-in side information of the MovieLens directory `dir` (the ratings file's folder).
pub fn read_builtin(
    dir: &Path,
    side: FeatureSide,
) -> Result<(Vec<(String, String)>, String), DataError> {
    let dataset = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (ml100k, ml1m) = match side {
        FeatureSide::Users => ("u.user", "users.dat"),
        FeatureSide::Items => ("u.item", "movies.dat"),
    };
    let (file, pairs) = if dir.join(ml100k).is_file() {
        let path = dir.join(ml100k);
        let pairs = match side {
            FeatureSide::Users => ml100k_users(&path)?,
            FeatureSide::Items => ml100k_items(&path, &dir.join("u.genre"))?,
        };
        (ml100k, pairs)
    } else if dir.join(ml1m).is_file() {
        let path = dir.join(ml1m);
        let pairs = match side {
            FeatureSide::Users => ml1m_users(&path)?,
            FeatureSide::Items => ml1m_movies(&path)?,
        };
        (ml1m, pairs)
    } else {
        return Err(DataError::Invalid(format!(
            "{} builtin: {} has neither {ml100k} (MovieLens 100K) nor {ml1m} (MovieLens 1M); give \
             a file of id<TAB>feature lines instead",
            side.flag(),
            dir.display()
        )));
    };
    Ok((pairs, format!("{dataset} {file}")))
}

/// MovieLens's age brackets (ML-1M's codes; ML-100K's ages fall into the same brackets).
fn age_bracket(age: u32) -> &'static str {
    match age {
        0..18 => "<18",
        18..25 => "18-24",
        25..35 => "25-34",
        35..45 => "35-44",
        45..50 => "45-49",
        50..56 => "50-55",
        _ => "56+",
    }
}

/// A release year's decade (`1990s`); before 1950 one bucket (few films, each decade thin).
fn decade(year: u32) -> String {
    if year < 1950 {
        "<1950".into()
    } else {
        format!("{}s", year / 10 * 10)
    }
}

/// The year of `(1995)` at the end of a title, or of a `01-Jan-1995` date: the last run of exactly
/// four digits, when it is a plausible year.
fn year_in(text: &str) -> Option<u32> {
    let b = text.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    (0..b.len().saturating_sub(3)).rev().find_map(|i| {
        let run = (i..i + 4).all(digit) && !digit(i + 4) && (i == 0 || !digit(i - 1));
        let y: u32 = if run {
            text[i..i + 4].parse().ok()?
        } else {
            return None;
        };
        (1800..=2100).contains(&y).then_some(y)
    })
}

fn ml100k_users(path: &Path) -> Result<Vec<(String, String)>, DataError> {
    let text = read_text(path)?;
    let mut pairs = Vec::new();
    for (n, line) in lines(&text) {
        let f: Vec<&str> = line.split('|').collect();
        let age = f.get(1).and_then(|a| a.parse::<u32>().ok());
        let (Some(age), true) = (age, f.len() >= 4) else {
            return Err(malformed(path, n, "user|age|gender|occupation|zip", line));
        };
        let id = f[0].to_string();
        pairs.push((id.clone(), format!("age={}", age_bracket(age))));
        pairs.push((id.clone(), format!("gender={}", f[2])));
        pairs.push((id, format!("occupation={}", f[3])));
    }
    Ok(pairs)
}

fn ml100k_items(path: &Path, genre_file: &Path) -> Result<Vec<(String, String)>, DataError> {
    // u.genre: `name|index` lines; the flags of u.item follow that order.
    let genres: Vec<String> = match read_text(genre_file) {
        Ok(t) => lines(&t)
            .map(|(_, l)| l.split('|').next().unwrap_or("").to_string())
            .collect(),
        Err(_) => (0..19).map(|g| format!("{g}")).collect(),
    };
    let text = read_text(path)?;
    let mut pairs = Vec::new();
    for (n, line) in lines(&text) {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() != 5 + genres.len() {
            return Err(malformed(
                path,
                n,
                &format!(
                    "item|title|release date|video date|url|{} genre flags",
                    genres.len()
                ),
                line,
            ));
        }
        let id = f[0].to_string();
        for (g, flag) in f[5..].iter().enumerate() {
            match *flag {
                "1" => pairs.push((id.clone(), format!("genre={}", genres[g]))),
                "0" => {}
                _ => return Err(malformed(path, n, "genre flags of 0 or 1", line)),
            }
        }
        if let Some(y) = year_in(f[2]) {
            pairs.push((id, format!("decade={}", decade(y))));
        }
    }
    Ok(pairs)
}

fn ml1m_users(path: &Path) -> Result<Vec<(String, String)>, DataError> {
    let text = read_text(path)?;
    let mut pairs = Vec::new();
    for (n, line) in lines(&text) {
        let f: Vec<&str> = line.split("::").collect();
        let age = f.get(2).and_then(|a| a.parse::<u32>().ok());
        let (Some(age), true) = (age, f.len() >= 4) else {
            return Err(malformed(
                path,
                n,
                "UserID::Gender::Age::Occupation::Zip",
                line,
            ));
        };
        let id = f[0].to_string();
        pairs.push((id.clone(), format!("age={}", age_bracket(age))));
        pairs.push((id.clone(), format!("gender={}", f[1])));
        pairs.push((id, format!("occupation={}", f[3])));
    }
    Ok(pairs)
}

fn ml1m_movies(path: &Path) -> Result<Vec<(String, String)>, DataError> {
    let text = read_text(path)?;
    let mut pairs = Vec::new();
    for (n, line) in lines(&text) {
        let f: Vec<&str> = line.split("::").collect();
        if f.len() != 3 {
            return Err(malformed(
                path,
                n,
                "MovieID::Title (Year)::Genre|Genre",
                line,
            ));
        }
        let id = f[0].to_string();
        for g in f[2].split('|').filter(|g| !g.is_empty()) {
            pairs.push((id.clone(), format!("genre={g}")));
        }
        if let Some(y) = year_in(f[1]) {
            pairs.push((id, format!("decade={}", decade(y))));
        }
    }
    Ok(pairs)
}

/// A file's text; bytes that are not UTF-8 (ML-1M's Latin-1 titles) are replaced, which leaves ids,
/// genres and years intact.
pub(crate) fn read_text(path: &Path) -> Result<String, DataError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DataError::NotFound {
            path: path.to_path_buf(),
        }),
        Err(error) => Err(DataError::Io {
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// Non-blank lines with their 0-based numbers.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
}

fn malformed(path: &Path, n: usize, expected: &str, line: &str) -> DataError {
    DataError::Malformed {
        file: path.display().to_string(),
        line: n as u64 + 1,
        expected: expected.to_string(),
        found: shorten(line),
        detail: None,
    }
}

fn shorten(line: &str) -> String {
    line.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (1..=n).map(|i| i.to_string()).collect()
    }

    #[test]
    fn pairs_become_sorted_rows_over_a_sorted_vocabulary() {
        let pairs: Vec<(String, String)> = [
            ("2", "genre=Drama"),
            ("1", "genre=Comedy"),
            ("2", "decade=1990s"),
            ("9", "genre=Horror"), // an id the dataset does not have
            ("1", "genre=Comedy"), // a repeat
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let f = FeatureSet::from_pairs(&ids(3), &pairs, "test".into());
        // Horror only the unknown id had: left out of the vocabulary.
        assert_eq!(f.names, ["decade=1990s", "genre=Comedy", "genre=Drama"]);
        assert_eq!(f.rows.row(0), &[1]);
        assert_eq!(f.rows.row(1), &[0, 2]);
        assert!(f.rows.row(2).is_empty());
        assert_eq!((f.covered, f.unknown_ids), (2, 1));
        let names = ids(3);
        let back: Vec<(&str, &str)> = f.pairs(&names).collect();
        assert_eq!(
            back,
            [
                ("1", "genre=Comedy"),
                ("2", "decade=1990s"),
                ("2", "genre=Drama")
            ]
        );
    }

    #[test]
    fn years_and_brackets() {
        assert_eq!(year_in("Toy Story (1995)"), Some(1995));
        assert_eq!(year_in("01-Jan-1995"), Some(1995));
        assert_eq!(year_in("2001: A Space Odyssey (1968)"), Some(1968));
        assert_eq!(year_in("unknown"), None);
        assert_eq!(decade(1968), "1960s");
        assert_eq!(decade(1931), "<1950");
        assert_eq!(age_bracket(24), "18-24");
        assert_eq!(age_bracket(1), "<18");
        assert_eq!(age_bracket(56), "56+");
    }

    #[test]
    fn a_generic_file_with_a_bad_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.tsv");
        std::fs::write(&path, "1\tgenre=a\n# note\n\n2 genre=b\n").unwrap();
        let e = read_pairs(&path, FeatureSide::Items)
            .unwrap_err()
            .to_string();
        assert!(e.contains("f.tsv:4: expected item<TAB>feature"), "{e}");
        std::fs::write(&path, "1\tgenre=a\n2\tgenre=b\r\n").unwrap();
        let (p, source) = read_pairs(&path, FeatureSide::Items).unwrap();
        assert_eq!(source, None);
        assert_eq!(p[1], ("2".to_string(), "genre=b".to_string()));
    }

    #[test]
    fn movielens_files_parse() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("u.genre"), "unknown|0\nAction|1\nComedy|2\n\n").unwrap();
        std::fs::write(
            d.join("u.item"),
            "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|1\n2|Old|01-Jan-1931||u|0|1|1\n3|X|||u|0|0|0\n",
        )
        .unwrap();
        std::fs::write(
            d.join("u.user"),
            "1|24|M|technician|85711\n2|53|F|other|94043\n",
        )
        .unwrap();
        let (items, source) = read_builtin(d, FeatureSide::Items).unwrap();
        assert!(source.ends_with("u.item"), "{source}");
        let f = FeatureSet::from_pairs(&ids(3), &items, source);
        let named = |e: usize| -> Vec<&str> {
            f.rows
                .row(e)
                .iter()
                .map(|&i| f.names[i as usize].as_str())
                .collect()
        };
        assert_eq!(named(0), ["decade=1990s", "genre=Comedy"]);
        assert_eq!(named(1), ["decade=<1950", "genre=Action", "genre=Comedy"]);
        assert!(named(2).is_empty());
        let (users, _) = read_builtin(d, FeatureSide::Users).unwrap();
        let u = FeatureSet::from_pairs(&ids(2), &users, "u".into());
        assert_eq!(u.n_features(), 6);
        // ML-1M's files.
        let d1 = tempfile::tempdir().unwrap();
        std::fs::write(
            d1.path().join("movies.dat"),
            b"1::Toy Story (1995)::Animation|Children's|Comedy\n2::Caf\xe9 (1968)::Drama\n",
        )
        .unwrap();
        std::fs::write(
            d1.path().join("users.dat"),
            "1::F::1::10::48067\n2::M::56::16::70072\n",
        )
        .unwrap();
        let (m, _) = read_builtin(d1.path(), FeatureSide::Items).unwrap();
        assert!(m.contains(&("2".into(), "decade=1960s".into())), "{m:?}");
        assert_eq!(m.iter().filter(|p| p.0 == "1").count(), 4);
        let (u, _) = read_builtin(d1.path(), FeatureSide::Users).unwrap();
        assert!(u.contains(&("2".into(), "age=56+".into())));
        assert!(u.contains(&("1".into(), "occupation=10".into())));
        // Neither file: one line saying what is expected.
        let e = read_builtin(dir.path().join("nowhere").as_path(), FeatureSide::Items)
            .unwrap_err()
            .to_string();
        assert!(e.contains("neither u.item"), "{e}");
        std::fs::write(d.join("u.item"), "1|T|d||u|0|1\n").unwrap();
        let e = read_builtin(d, FeatureSide::Items).unwrap_err().to_string();
        assert!(e.contains("u.item:1: expected item|title"), "{e}");
    }
}
