//! Generates `assets/synthetic.tsv.gz`, the small implicit-feedback dataset embedded in the binary.
//!
//! ```text
//! cargo run --release --example make_synthetic -- [OUT] [--seed N]
//! ```
//!
//! The data has the two structures that separate a collaborative model from popularity ranking:
//! - long-tailed item popularity (Zipf weights over a random permutation of the items), and
//! - latent taste clusters: every item belongs to one of `CLUSTERS` clusters, every user has a primary
//!   and a secondary cluster. Each of a user's interactions comes from the primary cluster with
//!   probability `P_PRIMARY`, from the secondary with `P_SECONDARY`, otherwise from global popularity;
//!   within a cluster items are drawn by popularity.
//!
//! User activity is long-tailed too (a Pareto draw, at least `MIN_PER_USER`). Output lines are
//! `u0001<TAB>i0001`, sorted by user then item; the gzip stream carries no timestamp or name, so the
//! same seed gives the same bytes.

use std::io::Write;

use cobrar_gpu::util::seeded_rng;
use rand::RngExt;

const USERS: usize = 2000;
const ITEMS: usize = 1000;
const CLUSTERS: usize = 16;
const ZIPF_EXPONENT: f64 = 1.0;
const P_PRIMARY: f64 = 0.70;
const P_SECONDARY: f64 = 0.15;
const MIN_PER_USER: f64 = 12.0;
const PARETO_ALPHA: f64 = 1.7;
const MAX_PER_USER: usize = 150;
const DEFAULT_SEED: u64 = 20_250_601;

/// Draws an index from cumulative weights by binary search.
fn draw(cumulative: &[f64], rng: &mut impl RngExt) -> usize {
    let total = *cumulative.last().expect("non-empty weights");
    let x = rng.random_range(0.0..total);
    cumulative
        .partition_point(|&c| c <= x)
        .min(cumulative.len() - 1)
}

fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    weights
        .scan(0.0, |acc, w| {
            *acc += w;
            Some(*acc)
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let mut out = std::path::PathBuf::from("assets/synthetic.tsv.gz");
    let mut seed = DEFAULT_SEED;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => {
                seed = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--seed needs a value"))?
                    .parse()?
            }
            _ => out = a.into(),
        }
    }
    let mut rng = seeded_rng(seed, 0x5359_4e54); // "SYNT"

    // Item popularity: Zipf weights assigned to a random permutation of the items.
    let mut ranks: Vec<usize> = (0..ITEMS).collect();
    for i in (1..ITEMS).rev() {
        let j = rng.random_range(0..=i);
        ranks.swap(i, j);
    }
    let weight: Vec<f64> = ranks
        .iter()
        .map(|&r| 1.0 / ((r + 1) as f64).powf(ZIPF_EXPONENT))
        .collect();
    let item_cluster: Vec<usize> = (0..ITEMS).map(|_| rng.random_range(0..CLUSTERS)).collect();
    let members: Vec<Vec<usize>> = (0..CLUSTERS)
        .map(|c| (0..ITEMS).filter(|&i| item_cluster[i] == c).collect())
        .collect();
    let cluster_cum: Vec<Vec<f64>> = members
        .iter()
        .map(|m| cumulative(m.iter().map(|&i| weight[i])))
        .collect();
    let global_cum = cumulative(weight.iter().copied());

    let mut lines = Vec::new();
    let mut total = 0usize;
    let mut taken = vec![false; ITEMS];
    for u in 0..USERS {
        let primary = rng.random_range(0..CLUSTERS);
        let secondary = (primary + rng.random_range(1..CLUSTERS)) % CLUSTERS;
        let uniform: f64 = rng.random_range(f64::EPSILON..1.0);
        let n = ((MIN_PER_USER / uniform.powf(1.0 / PARETO_ALPHA)) as usize).min(MAX_PER_USER);
        taken.fill(false);
        let mut items = Vec::with_capacity(n);
        let mut attempts = 0;
        while items.len() < n && attempts < 100 * n {
            attempts += 1;
            let x: f64 = rng.random_range(0.0..1.0);
            let i = if x < P_PRIMARY {
                members[primary][draw(&cluster_cum[primary], &mut rng)]
            } else if x < P_PRIMARY + P_SECONDARY {
                members[secondary][draw(&cluster_cum[secondary], &mut rng)]
            } else {
                draw(&global_cum, &mut rng)
            };
            if !taken[i] {
                taken[i] = true;
                items.push(i);
            }
        }
        items.sort_unstable();
        total += items.len();
        for i in items {
            writeln!(lines, "u{:04}\ti{:04}", u + 1, i + 1)?;
        }
    }

    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(&lines)?;
    let bytes = gz.finish()?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    cobrar_gpu::util::write_atomic(&out, &bytes)?;
    println!(
        "wrote {}: {USERS} users, {ITEMS} items, {total} interactions, {} bytes (seed {seed})",
        out.display(),
        bytes.len()
    );
    Ok(())
}
