//! Model kind and architecture: the flag syntax, validation, and exact parameter counts (the study's
//! RQ2 compares exactly these numbers).

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, ensure};
use serde::{Deserialize, Serialize};

/// CoBraR shares one collaborative branch between users and items; DeepMF has one per side; BPR-MF
/// and MostPop are the study's baselines (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// One collaborative branch shared by users and items
    Cobrar,
    /// One branch per side (CoBraR's two-branch counterpart)
    Deepmf,
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
    /// Number of branches (weight sets for the dense layers); 0 for models without one.
    pub fn branches(self) -> usize {
        match self {
            ModelKind::Cobrar => 1,
            ModelKind::Deepmf => 2,
            ModelKind::Bpr | ModelKind::Lightgcn | ModelKind::Multvae | ModelKind::Mostpop => 0,
        }
    }

    /// CoBraR or DeepMF: the two-tower models of `models::cobrar`.
    pub fn two_tower(self) -> bool {
        self.branches() > 0
    }

    /// The architecture a model gets when `--arch` is not given.
    pub fn default_arch(self) -> Architecture {
        let widths = match self {
            ModelKind::Cobrar | ModelKind::Deepmf => vec![512, 64],
            ModelKind::Bpr | ModelKind::Lightgcn => vec![64],
            // Liang et al.'s and Elliot's [600, 200].
            ModelKind::Multvae => vec![600, 200],
            ModelKind::Mostpop => vec![4],
        };
        Architecture { widths }
    }

    /// Checks that `arch` suits this model: one line saying what it expects.
    pub fn check_arch(self, arch: &Architecture) -> anyhow::Result<()> {
        match self {
            ModelKind::Cobrar | ModelKind::Deepmf => ensure!(
                arch.widths.len() >= 2,
                "{self} needs at least a projection width and an embedding size in --arch \
                 (e.g. 2048,128), got {arch}"
            ),
            ModelKind::Bpr | ModelKind::Lightgcn => ensure!(
                arch.widths.len() == 1,
                "{self} takes one width in --arch, its embedding size (e.g. 64), got {arch}"
            ),
            ModelKind::Multvae => ensure!(
                arch.widths.len() == 2,
                "multvae takes two widths in --arch, the hidden layer and the latent size (e.g. \
                 600,200), got {arch}"
            ),
            ModelKind::Mostpop => ensure!(
                arch.widths == [4],
                "mostpop has no architecture; drop --arch"
            ),
        }
        Ok(())
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelKind::Cobrar => "cobrar",
            ModelKind::Deepmf => "deepmf",
            ModelKind::Bpr => "bpr",
            ModelKind::Lightgcn => "lightgcn",
            ModelKind::Multvae => "multvae",
            ModelKind::Mostpop => "mostpop",
        })
    }
}

/// Layer widths d1, d2, …, dL: d1 is the width of the side-specific sparse projection, d2…dL the
/// collaborative branch, dL the embedding size. Written `2048,128` (shallow: projection 2048,
/// embedding 128) or `512,512,256,256,128` (deep).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "ArchitectureRepr")]
pub struct Architecture {
    pub widths: Vec<usize>,
}

/// What `config.json` may hold: the flag syntax ("512,64", written since 0.1) or the width list.
#[derive(Deserialize)]
#[serde(untagged)]
enum ArchitectureRepr {
    Text(String),
    Widths { widths: Vec<usize> },
}

impl TryFrom<ArchitectureRepr> for Architecture {
    type Error = anyhow::Error;
    fn try_from(r: ArchitectureRepr) -> anyhow::Result<Architecture> {
        match r {
            ArchitectureRepr::Text(s) => s.parse(),
            ArchitectureRepr::Widths { widths } => Architecture::new(widths),
        }
    }
}

impl From<Architecture> for String {
    fn from(a: Architecture) -> String {
        a.to_string()
    }
}

/// Widest layer the kernels accept for the embedding (see `kernels::score_loss::MAX_DIM`).
pub const MAX_EMBEDDING: usize = crate::kernels::score_loss::MAX_DIM;

impl Architecture {
    pub fn new(widths: Vec<usize>) -> anyhow::Result<Architecture> {
        // How many widths a model takes is the model's to check (`ModelKind::check_arch`).
        ensure!(
            !widths.is_empty(),
            "architecture needs at least one width (e.g. 2048,128, or 64 for bpr)"
        );
        for &w in &widths {
            ensure!(
                w > 0 && w % 4 == 0,
                "layer width {w} must be a positive multiple of 4 (kernels load vec4)"
            );
        }
        let dl = *widths.last().unwrap();
        ensure!(
            dl <= MAX_EMBEDDING,
            "embedding size {dl} exceeds the supported maximum {MAX_EMBEDDING}"
        );
        Ok(Architecture { widths })
    }

    /// Projection width d1.
    pub fn d1(&self) -> usize {
        self.widths[0]
    }

    /// Embedding size dL.
    pub fn embedding(&self) -> usize {
        *self.widths.last().unwrap()
    }

    /// Branch layers as (fan_in, fan_out).
    pub fn layers(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.widths.windows(2).map(|w| (w[0], w[1]))
    }

    pub fn n_layers(&self) -> usize {
        self.widths.len() - 1
    }
}

impl FromStr for Architecture {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Architecture> {
        let mut widths = Vec::new();
        for part in s.split([',', 'x', ' ']).filter(|p| !p.is_empty()) {
            match part.trim().parse::<usize>() {
                Ok(w) => widths.push(w),
                Err(_) => bail!(
                    "architecture {s:?}: {part:?} is not a layer width (expected e.g. 2048,128)"
                ),
            }
        }
        Architecture::new(widths)
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.widths.iter().map(|w| w.to_string()).collect();
        f.write_str(&parts.join(","))
    }
}

/// Exact parameter counts, total and per part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamCounts {
    /// W_U (items × d1) + b_U.
    pub user_projection: u64,
    /// W_T (users × d1) + b_T.
    pub item_projection: u64,
    /// The collaborative branch(es), weights and biases: one for CoBraR, two for DeepMF.
    pub branches: u64,
    /// Branch weights alone (the paper's Σ d_k·d_{k+1}, doubled for DeepMF).
    pub branch_weights: u64,
    pub total: u64,
}

impl ParamCounts {
    pub fn new(
        kind: ModelKind,
        arch: &Architecture,
        n_users: usize,
        n_items: usize,
    ) -> ParamCounts {
        match kind {
            // The two embedding tables (LightGCN's layer 0), counted in the projection fields.
            ModelKind::Bpr | ModelKind::Lightgcn => {
                let d = arch.embedding() as u64;
                let (u, i) = (n_users as u64 * d, n_items as u64 * d);
                return ParamCounts {
                    user_projection: u,
                    item_projection: i,
                    branches: 0,
                    branch_weights: 0,
                    total: u + i,
                };
            }
            // The encoder's sparse input layer and the decoder's output layer in the projection
            // fields (M·h + h each: the output layer of M rows), the two latent layers as the
            // "branch" (the output layer's padding rows to a multiple of 4 are not counted).
            ModelKind::Multvae => {
                let (h, d, m) = (arch.d1() as u64, arch.embedding() as u64, n_items as u64);
                let (input, output) = (m * h + h, h * m + m);
                let branch_weights = h * 2 * d + d * h;
                let branches = branch_weights + 2 * d + h;
                return ParamCounts {
                    user_projection: input,
                    item_projection: output,
                    branches,
                    branch_weights,
                    total: input + output + branches,
                };
            }
            // Nothing learned: the popularity counts are a statistic of the training split.
            ModelKind::Mostpop => {
                return ParamCounts {
                    user_projection: 0,
                    item_projection: 0,
                    branches: 0,
                    branch_weights: 0,
                    total: 0,
                };
            }
            ModelKind::Cobrar | ModelKind::Deepmf => {}
        }
        let d1 = arch.d1() as u64;
        let user_projection = n_items as u64 * d1 + d1;
        let item_projection = n_users as u64 * d1 + d1;
        let b = kind.branches() as u64;
        let branch_weights = b * arch.layers().map(|(i, o)| (i * o) as u64).sum::<u64>();
        let branches = b * arch.layers().map(|(i, o)| (i * o + o) as u64).sum::<u64>();
        ParamCounts {
            user_projection,
            item_projection,
            branches,
            branch_weights,
            total: user_projection + item_projection + branches,
        }
    }
}

impl ParamCounts {
    /// The counts in `kind`'s own words (MultVAE's parts are not projections and a branch).
    pub fn describe(&self, kind: ModelKind) -> String {
        match kind {
            ModelKind::Multvae => format!(
                "{} parameters: encoder input layer {}, decoder output layer {}, latent layers {}",
                group_digits(self.total),
                group_digits(self.user_projection),
                group_digits(self.item_projection),
                group_digits(self.branches)
            ),
            _ => self.to_string(),
        }
    }
}

impl fmt::Display for ParamCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.total == 0 {
            return f.write_str("no trained parameters");
        }
        if self.branches == 0 {
            return write!(
                f,
                "{} parameters: user embeddings {}, item embeddings {}",
                group_digits(self.total),
                group_digits(self.user_projection),
                group_digits(self.item_projection)
            );
        }
        write!(
            f,
            "{} parameters: user projection {}, item projection {}, branch{} {} (weights {})",
            group_digits(self.total),
            group_digits(self.user_projection),
            group_digits(self.item_projection),
            if self.branches == 0 { "" } else { "es" },
            group_digits(self.branches),
            group_digits(self.branch_weights),
        )
    }
}

/// 1234567 → "1,234,567".
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_shallow_and_deep() {
        let a: Architecture = "2048,128".parse().unwrap();
        assert_eq!((a.d1(), a.embedding(), a.n_layers()), (2048, 128, 1));
        let d: Architecture = "512,512,256,256,128".parse().unwrap();
        assert_eq!(
            d.layers().collect::<Vec<_>>(),
            vec![(512, 512), (512, 256), (256, 256), (256, 128)]
        );
        assert!(
            "128".parse::<Architecture>().is_ok(),
            "one width: bpr's embedding size"
        );
        assert!(
            ModelKind::Cobrar
                .check_arch(&"128".parse().unwrap())
                .is_err()
        );
        assert!(ModelKind::Bpr.check_arch(&"128".parse().unwrap()).is_ok());
        assert!(
            ModelKind::Bpr
                .check_arch(&"512,64".parse().unwrap())
                .is_err()
        );
        assert!("".parse::<Architecture>().is_err());
        assert!(
            "100,50"
                .parse::<Architecture>()
                .unwrap_err()
                .to_string()
                .contains("multiple of 4")
        );
        assert!("2048,abc".parse::<Architecture>().is_err());
    }

    #[test]
    fn serialises_as_the_flag_syntax_and_reads_both_forms() {
        let a: Architecture = "512,512,256,256,128".parse().unwrap();
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            "\"512,512,256,256,128\""
        );
        assert_eq!(
            serde_json::from_str::<Architecture>("\"512,64\"")
                .unwrap()
                .widths,
            vec![512, 64]
        );
        assert_eq!(
            serde_json::from_str::<Architecture>("{\"widths\":[512,64]}")
                .unwrap()
                .widths,
            vec![512, 64]
        );
        assert!(serde_json::from_str::<Architecture>("\"512,6\"").is_err());
    }

    #[test]
    fn counts_match_hand_computation() {
        // ML-1M, 2048/128: W_U 3416×2048 + 2048, W_T 6040×2048 + 2048, branch 2048·128 + 128.
        let a: Architecture = "2048,128".parse().unwrap();
        let c = ParamCounts::new(ModelKind::Cobrar, &a, 6040, 3416);
        assert_eq!(c.user_projection, 3416 * 2048 + 2048);
        assert_eq!(c.item_projection, 6040 * 2048 + 2048);
        assert_eq!(c.branches, 2048 * 128 + 128);
        assert_eq!(c.branch_weights, 262_144);
        assert_eq!(c.total, 19_632_256); // 6,998,016 + 12,371,968 + 262,272
        let d = ParamCounts::new(ModelKind::Deepmf, &a, 6040, 3416);
        assert_eq!(d.branches, 2 * c.branches);
        assert_eq!(d.total - c.total, c.branches);
        let b = ParamCounts::new(ModelKind::Bpr, &"64".parse().unwrap(), 6040, 3416);
        assert_eq!(
            (b.user_projection, b.item_projection, b.total),
            (386_560, 218_624, 605_184)
        );
        assert_eq!(
            b.to_string(),
            "605,184 parameters: user embeddings 386,560, item embeddings 218,624"
        );
        // MultVAE 600,200 on ML-1M: input 3416·600 + 600, output 600·3416 + 3416, latent layers
        // 600·400 + 400 and 200·600 + 600 — the checkpoint's tensors exactly (3416 = M₄).
        let v = ParamCounts::new(ModelKind::Multvae, &"600,200".parse().unwrap(), 6040, 3416);
        assert_eq!(
            (v.user_projection, v.item_projection, v.branches),
            (2_050_200, 2_053_016, 361_000)
        );
        assert_eq!(v.total, 4_464_216);
        assert_eq!(
            crate::models::multvae::param_layout(600, 200, 3416).count(),
            v.total
        );
        assert!(
            v.describe(ModelKind::Multvae)
                .contains("encoder input layer 2,050,200")
        );
        assert_eq!(group_digits(19_632_256), "19,632,256");
        assert_eq!(group_digits(999), "999");
    }
}
