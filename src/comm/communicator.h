#pragma once
// The processes of a data-parallel job (DESIGN.md: MPI, launched with mpirun). Two implementations:
// a single process (always available, no MPI at run time) and MPI (built when Open MPI is installed,
// used when the process was started by mpirun with more than one rank).
#include <cstdint>
#include <memory>

namespace frugal {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In-place sums over all ranks (every rank gets the result).
  virtual void allreduce_sum(float* data, int64_t n) = 0;
  virtual void allreduce_sum(double* data, int64_t n) = 0;
  virtual void allreduce_sum(int64_t* data, int64_t n) = 0;
  // In-place sum over all ranks into rank `root`'s buffer (ZeRO-2's gradient shards); the other ranks'
  // buffers are left as they were.
  virtual void reduce_sum(float* data, int64_t n, int root) = 0;
  // `bytes` bytes from rank `root` to every rank.
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  // Point to point (ZeRO-3 gathers the trained weights on one rank): `bytes` bytes to rank `dest`,
  // and from rank `source`.
  virtual void send(const void* data, int64_t bytes, int dest) = 0;
  virtual void receive(void* data, int64_t bytes, int source) = 0;
  // Ends every rank of the job (after this rank printed why): a failing rank must not leave the
  // others waiting in a collective.
  [[noreturn]] virtual void abort(int code) = 0;
  // Payload bytes this rank has handed to collectives so far (what goes over the wire, per rank).
  int64_t bytes_communicated() const { return bytes_; }

 protected:
  int64_t bytes_ = 0;
};

// A rank of a job that is only planned (`frugal plan --ranks N`): the collectives move nothing (the
// planner's tensors hold no data), so one process can run every rank's trainer in measure mode.
std::unique_ptr<Communicator> planning_communicator(int rank, int size);

// Starts MPI when this process was launched by mpirun (Open MPI's environment says so) and the MPI
// build is on; otherwise the world is this one process. Call once, first thing in main.
void init_distributed(int& argc, char**& argv);
void finalize_distributed();
Communicator& world();

}  // namespace frugal
