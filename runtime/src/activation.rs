//! The activation applied after a network layer, and its numerics.

use serde::{Deserialize, Serialize};

use crate::math;

/// The activation applied after a layer.
///
/// Self-describing formats name the variants in snake case (`leaky_relu`),
/// as the trainer's `config.json` does; model files store their index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Activation {
    /// `x`.
    Identity,
    /// `x if x > 0 else 0`.
    Relu,
    /// `x if x > 0 else 0.01 x` (slope [`Activation::LEAKY_RELU_SLOPE`]).
    LeakyRelu,
    /// Hyperbolic tangent ([`crate::math::tanh`]).
    Tanh,
    /// Logistic sigmoid, computed stably ([`crate::math::sigmoid`]).
    Sigmoid,
}

impl Activation {
    /// Slope of [`Activation::LeakyRelu`] for negative inputs (PyTorch's default).
    pub const LEAKY_RELU_SLOPE: f32 = 0.01;

    /// Applies the activation to one value.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Identity => x,
            Activation::Relu => {
                if x > 0.0 {
                    x
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu => {
                if x > 0.0 {
                    x
                } else {
                    Self::LEAKY_RELU_SLOPE * x
                }
            }
            Activation::Tanh => math::tanh(x),
            Activation::Sigmoid => math::sigmoid(x),
        }
    }

    /// Applies the activation to every value of `values` in place.
    #[inline]
    pub fn apply_all(self, values: &mut [f32]) {
        match self {
            Activation::Identity => {}
            Activation::Relu => values.iter_mut().for_each(|v| *v = Self::Relu.apply(*v)),
            Activation::LeakyRelu => values
                .iter_mut()
                .for_each(|v| *v = Self::LeakyRelu.apply(*v)),
            Activation::Tanh => values.iter_mut().for_each(|v| *v = math::tanh(*v)),
            Activation::Sigmoid => values.iter_mut().for_each(|v| *v = math::sigmoid(*v)),
        }
    }

    /// Lower-case name, as used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky-relu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_follow_their_formulas() {
        let xs = [
            -100.0f32, -20.0, -3.5, -1.0, -0.25, -1e-6, -0.0, 0.0, 1e-6, 0.25, 1.0, 3.5, 20.0,
            100.0,
        ];
        for &x in &xs {
            assert_eq!(Activation::Identity.apply(x), x);
            assert_eq!(Activation::Relu.apply(x), if x > 0.0 { x } else { 0.0 });
            assert_eq!(
                Activation::LeakyRelu.apply(x),
                if x > 0.0 { x } else { 0.01 * x }
            );
            let tanh = f64::from(x).tanh();
            let sigmoid = 1.0 / (1.0 + (-f64::from(x)).exp());
            let tol = if cfg!(feature = "micromath") {
                1e-3
            } else {
                1e-6
            };
            assert!(
                (f64::from(Activation::Tanh.apply(x)) - tanh).abs() <= tol,
                "tanh({x})"
            );
            let s = Activation::Sigmoid.apply(x);
            assert!((f64::from(s) - sigmoid).abs() <= tol, "sigmoid({x})");
            assert!((0.0..=1.0).contains(&s));
        }
        // Stable far in the tails: no NaN from inf / inf, exact limits.
        assert_eq!(Activation::Sigmoid.apply(-1e30), 0.0);
        assert_eq!(Activation::Sigmoid.apply(1e30), 1.0);
        assert_eq!(Activation::Sigmoid.apply(0.0), 0.5);
        assert_eq!(Activation::Tanh.apply(0.0), 0.0);
        assert_eq!(Activation::Tanh.apply(50.0), 1.0);
        assert_eq!(Activation::Tanh.apply(-50.0), -1.0);
        if !cfg!(feature = "micromath") {
            // libm's own functions, and sigmoid for x < 0 as e^x / (1 + e^x).
            for &x in &xs {
                assert_eq!(Activation::Tanh.apply(x), libm::tanhf(x));
                let expected = if x >= 0.0 {
                    1.0 / (1.0 + libm::expf(-x))
                } else {
                    libm::expf(x) / (1.0 + libm::expf(x))
                };
                assert_eq!(Activation::Sigmoid.apply(x), expected);
            }
        }
    }
}
