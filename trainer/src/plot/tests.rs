use super::*;

/// Decodes a PNG file: width, height and RGB bytes.
fn decode(path: &Path) -> (usize, usize, Vec<u8>) {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    (info.width as usize, info.height as usize, buf)
}

fn pixel(rgb: &[u8], width: usize, x: usize, y: usize) -> [u8; 3] {
    let at = 3 * (y * width + x);
    [rgb[at], rgb[at + 1], rgb[at + 2]]
}

/// How many pixels are neither white nor grey: coloured ink.
fn coloured(rgb: &[u8]) -> usize {
    rgb.chunks_exact(3)
        .filter(|p| p[0] != p[1] || p[1] != p[2])
        .count()
}

/// How many pixels are dark (text, axes).
fn dark(rgb: &[u8]) -> usize {
    rgb.chunks_exact(3)
        .filter(|p| p.iter().all(|&c| c < 80))
        .count()
}

#[test]
fn loss_curves_write_a_png_of_the_expected_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loss.png");
    let train: Vec<f64> = (0..30)
        .map(|e| 2.0 * (-0.1 * e as f64).exp() + 0.1)
        .collect();
    let test: Vec<f64> = train.iter().map(|v| v * 1.1).collect();
    for scale in [YScale::Linear, YScale::Log] {
        loss_curves(
            &path,
            "losses",
            &[("train", &train), ("test", &test)],
            scale,
        )
        .unwrap();
        let (w, h, rgb) = decode(&path);
        assert_eq!((w, h), (800, 500));
        assert!(coloured(&rgb) > 500, "the curves are drawn in colour");
        assert!(dark(&rgb) > 500, "text and axes are drawn");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn loss_curves_skip_non_finite_values_and_take_a_single_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loss.png");
    let values = [1.0, f64::NAN, 0.5, f64::INFINITY, 0.25];
    loss_curves(&path, "gaps", &[("train", &values)], YScale::Log).unwrap();
    loss_curves(&path, "one epoch", &[("train", &[3.0])], YScale::Linear).unwrap();
    loss_curves(&path, "flat", &[("train", &[0.0, 0.0])], YScale::Linear).unwrap();
    assert_eq!(decode(&path).0, 800);
}

#[test]
fn loss_curves_reject_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loss.png");
    let err = |series: &[(&str, &[f64])], scale| {
        loss_curves(&path, "t", series, scale)
            .unwrap_err()
            .to_string()
    };
    assert!(err(&[], YScale::Linear).contains("no series"));
    assert!(err(&[("train", &[])], YScale::Linear).contains("\"train\" is empty"));
    assert!(err(&[("test", &[f64::NAN])], YScale::Linear).contains("no finite value"));
    let msg = err(&[("train", &[1.0, 0.0])], YScale::Log);
    assert!(msg.contains("positive") && msg.contains("epoch 2"), "{msg}");
    assert!(!path.exists());
}

#[test]
fn axis_ticks_and_labels() {
    assert_eq!(log_ticks(1.6, 42.0), vec![2.0, 5.0, 10.0, 20.0]);
    assert_eq!(log_ticks(2.5, 9.0), vec![3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    assert_eq!(log_ticks(1e-20, 1.0).len(), 11);
    let labels: Vec<String> = [0.0, 35.0, 0.30000000000000004, -2.5, 1234.5678, 2e-5, 3e7]
        .iter()
        .map(tick_label)
        .collect();
    assert_eq!(labels, ["0", "35", "0.3", "-2.5", "1235", "2e-5", "3e7"]);
}

#[test]
fn latent_scatter_writes_labelled_and_plain_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scatter.png");
    let points: Vec<[f64; 2]> = (0..200)
        .map(|i| {
            let a = i as f64 * 0.7;
            [
                a.cos() * (1.0 + (i % 10) as f64),
                a.sin() * (1.0 + (i % 10) as f64),
            ]
        })
        .collect();
    let labels: Vec<u32> = (0..200).map(|i| i % 10).collect();
    latent_scatter(&path, "latents", &points, Some(&labels)).unwrap();
    let (w, h, rgb) = decode(&path);
    assert_eq!((w, h), (700 + 130, 700));
    // Each class colour appears (in the legend at least).
    for &c in &PALETTE[..10] {
        assert!(
            rgb.chunks_exact(3).any(|p| p == [c.0, c.1, c.2]),
            "colour {c:?} is used"
        );
    }
    latent_scatter(&path, "latents", &points, None).unwrap();
    assert_eq!(decode(&path).0, 700);
    // Non-finite points are skipped; one finite point is enough.
    latent_scatter(&path, "one", &[[f64::NAN, 0.0], [1.0, 2.0]], None).unwrap();
    // Many distinct, large labels.
    let labels: Vec<u32> = (0..200).map(|i| 1000 + i % 30).collect();
    latent_scatter(&path, "many", &points, Some(&labels)).unwrap();
}

#[test]
fn latent_scatter_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scatter.png");
    let msg = latent_scatter(&path, "t", &[], None)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("no points"), "{msg}");
    let msg = latent_scatter(&path, "t", &[[0.0, 1.0]], Some(&[1, 2]))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("2 labels for 1 points"), "{msg}");
    let msg = latent_scatter(&path, "t", &[[f64::NAN, 1.0]], None)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("no point is finite"), "{msg}");
    assert!(!path.exists());
}

#[test]
fn project_2d_passes_low_dimensions_through() {
    assert_eq!(
        project_2d(&[1.0, -2.0], 1).unwrap(),
        vec![[1.0, 0.0], [-2.0, 0.0]]
    );
    assert_eq!(
        project_2d(&[1.0, 2.0, 3.0, 4.0], 2).unwrap(),
        vec![[1.0, 2.0], [3.0, 4.0]]
    );
}

#[test]
fn project_2d_recovers_the_main_directions() {
    // Points t*u + s*v + tiny noise in 5-D, u and v orthonormal, t with a
    // larger spread than s: PCA gives (t, s) up to sign, plus the mean.
    let u = [0.6, 0.0, 0.8, 0.0, 0.0];
    let v = [0.0, 0.6, 0.0, 0.0, -0.8];
    let n = 400;
    let mut latents = Vec::new();
    let mut ts = Vec::new();
    let mut ss = Vec::new();
    let mut state = 12345u64;
    let mut noise = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 1e-3
    };
    for i in 0..n {
        let t = 5.0 * ((i as f64) * 0.37).sin();
        let s = 1.0 * ((i as f64) * 1.91).cos();
        ts.push(t);
        ss.push(s);
        for d in 0..5 {
            latents.push((3.0 + t * u[d] + s * v[d] + noise()) as f32);
        }
    }
    let p = project_2d(&latents, 5).unwrap();
    assert_eq!(p.len(), n);
    let centred = |x: &[f64]| {
        let m = x.iter().sum::<f64>() / x.len() as f64;
        x.iter().map(|v| v - m).collect::<Vec<_>>()
    };
    let (ts, ss) = (centred(&ts), centred(&ss));
    for (axis, truth) in [(0, &ts), (1, &ss)] {
        let got: Vec<f64> = p.iter().map(|q| q[axis]).collect();
        let sign = if got.iter().zip(truth).map(|(a, b)| a * b).sum::<f64>() < 0.0 {
            -1.0
        } else {
            1.0
        };
        let worst = got
            .iter()
            .zip(truth)
            .map(|(a, b)| (sign * a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-2, "axis {axis}: worst error {worst}");
    }
    // The sign convention: the largest entry of each component is positive
    // (u's largest entry is +0.8, v's is -0.8), so t comes out as is and s
    // flipped.
    assert!((p[1][0] - ts[1]).abs() < 1e-2);
    assert!((p[1][1] + ss[1]).abs() < 1e-2);
}

#[test]
fn project_2d_rejects_bad_input() {
    let msg = |r: anyhow::Result<Vec<[f64; 2]>>| r.unwrap_err().to_string();
    assert!(msg(project_2d(&[1.0], 0)).contains("must be positive"));
    assert!(msg(project_2d(&[], 3)).contains("no latent codes"));
    assert!(msg(project_2d(&[1.0; 7], 3)).contains("not a whole number"));
    assert!(msg(project_2d(&[1.0, 2.0, f32::NAN], 3)).contains("non-finite"));
    // A single code projects to the origin.
    assert_eq!(project_2d(&[1.0, 2.0, 3.0], 3).unwrap(), vec![[0.0, 0.0]]);
}

#[test]
fn image_grid_puts_each_image_in_its_cell() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.png");
    let (h, w) = (3, 4);
    let levels = [0.0f32, 1.0 / 3.0, 2.0 / 3.0, 1.0];
    let images: Vec<f32> = levels.iter().flat_map(|&v| vec![v; h * w]).collect();
    image_grid(&path, &images, h, w, 2).unwrap();
    let (width, height, rgb) = decode(&path);
    // 2 columns of 4 px images, gaps of 2: scaled until at least 400 wide and 40 tall.
    let scale = (1..1000)
        .find(|s| 2 * w * s + 3 * GRID_GAP >= GRID_MIN_WIDTH && h * s >= GRID_MIN_CELL)
        .unwrap();
    assert_eq!(width, 2 * w * scale + 3 * GRID_GAP);
    assert_eq!(height, 2 * h * scale + 3 * GRID_GAP);
    let expected = [0u8, 85, 170, 255];
    for (i, &grey) in expected.iter().enumerate() {
        let (row, col) = (i / 2, i % 2);
        let x0 = GRID_GAP + col * (w * scale + GRID_GAP);
        let y0 = GRID_GAP + row * (h * scale + GRID_GAP);
        for (x, y) in [
            (x0, y0),
            (x0 + w * scale - 1, y0 + h * scale - 1),
            (x0 + w * scale / 2, y0 + h * scale / 2),
        ] {
            assert_eq!(
                pixel(&rgb, width, x, y),
                [grey; 3],
                "image {i} at ({x}, {y})"
            );
        }
        // The gap before the cell is grey.
        assert_eq!(pixel(&rgb, width, x0 - 1, y0), [GAP_GREY; 3]);
        assert_eq!(pixel(&rgb, width, x0, y0 - 1), [GAP_GREY; 3]);
    }
}

#[test]
fn image_grid_scales_pixels_into_blocks_and_leaves_empty_cells_grey() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.png");
    // Three 2x2 images (a diagonal, its mirror, a full one) in rows of 2.
    let images = [
        1.0, 0.0, 0.0, 1.0, //
        0.0, 1.0, 1.0, 0.0, //
        1.0, 1.0, 1.0, 1.0,
    ];
    image_grid(&path, &images, 2, 2, 2).unwrap();
    let (width, height, rgb) = decode(&path);
    let layout = GridLayout::new(2, 2, 2, 2, 0, 0).unwrap();
    assert_eq!((width, height), (layout.width, layout.height));
    assert!(width >= GRID_MIN_WIDTH);
    let s = layout.scale;
    for (i, image) in images.chunks(4).enumerate() {
        let (x0, y0) = layout.cell(i / 2, i % 2);
        for (k, &v) in image.iter().enumerate() {
            let (x, y) = (x0 + (k % 2) * s + s / 2, y0 + (k / 2) * s + s / 2);
            assert_eq!(pixel(&rgb, width, x, y), [(v * 255.0) as u8; 3]);
        }
    }
    let (x0, y0) = layout.cell(1, 1);
    assert_eq!(pixel(&rgb, width, x0 + s, y0 + s), [GAP_GREY; 3]);
}

#[test]
fn image_grid_clamps_values_and_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grid.png");
    image_grid(&path, &[-1.0, 2.0], 1, 2, 5).unwrap();
    let (width, _, rgb) = decode(&path);
    let layout = GridLayout::new(1, 1, 1, 2, 0, 0).unwrap();
    let (x0, y0) = layout.cell(0, 0);
    assert_eq!(pixel(&rgb, width, x0, y0), [0; 3]);
    assert_eq!(pixel(&rgb, width, x0 + layout.scale, y0), [255; 3]);

    let msg = |r: anyhow::Result<()>| r.unwrap_err().to_string();
    assert!(msg(image_grid(&path, &[], 2, 2, 1)).contains("no images"));
    assert!(msg(image_grid(&path, &[0.0; 5], 2, 2, 1)).contains("not a whole number"));
    assert!(msg(image_grid(&path, &[0.0; 4], 0, 4, 1)).contains("at least 1x1"));
    assert!(msg(image_grid(&path, &[0.0; 4], 2, 2, 0)).contains("one column"));
    let m = msg(image_grid(
        &path,
        &[0.0, 0.0, 0.0, 0.0, 0.0, f32::NAN],
        1,
        3,
        1,
    ));
    assert!(m.contains("image 1") && m.contains("column 2"), "{m}");
    assert!(msg(image_grid(&path, &vec![0.0; 100_000], 1, 1, 1)).contains("too large"));
}

#[test]
fn reconstruction_grid_puts_inputs_above_reconstructions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recon.png");
    let (h, w, n) = (8, 8, 13);
    let inputs: Vec<f32> = (0..n).flat_map(|i| vec![i as f32 / 16.0; h * w]).collect();
    let recons: Vec<f32> = inputs.iter().map(|v| 1.0 - v).collect();
    reconstruction_grid(&path, &inputs, &recons, h, w).unwrap();
    let (width, height, rgb) = decode(&path);
    // 13 images: two bands of 10 columns, four rows.
    let layout = GridLayout::new(4, 10, h, w, LABEL_MARGIN, BAND_GAP).unwrap();
    assert_eq!((width, height), (layout.width, layout.height));
    let s = layout.scale;
    for i in 0..n {
        let (band, col) = (i / 10, i % 10);
        let level = |v: f32| [(v * 255.0).round() as u8; 3];
        let (x, y) = layout.cell(2 * band, col);
        assert_eq!(pixel(&rgb, width, x + s, y + s), level(i as f32 / 16.0));
        let (x, y) = layout.cell(2 * band + 1, col);
        assert_eq!(
            pixel(&rgb, width, x + s, y + s),
            level(1.0 - i as f32 / 16.0)
        );
    }
    // The bands are further apart than the rows within a band.
    assert_eq!(
        layout.cell(2, 0).1 - layout.cell(1, 0).1,
        h * s + GRID_GAP + BAND_GAP
    );
    // The labels are drawn in the white margin.
    let margin_dark = (0..height)
        .flat_map(|y| (0..LABEL_MARGIN).map(move |x| (x, y)))
        .filter(|&(x, y)| pixel(&rgb, width, x, y)[0] < 100)
        .count();
    assert!(
        margin_dark > 50,
        "label text is drawn ({margin_dark} dark pixels)"
    );
}

#[test]
fn reconstruction_grid_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recon.png");
    let msg = |r: anyhow::Result<()>| r.unwrap_err().to_string();
    assert!(msg(reconstruction_grid(&path, &[0.0; 8], &[0.0; 4], 2, 2)).contains("2 inputs but 1"));
    assert!(msg(reconstruction_grid(&path, &[], &[], 2, 2)).contains("no images"));
    assert!(
        msg(reconstruction_grid(&path, &[0.0; 4], &[0.0; 3], 2, 2)).contains("not a whole number")
    );
    assert!(
        msg(reconstruction_grid(&path, &[0.0; 4], &[f32::NAN; 4], 2, 2)).contains("non-finite")
    );
    assert!(!path.exists());
}

/// Writes one picture of each kind to `$TMPDIR/plots/` from the built-in
/// digits, to look at: `cargo test -p tinygen --lib plot::tests::samples -- --ignored`.
#[test]
#[ignore = "writes sample pictures to look at"]
fn samples() {
    use crate::data::images::{Split, load_samples};
    let dir = std::env::temp_dir().join("plots");
    std::fs::create_dir_all(&dir).unwrap();
    let digits = load_samples("digits", None, Split::Train, None).unwrap();
    let (h, w) = digits.image.unwrap();
    let first = &digits.x[..40 * h * w];
    image_grid(&dir.join("digits_grid.png"), first, h, w, 10).unwrap();
    // A fake reconstruction: each image blurred with its neighbours.
    let recon: Vec<f32> = first
        .chunks(h * w)
        .flat_map(|img| {
            (0..h * w).map(move |k| {
                let (r, c) = (k / w, k % w);
                let mut sum = 0.0;
                let mut count = 0.0;
                for (dr, dc) in [(0, 0), (0, 1), (1, 0), (0, -1), (-1, 0)] {
                    let (rr, cc) = (r as i64 + dr, c as i64 + dc);
                    if (0..h as i64).contains(&rr) && (0..w as i64).contains(&cc) {
                        sum += img[rr as usize * w + cc as usize];
                        count += 1.0;
                    }
                }
                sum / count
            })
        })
        .collect();
    reconstruction_grid(
        &dir.join("digits_recon.png"),
        &first[..16 * h * w],
        &recon[..16 * h * w],
        h,
        w,
    )
    .unwrap();
    let points = project_2d(&digits.x, digits.dim).unwrap();
    latent_scatter(
        &dir.join("digits_pca.png"),
        "Digits, first two principal components",
        &points,
        digits.labels.as_deref(),
    )
    .unwrap();
    latent_scatter(
        &dir.join("digits_pca_plain.png"),
        "Digits (no labels)",
        &points,
        None,
    )
    .unwrap();
    let many: Vec<u32> = (0..digits.n as u32).map(|i| 100 + i % 30).collect();
    latent_scatter(
        &dir.join("many_labels.png"),
        "30 labels",
        &points,
        Some(&many),
    )
    .unwrap();
    let train: Vec<f64> = (0..40)
        .map(|e| 30.0 * (-0.15 * e as f64).exp() + 2.0)
        .collect();
    let test: Vec<f64> = (0..40)
        .map(|e| 31.0 * (-0.12 * e as f64).exp() + 2.6 + 0.01 * e as f64)
        .collect();
    loss_curves(
        &dir.join("loss_linear.png"),
        "VAE on digits: negative ELBO",
        &[("train", &train), ("test", &test)],
        YScale::Linear,
    )
    .unwrap();
    loss_curves(
        &dir.join("loss_log.png"),
        "VAE on digits: negative ELBO (log scale)",
        &[("train", &train), ("test", &test)],
        YScale::Log,
    )
    .unwrap();
}
