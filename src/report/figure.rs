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
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        // The encoder picks the format from the extension: the temporary name keeps `.png`.
        let tmp = path.with_file_name(format!(".{stem}.tmp.png"));
        self.draw(BitMapBackend::new(&tmp, SIZE).into_drawing_area())?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }
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
}
