//! The aie-opt pass pipelines of an NPU build, in the order and with the options mlir-aie's
//! compiler driver (aiecc) uses for Peano builds at `-O2` and below.

use super::request::AieTarget;

/// A pass with options, printed as MLIR's textual pipeline syntax `name{k=v k2=v2}`.
struct Pass {
    name: &'static str,
    options: Vec<(&'static str, String)>,
}

impl Pass {
    fn new(name: &'static str) -> Self {
        Pass {
            name,
            options: Vec::new(),
        }
    }

    fn opt(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.options.push((key, value.into()));
        self
    }

    fn text(&self) -> String {
        if self.options.is_empty() {
            return self.name.to_string();
        }
        let opts: Vec<String> = self
            .options
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{}{{{}}}", self.name, opts.join(" "))
    }
}

fn join(passes: &[Pass]) -> String {
    passes.iter().map(Pass::text).collect::<Vec<_>>().join(",")
}

/// `input_with_addresses.mlir`: vector→aievec, object FIFOs → buffers/locks/DMAs, lock and
/// BD ids, buffer addresses, then scf→cf.
pub fn input_with_addresses(target: AieTarget) -> String {
    let module_prefix = [
        Pass::new("convert-vector-to-aievec")
            .opt("aie-target", target.name())
            .opt("target-backend", "llvmir"),
        Pass::new("lower-affine"),
        Pass::new("aie-canonicalize-device"),
    ];
    let device = [
        Pass::new("aie-trace-to-config"),
        Pass::new("aie-trace-pack-reg-writes"),
        Pass::new("aie-inline-trace-config"),
        Pass::new("aie-assign-lock-ids"),
        Pass::new("aie-register-objectFifos"),
        Pass::new("aie-objectFifo-stateful-transform")
            .opt("dynamic-objFifos", "false")
            .opt("packet-sw-objFifos", "false"),
        Pass::new("aie-assign-bd-ids"),
        Pass::new("aie-lower-cascade-flows"),
        Pass::new("aie-lower-broadcast-packet"),
        Pass::new("aie-lower-multicast"),
        Pass::new("aie-assign-tile-controller-ids"),
        Pass::new("aie-generate-column-control-overlay").opt("route-shim-to-tile-ctrl", "false"),
        Pass::new("aie-assign-buffer-addresses"),
        Pass::new("aie-vector-transfer-lowering").opt("max-transfer-rank", "1"),
    ];
    format!(
        "builtin.module({},aie.device({}),convert-scf-to-cf)",
        join(&module_prefix),
        join(&device)
    )
}

/// Per core: extract core `(col, row)` of device `@symbol` into a function and lower it to
/// the LLVM dialect with bare-pointer memrefs, as Peano expects.
pub fn core_to_llvm(device_symbol: &str, col: u32, row: u32, target: AieTarget) -> String {
    let device = [
        Pass::new("aie-localize-locks"),
        Pass::new("aie-normalize-address-spaces"),
        Pass::new("aie-transform-bfp-types"),
    ];
    let module = [
        Pass::new("aie-standard-lowering")
            .opt("device", device_symbol)
            .opt("tilecol", col.to_string())
            .opt("tilerow", row.to_string()),
        Pass::new("aiex-standard-lowering"),
        Pass::new("convert-aievec-to-llvm").opt("aie-target", target.name()),
        Pass::new("canonicalize"),
        Pass::new("cse"),
        // Lowers what aievec leaves in the vector dialect (e.g. the n-D `vector.shape_cast`
        // around `aievec.matmul`), which `convert-to-llvm{dynamic}` does not.
        Pass::new("convert-vector-to-llvm"),
        Pass::new("expand-strided-metadata"),
        Pass::new("lower-affine"),
        Pass::new("arith-expand"),
        Pass::new("finalize-memref-to-llvm"),
        Pass::new("convert-func-to-llvm").opt("use-bare-ptr-memref-call-conv", "true"),
        Pass::new("convert-to-llvm").opt("dynamic", "true"),
        Pass::new("canonicalize"),
        Pass::new("cse"),
    ];
    format!(
        "builtin.module(aie.device({}),{})",
        join(&device),
        join(&module)
    )
}

/// The runtime sequence → NPU instructions (`aiex.npu.*` writes the firmware executes).
pub fn npu_lowering() -> String {
    let device = [
        Pass::new("aie-materialize-bd-chains"),
        Pass::new("aie-substitute-shim-dma-allocations"),
        Pass::new("aie-assign-runtime-sequence-bd-ids"),
        Pass::new("aie-dma-tasks-to-npu"),
        Pass::new("aie-dma-to-npu"),
        Pass::new("aie-lower-set-lock"),
    ];
    format!("builtin.module(aie.device({}))", join(&device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelines_are_well_nested() {
        for p in [
            input_with_addresses(AieTarget::Aie2),
            core_to_llvm("main", 0, 2, AieTarget::Aie2p),
            npu_lowering(),
        ] {
            let opens = p.matches('(').count() + p.matches('{').count();
            let closes = p.matches(')').count() + p.matches('}').count();
            assert_eq!(opens, closes, "{p}");
            assert!(!p.contains(' ') || p.contains('{'), "{p}");
        }
    }

    #[test]
    fn core_pipeline_names_the_core_and_target() {
        let p = core_to_llvm("main", 1, 3, AieTarget::Aie2p);
        assert!(p.contains("aie-standard-lowering{device=main tilecol=1 tilerow=3}"));
        assert!(p.contains("convert-aievec-to-llvm{aie-target=aie2p}"));
        assert!(p.starts_with(
            "builtin.module(aie.device(aie-localize-locks,aie-normalize-address-spaces,"
        ));
    }
}
