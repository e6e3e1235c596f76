//! SVG charts (plotters): axes, panels, legends and the figures.

use super::*;

// ---------------------------------------------------------------------------
// Axes: values are transformed (log) by hand, so every chart has one
// coordinate type and we control the ticks.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
pub(super) enum Scale {
    Lin,
    Log(f64),
}

#[derive(Clone, Debug)]
pub(super) struct Axis {
    pub(super) scale: Scale,
    /// Bounds in transformed space.
    pub(super) lo: f64,
    pub(super) hi: f64,
    /// A log axis whose floor stands for zero (one decade below the
    /// smallest positive value), labelled "0".
    pub(super) zero_floor: bool,
}

impl Axis {
    /// Linear from 0 or logarithmic (base 10) when the positive values span
    /// more than ~1.5 decades; zeros sit on the floor of a log axis.
    pub(super) fn auto(vals: impl IntoIterator<Item = f64>) -> Axis {
        let vals: Vec<f64> = vals.into_iter().filter(|v| v.is_finite()).collect();
        let max = vals.iter().copied().fold(0.0f64, f64::max);
        let min_pos = vals
            .iter()
            .copied()
            .filter(|v| *v > 0.0)
            .fold(f64::INFINITY, f64::min);
        if max <= 0.0 {
            return Axis {
                scale: Scale::Lin,
                lo: 0.0,
                hi: 1.0,
                zero_floor: false,
            };
        }
        if max / min_pos > 30.0 {
            let mut a = Axis::log10(min_pos, max);
            if vals.iter().any(|v| *v <= 0.0) {
                a.lo -= 1.0;
                a.zero_floor = true;
            }
            a
        } else {
            Axis {
                scale: Scale::Lin,
                lo: 0.0,
                hi: nice_ceil(max * 1.08),
                zero_floor: false,
            }
        }
    }
    pub(super) fn log10(min_pos: f64, max: f64) -> Axis {
        let lo = min_pos.log10().floor();
        let mut hi = max.log10().ceil();
        if hi <= lo {
            hi = lo + 1.0;
        }
        Axis {
            scale: Scale::Log(10.0),
            lo,
            hi,
            zero_floor: false,
        }
    }
    pub(super) fn log2(min: f64, max: f64) -> Axis {
        Axis {
            scale: Scale::Log(2.0),
            lo: min.log2().floor(),
            hi: max.log2().ceil().max(min.log2().floor() + 1.0),
            zero_floor: false,
        }
    }
    pub(super) fn is_log(&self) -> bool {
        matches!(self.scale, Scale::Log(_))
    }
    /// Value -> transformed coordinate (zeros and negatives to the floor of a
    /// log axis).
    pub(super) fn t(&self, v: f64) -> f64 {
        match self.scale {
            Scale::Lin => v,
            Scale::Log(b) => {
                if v > 0.0 {
                    (v.ln() / b.ln()).max(self.lo)
                } else {
                    self.lo
                }
            }
        }
    }
    pub(super) fn value(&self, t: f64) -> f64 {
        match self.scale {
            Scale::Lin => t,
            Scale::Log(b) => b.powf(t),
        }
    }
    pub(super) fn label(&self, t: f64) -> String {
        if self.zero_floor && (t - self.lo).abs() < 1e-9 {
            return "0".into();
        }
        match self.scale {
            // CPU counts: 1024, not 1.024k.
            Scale::Log(b) if (b - 2.0).abs() < 1e-9 => format!("{}", self.value(t).round()),
            _ => tick(self.value(t)),
        }
    }
    /// (bold, light) tick positions in transformed space.
    pub(super) fn ticks(&self) -> (Vec<f64>, Vec<f64>) {
        match self.scale {
            Scale::Lin => {
                let step = nice_step((self.hi - self.lo) / 5.0);
                let mut bold = Vec::new();
                let mut v = (self.lo / step).ceil() * step;
                while v <= self.hi + step * 1e-9 {
                    bold.push(v);
                    v += step;
                }
                (bold, Vec::new())
            }
            Scale::Log(b) => {
                let span = self.hi - self.lo;
                let every = if span > 12.0 { 2.0 } else { 1.0 };
                let mut bold = Vec::new();
                let mut light = Vec::new();
                let mut k = self.lo.ceil();
                while k <= self.hi + 1e-9 {
                    if ((k - self.lo.ceil()) / every).fract() == 0.0 {
                        bold.push(k);
                    }
                    if b == 10.0 && span <= 4.0 {
                        for m in 2..10 {
                            let t = k + (m as f64).log10();
                            if t < self.hi {
                                light.push(t);
                            }
                        }
                    }
                    k += 1.0;
                }
                (bold, light)
            }
        }
    }
    pub(super) fn desc(&self, what: &str) -> String {
        if self.is_log() {
            format!("{what} (log)")
        } else {
            what.to_string()
        }
    }
}

/// A linear f64 coordinate with our own tick positions (the axes' values
/// are already transformed), formatted by the chart's label formatter.
pub(super) struct Ticked {
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) bold: Vec<f64>,
    pub(super) light: Vec<f64>,
}

impl Ticked {
    pub(super) fn new(lo: f64, hi: f64, (bold, light): (Vec<f64>, Vec<f64>)) -> Ticked {
        Ticked {
            lo,
            hi,
            bold,
            light,
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;
    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = if self.hi > self.lo {
            self.hi - self.lo
        } else {
            1.0
        };
        let f = (v - self.lo) / span;
        limit.0 + (f * (limit.1 - limit.0) as f64).round() as i32
    }
    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.bold.clone()
        }
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

pub(super) fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    let n = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * p
}

pub(super) fn nice_ceil(v: f64) -> f64 {
    let s = nice_step(v / 5.0);
    (v / s).ceil() * s
}

// ---------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------

pub(super) type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;

pub(super) fn de<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("chart drawing failed: {e:?}")
}

pub(super) fn font(size: f64) -> TextStyle<'static> {
    // At least 12 px as drawn (the SVG backend writes 0.8 x the size).
    ("sans-serif", (size * 1.25).max(15.0))
        .into_font()
        .color(&BLACK)
}

/// Evaluates `$body` with `$e` bound to the marker of scheme index `$kind`
/// at `$at` (each shape is its own type, so this is a macro): a shape per
/// scheme keeps overlapping lines apart in print and for colour-blind readers.
macro_rules! with_marker {
    ($kind:expr, $at:expr, $color:expr, $filled:expr, |$e:ident| $body:expr) => {{
        let color: RGBColor = $color;
        let st = if $filled {
            color.filled()
        } else {
            color.stroke_width(2)
        };
        let at = $at;
        match $kind % 6 {
            0 => {
                let $e = EmptyElement::at(at) + Circle::new((0, 0), 4, st);
                $body
            }
            1 => {
                let $e = EmptyElement::at(at) + TriangleMarker::new((0, 0), 5, st);
                $body
            }
            2 => {
                let $e = EmptyElement::at(at) + Rectangle::new([(-4, -4), (4, 4)], st);
                $body
            }
            3 => {
                let $e = EmptyElement::at(at) + Cross::new((0, 0), 4, color.stroke_width(2));
                $body
            }
            4 => {
                let $e =
                    EmptyElement::at(at) + Polygon::new(vec![(0, -5), (5, 0), (0, 5), (-5, 0)], st);
                $body
            }
            _ => {
                let $e = EmptyElement::at(at)
                    + PathElement::new(vec![(-5, 0), (5, 0)], color.stroke_width(3))
                    + PathElement::new(vec![(0, -5), (0, 5)], color.stroke_width(3));
                $body
            }
        }
    }};
}

pub(super) struct Line {
    pub(super) scheme: String,
    pub(super) dashed: bool,
    /// A marker on every `mark_every`-th point.
    pub(super) mark_every: usize,
    pub(super) points: Vec<(f64, f64)>,
}

pub(super) enum LegendKind {
    Line { dashed: bool, marker: usize },
    Dot { marker: usize },
    Note,
}

pub(super) struct LegendItem {
    pub(super) label: String,
    pub(super) color: RGBColor,
    pub(super) kind: LegendKind,
}

pub(super) fn draw_legend(area: &Area, title: &str, items: &[LegendItem]) -> Result<()> {
    area.draw(&Text::new(title.to_string(), (10, 14), font(14.0)))
        .map_err(de)?;
    let mut y = 44;
    for it in items {
        match it.kind {
            LegendKind::Line { dashed, marker: m } => {
                let st = it.color.stroke_width(2);
                if dashed {
                    area.draw(&DashedPathElement::new(vec![(8, y), (52, y)], 6, 4, st))
                        .map_err(de)?;
                } else {
                    area.draw(&PathElement::new(vec![(8, y), (52, y)], st))
                        .map_err(de)?;
                }
                with_marker!(m, (30, y), it.color, !dashed, |e| area.draw(&e).map_err(de))?;
            }
            LegendKind::Dot { marker: m } => {
                with_marker!(m, (30, y), it.color, true, |e| area.draw(&e).map_err(de))?;
            }
            LegendKind::Note => {}
        }
        let (x, f) = match it.kind {
            LegendKind::Note => (8, font(12.0).color(&RGBColor(70, 70, 70))),
            _ => (60, font(13.0)),
        };
        area.draw(&Text::new(
            it.label.clone(),
            (x, y),
            f.pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(de)?;
        y += if matches!(it.kind, LegendKind::Note) {
            18
        } else {
            24
        };
    }
    Ok(())
}

pub(super) fn scheme_legend(cx: &Ctx, schemes: &[String], lines: bool) -> Vec<LegendItem> {
    schemes
        .iter()
        .map(|s| LegendItem {
            label: cx.label(s),
            color: cx.color(s),
            kind: if lines {
                LegendKind::Line {
                    dashed: false,
                    marker: cx.idx(s),
                }
            } else {
                LegendKind::Dot { marker: cx.idx(s) }
            },
        })
        .collect()
}

pub(super) fn note(label: &str) -> LegendItem {
    LegendItem {
        label: label.to_string(),
        color: BLACK,
        kind: LegendKind::Note,
    }
}

pub(super) fn unsafe_notes(cx: &Ctx, schemes: &[String]) -> Vec<LegendItem> {
    let mut v = Vec::new();
    if schemes.iter().any(|s| cx.known_unsafe.contains_key(s)) {
        v.push(note("* known unsafe (see ledger)"));
    }
    if schemes.iter().any(|s| cx.failed.contains(s)) {
        v.push(note("! ledger FAILED (see ledger)"));
    }
    v
}

/// How to read a [`dot_panel`].
pub(super) fn dot_notes() -> Vec<LegendItem> {
    vec![
        note("x: workload; a dot's height"),
        note("  is its value; no dot: no data"),
        note("log axis: zeros on the row"),
        note("  \"0\" under the dashed break"),
    ]
}

/// Legend notes naming schemes whose lines coincide on every panel (one
/// line hides the other): "same values: a = b".
pub(super) fn coincide_notes(panels: &[&[Line]]) -> Vec<LegendItem> {
    let same = |a: &Line, b: &Line| {
        a.dashed == b.dashed
            && a.points.len() == b.points.len()
            && a.points
                .iter()
                .zip(&b.points)
                .all(|(p, q)| p.0 == q.0 && (p.1 - q.1).abs() <= 1e-9 * (p.1.abs() + q.1.abs()))
    };
    let mut names: Vec<&str> = Vec::new();
    for l in panels.iter().flat_map(|p| p.iter()) {
        if !names.contains(&l.scheme.as_str()) {
            names.push(&l.scheme);
        }
    }
    let lines_of = |s: &str| -> Vec<&Line> {
        panels
            .iter()
            .flat_map(|p| p.iter())
            .filter(|l| l.scheme == s)
            .collect()
    };
    let mut groups: Vec<Vec<&str>> = Vec::new();
    for s in &names {
        if groups.iter().any(|g| g.contains(s)) {
            continue;
        }
        let mine = lines_of(s);
        let mut g = vec![*s];
        for t in names.iter().filter(|t| *t != s) {
            let theirs = lines_of(t);
            if mine.len() == theirs.len() && mine.iter().zip(&theirs).all(|(a, b)| same(a, b)) {
                g.push(t);
            }
        }
        if g.len() > 1 {
            groups.push(g);
        }
    }
    let mut v = Vec::new();
    if !groups.is_empty() {
        v.push(note("same values (lines coincide):"));
        for g in groups {
            // Wrapped to the legend's width.
            let mut line = String::from(" ");
            for (k, name) in g.iter().enumerate() {
                let piece = if k == 0 {
                    format!(" {name}")
                } else {
                    format!(" = {name}")
                };
                if line.len() + piece.len() > 34 && line.len() > 2 {
                    v.push(note(&line));
                    line = String::from("   ");
                }
                line.push_str(&piece);
            }
            v.push(note(&line));
        }
    }
    v
}

/// `text` as legend notes of at most `width` characters, broken at spaces,
/// indented by two.
pub(super) fn wrapped_notes(text: &str, width: usize) -> Vec<LegendItem> {
    let mut v = Vec::new();
    let mut line = String::from(" ");
    for w in text.split_whitespace() {
        if line.len() + 1 + w.len() > width && line.len() > 2 {
            v.push(note(&line));
            line = String::from(" ");
        }
        line.push(' ');
        line.push_str(w);
    }
    if line.len() > 2 {
        v.push(note(&line));
    }
    v
}

/// Vertical markers of a line panel: (x value, label). Each is tagged by
/// its number (left to right) above the plot; [`vline_notes`] lists the
/// labels in the legend.
pub(super) type VLines = Vec<(f64, String)>;

/// The markers left to right: the order of their tags.
fn sorted_vlines(vlines: &VLines) -> Vec<(f64, &str)> {
    let mut v: Vec<(f64, &str)> = vlines.iter().map(|(x, l)| (*x, l.as_str())).collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

/// Legend notes: what each marker's tag stands for.
pub(super) fn vline_notes(x: &Axis, vlines: &VLines) -> Vec<LegendItem> {
    let mut v = Vec::new();
    for (n, (vx, label)) in sorted_vlines(vlines).into_iter().enumerate() {
        let tx = x.t(vx);
        let off = if tx < x.lo || tx > x.hi {
            " (off the axis)"
        } else {
            ""
        };
        v.extend(wrapped_notes(&format!("{}: {label}{off}", n + 1), 30));
    }
    v
}

#[allow(clippy::too_many_arguments)]
pub(super) fn line_panel(
    cx: &Ctx,
    area: &Area,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    x: &Axis,
    lines: &[Line],
    vlines: &VLines,
) -> Result<Axis> {
    let y = Axis::auto(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    let (xb, xl) = x.ticks();
    let (yb, yl) = y.ticks();
    let nxb = xb.len();
    let nyb = yb.len().max(1);
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64);
    if vlines.is_empty() {
        builder.caption(title, font(16.0));
    } else {
        // The title by hand, then a strip above the plot for the markers'
        // tags: no series can cross a label there.
        let (w, _) = area.dim_in_pixel();
        area.draw(&Text::new(
            title.to_string(),
            (w as i32 / 2, 12),
            font(16.0).pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(de)?;
        builder.margin_top(72);
    }
    let mut chart = builder
        .build_cartesian_2d(
            Ticked::new(x.lo, x.hi, (xb, xl)),
            Ticked::new(y.lo, y.hi, (yb, yl)),
        )
        .map_err(de)?;
    let xf = |v: &f64| x.label(*v);
    let yf = |v: &f64| y.label(*v);
    chart
        .configure_mesh()
        .x_labels(nxb)
        .y_labels(nyb)
        .x_desc(x.desc(x_desc))
        .y_desc(y.desc(y_desc))
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .label_style(font(12.0))
        .axis_desc_style(font(13.0))
        .bold_line_style(RGBColor(215, 215, 215))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(de)?;
    let grey = RGBColor(110, 110, 110);
    if y.zero_floor {
        // The break between the zero row and the smallest decade, as in
        // the dot plots.
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x.lo, y.lo + 0.5), (x.hi, y.lo + 0.5)],
                6,
                4,
                RGBColor(150, 150, 150).stroke_width(1),
            ))
            .map_err(de)?;
    }
    let base = area.get_base_pixel();
    // Right edge (pixels) of the last tag in each of two rows.
    let mut right = [i32::MIN; 2];
    for (n, (vx, _)) in sorted_vlines(vlines).into_iter().enumerate() {
        let tx = x.t(vx);
        if tx < x.lo || tx > x.hi {
            continue;
        }
        chart
            .draw_series(DashedLineSeries::new(
                vec![(tx, y.lo), (tx, y.hi)],
                5,
                4,
                grey.stroke_width(1),
            ))
            .map_err(de)?;
        // The tag above the plot, in the first row where it does not touch
        // its left neighbour; the legend says what each tag is.
        let tag = (n + 1).to_string();
        let half = 5 * tag.len() as i32;
        let (px, py) = chart.backend_coord(&(tx, y.hi));
        let row = (0..2).find(|r| px - half > right[*r] + 2).unwrap_or(0);
        right[row] = px + half;
        area.draw(&Text::new(
            tag,
            (px - base.0, py - base.1 - 4 - 18 * row as i32),
            font(11.0)
                .color(&grey)
                .pos(Pos::new(HPos::Center, VPos::Bottom)),
        ))
        .map_err(de)?;
    }
    for l in lines {
        let color = cx.color(&l.scheme);
        let pts: Vec<(f64, f64)> = l.points.iter().map(|&(a, b)| (x.t(a), y.t(b))).collect();
        let st = color.stroke_width(2);
        if l.dashed {
            chart
                .draw_series(DashedLineSeries::new(pts.clone(), 7, 5, st))
                .map_err(de)?;
        } else {
            chart
                .draw_series(LineSeries::new(pts.clone(), st))
                .map_err(de)?;
        }
        let m = cx.idx(&l.scheme);
        let every = l.mark_every.max(1);
        // Offset per scheme so that coinciding lines show every marker.
        let off = cx.idx(&l.scheme) % every;
        for &p in pts.iter().skip(off).step_by(every) {
            with_marker!(m, p, color, !l.dashed, |e| chart
                .draw_series(std::iter::once(e))
                .map(|_| ())
                .map_err(de))?;
        }
    }
    Ok(y)
}

/// One scheme's values, one per category (`None`: no data).
pub(super) struct Dots {
    pub(super) scheme: String,
    pub(super) values: Vec<Option<f64>>,
}

/// A dot plot by category (workloads have no order, so no lines): a marker
/// per scheme at its value, schemes side by side within a category. A
/// dot's position, not a bar's length, carries the value, so a log axis
/// does not distort it. Zeros on a log axis sit on a row of their own,
/// labelled "0" and set off by a dashed break; on a linear axis they are
/// at 0 like any value.
pub(super) fn dot_panel(
    cx: &Ctx,
    area: &Area,
    title: &str,
    y_desc: &str,
    groups: &[String],
    dots: &[Dots],
) -> Result<()> {
    let y = Axis::auto(dots.iter().flat_map(|b| b.values.iter().flatten().copied()));
    let g = groups.len().max(1);
    let xb: Vec<f64> = (0..g).map(|i| i as f64 + 0.5).collect();
    let (yb, yl) = y.ticks();
    let nyb = yb.len();
    let mut chart = ChartBuilder::on(area)
        .caption(title, font(16.0))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(64)
        .build_cartesian_2d(
            Ticked::new(0.0, g as f64, (xb, Vec::new())),
            Ticked::new(y.lo, y.hi, (yb, yl)),
        )
        .map_err(de)?;
    let xf = |v: &f64| {
        let i = v.floor() as usize;
        groups.get(i).cloned().unwrap_or_default()
    };
    let yf = |v: &f64| y.label(*v);
    chart
        .configure_mesh()
        .x_labels(g)
        .y_labels(nyb)
        .disable_x_mesh()
        .y_desc(y.desc(y_desc))
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .label_style(font(12.0))
        .axis_desc_style(font(13.0))
        .bold_line_style(RGBColor(215, 215, 215))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(de)?;
    let grey = RGBColor(150, 150, 150);
    // Category separators.
    for i in 1..g {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(i as f64, y.lo), (i as f64, y.hi)],
                grey.stroke_width(1),
            )))
            .map_err(de)?;
    }
    if y.zero_floor {
        // The break between the zero row and the smallest decade.
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, y.lo + 0.5), (g as f64, y.lo + 0.5)],
                6,
                4,
                grey.stroke_width(1),
            ))
            .map_err(de)?;
    }
    let n = dots.len().max(1);
    let w = 0.8 / n as f64;
    for (k, d) in dots.iter().enumerate() {
        let color = cx.color(&d.scheme);
        let m = cx.idx(&d.scheme);
        for (i, v) in d.values.iter().enumerate() {
            let Some(v) = *v else { continue };
            let at = (i as f64 + 0.1 + (k as f64 + 0.5) * w, y.t(v));
            with_marker!(m, at, color, true, |e| chart
                .draw_series(std::iter::once(e))
                .map(|_| ())
                .map_err(de))?;
        }
    }
    Ok(())
}

/// An SVG drawn into a string: `f` gets the chart area and the legend strip.
pub(super) fn svg(
    w: u32,
    h: u32,
    legend_w: u32,
    f: impl FnOnce(&Area, &Area) -> Result<()>,
) -> Result<String> {
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(de)?;
        let (main, legend) = root.split_horizontally(w - legend_w);
        f(&main, &legend)?;
        root.present().map_err(de)?;
    }
    Ok(s)
}

// ---------------------------------------------------------------------------
// Charts
// ---------------------------------------------------------------------------

pub(super) struct Figure {
    pub(super) file: String,
    pub(super) svg: String,
    pub(super) caption: String,
}

pub(super) fn scaling_chart(cx: &Ctx, arch: &str) -> Result<Option<Figure>> {
    let metric = |f: fn(&RunReport) -> f64, dashed_too: bool| -> Vec<Line> {
        let mut v = Vec::new();
        for s in &cx.schemes {
            for (w, dashed) in [(THREADS, false), (PROCESSES, true)] {
                if dashed && !dashed_too {
                    continue;
                }
                let points = cx.by_cpus(w, arch, s, |r| Some(f(r)));
                if !points.is_empty() {
                    v.push(Line {
                        scheme: s.clone(),
                        dashed,
                        mark_every: 1,
                        points,
                    });
                }
            }
        }
        v
    };
    let cyc = metric(|r| r.shared_rmw_per_switch, true);
    let tr = metric(cx.q.per_switch, true);
    if cyc.iter().all(|l| l.dashed) && cyc.is_empty() {
        return Ok(None);
    }
    if cyc.is_empty() {
        return Ok(None);
    }
    let xs: Vec<f64> = cyc
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .collect();
    let xmin = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let xmax = xs.iter().copied().fold(0.0, f64::max);
    let x = Axis::log2(xmin, xmax.max(xmin * 2.0));
    let schemes: Vec<String> = cx
        .schemes
        .iter()
        .filter(|s| cyc.iter().any(|l| &l.scheme == *s))
        .cloned()
        .collect();
    let s = svg(1240, 560, 230, |main, legend| {
        let panels = main.split_evenly((1, 2));
        line_panel(
            cx,
            &panels[0],
            &format!("{arch}: shared-line RMWs per switch"),
            "CPUs",
            "shared RMW / switch",
            &x,
            &cyc,
            &Vec::new(),
        )?;
        line_panel(
            cx,
            &panels[1],
            &format!("{arch}: {} per switch", cx.q.name),
            "CPUs",
            &format!("{} / switch", cx.q.unit),
            &x,
            &tr,
            &Vec::new(),
        )?;
        let mut items = scheme_legend(cx, &schemes, true);
        items.push(note(""));
        items.push(note("solid: ctxswitch-threads"));
        items.push(note("  (one shared mm)"));
        items.push(note("dashed: ctxswitch-processes"));
        items.push(note("  (an mm per pair)"));
        items.push(note("switch path only"));
        items.push(note("log axis: zeros on the row"));
        items.push(note("  \"0\" under the dashed break"));
        items.extend(coincide_notes(&[&cyc, &tr]));
        items.extend(unsafe_notes(cx, &schemes));
        draw_legend(legend, "scheme", &items)
    })?;
    Ok(Some(Figure {
        file: format!("scaling-{}.svg", file_part(arch)),
        svg: s,
        caption: format!(
            "{arch}: will-it-scale context_switch1 shape — every switch passes through idle. \
             Solid: threads of one process (the lazily held mm is shared by all CPUs); \
             dashed: processes (one mm per pair). x: simulated CPUs (log2)."
        ),
    }))
}

pub(super) fn exit_charts(cx: &Ctx, arch: &str) -> Result<Vec<Figure>> {
    // Categories: exit-storm at the break-even CPU count, then the traces.
    let mut groups: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<Option<&RunReport>>> = Vec::new(); // [group][scheme]
    if let Some((cpus, src)) = cx.break_even_cpus(arch) {
        groups.push(format!("exit-storm@{cpus}"));
        rows.push(
            cx.schemes
                .iter()
                .map(|s| cx.find(src, EXIT_STORM, arch, s, cpus))
                .collect(),
        );
    }
    for t in &cx.traces {
        let r: Vec<Option<&RunReport>> = cx
            .schemes
            .iter()
            .map(|s| cx.trace_run(t, arch, s))
            .collect();
        if r.iter().flatten().any(|r| r.exits > 0) {
            groups.push(t.trim_start_matches("trace:").to_string());
            rows.push(r);
        }
    }
    let exit_lines = |f: &dyn Fn(&RunReport) -> Option<f64>| -> Vec<Line> {
        cx.schemes
            .iter()
            .filter_map(|s| {
                let points = cx.by_cpus(EXIT_STORM, arch, s, f);
                (!points.is_empty()).then(|| Line {
                    scheme: s.clone(),
                    dashed: false,
                    mark_every: 1,
                    points,
                })
            })
            .collect()
    };
    let cyc_lines = exit_lines(&|r| (r.exits > 0).then(|| (cx.q.per_exit)(r)));
    let ipi_lines = exit_lines(&|r| per(r.ipis + r.flush_ipis, r.exits));

    let dots = |f: &dyn Fn(&RunReport) -> Option<f64>| -> Vec<Dots> {
        cx.schemes
            .iter()
            .enumerate()
            .map(|(k, s)| Dots {
                scheme: s.clone(),
                values: rows
                    .iter()
                    .map(|row| row[k].filter(|r| r.exits > 0).and_then(f))
                    .collect(),
            })
            .filter(|b| b.values.iter().any(Option::is_some))
            .collect()
    };
    let scheme_ipis = dots(&|r| per(r.ipis, r.exits));
    let flush_ipis = dots(&|r| per(r.flush_ipis, r.exits));
    let scans = dots(&|r| Some(r.scan_steps_per_exit));
    let cycles = dots(&|r| Some((cx.q.per_exit)(r)));
    let schemes: Vec<String> = cx
        .schemes
        .iter()
        .filter(|s| {
            cycles.iter().any(|b| &b.scheme == *s) || cyc_lines.iter().any(|l| &l.scheme == *s)
        })
        .cloned()
        .collect();
    let xs: Vec<f64> = cyc_lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .collect();
    let mut figs = Vec::new();
    let cost_title = format!("{} per exit", cx.q.name);
    let cost_axis = format!("{} / exit", cx.q.unit);
    // Panels whose values are all zero say nothing a sentence cannot: they
    // are dropped and the caption says so.
    let all: [(&str, &str, &Vec<Dots>); 4] = [
        ("scheme IPIs per exit", "IPIs / exit", &scheme_ipis),
        (
            "exit-flush IPIs per exit (the architecture's)",
            "IPIs / exit",
            &flush_ipis,
        ),
        (
            "teardown scan steps per exit",
            "CPUs scanned / exit",
            &scans,
        ),
        (&cost_title, &cost_axis, &cycles),
    ];
    let nonzero = |b: &Vec<Dots>| {
        b.iter()
            .any(|b| b.values.iter().any(|v| v.is_some_and(|v| v != 0.0)))
    };
    let panels: Vec<_> = all.iter().filter(|p| nonzero(p.2)).collect();
    let dropped: Vec<&str> = all.iter().filter(|p| !nonzero(p.2)).map(|p| p.0).collect();
    if !groups.is_empty() && !panels.is_empty() {
        let (rows_n, cols_n) = match panels.len() {
            1 => (1, 1),
            2 => (1, 2),
            _ => (2, 2),
        };
        let height = if rows_n == 1 { 470 } else { 860 };
        let s = svg(1400, height, 230, |main, legend| {
            let p = main.split_evenly((rows_n, cols_n));
            for (k, (title, ylabel, dots)) in panels.iter().map(|p| **p).enumerate() {
                dot_panel(cx, &p[k], title, ylabel, &groups, dots)?;
            }
            let mut items = scheme_legend(cx, &schemes, false);
            items.push(note(""));
            items.extend(dot_notes());
            items.push(note("exit-storm: PeterZ's"));
            items.push(note("  adversarial exit (each"));
            items.push(note("  process walks every CPU)"));
            items.push(note("traces: as captured"));
            items.push(note("IPIs: own panels"));
            items.extend(unsafe_notes(cx, &schemes));
            draw_legend(legend, "scheme", &items)
        })?;
        figs.push(Figure {
            file: format!("exit-cost-{}.svg", file_part(arch)),
            svg: s,
            caption: format!(
                "{arch}: teardown cost per address-space exit (__mmput), for exit-storm at the \
                 break-even CPU count and for each bundled trace. Scheme IPIs are the scheme's \
                 own (shoot-down, hazard+IPI); flush IPIs are the architecture's exit-time TLB \
                 flush, sent whatever the scheme.{}",
                if dropped.is_empty() {
                    String::new()
                } else {
                    format!(
                        " Zero for every scheme here, so not drawn: {}.",
                        dropped.join("; ")
                    )
                }
            ),
        });
    }
    if !xs.is_empty() {
        let xmin = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let xmax = xs.iter().copied().fold(0.0, f64::max);
        let x = Axis::log2(xmin, xmax.max(xmin * 2.0));
        let s = svg(1240, 470, 230, |main, legend| {
            let p = main.split_evenly((1, 2));
            line_panel(
                cx,
                &p[0],
                &format!("{arch}: exit-storm, {} per exit", cx.q.name),
                "CPUs",
                &format!("{} / exit", cx.q.unit),
                &x,
                &cyc_lines,
                &Vec::new(),
            )?;
            line_panel(
                cx,
                &p[1],
                &format!("{arch}: exit-storm, IPIs per exit"),
                "CPUs",
                "IPIs (scheme + flush) / exit",
                &x,
                &ipi_lines,
                &Vec::new(),
            )?;
            let mut items = scheme_legend(cx, &schemes, true);
            items.push(note(""));
            items.push(note("exit-storm: each process"));
            items.push(note("  walks every CPU, then"));
            items.push(note("  exits; in waves"));
            items.extend(coincide_notes(&[&cyc_lines, &ipi_lines]));
            items.extend(unsafe_notes(cx, &schemes));
            draw_legend(legend, "scheme", &items)
        })?;
        figs.push(Figure {
            file: format!("exit-scaling-{}.svg", file_part(arch)),
            svg: s,
            caption: format!(
                "{arch}: PeterZ's adversarial exit as the CPU count grows (x: CPUs, log2): the \
                 teardown work a scheme moves from the switch path to the exit path. Counted \
                 up to {EXIT_SWEEP_MAX_CPUS} CPUs: a wave walks every process across every \
                 CPU (N^2 work), and a single wave at 4096 CPUs takes about a minute per \
                 architecture for all nine schemes on two cores; the time-exit figures carry \
                 one such exit, in simulated time, to 4096 CPUs."
            ),
        });
    }
    Ok(figs)
}

/// Lines of `f` over a machine's timed points, one per scheme.
fn machine_lines<P>(
    schemes: &[String],
    pts: &[P],
    scheme_of: impl Fn(&P) -> &str,
    f: impl Fn(&P) -> Option<(f64, f64)>,
) -> Vec<Line> {
    schemes
        .iter()
        .filter_map(|s| {
            let points: Vec<(f64, f64)> = pts
                .iter()
                .filter(|p| scheme_of(p) == s)
                .filter_map(&f)
                .collect();
            (!points.is_empty()).then(|| Line {
                scheme: s.clone(),
                dashed: false,
                mark_every: 1,
                points,
            })
        })
        .collect()
}

fn cpu_axis(lines: &[Line]) -> Option<Axis> {
    let xs: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .collect();
    if xs.is_empty() {
        return None;
    }
    let xmin = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let xmax = xs.iter().copied().fold(0.0, f64::max);
    Some(Axis::log2(xmin, xmax.max(xmin * 2.0)))
}

fn preset_marker(mt: &MachineTime, lines: &[Line]) -> VLines {
    let beyond = lines
        .iter()
        .any(|l| l.points.iter().any(|p| p.0 > mt.cpus as f64));
    if beyond {
        vec![(
            mt.cpus as f64,
            format!("{} CPUs; beyond: extrapolated", mt.cpus),
        )]
    } else {
        Vec::new()
    }
}

/// A machine's two-panel line chart by CPU count: `(title, y label,
/// lines)` per panel, the preset's size marked, `notes` under the legend.
fn machine_panels(
    cx: &Ctx,
    mt: &MachineTime,
    x: &Axis,
    x_desc: &str,
    panels: [(String, &str, &[Line]); 2],
    notes: &[&str],
) -> Result<String> {
    let schemes = mt.schemes();
    let vl = preset_marker(mt, panels[0].2);
    svg(1240, 560, 230, |main, legend| {
        let p = main.split_evenly((1, 2));
        for (k, (title, y, lines)) in panels.iter().enumerate() {
            line_panel(cx, &p[k], title, x_desc, y, x, lines, &vl)?;
        }
        let mut items = scheme_legend(cx, &schemes, true);
        items.push(note(""));
        items.extend(notes.iter().map(|n| note(n)));
        if !vl.is_empty() {
            items.push(note("dashed grey, tagged above:"));
            items.extend(vline_notes(x, &vl));
        }
        items.extend(coincide_notes(&[panels[0].2, panels[1].2]));
        items.extend(unsafe_notes(cx, &schemes));
        draw_legend(legend, "scheme", &items)
    })
}

/// will-it-scale in simulated time on one machine: switches/s and the ratio
/// to refcount by CPU count (x: CPUs busy, one thread per hardware thread).
pub(super) fn time_scaling_chart(cx: &Ctx, mt: &MachineTime) -> Result<Option<Figure>> {
    let schemes = mt.schemes();
    let sps = machine_lines(
        &schemes,
        &mt.scaling,
        |p| &p.scheme,
        |p| Some((p.cpus_used as f64, p.switches_per_s)),
    );
    let ratio = machine_lines(
        &schemes,
        &mt.scaling,
        |p| &p.scheme,
        |p| {
            mt.ratio(&p.scheme, p.cpus_used)
                .map(|r| (p.cpus_used as f64, r))
        },
    );
    let Some(x) = cpu_axis(&sps) else {
        return Ok(None);
    };
    let name = &mt.spec.name;
    let s = machine_panels(
        cx,
        mt,
        &x,
        "CPUs busy",
        [
            (
                format!("{name}: switches per simulated second"),
                "switches / s",
                &sps,
            ),
            (
                format!("{name}: switches/s / refcount's"),
                "ratio to refcount",
                &ratio,
            ),
        ],
        &["will-it-scale -t CPUs/2:", "  every switch via idle"],
    )?;
    Ok(Some(Figure {
        file: format!("time-scaling-{}.svg", file_part(name)),
        svg: s,
        caption: format!(
            "{name} ({}, {} CPUs): will-it-scale context_switch1_threads -t N in simulated time \
             (lazymm_sim::timing::wis), N = CPUs/2 pairs on the machine, one thread per hardware \
             thread{}; a contended line serves one transfer at a time, so refcount's mm_count caps \
             the whole machine. Beyond {} CPUs the machine is an extrapolation: {}.",
            mt.spec.arch,
            mt.cpus,
            if mt.scaling.iter().any(|p| p.placement == "spread") {
                " (no SMT here: the pair on neighbouring CPUs, not will-it-scale's binding, \
                 which would put both threads on one CPU and never go through idle)"
            } else {
                ""
            },
            mt.cpus,
            mt.extrapolation
        ),
    }))
}

/// One exit with every other CPU lazy, by CPU count: latency and IPIs.
pub(super) fn time_exit_chart(cx: &Ctx, mt: &MachineTime) -> Result<Option<Figure>> {
    let schemes = mt.schemes();
    let lat = machine_lines(
        &schemes,
        &mt.exits,
        |p| &p.scheme,
        |p| Some((p.cpus as f64, p.exit_us)),
    );
    let ipis = machine_lines(
        &schemes,
        &mt.exits,
        |p| &p.scheme,
        |p| Some((p.cpus as f64, (p.ipis + p.flush_ipis) as f64)),
    );
    let Some(x) = cpu_axis(&lat) else {
        return Ok(None);
    };
    let name = &mt.spec.name;
    let s = machine_panels(
        cx,
        mt,
        &x,
        "CPUs",
        [
            (
                format!("{name}: one exit, every other CPU lazy"),
                "exit latency, us",
                &lat,
            ),
            (
                format!("{name}: IPIs sent by that exit"),
                "IPIs (scheme + flush)",
                &ipis,
            ),
        ],
        &[
            "exit_mm + __mmput on one",
            "  CPU while all others",
            "  hold the mm lazily",
        ],
    )?;
    Ok(Some(Figure {
        file: format!("time-exit-{}.svg", file_part(name)),
        svg: s,
        caption: format!(
            "{name}: PeterZ's worst exit in simulated time (lazymm_sim::timing::exit_cost): the \
             last thread exits while every other CPU holds the mm lazily; latency includes the \
             scheme's and the exit flush's IPIs. Beyond {} CPUs: extrapolated.",
            mt.cpus
        ),
    }))
}

pub(super) const L_MIN: f64 = 0.1;

pub(super) fn l_max(traces: &[(String, f64)]) -> f64 {
    let m = traces.iter().map(|t| t.1).fold(0.0, f64::max);
    10f64.powf((m * 10.0).log10().ceil().max(5.0))
}

/// PeterZ's break-even on one machine, in time, relative to refcount.
pub(super) fn break_even_chart(cx: &Ctx, mt: &MachineTime) -> Result<Option<Figure>> {
    let inputs = mt.trips();
    if inputs.is_empty() {
        return Ok(None);
    }
    let name = &mt.spec.name;
    let cpus = mt.cpus;
    let traces = cx.trace_l(&mt.spec.arch);
    let lmax = l_max(&traces);
    let x = Axis::log10(L_MIN, lmax);
    let ls: Vec<f64> = (0..=80)
        .map(|i| 10f64.powf(x.lo + (x.hi - x.lo) * i as f64 / 80.0))
        .collect();
    let base = inputs.iter().find(|i| i.0 == BASELINE).cloned();
    let rel = |a: f64, e: f64, l: f64| match &base {
        Some(b) => lifetime(a, e, l) / lifetime(b.1, b.2, l),
        None => lifetime(a, e, l),
    };
    let mut lines: Vec<Line> = inputs
        .iter()
        .map(|(s, a, e)| Line {
            scheme: s.clone(),
            dashed: false,
            mark_every: 8,
            points: ls.iter().map(|&l| (l, rel(*a, *e, l))).collect(),
        })
        .collect();
    let in_range = |l: f64| (L_MIN..=lmax).contains(&l);
    let mut crossings = Vec::new();
    if let Some(b) = &base {
        for i in inputs.iter().filter(|i| i.0 != b.0) {
            if let (Some(l), _) = break_even(i, b) {
                if in_range(l) {
                    crossings.push((i.0.clone(), l));
                    lines.push(Line {
                        scheme: i.0.clone(),
                        dashed: false,
                        mark_every: 1,
                        points: vec![(l, 1.0)],
                    });
                }
            }
        }
    }
    let mut vlines: VLines = traces
        .iter()
        .map(|(n, l)| (*l, format!("{n} (L={})", short(*l))))
        .collect();
    // PeterZ's pair: an xchg per unlazy (lightweight) against an IPI per
    // exit (shootdown).
    let pair = (
        inputs.iter().find(|i| i.0 == "lightweight"),
        inputs.iter().find(|i| i.0 == "shootdown"),
    );
    let mut pair_note = None;
    if let (Some(a), Some(b)) = pair {
        match break_even(a, b) {
            (Some(l), _) if in_range(l) => {
                vlines.push((
                    l,
                    format!("PeterZ's pair, lightweight = shootdown (L={})", short(l)),
                ));
            }
            (_, text) => pair_note = Some(text),
        }
    }
    let y_desc = if base.is_some() {
        "time per process lifetime / refcount's"
    } else {
        "us per process lifetime"
    };
    let schemes: Vec<String> = inputs.iter().map(|i| i.0.clone()).collect();
    let s = svg(1240, 700, 230, |main, legend| {
        line_panel(
            cx,
            main,
            &format!("{name}: process lifetime time vs lazy round trips ({cpus} CPUs)"),
            "L = lazy round trips per process lifetime",
            y_desc,
            &x,
            &lines,
            &vlines,
        )?;
        let mut items = scheme_legend(cx, &schemes, true);
        items.push(note(""));
        items.push(note("cost(L) = L x a + e"));
        items.push(note("a: us of CPU per lazy"));
        items.push(note("  round trip (will-it-scale"));
        items.push(note(&format!("  -t {})", cpus / 2)));
        items.push(note("e: us per exit, every"));
        items.push(note("  other CPU lazy"));
        if !vlines.is_empty() {
            items.push(note("dashed grey, tagged above"));
            items.push(note("  (traces: L = their lazy"));
            items.push(note("  enters per exit):"));
            items.extend(vline_notes(&x, &vlines));
        }
        if base.is_some() {
            items.push(note("y = 1: refcount; a marker"));
            items.push(note("  on it: a break-even"));
        }
        if let Some(n) = &pair_note {
            items.push(note("PeterZ's pair: xchg per"));
            items.push(note("  unlazy vs IPI per exit:"));
            items.extend(wrapped_notes(n, 30));
        }
        items.extend(coincide_notes(&[&lines]));
        items.extend(unsafe_notes(cx, &schemes));
        draw_legend(legend, "scheme", &items)
    })?;
    Ok(Some(Figure {
        file: format!("break-even-{}.svg", file_part(name)),
        svg: s,
        caption: format!(
            "{name}: PeterZ's question in simulated time — an xchg on every unlazy versus work \
             once per process exit. Lifetime time of one process as a function of L, its lazy \
             round trips, at {cpus} CPUs{}. Break-evens against refcount: {}.",
            if base.is_some() {
                ", as a ratio to refcount's (refcount is the line y = 1)"
            } else {
                ""
            },
            if crossings.is_empty() {
                "none in this range of L".to_string()
            } else {
                crossings
                    .iter()
                    .map(|(s, l)| format!("{s} at L = {}", short(*l)))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
    }))
}

pub(super) fn traces_chart(cx: &Ctx, arch: &str) -> Result<Option<Figure>> {
    let rows: Vec<(String, Vec<Option<&RunReport>>)> = cx
        .traces
        .iter()
        .map(|t| {
            (
                t.trim_start_matches("trace:").to_string(),
                cx.schemes
                    .iter()
                    .map(|s| cx.trace_run(t, arch, s))
                    .collect(),
            )
        })
        .filter(|(_, r): &(String, Vec<Option<&RunReport>>)| r.iter().any(Option::is_some))
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let groups: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    let dots = |f: &dyn Fn(&RunReport) -> Option<f64>| -> Vec<Dots> {
        cx.schemes
            .iter()
            .enumerate()
            .map(|(k, s)| Dots {
                scheme: s.clone(),
                values: rows.iter().map(|row| row.1[k].and_then(f)).collect(),
            })
            .filter(|b| b.values.iter().any(Option::is_some))
            .collect()
    };
    let cyc = dots(&|r| per(r.count_rmw, r.switches));
    let shared = dots(&|r| Some(r.shared_rmw_per_switch));
    let transfers = dots(&|r| Some((cx.q.per_switch)(r)));
    let ipis = dots(&|r| per(r.ipis + r.flush_ipis, r.exits));
    let schemes: Vec<String> = cyc.iter().map(|b| b.scheme.clone()).collect();
    let cpus: BTreeSet<usize> = rows
        .iter()
        .flat_map(|r| r.1.iter().flatten().map(|r| r.cpus))
        .collect();
    let cpus: Vec<String> = cpus.iter().map(|c| c.to_string()).collect();
    let s = svg(1400, 820, 230, |main, legend| {
        let p = main.split_evenly((2, 2));
        dot_panel(
            cx,
            &p[0],
            "mm count RMWs per switch",
            "count RMW / switch",
            &groups,
            &cyc,
        )?;
        dot_panel(
            cx,
            &p[1],
            "shared-line RMWs per switch",
            "shared RMW / switch",
            &groups,
            &shared,
        )?;
        dot_panel(
            cx,
            &p[2],
            &format!("{} per switch", cx.q.name),
            &format!("{} / switch", cx.q.unit),
            &groups,
            &transfers,
        )?;
        dot_panel(
            cx,
            &p[3],
            "IPIs per exit (scheme + flush)",
            "IPIs / exit",
            &groups,
            &ipis,
        )?;
        let mut items = scheme_legend(cx, &schemes, false);
        items.push(note(""));
        items.push(note(&format!("real perf traces, {} CPUs", cpus.join("/"))));
        items.push(note("switch path only"));
        items.extend(dot_notes());
        items.extend(unsafe_notes(cx, &schemes));
        draw_legend(legend, "scheme", &items)
    })?;
    Ok(Some(Figure {
        file: format!("traces-{}.svg", file_part(arch)),
        svg: s,
        caption: format!(
            "{arch}: the bundled real scheduler traces replayed through every scheme \
             ({} CPUs as captured).",
            cpus.join("/")
        ),
    }))
}
