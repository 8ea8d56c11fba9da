#include "core/cpu.h"

#include <cpuid.h>
#include <sched.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <thread>
#include <utility>

namespace frugal {

namespace {

bool bit(uint32_t reg, int b) { return (reg >> b) & 1u; }

CpuidRegisters native_cpuid(uint32_t leaf, uint32_t subleaf) {
  CpuidRegisters r;
  if (!__get_cpuid_count(leaf, subleaf, &r.eax, &r.ebx, &r.ecx, &r.edx)) return {};
  return r;
}

uint64_t native_xcr0(bool osxsave) {
  if (!osxsave) return 0;
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

std::string trimmed(std::string s) {
  const size_t first = s.find_first_not_of(' ');
  const size_t last = s.find_last_not_of(' ');
  return first == std::string::npos ? "" : s.substr(first, last - first + 1);
}

int read_int(const std::string& path) {
  std::ifstream in(path);
  int v = -1;
  in >> v;
  return in ? v : -1;
}

// Total and idle jiffies of all CPUs (/proc/stat's first line).
std::pair<double, double> cpu_jiffies() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return {user + nice + system + idle + iowait + irq + softirq + steal, idle + iowait};
}

}  // namespace

CpuFeatures cpu_features_from(const CpuidFunction& cpuid, uint64_t xcr0) {
  CpuFeatures f;
  const CpuidRegisters l0 = cpuid(0, 0);
  char vendor[13] = {};
  std::memcpy(vendor, &l0.ebx, 4);
  std::memcpy(vendor + 4, &l0.edx, 4);
  std::memcpy(vendor + 8, &l0.ecx, 4);
  f.vendor = vendor;
  const CpuidRegisters l1 = cpuid(1, 0);
  const uint32_t base_family = (l1.eax >> 8) & 0xf, base_model = (l1.eax >> 4) & 0xf;
  f.family = static_cast<int>(base_family == 0xf ? base_family + ((l1.eax >> 20) & 0xff) : base_family);
  f.model = static_cast<int>(base_family >= 6 ? base_model | (((l1.eax >> 16) & 0xf) << 4) : base_model);
  // Register state the OS saves: SSE+AVX (bits 1, 2), AVX-512 (5, 6, 7), AMX tiles (17, 18).
  const bool ymm = bit(l1.ecx, 27) && (xcr0 & 0x6) == 0x6;
  const bool zmm = ymm && (xcr0 & 0xe0) == 0xe0;
  const bool tiles = (xcr0 & 0x60000) == 0x60000;
  f.avx = ymm && bit(l1.ecx, 28);
  f.fma = f.avx && bit(l1.ecx, 12);
  f.f16c = f.avx && bit(l1.ecx, 29);
  const uint32_t max_leaf = l0.eax;
  if (max_leaf >= 7) {
    const CpuidRegisters l7 = cpuid(7, 0);
    f.avx2 = f.avx && bit(l7.ebx, 5);
    f.avx512f = zmm && bit(l7.ebx, 16);
    f.avx512dq = f.avx512f && bit(l7.ebx, 17);
    f.avx512bw = f.avx512f && bit(l7.ebx, 30);
    f.avx512vl = f.avx512f && bit(l7.ebx, 31);
    f.avx512_fp16 = f.avx512f && bit(l7.edx, 23);
    f.amx_bf16 = tiles && bit(l7.edx, 22) && bit(l7.edx, 24);
    if (l7.eax >= 1) f.avx512_bf16 = f.avx512f && bit(cpuid(7, 1).eax, 5);
  }
  if (cpuid(0x80000000, 0).eax >= 0x80000004) {
    char brand[49] = {};
    for (uint32_t k = 0; k < 3; ++k) {
      const CpuidRegisters r = cpuid(0x80000002 + k, 0);
      std::memcpy(brand + 16 * k, &r, 16);
    }
    f.model_name = trimmed(brand);
  }
  return f;
}

std::vector<std::string> CpuFeatures::flag_names() const {
  std::vector<std::string> names;
  for (const auto& [set, name] : std::vector<std::pair<bool, const char*>>{
           {avx, "avx"}, {fma, "fma"}, {f16c, "f16c"}, {avx2, "avx2"}, {avx512f, "avx512f"}, {avx512dq, "avx512dq"},
           {avx512bw, "avx512bw"}, {avx512vl, "avx512vl"}, {avx512_bf16, "avx512_bf16"},
           {avx512_fp16, "avx512_fp16"}, {amx_bf16, "amx_bf16"}})
    if (set) names.push_back(name);
  return names;
}

const CpuFeatures& this_cpu() {
  static const CpuFeatures cpu = [] {
    const bool osxsave = bit(native_cpuid(1, 0).ecx, 27);
    return cpu_features_from(native_cpuid, native_xcr0(osxsave));
  }();
  return cpu;
}

int logical_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

int physical_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  std::set<std::pair<int, int>> cores;  // (package, core) of every CPU this process may use
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &set)) continue;
    const std::string topology = "/sys/devices/system/cpu/cpu" + std::to_string(c) + "/topology/";
    const int package = read_int(topology + "physical_package_id"), core = read_int(topology + "core_id");
    cores.insert(core < 0 ? std::make_pair(-1, c) : std::make_pair(package, core));  // unknown: count it
  }
  return std::max<int>(1, static_cast<int>(cores.size()));
}

double busy_cores_now() {
  const auto [total0, idle0] = cpu_jiffies();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));  // this process sleeps: what runs is others
  const auto [total1, idle1] = cpu_jiffies();
  const double total = total1 - total0;
  if (total <= 0) return 0.0;
  return (1.0 - (idle1 - idle0) / total) * logical_cpus();
}

}  // namespace frugal
