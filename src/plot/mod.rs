//! PNG figures drawn with a small rasteriser: density heat maps with contour lines, score vector
//! fields, samples, trajectories and line plots. No fonts, so figures carry no text; the CLI
//! names their content in file names and its output.

mod canvas;
mod figures;
mod grid;

pub use canvas::{Bounds, Canvas, Rgb};
pub use figures::{line_plot, overlay_histograms, score_field_figure, ScoreFieldData};
pub use grid::image_grid;
