//! Checks rendered files with independent PDF tools: qpdf validates the structure,
//! poppler (pdfinfo, pdftoppm, pdftotext) parses, rasterises and extracts them.
//!
//! The tools come from the `qpdf` and `poppler-utils` packages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mandate_pdf::{Block, Document, render};

/// A scratch directory removed on drop; named after the process and test so parallel
/// tests and concurrent runs do not collide.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mandate-pdf-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, file: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(file);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run<S: AsRef<OsStr>>(tool: &str, args: impl IntoIterator<Item = S>) -> Output {
    let package = if tool == "qpdf" {
        "qpdf"
    } else {
        "poppler-utils"
    };
    match Command::new(tool).args(args).output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "`{tool}` is not installed; these tests need it (install the `{package}` package, \
             e.g. `apt-get install {package}`)"
        ),
        Err(e) => panic!("could not run `{tool}`: {e}"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `qpdf --check` exits 0 only without errors and without warnings (3 means warnings).
fn assert_qpdf_clean(file: &Path) {
    let out = run("qpdf", [OsStr::new("--check"), file.as_os_str()]);
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "qpdf --check failed:\n{report}");
    assert!(
        !report.to_ascii_lowercase().contains("warning"),
        "qpdf warned:\n{report}"
    );
    assert!(
        report.contains("No syntax or stream encoding errors"),
        "{report}"
    );
}

fn pdfinfo(file: &Path) -> String {
    let out = run("pdfinfo", [file]);
    assert!(
        out.status.success(),
        "pdfinfo failed: {}",
        text(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "pdfinfo complained: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn info_field(info: &str, field: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .unwrap_or_else(|| panic!("no {field} in pdfinfo output:\n{info}"))
        .trim()
        .to_owned()
}

/// Extracted text, `mode` being a pdftotext option such as `-layout`.
fn pdftotext(file: &Path, mode: &str) -> String {
    // "-" as the output file means stdout.
    let args = [
        OsStr::new(mode),
        OsStr::new("-enc"),
        OsStr::new("UTF-8"),
        file.as_os_str(),
    ];
    let out = run("pdftotext", args.into_iter().chain([OsStr::new("-")]));
    assert!(
        out.status.success(),
        "pdftotext failed: {}",
        text(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "pdftotext complained: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn hex(seed: usize, len: usize) -> String {
    // A cheap deterministic pseudo-random hex string (an LCG), long enough to stand in
    // for hashes and signatures.
    let mut state = (seed as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            char::from_digit(((state >> 33) % 16) as u32, 16).unwrap()
        })
        .collect()
}

const TITLE: &str = "Mandate audit extract 2025-Q3";

fn audit_document(rows: usize) -> Document {
    let rows = (0..rows)
        .map(|i| {
            vec![
                format!("entry-{i:04}"),
                format!("2025-09-{:02}T12:{:02}:00Z issue", i % 28 + 1, i % 60),
                // 128 hex digits: wider than its column, so it has to be hard-broken.
                format!("sha512:{}", hex(i, 128)),
            ]
        })
        .collect();
    Document {
        header: String::new(),
        title: TITLE.into(),
        blocks: vec![
            Block::Heading("Summary".into()),
            Block::Paragraph(
                "This extract lists every event recorded by the certificate authority in the \
                 period, with the hash chaining each entry to the previous one. "
                    .repeat(6),
            ),
            Block::KeyValues(vec![
                (
                    "Issuer".into(),
                    "CN=Mandate Intermediate CA 1, O=Mandate".into(),
                ),
                ("Period".into(), "2025-07-01 to 2025-09-30".into()),
                ("Checkpoint hash".into(), hex(9999, 160)),
            ]),
            Block::Heading("Audit log".into()),
            Block::Table {
                headers: vec!["Entry".into(), "Event".into(), "Hash".into()],
                rows,
                widths: vec![1.0, 2.0, 3.0],
            },
            Block::Heading("Checkpoint signature".into()),
            Block::Mono(format!(
                "{{\n\t\"alg\": \"ES256\",\n\t\"sig\": \"{}\"\n}}",
                hex(7, 300)
            )),
        ],
    }
}

fn without_whitespace(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn audit_report_is_valid_and_readable() {
    let scratch = Scratch::new("audit");
    let doc = audit_document(200);
    let file = scratch.write("audit.pdf", &render(&doc));

    assert_qpdf_clean(&file);

    let info = pdfinfo(&file);
    let pages: usize = info_field(&info, "Pages").parse().unwrap();
    assert!(pages > 1, "expected several pages:\n{info}");
    assert_eq!(info_field(&info, "Title"), TITLE);
    assert_eq!(info_field(&info, "Producer"), "mandate");
    assert_eq!(info_field(&info, "Page size"), "595 x 842 pts (A4)");

    // Every page rasterises, silently.
    let prefix = scratch.0.join("page");
    let args = ["-r", "40", "-png"].map(OsStr::new);
    let out = run(
        "pdftoppm",
        args.into_iter()
            .chain([file.as_os_str(), prefix.as_os_str()]),
    );
    assert!(
        out.status.success(),
        "pdftoppm failed: {}",
        text(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "pdftoppm complained: {}",
        text(&out.stderr)
    );
    let pngs = std::fs::read_dir(&scratch.0)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    assert_eq!(pngs, pages);

    let layout = pdftotext(&file, "-layout");
    assert!(layout.contains(TITLE));
    assert!(layout.contains("Audit log"));
    assert!(layout.contains("Checkpoint signature"));
    assert!(layout.contains("entry-0197"), "late table row missing");
    assert_eq!(
        layout.matches('\u{c}').count(),
        pages,
        "one form feed per page"
    );
    for page in 1..=pages {
        assert!(
            layout.contains(&format!("Page {page} of {pages}")),
            "footer of page {page}"
        );
    }
    // The header row is repeated on every page the table spans.
    assert!(layout.matches("Hash").count() >= pages - 1);

    // Hard-broken values lose no characters: in content order, the pieces of one cell
    // are consecutive.
    let raw = without_whitespace(&pdftotext(&file, "-raw"));
    assert!(
        raw.contains(&format!("sha512:{}", hex(197, 128))),
        "hash of row 197"
    );
    assert!(raw.contains(&hex(9999, 160)), "checkpoint hash");
    assert!(raw.contains(&hex(7, 300)), "signature");
}

#[test]
fn text_stays_inside_the_margins() {
    let scratch = Scratch::new("bounds");
    let file = scratch.write("bounds.pdf", &render(&audit_document(200)));
    // pdftotext measures words with its own copy of the font metrics, so this also
    // checks that our wrapping widths are the real ones.
    let html = pdftotext(&file, "-bbox");
    let mut words = 0;
    for word in html.split("<word ").skip(1) {
        let attr = |name: &str| -> f64 {
            let start = word.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            word[start..start + word[start..].find('"').unwrap()]
                .parse()
                .unwrap()
        };
        let (x_min, x_max) = (attr("xMin"), attr("xMax"));
        assert!(
            x_min >= 49.5 && x_max <= 545.5,
            "word outside margins: {word}"
        );
        // y grows downwards here; the footer sits in the bottom margin, above the edge.
        let (y_min, y_max) = (attr("yMin"), attr("yMax"));
        assert!(
            y_min >= 45.0 && y_max <= 822.0,
            "word outside the page body: {word}"
        );
        words += 1;
    }
    assert!(words > 1000);
}

#[test]
fn non_ascii_text_survives() {
    let scratch = Scratch::new("latin");
    let title = "Rapport d’activité — été 2025";
    let doc = Document {
        header: String::new(),
        title: title.into(),
        blocks: vec![
            Block::Heading("Résumé".into()),
            Block::Paragraph(
                "Café crème, naïve façade, Straße, Łódź → Kraków … 日本 🙂 (unbalanced ( and \\)"
                    .into(),
            ),
            Block::KeyValues(vec![("Émetteur".into(), "CN=Société Générale Test".into())]),
            Block::Table {
                headers: vec!["Clé".into(), "Valeur".into()],
                rows: vec![vec!["Ünïcödé".into(), "ça marche".into()]],
                widths: vec![],
            },
            Block::Mono("naïve\tmono".into()),
        ],
    };
    let file = scratch.write("latin.pdf", &render(&doc));
    assert_qpdf_clean(&file);
    assert_eq!(info_field(&pdfinfo(&file), "Title"), title);

    let layout = pdftotext(&file, "-layout");
    for expected in [
        "Rapport d'activité - été 2025",
        "Résumé",
        "Café crème, naïve façade, Straße, Lódz -> Kraków ... ?? ? (unbalanced ( and \\)",
        "Émetteur",
        "Société Générale",
        "Ünïcödé",
        "ça marche",
        "Page 1 of 1",
    ] {
        assert!(
            layout.contains(expected),
            "missing {expected:?} in:\n{layout}"
        );
    }
    // pdftotext re-spaces columns, so only check the tab became spacing on one line.
    let mono = layout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>());
    assert!(
        mono.into_iter().any(|words| words == ["naïve", "mono"]),
        "{layout}"
    );
}

#[test]
fn rendering_is_deterministic() {
    let doc = audit_document(50);
    assert_eq!(render(&doc), render(&doc));
}

#[test]
fn large_extract_is_valid() {
    let scratch = Scratch::new("large");
    let doc = audit_document(3000);
    let started = std::time::Instant::now();
    let pdf = render(&doc);
    let elapsed = started.elapsed();
    let file = scratch.write("large.pdf", &pdf);
    assert_qpdf_clean(&file);
    let pages: usize = info_field(&pdfinfo(&file), "Pages").parse().unwrap();
    assert!(pages > 100, "{pages} pages");
    // Generous: a linear layout takes well under a second even unoptimised.
    assert!(
        elapsed.as_secs() < 20,
        "rendering 3000 rows took {elapsed:?}"
    );
}
