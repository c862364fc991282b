//! Figures drawn with `plotters`, as SVG (text) and PNG (pixels). The PNG's text is rendered with the
//! DejaVu Sans font built into the binary (`assets/fonts/`, Bitstream Vera licence), so no system font
//! library is needed.

use std::path::Path;
use std::sync::Once;

use anyhow::Context;
use plotters::prelude::*;

/// Registers the built-in font as "sans-serif" (once per process).
pub(crate) fn fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
        // The bytes are a valid TrueType font checked by the figure test; a failure leaves the text
        // unrendered rather than stopping a study at its last step.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

/// Box plots by group: for each group label (an architecture), one box per series (a model), side by
/// side; each series keeps its colour and has a legend entry.
pub struct BoxFigure<'a> {
    pub title: &'a str,
    pub y_desc: &'a str,
    pub series: &'a [&'a str],
    /// (group label, per series the values).
    pub groups: &'a [(String, Vec<Vec<f64>>)],
}

const SIZE: (u32, u32) = (900, 520);

impl BoxFigure<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        fonts();
        let err =
            |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing the figure: {e}");
        root.fill(&WHITE).map_err(err)?;
        let labels: Vec<&str> = self.groups.iter().map(|g| g.0.as_str()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(labels[..].into_segmented(), 0f32..1f32)
            .map_err(err)?;
        chart
            .configure_mesh()
            .y_desc(self.y_desc)
            .x_desc("architecture")
            .x_label_formatter(&|v| match v {
                SegmentValue::Exact(s) | SegmentValue::CenterOf(s) => s.to_string(),
                SegmentValue::Last => String::new(),
            })
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        let n = self.series.len().max(1) as i32;
        let width = (SIZE.0 as i32 / (labels.len().max(1) as i32 * (n + 1))).clamp(8, 60);
        for (s, name) in self.series.iter().enumerate() {
            let colour = Palette99::pick(s);
            let offset = (s as i32 - (n - 1) / 2) * width - if n % 2 == 0 { width / 2 } else { 0 };
            let boxes = self
                .groups
                .iter()
                .enumerate()
                .filter_map(|(g, (_, values))| {
                    let v = values.get(s).filter(|v| !v.is_empty())?;
                    let q = Quartiles::new(v);
                    Some(
                        Boxplot::new_vertical(SegmentValue::CenterOf(&labels[g]), &q)
                            .width(width as u32 * 4 / 5)
                            .whisker_width(0.5)
                            .style(colour.stroke_width(2))
                            .offset(offset),
                    )
                });
            chart
                .draw_series(boxes)
                .map_err(err)?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 12, y + 6)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.filled())
            .border_style(BLACK.mix(0.5))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
        Ok(())
    }

    /// The figure as an SVG document.
    pub fn svg(&self) -> anyhow::Result<String> {
        let mut s = String::new();
        self.draw(SVGBackend::with_string(&mut s, SIZE).into_drawing_area())?;
        Ok(s)
    }

    /// Writes the figure as PNG to `path` (through a temporary file renamed into place).
    pub fn write_png(&self, path: &Path) -> anyhow::Result<()> {
        write_png_via(path, |tmp| {
            self.draw(BitMapBackend::new(tmp, SIZE).into_drawing_area())
        })
    }
}

/// Grouped horizontal bars: one row per group label (read on the left), one bar per series in it; a
/// log scale when the values span more than a factor of 20 (GPUs and software adapters differ by
/// orders of magnitude).
pub struct BarFigure<'a> {
    pub title: &'a str,
    pub x_desc: &'a str,
    pub series: &'a [String],
    /// (group label, per series the value, if measured).
    pub groups: &'a [(String, Vec<Option<f64>>)],
}

impl BarFigure<'_> {
    fn size(&self) -> (u32, u32) {
        let bars = (self.groups.len() * self.series.len().max(1)) as u32;
        (
            1000,
            (160 + 18 * bars + 12 * self.groups.len() as u32).max(320),
        )
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, plotters::coord::Shift>,
    ) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        fonts();
        let err =
            |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing the figure: {e}");
        root.fill(&WHITE).map_err(err)?;
        let values: Vec<f64> = self
            .groups
            .iter()
            .flat_map(|g| g.1.iter().flatten().copied())
            .filter(|v| *v > 0.0 && v.is_finite())
            .collect();
        let (lo, hi) = values
            .iter()
            .fold((f64::INFINITY, 0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let (lo, hi) = if values.is_empty() {
            (0.1, 1.0)
        } else {
            (lo, hi)
        };
        let log = hi / lo > 20.0;
        let n_groups = self.groups.len().max(1);
        let n_series = self.series.len().max(1);
        let labels: Vec<String> = self.groups.iter().map(|g| g.0.clone()).collect();
        // Groups from the top down: group g spans y in [n − g − 1, n − g).
        let y_fmt = |v: &f64| {
            let k = n_groups as f64 - v;
            let g = k.floor() as usize;
            if (k - g as f64 - 0.5).abs() < 1e-6 {
                labels.get(g).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u32;
        let bar = |g: usize, s: usize| {
            let h = 0.8 / n_series as f64;
            let top = (n_groups - g) as f64 - 0.1 - s as f64 * h;
            (top - h * 0.9, top)
        };
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(self.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(16 + 7 * longest);
        let y = 0f64..n_groups as f64;
        macro_rules! finish {
            ($chart:expr, $base:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .x_desc(self.x_desc)
                    .y_labels(2 * n_groups + 1)
                    .y_label_formatter(&y_fmt)
                    .light_line_style(WHITE)
                    .draw()
                    .map_err(err)?;
                for (s, name) in self.series.iter().enumerate() {
                    let colour = Palette99::pick(s);
                    let bars = self.groups.iter().enumerate().filter_map(|(g, (_, v))| {
                        let v = (*v.get(s)?)?;
                        let (y0, y1) = bar(g, s);
                        Some(Rectangle::new([($base, y0), (v, y1)], colour.filled()))
                    });
                    chart
                        .draw_series(bars)
                        .map_err(err)?
                        .label(name.as_str())
                        .legend(move |(x, y)| {
                            Rectangle::new([(x, y - 6), (x + 12, y + 6)], colour.filled())
                        });
                }
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(WHITE.filled())
                    .border_style(BLACK.mix(0.5))
                    .draw()
                    .map_err(err)?;
            }};
        }
        if log {
            finish!(
                builder
                    .build_cartesian_2d((lo / 2.0..hi * 8.0).log_scale(), y)
                    .map_err(err)?,
                lo / 2.0
            );
        } else {
            finish!(
                builder.build_cartesian_2d(0f64..hi * 1.5, y).map_err(err)?,
                0.0
            );
        }
        root.present().map_err(err)?;
        Ok(())
    }

    /// The figure as an SVG document.
    pub fn svg(&self) -> anyhow::Result<String> {
        let mut s = String::new();
        self.draw(SVGBackend::with_string(&mut s, self.size()).into_drawing_area())?;
        Ok(s)
    }

    /// Writes the figure as PNG to `path` (through a temporary file renamed into place).
    pub fn write_png(&self, path: &Path) -> anyhow::Result<()> {
        write_png_via(path, |tmp| {
            self.draw(BitMapBackend::new(tmp, self.size()).into_drawing_area())
        })
    }
}

/// Draws into a temporary `.png` beside `path`, then renames it into place.
fn write_png_via(
    path: &Path,
    draw: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    // The encoder picks the format from the extension: the temporary name keeps `.png`.
    let tmp = path.with_file_name(format!(".{stem}.tmp.png"));
    draw(&tmp)?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_figure_draws_every_box_and_a_png() {
        let groups = vec![
            (
                "256,64".to_string(),
                vec![vec![0.1, 0.2, 0.5, 0.9], vec![0.0, 0.3, 0.3]],
            ),
            (
                "512,64".to_string(),
                vec![vec![0.4, 0.6], vec![0.2, 0.25, 1.0]],
            ),
        ];
        let fig = BoxFigure {
            title: "test",
            y_desc: "NDCG@5",
            series: &["cobrar", "deepmf"],
            groups: &groups,
        };
        let svg = fig.svg().unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("cobrar") && svg.contains("512,64"));
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("f.png");
        fig.write_png(&png).unwrap();
        if let Ok(keep) = std::env::var("COBRAR_KEEP_FIGURE") {
            std::fs::copy(&png, keep).unwrap();
        }
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn bar_figure_draws_every_bar_on_a_log_scale_when_values_span_orders() {
        let series = vec!["gpu a".to_string(), "gpu b".to_string()];
        let groups = vec![
            ("ml-1m cobrar".to_string(), vec![Some(1000.0), Some(2.0)]),
            ("ml-1m bpr".to_string(), vec![Some(5000.0), None]),
        ];
        let fig = BarFigure {
            title: "steps/s",
            x_desc: "steps/s",
            series: &series,
            groups: &groups,
        };
        let svg = fig.svg().unwrap();
        assert!(svg.contains("gpu a") && svg.contains("ml-1m bpr"));
        // Three bars plus the two legend swatches and the background.
        assert!(svg.matches("<rect").count() >= 5, "{svg}");
        let dir = tempfile::tempdir().unwrap();
        fig.write_png(&dir.path().join("b.png")).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
