// libmalloc_counter.so: counts heap allocations of a process it is preloaded into, to measure
// "allocations per publish" and "allocations per delivery" (BENCHMARKS.md).
//
//   LD_PRELOAD=build-bench/bench/libmalloc_counter.so MALLOC_COUNTER_OUT=/tmp/counts magnetar serve ...
//   kill -USR2 <pid>   # appends "allocs=<n> frees=<n> bytes=<n>" to $MALLOC_COUNTER_OUT
//
// Take a line before and after a known number of requests (magnetar-bench --mark-signal 12
// --server-pid <pid> does it when its measured window opens and closes) and divide the
// difference. Every malloc/calloc/realloc/aligned allocation counts once; operator new goes
// through malloc in libstdc++, so C++ allocations are included. Forwards to glibc's allocator
// (__libc_*), so it adds two relaxed atomic increments per call and changes nothing else.

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t n, size_t size);
void* __libc_realloc(void* p, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
void __libc_free(void* p);
}

namespace {

std::atomic<uint64_t> g_allocs{0};
std::atomic<uint64_t> g_frees{0};
std::atomic<uint64_t> g_bytes{0};

inline void Count(size_t bytes) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  g_bytes.fetch_add(bytes, std::memory_order_relaxed);
}

// Async-signal-safe decimal formatting.
char* AppendNumber(char* out, uint64_t v) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) *out++ = digits[--n];
  return out;
}

char* AppendText(char* out, const char* s) {
  while (*s) *out++ = *s++;
  return out;
}

void Dump(int) {
  const int saved_errno = errno;
  const char* path = getenv("MALLOC_COUNTER_OUT");
  if (path) {
    char line[128];
    char* p = line;
    p = AppendText(p, "allocs=");
    p = AppendNumber(p, g_allocs.load(std::memory_order_relaxed));
    p = AppendText(p, " frees=");
    p = AppendNumber(p, g_frees.load(std::memory_order_relaxed));
    p = AppendText(p, " bytes=");
    p = AppendNumber(p, g_bytes.load(std::memory_order_relaxed));
    *p++ = '\n';
    const int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ssize_t ignored = write(fd, line, static_cast<size_t>(p - line));
      (void)ignored;
      close(fd);
    }
  }
  errno = saved_errno;
}

__attribute__((constructor)) void Install() {
  struct sigaction sa {};
  sa.sa_handler = Dump;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR2, &sa, nullptr);
}

}  // namespace

extern "C" {

void* malloc(size_t size) {
  Count(size);
  return __libc_malloc(size);
}

void* calloc(size_t n, size_t size) {
  Count(n * size);
  return __libc_calloc(n, size);
}

void* realloc(void* p, size_t size) {
  Count(size);
  return __libc_realloc(p, size);
}

void free(void* p) {
  if (p) g_frees.fetch_add(1, std::memory_order_relaxed);
  __libc_free(p);
}

void* memalign(size_t alignment, size_t size) {
  Count(size);
  return __libc_memalign(alignment, size);
}

void* aligned_alloc(size_t alignment, size_t size) {
  Count(size);
  return __libc_memalign(alignment, size);
}

int posix_memalign(void** out, size_t alignment, size_t size) {
  Count(size);
  void* p = __libc_memalign(alignment, size);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

}  // extern "C"
