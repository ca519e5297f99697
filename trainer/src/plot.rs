//! PNG pictures for the neural trainer: loss curves, 2-D scatters of latent
//! codes, grids of images and of reconstructions.
//!
//! Every picture is rendered in memory and written with
//! [`crate::io::write_atomic`], so a reader never sees half a PNG. Text is
//! drawn with a font built into the binary (a Latin subset of DejaVu Sans,
//! `trainer/assets/`), so no system font library is needed.
//!
//! Bad input is an error, never a panic: no data, sizes that do not add up,
//! mismatched lengths. Non-finite values are handled per function: loss
//! curves and scatters skip them (a diverged epoch leaves a gap), while
//! [`project_2d`], [`image_grid`] and [`reconstruction_grid`] reject them.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, bail, ensure};
use nalgebra::DMatrix;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// DejaVu Sans cut down to ASCII, a few symbols and Greek (see
/// `trainer/assets/README.md`).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

/// The family name text styles use; the built-in font is registered under it.
const FAMILY: &str = "sans-serif";

/// Distinct colours for series and classes: Tableau 10, then their light
/// variants and a few dark ones. Classes beyond 20 reuse colours.
const PALETTE: [RGBColor; 20] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0x39, 0x3b, 0x79),
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0xae, 0xc7, 0xe8),
    RGBColor(0xff, 0xbb, 0x78),
    RGBColor(0x98, 0xdf, 0x8a),
    RGBColor(0xff, 0x98, 0x96),
    RGBColor(0xc5, 0xb0, 0xd5),
    RGBColor(0xc4, 0x9c, 0x94),
    RGBColor(0xdb, 0xdb, 0x8d),
    RGBColor(0x9e, 0xda, 0xe5),
];

/// Size of a loss-curve picture.
const LOSS_SIZE: (u32, u32) = (800, 500);
/// Size of a scatter picture without labels; a legend panel adds
/// [`LEGEND_WIDTH`].
const SCATTER_SIZE: (u32, u32) = (700, 700);
/// Width of the legend panel of a labelled scatter.
const LEGEND_WIDTH: u32 = 130;
/// Most legend entries listed beside a scatter.
const MAX_LEGEND_ENTRIES: usize = 24;

/// Image grids are scaled up until the images together are this wide.
const GRID_MIN_WIDTH: usize = 400;
/// Image grids are scaled up until each image is this tall (8x8 digits
/// become 40 px).
const GRID_MIN_CELL: usize = 40;
/// Pixels between images in a grid.
const GRID_GAP: usize = 2;
/// Extra pixels between the input/reconstruction bands of
/// [`reconstruction_grid`].
const BAND_GAP: usize = 8;
/// Width of the label margin of [`reconstruction_grid`].
const LABEL_MARGIN: usize = 64;
/// Images in one band of [`reconstruction_grid`].
const RECON_COLS: usize = 10;
/// Colour of the gaps between images (the images are white ink on black).
const GAP_GREY: u8 = 128;
/// Largest picture an image grid may make, in pixels.
const MAX_PIXELS: usize = 1 << 26;

/// The y axis of [`loss_curves`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum YScale {
    /// Linear axis.
    #[default]
    Linear,
    /// Logarithmic axis: every finite value must be positive.
    Log,
}

/// Draws loss curves per epoch: one line per named series (e.g. `"train"`,
/// `"test"`), x = epoch `1..=n` (series may differ in length), with a
/// legend.
///
/// Non-finite values (a diverged epoch) are skipped and leave a gap in
/// the line. It is an error if there is no series, if a series is empty or
/// has no finite value, or, with [`YScale::Log`], if a finite value is not
/// positive.
pub fn loss_curves(
    path: &Path,
    title: &str,
    series: &[(&str, &[f64])],
    y_scale: YScale,
) -> anyhow::Result<()> {
    ensure!(!series.is_empty(), "loss curves: no series to plot");
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    let mut epochs = 0;
    for (name, values) in series {
        ensure!(!values.is_empty(), "loss curves: series {name:?} is empty");
        ensure!(
            values.iter().any(|v| v.is_finite()),
            "loss curves: series {name:?} has no finite value"
        );
        for (i, &v) in values.iter().enumerate().filter(|(_, v)| v.is_finite()) {
            if y_scale == YScale::Log && v <= 0.0 {
                bail!(
                    "loss curves: a log scale needs positive values, but series {name:?} is {v} at epoch {}",
                    i + 1
                );
            }
            lo = lo.min(v);
            hi = hi.max(v);
        }
        epochs = epochs.max(values.len());
    }
    // Half an epoch of room at each end keeps the first point off the axis.
    let x_range = 0..epochs as i32 + 1;
    let (width, height) = LOSS_SIZE;
    render_png(path, width, height, |root| match y_scale {
        YScale::Linear => draw_loss(root, title, series, x_range, padded(lo, hi)),
        YScale::Log => {
            let (lo, hi) = (lo / 1.25, hi * 1.25);
            let ticks = log_ticks(lo, hi);
            draw_loss(
                root,
                title,
                series,
                x_range,
                (lo..hi).log_scale().with_key_points(ticks),
            )
        }
    })
}

/// Draws the loss chart for either kind of y axis.
fn draw_loss<Y>(
    root: &DrawingArea<BitMapBackend, Shift>,
    title: &str,
    series: &[(&str, &[f64])],
    x_range: Range<i32>,
    y_range: Y,
) -> anyhow::Result<()>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FAMILY, 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(x_range, y_range)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("loss")
        .x_label_formatter(&|&e| if e >= 1 { e.to_string() } else { String::new() })
        .y_label_formatter(&tick_label)
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    let markers = series.iter().map(|(_, v)| v.len()).max().unwrap_or(0) <= 60;
    for (k, (name, values)) in series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let style = color.stroke_width(2);
        let mut labelled = false;
        // One line per run of finite values.
        let mut start = 0;
        while start < values.len() {
            if !values[start].is_finite() {
                start += 1;
                continue;
            }
            let end = (start..values.len())
                .find(|&i| !values[i].is_finite())
                .unwrap_or(values.len());
            let points = (start..end).map(|i| (i as i32 + 1, values[i]));
            let drawn = chart.draw_series(LineSeries::new(points, style))?;
            if !labelled {
                drawn.label(*name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
                labelled = true;
            }
            if markers || end - start == 1 {
                chart.draw_series(
                    (start..end).map(|i| Circle::new((i as i32 + 1, values[i]), 3, color.filled())),
                )?;
            }
            start = end;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FAMILY, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    Ok(())
}

/// Draws a 2-D scatter of latent codes, coloured by label when `labels` is
/// given (one colour per distinct label, a legend beside the plot), else in
/// one colour.
///
/// Labels `0..20` always get the same colours (label 3 is red in every
/// picture); with other labels, colours go by rank among the distinct
/// labels and repeat after 20. Points with a non-finite coordinate are
/// skipped. It is an error if there are no points, if no point is finite,
/// or if `labels` is not as long as `points`.
pub fn latent_scatter(
    path: &Path,
    title: &str,
    points: &[[f64; 2]],
    labels: Option<&[u32]>,
) -> anyhow::Result<()> {
    ensure!(!points.is_empty(), "latent scatter: no points to plot");
    if let Some(labels) = labels {
        ensure!(
            labels.len() == points.len(),
            "latent scatter: {} labels for {} points",
            labels.len(),
            points.len()
        );
    }
    let finite: Vec<usize> = (0..points.len())
        .filter(|&i| points[i].iter().all(|v| v.is_finite()))
        .collect();
    ensure!(!finite.is_empty(), "latent scatter: no point is finite");
    let bounds = |axis: usize| {
        let (lo, hi) = finite
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &i| {
                (lo.min(points[i][axis]), hi.max(points[i][axis]))
            });
        padded(lo, hi)
    };
    let (x_range, y_range) = (bounds(0), bounds(1));

    // Distinct labels in increasing order, and the colour of each.
    let mut classes: Vec<u32> = labels.map(<[u32]>::to_vec).unwrap_or_default();
    classes.sort_unstable();
    classes.dedup();
    let by_value = classes
        .last()
        .is_some_and(|&m| (m as usize) < PALETTE.len());
    let color_of = |label: u32| -> RGBColor {
        if by_value {
            PALETTE[label as usize]
        } else {
            let rank = classes.binary_search(&label).unwrap_or(0);
            PALETTE[rank % PALETTE.len()]
        }
    };
    let radius = match finite.len() {
        0..=500 => 4,
        501..=5000 => 3,
        _ => 2,
    };
    let (mut width, height) = SCATTER_SIZE;
    if labels.is_some() {
        width += LEGEND_WIDTH;
    }
    render_png(path, width, height, |root| {
        let (plot_area, legend_area) = if labels.is_some() {
            let (p, l) = root.split_horizontally(SCATTER_SIZE.0);
            (p, Some(l))
        } else {
            (root.clone(), None)
        };
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(title, (FAMILY, 24))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(x_range, y_range)?;
        chart
            .configure_mesh()
            .x_desc("component 1")
            .y_desc("component 2")
            .x_label_formatter(&tick_label)
            .y_label_formatter(&tick_label)
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 17))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.08))
            .draw()?;
        chart.draw_series(finite.iter().map(|&i| {
            let color = labels.map_or(PALETTE[0], |l| color_of(l[i]));
            Circle::new(
                (points[i][0], points[i][1]),
                radius,
                color.mix(0.75).filled(),
            )
        }))?;
        if let Some(area) = legend_area {
            let font = (FAMILY, 17).into_font();
            area.draw(&Text::new("label", (18, 60), font.clone()))?;
            let shown = classes.len().min(MAX_LEGEND_ENTRIES);
            for (row, &class) in classes.iter().take(shown).enumerate() {
                let y = 95 + 24 * row as i32;
                area.draw(&Circle::new((26, y), 6, color_of(class).filled()))?;
                area.draw(&Text::new(class.to_string(), (42, y - 9), font.clone()))?;
            }
            if classes.len() > shown {
                let y = 95 + 24 * shown as i32;
                let more = format!("+{} more", classes.len() - shown);
                area.draw(&Text::new(more, (18, y - 9), font.clone()))?;
            }
        }
        Ok(())
    })
}

/// Projects `n` latent codes of `dim` values each (row-major) to 2-D for
/// [`latent_scatter`]: as they are for `dim == 2`, `(x, 0)` for `dim == 1`,
/// and for `dim > 2` onto the top two principal components of the codes
/// ([`crate::nn::pca::principal_components`]), centred on their mean.
///
/// It is an error if `dim` is 0, if there is no code, if `latents.len()`
/// is not a multiple of `dim`, or if a value is not finite.
pub fn project_2d(latents: &[f32], dim: usize) -> anyhow::Result<Vec<[f64; 2]>> {
    ensure!(dim > 0, "projection: the latent dimension must be positive");
    ensure!(!latents.is_empty(), "projection: no latent codes");
    ensure!(
        latents.len().is_multiple_of(dim),
        "projection: {} values are not a whole number of {dim}-dimensional codes",
        latents.len()
    );
    if let Some(i) = latents.iter().position(|v| !v.is_finite()) {
        bail!(
            "projection: code {} has a non-finite value ({})",
            i / dim,
            latents[i]
        );
    }
    let n = latents.len() / dim;
    match dim {
        1 => return Ok(latents.iter().map(|&v| [f64::from(v), 0.0]).collect()),
        2 => {
            return Ok(latents
                .chunks_exact(2)
                .map(|c| [f64::from(c[0]), f64::from(c[1])])
                .collect());
        }
        _ => {}
    }
    let x = DMatrix::from_row_iterator(n, dim, latents.iter().map(|&v| f64::from(v)));
    let pca = crate::nn::pca::principal_components(x.clone(), 2);
    let mut centred = x;
    for (j, mut col) in centred.column_iter_mut().enumerate() {
        col.add_scalar_mut(-pca.mean[j]);
    }
    let projected = centred * pca.components.transpose();
    Ok(projected.row_iter().map(|r| [r[0], r[1]]).collect())
}

/// Draws a grid of grey images, `cols` per row (fewer if there are fewer
/// images), white ink on black, with grey lines between them. `images`
/// holds `height * width` values per image, row-major, in `[0, 1]` (values
/// outside are clamped). Each image pixel becomes a square block, scaled
/// so that the images together are at least 400 px wide and each at
/// least 40 px tall.
///
/// It is an error if there is no image, if `images.len()` is not a
/// multiple of `height * width`, if `cols` is 0, or if a value is not
/// finite.
pub fn image_grid(
    path: &Path,
    images: &[f32],
    height: usize,
    width: usize,
    cols: usize,
) -> anyhow::Result<()> {
    let n = count_images("image grid", images, height, width)?;
    ensure!(cols > 0, "image grid: at least one column is needed");
    let cols = cols.min(n);
    let layout = GridLayout::new(n.div_ceil(cols), cols, height, width, 0, 0)?;
    let mut canvas = Canvas::new(layout.width, layout.height, [GAP_GREY; 3]);
    for (i, image) in images.chunks_exact(height * width).enumerate() {
        let (x, y) = layout.cell(i / layout.cols, i % layout.cols);
        canvas.blit(x, y, image, height, width, layout.scale);
    }
    write_png(path, &canvas)
}

/// Draws inputs above their reconstructions: bands of up to 10 images, a
/// row of inputs (labelled "input") over the row of their reconstructions
/// (labelled "recon."), image `i` of one row above image `i` of the other.
/// Images are as in [`image_grid`].
///
/// It is an error if there is no image, if `inputs` and `recons` differ in
/// length, if a length is not a multiple of `height * width`, or if a value
/// is not finite.
pub fn reconstruction_grid(
    path: &Path,
    inputs: &[f32],
    recons: &[f32],
    height: usize,
    width: usize,
) -> anyhow::Result<()> {
    let n = count_images("reconstruction grid (inputs)", inputs, height, width)?;
    let m = count_images(
        "reconstruction grid (reconstructions)",
        recons,
        height,
        width,
    )?;
    ensure!(
        n == m,
        "reconstruction grid: {n} inputs but {m} reconstructions"
    );
    let cols = n.min(RECON_COLS);
    let bands = n.div_ceil(cols);
    let layout = GridLayout::new(2 * bands, cols, height, width, LABEL_MARGIN, BAND_GAP)?;
    let mut canvas = Canvas::new(layout.width, layout.height, [GAP_GREY; 3]);
    canvas.fill_rect(0, 0, LABEL_MARGIN, layout.height, [255; 3]);
    let size = height * width;
    for i in 0..n {
        let (band, col) = (i / cols, i % cols);
        let cells = i * size..(i + 1) * size;
        let (x, y) = layout.cell(2 * band, col);
        canvas.blit(x, y, &inputs[cells.clone()], height, width, layout.scale);
        let (x, y) = layout.cell(2 * band + 1, col);
        canvas.blit(x, y, &recons[cells], height, width, layout.scale);
    }
    let cell_height = height * layout.scale;
    let font_size = (cell_height as f64 * 0.6).clamp(9.0, 16.0);
    let rows_of_text: Vec<(usize, &str)> = (0..bands)
        .flat_map(|b| {
            [
                (layout.cell(2 * b, 0).1, "input"),
                (layout.cell(2 * b + 1, 0).1, "recon."),
            ]
        })
        .collect();
    {
        let (w, h) = (layout.width as u32, layout.height as u32);
        let root = BitMapBackend::with_buffer(&mut canvas.rgb, (w, h)).into_drawing_area();
        ensure_font()?;
        let font = (FAMILY, font_size).into_font().color(&BLACK);
        for (top, text) in rows_of_text {
            let y = (top + cell_height / 2) as i32 - (font_size / 2.0) as i32;
            root.draw(&Text::new(text, (6, y), font.clone()))?;
        }
        root.present()?;
    }
    write_png(path, &canvas)
}

/// The number of `height x width` images in `values`, checked.
fn count_images(what: &str, values: &[f32], height: usize, width: usize) -> anyhow::Result<usize> {
    ensure!(
        height > 0 && width > 0,
        "{what}: images must be at least 1x1, not {height}x{width}"
    );
    ensure!(!values.is_empty(), "{what}: no images");
    let size = height * width;
    ensure!(
        values.len().is_multiple_of(size),
        "{what}: {} values are not a whole number of {height}x{width} images",
        values.len()
    );
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        bail!(
            "{what}: image {} has a non-finite pixel ({}) at row {}, column {}",
            i / size,
            values[i],
            i % size / width,
            i % width
        );
    }
    Ok(values.len() / size)
}

/// Where the cells of an image grid go.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GridLayout {
    /// Cells per row.
    cols: usize,
    /// Picture pixels per image pixel.
    scale: usize,
    /// Picture width and height.
    width: usize,
    height: usize,
    /// Image size in image pixels.
    cell: (usize, usize),
    /// Blank columns at the left.
    left: usize,
    /// Extra gap after every second row (0 for none).
    band_gap: usize,
}

impl GridLayout {
    /// Lays out `rows x cols` cells of `height x width` images, `left`
    /// blank columns at the left, `band_gap` extra pixels after every second
    /// row (0 for none).
    fn new(
        rows: usize,
        cols: usize,
        height: usize,
        width: usize,
        left: usize,
        band_gap: usize,
    ) -> anyhow::Result<Self> {
        let span = |count: usize, size: usize, scale: usize| {
            count
                .checked_mul(size)
                .and_then(|p| p.checked_mul(scale))
                .and_then(|p| p.checked_add((count + 1) * GRID_GAP))
        };
        let mut scale = 1;
        while span(cols, width, scale).is_some_and(|w| w < GRID_MIN_WIDTH)
            || height * scale < GRID_MIN_CELL
        {
            scale += 1;
        }
        let bands = if band_gap > 0 {
            rows.div_ceil(2) - 1
        } else {
            0
        };
        let too_big = || {
            anyhow::anyhow!(
                "image grid: {rows} rows of {cols} images of {height}x{width} make too large a picture"
            )
        };
        let pic_width = span(cols, width, scale)
            .and_then(|w| w.checked_add(left))
            .ok_or_else(too_big)?;
        let pic_height = span(rows, height, scale)
            .and_then(|h| h.checked_add(bands * band_gap))
            .ok_or_else(too_big)?;
        ensure!(
            pic_width
                .checked_mul(pic_height)
                .is_some_and(|p| p <= MAX_PIXELS)
                && pic_width <= u32::MAX as usize
                && pic_height <= u32::MAX as usize,
            too_big()
        );
        Ok(Self {
            cols,
            scale,
            width: pic_width,
            height: pic_height,
            cell: (height, width),
            left,
            band_gap,
        })
    }

    /// Top-left picture pixel `(x, y)` of the cell at `row`, `col`.
    fn cell(&self, row: usize, col: usize) -> (usize, usize) {
        let (h, w) = self.cell;
        let bands = if self.band_gap > 0 { row / 2 } else { 0 };
        (
            self.left + GRID_GAP + col * (w * self.scale + GRID_GAP),
            GRID_GAP + row * (h * self.scale + GRID_GAP) + bands * self.band_gap,
        )
    }
}

/// An RGB picture in memory.
struct Canvas {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize, background: [u8; 3]) -> Self {
        let mut rgb = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            rgb.extend_from_slice(&background);
        }
        Self { width, height, rgb }
    }

    fn fill_rect(&mut self, x: usize, y: usize, w: usize, h: usize, color: [u8; 3]) {
        for row in y..(y + h).min(self.height) {
            for col in x..(x + w).min(self.width) {
                let at = 3 * (row * self.width + col);
                self.rgb[at..at + 3].copy_from_slice(&color);
            }
        }
    }

    /// Draws a grey image with its top-left corner at `(x, y)`, each pixel
    /// a `scale x scale` block.
    fn blit(
        &mut self,
        x: usize,
        y: usize,
        image: &[f32],
        height: usize,
        width: usize,
        scale: usize,
    ) {
        for r in 0..height {
            for c in 0..width {
                let grey = (image[r * width + c].clamp(0.0, 1.0) * 255.0).round() as u8;
                self.fill_rect(x + c * scale, y + r * scale, scale, scale, [grey; 3]);
            }
        }
    }
}

/// Registers the built-in font with plotters, once.
fn ensure_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    ensure!(ok, "cannot load the built-in font");
    Ok(())
}

/// Renders a `width x height` picture on a white background with `draw`
/// and writes it as a PNG.
fn render_png(
    path: &Path,
    width: u32,
    height: u32,
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    ensure_font()?;
    let mut canvas = Canvas::new(width as usize, height as usize, [255; 3]);
    {
        let root = BitMapBackend::with_buffer(&mut canvas.rgb, (width, height)).into_drawing_area();
        draw(&root).with_context(|| format!("cannot draw {}", path.display()))?;
        root.present()?;
    }
    write_png(path, &canvas)
}

/// Encodes `canvas` as an 8-bit RGB PNG and writes it atomically.
fn write_png(path: &Path, canvas: &Canvas) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, canvas.width as u32, canvas.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&canvas.rgb)?;
        writer.finish()?;
    }
    crate::io::write_atomic(path, &bytes)
}

/// Ticks of a log axis over `lo..hi` (`0 < lo < hi`): 1, 2 and 5 times the
/// powers of ten in range, or every digit if that gives fewer than 4 ticks.
/// More than 12 decades get one tick per decade or fewer.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let decades = (first..=last).map(|k| 10f64.powi(k));
    let pick = |mantissas: &[f64]| -> Vec<f64> {
        decades
            .clone()
            .flat_map(|p| mantissas.iter().map(move |m| m * p))
            .filter(|v| (lo..=hi).contains(v))
            .collect()
    };
    if last - first > 12 {
        let step = ((last - first) / 8) as usize;
        return pick(&[1.0]).into_iter().step_by(step.max(1)).collect();
    }
    let coarse = pick(&[1.0, 2.0, 5.0]);
    if coarse.len() >= 4 {
        return coarse;
    }
    pick(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
}

/// An axis label: at most 4 significant digits, no trailing zeros, and
/// exponent notation for very small or large numbers.
fn tick_label(v: &f64) -> String {
    let a = v.abs();
    if a < 1e-12 {
        return "0".to_string();
    }
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if (1e-3..1e5).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
        trim(format!("{v:.decimals$}"))
    } else {
        let s = format!("{v:.3e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        format!("{}e{exponent}", trim(mantissa.to_string()))
    }
}

/// `lo..hi` widened by 5% on each side, or by 1 if `lo == hi`.
fn padded(lo: f64, hi: f64) -> Range<f64> {
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else {
        1.0f64.max(0.1 * lo.abs())
    };
    (lo - pad)..(hi + pad)
}

#[cfg(test)]
mod tests;
