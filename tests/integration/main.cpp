// Entry point of the integration suite: doctest plus a handler that kills every child process
// if the suite itself is interrupted.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "harness.h"

int main(int argc, char** argv) {
  cardinal::integration::installChildReaperSignalHandlers();
  doctest::Context context;
  context.applyCommandLine(argc, argv);
  return context.run();
}
