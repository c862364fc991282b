//! `cobrar-gpu data stats|split`, and [`DatasetArgs`], the dataset options every command that loads
//! data flattens into its own arguments.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use crate::data::{
    self, ColdSpec, Counts, Dataset, DelimitedSpec, FeatureSide, FeatureSource, Format,
    LoadOptions, SplitConfig,
};

/// Which dataset to load and how to preprocess it (SPEC §2).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Dataset")]
pub struct DatasetArgs {
    /// A ratings file, a directory with train.tsv/val.tsv/test.tsv, or a name (ml-1m, ml-100k,
    /// ml-latest-small, amazon-baby, amazon-music-mmb) looked up in --data-dir. Default: the small
    /// synthetic dataset built into the binary
    #[arg(long, value_name = "PATH|NAME")]
    pub dataset: Option<String>,

    /// A built-in synthetic workload with the shape of a real dataset (ml-1m, amazon-baby, ml-20m):
    /// generated from a fixed seed, no data file needed, the same on every machine (its hash is
    /// reported)
    #[arg(long, value_name = "NAME", conflicts_with = "dataset")]
    pub workload: Option<String>,

    /// Folder holding the named datasets
    #[arg(long, env = "COBRAR_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Input format (auto: detected from the file name and first lines)
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,

    /// Column separator of delimited text: tab, comma, "::", ";", "|", space, or any string
    /// (implies --format delimited)
    #[arg(long, value_name = "SEP")]
    pub sep: Option<String>,

    /// 0-based column of the user id in delimited text [default: 0]
    #[arg(long, value_name = "N")]
    pub user_col: Option<usize>,

    /// 0-based column of the item id in delimited text [default: 1]
    #[arg(long, value_name = "N")]
    pub item_col: Option<usize>,

    /// 0-based column of the rating in delimited text [default: 2 when numeric]
    #[arg(long, value_name = "N")]
    pub rating_col: Option<usize>,

    /// The delimited file starts with a header line (also detected from names like userId, item)
    #[arg(long)]
    pub header: bool,

    /// Keep only interactions rated at least this
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    pub min_rating: Option<f32>,

    /// Iterative k-core: drop users and items with fewer than K interactions until stable (0: off)
    #[arg(long, value_name = "K", default_value_t = 5)]
    pub kcore: u32,

    /// Fraction of each user's interactions held out for test
    #[arg(long, value_name = "R", default_value_t = 0.2)]
    pub test_ratio: f64,

    /// Fraction of the non-test rest held out for validation (0.125 → 70/10/20; the authors' 0.1 → 72/8/20)
    #[arg(long, value_name = "R", default_value_t = 0.125)]
    pub val_ratio: f64,

    /// Seed of the per-user random split
    #[arg(long, value_name = "SEED", default_value_t = 42)]
    pub split_seed: u64,

    /// Side information of the users: a file of user<TAB>feature lines (one pair per line), or
    /// builtin (MovieLens's u.user / users.dat beside the ratings: age bracket, gender, occupation).
    /// Models that use it: cobrar-si
    #[arg(long, value_name = "FILE|builtin")]
    pub user_features: Option<FeatureSource>,

    /// Side information of the items: a file of item<TAB>feature lines, or builtin (MovieLens's
    /// u.item / movies.dat: genres and release decade)
    #[arg(long, value_name = "FILE|builtin")]
    pub item_features: Option<FeatureSource>,

    /// Cold start: hold out a seeded fraction (--cold-ratio) of the items or of the users entirely —
    /// every interaction of theirs goes to test, none to training or validation — so that `evaluate`
    /// reports how a model ranks what it never saw interact (warm and cold metrics apart)
    #[arg(long, value_enum, value_name = "items|users")]
    pub cold_start: Option<ColdSide>,

    /// Fraction of the items (or users) --cold-start holds out, drawn with --split-seed
    #[arg(long, value_name = "R", default_value_t = 0.2, requires = "cold_start")]
    pub cold_ratio: f64,
}

/// `--cold-start` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColdSide {
    Items,
    Users,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Auto,
    /// MovieLens ratings.dat: user::item::rating::timestamp
    #[value(name = "movielens-dat", alias = "ml-dat")]
    MovielensDat,
    /// MovieLens 100K u.data: tab-separated user, item, rating, timestamp
    #[value(name = "movielens-100k", alias = "ml-100k")]
    Movielens100k,
    /// MovieLens ratings.csv with header userId,movieId,rating,timestamp
    #[value(name = "movielens-csv", alias = "ml-csv")]
    MovielensCsv,
    /// Amazon reviews JSON lines (reviewerID, asin, overall), plain or gzip
    #[value(name = "amazon-json", alias = "json")]
    AmazonJson,
    /// Amazon ratings-only CSV: item,user,rating,timestamp
    #[value(name = "amazon-csv")]
    AmazonCsv,
    /// Generic delimited text (see --sep, --user-col, --item-col, --rating-col, --header)
    #[value(name = "delimited", alias = "tsv", alias = "csv")]
    Delimited,
    /// A directory with train.tsv, val.tsv, test.tsv, used as published
    #[value(name = "pre-split", alias = "split")]
    PreSplit,
}

impl FormatArg {
    fn to_format(self) -> Option<Format> {
        Some(match self {
            FormatArg::Auto => return None,
            FormatArg::MovielensDat => Format::MovielensDat,
            FormatArg::Movielens100k => Format::Movielens100k,
            FormatArg::MovielensCsv => Format::MovielensCsv,
            FormatArg::AmazonJson => Format::AmazonJson,
            FormatArg::AmazonCsv => Format::AmazonCsv,
            FormatArg::Delimited => Format::Delimited,
            FormatArg::PreSplit => Format::PreSplit,
        })
    }
}

impl DatasetArgs {
    /// Whether these flags name no data: the embedded synthetic dataset is used.
    pub fn is_embedded(&self) -> bool {
        self.dataset.is_none() && self.workload.is_none()
    }

    /// The library's options. Column flags (`--sep`, `--user-col`, …) imply `--format delimited`
    /// and are refused with any other explicit format.
    pub fn to_options(&self) -> anyhow::Result<LoadOptions> {
        let layout_flags = self.sep.is_some()
            || self.user_col.is_some()
            || self.item_col.is_some()
            || self.rating_col.is_some()
            || self.header;
        let format = match self.format.to_format() {
            None if layout_flags => Some(Format::Delimited),
            Some(f) if layout_flags && f != Format::Delimited => anyhow::bail!(
                "--sep, --user-col, --item-col, --rating-col and --header describe delimited text; \
                 they do not apply to --format {f}"
            ),
            f => f,
        };
        let sep = match &self.sep {
            Some(s) => Some(
                s.parse()
                    .map_err(|e: String| anyhow::anyhow!("--sep: {e}"))?,
            ),
            None => None,
        };
        Ok(LoadOptions {
            dataset: self.dataset.clone(),
            data_dir: self.data_dir.clone(),
            format,
            delimited: DelimitedSpec {
                sep,
                user_col: self.user_col.unwrap_or(0),
                item_col: self.item_col.unwrap_or(1),
                rating_col: self.rating_col,
                header: self.header,
            },
            min_rating: self.min_rating,
            kcore: self.kcore,
            split: SplitConfig {
                test_ratio: self.test_ratio,
                val_ratio: self.val_ratio,
                seed: self.split_seed,
            },
            workload: self.workload.clone(),
            user_features: self.user_features.clone(),
            item_features: self.item_features.clone(),
            cold: self.cold_start.map(|side| ColdSpec {
                side: match side {
                    ColdSide::Items => FeatureSide::Items,
                    ColdSide::Users => FeatureSide::Users,
                },
                ratio: self.cold_ratio,
            }),
        })
    }

    /// Loads and preprocesses the dataset these arguments describe.
    pub fn load(&self) -> anyhow::Result<Dataset> {
        data::load(&self.to_options()?)
    }
}

/// Loads and preprocesses the dataset `args` describe.
pub fn load(args: &DatasetArgs) -> anyhow::Result<Dataset> {
    args.load()
}

#[derive(Debug, Subcommand)]
// Boxed: the dataset options make the arguments a few hundred bytes, and the top-level command enum
// should not be as large as its largest variant.
pub enum DataCommand {
    /// The paper's Table 1 numbers (users, items, interactions, density) before and after each step
    Stats(Box<StatsArgs>),
    /// Write the split: train.tsv, val.tsv, test.tsv (original ids) and split.json; with
    /// --cold-start also the cold set (cold_items.txt or cold_users.txt), and with --user-features /
    /// --item-features the features (user_features.tsv, item_features.tsv: `builtin` on the
    /// directory reads them)
    Split(Box<SplitArgs>),
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The dataset (same as --dataset)
    #[arg(value_name = "DATASET", conflicts_with = "dataset")]
    pub path: Option<String>,

    #[command(flatten)]
    pub dataset: DatasetArgs,

    /// Print the full pipeline report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// The dataset (same as --dataset)
    #[arg(value_name = "DATASET", conflicts_with = "dataset")]
    pub path: Option<String>,

    #[command(flatten)]
    pub dataset: DatasetArgs,

    /// Output directory (created if needed; an existing non-empty one needs --overwrite)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace the files of an existing output directory
    #[arg(long)]
    pub overwrite: bool,
}

fn with_positional(mut args: DatasetArgs, path: Option<String>) -> DatasetArgs {
    if path.is_some() {
        args.dataset = path;
    }
    args
}

pub fn run(cmd: DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Stats(a) => {
            let a = *a;
            let ds = with_positional(a.dataset, a.path).load()?;
            if a.json {
                outln!("{}", serde_json::to_string_pretty(&ds.report)?);
            } else {
                out!("{}", stats_table(&ds));
            }
            Ok(())
        }
        DataCommand::Split(a) => {
            let a = *a;
            let args = with_positional(a.dataset, a.path);
            let input: Vec<&std::path::Path> =
                args.dataset.iter().map(std::path::Path::new).collect();
            let (out, _) = crate::output::dir(&a.out, "--out", a.overwrite, &input)?;
            let ds = args.load()?;
            data::write_split(&ds, &out)?;
            data::write_features(&ds, &out, data::split_feature_file)?;
            outln!(
                "{}: wrote {} (train {}, validation {}, test {} interactions; {} users, {} items) and split.json",
                ds.name,
                a.out.join("{train,val,test}.tsv").display(),
                thousands(ds.train.nnz()),
                thousands(ds.val.nnz()),
                thousands(ds.test.nnz()),
                thousands(ds.n_users()),
                thousands(ds.n_items()),
            );
            if let Some(c) = &ds.report.split.cold_start {
                outln!(
                    "cold start: {} {} held out ({} test interactions), listed in {}",
                    thousands(c.entities),
                    c.side.noun(),
                    thousands(c.test_interactions),
                    a.out.join(data::ColdSet::file_name(c.side)).display()
                );
            }
            Ok(())
        }
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The human-readable report of `data stats`.
pub fn stats_table(ds: &Dataset) -> String {
    let r = &ds.report;
    let mut s = String::new();
    let _ = writeln!(s, "dataset  {} ({})", ds.name, r.format);
    for f in &r.inputs {
        let _ = writeln!(
            s,
            "input    {}  ({} bytes, sha256 {})",
            f.path,
            thousands(f.bytes as usize),
            f.sha256
        );
    }
    if let Some(w) = &r.workload {
        let _ = writeln!(
            s,
            "workload {} generated in {:.2} s, sha256 {}\n         shape: {}",
            w.name, w.generate_seconds, w.hash, w.source
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<28} {:>9} {:>9} {:>13} {:>10}",
        "step", "users", "items", "interactions", "density"
    );
    let row = |s: &mut String, label: &str, c: &Counts| {
        let _ = writeln!(
            s,
            "{:<28} {:>9} {:>9} {:>13} {:>9.4}%",
            label,
            thousands(c.users),
            thousands(c.items),
            thousands(c.interactions),
            100.0 * c.density
        );
    };
    let published = r.pre_split.is_some();
    row(
        &mut s,
        if published {
            "raw (all three files)"
        } else {
            "raw"
        },
        &r.raw,
    );
    let implicit = match r.min_rating {
        Some(m) => format!("implicit (rating >= {m})"),
        None => "implicit".to_string(),
    };
    row(&mut s, &implicit, &r.implicit);
    if let Some(k) = &r.kcore {
        row(
            &mut s,
            &format!("{}-core ({} passes)", k.k, k.passes),
            &k.counts,
        );
    }
    row(&mut s, "preprocessed (Table 1)", &r.preprocessed);
    for note in ds.dropped_records() {
        let _ = writeln!(s, "  {note}");
    }
    let tag = if published { "published" } else { "split" };
    row(&mut s, &format!("{tag} train"), &r.split.train);
    row(&mut s, &format!("{tag} validation"), &r.split.val);
    row(&mut s, &format!("{tag} test"), &r.split.test);
    let _ = writeln!(s);
    match &r.pre_split {
        Some(p) => {
            let _ = writeln!(
                s,
                "split: published, used as is ({} records in the three files; users and items are those of train)",
                thousands(p.total_rows as usize)
            );
            for f in &p.files[1..] {
                let _ = writeln!(
                    s,
                    "  {}: {} records, {} kept; dropped {} with an unknown user, {} with an unknown item, {} already in an earlier part; {} duplicates",
                    f.part,
                    thousands(f.rows as usize),
                    thousands(f.kept),
                    f.dropped_unknown_user,
                    f.dropped_unknown_item,
                    f.dropped_in_earlier_part,
                    f.duplicates
                );
            }
        }
        None => {
            let _ = writeln!(
                s,
                "split: seeded per-user random, seed {}, test ratio {}, validation ratio {} of the rest",
                r.split.seed.unwrap_or_default(),
                r.split.test_ratio.unwrap_or_default(),
                r.split.val_ratio.unwrap_or_default()
            );
            if r.split.users_clamped > 0 {
                let _ = writeln!(
                    s,
                    "  {} users with fewer than 3 interactions keep one training item beyond the formula",
                    r.split.users_clamped
                );
            }
        }
    }
    if let Some(c) = &r.split.cold_start {
        let _ = writeln!(
            s,
            "cold start: {} {} held out entirely{} — their {} interactions are all in test",
            thousands(c.entities),
            c.side.noun(),
            c.ratio.map(|r| format!(" (ratio {r})")).unwrap_or_default(),
            thousands(c.test_interactions)
        );
    }
    let held_out_items = match &r.split.cold_start {
        Some(c) if c.side == FeatureSide::Items => c.entities,
        _ => 0,
    };
    if r.split.items_without_train > held_out_items {
        let _ = writeln!(
            s,
            "  {} items{} have no training interaction",
            r.split.items_without_train - held_out_items,
            if held_out_items > 0 {
                " not held out"
            } else {
                ""
            }
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(subcommand)]
        cmd: DataCommand,
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1000209), "1,000,209");
    }

    #[test]
    fn positional_and_flag_forms_parse() {
        let w = Wrap::try_parse_from(["x", "stats", "some.dat", "--json"]).unwrap();
        let DataCommand::Stats(a) = w.cmd else {
            panic!()
        };
        assert_eq!(
            with_positional(a.dataset, a.path).dataset.as_deref(),
            Some("some.dat")
        );
        let w =
            Wrap::try_parse_from(["x", "split", "--dataset", "d", "--out", "o", "--kcore", "0"])
                .unwrap();
        let DataCommand::Split(a) = w.cmd else {
            panic!()
        };
        assert_eq!(a.dataset.kcore, 0);
        assert!(Wrap::try_parse_from(["x", "stats", "a", "--dataset", "b"]).is_err());
    }

    #[test]
    fn layout_flags_imply_delimited() {
        let w =
            Wrap::try_parse_from(["x", "stats", "f", "--sep", "::", "--rating-col", "2"]).unwrap();
        let DataCommand::Stats(a) = w.cmd else {
            panic!()
        };
        let o = a.dataset.to_options().unwrap();
        assert_eq!(o.format, Some(Format::Delimited));
        assert_eq!(o.delimited.rating_col, Some(2));
        let w =
            Wrap::try_parse_from(["x", "stats", "f", "--sep", ",", "--format", "movielens-dat"])
                .unwrap();
        let DataCommand::Stats(a) = w.cmd else {
            panic!()
        };
        assert!(a.dataset.to_options().is_err());
    }
}
