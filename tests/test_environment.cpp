// The environment of every test process, and so of the frugal processes the tests start.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "train/machine_rates.h"

namespace {
// The machine-rates cache lives in the build directory, not the user's: rates measured while the
// suite keeps the machine busy must not feed the cost model of the user's own runs. Set before main.
const bool kPrivateCache = [] { return setenv("XDG_CACHE_HOME", FRUGAL_TEST_CACHE_DIR, 1) == 0; }();
}  // namespace

TEST(MachineRatesCache, IsPrivateToTheTests) {
  ASSERT_TRUE(kPrivateCache);
  EXPECT_EQ(frugal::machine_rates_cache_path(), std::string(FRUGAL_TEST_CACHE_DIR) + "/frugal/machine_rates.json");
}

// A cached measurement is reused unless it was taken on a busy machine and this one is quiet now.
TEST(MachineRatesCache, RatesMeasuredOnABusyMachineAreMeasuredAgainWhenQuiet) {
  using frugal::reuse_cached_rates;
  EXPECT_TRUE(reuse_cached_rates(0.0, 0.0));
  EXPECT_TRUE(reuse_cached_rates(0.1, 1.5));  // a quiet measurement stays, busy now or not
  EXPECT_TRUE(reuse_cached_rates(1.2, 0.9));  // busy then and now: measuring again would not be better
  EXPECT_FALSE(reuse_cached_rates(1.2, 0.0));
  EXPECT_FALSE(reuse_cached_rates(frugal::kBusyCoresForRates, 0.1));
}
