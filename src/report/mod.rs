//! Reports: the files a run writes (`run`), the study's Table 2 layout with significance marks
//! (`table`), and the training-curve plot (`plot`).

pub mod plot;
pub mod run;
pub mod table;
