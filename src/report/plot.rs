//! A dependency-free SVG training curve: the epoch loss and the validation NDCG@k side by side.

use std::fmt::Write;

/// One panel's series: (x, y) points.
struct Panel<'a> {
    title: &'a str,
    points: Vec<(f64, f64)>,
    colour: &'a str,
}

const W: f64 = 420.0;
const H: f64 = 300.0;
const M: f64 = 48.0; // margin for axes and labels

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn nice(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

fn panel(svg: &mut String, x0: f64, p: &Panel<'_>, best_epoch: Option<usize>) {
    let _ = write!(svg, r#"<g transform="translate({x0},0)">"#);
    let _ = write!(
        svg,
        r#"<text x="{}" y="20" text-anchor="middle" font-size="14">{}</text>"#,
        W / 2.0,
        escape(p.title)
    );
    let (pw, ph) = (W - 2.0 * M, H - 2.0 * M);
    let _ = write!(
        svg,
        r##"<rect x="{M}" y="{M}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##
    );
    if p.points.is_empty() {
        svg.push_str("</g>");
        return;
    }
    let (xmin, xmax) = p
        .points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |a, q| {
            (a.0.min(q.0), a.1.max(q.0))
        });
    let (mut ymin, mut ymax) = p
        .points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |a, q| {
            (a.0.min(q.1), a.1.max(q.1))
        });
    if ymax - ymin < 1e-12 {
        ymin -= 0.5 * ymin.abs().max(1e-3);
        ymax += 0.5 * ymax.abs().max(1e-3);
    }
    let span = (xmax - xmin).max(1.0);
    let sx = |x: f64| M + (x - xmin) / span * pw;
    let sy = |y: f64| M + ph - (y - ymin) / (ymax - ymin) * ph;
    for t in 0..=4 {
        let y = ymin + (ymax - ymin) * t as f64 / 4.0;
        let yy = sy(y);
        let _ = write!(
            svg,
            r##"<line x1="{M}" x2="{}" y1="{yy}" y2="{yy}" stroke="#ddd"/>"##,
            M + pw
        );
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end" font-size="10">{}</text>"#,
            M - 4.0,
            sy(y) + 3.0,
            nice(y)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="11">epoch</text>"#,
        M + pw / 2.0,
        H - 10.0
    );
    let _ = write!(
        svg,
        r#"<text x="{M}" y="{}" text-anchor="middle" font-size="10">{}</text>"#,
        M + ph + 14.0,
        nice(xmin)
    );
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="10">{}</text>"#,
        M + pw,
        M + ph + 14.0,
        nice(xmax)
    );
    if let Some(b) = best_epoch {
        let x = sx(b as f64);
        let _ = write!(
            svg,
            r##"<line x1="{x}" x2="{x}" y1="{M}" y2="{}" stroke="#999" stroke-dasharray="4 3"/>"##,
            M + ph
        );
    }
    let pts: Vec<String> = p
        .points
        .iter()
        .map(|&(x, y)| format!("{:.2},{:.2}", sx(x), sy(y)))
        .collect();
    let _ = write!(
        svg,
        r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
        p.colour,
        pts.join(" ")
    );
    for &(x, y) in &p.points {
        let _ = write!(
            svg,
            r#"<circle cx="{:.2}" cy="{:.2}" r="2.5" fill="{}"/>"#,
            sx(x),
            sy(y),
            p.colour
        );
    }
    svg.push_str("</g>");
}

/// The training curve: `losses[e]` and `ndcg[e]` (validation NDCG@`k`, when evaluated) per epoch `e + 1`,
/// with the best epoch marked.
pub fn training_curve(
    title: &str,
    losses: &[f64],
    ndcg: &[Option<f64>],
    k: usize,
    best_epoch: usize,
) -> String {
    let loss = Panel {
        title: "training loss",
        points: losses
            .iter()
            .enumerate()
            .map(|(e, &l)| ((e + 1) as f64, l))
            .collect(),
        colour: "#1f77b4",
    };
    let ndcg_title = format!("validation NDCG@{k}");
    let val = Panel {
        title: &ndcg_title,
        points: ndcg
            .iter()
            .enumerate()
            .filter_map(|(e, v)| v.map(|v| ((e + 1) as f64, v)))
            .collect(),
        colour: "#d62728",
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif">"#,
        2.0 * W,
        H + 24.0
    );
    let _ = write!(
        svg,
        r##"<rect width="100%" height="100%" fill="white"/><text x="{}" y="{}" text-anchor="middle" font-size="12" fill="#555">{}</text>"##,
        W,
        H + 16.0,
        escape(title)
    );
    panel(&mut svg, 0.0, &loss, Some(best_epoch));
    panel(&mut svg, W, &val, Some(best_epoch));
    svg.push_str("</svg>\n");
    svg
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
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("a &lt;run&gt;"));
        assert!(s.contains("validation NDCG@5"));
    }
}
