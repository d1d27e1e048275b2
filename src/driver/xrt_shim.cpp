// The XRT host flow of mlir-aie's test utilities behind a C ABI for src/driver/xrt.rs:
// xrt::device(i) -> xrt::xclbin(file) -> device.register_xclbin -> xrt::hw_context ->
// xrt::kernel(ctx, name); the instruction BO `cacheable` in group_id(1), one `host_only` BO
// per host buffer in group_id(3 + i); run(opcode, instr BO, n_words, BOs...) with syncs.
//
// Compiled only with cargo feature `xrt`, against XRT >= 2.17 (build.rs checks the version:
// xrt::hw_context does not exist before). No C++ exception crosses the ABI: each entry
// point returns 0, or non-zero with the exception's text in `err`.

#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "xrt/xrt_bo.h"
#include "xrt/xrt_device.h"
#include "xrt/xrt_kernel.h"
#if __has_include("xrt/xrt_hw_context.h")
#include "xrt/xrt_hw_context.h"
#else
#include "xrt/experimental/xrt_hw_context.h"
#endif

namespace {

void put_error(char* err, size_t len, const std::string& text) {
  if (err == nullptr || len == 0) return;
  size_t n = text.size() < len - 1 ? text.size() : len - 1;
  std::memcpy(err, text.data(), n);
  err[n] = '\0';
}

template <typename F>
int guarded(char* err, size_t len, F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    put_error(err, len, e.what());
  } catch (...) {
    put_error(err, len, "unknown C++ exception");
  }
  return 1;
}

}  // namespace

struct aiec_xrt_device {
  xrt::device device;
};

// Everything one kernel needs, made once at load and reused by every run: the hw context
// keeps the registered xclbin's partition, the BOs keep their device mappings.
struct aiec_xrt_kernel {
  xrt::hw_context context;
  xrt::kernel kernel;
  xrt::bo instr;
  uint32_t n_words = 0;
  std::vector<xrt::bo> bos;
  std::vector<size_t> sizes;
};

extern "C" {

int aiec_xrt_open(unsigned index, aiec_xrt_device** out, char* err, size_t err_len) {
  return guarded(err, err_len, [&] { *out = new aiec_xrt_device{xrt::device(index)}; });
}

void aiec_xrt_close(aiec_xrt_device* d) { delete d; }

int aiec_xrt_load(aiec_xrt_device* d, const char* xclbin_path, const char* kernel_name,
                  const uint32_t* insts, size_t n_words, const size_t* bo_bytes,
                  size_t n_bos, aiec_xrt_kernel** out, char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    auto xclbin = xrt::xclbin(std::string(xclbin_path));
    d->device.register_xclbin(xclbin);
    auto k = std::make_unique<aiec_xrt_kernel>();
    k->context = xrt::hw_context(d->device, xclbin.get_uuid());
    k->kernel = xrt::kernel(k->context, std::string(kernel_name));
    k->instr = xrt::bo(d->device, n_words * sizeof(uint32_t), xrt::bo::flags::cacheable,
                       k->kernel.group_id(1));
    k->instr.write(insts);
    // The stream never changes: it goes to the device once, not per run.
    k->instr.sync(XCL_BO_SYNC_BO_TO_DEVICE);
    k->n_words = static_cast<uint32_t>(n_words);
    for (size_t i = 0; i < n_bos; ++i) {
      k->bos.emplace_back(d->device, bo_bytes[i], xrt::bo::flags::host_only,
                          k->kernel.group_id(static_cast<int>(3 + i)));
      k->sizes.push_back(bo_bytes[i]);
    }
    *out = k.release();
  });
}

void aiec_xrt_free(aiec_xrt_kernel* k) { delete k; }

// inputs[i] (bo_bytes[i] bytes) is written and synced to the device when non-null;
// outputs[i] receives the BO after the run when non-null.
int aiec_xrt_run(aiec_xrt_kernel* k, uint64_t opcode, const uint8_t* const* inputs,
                 uint8_t* const* outputs, char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    for (size_t i = 0; i < k->bos.size(); ++i) {
      if (inputs[i] != nullptr) {
        k->bos[i].write(inputs[i]);
        k->bos[i].sync(XCL_BO_SYNC_BO_TO_DEVICE);
      }
    }
    xrt::run run(k->kernel);
    run.set_arg(0, opcode);
    run.set_arg(1, k->instr);
    run.set_arg(2, k->n_words);
    for (size_t i = 0; i < k->bos.size(); ++i) run.set_arg(static_cast<int>(3 + i), k->bos[i]);
    run.start();
    auto state = run.wait();
    if (state != ERT_CMD_STATE_COMPLETED)
      throw std::runtime_error("the run ended in ERT state " + std::to_string(state));
    for (size_t i = 0; i < k->bos.size(); ++i) {
      if (outputs[i] != nullptr) {
        k->bos[i].sync(XCL_BO_SYNC_BO_FROM_DEVICE);
        k->bos[i].read(outputs[i]);
      }
    }
  });
}

}  // extern "C"
