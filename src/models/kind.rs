//! The names of the models: the flag value, the `config.json` value and the key of the registry
//! ([`super::registry`]), which maps each to its descriptor. A leaf: the models' own files name their
//! kind without depending on the registry that lists them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// CoBraR shares one collaborative branch between users and items; DeepMF has one per side; BPR-MF,
/// LightGCN, MultVAE and MostPop are the study's baselines (SPEC §7). The doc comments are `--model`'s
/// help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// One collaborative branch shared by users and items
    Cobrar,
    /// One branch per side (CoBraR's two-branch counterpart)
    Deepmf,
    /// CoBraR with side information: each side's features join its interactions in the input of the
    /// shared branch (--user-features, --item-features), so it can embed cold-start users and items
    #[serde(rename = "cobrar-si")]
    CobrarSi,
    /// Matrix factorisation with the BPR loss (--arch is the embedding size)
    #[value(alias = "bprmf")]
    Bpr,
    /// Graph propagation over the training graph with the BPR loss (--arch is the embedding size)
    Lightgcn,
    /// Variational autoencoder over users' rows, multinomial likelihood (--arch is hidden,latent)
    Multvae,
    /// Items by training popularity; nothing is trained
    Mostpop,
}

impl ModelKind {
    /// Every model, in the order of `--model`'s help.
    pub fn all() -> &'static [ModelKind] {
        <ModelKind as clap::ValueEnum>::value_variants()
    }

    /// The model named `name` (or one of its aliases), ignoring case.
    pub fn from_name(name: &str) -> Option<ModelKind> {
        <ModelKind as clap::ValueEnum>::from_str(name, true).ok()
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value's name is the variant's, lower-cased by clap: one spelling for the flag,
        // `config.json` and run labels.
        let v = clap::ValueEnum::to_possible_value(self).expect("no model is hidden");
        f.write_str(v.get_name())
    }
}
