#pragma once
// Yield points: places in a long computation on an I/O thread (between the
// parts of a request, between pipeline stages) where the thread may finish,
// in passing, small work that must not wait for the computation to end.
//
// The one user: an upstream answer that arrived for an earlier request of
// this thread (upstream/client.h). Its thread would otherwise run the whole
// next request (a millisecond of CPU) before the event loop reads the answer
// and writes the sender's 204; at a yield point it is read and answered at
// once. Whoever installs a hook makes it cheap and safe to run at any yield
// point: it must not start new requests or touch the computation's state.
//
// One hook per thread; yieldPoint() costs one thread-local load and a branch
// while none is installed.

namespace cardinal::core {

using YieldHook = void (*)();

inline thread_local YieldHook t_yield_hook = nullptr;

inline void yieldPoint() {
  if (YieldHook h = t_yield_hook) h();
}

}  // namespace cardinal::core
