//! The three standard-14 fonts we use, their glyph widths and the text encoding.
//!
//! Standard-14 fonts are not embedded, so the viewer substitutes its own copy; the
//! widths below are the ones from Adobe's AFM files, which is what every conforming
//! viewer (and pdftotext) lays the glyphs out with. Measuring with anything else
//! would make wrapped lines overrun the margins.

/// A font resource on every page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Font {
    Regular,
    Bold,
    Mono,
}

impl Font {
    /// Every font, in resource order (`/F1`, `/F2`, `/F3`).
    pub(crate) const ALL: [Font; 3] = [Font::Regular, Font::Bold, Font::Mono];

    pub(crate) fn resource_name(self) -> &'static str {
        match self {
            Font::Regular => "F1",
            Font::Bold => "F2",
            Font::Mono => "F3",
        }
    }

    pub(crate) fn base_font(self) -> &'static str {
        match self {
            Font::Regular => "Helvetica",
            Font::Bold => "Helvetica-Bold",
            Font::Mono => "Courier",
        }
    }

    /// Advance width of one WinAnsi byte, in 1/1000 em.
    pub(crate) fn glyph_width(self, byte: u8) -> u32 {
        let (ascii, latin1) = match self {
            Font::Regular => (&HELVETICA_ASCII, &HELVETICA_LATIN1),
            Font::Bold => (&HELVETICA_BOLD_ASCII, &HELVETICA_BOLD_LATIN1),
            Font::Mono => return COURIER_WIDTH,
        };
        let width = match byte {
            32..=126 => ascii[usize::from(byte - 32)],
            160..=255 => latin1[usize::from(byte - 160)],
            // `encode` never produces other bytes; an average width keeps this total.
            _ => 556,
        };
        u32::from(width)
    }

    /// Width of encoded text in 1/1000 em.
    pub(crate) fn units(self, text: &[u8]) -> u32 {
        text.iter().map(|&b| self.glyph_width(b)).sum()
    }

    /// Width of encoded text in points at `size`.
    pub(crate) fn width(self, text: &[u8], size: f32) -> f32 {
        self.units(text) as f32 * size / 1000.0
    }
}

const COURIER_WIDTH: u32 = 600;

// Helvetica AFM widths for WinAnsi 32..=126 (note 39 is quotesingle and 96 is grave
// in WinAnsi, not the curly quotes of StandardEncoding).
const HELVETICA_ASCII: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, //
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, //
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, //
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, //
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, //
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

// Helvetica AFM widths for WinAnsi 160..=255 (the Latin-1 block).
const HELVETICA_LATIN1: [u16; 96] = [
    278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333, //
    400, 584, 333, 333, 333, 578, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611, //
    667, 667, 667, 667, 667, 667, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278, //
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611, //
    556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278, //
    556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500,
];

// Helvetica-Bold AFM widths for WinAnsi 32..=126.
const HELVETICA_BOLD_ASCII: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, //
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, //
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, //
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, //
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, //
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
];

// Helvetica-Bold AFM widths for WinAnsi 160..=255.
const HELVETICA_BOLD_LATIN1: [u16; 96] = [
    278, 333, 556, 556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 333, 737, 333, //
    400, 584, 333, 333, 333, 611, 556, 278, 333, 333, 365, 556, 834, 834, 834, 611, //
    722, 722, 722, 722, 722, 722, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278, //
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611, //
    556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278, 278, //
    611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556,
];

// ASCII spelling of U+0100..=U+017F (Latin Extended-A), so names such as "Łukasz" or
// "Dvořák" stay readable instead of turning into question marks.
const LATIN_EXTENDED_A: [&str; 128] = [
    "A", "a", "A", "a", "A", "a", "C", "c", "C", "c", "C", "c", "C", "c", "D", "d", //
    "D", "d", "E", "e", "E", "e", "E", "e", "E", "e", "E", "e", "G", "g", "G", "g", //
    "G", "g", "G", "g", "H", "h", "H", "h", "I", "i", "I", "i", "I", "i", "I", "i", //
    "I", "i", "IJ", "ij", "J", "j", "K", "k", "k", "L", "l", "L", "l", "L", "l", "L", //
    "l", "L", "l", "N", "n", "N", "n", "N", "n", "n", "N", "n", "O", "o", "O", "o", //
    "O", "o", "OE", "oe", "R", "r", "R", "r", "R", "r", "S", "s", "S", "s", "S", "s", //
    "S", "s", "T", "t", "T", "t", "T", "t", "U", "u", "U", "u", "U", "u", "U", "u", //
    "U", "u", "U", "u", "W", "w", "Y", "y", "Y", "Z", "z", "Z", "z", "Z", "z", "s",
];

/// Encodes text as WinAnsi bytes that all three fonts can show.
///
/// Latin-1 maps to itself (WinAnsi agrees with Latin-1 on 160..=255), typographic
/// punctuation becomes its ASCII spelling and anything else becomes `?`. Line breaks
/// and tabs become spaces: callers that care about them split the text first.
pub(crate) fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        push_char(c, &mut out);
    }
    out
}

fn push_char(c: char, out: &mut Vec<u8>) {
    let ascii: &str = match c {
        ' '..='~' => {
            out.push(c as u8);
            return;
        }
        '\t' | '\n' | '\r' => " ",
        // A soft hyphen is only a break hint; we do not hyphenate, so drop it.
        '\u{ad}' => "",
        '\u{a0}'..='\u{ff}' => {
            out.push(c as u32 as u8);
            return;
        }
        '\u{100}'..='\u{17f}' => LATIN_EXTENDED_A[c as usize - 0x100],
        // Decomposed accents ("e" + U+0301): keeping the base letter reads better than "e?".
        '\u{300}'..='\u{36f}' => "",
        '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}' => "",
        '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}' => " ",
        '\u{2010}'..='\u{2015}' | '\u{2212}' => "-",
        '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}' | '\u{2032}' => "'",
        '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{201f}' | '\u{2033}' => "\"",
        '\u{2039}' => "<",
        '\u{203a}' => ">",
        '\u{2022}' | '\u{2023}' | '\u{2043}' | '\u{2219}' => "*",
        '\u{2026}' => "...",
        '\u{2190}' => "<-",
        '\u{2192}' => "->",
        '\u{2194}' => "<->",
        '\u{21d0}' => "<=",
        '\u{21d2}' => "=>",
        '\u{21d4}' => "<=>",
        '\u{2264}' => "<=",
        '\u{2265}' => ">=",
        '\u{2260}' => "!=",
        '\u{2248}' => "~",
        '\u{2713}' | '\u{2714}' => "v",
        '\u{2717}' | '\u{2718}' => "x",
        '\u{20ac}' => "EUR",
        '\u{2122}' => "(TM)",
        _ => "?",
    };
    out.extend_from_slice(ascii.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_passes_through() {
        assert_eq!(encode("Hello (world) \\ ~"), b"Hello (world) \\ ~");
    }

    #[test]
    fn latin1_maps_to_winansi() {
        assert_eq!(
            encode("été Ü ß"),
            [0xe9, b't', 0xe9, b' ', 0xdc, b' ', 0xdf]
        );
    }

    #[test]
    fn typography_becomes_ascii() {
        assert_eq!(encode("a — b → c …"), b"a - b -> c ...");
        assert_eq!(encode("\u{201c}q\u{201d} it\u{2019}s"), b"\"q\" it's");
        assert_eq!(encode("Łukasz Dvořák"), b"Lukasz Dvor\xe1k");
        assert_eq!(encode("e\u{301}"), b"e");
    }

    #[test]
    fn everything_else_is_a_question_mark() {
        assert_eq!(encode("日本 \u{1f642}\u{7f}"), b"?? ??");
    }

    #[test]
    fn widths_are_the_afm_ones() {
        // Spot checks against Adobe's Helvetica.afm / Helvetica-Bold.afm.
        assert_eq!(Font::Regular.glyph_width(b'i'), 222);
        assert_eq!(Font::Regular.glyph_width(b'@'), 1015);
        assert_eq!(Font::Regular.glyph_width(b'\''), 191);
        assert_eq!(Font::Bold.glyph_width(b'@'), 975);
        assert_eq!(Font::Bold.glyph_width(b'i'), 278);
        assert_eq!(Font::Regular.glyph_width(0xe9), 556);
        assert_eq!(Font::Bold.glyph_width(0xc6), 1000);
        assert_eq!(Font::Mono.glyph_width(b'W'), 600);
        assert_eq!(Font::Regular.units(b"Page"), 667 + 556 + 556 + 556);
    }
}
