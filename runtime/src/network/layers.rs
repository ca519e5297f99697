//! A fixed-capacity list of layers, read from and written to a file's spec
//! without a heap: the layer tables of f32 and int8 networks.

use core::fmt;

use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::MAX_LAYERS;
use crate::{Error, Shape};

/// A layer type a [`LayerList`] holds.
pub trait ListedLayer: Copy {
    /// What unused slots hold.
    const EMPTY: Self;
    /// Width of the layer's input.
    fn inputs(&self) -> u16;
    /// Width of the layer's output.
    fn outputs(&self) -> u16;
}

/// Up to [`MAX_LAYERS`] layers, kept inline.
///
/// Encoded as a postcard sequence (a varint count, then each layer). A
/// decoded list may say it has more than [`MAX_LAYERS`] layers (then only
/// the first ones are kept and parsing rejects the file with
/// [`Error::TooManyLayers`]).
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LayerList<L> {
    layers: [L; MAX_LAYERS],
    /// Number of layers in the file, possibly more than `MAX_LAYERS`.
    count: usize,
}

impl<L: ListedLayer> LayerList<L> {
    /// The layers, or `TooManyLayers` if there are more than [`MAX_LAYERS`].
    pub fn new(layers: &[L]) -> Result<Self, Error> {
        if layers.len() > MAX_LAYERS {
            return Err(Error::TooManyLayers {
                layers: layers.len(),
                max: MAX_LAYERS,
            });
        }
        let mut out = Self {
            layers: [L::EMPTY; MAX_LAYERS],
            count: layers.len(),
        };
        for (slot, layer) in out.layers.iter_mut().zip(layers) {
            *slot = *layer;
        }
        Ok(out)
    }

    /// The layers kept (all of them when there are at most [`MAX_LAYERS`]).
    pub fn as_slice(&self) -> &[L] {
        self.layers.get(..self.count).unwrap_or(&self.layers)
    }

    /// Number of layers the list declared.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The layers of a network that maps `input` to `output` values: at
    /// most [`MAX_LAYERS`] (`TooManyLayers`), at least one (`Empty`), the
    /// first reading `input` and the last writing `output` (`NetworkEnds`).
    pub fn between(&self, input: u16, output: u16) -> Result<&[L], Error> {
        if self.count > MAX_LAYERS {
            return Err(Error::TooManyLayers {
                layers: self.count,
                max: MAX_LAYERS,
            });
        }
        let layers = self.as_slice();
        let (Some(first), Some(last)) = (layers.first(), layers.last()) else {
            return Err(Error::InvalidShape(Shape::Empty));
        };
        if first.inputs() != input || last.outputs() != output {
            return Err(Error::InvalidShape(Shape::NetworkEnds));
        }
        Ok(layers)
    }
}

impl<L: ListedLayer + fmt::Debug> fmt::Debug for LayerList<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<L: ListedLayer + Serialize> Serialize for LayerList<L> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let layers = self.as_slice();
        let mut seq = serializer.serialize_seq(Some(layers.len()))?;
        for layer in layers {
            seq.serialize_element(layer)?;
        }
        seq.end()
    }
}

impl<'de, L: ListedLayer + Deserialize<'de>> Deserialize<'de> for LayerList<L> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LayersVisitor<L>(core::marker::PhantomData<L>);

        impl<'de, L: ListedLayer + Deserialize<'de>> Visitor<'de> for LayersVisitor<L> {
            type Value = LayerList<L>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of layers")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LayerList<L>, A::Error> {
                let mut layers = LayerList {
                    layers: [L::EMPTY; MAX_LAYERS],
                    count: 0,
                };
                // Read every element (so the rest of the body stays in
                // step), keep the first MAX_LAYERS, count them all.
                while let Some(layer) = seq.next_element::<L>()? {
                    if let Some(slot) = layers.layers.get_mut(layers.count) {
                        *slot = layer;
                    }
                    layers.count = layers.count.saturating_add(1);
                }
                Ok(layers)
            }
        }

        deserializer.deserialize_seq(LayersVisitor(core::marker::PhantomData))
    }
}
