//! A built-in 5×7 bitmap font, so that figures carry titles, axis names and tick values without
//! a font file. Upper-case letters, digits and the punctuation numbers and labels need; lower-case
//! letters are drawn as capitals, other characters as a hollow box.

use super::canvas::{Canvas, Rgb};

/// Glyph width in font pixels (a character cell is one wider).
pub const GLYPH_W: usize = 5;
/// Glyph height in font pixels.
pub const GLYPH_H: usize = 7;

/// The glyphs, row by row from the top, `#` for ink.
#[rustfmt::skip]
const GLYPHS: &[(char, [&str; GLYPH_H])] = &[
    (' ', [".....", ".....", ".....", ".....", ".....", ".....", "....."]),
    ('0', [".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."]),
    ('1', ["..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."]),
    ('2', [".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"]),
    ('3', ["####.", "....#", "....#", ".###.", "....#", "....#", "####."]),
    ('4', ["...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."]),
    ('5', ["#####", "#....", "####.", "....#", "....#", "#...#", ".###."]),
    ('6', ["..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."]),
    ('7', ["#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."]),
    ('8', [".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."]),
    ('9', [".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."]),
    ('A', [".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"]),
    ('B', ["####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."]),
    ('C', [".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."]),
    ('D', ["###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."]),
    ('E', ["#####", "#....", "#....", "####.", "#....", "#....", "#####"]),
    ('F', ["#####", "#....", "#....", "####.", "#....", "#....", "#...."]),
    ('G', [".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"]),
    ('H', ["#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"]),
    ('I', [".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."]),
    ('J', ["..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."]),
    ('K', ["#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"]),
    ('L', ["#....", "#....", "#....", "#....", "#....", "#....", "#####"]),
    ('M', ["#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"]),
    ('N', ["#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"]),
    ('O', [".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."]),
    ('P', ["####.", "#...#", "#...#", "####.", "#....", "#....", "#...."]),
    ('Q', [".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"]),
    ('R', ["####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"]),
    ('S', [".####", "#....", "#....", ".###.", "....#", "....#", "####."]),
    ('T', ["#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."]),
    ('U', ["#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."]),
    ('V', ["#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."]),
    ('W', ["#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."]),
    ('X', ["#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"]),
    ('Y', ["#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."]),
    ('Z', ["#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"]),
    ('.', [".....", ".....", ".....", ".....", ".....", ".##..", ".##.."]),
    (',', [".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."]),
    (':', [".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."]),
    ('-', [".....", ".....", ".....", "#####", ".....", ".....", "....."]),
    ('+', [".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."]),
    ('=', [".....", ".....", "#####", ".....", "#####", ".....", "....."]),
    ('/', ["....#", "....#", "...#.", "..#..", ".#...", "#....", "#...."]),
    ('(', ["...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."]),
    (')', [".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."]),
    (';', [".....", ".##..", ".##..", ".....", ".##..", "..#..", ".#..."]),
    ('[', [".###.", ".#...", ".#...", ".#...", ".#...", ".#...", ".###."]),
    (']', [".###.", "...#.", "...#.", "...#.", "...#.", "...#.", ".###."]),
    ('<', ["...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#."]),
    ('>', [".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..."]),
    ('%', ["##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"]),
    ('_', [".....", ".....", ".....", ".....", ".....", ".....", "#####"]),
    ('×', [".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "....."]),
    ('²', [".##..", "#..#.", "..#..", ".#...", "####.", ".....", "....."]),
    ('χ', [".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#"]),
    ('σ', [".....", ".....", ".####", "#..#.", "#...#", "#...#", ".###."]),
];

/// The glyph drawn for `c` (lower case as upper case; unknown characters as a box).
fn glyph(c: char) -> [&'static str; GLYPH_H] {
    const UNKNOWN: [&str; GLYPH_H] = [
        "#####", "#...#", "#...#", "#...#", "#...#", "#...#", "#####",
    ];
    let c = if c.is_ascii_lowercase() {
        c.to_ascii_uppercase()
    } else {
        c
    };
    GLYPHS
        .iter()
        .find(|(g, _)| *g == c)
        .map(|(_, rows)| *rows)
        .unwrap_or(UNKNOWN)
}

/// Width in canvas pixels of `text` drawn at `scale` (cells of `GLYPH_W + 1` font pixels, no
/// trailing gap).
pub fn text_width(text: &str, scale: usize) -> usize {
    let n = text.chars().count();
    (n * (GLYPH_W + 1)).saturating_sub(1) * scale
}

/// Height in canvas pixels of one line of text at `scale`.
pub fn text_height(scale: usize) -> usize {
    GLYPH_H * scale
}

/// The canvas pixels `text` inks at `scale`, as (along, across) offsets from the start of its
/// line: along the reading direction, across from the top of the glyphs down.
fn ink(text: &str, scale: usize) -> impl Iterator<Item = (i64, i64)> + '_ {
    let s = scale.max(1) as i64;
    text.chars().enumerate().flat_map(move |(k, ch)| {
        let start = k as i64 * (GLYPH_W as i64 + 1) * s;
        glyph(ch)
            .into_iter()
            .enumerate()
            .flat_map(move |(row, bits)| {
                bits.bytes()
                    .enumerate()
                    .filter(|&(_, b)| b == b'#')
                    .flat_map(move |(col, _)| {
                        (0..s * s)
                            .map(move |d| (start + col as i64 * s + d % s, row as i64 * s + d / s))
                    })
            })
    })
}

impl Canvas {
    /// Draws `text` with its top-left corner at pixel (`px`, `py`), each font pixel a
    /// `scale`×`scale` square; what falls outside the canvas is clipped.
    pub fn text(&mut self, px: i64, py: i64, text: &str, colour: Rgb, scale: usize) {
        for (along, across) in ink(text, scale) {
            self.put(px + along, py + across, colour);
        }
    }

    /// Draws `text` turned 90° anticlockwise (reading bottom to top), its bounding box's
    /// top-left corner at (`px`, `py`): for y-axis names.
    pub fn text_vertical(&mut self, px: i64, py: i64, text: &str, colour: Rgb, scale: usize) {
        let len = text_width(text, scale) as i64;
        for (along, across) in ink(text, scale) {
            self.put(px + across, py + len - 1 - along, colour);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::Bounds;

    fn blank(w: usize, h: usize) -> Canvas {
        let b = Bounds {
            x0: 0.0,
            x1: 1.0,
            y0: 0.0,
            y1: 1.0,
        };
        Canvas::new(w, h, b, [255, 255, 255])
    }

    fn ink(c: &Canvas) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        for y in 0..c.height {
            for x in 0..c.width {
                if c.get(x, y) == [0, 0, 0] {
                    v.push((x, y));
                }
            }
        }
        v
    }

    #[test]
    fn every_glyph_is_five_by_seven_and_distinct() {
        for (c, rows) in GLYPHS {
            for r in rows {
                assert_eq!(r.len(), GLYPH_W, "glyph {c:?} row {r:?}");
                assert!(r.bytes().all(|b| b == b'#' || b == b'.'), "glyph {c:?}");
            }
        }
        for (i, (a, ra)) in GLYPHS.iter().enumerate() {
            for (b, rb) in &GLYPHS[i + 1..] {
                assert_ne!(a, b, "{a:?} defined twice");
                assert_ne!(ra, rb, "{a:?} and {b:?} look the same");
            }
        }
    }

    #[test]
    fn text_lands_where_asked_scaled_and_clipped() {
        // "1" at scale 2: its foot (".###.", bottom row) is 3 font pixels = 6 canvas pixels wide.
        let mut c = blank(40, 30);
        c.text(4, 3, "1", [0, 0, 0], 2);
        let px = ink(&c);
        let (xs, ys): (Vec<usize>, Vec<usize>) = px.iter().copied().unzip();
        assert_eq!(*ys.iter().min().unwrap(), 3);
        assert_eq!(*ys.iter().max().unwrap(), 3 + 14 - 1);
        assert_eq!(*xs.iter().min().unwrap(), 4 + 2);
        assert_eq!(*xs.iter().max().unwrap(), 4 + 2 * 4 - 1);
        let bottom: Vec<_> = px.iter().filter(|p| p.1 == 16).collect();
        assert_eq!(bottom.len(), 6);
        // Lower case is drawn as upper case; a second character starts one cell on.
        let (mut a, mut b) = (blank(40, 10), blank(40, 10));
        a.text(0, 0, "ab", [0, 0, 0], 1);
        b.text(0, 0, "AB", [0, 0, 0], 1);
        assert_eq!(ink(&a), ink(&b));
        assert!(ink(&a).iter().any(|p| p.0 >= 6) && ink(&a).iter().all(|p| p.0 < 11));
        assert_eq!(text_width("ab", 1), 11);
        // Partly off the canvas: no panic, only the visible part drawn.
        let mut c = blank(8, 8);
        c.text(-3, -3, "8", [0, 0, 0], 1);
        assert!(!ink(&c).is_empty());
    }

    #[test]
    fn vertical_text_is_the_horizontal_text_turned_anticlockwise() {
        let mut h = blank(20, 10);
        h.text(0, 0, "L7", [0, 0, 0], 1);
        let mut v = blank(10, 20);
        v.text_vertical(0, 0, "L7", [0, 0, 0], 1);
        let len = text_width("L7", 1);
        let mut turned: Vec<(usize, usize)> =
            ink(&h).iter().map(|&(x, y)| (y, len - 1 - x)).collect();
        turned.sort_by_key(|&(x, y)| (y, x));
        assert_eq!(ink(&v), turned);
    }
}
