//! Vector-dialect builders for [`Emit`]: 1-D `vector.load`/`vector.store` of a row slice,
//! `vector.broadcast`, `vector.fma`, `vector.reduction` and (through the scalar helpers,
//! which take the operand's type) `arith` on vectors. Kernels use them at AIE-ML widths
//! (8/16/32 lanes), the shapes Peano's vectoriser maps onto the AIE vector unit; on the host
//! `convert-vector-to-llvm` turns them into SIMD instructions.

use melior::ir::{
    operation::OperationBuilder,
    r#type::{ShapedTypeLike, TypeLike},
    Attribute, Identifier, Type, Value, ValueLike,
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
        let elem =
            vector_elem(v.r#type()).ok_or_else(|| self.err("vector.reduction of a non-vector"))?;
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

impl<'c, 'k> Emit<'c, 'k> {
    fn attr(&self, source: &str) -> KResult<Attribute<'c>> {
        Attribute::parse(self.context, source)
            .ok_or_else(|| self.err(format!("bad attribute {source}")))
    }

    /// `vector.transfer_read %memref[idx], %pad {in_bounds} : memref<..>, vector<rows x cols>`:
    /// an in-bounds 2-D block of a 2-D memref (identity permutation).
    pub fn read_block(
        &self,
        memref: Value<'c, '_>,
        idx: [Value<'c, '_>; 2],
        [rows, cols]: [usize; 2],
    ) -> KResult<Value<'c, 'k>> {
        let elem = melior::ir::r#type::MemRefType::try_from(memref.r#type())
            .map_err(|e| self.err(format!("vector.transfer_read from a non-memref: {e}")))?
            .element();
        let pad = self.zero_of(elem)?;
        let ty = Type::vector(&[rows as u64, cols as u64], elem);
        self.push(
            OperationBuilder::new("vector.transfer_read", self.location)
                .add_operands(&[memref, idx[0], idx[1], pad])
                .add_attributes(&self.transfer_attrs("array<i32: 1, 2, 1, 0>")?)
                .add_results(&[ty])
                .build(),
            "vector.transfer_read",
        )
    }

    /// `vector.transfer_write %v, %memref[idx] {in_bounds}`: the inverse of [`Self::read_block`].
    pub fn write_block(
        &self,
        v: Value<'c, '_>,
        memref: Value<'c, '_>,
        idx: [Value<'c, '_>; 2],
    ) -> KResult<()> {
        self.push_void(
            OperationBuilder::new("vector.transfer_write", self.location)
                .add_operands(&[v, memref, idx[0], idx[1]])
                .add_attributes(&self.transfer_attrs("array<i32: 1, 1, 2, 0>")?)
                .build(),
            "vector.transfer_write",
        )
    }

    fn transfer_attrs(&self, segments: &str) -> KResult<Vec<(Identifier<'c>, Attribute<'c>)>> {
        Ok(vec![
            (
                Identifier::new(self.context, "permutation_map"),
                self.attr("affine_map<(d0, d1) -> (d0, d1)>")?,
            ),
            (
                Identifier::new(self.context, "in_bounds"),
                self.attr("[true, true]")?,
            ),
            (
                Identifier::new(self.context, "operandSegmentSizes"),
                self.attr(segments)?,
            ),
        ])
    }

    fn zero_of(&self, elem: Type<'c>) -> KResult<Value<'c, 'k>> {
        let value = if elem.is_integer() {
            melior::ir::attribute::IntegerAttribute::new(elem, 0).into()
        } else {
            melior::ir::attribute::FloatAttribute::new(self.context, elem, 0.0).into()
        };
        self.push(
            OperationBuilder::new("arith.constant", self.location)
                .add_attributes(&[(Identifier::new(self.context, "value"), value)])
                .add_results(&[elem])
                .build(),
            "arith.constant",
        )
    }

    /// `vector.contract` of a `[m x k]` and a `[k x n]` block into a `[m x n]` accumulator
    /// (row-major matmul maps, `add` kind): the shape of an AIE-ML `mmul`.
    pub fn contract_mm(
        &self,
        a: Value<'c, '_>,
        b: Value<'c, '_>,
        acc: Value<'c, '_>,
    ) -> KResult<Value<'c, 'k>> {
        let maps = "[affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d2, d1)>, \
                    affine_map<(d0, d1, d2) -> (d0, d1)>]";
        let iterators = "[#vector.iterator_type<parallel>, #vector.iterator_type<parallel>, \
                         #vector.iterator_type<reduction>]";
        self.push(
            OperationBuilder::new("vector.contract", self.location)
                .add_operands(&[a, b, acc])
                .add_attributes(&[
                    (
                        Identifier::new(self.context, "indexing_maps"),
                        self.attr(maps)?,
                    ),
                    (
                        Identifier::new(self.context, "iterator_types"),
                        self.attr(iterators)?,
                    ),
                    (
                        Identifier::new(self.context, "kind"),
                        self.attr(Reduce::Add.mlir())?,
                    ),
                ])
                .add_results(&[acc.r#type()])
                .build(),
            "vector.contract",
        )
    }
}
