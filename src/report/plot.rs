//! The training curve (`training_curve.svg`): the epoch loss and the validation NDCG@k side by side,
//! the best epoch marked, drawn with `plotters`.

use plotters::prelude::*;

/// One panel's series: (epoch, value) points.
struct Panel<'a> {
    title: &'a str,
    points: Vec<(f64, f64)>,
    colour: RGBColor,
}

const PANEL: (u32, u32) = (420, 300);

/// A value range around `points` with a little room, never empty.
fn span(points: &[(f64, f64)]) -> std::ops::Range<f64> {
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.08).max(1e-6);
    (lo - pad)..(hi + pad)
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    p: &Panel<'_>,
    epochs: usize,
    best_epoch: usize,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing the curve: {e}");
    let x = 0.5..(epochs.max(1) as f64 + 0.5);
    let y = span(&p.points);
    let mut chart = ChartBuilder::on(area)
        .caption(p.title, ("sans-serif", 14))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(56)
        .build_cartesian_2d(x, y.clone())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_labels(epochs.clamp(2, 10))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    let best = best_epoch as f64;
    chart
        .draw_series(LineSeries::new(
            [(best, y.start), (best, y.end)],
            BLACK.mix(0.3).stroke_width(1),
        ))
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            p.points.iter().copied(),
            p.colour.stroke_width(2),
        ))
        .map_err(err)?;
    chart
        .draw_series(
            p.points
                .iter()
                .map(|&q| Circle::new(q, 3, p.colour.filled())),
        )
        .map_err(err)?;
    Ok(())
}

/// The training curve: `losses[e]` and `ndcg[e]` (validation NDCG@`k`, when evaluated) per epoch `e + 1`,
/// with the best epoch marked by a vertical line.
pub fn training_curve(
    title: &str,
    losses: &[f64],
    ndcg: &[Option<f64>],
    k: usize,
    best_epoch: usize,
) -> anyhow::Result<String> {
    let loss = Panel {
        title: "training loss",
        points: losses
            .iter()
            .enumerate()
            .map(|(e, &l)| ((e + 1) as f64, l))
            .collect(),
        colour: RGBColor(0x1f, 0x77, 0xb4),
    };
    let ndcg_title = format!("validation NDCG@{k}");
    let val = Panel {
        title: &ndcg_title,
        points: ndcg
            .iter()
            .enumerate()
            .filter_map(|(e, v)| v.map(|v| ((e + 1) as f64, v)))
            .collect(),
        colour: RGBColor(0xd6, 0x27, 0x28),
    };
    crate::report::figure::fonts();
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (2 * PANEL.0, PANEL.1 + 24)).into_drawing_area();
        let err =
            |e: DrawingAreaErrorKind<std::io::Error>| anyhow::anyhow!("drawing the curve: {e}");
        root.fill(&WHITE).map_err(err)?;
        let (top, bottom) = root.split_vertically(PANEL.1);
        let panels = top.split_evenly((1, 2));
        panel(&panels[0], &loss, losses.len(), best_epoch)?;
        panel(&panels[1], &val, losses.len(), best_epoch)?;
        bottom
            .titled(
                title,
                ("sans-serif", 12)
                    .into_font()
                    .color(&RGBColor(0x55, 0x55, 0x55)),
            )
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_both_panels() {
        let s = super::training_curve(
            "a <run>",
            &[0.7, 0.5, 0.45],
            &[Some(0.1), Some(0.2), Some(0.19)],
            5,
            2,
        )
        .unwrap();
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        let lower = s.to_lowercase();
        let series = |colour: &str| {
            lower
                .lines()
                .filter(|l| l.contains("<polyline") && l.contains(colour))
                .count()
        };
        assert_eq!(
            (series("#1f77b4"), series("#d62728")),
            (1, 1),
            "one line per panel"
        );
        assert_eq!(s.matches("<circle").count(), 6);
        assert!(s.contains("a &lt;run&gt;"), "the title is escaped");
        assert!(s.contains("validation NDCG@5"));
        // A single epoch, and no validation, still draw.
        let one = super::training_curve("x", &[0.5], &[None], 5, 1).unwrap();
        assert!(one.contains("training loss"));
    }
}
