// `include!`d by the targets that call into the compiler crate.
//
// aiec links the MLIR libraries statically, and one of them, libMLIRMlirOptMain.a, holds
// mlir-opt's `main`. The linker takes `main` from the first archive it scans that has one, so
// such a target starts as mlir-opt (it rejects libFuzzer's flags and prints `module {}`).
// A `main` in the target's own object keeps both archive members out; it hands control to
// libFuzzer's driver exactly as libFuzzer's own `main` does.
#[no_mangle]
pub extern "C" fn main(argc: std::ffi::c_int, argv: *mut *mut std::ffi::c_char) -> std::ffi::c_int {
    type TestOneInput = unsafe extern "C" fn(*const u8, usize) -> std::ffi::c_int;
    extern "C" {
        fn LLVMFuzzerRunDriver(
            argc: *mut std::ffi::c_int,
            argv: *mut *mut *mut std::ffi::c_char,
            test_one_input: TestOneInput,
        ) -> std::ffi::c_int;
        fn LLVMFuzzerTestOneInput(data: *const u8, size: usize) -> std::ffi::c_int;
    }
    let (mut argc, mut argv) = (argc, argv);
    // SAFETY: argc/argv are the process's own, passed through unchanged; the callback is
    // libfuzzer-sys's entry point, which `fuzz_target!` below instantiates.
    unsafe { LLVMFuzzerRunDriver(&mut argc, &mut argv, LLVMFuzzerTestOneInput) }
}
