//! The embedded synthetic dataset must reward collaborative filtering: a plain item co-occurrence
//! recommender has to beat popularity ranking clearly on its test split. (The numbers quoted in
//! `assets/README.md` come from this test: `cargo test --test data_synthetic -- --nocapture`.)

use cobrar_gpu::data::{Dataset, LoadOptions, load};

const K: usize = 10;

/// NDCG@K with binary relevance, the user's training items excluded, ties broken by lower index;
/// averaged over users with at least one test item.
fn mean_ndcg(ds: &Dataset, mut score: impl FnMut(usize, &mut [f64])) -> f64 {
    let mut scores = vec![0.0f64; ds.n_items()];
    let (mut total, mut users) = (0.0, 0usize);
    for u in 0..ds.n_users() {
        let truth = ds.test.row(u);
        if truth.is_empty() {
            continue;
        }
        score(u, &mut scores);
        let train = ds.train.row(u);
        let mut ranked: Vec<u32> = (0..ds.n_items() as u32)
            .filter(|i| train.binary_search(i).is_err())
            .collect();
        ranked.sort_by(|&a, &b| {
            scores[b as usize]
                .total_cmp(&scores[a as usize])
                .then(a.cmp(&b))
        });
        let dcg: f64 = ranked
            .iter()
            .take(K)
            .enumerate()
            .filter(|(_, i)| truth.binary_search(i).is_ok())
            .map(|(r, _)| 1.0 / (r as f64 + 2.0).log2())
            .sum();
        let idcg: f64 = (0..truth.len().min(K))
            .map(|r| 1.0 / (r as f64 + 2.0).log2())
            .sum();
        total += dcg / idcg;
        users += 1;
    }
    total / users as f64
}

#[test]
fn item_knn_clearly_beats_most_popular() {
    let ds = load(&LoadOptions::default()).unwrap();
    let r = &ds.report;
    println!(
        "synthetic: raw {} users / {} items / {} interactions; after {}-core: {} / {} / {} (density {:.4}); train {} val {} test {}",
        r.raw.users,
        r.raw.items,
        r.raw.interactions,
        r.kcore.as_ref().map_or(0, |k| k.k),
        r.preprocessed.users,
        r.preprocessed.items,
        r.preprocessed.interactions,
        r.preprocessed.density,
        ds.train.nnz(),
        ds.val.nnz(),
        ds.test.nnz()
    );
    let pop = &ds.item_popularity;
    let most_pop = mean_ndcg(&ds, |_, s| {
        for (x, &p) in s.iter_mut().zip(pop) {
            *x = p as f64;
        }
    });

    // Item-item cosine similarity of training co-occurrence: sim(i, j) = c(i, j) / sqrt(p(i) p(j)).
    let m = ds.n_items();
    let mut sim = vec![0.0f64; m * m];
    for u in 0..ds.n_users() {
        let row = ds.train.row(u);
        for &i in row {
            for &j in row {
                if i != j {
                    sim[i as usize * m + j as usize] += 1.0;
                }
            }
        }
    }
    for i in 0..m {
        for j in 0..m {
            let d = (pop[i] as f64 * pop[j] as f64).sqrt();
            if d > 0.0 {
                sim[i * m + j] /= d;
            }
        }
    }
    let knn = mean_ndcg(&ds, |u, s| {
        s.fill(0.0);
        for &j in ds.train.row(u) {
            let sj = &sim[j as usize * m..(j as usize + 1) * m];
            for (x, &v) in s.iter_mut().zip(sj) {
                *x += v;
            }
        }
    });
    println!("NDCG@{K} on test: MostPop {most_pop:.4}, item-kNN (co-occurrence cosine) {knn:.4}");
    assert!(
        most_pop > 0.01,
        "popularity should carry some signal: {most_pop}"
    );
    assert!(
        knn > 1.5 * most_pop && knn - most_pop > 0.05,
        "item-kNN {knn:.4} must clearly beat MostPop {most_pop:.4}"
    );
    // Every generated user has at least 5 interactions and nearly all survive the 5-core.
    assert!(r.preprocessed.users as f64 >= 0.98 * r.raw.users as f64);
    assert!(r.preprocessed.items as f64 >= 0.9 * r.raw.items as f64);
}

#[test]
fn embedded_dataset_is_small_and_shaped_as_documented() {
    let bytes = cobrar_gpu::data::EMBEDDED_BYTES;
    assert!(bytes.len() < 1 << 20, "{} bytes", bytes.len());
    let ds = load(&LoadOptions {
        kcore: 0,
        ..Default::default()
    })
    .unwrap();
    let r = &ds.report;
    assert_eq!((r.raw.users, r.raw.items), (2000, 1000));
    assert!((45_000..=55_000).contains(&r.raw.interactions));
    assert_eq!(
        r.raw.interactions, r.implicit.interactions,
        "no duplicate lines"
    );
    let per_user = |u: usize| ds.train.row_len(u) + ds.val.row_len(u) + ds.test.row_len(u);
    assert!((0..ds.n_users()).all(|u| per_user(u) >= 5));
    // Long-tailed popularity: the top 10 % of items hold a large share of the interactions.
    let (val_t, test_t) = (
        ds.val.transpose(ds.n_items()),
        ds.test.transpose(ds.n_items()),
    );
    let mut counts: Vec<usize> = (0..ds.n_items())
        .map(|i| ds.train_by_item.row_len(i) + val_t.row_len(i) + test_t.row_len(i))
        .collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let head: usize = counts[..ds.n_items() / 10].iter().sum();
    let share = head as f64 / r.raw.interactions as f64;
    println!(
        "top 10% of items hold {:.1}% of interactions",
        100.0 * share
    );
    assert!(share > 0.3, "{share}");
}
