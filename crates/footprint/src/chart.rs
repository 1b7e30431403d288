//! The report's chart, drawn on the server as SVG (plotters' SVG backend): per
//! month, use and manufacturing emissions stacked (central values), and a line
//! from the low to the high value of the total. The SVG carries a `<title>` and
//! `role="img"`; the HTML page gives the same figures as a table.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::i18n::{Lang, ReportTexts};
use crate::range::Range;

/// One month of an organisation's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthPoint {
    /// `YYYY-MM`.
    pub period: String,
    pub use_kgco2e: Range,
    pub embodied_kgco2e: Range,
    pub total_kgco2e: Range,
}

/// Size of the chart, in pixels (the SVG scales with the page).
pub const WIDTH: u32 = 760;
pub const HEIGHT: u32 = 380;
/// Most months drawn (the latest ones).
pub const MAX_MONTHS: usize = 24;

/// Okabe–Ito blue and vermillion: distinguishable with every common colour
/// vision deficiency, and at least 3:1 against white (WCAG 1.4.11).
pub const USE_COLOR: RGBColor = RGBColor(0x00, 0x72, 0xB2);
pub const EMBODIED_COLOR: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
const INK: RGBColor = RGBColor(0x11, 0x11, 0x11);

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The chart as an SVG element, `alt` as its accessible name.
pub fn svg(points: &[MonthPoint], lang: Lang, alt: &str) -> String {
    let points = &points[points.len().saturating_sub(MAX_MONTHS)..];
    // Drawing into a String cannot fail on I/O; a layout error (or a panic in
    // the drawing library) leaves a chart-less image whose title still says
    // what it would show, and the page's table still gives the figures.
    let drawn = std::panic::catch_unwind(|| {
        let mut out = String::new();
        draw(&mut out, points, lang)
            .map(|()| out)
            .map_err(|e| e.to_string())
    })
    .unwrap_or_else(|_| Err("the chart could not be drawn".to_owned()));
    let mut out = String::new();
    if let Err(e) = drawn.as_ref().map(|svg| out.push_str(svg)) {
        out = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\"><!-- {} --></svg>", xml_escape(&e.to_string()).replace("--", "- -"));
    }
    let title = format!("<title id=\"chart-title\">{}</title>", xml_escape(alt));
    match out
        .find("<svg ")
        .and_then(|i| out[i..].find('>').map(|j| i + j))
    {
        Some(end) => {
            let start = out.find("<svg ").unwrap_or(0);
            let open = out[start..end].replacen(
                "<svg ",
                "<svg role=\"img\" aria-labelledby=\"chart-title\" preserveAspectRatio=\"xMidYMid meet\" ",
                1,
            );
            format!("{open}>{title}{}", &out[end + 1..])
        }
        None => out,
    }
}

fn draw(
    out: &mut String,
    points: &[MonthPoint],
    lang: Lang,
) -> Result<(), Box<dyn std::error::Error>> {
    let t = lang.texts();
    let root = SVGBackend::with_string(out, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = points.len().max(1);
    let top = points
        .iter()
        .map(|p| {
            p.total_kgco2e
                .high
                .max(p.use_kgco2e.central + p.embodied_kgco2e.central)
        })
        .fold(0.0f64, f64::max);
    // Room above the bars for the legend.
    let y_max = if top > 0.0 { top * 1.45 } else { 1.0 };
    let label_font = ("DejaVu Sans, sans-serif", 15).into_font().color(&INK);
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(72)
        // Integer ranges are inclusive in plotters: 0..n−1 is n segments.
        .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..y_max)?;
    let labels: Vec<String> = points.iter().map(|p| p.period.clone()).collect();
    let decimals = if y_max < 10.0 { 1 } else { 0 };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(RGBColor(0xDD, 0xDD, 0xDD))
        .light_line_style(WHITE)
        .axis_style(INK)
        .y_desc(t.axis_kg.as_str())
        .axis_desc_style(label_font.clone())
        .label_style(label_font.clone())
        .x_labels(n)
        .y_labels(6)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_label_formatter(&|v| lang.number(*v, decimals))
        .draw()?;
    let bar = |i: usize, from: f64, to: f64, color: RGBColor| {
        let mut r = Rectangle::new(
            [
                (SegmentValue::Exact(i), from),
                (SegmentValue::Exact(i + 1), to),
            ],
            color.filled(),
        );
        let w = (WIDTH / (n as u32 * 4)).clamp(6, 60);
        r.set_margin(0, 0, w, w);
        r
    };
    chart
        .draw_series(
            points
                .iter()
                .enumerate()
                .map(|(i, p)| bar(i, 0.0, p.use_kgco2e.central, USE_COLOR)),
        )?
        .label(t.legend_use.as_str())
        .legend(|(x, y)| Rectangle::new([(x, y - 7), (x + 14, y + 7)], USE_COLOR.filled()));
    chart
        .draw_series(points.iter().enumerate().map(|(i, p)| {
            let base = p.use_kgco2e.central;
            bar(i, base, base + p.embodied_kgco2e.central, EMBODIED_COLOR)
        }))?
        .label(t.legend_embodied.as_str())
        .legend(|(x, y)| Rectangle::new([(x, y - 7), (x + 14, y + 7)], EMBODIED_COLOR.filled()));
    chart
        .draw_series(points.iter().enumerate().map(|(i, p)| {
            ErrorBar::new_vertical(
                SegmentValue::CenterOf(i),
                p.total_kgco2e.low,
                p.total_kgco2e.central,
                p.total_kgco2e.high,
                INK.stroke_width(2),
                16,
            )
        }))?
        .label(t.legend_range.as_str())
        .legend(|(x, y)| {
            PathElement::new(vec![(x + 7, y - 7), (x + 7, y + 7)], INK.stroke_width(2))
        });
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(INK)
        .label_font(label_font)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(period: &str, u: f64, e: f64) -> MonthPoint {
        MonthPoint {
            period: period.into(),
            use_kgco2e: Range::new(u * 0.5, u, u * 2.0).unwrap(),
            embodied_kgco2e: Range::new(e * 0.7, e, e * 2.0).unwrap(),
            total_kgco2e: Range::new(u * 0.5 + e * 0.7, u + e, u * 2.0 + e * 2.0).unwrap(),
        }
    }

    #[test]
    fn draws_bars_labels_and_a_title() {
        let svg = svg(
            &[point("2026-10", 10.0, 5.0), point("2026-11", 12.0, 5.0)],
            Lang::Fr,
            "Émissions <par> mois",
        );
        assert!(
            svg.starts_with("<svg role=\"img\" aria-labelledby=\"chart-title\""),
            "{svg}"
        );
        assert!(svg.contains("<title id=\"chart-title\">Émissions &lt;par&gt; mois</title>"));
        assert!(svg.contains("2026-10") && svg.contains("2026-11"));
        assert!(svg.contains("Fabrication") && svg.contains("Usage"));
        assert!(svg.contains("#0072B2") || svg.contains("#0072b2"), "{svg}");
        assert!(
            !svg.contains("style="),
            "inline styles would need 'unsafe-inline'"
        );
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn empty_and_zero_histories_still_draw() {
        let svg = svg(&[point("2026-11", 0.0, 0.0)], Lang::En, "x");
        assert!(svg.contains("</svg>"));
        assert!(svg.contains("2026-11"));
    }
}
