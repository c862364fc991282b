//! The registry: one descriptor ([`ModelSpec`]) per [`ModelKind`]. This file and `kind.rs` are the
//! only places that list the models; everything model-specific the commands need is asked of
//! `kind.spec()`.

use anyhow::bail;

use crate::batch::IndexStrategy;
use crate::config::TrainConfig;
use crate::data::Dataset;
use crate::sampler::SamplerKind;

use super::arch::{Architecture, ParamCounts};
use super::kind::ModelKind;
use super::net::Net;
use super::params::ParamLayout;
use super::spec::{DataShape, MODEL_FLAGS, ModelSpec, canonical_flag};
use super::{bpr, cobrar, cobrar_si, lightgcn, mostpop, multvae};

impl ModelKind {
    /// The model's descriptor.
    pub fn spec(self) -> &'static ModelSpec {
        match self {
            ModelKind::Cobrar => &cobrar::COBRAR,
            ModelKind::Deepmf => &cobrar::DEEPMF,
            ModelKind::CobrarSi => &cobrar_si::SPEC,
            ModelKind::Bpr => &bpr::SPEC,
            ModelKind::Lightgcn => &lightgcn::SPEC,
            ModelKind::Multvae => &multvae::SPEC,
            ModelKind::Mostpop => &mostpop::SPEC,
        }
    }
}

/// The study's comparison (its Table 2, Figure 2 and timing table): the branch shared by users and
/// items against one branch per side, at the same architecture.
pub const STUDY_PAIR: [ModelKind; 2] = [ModelKind::Cobrar, ModelKind::Deepmf];

impl ModelKind {
    /// Number of branches (weight sets for the dense layers); 0 for models without one.
    pub fn branches(self) -> usize {
        self.spec().branches
    }

    /// Whether the model has a collaborative branch (CoBraR, DeepMF).
    pub fn two_tower(self) -> bool {
        self.branches() > 0
    }

    /// Whether the model learns by steps (MostPop is fitted once).
    pub fn trains(self) -> bool {
        self.spec().trains
    }

    /// The architecture a model gets when `--arch` is not given.
    pub fn default_arch(self) -> Architecture {
        Architecture {
            widths: self.spec().default_arch.to_vec(),
        }
    }

    /// Checks that `arch` suits this model: one line saying what it expects.
    pub fn check_arch(self, arch: &Architecture) -> anyhow::Result<()> {
        (self.spec().check_arch)(self, arch)
    }

    /// Whether `train` flag `flag` (its long name) means anything for this model (`reproduce` gives a
    /// model only the shared `[train]` flags it uses; on the command line the others are refused).
    pub fn flag_applies(self, flag: &str) -> bool {
        let flag = canonical_flag(flag);
        !MODEL_FLAGS.contains(&flag) || self.spec().flags.contains(&flag)
    }

    /// A flag this model has no use for: one line saying so, instead of silently ignoring it.
    /// `given`: (long name, whether it was given).
    pub fn refuse_ignored(self, given: &[(&str, bool)]) -> anyhow::Result<()> {
        if let Some((flag, _)) = given
            .iter()
            .find(|(flag, g)| *g && !self.flag_applies(flag))
        {
            // A flag only one model has is named as that model's (`--layers is LightGCN's`).
            let owners: Vec<&ModelSpec> = ModelKind::all()
                .iter()
                .map(|k| k.spec())
                .filter(|s| s.flags.contains(&canonical_flag(flag)))
                .collect();
            let whose = match owners[..] {
                [one] => format!(" is {}'s and", one.title),
                _ => String::new(),
            };
            bail!(
                "--{flag}{whose} does not apply to {self}: {}; drop it",
                self.spec().why_not
            );
        }
        Ok(())
    }

    /// The sampler when `--sampler` is not given.
    pub fn default_sampler(self) -> SamplerKind {
        self.spec()
            .samplers
            .first()
            .copied()
            .unwrap_or(SamplerKind::Alg1)
    }

    /// The dropout rate `given` (or the model's default); an error for a rate the model has no use for.
    pub fn dropout(self, given: Option<f32>) -> anyhow::Result<f32> {
        match (self.spec().dropout, given) {
            (Some(default), d) => Ok(d.unwrap_or(default)),
            (None, Some(d)) if d > 0.0 => bail!(
                "{self} trains without dropout ({} have it); drop --dropout or set it to 0",
                names_where(|s| s.dropout.is_some())
            ),
            (None, d) => Ok(d.unwrap_or(0.0)),
        }
    }

    /// Exact parameter counts of this model with `arch` on `n_users` × `n_items`.
    pub fn param_counts(self, arch: &Architecture, n_users: usize, n_items: usize) -> ParamCounts {
        (self.spec().counts)(arch, DataShape::plain(n_users, n_items))
    }
}

/// The model named `name` (or one of its aliases), ignoring case.
pub fn by_name(name: &str) -> Option<ModelKind> {
    ModelKind::from_name(name)
}

/// Every model's name, in the registry's order.
pub fn names() -> Vec<String> {
    ModelKind::all().iter().map(|m| m.to_string()).collect()
}

/// "cobrar and multvae": the models whose descriptor satisfies `f`.
fn names_where(f: impl Fn(&ModelSpec) -> bool) -> String {
    let names: Vec<String> = ModelKind::all()
        .iter()
        .filter(|k| f(k.spec()))
        .map(|k| k.to_string())
        .collect();
    match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

impl ParamCounts {
    /// Exact counts of `kind` with `arch` on `n_users` × `n_items`.
    pub fn new(
        kind: ModelKind,
        arch: &Architecture,
        n_users: usize,
        n_items: usize,
    ) -> ParamCounts {
        kind.param_counts(arch, n_users, n_items)
    }

    /// Exact counts of the model `cfg` describes on `ds` (its side information included).
    pub fn of(cfg: &TrainConfig, ds: &Dataset) -> ParamCounts {
        (cfg.model.spec().counts)(&cfg.arch, DataShape::of(ds))
    }

    /// The counts in `kind`'s own words (MultVAE's parts are not projections and a branch).
    pub fn describe(&self, kind: ModelKind) -> String {
        (kind.spec().describe)(self)
    }
}

impl TrainConfig {
    /// Checks every setting against its valid range and the model's needs (before anything is loaded
    /// or written).
    pub fn validate(&self) -> anyhow::Result<()> {
        let spec = self.model.spec();
        self.model.check_arch(&self.arch)?;
        if spec.dropout.is_none() && self.dropout > 0.0 {
            self.model.dropout(Some(self.dropout))?;
        }
        if !spec.samplers.is_empty() && !spec.samplers.contains(&self.sampler) {
            let on = |k: ModelKind| {
                let names: Vec<String> =
                    k.spec().samplers.iter().map(|&s| sampler_name(s)).collect();
                format!("{k} on {}", names.join(" or "))
            };
            let all: Vec<String> = ModelKind::all()
                .iter()
                .filter(|k| !k.spec().samplers.is_empty())
                .map(|&k| on(k))
                .collect();
            bail!(
                "--sampler {} does not suit {}: {} ({})",
                sampler_name(self.sampler),
                self.model,
                on(self.model),
                all.join(", ")
            );
        }
        (spec.check)(self)?;
        self.check_ranges()
    }

    /// The run's label ([`ModelSpec::label`]).
    pub fn label(&self) -> String {
        (self.model.spec().label)(self)
    }
}

/// `--sampler`'s spelling of `s`.
fn sampler_name(s: SamplerKind) -> String {
    use clap::ValueEnum;
    s.to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

/// The model `cfg` describes, on `ds`'s training split, sized for steps of `max_pairs` pairs, its
/// gradient index built as `index` says.
pub fn model_for<'d>(
    cfg: &TrainConfig,
    ds: &'d Dataset,
    max_pairs: usize,
    index: IndexStrategy,
) -> Net<'d> {
    (cfg.model.spec().build)(cfg, ds, max_pairs, index)
}

/// The parameter tensors of the model `cfg` describes on data of `shape` (checkpoints).
pub fn param_layout(cfg: &TrainConfig, shape: DataShape) -> ParamLayout {
    (cfg.model.spec().param_layout)(cfg, shape)
}

/// Each model's `bench` architectures, in the registry's order.
pub fn bench_models() -> Vec<(ModelKind, &'static str)> {
    ModelKind::all()
        .iter()
        .flat_map(|&k| k.spec().bench_archs.iter().map(move |&a| (k, a)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_has_a_consistent_descriptor() {
        for &kind in ModelKind::all() {
            let spec = kind.spec();
            assert!(kind.check_arch(&kind.default_arch()).is_ok(), "{kind}");
            for f in spec.flags {
                assert!(MODEL_FLAGS.contains(f), "{kind}: unknown flag {f}");
            }
            assert_eq!(
                spec.dropout.is_some(),
                spec.flags.contains(&"dropout"),
                "{kind}: dropout default and flag disagree"
            );
            assert_eq!(ModelKind::from_name(&kind.to_string()), Some(kind));
        }
        assert_eq!(ModelKind::from_name("BPRMF"), Some(ModelKind::Bpr));
        assert!(!ModelKind::Bpr.flag_applies("neg"));
        assert!(ModelKind::Cobrar.flag_applies("lambda"));
        assert!(ModelKind::Mostpop.flag_applies("seed"));
    }
}
