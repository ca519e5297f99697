//! Adam with decoupled weight decay (AdamW): candle-nn's update rule, the
//! same f32 operations in the same order (the results are identical but
//! for moments below f32's normal range, see `adam_update`), with the
//! moment estimates kept in plain vectors and one fused pass over each
//! parameter. candle-nn's `AdamW` builds about fifteen temporary tensors
//! per parameter and step; on a CPU that took as long as the forward and
//! backward passes of the MNIST VAE together.

use candle_core::{Tensor, Var};
use candle_nn::ParamsAdamW;
use multiversion::multiversion;

/// One parameter and its first and second moment estimates.
struct Slot {
    var: Var,
    m: Vec<f32>,
    v: Vec<f32>,
}

/// The optimiser.
pub struct Adam {
    slots: Vec<Slot>,
    step: i32,
    params: ParamsAdamW,
}

impl Adam {
    /// An optimiser over `vars` (zero moments).
    pub fn new(vars: Vec<Var>, params: ParamsAdamW) -> Self {
        let slots = vars
            .into_iter()
            .map(|var| {
                let n = var.elem_count();
                Slot {
                    var,
                    m: vec![0.0; n],
                    v: vec![0.0; n],
                }
            })
            .collect();
        Self {
            slots,
            step: 0,
            params,
        }
    }

    /// Back-propagates `loss` and updates every parameter:
    /// `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`,
    /// `theta = theta (1 - lr wd) - lr m^ / (sqrt(v^) + eps)` with the
    /// bias-corrected `m^ = m / (1 - b1^t)`, `v^ = v / (1 - b2^t)`.
    pub fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        let grads = loss.backward()?;
        self.step += 1;
        let k = AdamConstants::new(&self.params, self.step);
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            let g = g.flatten_all()?.to_vec1::<f32>()?;
            let mut theta = slot.var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            adam_update(&mut theta, &mut slot.m, &mut slot.v, &g, &k);
            let shape = slot.var.shape().clone();
            slot.var
                .set(&Tensor::from_vec(theta, shape, slot.var.device())?)?;
        }
        Ok(())
    }
}

/// `x`, or zero below f32's smallest normal number.
#[inline(always)]
fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE { 0.0 } else { x }
}

/// candle-nn's AdamW update of `theta` with the gradient `grad` (see
/// [`Adam::backward_step`]), except that moments below f32's smallest
/// normal number become zero: the moments of weights whose gradient is
/// zero (the pixels an MNIST digit never touches) decay geometrically
/// through the subnormal range, where every multiplication took a
/// microcode assist on x86 and the step slowed by half; such a moment
/// changes its update by less than 1e-30.
#[multiversion(targets("x86_64+avx512f+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn adam_update(
    theta: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    grad: &[f32],
    k: &AdamConstants,
) {
    for (((t, m), v), &g) in theta
        .iter_mut()
        .zip(m.iter_mut())
        .zip(v.iter_mut())
        .zip(grad)
    {
        *m = flush(*m * k.b1 + g * k.c1);
        *v = flush(*v * k.b2 + (g * g) * k.c2);
        let (m_hat, v_hat) = (*m * k.scale_m, *v * k.scale_v);
        *t = *t * k.decay - (m_hat / (v_hat.sqrt() + k.eps)) * k.lr;
    }
}

/// One step's Adam constants, rounded to f32 from f64 as candle does.
pub(crate) struct AdamConstants {
    b1: f32,
    b2: f32,
    c1: f32,
    c2: f32,
    scale_m: f32,
    scale_v: f32,
    lr: f32,
    eps: f32,
    decay: f32,
}

impl AdamConstants {
    pub(crate) fn new(p: &ParamsAdamW, step: i32) -> Self {
        Self {
            b1: p.beta1 as f32,
            b2: p.beta2 as f32,
            c1: (1.0 - p.beta1) as f32,
            c2: (1.0 - p.beta2) as f32,
            scale_m: (1.0 / (1.0 - p.beta1.powi(step))) as f32,
            scale_v: (1.0 / (1.0 - p.beta2.powi(step))) as f32,
            lr: p.lr as f32,
            eps: p.eps as f32,
            decay: (1.0 - p.lr * p.weight_decay) as f32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::Optimizer;

    /// The same parameters, gradients and steps as candle-nn's AdamW give
    /// the same values bit for bit, with and without weight decay.
    #[test]
    fn matches_candle_nn_adamw() {
        for weight_decay in [0.0, 0.01] {
            let params = ParamsAdamW {
                lr: 0.01,
                weight_decay,
                ..ParamsAdamW::default()
            };
            let dev = Device::Cpu;
            let init = Tensor::arange(0f32, 12.0, &dev)
                .unwrap()
                .reshape((3, 4))
                .unwrap();
            let a = Var::from_tensor(&(&init * 0.1).unwrap()).unwrap();
            let b = Var::from_tensor(&(&init * 0.1).unwrap()).unwrap();
            let mut ours = Adam::new(vec![a.clone()], params.clone());
            let mut theirs = candle_nn::AdamW::new(vec![b.clone()], params).unwrap();
            let target = Tensor::ones((3, 4), DType::F32, &dev).unwrap();
            for _ in 0..25 {
                let la = (a.as_tensor() - &target)
                    .unwrap()
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap();
                let lb = (b.as_tensor() - &target)
                    .unwrap()
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap();
                ours.backward_step(&la).unwrap();
                theirs.backward_step(&lb).unwrap();
            }
            let x = a
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let y = b
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert_eq!(x, y, "weight decay {weight_decay}");
            // And it moved: the parameters approach the target.
            assert!(
                x.iter()
                    .zip(init.flatten_all().unwrap().to_vec1::<f32>().unwrap())
                    .any(|(a, b)| (a - b * 0.1).abs() > 0.1)
            );
        }
    }
}
