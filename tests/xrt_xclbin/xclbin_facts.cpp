// Prints what XRT's own xclbin parser (xrt::xclbin from a file, no device needed) reads out of
// an xclbin, one fact per line, for tests/xrt_xclbin.rs to compare with what aiec packaged.
//
//   uuid <hex>
//   mem <index> tag=<tag> used=<0|1> type=<n> base=<hex> size_kb=<hex>
//   kernel <name> args=<n> cus=<n>
//   arg <kernel> <index> name=<name> offset=<hex> size=<hex> host_type=<type> mems=<tag,...>
//   cu <kernel> <name>
#include <cstdio>
#include <exception>
#include <string>

#include <experimental/xrt_xclbin.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FILE.xclbin\n", argv[0]);
    return 2;
  }
  try {
    xrt::xclbin xclbin{std::string(argv[1])};
    std::printf("uuid %s\n", xclbin.get_uuid().to_string().c_str());
    for (const auto& mem : xclbin.get_mems())
      std::printf("mem %d tag=%s used=%d type=%d base=0x%llx size_kb=0x%llx\n", mem.get_index(),
                  mem.get_tag().c_str(), mem.get_used() ? 1 : 0, static_cast<int>(mem.get_type()),
                  static_cast<unsigned long long>(mem.get_base_address()),
                  static_cast<unsigned long long>(mem.get_size_kb()));
    for (const auto& kernel : xclbin.get_kernels()) {
      const auto cus = kernel.get_cus();
      std::printf("kernel %s args=%zu cus=%zu\n", kernel.get_name().c_str(), kernel.get_num_args(),
                  cus.size());
      for (const auto& arg : kernel.get_args()) {
        std::string tags;
        for (const auto& mem : arg.get_mems())
          tags += (tags.empty() ? "" : ",") + mem.get_tag();
        std::printf("arg %s %zu name=%s offset=0x%llx size=0x%llx host_type=%s mems=%s\n",
                    kernel.get_name().c_str(), static_cast<size_t>(arg.get_index()),
                    arg.get_name().c_str(), static_cast<unsigned long long>(arg.get_offset()),
                    static_cast<unsigned long long>(arg.get_size()), arg.get_host_type().c_str(),
                    tags.c_str());
      }
      for (const auto& cu : cus)
        std::printf("cu %s %s\n", kernel.get_name().c_str(), cu.get_name().c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "xrt::xclbin: %s\n", e.what());
    return 1;
  }
  return 0;
}
