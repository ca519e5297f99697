//! Scores sensor rows with a Gaussian mixture embedded in the program, as a
//! device does: the model stays where `include_model!` put it, nothing is
//! allocated, and every call returns a `Result`.
//!
//! ```sh
//! cargo run -p tinygen-runtime --example score_mixture
//! ```
//! It scores the first rows of `models/cardio-gmm/inputs.csv` and checks
//! them against the log-densities the host wrote in `expected.csv`.

use tinygen_runtime::{Error, Gmm, include_model};

static MODEL: &[u8] = include_model!("../../models/cardio-gmm/model.tgm");
static INPUTS: &str = include_str!("../../models/cardio-gmm/inputs.csv");
static EXPECTED: &str = include_str!("../../models/cardio-gmm/expected.csv");

fn main() -> Result<(), Error> {
    let gmm = Gmm::from_bytes(MODEL)?; // validates everything once
    println!(
        "{} components over {} features, {} multiply-accumulates per score",
        gmm.components(),
        gmm.dim(),
        gmm.macs()
    );
    let expected = EXPECTED.lines().skip(1); // header: log_density
    for (line, want) in INPUTS.lines().zip(expected).take(5) {
        let row: Vec<f32> = line.split(',').map(|v| v.parse().unwrap()).collect();
        let log_p = gmm.log_density(&row)?;
        let want: f32 = want.parse().unwrap();
        println!("log p = {log_p:>10.4}  (host {want:>10.4})");
        assert_eq!(log_p.to_bits(), want.to_bits(), "differs from the host");
    }
    Ok(())
}
