#include "core/socket_wait.h"

#include <sys/socket.h>
#include <time.h>

#include <cstring>

namespace cardinal::core {

bool enableReceiveTimestamps(int fd) {
  const int on = 1;
  return ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) == 0;
}

ssize_t receiveTimed(int fd, void* buf, size_t len, int flags, int64_t* wait_ns) {
  *wait_ns = -1;
  iovec iov{buf, len};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(fd, &msg, flags);
  if (n <= 0) return n;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
    timespec arrived;
    std::memcpy(&arrived, CMSG_DATA(c), sizeof arrived);
    timespec now;
    ::clock_gettime(CLOCK_REALTIME, &now);
    const int64_t wait = (static_cast<int64_t>(now.tv_sec) - arrived.tv_sec) * 1'000'000'000 +
                         (static_cast<int64_t>(now.tv_nsec) - arrived.tv_nsec);
    *wait_ns = wait < 0 ? 0 : wait;
  }
  return n;
}

}  // namespace cardinal::core
