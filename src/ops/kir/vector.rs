//! Vector-dialect builders for [`Emit`]: 1-D `vector.load`/`vector.store` of a row slice,
//! `vector.broadcast`, `vector.fma`, `vector.reduction` and (through the scalar helpers,
//! which take the operand's type) `arith` on vectors. Kernels use them at AIE-ML widths
//! (8/16/32 lanes), the shapes Peano's vectoriser maps onto the AIE vector unit; on the host
//! `convert-vector-to-llvm` turns them into SIMD instructions.

use melior::ir::{
    r#type::{ShapedTypeLike, TypeLike},
    Attribute, Identifier, Type, Value, ValueLike,
};

use super::{Cmp, Emit, KResult};
use crate::design::ElemType;
use mlir_sys::mlirShapedTypeGetDimSize;

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

    /// `vector.reduction <kind>, %v : vector<N x T> into T`. A float `add` carries
    /// `fastmath<reassoc>`: without it the LLVM lowering must add the lanes one after the
    /// other (an ordered reduction, N dependent adds), and a vector kernel has already
    /// reordered its sum into per-lane partial sums, so the flag states what the code means;
    /// with it the host and Peano add the lanes as a tree.
    pub fn vreduce(&self, kind: Reduce, v: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        let elem =
            vector_elem(v.r#type()).ok_or_else(|| self.err("vector.reduction of a non-vector"))?;
        let mut attributes = vec![self.named("kind", self.attr(kind.mlir())?)];
        if matches!(kind, Reduce::Add) && elem.is_float() {
            attributes.push(self.named("fastmath", self.attr("#arith.fastmath<reassoc>")?));
        }
        self.op_with("vector.reduction", &[v], &attributes, elem)
    }

    /// `lanes` consecutive elements of `memref` from `idx`, widened to f32 lanes (bf16 via
    /// `arith.extf` on the vector): the vector counterpart of [`Emit::load_f32`].
    pub fn vload_f32(
        &self,
        memref: Value<'c, '_>,
        idx: &[Value<'c, '_>],
        lanes: usize,
    ) -> KResult<Value<'c, 'k>> {
        let v = self.vload(memref, idx, lanes)?;
        let f32v = self.vector_type(lanes, self.f32_type());
        if v.r#type() == f32v {
            Ok(v)
        } else {
            self.cast("arith.extf", v, f32v)
        }
    }

    /// Narrows f32 lanes to `elem` (bf16 via `arith.truncf` on the vector) and stores them at
    /// `idx`: the vector counterpart of [`Emit::store_f32`].
    pub fn vstore_f32(
        &self,
        v: Value<'c, '_>,
        memref: Value<'c, '_>,
        idx: &[Value<'c, '_>],
        elem: ElemType,
    ) -> KResult<()> {
        match elem {
            ElemType::F32 => self.vstore(v, memref, idx),
            ElemType::Bf16 => {
                let lanes = lanes_of(v.r#type())
                    .ok_or_else(|| self.err("vector store_f32 of a non-vector"))?;
                let ty = self.vector_type(lanes, self.elem_type(ElemType::Bf16));
                self.vstore(self.cast("arith.truncf", v, ty)?, memref, idx)
            }
            other => Err(self.err(format!("vector store_f32 into {} buffer", other.mlir()))),
        }
    }
}

/// The vector width of the row kernels: 16 f32 lanes, one AIE-ML `v16accfloat` accumulator
/// register (512 bits; bf16 rows load as `vector<16xbf16>` and widen with `arith.extf`), and
/// one AVX-512 register on the host.
pub const F32_LANES: usize = 16;

/// How a kernel walks a row of f32 values: in chunks of `n` lanes, `n = 1` meaning plain
/// scalars. One emitter then serves both a vectorised row (its length a multiple of the
/// vector width) and the scalar fallback for any other length, with the same loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lanes(pub usize);

/// Scalars unless said otherwise.
impl Default for Lanes {
    fn default() -> Self {
        Lanes(1)
    }
}

impl Lanes {
    /// `width` lanes when they divide `len`, else scalars.
    pub fn dividing(len: usize, width: usize) -> Lanes {
        Lanes(if width > 0 && len.is_multiple_of(width) {
            width
        } else {
            1
        })
    }

    /// [`F32_LANES`] when they divide `len`, else scalars.
    pub fn f32_row(len: usize) -> Lanes {
        Lanes::dividing(len, F32_LANES)
    }

    pub fn is_vector(self) -> bool {
        self.0 > 1
    }

    /// `n` elements from `idx`, as f32 (see [`Emit::vload_f32`], [`Emit::load_f32`]).
    pub fn load<'c, 'k>(
        self,
        e: &Emit<'c, 'k>,
        memref: Value<'c, '_>,
        idx: &[Value<'c, '_>],
    ) -> KResult<Value<'c, 'k>> {
        if self.is_vector() {
            e.vload_f32(memref, idx, self.0)
        } else {
            e.load_f32(memref, idx)
        }
    }

    /// Stores f32 chunk `v` at `idx` as `elem`.
    pub fn store(
        self,
        e: &Emit<'_, '_>,
        v: Value<'_, '_>,
        memref: Value<'_, '_>,
        idx: &[Value<'_, '_>],
        elem: ElemType,
    ) -> KResult<()> {
        if self.is_vector() {
            e.vstore_f32(v, memref, idx, elem)
        } else {
            e.store_f32(v, memref, idx, elem)
        }
    }

    /// The chunk shape of `v`: its lane count, or scalars.
    pub fn of(v: Value<'_, '_>) -> Lanes {
        Lanes(lanes_of(v.r#type()).unwrap_or(1))
    }

    /// The f32 constant `c` in this chunk shape (see [`Emit::f32_lanes`]).
    pub fn f32<'c, 'k>(self, e: &Emit<'c, 'k>, c: f64) -> KResult<Value<'c, 'k>> {
        e.f32_lanes(c, self.0)
    }

    /// A scalar repeated over the lanes.
    pub fn splat<'c, 'k>(self, e: &Emit<'c, 'k>, s: Value<'c, 'k>) -> KResult<Value<'c, 'k>> {
        if self.is_vector() {
            e.splat(s, self.0)
        } else {
            Ok(s)
        }
    }

    /// `a * b + c` as `mulf` then `addf`, on vectors as on scalars. Not `vector.fma`: mlir-aie's
    /// AIE-ML vectoriser (`convert-vector-to-aievec`) has no lowering for an f32 `vector.fma`
    /// and rejects the module, while it maps a multiply feeding an add onto the vector unit.
    pub fn mul_add<'c, 'k>(
        self,
        e: &Emit<'c, 'k>,
        a: Value<'c, '_>,
        b: Value<'c, '_>,
        c: Value<'c, '_>,
    ) -> KResult<Value<'c, 'k>> {
        e.addf(c, e.mulf(a, b)?)
    }

    /// The sum of the lanes (a scalar is its own sum).
    pub fn sum<'c, 'k>(self, e: &Emit<'c, 'k>, v: Value<'c, 'k>) -> KResult<Value<'c, 'k>> {
        self.reduce(e, Reduce::Add, v)
    }

    /// The largest lane (`maximumf`; exact under any association, so a vector max equals the
    /// scalar left-to-right one).
    pub fn max<'c, 'k>(self, e: &Emit<'c, 'k>, v: Value<'c, 'k>) -> KResult<Value<'c, 'k>> {
        self.reduce(e, Reduce::MaxF, v)
    }

    fn reduce<'c, 'k>(
        self,
        e: &Emit<'c, 'k>,
        kind: Reduce,
        v: Value<'c, 'k>,
    ) -> KResult<Value<'c, 'k>> {
        if self.is_vector() {
            e.vreduce(kind, v)
        } else {
            Ok(v)
        }
    }

    /// The chunk type of scalar type `elem`: `vector<n x elem>`, or `elem` itself.
    pub fn ty<'c>(self, e: &Emit<'c, '_>, elem: Type<'c>) -> Type<'c> {
        if self.is_vector() {
            e.vector_type(self.0, elem)
        } else {
            elem
        }
    }

    /// Which columns of the chunk starting at column `x` lie below `hi` (both `index`):
    /// `x + lane < hi` per lane as `vector<n x i1>` (an `i32` lane iota against the splat
    /// count `hi - x`), or the scalar `x < hi`.
    pub fn below<'c, 'k>(
        self,
        e: &Emit<'c, 'k>,
        x: Value<'c, '_>,
        hi: Value<'c, '_>,
    ) -> KResult<Value<'c, 'k>> {
        if !self.is_vector() {
            return e.cmpi(Cmp::Lt, x, hi);
        }
        let left = e.cast("arith.index_cast", e.subi(hi, x)?, e.int_type(32))?;
        e.cmpi(Cmp::Lt, e.lane_iota(self.0)?, e.splat(left, self.0)?)
    }

    /// `body(e, x)` for the first column `x` of every chunk of a `len`-column row.
    pub fn for_chunks<'c, F>(self, e: &Emit<'c, '_>, len: usize, body: F) -> KResult<()>
    where
        F: for<'x> FnOnce(&Emit<'c, 'x>, Value<'c, 'x>) -> KResult<()>,
    {
        if !self.is_vector() {
            return e.for_n(len, body);
        }
        let width = e.index(self.0)?;
        e.for_n(len / self.0, |e, c| body(e, e.muli(c, width)?))
    }

    /// `acc = body(e, x, acc)` over the first column `x` of every chunk of a `len`-column row.
    pub fn fold_chunks<'c, 'k, F>(
        self,
        e: &Emit<'c, 'k>,
        len: usize,
        init: Value<'c, '_>,
        body: F,
    ) -> KResult<Value<'c, 'k>>
    where
        F: for<'x> FnOnce(&Emit<'c, 'x>, Value<'c, 'x>, Value<'c, 'x>) -> KResult<Value<'c, 'x>>,
    {
        self.fold_first_chunks(e, e.index(len / self.0)?, init, body)
    }

    /// [`Lanes::fold_chunks`] over the first `chunks` chunks only (an `index` value).
    pub fn fold_first_chunks<'c, 'k, F>(
        self,
        e: &Emit<'c, 'k>,
        chunks: Value<'c, '_>,
        init: Value<'c, '_>,
        body: F,
    ) -> KResult<Value<'c, 'k>>
    where
        F: for<'x> FnOnce(&Emit<'c, 'x>, Value<'c, 'x>, Value<'c, 'x>) -> KResult<Value<'c, 'x>>,
    {
        let lo = e.index(0)?;
        if !self.is_vector() {
            return e.fold_range(lo, chunks, init, body);
        }
        let width = e.index(self.0)?;
        e.fold_range(lo, chunks, init, |e, c, acc| {
            body(e, e.muli(c, width)?, acc)
        })
    }

    /// The chunks holding columns `0..hi` (`hi` an `index`): `ceil(hi / n)`.
    pub fn chunks_below<'c, 'k>(
        self,
        e: &Emit<'c, 'k>,
        hi: Value<'c, 'k>,
    ) -> KResult<Value<'c, 'k>> {
        if !self.is_vector() {
            return Ok(hi);
        }
        let last = e.addi(hi, e.index(self.0 - 1)?)?;
        e.bin("arith.divui", last, e.index(self.0)?)
    }
}

impl<'c, 'k> Emit<'c, 'k> {
    /// `arith.constant dense<c> : vector<lanes x f32>` (a splat constant, which the AIE-ML
    /// vectoriser and the host both keep in a register), or the scalar `c` when `lanes` is 1.
    pub fn f32_lanes(&self, c: f64, lanes: usize) -> KResult<Value<'c, 'k>> {
        if lanes <= 1 {
            return self.f32(c);
        }
        let ty = self.vector_type(lanes, self.f32_type());
        let elem = melior::ir::attribute::FloatAttribute::new(self.context, self.f32_type(), c);
        let value = melior::ir::attribute::DenseElementsAttribute::new(ty, &[elem.into()])
            .map_err(|e| self.err(format!("splat constant {c}: {e}")))?;
        self.op_with(
            "arith.constant",
            &[],
            &[self.named("value", value.into())],
            ty,
        )
    }

    /// `vector.gather %memref[0][%index], %all_true, %zero`: lane `l` reads
    /// `memref[index[l]]` of a 1-D f32 memref (`index` a `vector<n x i32>`, every lane in
    /// bounds; the all-true mask and zero pass-through are the form the upstream op requires).
    pub fn gather(&self, memref: Value<'c, '_>, index: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        let lanes =
            lanes_of(index.r#type()).ok_or_else(|| self.err("vector.gather of a scalar index"))?;
        let elem = melior::ir::r#type::MemRefType::try_from(memref.r#type())
            .map_err(|e| self.err(format!("vector.gather from a non-memref: {e}")))?
            .element();
        let ty = self.vector_type(lanes, elem);
        let mask = self.attr(&format!("dense<true> : vector<{lanes}xi1>"))?;
        let mask = self.op_with(
            "arith.constant",
            &[],
            &[self.named("value", mask)],
            self.vector_type(lanes, self.int_type(1)),
        )?;
        let pass = self.f32_lanes(0.0, lanes)?;
        self.op(
            "vector.gather",
            &[memref, self.index(0)?, index, mask, pass],
            ty,
        )
    }

    /// `arith.constant dense<[0, 1, .., lanes - 1]> : vector<lanes x i32>`.
    pub fn lane_iota(&self, lanes: usize) -> KResult<Value<'c, 'k>> {
        let values: Vec<String> = (0..lanes).map(|l| l.to_string()).collect();
        let value = self.attr(&format!(
            "dense<[{}]> : vector<{lanes}xi32>",
            values.join(", ")
        ))?;
        self.op_with(
            "arith.constant",
            &[],
            &[self.named("value", value)],
            self.vector_type(lanes, self.int_type(32)),
        )
    }
}

/// The lane count of a 1-D vector type.
pub(super) fn lanes_of(ty: Type<'_>) -> Option<usize> {
    // SAFETY: as in `vector_elem`; dimension 0 exists for a vector type (never rank 0 here).
    ty.is_vector()
        .then(|| unsafe { mlirShapedTypeGetDimSize(ty.to_raw(), 0) } as usize)
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
