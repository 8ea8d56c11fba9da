#pragma once
// The units every numeric tolerance in the suite is built from. A bound in a test is
// (how many roundings) x (the unit of the format that rounds) x (the size of what was rounded),
// derived where it is used, so that it holds for every GEMM kernel frugal may run (OpenBLAS's
// Haswell, SkylakeX/Cooperlake and Prescott kernels; oneDNN bf16 on or off): kernels differ in the
// order they add terms and in FMA use, never in the worst case below. docs/TOLERANCES.md lists them.
#include <cmath>

namespace frugal::testing {

inline constexpr double kFp32Unit = 0x1p-24;  // fp32 unit roundoff: 24 significant bits, round to nearest
inline constexpr double kBf16Unit = 0x1p-8;   // bf16: 8 significant bits
inline constexpr double kFp16Unit = 0x1p-11;  // fp16: 11 significant bits

// Higham's gamma_n = n u / (1 - n u): the worst-case relative error of a sum or dot product of n
// terms computed in any order, with or without FMA, relative to the sum of the terms' magnitudes.
inline double gamma_n(double n, double unit = kFp32Unit) { return n * unit / (1.0 - n * unit); }

}  // namespace frugal::testing
