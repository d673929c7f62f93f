// parallel.h — exceptions and OpenMP regions: FirstError.
//
// An exception must never leave an OpenMP parallel region. The compiler turns the region's body
// into a function the OpenMP runtime calls on each thread; an exception escaping it calls
// std::terminate and the whole Python process aborts — even under `if (false)`, where the
// calling thread runs the region alone. The bindings validate every size first, so what can
// still throw inside a kernel is the allocation of a scratch table (std::bad_alloc when memory
// runs out). The CPU loops that allocate therefore run those steps through a FirstError:
//
//   FirstError error;
//   #pragma omp parallel
//   {
//     std::vector<T> scratch;
//     error.run([&] { scratch.resize(n); });       // the thread's setup
//   #pragma omp for
//     for (index_t i = 0; i < count; ++i)
//       error.run([&] { ... });                      // one iteration
//   }
//   error.rethrow();                                 // on the calling thread, after the region
//
// run() catches whatever its body throws and keeps the first exception; once one is kept, every
// later run() returns at once (the loop drains quickly, and each thread still reaches the
// barriers of the region: none may leave a worksharing loop early). rethrow() then raises it
// where pybind11 can turn it into a Python exception (std::bad_alloc -> MemoryError).
#pragma once

#include <atomic>
#include <exception>

namespace minidl {

class FirstError {
 public:
  template <typename Body>
  void run(Body&& body) noexcept {
    if (failed_.load(std::memory_order_relaxed)) return;
    try {
      body();
    } catch (...) {
#pragma omp critical(minidl_first_error)
      if (!error_) error_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
  }

  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;
};

}  // namespace minidl
