#pragma once
// Reading a socket with the kernel's receive timestamp (SO_TIMESTAMPNS set on
// it, enableReceiveTimestamps()): how long the data had lain in the socket
// before this read. The upstream
// client times an answer's wait for its thread with it (answer_wait_ms), the
// server a request's (request_wait_ms).

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace cardinal::core {

// Sets SO_TIMESTAMPNS on `fd`: the kernel stamps the data it receives. A
// socket accepted from a listener that has it has it too. False if refused.
bool enableReceiveTimestamps(int fd);

// recvmsg(fd, into buf, flags) (MSG_PEEK leaves the data in the socket); sets
// *wait_ns to how long the first byte read had been in the socket (its
// arrival against CLOCK_REALTIME now, at least 0), or -1 when the kernel gave
// no timestamp. Returns what recvmsg returned (errno set on -1).
ssize_t receiveTimed(int fd, void* buf, size_t len, int flags, int64_t* wait_ns);

}  // namespace cardinal::core
