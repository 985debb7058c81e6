//! Lays blocks out into pages of absolutely positioned text, lines and fills.
//!
//! Layout is a single forward pass: every block is wrapped once and placed at the
//! cursor, breaking pages as it goes, so cost is linear in the size of the document.
//! The footer needs the page count, so it is added after the pass.

use crate::fonts::{Font, encode};
use crate::{Block, Document};

pub(crate) const PAGE_WIDTH: f32 = 595.0;
pub(crate) const PAGE_HEIGHT: f32 = 842.0;

const MARGIN: f32 = 50.0;
const LEFT: f32 = MARGIN;
const RIGHT: f32 = PAGE_WIDTH - MARGIN;
const CONTENT_WIDTH: f32 = RIGHT - LEFT;
const TOP: f32 = PAGE_HEIGHT - MARGIN;
const BOTTOM: f32 = MARGIN;

const FOOTER_RULE: f32 = 40.0;
const FOOTER_BASELINE: f32 = 30.0;
const FOOTER_SIZE: f32 = 8.0;
const FOOTER_GRAY: f32 = 0.35;
const FOOTER_GAP: f32 = 24.0;
/// Baseline of the running header, in the top margin.
const HEADER_BASELINE: f32 = PAGE_HEIGHT - 30.0;

/// Fraction of the font size between the top of the glyph box and the baseline;
/// Helvetica's ascender is 0.718 em, this leaves a little air above it.
const ASCENT: f32 = 0.8;

/// Tolerance for comparing accumulated positions, so a row that fits exactly is not
/// pushed to the next page by rounding.
const EPS: f32 = 0.01;

#[derive(Clone, Copy)]
struct Style {
    font: Font,
    size: f32,
    leading: f32,
}

impl Style {
    /// Baseline of a line whose line box starts at `top`.
    fn baseline(self, top: f32) -> f32 {
        top - (self.leading - self.size) / 2.0 - ASCENT * self.size
    }
}

const TITLE: Style = Style {
    font: Font::Bold,
    size: 18.0,
    leading: 22.0,
};
const HEADING: Style = Style {
    font: Font::Bold,
    size: 13.0,
    leading: 16.0,
};
const BODY: Style = Style {
    font: Font::Regular,
    size: 10.0,
    leading: 13.0,
};
const LABEL: Style = Style {
    font: Font::Bold,
    ..BODY
};
const CELL: Style = Style {
    font: Font::Regular,
    size: 9.0,
    leading: 11.0,
};
const HEADER_CELL: Style = Style {
    font: Font::Bold,
    ..CELL
};
const MONO: Style = Style {
    font: Font::Mono,
    size: 9.0,
    leading: 11.0,
};

const TITLE_GAP: f32 = 14.0;
const HEADING_GAP_BEFORE: f32 = 10.0;
const HEADING_GAP_AFTER: f32 = 4.0;
const BLOCK_GAP: f32 = 8.0;
const KV_GAP: f32 = 12.0;
const KV_ROW_PAD: f32 = 1.0;
const CELL_PAD_X: f32 = 3.0;
const CELL_PAD_Y: f32 = 2.5;
const HEADER_FILL: f32 = 0.88;
/// Lines of body text that must fit below a heading, so it is not stranded at the
/// bottom of a page.
const KEEP_WITH_HEADING: f32 = 2.0;

/// One drawing operation in PDF user space (points, origin bottom-left).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// A run of WinAnsi-encoded text with its baseline starting at (x, y).
    Text {
        x: f32,
        y: f32,
        font: Font,
        size: f32,
        gray: f32,
        text: Vec<u8>,
    },
    /// A thin rule.
    Line { x1: f32, y1: f32, x2: f32, y2: f32 },
    /// A filled rectangle with its lower-left corner at (x, y).
    Fill {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        gray: f32,
    },
}

#[derive(Debug, Default)]
pub(crate) struct Page {
    pub(crate) ops: Vec<Op>,
}

/// Lays the whole document out, footers included.
pub(crate) fn layout(doc: &Document) -> Vec<Page> {
    let mut l = Layout::new();
    l.title(&doc.title);
    for (i, block) in doc.blocks.iter().enumerate() {
        match block {
            Block::Heading(text) => l.heading(text, doc.blocks.get(i + 1)),
            Block::Paragraph(text) => l.paragraph(text),
            Block::KeyValues(pairs) => l.key_values(pairs),
            Block::Table {
                headers,
                rows,
                widths,
            } => l.table(headers, rows, widths),
            Block::Mono(text) => l.mono(text),
            Block::PageBreak => l.page_break(),
        }
    }
    l.finish(&doc.title, &doc.header)
}

/// The height of the first piece of `block` that must share a page with the heading above it:
/// the first lines of text, or a table's header and first row.
fn first_piece_height(block: Option<&Block>) -> f32 {
    match block {
        Some(Block::Paragraph(text)) => {
            wrap(text, BODY, CONTENT_WIDTH)
                .len()
                .min(KEEP_WITH_HEADING as usize) as f32
                * BODY.leading
        }
        Some(Block::Mono(text)) => text.lines().count().clamp(1, 2) as f32 * MONO.leading,
        Some(Block::KeyValues(pairs)) => pairs.first().map_or(0.0, |(k, v)| {
            let n = wrap(k, LABEL, CONTENT_WIDTH * 0.4)
                .len()
                .max(wrap(v, BODY, CONTENT_WIDTH * 0.6).len());
            n as f32 * BODY.leading + 2.0 * KV_ROW_PAD
        }),
        Some(Block::Table {
            headers,
            rows,
            widths,
        }) => {
            let grid = table_grid(headers, rows, widths);
            let header = grid.header_height();
            let first = rows.first().map_or(BODY.leading, |row| {
                let texts: Vec<&str> = row.iter().map(String::as_str).collect();
                grid.height(line_count(&grid.wrap_row(&texts, false)))
            });
            header + first
        }
        Some(Block::Heading(_) | Block::PageBreak) | None => KEEP_WITH_HEADING * BODY.leading,
    }
}

/// The grid of a table: columns sized by the relative widths, but never narrower than the
/// longest word of their header, so a header is never broken inside a word.
fn table_grid(headers: &[String], rows: &[Vec<String>], widths: &[f32]) -> Grid {
    let columns = headers
        .len()
        .max(rows.iter().map(Vec::len).max().unwrap_or(0));
    let minimums: Vec<f32> = (0..columns)
        .map(|i| {
            headers.get(i).map_or(0.0, |h| {
                encode(h)
                    .split(|&b| b == b' ')
                    .map(|w| HEADER_CELL.font.width(w, HEADER_CELL.size))
                    .fold(0.0_f32, f32::max)
                    + 2.0 * CELL_PAD_X
                    + 1.0
            })
        })
        .collect();
    let mut grid = Grid {
        columns: column_boxes(columns, widths, &minimums),
        styles: vec![CELL; columns],
        pad_x: CELL_PAD_X,
        pad_y: CELL_PAD_Y,
        leading: CELL.leading,
        ruled: true,
        header: None,
    };
    let header_texts: Vec<&str> = headers.iter().map(String::as_str).collect();
    grid.header = Some(grid.wrap_row(&header_texts, true));
    grid
}

/// Cells of a grid row, already wrapped: `cells[column][line]`.
type Cells = Vec<Vec<Vec<u8>>>;

/// Column geometry and styling shared by every row of a table or key-value list.
struct Grid {
    /// Left edge and width of each column box.
    columns: Vec<(f32, f32)>,
    /// Style of each column's body cells.
    styles: Vec<Style>,
    pad_x: f32,
    pad_y: f32,
    leading: f32,
    ruled: bool,
    /// Wrapped header cells, repeated at the top of every page the grid spans.
    header: Option<Cells>,
}

impl Grid {
    fn height(&self, lines: usize) -> f32 {
        lines as f32 * self.leading + 2.0 * self.pad_y
    }

    fn header_height(&self) -> f32 {
        self.header
            .as_ref()
            .map_or(0.0, |h| self.height(line_count(h)))
    }

    fn left(&self) -> f32 {
        self.columns.first().map_or(LEFT, |c| c.0)
    }

    fn right(&self) -> f32 {
        self.columns.last().map_or(RIGHT, |c| c.0 + c.1)
    }

    fn wrap_row(&self, texts: &[&str], bold: bool) -> Cells {
        self.columns
            .iter()
            .zip(&self.styles)
            .enumerate()
            .map(|(i, (&(_, width), &style))| {
                let style = if bold { HEADER_CELL } else { style };
                let text = texts.get(i).copied().unwrap_or("");
                wrap(text, style, width - 2.0 * self.pad_x)
            })
            .collect()
    }
}

fn line_count(cells: &Cells) -> usize {
    cells.iter().map(Vec::len).max().unwrap_or(0).max(1)
}

struct Layout {
    pages: Vec<Page>,
    /// Top of the free space on the current page.
    y: f32,
    /// Nothing has been placed on the current page yet.
    fresh: bool,
}

impl Layout {
    fn new() -> Self {
        Layout {
            pages: vec![Page::default()],
            y: TOP,
            fresh: true,
        }
    }

    fn page_index(&self) -> usize {
        self.pages.len() - 1
    }

    fn push(&mut self, op: Op) {
        if let Some(page) = self.pages.last_mut() {
            page.ops.push(op);
        }
        self.fresh = false;
    }

    fn new_page(&mut self) {
        self.pages.push(Page::default());
        self.y = TOP;
        self.fresh = true;
    }

    /// Breaks the page unless `height` fits below the cursor. A fresh page is never
    /// broken, so content taller than a page still makes progress.
    fn ensure(&mut self, height: f32) {
        if !self.fresh && self.y - height < BOTTOM - EPS {
            self.new_page();
        }
    }

    fn gap(&mut self, height: f32) {
        if !self.fresh {
            self.y -= height;
        }
    }

    fn text(&mut self, x: f32, top: f32, style: Style, text: Vec<u8>) {
        if text.is_empty() {
            return;
        }
        let y = style.baseline(top);
        self.push(Op::Text {
            x,
            y,
            font: style.font,
            size: style.size,
            gray: 0.0,
            text,
        });
    }

    /// Places lines one by one, each on whichever page has room for it.
    fn lines(&mut self, lines: Vec<Vec<u8>>, style: Style) {
        for line in lines {
            self.ensure(style.leading);
            let top = self.y;
            self.text(LEFT, top, style, line);
            self.y -= style.leading;
            // An empty line is still vertical space the author asked for.
            self.fresh = false;
        }
    }

    fn title(&mut self, title: &str) {
        if title.trim().is_empty() {
            return;
        }
        self.lines(wrap(title, TITLE, CONTENT_WIDTH), TITLE);
        self.y -= 4.0;
        let y = self.y;
        self.push(Op::Line {
            x1: LEFT,
            y1: y,
            x2: RIGHT,
            y2: y,
        });
        self.y -= TITLE_GAP;
    }

    fn heading(&mut self, text: &str, next: Option<&Block>) {
        let lines = wrap(text, HEADING, CONTENT_WIDTH);
        let height = lines.len() as f32 * HEADING.leading;
        // The heading goes to the next page with what it heads, unless even a fresh page
        // could not hold both (then it stays, and the content follows as it fits).
        let keep = HEADING_GAP_BEFORE + height + HEADING_GAP_AFTER + first_piece_height(next);
        self.ensure(keep.min(TOP - BOTTOM));
        self.gap(HEADING_GAP_BEFORE);
        self.lines(lines, HEADING);
        self.y -= HEADING_GAP_AFTER;
    }

    fn paragraph(&mut self, text: &str) {
        self.lines(wrap(text, BODY, CONTENT_WIDTH), BODY);
        self.y -= BLOCK_GAP;
    }

    fn mono(&mut self, text: &str) {
        let per_line = (CONTENT_WIDTH / (MONO.font.width(b" ", MONO.size)))
            .floor()
            .max(1.0) as usize;
        let mut lines = Vec::new();
        for source in text.lines() {
            let bytes = encode(&expand_tabs(source));
            if bytes.is_empty() {
                lines.push(Vec::new());
            }
            lines.extend(bytes.chunks(per_line).map(<[u8]>::to_vec));
        }
        self.lines(lines, MONO);
        self.y -= BLOCK_GAP;
    }

    fn page_break(&mut self) {
        if !self.fresh {
            self.new_page();
        }
    }

    fn key_values(&mut self, pairs: &[(String, String)]) {
        if pairs.is_empty() {
            return;
        }
        // Size the label column to the longest label, within reason, so short labels
        // do not waste the page and long ones do not starve the values.
        let widest = pairs
            .iter()
            .map(|(k, _)| LABEL.font.width(&encode(k), LABEL.size))
            .fold(0.0_f32, f32::max);
        let label_width = (widest + KV_GAP).clamp(CONTENT_WIDTH * 0.2, CONTENT_WIDTH * 0.4);
        let grid = Grid {
            columns: vec![
                (LEFT, label_width),
                (LEFT + label_width, CONTENT_WIDTH - label_width),
            ],
            styles: vec![LABEL, BODY],
            pad_x: 0.0,
            pad_y: KV_ROW_PAD,
            leading: BODY.leading,
            ruled: false,
            header: None,
        };
        let mut header_page = None;
        for (key, value) in pairs {
            let cells = vec![
                wrap(key, LABEL, label_width - KV_GAP),
                wrap(value, BODY, CONTENT_WIDTH - label_width),
            ];
            self.grid_row(&grid, &cells, &mut header_page);
        }
        self.y -= BLOCK_GAP;
    }

    fn table(&mut self, headers: &[String], rows: &[Vec<String>], widths: &[f32]) {
        if headers.is_empty() && rows.iter().all(Vec::is_empty) {
            return;
        }
        // An empty table says so, rather than showing a header over nothing.
        if rows.is_empty() {
            self.paragraph("None.");
            return;
        }
        let grid = table_grid(headers, rows, widths);
        let mut header_page = None;
        for row in rows {
            let texts: Vec<&str> = row.iter().map(String::as_str).collect();
            let cells = grid.wrap_row(&texts, false);
            self.grid_row(&grid, &cells, &mut header_page);
        }
        self.y -= BLOCK_GAP;
    }

    /// Places one row, keeping it on one page unless it is taller than a page.
    /// `header_page` remembers where the header was last drawn, so it is repeated
    /// exactly once on each page the grid reaches.
    fn grid_row(&mut self, grid: &Grid, cells: &Cells, header_page: &mut Option<usize>) {
        let lines = line_count(cells);
        let mut start = 0;
        while start < lines {
            let needs_header = grid.header.is_some() && *header_page != Some(self.page_index());
            let header_height = if needs_header {
                grid.header_height()
            } else {
                0.0
            };
            let available = self.y - BOTTOM - header_height;
            if grid.height(lines - start) <= available + EPS {
                self.grid_header(grid, header_page);
                self.grid_slice(grid, cells, start, lines, false);
                return;
            }
            let fits_fresh_page =
                grid.height(lines - start) <= TOP - BOTTOM - grid.header_height() + EPS;
            let fitting_lines = ((available - 2.0 * grid.pad_y) / grid.leading + EPS)
                .floor()
                .max(0.0) as usize;
            if !self.fresh && (fits_fresh_page || fitting_lines == 0) {
                self.new_page();
                continue;
            }
            // Taller than a page: fill this page and continue on the next one.
            let end = start + fitting_lines.clamp(1, lines - start);
            self.grid_header(grid, header_page);
            self.grid_slice(grid, cells, start, end, false);
            start = end;
            if start < lines {
                self.new_page();
            }
        }
    }

    fn grid_header(&mut self, grid: &Grid, header_page: &mut Option<usize>) {
        let Some(header) = &grid.header else { return };
        if *header_page == Some(self.page_index()) {
            return;
        }
        *header_page = Some(self.page_index());
        self.grid_slice(grid, header, 0, line_count(header), true);
    }

    /// Draws lines `start..end` of a row at the cursor, with its rules.
    fn grid_slice(&mut self, grid: &Grid, cells: &Cells, start: usize, end: usize, header: bool) {
        let top = self.y;
        let height = grid.height(end - start);
        let bottom = top - height;
        let (left, right) = (grid.left(), grid.right());
        if header {
            self.push(Op::Fill {
                x: left,
                y: bottom,
                w: right - left,
                h: height,
                gray: HEADER_FILL,
            });
            self.push(Op::Line {
                x1: left,
                y1: top,
                x2: right,
                y2: top,
            });
        }
        for ((&(x, _), &style), lines) in grid.columns.iter().zip(&grid.styles).zip(cells) {
            let style = if header { HEADER_CELL } else { style };
            for (i, line) in lines.iter().enumerate().take(end).skip(start) {
                let line_top = top - grid.pad_y - (i - start) as f32 * grid.leading;
                self.text(x + grid.pad_x, line_top, style, line.clone());
            }
        }
        if grid.ruled {
            self.push(Op::Line {
                x1: left,
                y1: bottom,
                x2: right,
                y2: bottom,
            });
            for x in grid.columns.iter().map(|c| c.0).chain([right]) {
                self.push(Op::Line {
                    x1: x,
                    y1: top,
                    x2: x,
                    y2: bottom,
                });
            }
        }
        self.y = bottom;
        self.fresh = false;
    }

    /// Adds "title ... Page N of M" to every page now that M is known, and the running
    /// header (if any) at the top right of every page.
    fn finish(mut self, title: &str, header: &str) -> Vec<Page> {
        let total = self.pages.len();
        let title = encode(title);
        let running = encode(header);
        let style = Style {
            font: Font::Regular,
            size: FOOTER_SIZE,
            leading: FOOTER_SIZE,
        };
        for (i, page) in self.pages.iter_mut().enumerate() {
            let label = format!("Page {} of {}", i + 1, total).into_bytes();
            let label_width = style.font.width(&label, style.size);
            let room = CONTENT_WIDTH - label_width - FOOTER_GAP;
            let left = truncate(&title, style, room);
            page.ops.push(Op::Line {
                x1: LEFT,
                y1: FOOTER_RULE,
                x2: RIGHT,
                y2: FOOTER_RULE,
            });
            if !running.is_empty() {
                let text = truncate(&running, style, CONTENT_WIDTH);
                let width = style.font.width(&text, style.size);
                page.ops.push(Op::Text {
                    x: RIGHT - width,
                    y: HEADER_BASELINE,
                    font: style.font,
                    size: style.size,
                    gray: FOOTER_GRAY,
                    text,
                });
            }
            for (x, text) in [(LEFT, left), (RIGHT - label_width, label)] {
                if !text.is_empty() {
                    page.ops.push(Op::Text {
                        x,
                        y: FOOTER_BASELINE,
                        font: style.font,
                        size: style.size,
                        gray: FOOTER_GRAY,
                        text,
                    });
                }
            }
        }
        self.pages
    }
}

/// Splits the content width between `count` columns by the relative `widths` (equal
/// columns when they are missing or unusable), giving each column at least its entry of
/// `minimums` where the page allows: columns that need more take it from the others in
/// proportion to what those have to spare.
fn column_boxes(count: usize, widths: &[f32], minimums: &[f32]) -> Vec<(f32, f32)> {
    let usable = widths.len() == count && widths.iter().all(|w| w.is_finite() && *w > 0.0);
    let weights: Vec<f32> = if usable {
        widths.to_vec()
    } else {
        vec![1.0; count]
    };
    let total: f32 = weights.iter().sum();
    let mut sizes: Vec<f32> = weights.iter().map(|w| CONTENT_WIDTH * w / total).collect();
    let mins: Vec<f32> = (0..count)
        .map(|i| minimums.get(i).copied().unwrap_or(0.0).max(0.0))
        .collect();
    if mins.iter().sum::<f32>() <= CONTENT_WIDTH {
        // A few rounds settle it: each moves width from columns above their minimum.
        for _ in 0..count {
            let short: f32 = sizes.iter().zip(&mins).map(|(s, m)| (m - s).max(0.0)).sum();
            if short <= EPS {
                break;
            }
            let spare: f32 = sizes.iter().zip(&mins).map(|(s, m)| (s - m).max(0.0)).sum();
            if spare <= EPS {
                break;
            }
            let take = (short / spare).min(1.0);
            for (s, m) in sizes.iter_mut().zip(&mins) {
                if *s < *m {
                    *s = *m;
                } else {
                    *s -= (*s - m) * take;
                }
            }
        }
    }
    let mut x = LEFT;
    let mut boxes = Vec::with_capacity(count);
    for (i, size) in sizes.iter().enumerate() {
        // The last column takes the remainder so rounding never pushes it past the margin.
        let width = if i + 1 == count { RIGHT - x } else { *size };
        boxes.push((x, width));
        x += width;
    }
    boxes
}

/// Expands tabs to 4-column stops, which is what preformatted text expects.
fn expand_tabs(line: &str) -> String {
    if !line.contains('\t') {
        return line.to_owned();
    }
    let mut out = String::with_capacity(line.len() + 8);
    let mut column = 0;
    for c in line.chars() {
        if c == '\t' {
            let spaces = 4 - column % 4;
            out.extend(std::iter::repeat_n(' ', spaces));
            column += spaces;
        } else {
            out.push(c);
            column += 1;
        }
    }
    out
}

/// Cuts `text` to fit `max_width`, marking the cut with "...".
fn truncate(text: &[u8], style: Style, max_width: f32) -> Vec<u8> {
    let limit = units_limit(style, max_width);
    if style.font.units(text) <= limit {
        return text.to_vec();
    }
    let budget = limit.saturating_sub(style.font.units(b"..."));
    let mut used = 0;
    let mut out = Vec::new();
    for &b in text {
        used += style.font.glyph_width(b);
        if used > budget {
            break;
        }
        out.push(b);
    }
    while out.last() == Some(&b' ') {
        out.pop();
    }
    out.extend_from_slice(b"...");
    out
}

/// `max_width` in font units at this size; integer units keep long lines exact.
fn units_limit(style: Style, max_width: f32) -> u32 {
    (max_width.max(0.0) * 1000.0 / style.size).floor() as u32
}

/// Wraps text at spaces to `max_width`, keeping the author's line breaks.
///
/// Words wider than a line (hashes, base64, long URLs) are broken between characters,
/// so no line is ever wider than `max_width` unless a single glyph is.
fn wrap(text: &str, style: Style, max_width: f32) -> Vec<Vec<u8>> {
    let font = style.font;
    let limit = units_limit(style, max_width);
    let space = font.glyph_width(b' ');
    let mut out = Vec::new();
    for source in text.lines() {
        let first = out.len();
        let encoded = encode(source);
        let mut line: Vec<u8> = Vec::new();
        let mut used = 0;
        for word in encoded.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
            let width = font.units(word);
            if !line.is_empty() && used + space + width <= limit {
                line.push(b' ');
                line.extend_from_slice(word);
                used += space + width;
                continue;
            }
            if !line.is_empty() {
                out.push(std::mem::take(&mut line));
                used = 0;
            }
            if width <= limit {
                line.extend_from_slice(word);
                used = width;
                continue;
            }
            for &b in word {
                let w = font.glyph_width(b);
                if !line.is_empty() && used + w > limit {
                    out.push(std::mem::take(&mut line));
                    used = 0;
                }
                line.push(b);
                used += w;
            }
        }
        if !line.is_empty() || out.len() == first {
            out.push(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_ops(pages: &[Page]) -> impl Iterator<Item = (usize, &Op)> {
        pages
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.ops.iter().map(move |op| (i, op)))
    }

    fn texts_on(pages: &[Page], page: usize) -> Vec<String> {
        text_ops(pages)
            .filter(|(i, _)| *i == page)
            .filter_map(|(_, op)| match op {
                Op::Text { text, .. } => Some(String::from_utf8_lossy(text).into_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn table_headers_never_break_inside_a_word() {
        let headers: Vec<String> = [
            "Seq",
            "Mandate",
            "Threshold",
            "Certificate",
            "Fingerprint",
            "Revocation",
            "Reason",
            "Approved",
        ]
        .iter()
        .map(|h| (*h).to_owned())
        .collect();
        let widths = [0.3, 0.5, 0.4, 0.5, 3.0, 0.5, 0.5, 0.5];
        let grid = table_grid(&headers, &[], &widths);
        let header = grid.header.as_ref().unwrap();
        for (cell, name) in header.iter().zip(&headers) {
            assert_eq!(cell.len(), 1, "{name} wrapped: {cell:?}");
            assert_eq!(cell[0], name.as_bytes());
        }
        // The page width is still shared out: the last column ends at the margin.
        let last = grid.columns.last().unwrap();
        assert!((last.0 + last.1 - RIGHT).abs() < 0.01);
    }

    #[test]
    fn a_heading_goes_with_the_header_and_first_row_of_its_table() {
        let filler = "line\n".repeat(52);
        let row = vec!["a".to_owned(), "tall\ncell\nof\nfive\nlines".to_owned()];
        let doc = Document {
            header: "Report rep_1".into(),
            title: String::new(),
            blocks: vec![
                Block::Paragraph(filler),
                Block::Heading("Certificates".into()),
                Block::Table {
                    headers: vec!["Serial".into(), "Status".into()],
                    rows: vec![row],
                    widths: vec![],
                },
                Block::Heading("Kill switches".into()),
                Block::Table {
                    headers: vec!["When".into()],
                    rows: vec![],
                    widths: vec![],
                },
            ],
        };
        let pages = layout(&doc);
        let first = texts_on(&pages, 0);
        let second = texts_on(&pages, 1);
        assert!(!first.iter().any(|t| t == "Certificates"), "{first:?}");
        assert!(second.iter().any(|t| t == "Certificates"), "{second:?}");
        assert!(second.iter().any(|t| t == "Serial"), "{second:?}");
        // An empty table says so; every page carries the running header.
        assert!(second.iter().any(|t| t == "None."), "{second:?}");
        assert!(!second.iter().any(|t| t == "When"), "{second:?}");
        for p in 0..pages.len() {
            assert!(texts_on(&pages, p).iter().any(|t| t == "Report rep_1"));
        }
    }

    #[test]
    fn wrap_respects_width_and_keeps_words() {
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(20);
        let lines = wrap(&text, BODY, 200.0);
        assert!(lines.len() > 5);
        for line in &lines {
            assert!(
                BODY.font.width(line, BODY.size) <= 200.0,
                "{}",
                String::from_utf8_lossy(line)
            );
            assert!(!line.starts_with(b" ") && !line.ends_with(b" "));
        }
        let joined: Vec<u8> = lines.join(&b' ');
        assert_eq!(joined, text.trim_end().as_bytes());
    }

    #[test]
    fn wrap_hard_breaks_long_words() {
        let hash = "0123456789abcdef".repeat(8);
        let lines = wrap(&format!("sha256 {hash} end"), CELL, 60.0);
        for line in &lines {
            assert!(CELL.font.width(line, CELL.size) <= 60.0);
        }
        let joined: Vec<u8> = lines.concat().into_iter().filter(|&b| b != b' ').collect();
        assert_eq!(joined, format!("sha256{hash}end").as_bytes());
    }

    #[test]
    fn wrap_keeps_blank_lines_and_narrow_columns_progress() {
        assert_eq!(
            wrap("a\n\nb", BODY, 100.0),
            vec![b"a".to_vec(), vec![], b"b".to_vec()]
        );
        assert_eq!(wrap("", BODY, 100.0), Vec::<Vec<u8>>::new());
        assert_eq!(
            wrap("abc", BODY, 0.0),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
    }

    #[test]
    fn nothing_leaves_the_content_box() {
        let long = "f".repeat(40) + &"0123456789abcdef".repeat(20);
        let doc = Document {
            header: String::new(),
            title: "Bounds ".repeat(30),
            blocks: vec![
                Block::Heading(long.clone()),
                Block::Paragraph(long.clone()),
                Block::KeyValues(vec![(long.clone(), long.clone())]),
                Block::Table {
                    headers: vec!["a".into(), long.clone(), "c".into()],
                    rows: vec![vec![long.clone(), long.clone(), long.clone()]; 50],
                    widths: vec![1.0, 2.0, 0.5],
                },
                Block::Mono(format!("{long}\n\tindented")),
            ],
        };
        let pages = layout(&doc);
        for (page, op) in text_ops(&pages) {
            match op {
                Op::Text {
                    x,
                    y,
                    font,
                    size,
                    text,
                    gray,
                } => {
                    let right = x + font.width(text, *size);
                    assert!(
                        *x >= LEFT && right <= RIGHT + EPS,
                        "page {page}: x {x}..{right}"
                    );
                    // Body text stays above the bottom margin; only the footer is below it.
                    let floor = if *gray == 0.0 {
                        BOTTOM
                    } else {
                        FOOTER_BASELINE
                    };
                    assert!(
                        *y >= floor && *y + ASCENT * size <= TOP + EPS,
                        "page {page}: y {y}"
                    );
                }
                Op::Line { x1, x2, y1, y2 } => {
                    assert!(x1.min(*x2) >= LEFT - EPS && x1.max(*x2) <= RIGHT + EPS);
                    assert!(y1.min(*y2) >= FOOTER_RULE - EPS && y1.max(*y2) <= TOP + EPS);
                }
                Op::Fill { x, w, .. } => assert!(*x >= LEFT && x + w <= RIGHT + EPS),
            }
        }
    }

    #[test]
    fn rows_stay_whole_and_header_repeats() {
        let rows: Vec<Vec<String>> = (0..300)
            .map(|i| vec![format!("r{i}"), format!("line one\nline two {i}")])
            .collect();
        let doc = Document {
            header: String::new(),
            title: "T".into(),
            blocks: vec![Block::Table {
                headers: vec!["H1".into(), "H2".into()],
                rows,
                widths: vec![],
            }],
        };
        let pages = layout(&doc);
        assert!(pages.len() > 2);
        for (i, page) in pages.iter().enumerate() {
            let texts: Vec<&[u8]> = page
                .ops
                .iter()
                .filter_map(|op| match op {
                    Op::Text { text, .. } => Some(text.as_slice()),
                    _ => None,
                })
                .collect();
            assert_eq!(
                texts.iter().filter(|t| **t == b"H1").count(),
                1,
                "header on page {i}"
            );
            // Both lines of a row's second cell land on the same page.
            let firsts = texts.iter().filter(|t| **t == b"line one").count();
            let seconds = texts.iter().filter(|t| t.starts_with(b"line two")).count();
            assert_eq!(firsts, seconds, "row split on page {i}");
        }
    }

    #[test]
    fn rows_taller_than_a_page_are_split() {
        let tall = (0..200)
            .map(|i| format!("line {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        let doc = Document {
            header: String::new(),
            title: String::new(),
            blocks: vec![Block::Table {
                headers: vec!["H".into()],
                rows: vec![vec!["short".into()], vec![tall]],
                widths: vec![1.0],
            }],
        };
        let pages = layout(&doc);
        assert!(pages.len() >= 3);
        let mut seen = 0;
        for page in &pages {
            for op in &page.ops {
                if let Op::Text { y, text, .. } = op {
                    assert!(*y >= FOOTER_BASELINE);
                    if text.starts_with(b"line ") {
                        assert_eq!(*text, format!("line {seen}").into_bytes());
                        seen += 1;
                    }
                }
            }
        }
        assert_eq!(seen, 200);
        // "short" is on page 1 with the start of the tall row: no wasted page.
        assert!(
            pages[0]
                .ops
                .iter()
                .any(|op| matches!(op, Op::Text { text, .. } if text == b"line 0"))
        );
    }

    #[test]
    fn page_breaks_never_make_blank_pages() {
        let doc = Document {
            header: String::new(),
            title: String::new(),
            blocks: vec![
                Block::PageBreak,
                Block::Paragraph("one".into()),
                Block::PageBreak,
                Block::PageBreak,
                Block::Paragraph("two".into()),
            ],
        };
        assert_eq!(layout(&doc).len(), 2);
    }

    #[test]
    fn column_widths() {
        let boxes = column_boxes(3, &[1.0, 2.0, 1.0], &[]);
        assert!((boxes[1].1 - CONTENT_WIDTH / 2.0).abs() < 0.01);
        assert_eq!(boxes[2].0 + boxes[2].1, RIGHT);
        let equal = column_boxes(2, &[1.0], &[]);
        assert!((equal[0].1 - equal[1].1).abs() < 0.01);
        assert_eq!(
            column_boxes(2, &[1.0, f32::NAN], &[]),
            column_boxes(2, &[], &[])
        );
    }

    #[test]
    fn footer_truncates_long_titles() {
        let style = Style {
            font: Font::Regular,
            size: FOOTER_SIZE,
            leading: FOOTER_SIZE,
        };
        let cut = truncate(&"x".repeat(500).into_bytes(), style, 100.0);
        assert!(cut.ends_with(b"..."));
        assert!(style.font.width(&cut, style.size) <= 100.0);
        assert_eq!(truncate(b"short", style, 100.0), b"short");
    }

    #[test]
    fn tabs_expand_to_stops() {
        assert_eq!(expand_tabs("a\tb\t\tc"), "a   b       c");
    }
}
