//! Serialises laid-out pages as a PDF 1.4 file: objects, xref table and trailer.
//!
//! Object numbers are fixed up front (the shared objects first, then a page object and
//! its content stream per page), so every reference is known before it is written and
//! the file comes out in one pass in object order.

use crate::fonts::Font;
use crate::layout::{Op, PAGE_HEIGHT, PAGE_WIDTH, Page};

const CATALOG: usize = 1;
const PAGES: usize = 2;
const RESOURCES: usize = 3;
const FIRST_FONT: usize = 4;
const INFO: usize = FIRST_FONT + Font::ALL.len();
const FIRST_PAGE: usize = INFO + 1;

fn page_id(index: usize) -> usize {
    FIRST_PAGE + 2 * index
}

fn font_id(font: Font) -> usize {
    FIRST_FONT + Font::ALL.iter().position(|f| *f == font).unwrap_or(0)
}

/// Line width and grey of every rule; set once per page.
const RULE_STYLE: &[u8] = b"0.5 w 0.6 G\n";

pub(crate) fn write(title: &str, pages: &[Page]) -> Vec<u8> {
    let mut w = Writer {
        out: Vec::new(),
        offsets: Vec::new(),
    };
    // The comment with high bytes tells transfer tools the file is binary.
    w.out.extend_from_slice(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");

    w.object(
        CATALOG,
        format!("<< /Type /Catalog /Pages {PAGES} 0 R >>").as_bytes(),
    );
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", page_id(i)))
        .collect();
    let pages_dict = format!(
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        kids.join(" "),
        pages.len()
    );
    w.object(PAGES, pages_dict.as_bytes());
    let fonts: Vec<String> = Font::ALL
        .iter()
        .map(|&f| format!("/{} {} 0 R", f.resource_name(), font_id(f)))
        .collect();
    w.object(
        RESOURCES,
        format!("<< /Font << {} >> >>", fonts.join(" ")).as_bytes(),
    );
    for font in Font::ALL {
        let dict = format!(
            "<< /Type /Font /Subtype /Type1 /BaseFont /{} /Encoding /WinAnsiEncoding >>",
            font.base_font()
        );
        w.object(font_id(font), dict.as_bytes());
    }
    let mut info = b"<< /Title ".to_vec();
    text_string(&mut info, title);
    info.extend_from_slice(b" /Producer (mandate) >>");
    w.object(INFO, &info);

    for (i, page) in pages.iter().enumerate() {
        let id = page_id(i);
        let dict = format!(
            "<< /Type /Page /Parent {PAGES} 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] \
             /Resources {RESOURCES} 0 R /Contents {} 0 R >>",
            id + 1
        );
        w.object(id, dict.as_bytes());
        w.stream(id + 1, &content(page));
    }
    w.finish()
}

struct Writer {
    out: Vec<u8>,
    /// Byte offset of object `i + 1`.
    offsets: Vec<usize>,
}

impl Writer {
    fn begin(&mut self, id: usize) {
        debug_assert_eq!(
            id,
            self.offsets.len() + 1,
            "objects must be written in order"
        );
        self.offsets.push(self.out.len());
        self.out
            .extend_from_slice(format!("{id} 0 obj\n").as_bytes());
    }

    fn object(&mut self, id: usize, body: &[u8]) {
        self.begin(id);
        self.out.extend_from_slice(body);
        self.out.extend_from_slice(b"\nendobj\n");
    }

    fn stream(&mut self, id: usize, data: &[u8]) {
        self.begin(id);
        self.out
            .extend_from_slice(format!("<< /Length {} >>\nstream\n", data.len()).as_bytes());
        self.out.extend_from_slice(data);
        // The end-of-line before `endstream` is not part of the data (ISO 32000 7.3.8.1).
        self.out.extend_from_slice(b"\nendstream\nendobj\n");
    }

    fn finish(mut self) -> Vec<u8> {
        let xref = self.out.len();
        let size = self.offsets.len() + 1;
        self.out
            .extend_from_slice(format!("xref\n0 {size}\n").as_bytes());
        // Entries are exactly 20 bytes: the two-byte end of line is " \n".
        self.out.extend_from_slice(b"0000000000 65535 f \n");
        for offset in &self.offsets {
            self.out
                .extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
        }
        self.out.extend_from_slice(
            format!(
                "trailer\n<< /Size {size} /Root {CATALOG} 0 R /Info {INFO} 0 R >>\n\
                 startxref\n{xref}\n%%EOF\n"
            )
            .as_bytes(),
        );
        self.out
    }
}

/// The content stream of one page. Numbers and strings are written by hand rather
/// than through `format!`, because a big table means hundreds of thousands of them.
fn content(page: &Page) -> Vec<u8> {
    let mut out = Vec::with_capacity(RULE_STYLE.len() + page.ops.len() * 48);
    out.extend_from_slice(RULE_STYLE);
    // The graphics state starts with a black fill.
    let mut fill = 0.0_f32;
    for op in &page.ops {
        match op {
            Op::Text {
                x,
                y,
                font,
                size,
                gray,
                text,
            } => {
                set_fill(&mut out, &mut fill, *gray);
                out.extend_from_slice(b"BT /");
                out.extend_from_slice(font.resource_name().as_bytes());
                numbers(&mut out, &[*size]);
                out.extend_from_slice(b" Tf");
                numbers(&mut out, &[*x, *y]);
                out.extend_from_slice(b" Td (");
                escape(&mut out, text);
                out.extend_from_slice(b") Tj ET\n");
            }
            Op::Line { x1, y1, x2, y2 } => {
                numbers(&mut out, &[*x1, *y1]);
                out.extend_from_slice(b" m");
                numbers(&mut out, &[*x2, *y2]);
                out.extend_from_slice(b" l S\n");
            }
            Op::Fill { x, y, w, h, gray } => {
                set_fill(&mut out, &mut fill, *gray);
                numbers(&mut out, &[*x, *y, *w, *h]);
                out.extend_from_slice(b" re f\n");
            }
        }
    }
    out
}

fn set_fill(out: &mut Vec<u8>, current: &mut f32, gray: f32) {
    if (gray - *current).abs() > f32::EPSILON {
        numbers(out, &[gray]);
        out.extend_from_slice(b" g\n");
        *current = gray;
    }
}

/// Writes each number preceded by a space, rounded to 1/100 pt (far below what any
/// device resolves) and without trailing zeros, so output is short and reproducible.
fn numbers(out: &mut Vec<u8>, values: &[f32]) {
    for &value in values {
        if out.last().is_some_and(|b| !b.is_ascii_whitespace()) {
            out.push(b' ');
        }
        let hundredths = (f64::from(value) * 100.0).round() as i64;
        if hundredths < 0 {
            out.push(b'-');
        }
        let abs = hundredths.unsigned_abs();
        integer(out, abs / 100);
        let frac = abs % 100;
        if frac != 0 {
            out.push(b'.');
            out.push(b'0' + (frac / 10) as u8);
            if !frac.is_multiple_of(10) {
                out.push(b'0' + (frac % 10) as u8);
            }
        }
    }
}

fn integer(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0_u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Escapes bytes for a literal string. Line ends are escaped too, since a raw one in a
/// string is read back as a plain `\n` whatever it was.
fn escape(out: &mut Vec<u8>, text: &[u8]) {
    for &b in text {
        match b {
            b'(' | b')' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// A PDF text string (document information): a literal when the text is printable
/// ASCII, otherwise UTF-16BE with a byte order mark, which carries any Unicode text
/// (the Info dictionary is metadata, not drawn, so it is not limited to WinAnsi).
fn text_string(out: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        out.push(b'(');
        escape(out, text.as_bytes());
        out.push(b')');
        return;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(b"<FEFF");
    for unit in text.encode_utf16() {
        for byte in unit.to_be_bytes() {
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        }
    }
    out.push(b'>');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Block, Document, render};

    fn sample() -> Document {
        Document {
            header: String::new(),
            title: "Xref (check) \\ test".into(),
            blocks: vec![
                Block::Heading("Heading".into()),
                Block::Paragraph("Some text (with parentheses) and a \\ backslash. ".repeat(40)),
                Block::Table {
                    headers: vec!["a".into(), "b".into()],
                    rows: (0..150)
                        .map(|i| vec![format!("row {i}"), "x".repeat(i)])
                        .collect(),
                    widths: vec![],
                },
                Block::Mono("{\"json\": true}".into()),
            ],
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).rposition(|w| w == needle)
    }

    fn ascii_number(bytes: &[u8]) -> usize {
        std::str::from_utf8(bytes).unwrap().trim().parse().unwrap()
    }

    #[test]
    fn xref_offsets_point_at_their_objects() {
        let pdf = render(&sample());
        assert!(pdf.starts_with(b"%PDF-1.4\n%"));
        assert!(pdf.ends_with(b"%%EOF\n"));

        let startxref = rfind(&pdf, b"startxref\n").unwrap();
        let tail = &pdf[startxref + b"startxref\n".len()..];
        let xref = ascii_number(&tail[..tail.iter().position(|&b| b == b'\n').unwrap()]);
        assert!(pdf[xref..].starts_with(b"xref\n0 "));

        let header_end = xref + 5 + pdf[xref + 5..].iter().position(|&b| b == b'\n').unwrap();
        let size = ascii_number(&pdf[xref + 7..header_end]);
        let trailer = &pdf[rfind(&pdf, b"trailer\n").unwrap()..];
        assert!(find(trailer, format!("/Size {size} ").as_bytes()).is_some());
        assert!(find(trailer, b"/Root 1 0 R").is_some());
        assert!(find(trailer, b"/Info ").is_some());

        let entries = &pdf[header_end + 1..header_end + 1 + 20 * size];
        assert_eq!(&entries[..20], b"0000000000 65535 f \n");
        for (id, entry) in entries.chunks(20).enumerate().skip(1) {
            assert_eq!(&entry[10..], b" 00000 n \n", "entry {id}");
            let offset = ascii_number(&entry[..10]);
            let expected = format!("{id} 0 obj\n");
            assert!(
                pdf[offset..].starts_with(expected.as_bytes()),
                "object {id} at {offset}"
            );
        }
        assert!(pdf[header_end + 1 + 20 * size..].starts_with(b"trailer\n"));
    }

    #[test]
    fn stream_lengths_are_exact() {
        let pdf = render(&sample());
        let mut rest = pdf.as_slice();
        let mut streams = 0;
        while let Some(at) = find(rest, b"<< /Length ") {
            rest = &rest[at + b"<< /Length ".len()..];
            let digits = rest.iter().position(|&b| b == b' ').unwrap();
            let length = ascii_number(&rest[..digits]);
            rest = &rest[digits..];
            assert!(rest.starts_with(b" >>\nstream\n"));
            rest = &rest[b" >>\nstream\n".len()..];
            assert!(rest[length..].starts_with(b"\nendstream\nendobj\n"));
            streams += 1;
        }
        assert!(streams > 1);
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = Vec::new();
        escape(&mut out, b"a(b)c\\d");
        assert_eq!(out, b"a\\(b\\)c\\\\d");
        let pdf = render(&sample());
        assert!(find(&pdf, b"/Title (Xref \\(check\\) \\\\ test)").is_some());
    }

    #[test]
    fn non_ascii_titles_are_utf16() {
        let mut out = Vec::new();
        text_string(&mut out, "é→");
        assert_eq!(out, b"<FEFF00E92192>");
    }

    #[test]
    fn numbers_are_compact() {
        let mut out = Vec::new();
        numbers(&mut out, &[0.0, 12.5, -3.256, 595.0, 0.004, -0.001, 100.1]);
        assert_eq!(out, b"0 12.5 -3.26 595 0 0 100.1");
    }

    #[test]
    fn output_is_deterministic() {
        assert_eq!(render(&sample()), render(&sample()));
    }
}
