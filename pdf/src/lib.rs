//! Renders simple report documents (audit extracts, certificate reports) to PDF.
//!
//! The PDF is written by hand with no dependencies. Text uses the standard 14 fonts
//! Helvetica, Helvetica-Bold and Courier, which every viewer provides, so nothing is
//! embedded and files stay small. The price is the WinAnsi character set: Latin-1
//! text is shown as is, common typographic characters are spelled in ASCII
//! (`—` as `-`, `→` as `->`, `…` as `...`) and anything else becomes `?`.
//!
//! Output is deterministic (no timestamps or random identifiers), so the same
//! document always renders to the same bytes and a rendered report can be hashed
//! or signed reproducibly.
//!
//! ```
//! use mandate_pdf::{Block, Document, render};
//!
//! let doc = Document {
//!     title: "Issuance report".into(),
//!     header: String::new(),
//!     blocks: vec![
//!         Block::Heading("Summary".into()),
//!         Block::Paragraph("Certificates issued in the period.".into()),
//!         Block::Table {
//!             headers: vec!["Serial".into(), "Subject".into()],
//!             rows: vec![vec!["01".into(), "CN=agent-1".into()]],
//!             widths: vec![1.0, 3.0],
//!         },
//!     ],
//! };
//! let pdf = render(&doc);
//! assert!(pdf.starts_with(b"%PDF-1.4"));
//! ```

mod fonts;
mod layout;
mod writer;

/// A document: a title and blocks laid out top to bottom on A4 pages.
///
/// The title is printed at the top of the first page, in the footer of every page
/// (shortened if needed) and in the document information dictionary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    /// Document title.
    pub title: String,
    /// A running header printed small at the top right of every page (e.g. a report id);
    /// empty for none.
    pub header: String,
    /// Content, in reading order.
    pub blocks: Vec<Block>,
}

/// One piece of content in a [`Document`].
///
/// Text in every block may contain `\n` to force a line break.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A section heading (bold, larger).
    ///
    /// A heading is moved to the next page with the first piece of what follows it (lines of
    /// text, or a table's header and first row) rather than left alone at the bottom of one.
    Heading(String),
    /// Running text, wrapped at the page width.
    Paragraph(String),
    /// Two columns: label (bold) and value (wrapped).
    KeyValues(Vec<(String, String)>),
    /// A table with a header row repeated on each page it spans; cells wrap within their column,
    /// between words (a word wider than its column, such as a hash, breaks between
    /// characters). `widths` are relative column widths (same length as headers); empty means
    /// equal widths. A column is never narrower than the longest word of its header, so headers
    /// never break inside a word. A table without rows prints "None.".
    ///
    /// Widths of the wrong length or with non-positive values also give equal widths.
    /// Rows may be shorter than the header (missing cells are empty) or longer (the
    /// extra cells get columns with an empty header), so no data is dropped. A row is
    /// kept on one page unless it is taller than a page.
    Table {
        /// Header cells, shown bold on a grey background.
        headers: Vec<String>,
        /// Body rows, one `Vec` of cells per row.
        rows: Vec<Vec<String>>,
        /// Relative column widths.
        widths: Vec<f32>,
    },
    /// Preformatted monospace text (hashes, signatures, JSON): lines longer than the page are
    /// hard-wrapped by character.
    ///
    /// Spaces are kept and tabs expand to 4-column stops.
    Mono(String),
    /// Starts a new page.
    ///
    /// Has no effect at the top of a page that is still empty, so it never produces a
    /// blank page.
    PageBreak,
}

/// Renders to a complete PDF 1.4 file.
///
/// Pages are A4 portrait with a footer showing the title and "Page N of M".
/// Layout is linear in the size of the document, so extracts of thousands of table
/// rows are fine.
pub fn render(doc: &Document) -> Vec<u8> {
    let pages = layout::layout(doc);
    writer::write(&doc.title, &pages)
}
