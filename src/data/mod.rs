//! Data: readers for the interaction formats of SPEC §2, the preprocessing pipeline (implicit feedback,
//! iterative k-core, dense re-indexing, the seeded per-user split) and the index structures the engine
//! consumes ([`Dataset`], [`Csr`]).
//!
//! ```no_run
//! use cobrar_gpu::data::{load, LoadOptions};
//! let ds = load(&LoadOptions { dataset: Some("ratings.dat".into()), ..Default::default() })?;
//! println!("{} users, {} items, {} training interactions", ds.n_users(), ds.n_items(), ds.train.nnz());
//! # anyhow::Ok(())
//! ```
//!
//! Dense indices follow the original ids sorted numerically when every id (of that side) is an
//! unsigned integer, else lexicographically; so the same interactions give the same indices and the
//! same split whatever the order of lines in the file.

mod cold;
mod csr;
mod dataset;
mod degree_table;
mod error;
mod features;
mod formats;
mod intern;
mod pipeline;
mod readers;
mod split;
mod split_files;
pub mod workload;
mod workload_tables;

pub use cold::{
    ColdSet, ColdSpec, read_file as read_cold_file, recorded_ratio as recorded_cold_ratio,
};
pub use csr::Csr;
pub use dataset::{
    ColdReport, Dataset, EMBEDDED_BYTES, EMBEDDED_NAME, Input, KcoreReport, LoadOptions,
    PipelineReport, PreSplitFile, PreSplitReport, SplitReport, WorkloadReport, load, load_bytes,
    resolve,
};
pub use error::{DataError, KNOWN_DATASETS};
pub use features::{
    FeatureSet, FeatureSide, FeatureSource, Features, FilePairs, read_pairs as read_feature_pairs,
    split_feature_file,
};
pub use formats::{DelimitedSpec, Format, Separator, detect_format};
pub use intern::{FxHashMap, FxHasher, Interner};
pub use pipeline::{Counts, IdOrder};
pub use readers::FileRead;
pub use split::{PartSizes, SplitConfig, floor_keep, formula_sizes, part_sizes};
pub use split_files::{write_features, write_split};
