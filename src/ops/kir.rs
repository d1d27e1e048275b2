//! A small builder for kernel bodies: plain `scf.for` loops, `memref.load/store`, `arith` and
//! `math` ops appended to a block through melior. Every op kernel is written with it, so the
//! bodies stay in upstream dialects that both aie-opt/Peano and the host JIT lower.

use melior::{
    ir::{
        attribute::{DenseElementsAttribute, FloatAttribute, IntegerAttribute, StringAttribute},
        block::BlockLike,
        operation::OperationBuilder,
        r#type::{IntegerType, MemRefType},
        Attribute, Block, Identifier, Location, Operation, Region, RegionLike, Type, Value,
        ValueLike,
    },
    Context,
};

use crate::design::{DesignError, ElemType, KernelCtx};

mod vector;
pub use vector::{Lanes, Reduce, F32_LANES};

/// Appends ops to one block. `'k` is the borrow of that block.
pub struct Emit<'c, 'k> {
    pub context: &'c Context,
    pub location: Location<'c>,
    pub block: &'k Block<'c>,
    /// Kernel name, for error messages.
    pub kernel: &'k str,
}

/// Comparison predicates we use (`arith.cmpi` / `arith.cmpf` integer encodings).
#[derive(Debug, Clone, Copy)]
pub enum Cmp {
    /// signed less-than (`slt` = 2) / ordered less-than (`olt` = 4)
    Lt,
    /// signed greater-than (`sgt` = 4) / ordered greater-than (`ogt` = 2)
    Gt,
}

pub type KResult<T> = Result<T, DesignError>;

impl<'c, 'k> Emit<'c, 'k> {
    pub fn new(ctx: &KernelCtx<'c, '_>, block: &'k Block<'c>, kernel: &'k str) -> Self {
        Self {
            context: ctx.context,
            location: ctx.location,
            block,
            kernel,
        }
    }

    /// A kernel error naming this kernel (for emitters built on `Emit`).
    pub fn err(&self, message: impl std::fmt::Display) -> DesignError {
        DesignError::Kernel {
            kernel: self.kernel.to_string(),
            message: message.to_string(),
        }
    }

    fn push(&self, op: Result<Operation<'c>, melior::Error>, what: &str) -> KResult<Value<'c, 'k>> {
        let op = op.map_err(|e| self.err(format!("building {what}: {e}")))?;
        let op_ref = self.block.append_operation(op);
        op_ref
            .result(0)
            .map(Into::into)
            .map_err(|e| self.err(format!("{what} has no result: {e}")))
    }

    fn push_void(&self, op: Result<Operation<'c>, melior::Error>, what: &str) -> KResult<()> {
        let op = op.map_err(|e| self.err(format!("building {what}: {e}")))?;
        self.block.append_operation(op);
        Ok(())
    }

    /// `name` on `operands` with `attributes` and `results`, not yet appended.
    fn operation(
        &self,
        name: &str,
        operands: &[Value<'c, '_>],
        attributes: &[(Identifier<'c>, Attribute<'c>)],
        results: &[Type<'c>],
    ) -> Result<Operation<'c>, melior::Error> {
        OperationBuilder::new(name, self.location)
            .add_operands(operands)
            .add_attributes(attributes)
            .add_results(results)
            .build()
    }

    /// Appends `name` on `operands` with one result of type `result`.
    fn op(
        &self,
        name: &str,
        operands: &[Value<'c, '_>],
        result: Type<'c>,
    ) -> KResult<Value<'c, 'k>> {
        self.op_with(name, operands, &[], result)
    }

    /// Appends `name` on `operands` with `attributes` and one result of type `result`.
    fn op_with(
        &self,
        name: &str,
        operands: &[Value<'c, '_>],
        attributes: &[(Identifier<'c>, Attribute<'c>)],
        result: Type<'c>,
    ) -> KResult<Value<'c, 'k>> {
        self.push(self.operation(name, operands, attributes, &[result]), name)
    }

    /// Appends `name` on `operands` with `attributes`, without results.
    fn op_void(
        &self,
        name: &str,
        operands: &[Value<'c, '_>],
        attributes: &[(Identifier<'c>, Attribute<'c>)],
    ) -> KResult<()> {
        self.push_void(self.operation(name, operands, attributes, &[]), name)
    }

    /// The attribute `name = value`.
    fn named(&self, name: &str, value: Attribute<'c>) -> (Identifier<'c>, Attribute<'c>) {
        (Identifier::new(self.context, name), value)
    }

    /// An `Emit` for the body block of a loop this one appends.
    fn nested<'x>(&self, block: &'x Block<'c>) -> Emit<'c, 'x>
    where
        'k: 'x,
    {
        Emit {
            context: self.context,
            location: self.location,
            block,
            kernel: self.kernel,
        }
    }

    // ---- types --------------------------------------------------------------------------

    pub fn index_type(&self) -> Type<'c> {
        Type::index(self.context)
    }

    pub fn int_type(&self, bits: u32) -> Type<'c> {
        IntegerType::new(self.context, bits).into()
    }

    pub fn f32_type(&self) -> Type<'c> {
        Type::float32(self.context)
    }

    pub fn elem_type(&self, elem: ElemType) -> Type<'c> {
        elem_type(self.context, elem)
    }

    // ---- constants ----------------------------------------------------------------------

    pub fn index(&self, v: usize) -> KResult<Value<'c, 'k>> {
        self.constant(IntegerAttribute::new(self.index_type(), v as i64).into())
    }

    pub fn int(&self, bits: u32, v: i64) -> KResult<Value<'c, 'k>> {
        self.constant(IntegerAttribute::new(self.int_type(bits), v).into())
    }

    pub fn f32(&self, v: f64) -> KResult<Value<'c, 'k>> {
        self.constant(FloatAttribute::new(self.context, self.f32_type(), v).into())
    }

    fn constant(&self, value: Attribute<'c>) -> KResult<Value<'c, 'k>> {
        self.push(
            OperationBuilder::new("arith.constant", self.location)
                .add_attributes(&[self.named("value", value)])
                .enable_result_type_inference()
                .build(),
            "arith.constant",
        )
    }

    // ---- memory -------------------------------------------------------------------------

    pub fn load(&self, memref: Value<'c, '_>, idx: &[Value<'c, '_>]) -> KResult<Value<'c, 'k>> {
        self.push(
            OperationBuilder::new("memref.load", self.location)
                .add_operands(&[memref])
                .add_operands(idx)
                .enable_result_type_inference()
                .build(),
            "memref.load",
        )
    }

    pub fn store(
        &self,
        value: Value<'c, '_>,
        memref: Value<'c, '_>,
        idx: &[Value<'c, '_>],
    ) -> KResult<()> {
        self.op_void("memref.store", &[&[value, memref], idx].concat(), &[])
    }

    /// `memref.get_global @name : memref<...>`.
    pub fn get_global(&self, name: &str, ty: Type<'c>) -> KResult<Value<'c, 'k>> {
        let symbol = melior::ir::attribute::FlatSymbolRefAttribute::new(self.context, name);
        let attributes = [self.named("name", symbol.into())];
        self.op_with("memref.get_global", &[], &attributes, ty)
    }

    // ---- arithmetic ---------------------------------------------------------------------

    pub fn bin(&self, name: &str, a: Value<'c, '_>, b: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        self.op(name, &[a, b], a.r#type())
    }

    pub fn addf(&self, a: Value<'c, '_>, b: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        self.bin("arith.addf", a, b)
    }
    pub fn subf(&self, a: Value<'c, '_>, b: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        self.bin("arith.subf", a, b)
    }
    pub fn mulf(&self, a: Value<'c, '_>, b: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        self.bin("arith.mulf", a, b)
    }
    pub fn divf(&self, a: Value<'c, '_>, b: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        self.bin("arith.divf", a, b)
    }
    pub fn maxf(&self, a: Value<'c, '_>, b: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        self.bin("arith.maximumf", a, b)
    }
    pub fn minf(&self, a: Value<'c, '_>, b: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        self.bin("arith.minimumf", a, b)
    }
    pub fn addi(&self, a: Value<'c, '_>, b: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        self.bin("arith.addi", a, b)
    }
    pub fn subi(&self, a: Value<'c, '_>, b: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        self.bin("arith.subi", a, b)
    }
    pub fn muli(&self, a: Value<'c, '_>, b: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        self.bin("arith.muli", a, b)
    }
    pub fn shrsi(&self, a: Value<'c, '_>, b: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        self.bin("arith.shrsi", a, b)
    }
    pub fn maxsi(&self, a: Value<'c, '_>, b: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        self.bin("arith.maxsi", a, b)
    }
    pub fn minsi(&self, a: Value<'c, '_>, b: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        self.bin("arith.minsi", a, b)
    }

    /// A unary op whose result type is its operand's (`math.exp`, `math.log10`, ...).
    pub fn unary(&self, name: &str, a: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        self.op(name, &[a], a.r#type())
    }

    /// A conversion (`arith.extf`, `arith.truncf`, `arith.extsi`, `arith.sitofp`, ...).
    pub fn cast(&self, name: &str, a: Value<'c, '_>, to: Type<'c>) -> KResult<Value<'c, 'k>> {
        self.op(name, &[a], to)
    }

    /// Loads an element and widens it to f32 (bf16 via `arith.extf`).
    pub fn load_f32(&self, memref: Value<'c, '_>, idx: &[Value<'c, '_>]) -> KResult<Value<'c, 'k>> {
        let v = self.load(memref, idx)?;
        if v.r#type() == self.f32_type() {
            Ok(v)
        } else {
            self.cast("arith.extf", v, self.f32_type())
        }
    }

    /// Narrows an f32 to the memref's element type (bf16 via `arith.truncf`) and stores it.
    pub fn store_f32(
        &self,
        v: Value<'c, '_>,
        memref: Value<'c, '_>,
        idx: &[Value<'c, '_>],
        elem: ElemType,
    ) -> KResult<()> {
        match elem {
            ElemType::F32 => self.store(v, memref, idx),
            ElemType::Bf16 => {
                let t = self.cast("arith.truncf", v, self.elem_type(ElemType::Bf16))?;
                self.store(t, memref, idx)
            }
            other => Err(self.err(format!("store_f32 into {} buffer", other.mlir()))),
        }
    }

    pub fn cmpi(&self, pred: Cmp, a: Value<'c, '_>, b: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        let p = match pred {
            Cmp::Lt => 2, // slt
            Cmp::Gt => 4, // sgt
        };
        self.cmp("arith.cmpi", p, a, b)
    }

    pub fn cmpf(&self, pred: Cmp, a: Value<'c, '_>, b: Value<'c, '_>) -> KResult<Value<'c, 'k>> {
        let p = match pred {
            Cmp::Lt => 4, // olt
            Cmp::Gt => 2, // ogt
        };
        self.cmp("arith.cmpf", p, a, b)
    }

    fn cmp(
        &self,
        name: &str,
        pred: i64,
        a: Value<'c, '_>,
        b: Value<'c, '_>,
    ) -> KResult<Value<'c, 'k>> {
        let predicate = IntegerAttribute::new(self.int_type(64), pred);
        let attributes = [self.named("predicate", predicate.into())];
        // One i1 per lane when comparing vectors.
        let i1 = self.int_type(1);
        let ty = match vector::lanes_of(a.r#type()) {
            Some(lanes) => self.vector_type(lanes, i1),
            None => i1,
        };
        self.op_with(name, &[a, b], &attributes, ty)
    }

    pub fn select(
        &self,
        cond: Value<'c, '_>,
        a: Value<'c, '_>,
        b: Value<'c, '_>,
    ) -> KResult<Value<'c, 'k>> {
        self.op("arith.select", &[cond, a, b], a.r#type())
    }

    // ---- loops --------------------------------------------------------------------------

    /// `scf.for %i = 0 to n step 1 { body(%i) }`.
    pub fn for_n<F>(&self, n: usize, body: F) -> KResult<()>
    where
        F: for<'x> FnOnce(&Emit<'c, 'x>, Value<'c, 'x>) -> KResult<()>,
    {
        let lo = self.index(0)?;
        let hi = self.index(n)?;
        self.for_range(lo, hi, body)
    }

    /// `scf.for %i = lo to hi step 1 { body(%i) }` with index bounds.
    pub fn for_range<F>(&self, lo: Value<'c, '_>, hi: Value<'c, '_>, body: F) -> KResult<()>
    where
        F: for<'x> FnOnce(&Emit<'c, 'x>, Value<'c, 'x>) -> KResult<()>,
    {
        let step = self.index(1)?;
        let inner = Block::new(&[(self.index_type(), self.location)]);
        {
            let e = self.nested(&inner);
            let iv: Value = inner.argument(0).map_err(|err| self.err(err))?.into();
            body(&e, iv)?;
            e.op_void("scf.yield", &[], &[])?;
        }
        let region = Region::new();
        region.append_block(inner);
        self.push_void(
            OperationBuilder::new("scf.for", self.location)
                .add_operands(&[lo, hi, step])
                .add_regions([region])
                .build(),
            "scf.for",
        )
    }

    /// `scf.for` over `0..n` carrying one value: `acc = body(i, acc)`; returns the final value.
    pub fn fold_n<F>(&self, n: usize, init: Value<'c, '_>, body: F) -> KResult<Value<'c, 'k>>
    where
        F: for<'x> FnOnce(&Emit<'c, 'x>, Value<'c, 'x>, Value<'c, 'x>) -> KResult<Value<'c, 'x>>,
    {
        let lo = self.index(0)?;
        let hi = self.index(n)?;
        self.fold_range(lo, hi, init, body)
    }

    /// `scf.for` over `lo..hi` (index values) carrying one value; returns the final value.
    pub fn fold_range<F>(
        &self,
        lo: Value<'c, '_>,
        hi: Value<'c, '_>,
        init: Value<'c, '_>,
        body: F,
    ) -> KResult<Value<'c, 'k>>
    where
        F: for<'x> FnOnce(&Emit<'c, 'x>, Value<'c, 'x>, Value<'c, 'x>) -> KResult<Value<'c, 'x>>,
    {
        let step = self.index(1)?;
        let ty = init.r#type();
        let inner = Block::new(&[(self.index_type(), self.location), (ty, self.location)]);
        {
            let e = self.nested(&inner);
            let iv: Value = inner.argument(0).map_err(|err| self.err(err))?.into();
            let acc: Value = inner.argument(1).map_err(|err| self.err(err))?.into();
            let next = body(&e, iv, acc)?;
            e.op_void("scf.yield", &[next], &[])?;
        }
        let region = Region::new();
        region.append_block(inner);
        self.push(
            OperationBuilder::new("scf.for", self.location)
                .add_operands(&[lo, hi, step, init])
                .add_results(&[ty])
                .add_regions([region])
                .build(),
            "scf.for",
        )
    }
}

/// The MLIR element type for an [`ElemType`].
pub fn elem_type(context: &Context, elem: ElemType) -> Type<'_> {
    crate::mlir::elem_type(context, elem)
}

/// Adds `memref.global "private" constant @name : memref<len x f32> = dense<[...]>` to the
/// device body (a lookup table or DFT/filter-bank matrix) and returns its memref type.
pub fn add_f32_table<'c>(
    ctx: &KernelCtx<'c, '_>,
    name: &str,
    shape: &[usize],
    values: &[f32],
) -> Result<Type<'c>, DesignError> {
    let err = |message: String| DesignError::Kernel {
        kernel: name.to_string(),
        message,
    };
    let numel: usize = shape.iter().product();
    if numel != values.len() {
        return Err(err(format!(
            "table has {} values for shape {shape:?}",
            values.len()
        )));
    }
    // The same table may be requested by several cores' kernels: emit it once.
    if device_has_symbol(ctx.device_block, name) {
        let dims: Vec<i64> = shape.iter().map(|d| *d as i64).collect();
        return Ok(MemRefType::new(Type::float32(ctx.context), &dims, None, None).into());
    }
    let f32t = Type::float32(ctx.context);
    let dims: Vec<i64> = shape.iter().map(|d| *d as i64).collect();
    let dims_u: Vec<u64> = shape.iter().map(|d| *d as u64).collect();
    let tensor = melior::ir::r#type::RankedTensorType::new(&dims_u, f32t, None);
    let attrs: Vec<Attribute> = values
        .iter()
        .map(|v| FloatAttribute::new(ctx.context, f32t, *v as f64).into())
        .collect();
    let dense = DenseElementsAttribute::new(tensor.into(), &attrs)
        .map_err(|e| err(format!("dense table: {e}")))?;
    let memref_ty = MemRefType::new(f32t, &dims, None, None);
    let op = melior::dialect::memref::global(
        ctx.context,
        name,
        Some("private"),
        memref_ty,
        Some(dense.into()),
        true,
        None,
        ctx.location,
    );
    // Globals go before the other device ops so that every user follows its definition.
    match ctx.device_block.first_operation() {
        Some(first) => {
            ctx.device_block.insert_operation_before(first, op);
        }
        None => {
            ctx.device_block.append_operation(op);
        }
    }
    Ok(memref_ty.into())
}

fn device_has_symbol(block: &Block<'_>, name: &str) -> bool {
    use melior::ir::operation::OperationLike;
    let mut op = block.first_operation();
    while let Some(o) = op {
        if let Ok(attr) = o.attribute("sym_name") {
            if let Ok(s) = StringAttribute::try_from(attr) {
                if s.value() == name {
                    return true;
                }
            }
        }
        op = o.next_in_block();
    }
    false
}
