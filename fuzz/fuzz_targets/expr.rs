//! The pest expression grammar and its checker (the `expr`/`epilogue` fields of a spec), then
//! the float64 evaluation and its error bound on what parses.
#![no_main]

use aiec::expr::{parse, Decl, Env};
use libfuzzer_sys::fuzz_target;

include!("libfuzzer_main.rs");

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    // The epilogue's declaration: the widest one any spec field uses.
    let decl = Decl::scalars(&["x", "acc", "residual"]).with_vectors(&["bias", "sa", "sw"]);
    let Ok(expr) = parse(src, &decl) else {
        return;
    };
    let v = [0.5, -2.0, 3.0];
    let env = Env {
        scalars: vec![("x", 0.25), ("acc", -7.0), ("residual", 1.0)],
        vectors: vec![("bias", &v), ("sa", &v), ("sw", &v)],
        row: 1,
        col: 2,
    };
    let _ = expr.eval(&env);
    let _ = expr.eval_bound(&env);
});
