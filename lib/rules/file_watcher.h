#pragma once
// Watches rule files with inotify and calls back (debounced) when one changes.
// Watches the directories, not the files, so editors that replace a file by
// rename and Kubernetes ConfigMap symlink swaps are seen. Runs its own thread;
// stop() or the destructor ends it.

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"

namespace cardinal::rules {

class FileWatcher {
 public:
  FileWatcher(std::vector<std::string> files, std::function<void()> on_change,
              std::chrono::milliseconds debounce = std::chrono::milliseconds(200));
  ~FileWatcher();
  core::Status start();
  void stop();

 private:
  void run();
  std::vector<std::string> files_;
  std::function<void()> on_change_;
  std::chrono::milliseconds debounce_;
  int fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace cardinal::rules
