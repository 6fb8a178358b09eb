#pragma once
// Result<T>: a value or an error message, for everything a sender, the upstream
// or a file can cause. No exceptions on the data plane.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace cardinal::core {

struct Error {
  std::string message;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}              // NOLINT: implicit by design
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { assert(ok() && "value() on an error"); return std::get<0>(v_); }
  const T& value() const& { assert(ok() && "value() on an error"); return std::get<0>(v_); }
  T&& value() && { assert(ok() && "value() on an error"); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  // The message; empty on a value, like Status::error() (so a test's
  // CHECK_MESSAGE(r.ok(), r.error()), which doctest's -s evaluates on success too, is safe).
  const std::string& error() const {
    static const std::string kNone;
    return ok() ? kNone : std::get<1>(v_).message;
  }

 private:
  std::variant<T, Error> v_;
};

// Result<void> equivalent.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error.message)), ok_(false) {}  // NOLINT
  static Status Ok() { return Status(); }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
  bool ok_ = true;
};

}  // namespace cardinal::core
