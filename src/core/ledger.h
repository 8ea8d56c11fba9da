#pragma once
// The memory ledger: every tensor buffer is allocated through it with a category, so live and
// peak bytes are known per category and in total. A ledger in measure mode hands out no memory
// at all (null pointers) but keeps the same books: the planner runs a configuration through a
// measuring ledger to predict memory before anything is allocated (ggml's "measure allocator").
#include <array>
#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace frugal {

enum class MemCategory : int { Params, MasterParams, Grads, Optimizer, Activations, Workspace };
constexpr int kNumMemCategories = 6;
const char* mem_category_name(MemCategory c);  // "params", "master_params", ...

struct MemorySnapshot {
  std::array<size_t, kNumMemCategories> bytes{};  // per category
  size_t total = 0;
  size_t operator[](MemCategory c) const { return bytes[static_cast<int>(c)]; }
};

struct TimelineEvent {
  double time_s;         // since the timeline started
  MemCategory category;  // the category that changed
  size_t live_bytes;     // that category's live bytes after the change
  size_t live_total;     // all categories after the change
  std::string label;     // phase marker set by the executor ("forward 3", "backward 2", ...)
};

class MemoryLedger {
 public:
  explicit MemoryLedger(bool measure_only = false) : measure_only_(measure_only) {}
  MemoryLedger(const MemoryLedger&) = delete;
  MemoryLedger& operator=(const MemoryLedger&) = delete;
  ~MemoryLedger();

  // 64-byte aligned; nullptr (without allocating) in measure mode or for 0 bytes.
  void* allocate(size_t bytes, MemCategory category);
  void release(void* ptr, size_t bytes, MemCategory category);

  // Released blocks are kept for reuse by a later allocation of the same rounded size: a training
  // step allocates the same buffers every step, so after the first step nothing is requested from
  // the OS (no page faults, no zeroing by the kernel). The cache holds at most the peak of live
  // bytes. Cached bytes are not live: the books show what tensors hold; cached_bytes() shows what
  // is reserved on top (part of the process RSS).
  size_t cached_bytes() const { return cached_bytes_; }
  void release_cached();

  bool measure_only() const { return measure_only_; }
  // Bytes allocated since the ledger was made, all categories (a measure of the memory traffic a
  // stretch of work causes: the cost model's count).
  size_t allocated_total() const { return allocated_total_; }
  MemorySnapshot live() const;
  // Peak per category, and `total` = peak of the sum (not the sum of peaks).
  MemorySnapshot peak() const;
  // Live bytes per category at the moment the total peaked: what the peak is made of. (A
  // category's own peak may lie elsewhere, e.g. fp32 weights converted to half after creation.)
  MemorySnapshot at_peak() const;
  // Peaks restart from the current live bytes (e.g. to measure one step).
  void reset_peaks();

  // A hard cap on live bytes (0: none, the default). An allocation that would take the total past
  // it throws Error naming the category, the phase and the bytes, before anything is allocated (so
  // before the operating system would kill the process).
  void set_limit(size_t bytes) { limit_ = bytes; }
  size_t limit() const { return limit_; }
  // Test hook: when the phase next becomes `phase`, an extra `bytes` of workspace is allocated and
  // released at once (an allocation larger than planned, to reach the limit where no plan would).
  void force_allocation_at(const std::string& phase, size_t bytes);

  void start_timeline();
  void stop_timeline();
  void set_phase(const std::string& label);
  const std::string& phase() const { return phase_; }
  const std::vector<TimelineEvent>& timeline() const { return timeline_; }

  // The ledger new tensors use; a process-wide default unless a LedgerScope is active.
  static MemoryLedger& current();
  // The books of tensors that only carry a shape (measure mode, never freed, in no run's totals):
  // models built with shapes only (models/param_storage.h) and Tensor::placeholder.
  static MemoryLedger& shapes_only();

 private:
  friend class LedgerScope;
  void record(MemCategory category);
  // Frees cached blocks until at most `limit` bytes are cached. A new block (no cached one of its
  // size) first evicts down to what keeps live + cached + new within cache_allowance(), so the
  // process holds about the books' peak however the sizes change (sqrt checkpointing, chunks), and
  // a repeating step still finds its blocks.
  void evict_cached_above(size_t limit);
  // What live + cached bytes may reach: the peak of live bytes + 10% + 32 MiB (or the limit).
  size_t cache_allowance() const;
  [[noreturn]] void refuse(size_t bytes, MemCategory category) const;

  bool measure_only_;
  std::array<size_t, kNumMemCategories> live_{};
  std::array<size_t, kNumMemCategories> peak_{};
  size_t live_total_ = 0;
  size_t allocated_total_ = 0;
  size_t peak_total_ = 0;
  std::array<size_t, kNumMemCategories> at_peak_{};
  bool recording_ = false;
  std::chrono::steady_clock::time_point timeline_start_;
  std::vector<TimelineEvent> timeline_;
  std::string phase_;
  size_t limit_ = 0;
  std::string forced_phase_;  // force_allocation_at
  size_t forced_bytes_ = 0;
  std::map<size_t, std::vector<void*>> free_blocks_;  // rounded size -> cached blocks
  size_t cached_bytes_ = 0;
};

// Routes allocations of this thread to `ledger` while in scope.
class LedgerScope {
 public:
  explicit LedgerScope(MemoryLedger& ledger);
  ~LedgerScope();
  LedgerScope(const LedgerScope&) = delete;
  LedgerScope& operator=(const LedgerScope&) = delete;

 private:
  MemoryLedger* previous_;
};

}  // namespace frugal
