#include "rules/file_watcher.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <set>

#include "core/log.h"

namespace cardinal::rules {

FileWatcher::FileWatcher(std::vector<std::string> files, std::function<void()> on_change,
                         std::chrono::milliseconds debounce)
    : files_(std::move(files)), on_change_(std::move(on_change)), debounce_(debounce) {}

FileWatcher::~FileWatcher() { stop(); }

core::Status FileWatcher::start() {
  if (files_.empty()) return core::Status::Ok();
  fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) return core::Error{std::string("inotify_init1: ") + std::strerror(errno)};
  if (pipe2(stop_pipe_, O_CLOEXEC) != 0) return core::Error{std::string("pipe2: ") + std::strerror(errno)};
  std::set<std::string> dirs;
  for (const auto& f : files_) {
    auto dir = std::filesystem::absolute(f).parent_path().string();
    dirs.insert(dir);
  }
  for (const auto& d : dirs) {
    if (inotify_add_watch(fd_, d.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB) < 0)
      return core::Error{"inotify_add_watch " + d + ": " + std::strerror(errno)};
  }
  thread_ = std::thread([this] { run(); });
  return core::Status::Ok();
}

void FileWatcher::stop() {
  if (thread_.joinable()) {
    char c = 'x';
    (void)!write(stop_pipe_[1], &c, 1);
    thread_.join();
  }
  for (int* fd : {&fd_, &stop_pipe_[0], &stop_pipe_[1]}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

void FileWatcher::run() {
  std::set<std::string> names;
  for (const auto& f : files_) names.insert(std::filesystem::path(f).filename().string());
  alignas(inotify_event) char buf[8192];
  bool pending = false;
  while (true) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    // While a change is pending, wait only for the debounce period; then fire.
    int rc = poll(fds, 2, pending ? static_cast<int>(debounce_.count()) : -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) {
      core::logError("rule file watcher stopped", {{"error", std::strerror(errno)}});
      return;
    }
    if (fds[1].revents) return;
    if (rc == 0) {
      pending = false;
      on_change_();
      continue;
    }
    ssize_t n;
    while ((n = read(fd_, buf, sizeof buf)) > 0) {
      for (char* p = buf; p < buf + n;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        // Any change in a watched directory that touches one of our files, or
        // a ConfigMap-style "..data" swap.
        if (ev->len > 0 && (names.count(ev->name) || std::strcmp(ev->name, "..data") == 0)) pending = true;
        p += sizeof(inotify_event) + ev->len;
      }
    }
  }
}

}  // namespace cardinal::rules
