#include "core/ledger.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <new>

#include "core/error.h"
#include "core/units.h"

namespace frugal {

namespace {
thread_local MemoryLedger* g_current = nullptr;
MemoryLedger& default_ledger() {
  static MemoryLedger ledger;
  return ledger;
}
constexpr size_t kAlignment = 64;

// Blocks of 1 MiB and more are mapped and unmapped on their own, so a block the cache frees leaves
// the RSS at once. (From malloc they would come from the heap once glibc's threshold has risen
// to 32 MiB, where a freed block in the middle stays resident.) Only the ledger's blocks: lowering
// malloc's own threshold instead made the libraries' per-call scratch (oneDNN) fault in every call.
constexpr size_t kMapped = size_t{1} << 20;
// What the cache may hold beyond the books' peak (plus 10% of it): room for blocks of the sizes a
// step asks for in another order, without which every new size would evict blocks the next step
// needs again (measured: a GPT-2 small bf16 + sqrt step went from 7.5 to 10.8 s when the cache
// was held to the peak itself).
constexpr size_t kCacheSlack = size_t{32} << 20;

void* block_alloc(size_t rounded) {
  if (rounded < kMapped) return std::aligned_alloc(kAlignment, rounded);
  void* p = mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;  // page-aligned
}

void block_free(void* p, size_t rounded) {
  if (rounded < kMapped) std::free(p);
  else munmap(p, rounded);
}
}  // namespace

const char* mem_category_name(MemCategory c) {
  switch (c) {
    case MemCategory::Params: return "params";
    case MemCategory::MasterParams: return "master_params";
    case MemCategory::Grads: return "grads";
    case MemCategory::Optimizer: return "optimizer";
    case MemCategory::Activations: return "activations";
    case MemCategory::Workspace: return "workspace";
  }
  return "?";
}

namespace {
size_t rounded_size(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }
}  // namespace

MemoryLedger::~MemoryLedger() { release_cached(); }

void MemoryLedger::release_cached() {
  for (auto& [size, blocks] : free_blocks_)
    for (void* p : blocks) block_free(p, size);
  free_blocks_.clear();
  cached_bytes_ = 0;
}

size_t MemoryLedger::cache_allowance() const {
  const size_t allowance = peak_total_ + peak_total_ / 10 + kCacheSlack;
  return limit_ > 0 ? std::min(allowance, limit_) : allowance;  // the limit bounds what is held, too
}

void MemoryLedger::refuse(size_t bytes, MemCategory category) const {
  throw Error("memory limit " + format_bytes(static_cast<double>(limit_)) + " reached: " +
              format_bytes(static_cast<double>(bytes)) + " of " + mem_category_name(category) + " in " +
              (phase_.empty() ? std::string("setup (outside a training step)") : phase_) +
              " would take the live total from " + format_bytes(static_cast<double>(live_total_)) + " to " +
              format_bytes(static_cast<double>(live_total_ + bytes)) + "; stopped before allocating it");
}

void MemoryLedger::set_phase(const std::string& label) {
  phase_ = label;
  if (!forced_phase_.empty() && label == forced_phase_) {
    forced_phase_.clear();
    const size_t bytes = forced_bytes_;
    release(allocate(bytes, MemCategory::Workspace), bytes, MemCategory::Workspace);
  }
}

void MemoryLedger::force_allocation_at(const std::string& phase, size_t bytes) {
  forced_phase_ = phase;
  forced_bytes_ = bytes;
}

void MemoryLedger::evict_cached_above(size_t limit) {
  // Smallest blocks first: they are the cheapest to get again (large ones come back page fault by page fault).
  for (auto it = free_blocks_.begin(); it != free_blocks_.end() && cached_bytes_ > limit; ++it) {
    while (!it->second.empty() && cached_bytes_ > limit) {
      block_free(it->second.back(), it->first);
      it->second.pop_back();
      cached_bytes_ -= it->first;
    }
  }
}

void* MemoryLedger::allocate(size_t bytes, MemCategory category) {
  if (limit_ > 0 && live_total_ + bytes > limit_) refuse(bytes, category);
  void* ptr = nullptr;
  if (!measure_only_ && bytes > 0) {
    const size_t rounded = rounded_size(bytes);
    auto it = free_blocks_.find(rounded);
    if (it != free_blocks_.end() && !it->second.empty()) {
      ptr = it->second.back();
      it->second.pop_back();
      cached_bytes_ -= rounded;
    } else {
      const size_t allowed = cache_allowance();
      evict_cached_above(allowed > live_total_ + rounded ? allowed - live_total_ - rounded : 0);
      ptr = block_alloc(rounded);
      if (!ptr) {
        release_cached();  // give the cache back and try once more
        ptr = block_alloc(rounded);
      }
      if (!ptr) throw std::bad_alloc();
    }
  }
  const int c = static_cast<int>(category);
  allocated_total_ += bytes;
  live_[c] += bytes;
  live_total_ += bytes;
  if (live_[c] > peak_[c]) peak_[c] = live_[c];
  if (live_total_ > peak_total_) {
    peak_total_ = live_total_;
    at_peak_ = live_;
  }
  record(category);
  return ptr;
}

void MemoryLedger::release(void* ptr, size_t bytes, MemCategory category) {
  if (ptr) {
    const size_t rounded = rounded_size(bytes);
    // Keep the block while live + cached stays within the allowance: a repeating step finds its
    // blocks again instead of faulting their pages in anew (a block freed and mapped again every
    // step cost the LoRA bf16 reference step 7-10%), and the process stays near the books' peak.
    if (live_total_ - bytes + cached_bytes_ + rounded <= cache_allowance()) {
      free_blocks_[rounded].push_back(ptr);
      cached_bytes_ += rounded;
    } else {
      block_free(ptr, rounded);
    }
  }
  const int c = static_cast<int>(category);
  live_[c] -= bytes;
  live_total_ -= bytes;
  record(category);
}

MemorySnapshot MemoryLedger::live() const {
  MemorySnapshot s;
  s.bytes = live_;
  s.total = live_total_;
  return s;
}

MemorySnapshot MemoryLedger::peak() const {
  MemorySnapshot s;
  s.bytes = peak_;
  s.total = peak_total_;
  return s;
}

MemorySnapshot MemoryLedger::at_peak() const {
  MemorySnapshot s;
  s.bytes = at_peak_;
  s.total = peak_total_;
  return s;
}

void MemoryLedger::reset_peaks() {
  peak_ = live_;
  peak_total_ = live_total_;
  at_peak_ = live_;
}

void MemoryLedger::start_timeline() {
  timeline_.clear();
  recording_ = true;
  timeline_start_ = std::chrono::steady_clock::now();
  for (int c = 0; c < kNumMemCategories; ++c) record(static_cast<MemCategory>(c));
}

void MemoryLedger::stop_timeline() {
  // Close every category's line at the end time, including those that never changed.
  for (int c = 0; c < kNumMemCategories; ++c) record(static_cast<MemCategory>(c));
  recording_ = false;
}

void MemoryLedger::record(MemCategory category) {
  if (!recording_) return;
  double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - timeline_start_).count();
  timeline_.push_back({t, category, live_[static_cast<int>(category)], live_total_, phase_});
}

MemoryLedger& MemoryLedger::current() { return g_current ? *g_current : default_ledger(); }

MemoryLedger& MemoryLedger::shapes_only() {
  static MemoryLedger* ledger = new MemoryLedger(/*measure_only=*/true);  // never destroyed: its tensors may outlive main
  return *ledger;
}

LedgerScope::LedgerScope(MemoryLedger& ledger) : previous_(g_current) { g_current = &ledger; }
LedgerScope::~LedgerScope() { g_current = previous_; }

}  // namespace frugal
