//! Architecture: the flag syntax and its validation, and the exact parameter counts each model's
//! descriptor computes (the study's RQ2 compares exactly these numbers).

use std::fmt;
use std::str::FromStr;

use anyhow::{bail, ensure};
use serde::{Deserialize, Serialize};

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
        // How many widths a model takes is the model's to check (its descriptor's `check_arch`).
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
    use crate::models::ModelKind;

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
