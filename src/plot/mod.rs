//! PNG figures drawn with a small rasteriser: density heat maps with contour lines, score vector
//! fields, samples, trajectories, framed line plots and histograms with titles, tick values and
//! axis names in a built-in bitmap font (no font files).

mod axes;
mod canvas;
mod figures;
mod grid;
mod text;

pub use axes::{framed_canvas, nice_ticks, tick_label, Labels, Scale};
pub use canvas::{Bounds, Canvas, Rgb};
pub use figures::{line_plot, overlay_histograms, score_field_figure, ScoreFieldData};
pub use grid::{image_grid, image_grid_columns};
pub use text::{text_height, text_width};
