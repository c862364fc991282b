//! Reports: the files a run writes (`run`), the study's Table 2 layout with significance marks
//! (`table`), the training-curve plot (`plot`), and embeddings for serving (`export`).

pub mod export;
pub mod figure;
pub mod plot;
pub mod run;
pub mod table;
