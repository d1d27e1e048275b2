//! Vector-dialect builders for [`Emit`]: 1-D `vector.load`/`vector.store` of a row slice,
//! `vector.broadcast`, `vector.fma`, `vector.reduction` and (through the scalar helpers,
//! which take the operand's type) `arith` on vectors. Kernels use them at AIE-ML widths
//! (8/16/32 lanes), the shapes Peano's vectoriser maps onto the AIE vector unit; on the host
//! `convert-vector-to-llvm` turns them into SIMD instructions.

use melior::ir::{
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
        let ty = self.vector_type(lanes, elem);
        self.op("vector.load", &[&[memref], idx].concat(), ty)
    }

    /// `vector.store %v, %memref[idx]`.
    pub fn vstore(
        &self,
        v: Value<'c, '_>,
        memref: Value<'c, '_>,
        idx: &[Value<'c, '_>],
    ) -> KResult<()> {
        self.op_void("vector.store", &[&[v, memref], idx].concat(), &[])
    }

    /// `vector.broadcast %scalar : T to vector<lanes x T>`.
    pub fn splat(&self, scalar: Value<'c, '_>, lanes: usize) -> KResult<Value<'c, 'k>> {
        let ty = self.vector_type(lanes, scalar.r#type());
        self.op("vector.broadcast", &[scalar], ty)
    }

    /// `vector.fma %a, %b, %c` = `a * b + c` lane-wise (one rounding).
    pub fn vfma(
        &self,
        a: Value<'c, '_>,
        b: Value<'c, '_>,
        c: Value<'c, '_>,
    ) -> KResult<Value<'c, 'k>> {
        self.op("vector.fma", &[a, b, c], a.r#type())
    }

    /// `vector.reduction <kind>, %v : vector<N x T> into T`.
    pub fn vreduce(&self, kind: Reduce, v: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        let elem =
            vector_elem(v.r#type()).ok_or_else(|| self.err("vector.reduction of a non-vector"))?;
        let kind_attr = Attribute::parse(self.context, kind.mlir())
            .ok_or_else(|| self.err("vector.reduction kind attribute"))?;
        self.op_with(
            "vector.reduction",
            &[v],
            &[self.named("kind", kind_attr)],
            elem,
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
        let attributes = self.transfer_attrs("array<i32: 1, 2, 1, 0>")?;
        let operands = [memref, idx[0], idx[1], pad];
        self.op_with("vector.transfer_read", &operands, &attributes, ty)
    }

    /// `vector.transfer_write %v, %memref[idx] {in_bounds}`: the inverse of [`Self::read_block`].
    pub fn write_block(
        &self,
        v: Value<'c, '_>,
        memref: Value<'c, '_>,
        idx: [Value<'c, '_>; 2],
    ) -> KResult<()> {
        let attributes = self.transfer_attrs("array<i32: 1, 1, 2, 0>")?;
        let operands = [v, memref, idx[0], idx[1]];
        self.op_void("vector.transfer_write", &operands, &attributes)
    }

    fn transfer_attrs(&self, segments: &str) -> KResult<Vec<(Identifier<'c>, Attribute<'c>)>> {
        Ok(vec![
            self.named(
                "permutation_map",
                self.attr("affine_map<(d0, d1) -> (d0, d1)>")?,
            ),
            self.named("in_bounds", self.attr("[true, true]")?),
            self.named("operandSegmentSizes", self.attr(segments)?),
        ])
    }

    fn zero_of(&self, elem: Type<'c>) -> KResult<Value<'c, 'k>> {
        let value = if elem.is_integer() {
            melior::ir::attribute::IntegerAttribute::new(elem, 0).into()
        } else {
            melior::ir::attribute::FloatAttribute::new(self.context, elem, 0.0).into()
        };
        self.op_with("arith.constant", &[], &[self.named("value", value)], elem)
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
        let attributes = [
            self.named("indexing_maps", self.attr(maps)?),
            self.named("iterator_types", self.attr(iterators)?),
            self.named("kind", self.attr(Reduce::Add.mlir())?),
        ];
        self.op_with("vector.contract", &[a, b, acc], &attributes, acc.r#type())
    }
}
