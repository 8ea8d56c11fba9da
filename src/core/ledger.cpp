#include "core/ledger.h"

#include <malloc.h>

#include <cstdlib>
#include <new>

namespace frugal {

namespace {
thread_local MemoryLedger* g_current = nullptr;
MemoryLedger& default_ledger() {
  static MemoryLedger ledger;
  return ledger;
}
constexpr size_t kAlignment = 64;

// Blocks of 1 MiB and more are mapped and unmapped on their own, so a block the cache frees goes
// back to the OS at once. (glibc's default threshold rises to 32 MiB as large blocks are freed, after
// which they come from the heap, where a freed block in the middle stays part of the RSS.)
void map_large_blocks_individually() {
  static const bool once = [] { return mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1; }();
  (void)once;
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
    for (void* p : blocks) std::free(p);
  free_blocks_.clear();
  cached_bytes_ = 0;
}

void MemoryLedger::evict_cached_above(size_t limit) {
  // Largest blocks first: fewest frees to get under the limit.
  for (auto it = free_blocks_.rbegin(); it != free_blocks_.rend() && cached_bytes_ > limit; ++it) {
    while (!it->second.empty() && cached_bytes_ > limit) {
      std::free(it->second.back());
      it->second.pop_back();
      cached_bytes_ -= it->first;
    }
  }
}

void* MemoryLedger::allocate(size_t bytes, MemCategory category) {
  void* ptr = nullptr;
  if (!measure_only_ && bytes > 0) {
    const size_t rounded = rounded_size(bytes);
    auto it = free_blocks_.find(rounded);
    if (it != free_blocks_.end() && !it->second.empty()) {
      ptr = it->second.back();
      it->second.pop_back();
      cached_bytes_ -= rounded;
    } else {
      map_large_blocks_individually();
      evict_cached_above(peak_total_ > live_total_ + rounded ? peak_total_ - live_total_ - rounded : 0);
      ptr = std::aligned_alloc(kAlignment, rounded);
      if (!ptr) {
        release_cached();  // give the cache back and try once more
        ptr = std::aligned_alloc(kAlignment, rounded);
      }
      if (!ptr) throw std::bad_alloc();
    }
  }
  const int c = static_cast<int>(category);
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
    // The cache never holds more than the peak of live bytes: enough to serve a repeating step,
    // bounded when sizes keep changing (generation with a growing context).
    if (cached_bytes_ + rounded <= peak_total_) {
      free_blocks_[rounded].push_back(ptr);
      cached_bytes_ += rounded;
    } else {
      std::free(ptr);
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

LedgerScope::LedgerScope(MemoryLedger& ledger) : previous_(g_current) { g_current = &ledger; }
LedgerScope::~LedgerScope() { g_current = previous_; }

}  // namespace frugal
