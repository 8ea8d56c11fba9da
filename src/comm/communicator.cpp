#include "comm/communicator.h"

#include <algorithm>
#include <cstdlib>
#include <cstdio>

#ifdef FRUGAL_HAVE_MPI
// The C API only (Open MPI would otherwise pull in its deprecated C++ bindings).
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>
#endif

#include "core/error.h"

namespace frugal {

namespace {

class SingleProcess : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(double*, int64_t) override {}
  void allreduce_sum(int64_t*, int64_t) override {}
  void reduce_sum(float*, int64_t, int) override {}
  void broadcast(void*, int64_t, int) override {}
  void send(const void*, int64_t, int dest) override { no_rank(dest); }
  void receive(void*, int64_t, int source) override { no_rank(source); }
  [[noreturn]] void abort(int code) override { std::exit(code); }

 private:
  [[noreturn]] void no_rank(int other) const {
    throw Error("no rank " + std::to_string(other) + " to exchange data with: this process is rank " +
                std::to_string(rank()) + " of " + std::to_string(size()) + " (not started by mpirun)");
  }
};

class PlanningRank : public SingleProcess {
 public:
  PlanningRank(int rank, int size) : rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }

 private:
  int rank_, size_;
};

#ifdef FRUGAL_HAVE_MPI
// MPI takes int counts: large buffers go in pieces.
constexpr int64_t kMaxCount = 1 << 30;

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(float* data, int64_t n) override { allreduce(data, n, MPI_FLOAT, sizeof(float)); }
  void allreduce_sum(double* data, int64_t n) override { allreduce(data, n, MPI_DOUBLE, sizeof(double)); }
  void allreduce_sum(int64_t* data, int64_t n) override { allreduce(data, n, MPI_INT64_T, sizeof(int64_t)); }
  void reduce_sum(float* data, int64_t n, int root) override {
    for (int64_t off = 0; off < n; off += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, n - off));
      const int rc = rank_ == root ? MPI_Reduce(MPI_IN_PLACE, data + off, count, MPI_FLOAT, MPI_SUM, root, MPI_COMM_WORLD)
                                   : MPI_Reduce(data + off, nullptr, count, MPI_FLOAT, MPI_SUM, root, MPI_COMM_WORLD);
      check(rc == MPI_SUCCESS, "MPI_Reduce failed");
    }
    bytes_ += n * static_cast<int64_t>(sizeof(float));
  }
  void broadcast(void* data, int64_t bytes, int root) override {
    char* p = static_cast<char*>(data);
    for (int64_t off = 0; off < bytes; off += kMaxCount)
      check(MPI_Bcast(p + off, static_cast<int>(std::min(kMaxCount, bytes - off)), MPI_BYTE, root, MPI_COMM_WORLD) ==
                MPI_SUCCESS,
            "MPI_Bcast failed");
    if (rank_ == root) bytes_ += bytes;
  }
  void send(const void* data, int64_t bytes, int dest) override {
    const char* p = static_cast<const char*>(data);
    for (int64_t off = 0; off < bytes; off += kMaxCount)
      check(MPI_Send(p + off, static_cast<int>(std::min(kMaxCount, bytes - off)), MPI_BYTE, dest, 0, MPI_COMM_WORLD) ==
                MPI_SUCCESS,
            "MPI_Send failed");
    bytes_ += bytes;
  }
  void receive(void* data, int64_t bytes, int source) override {
    char* p = static_cast<char*>(data);
    for (int64_t off = 0; off < bytes; off += kMaxCount)
      check(MPI_Recv(p + off, static_cast<int>(std::min(kMaxCount, bytes - off)), MPI_BYTE, source, 0, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE) == MPI_SUCCESS,
            "MPI_Recv failed");
  }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);
  }

 private:
  void allreduce(void* data, int64_t n, MPI_Datatype type, size_t element) {
    char* p = static_cast<char*>(data);
    for (int64_t off = 0; off < n; off += kMaxCount)
      check(MPI_Allreduce(MPI_IN_PLACE, p + off * element, static_cast<int>(std::min(kMaxCount, n - off)), type, MPI_SUM,
                          MPI_COMM_WORLD) == MPI_SUCCESS,
            "MPI_Allreduce failed");
    bytes_ += n * static_cast<int64_t>(element);
  }
  int rank_ = 0, size_ = 1;
};
#endif

std::unique_ptr<Communicator>& instance() {
  static std::unique_ptr<Communicator> world = std::make_unique<SingleProcess>();
  return world;
}

bool mpi_started = false;

}  // namespace

void init_distributed(int& argc, char**& argv) {
#ifdef FRUGAL_HAVE_MPI
  // Open MPI's launcher sets OMPI_COMM_WORLD_SIZE; a plain `frugal ...` never touches MPI.
  const char* launched = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (!launched || std::atoi(launched) <= 1) return;
  MPI_Init(&argc, &argv);
  mpi_started = true;
  instance() = std::make_unique<MpiCommunicator>();
#else
  (void)argc;
  (void)argv;
  const char* launched = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (launched && std::atoi(launched) > 1) {
    std::fprintf(stderr, "frugal: error: started by mpirun with %s ranks, but this frugal was built without MPI "
                         "(install libopenmpi-dev and rebuild)\n", launched);
    std::exit(1);
  }
#endif
}

void finalize_distributed() {
#ifdef FRUGAL_HAVE_MPI
  if (mpi_started) MPI_Finalize();
  mpi_started = false;
#endif
}

Communicator& world() { return *instance(); }

std::unique_ptr<Communicator> planning_communicator(int rank, int size) {
  return std::make_unique<PlanningRank>(rank, size);
}

}  // namespace frugal
