//! The part of TensorFlow Lite's flatbuffer schema (`schema.fbs`) that
//! `tinygen import` reads, as typed views over the verified bytes.
//!
//! The tables are declared by hand, field ids as in TensorFlow's
//! `tensorflow/compiler/mlir/lite/schema/schema.fbs`, so no code generator
//! is needed. [`model`] runs the flatbuffers crate's verifier over every
//! field read here, with the type it is read as, before any is read.

use flatbuffers::{
    Follow, ForwardsUOffset, InvalidFlatbuffer, Table, Vector, Verifiable, Verifier,
    VerifierOptions,
};

type Result<T> = std::result::Result<T, InvalidFlatbuffer>;
type Tables<'a, T> = ForwardsUOffset<Vector<'a, ForwardsUOffset<T>>>;
type Scalars<'a, T> = ForwardsUOffset<Vector<'a, T>>;

/// The vtable offset of field `id`.
const fn slot(id: u16) -> u16 {
    4 + 2 * id
}

/// Declares a table view: a newtype over [`Table`] that the verifier and
/// `Follow` know.
macro_rules! table {
    ($(#[$doc:meta])* $name:ident { $($field:literal: $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub struct $name<'a>(Table<'a>);

        impl<'a> Follow<'a> for $name<'a> {
            type Inner = Self;
            unsafe fn follow(buf: &'a [u8], loc: usize) -> Self {
                // SAFETY: the caller's contract (a table at `loc`), as Table's.
                Self(unsafe { Table::new(buf, loc) })
            }
        }

        impl Verifiable for $name<'_> {
            fn run_verifier(v: &mut Verifier, pos: usize) -> Result<()> {
                v.visit_table(pos)?
                    $(.visit_field::<$ty>(stringify!($field), slot($field), false)?)*
                    .finish();
                Ok(())
            }
        }
    };
}

table!(
    /// `Model`: 1 operator_codes, 2 subgraphs, 4 buffers.
    Model { 0: u32, 1: Tables<'_, OperatorCode>, 2: Tables<'_, SubGraph>, 4: Tables<'_, Buffer> }
);
table!(
    /// `OperatorCode`: 0 deprecated_builtin_code, 3 builtin_code.
    OperatorCode { 0: i8, 3: i32 }
);
table!(
    /// `SubGraph`: 0 tensors, 1 inputs, 2 outputs, 3 operators.
    SubGraph {
        0: Tables<'_, Tensor>,
        1: Scalars<'_, i32>,
        2: Scalars<'_, i32>,
        3: Tables<'_, Operator>,
    }
);
table!(
    /// `Tensor`: 0 shape, 1 type, 2 buffer, 3 name, 4 quantization.
    Tensor {
        0: Scalars<'_, i32>,
        1: i8,
        2: u32,
        3: ForwardsUOffset<&str>,
        4: ForwardsUOffset<Quantization>,
    }
);
table!(
    /// `QuantizationParameters`: 2 scale, 3 zero_point, 6 quantized_dimension.
    Quantization { 2: Scalars<'_, f32>, 3: Scalars<'_, i64>, 6: i32 }
);
table!(
    /// `Operator`: 0 opcode_index, 1 inputs, 2 outputs, 3 builtin_options_type,
    /// 4 builtin_options (read only as [`FullyConnectedOptions`]).
    Operator {
        0: u32,
        1: Scalars<'_, i32>,
        2: Scalars<'_, i32>,
        3: u8,
        4: ForwardsUOffset<FullyConnectedOptions>,
    }
);
table!(
    /// `FullyConnectedOptions`: 0 fused_activation_function. Any options
    /// table verifies as this one (its field 0 read as one byte stays in
    /// bounds); it is read only when the union's type says so.
    FullyConnectedOptions { 0: i8 }
);
table!(
    /// `Buffer`: 0 data, 1 offset, 2 size (data outside the flatbuffer).
    Buffer { 0: Scalars<'_, u8>, 1: u64, 2: u64 }
);

/// Reads field `id` of a verified table.
fn get<'a, T: Follow<'a> + 'a>(table: &Table<'a>, id: u16) -> Option<T::Inner> {
    // SAFETY: every view is built by `model`, whose verifier checked each
    // field read through `get` with the very type it is read as here.
    unsafe { table.get::<T>(slot(id), None) }
}

/// Reads scalar field `id` of a verified table, or the schema's default.
fn scalar<'a, T: Follow<'a, Inner = T> + Copy + 'a>(table: &Table<'a>, id: u16, default: T) -> T {
    // SAFETY: as `get`.
    unsafe { table.get::<T>(slot(id), Some(default)) }.unwrap_or(default)
}

/// The file identifier of a TFLite flatbuffer, at bytes 4..8.
pub const IDENTIFIER: &[u8; 4] = b"TFL3";

/// Verifies `bytes` as a TFLite model and returns its root.
pub fn model(bytes: &[u8]) -> Result<Model<'_>> {
    let options = VerifierOptions::default();
    flatbuffers::root_with_opts::<Model>(&options, bytes)
}

impl<'a> Model<'a> {
    /// The schema version (3 today).
    pub fn version(&self) -> u32 {
        scalar(&self.0, 0, 0)
    }

    /// `BuiltinOperator` code of each operator code.
    pub fn operator_codes(&self) -> Vec<i32> {
        get::<Tables<'a, OperatorCode>>(&self.0, 1)
            .map(|v| {
                v.iter()
                    .map(|c| {
                        // The larger of the two fields: the byte before
                        // schema 3a, the int after (placeholder 127 in the byte).
                        i32::from(scalar::<i8>(&c.0, 0, 0)).max(scalar::<i32>(&c.0, 3, 0))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The subgraphs (the first is the model's main graph).
    pub fn subgraphs(&self) -> Vec<SubGraph<'a>> {
        get::<Tables<'a, SubGraph>>(&self.0, 2)
            .map(|v| v.iter().collect())
            .unwrap_or_default()
    }

    /// Buffer `index`'s bytes, if it exists. `Err` for a buffer stored
    /// outside the flatbuffer (models over 2 GB).
    pub fn buffer(&self, index: u32) -> std::result::Result<&'a [u8], &'static str> {
        let Some(buffer) = get::<Tables<'a, Buffer>>(&self.0, 4)
            .and_then(|v| (index as usize).lt(&v.len()).then(|| v.get(index as usize)))
        else {
            return Err("a tensor names a buffer the file does not have");
        };
        if scalar::<u64>(&buffer.0, 1, 0) != 0 || scalar::<u64>(&buffer.0, 2, 0) != 0 {
            return Err("a buffer stored outside the flatbuffer is not supported");
        }
        Ok(get::<Scalars<'a, u8>>(&buffer.0, 0).map_or(&[][..], |v| v.bytes()))
    }
}

impl<'a> SubGraph<'a> {
    /// The tensors.
    pub fn tensors(&self) -> Vec<Tensor<'a>> {
        get::<Tables<'a, Tensor>>(&self.0, 0)
            .map(|v| v.iter().collect())
            .unwrap_or_default()
    }

    /// Indices of the graph's input tensors.
    pub fn inputs(&self) -> Vec<i32> {
        get::<Scalars<'a, i32>>(&self.0, 1).map_or_else(Vec::new, |v| v.iter().collect())
    }

    /// Indices of the graph's output tensors.
    pub fn outputs(&self) -> Vec<i32> {
        get::<Scalars<'a, i32>>(&self.0, 2).map_or_else(Vec::new, |v| v.iter().collect())
    }

    /// The operators, in execution order.
    pub fn operators(&self) -> Vec<Operator<'a>> {
        get::<Tables<'a, Operator>>(&self.0, 3)
            .map(|v| v.iter().collect())
            .unwrap_or_default()
    }
}

/// `TensorType` values `tinygen import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    /// FLOAT32 (0).
    F32,
    /// INT32 (2).
    I32,
    /// INT8 (9).
    I8,
    /// Any other type, by its code.
    Other(i8),
}

impl<'a> Tensor<'a> {
    /// The shape (empty for a scalar or an unknown shape).
    pub fn shape(&self) -> Vec<i32> {
        get::<Scalars<'a, i32>>(&self.0, 0).map_or_else(Vec::new, |v| v.iter().collect())
    }

    /// The element type.
    pub fn kind(&self) -> TensorType {
        match scalar::<i8>(&self.0, 1, 0) {
            0 => TensorType::F32,
            2 => TensorType::I32,
            9 => TensorType::I8,
            other => TensorType::Other(other),
        }
    }

    /// Index of the buffer holding a constant tensor's data (0: none).
    pub fn buffer(&self) -> u32 {
        scalar(&self.0, 2, 0)
    }

    /// The tensor's name.
    pub fn name(&self) -> &'a str {
        get::<ForwardsUOffset<&str>>(&self.0, 3).unwrap_or("")
    }

    /// Scales, zero points and the quantized dimension (empty without
    /// quantization).
    pub fn quantization(&self) -> (Vec<f32>, Vec<i64>, i32) {
        match get::<ForwardsUOffset<Quantization>>(&self.0, 4) {
            Some(q) => (
                get::<Scalars<'a, f32>>(&q.0, 2).map_or_else(Vec::new, |v| v.iter().collect()),
                get::<Scalars<'a, i64>>(&q.0, 3).map_or_else(Vec::new, |v| v.iter().collect()),
                scalar(&q.0, 6, 0),
            ),
            None => (Vec::new(), Vec::new(), 0),
        }
    }
}

/// `BuiltinOptions` union tag of `FullyConnectedOptions`.
const FULLY_CONNECTED_OPTIONS: u8 = 8;

impl<'a> Operator<'a> {
    /// Index into the model's operator codes.
    pub fn opcode_index(&self) -> u32 {
        scalar(&self.0, 0, 0)
    }

    /// Input tensor indices (-1: an absent optional input).
    pub fn inputs(&self) -> Vec<i32> {
        get::<Scalars<'a, i32>>(&self.0, 1).map_or_else(Vec::new, |v| v.iter().collect())
    }

    /// Output tensor indices.
    pub fn outputs(&self) -> Vec<i32> {
        get::<Scalars<'a, i32>>(&self.0, 2).map_or_else(Vec::new, |v| v.iter().collect())
    }

    /// A FULLY_CONNECTED operator's fused activation
    /// (`ActivationFunctionType`: 0 none, 1 relu, 2 relu_n1_to_1, 3 relu6,
    /// 4 tanh, 5 sign_bit); 0 without options.
    pub fn fused_activation(&self) -> i8 {
        if scalar::<u8>(&self.0, 3, 0) != FULLY_CONNECTED_OPTIONS {
            return 0;
        }
        get::<ForwardsUOffset<FullyConnectedOptions>>(&self.0, 4)
            .map_or(0, |o| scalar::<i8>(&o.0, 0, 0))
    }
}
