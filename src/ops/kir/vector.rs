//! Vector-dialect builders for [`Emit`]: 1-D `vector.load`/`vector.store` of a row slice,
//! `vector.broadcast`, `vector.fma`, `vector.reduction` and (through the scalar helpers,
//! which take the operand's type) `arith` on vectors. Kernels use them at AIE-ML widths
//! (8/16/32 lanes), the shapes Peano's vectoriser maps onto the AIE vector unit; on the host
//! `convert-vector-to-llvm` turns them into SIMD instructions.

use melior::ir::{
    operation::OperationBuilder, r#type::{ShapedTypeLike, TypeLike}, Attribute, Identifier, Type, Value, ValueLike,
};

use super::{Emit, KResult};

/// `vector.reduction` combining kinds we use.
#[derive(Debug, Clone, Copy)]
pub enum Reduce {
    Add,
    MaxF,
}

impl Reduce {
    fn mlir(self) -> &'static str {
        match self {
            Reduce::Add => "#vector.kind<add>",
            Reduce::MaxF => "#vector.kind<maximumf>",
        }
    }
}

impl<'c, 'k> Emit<'c, 'k> {
    /// `vector<lanes x elem>`.
    pub fn vector_type(&self, lanes: usize, elem: Type<'c>) -> Type<'c> {
        Type::vector(&[lanes as u64], elem)
    }

    /// `vector.load %memref[idx] : memref<..>, vector<lanes x elem>`: `lanes` consecutive
    /// elements along the innermost dimension, starting at `idx`.
    pub fn vload(
        &self,
        memref: Value<'c, '_>,
        idx: &[Value<'c, '_>],
        lanes: usize,
    ) -> KResult<Value<'c, 'k>> {
        let elem = melior::ir::r#type::MemRefType::try_from(memref.r#type())
            .map_err(|e| self.err(format!("vector.load from a non-memref: {e}")))?
            .element();
        self.push(
            OperationBuilder::new("vector.load", self.location)
                .add_operands(&[memref])
                .add_operands(idx)
                .add_results(&[self.vector_type(lanes, elem)])
                .build(),
            "vector.load",
        )
    }

    /// `vector.store %v, %memref[idx]`.
    pub fn vstore(
        &self,
        v: Value<'c, '_>,
        memref: Value<'c, '_>,
        idx: &[Value<'c, '_>],
    ) -> KResult<()> {
        self.push_void(
            OperationBuilder::new("vector.store", self.location)
                .add_operands(&[v, memref])
                .add_operands(idx)
                .build(),
            "vector.store",
        )
    }

    /// `vector.broadcast %scalar : T to vector<lanes x T>`.
    pub fn splat(&self, scalar: Value<'c, '_>, lanes: usize) -> KResult<Value<'c, 'k>> {
        self.push(
            OperationBuilder::new("vector.broadcast", self.location)
                .add_operands(&[scalar])
                .add_results(&[self.vector_type(lanes, scalar.r#type())])
                .build(),
            "vector.broadcast",
        )
    }

    /// `vector.fma %a, %b, %c` = `a * b + c` lane-wise (one rounding).
    pub fn vfma(
        &self,
        a: Value<'c, '_>,
        b: Value<'c, '_>,
        c: Value<'c, '_>,
    ) -> KResult<Value<'c, 'k>> {
        self.push(
            OperationBuilder::new("vector.fma", self.location)
                .add_operands(&[a, b, c])
                .add_results(&[a.r#type()])
                .build(),
            "vector.fma",
        )
    }

    /// `vector.reduction <kind>, %v : vector<N x T> into T`.
    pub fn vreduce(&self, kind: Reduce, v: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        let elem = vector_elem(v.r#type())
            .ok_or_else(|| self.err("vector.reduction of a non-vector"))?;
        let kind_attr = Attribute::parse(self.context, kind.mlir())
            .ok_or_else(|| self.err("vector.reduction kind attribute"))?;
        self.push(
            OperationBuilder::new("vector.reduction", self.location)
                .add_attributes(&[(Identifier::new(self.context, "kind"), kind_attr)])
                .add_operands(&[v])
                .add_results(&[elem])
                .build(),
            "vector.reduction",
        )
    }
}

/// The element type of a vector type.
fn vector_elem(ty: Type<'_>) -> Option<Type<'_>> {
    // SAFETY: `ty` is a valid vector (shaped) type, checked first; the element type lives in
    // the same context.
    ty.is_vector()
        .then(|| unsafe { Type::from_raw(mlir_sys::mlirShapedTypeGetElementType(ty.to_raw())) })
}
