//! The risk-score timeline as inline SVG: each event's score at the time the daemon scored it,
//! so the line shows risk as it developed, with the warning and
//! auto-revoke thresholds drawn across. Presentation attributes only (no `style`), so the
//! page's content security policy needs no exception.

use maud::{Markup, html};

const W: f64 = 760.0;
const H: f64 = 260.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 34.0;

/// One scored event: when it was scored (unix ms) and its score (0..1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    pub at_ms: i64,
    pub score: f64,
}

fn y(score: f64) -> f64 {
    TOP + (1.0 - score.clamp(0.0, 1.0)) * (H - TOP - BOTTOM)
}

fn colour(score: f64, warning: f64, auto: f64) -> &'static str {
    if score >= auto {
        "#b3261e"
    } else if score >= warning {
        "#c77700"
    } else if score >= 0.5 {
        "#8a6d00"
    } else {
        "#2e7d32"
    }
}

/// The chart; `points` in any order.
pub(crate) fn risk_timeline(points: &[Point], warning: f64, auto: f64) -> Markup {
    let mut pts = points.to_vec();
    pts.sort_by_key(|p| p.at_ms);
    let (first, last) = match (pts.first(), pts.last()) {
        (Some(f), Some(l)) => (f.at_ms, l.at_ms),
        _ => (0, 0),
    };
    let span = (last - first).max(1) as f64;
    let x = |at: i64| {
        if pts.len() < 2 || first == last {
            LEFT + (W - LEFT - RIGHT) / 2.0
        } else {
            LEFT + (at - first) as f64 / span * (W - LEFT - RIGHT)
        }
    };
    let path: Vec<String> = pts
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.at_ms), y(p.score)))
        .collect();
    html! {
        svg #risk-chart xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (W) " " (H) }
            role="img" aria-label="Risk score of each scored event over time"
            data-points=(pts.len()) {
            rect x=(LEFT) y=(TOP) width=(W - LEFT - RIGHT) height=(H - TOP - BOTTOM)
                fill="#fbfbfd" stroke="#d0d4dc" {}
            @for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
                line x1=(LEFT) x2=(W - RIGHT) y1=(y(tick)) y2=(y(tick)) stroke="#eceef3" {}
                text x=(LEFT - 6.0) y=(y(tick) + 4.0) text-anchor="end" font-size="11" fill="#555" {
                    (format!("{tick:.2}"))
                }
            }
            line #warning-line x1=(LEFT) x2=(W - RIGHT) y1=(y(warning)) y2=(y(warning))
                stroke="#c77700" stroke-width="1.5" stroke-dasharray="6 4" data-threshold=(warning) {}
            text x=(W - RIGHT - 4.0) y=(y(warning) - 4.0) text-anchor="end" font-size="11" fill="#c77700" {
                "warning " (format!("{warning:.2}"))
            }
            line #auto-revoke-line x1=(LEFT) x2=(W - RIGHT) y1=(y(auto)) y2=(y(auto))
                stroke="#b3261e" stroke-width="1.5" stroke-dasharray="2 3" data-threshold=(auto) {}
            text x=(W - RIGHT - 4.0) y=(y(auto) - 4.0) text-anchor="end" font-size="11" fill="#b3261e" {
                "auto-revoke " (format!("{auto:.2}"))
            }
            @if pts.len() > 1 {
                polyline points=(path.join(" ")) fill="none" stroke="#3f51b5" stroke-width="1.5" {}
            }
            @for p in &pts {
                circle.point cx=(format!("{:.1}", x(p.at_ms))) cy=(format!("{:.1}", y(p.score))) r="4"
                    fill=(colour(p.score, warning, auto)) data-score=(format!("{:.4}", p.score)) {
                    title { (format!("{:.3}", p.score)) " scored at " (super::layout::when(p.at_ms / 1000)) }
                }
            }
            @if let (Some(f), Some(l)) = (pts.first(), pts.last()) {
                text x=(LEFT) y=(H - 10.0) font-size="11" fill="#555" { (super::layout::when(f.at_ms / 1000)) }
                @if pts.len() > 1 {
                    text x=(W - RIGHT) y=(H - 10.0) text-anchor="end" font-size="11" fill="#555" {
                        (super::layout::when(l.at_ms / 1000))
                    }
                }
            } @else {
                text x=(W / 2.0) y=(H / 2.0) text-anchor="middle" font-size="13" fill="#777" {
                    "No scored events yet: scoring starts once a baseline is approved."
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_and_both_thresholds_are_drawn_inside_the_plot() {
        let svg = risk_timeline(
            &[
                Point {
                    at_ms: 200,
                    score: 0.9,
                },
                Point {
                    at_ms: 100,
                    score: 0.1,
                },
                Point {
                    at_ms: 150,
                    score: 0.8,
                },
            ],
            0.75,
            0.85,
        )
        .into_string();
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("data-points=\"3\""));
        assert!(svg.contains("id=\"warning-line\""));
        assert!(svg.contains("data-threshold=\"0.85\""));
        assert!(!svg.contains("style="));
        // Inside SVG an unclosed <line> would swallow what follows: every element is closed.
        assert_eq!(svg.matches("<line").count(), svg.matches("</line>").count());
        assert_eq!(svg.matches("<rect").count(), svg.matches("</rect>").count());
        // Sorted by time: the polyline starts at the left edge with the low score.
        assert!(svg.contains(&format!("points=\"{LEFT:.1},{:.1}", y(0.1))));
        let empty = risk_timeline(&[], 0.75, 0.85).into_string();
        assert!(empty.contains("No scored events yet"));
    }
}
