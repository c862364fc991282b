//! Reports: the files a run writes (`run`), the study's Table 2 layout with significance marks
//! (`table`), the training-curve plot (`plot`), embeddings for serving (`export`), and the cross-GPU
//! comparison of bench reports (`benchmarks`).

pub mod benchmarks;
pub mod export;
pub mod figure;
pub mod paper;
pub mod plot;
pub mod run;
pub mod table;
