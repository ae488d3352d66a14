// SPDX-License-Identifier: Apache-2.0
#pragma once
// `turnbridge report`: usage from the accounting store as a table, JSON or CSV (turnbridge(8)).
#include <iosfwd>

namespace turnbridge::accounting {

// argv[0] is "report". Prints the report on stdout; returns the exit status: 0 done,
// 1 no database or it cannot be read, 2 bad usage or an invalid configuration.
int run_report(int argc, char** argv);
// The same with the output streams given (tests).
int run_report(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace turnbridge::accounting
