/*
 * check.h — the few assertions the WASI test programs share. A program runs its checks,
 * prints one line per failure saying what was expected and what came back, then
 * "N checks, M failed", and exits 1 if anything failed (tests/wasi/test_progs.c reads
 * both). Raw WASI imports are declared here so programs can pass exactly the pointers
 * and lengths they want, bad ones included, past wasi-libc's wrappers.
 */
#ifndef TB_WASI_CHECK_H
#define TB_WASI_CHECK_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <wasi/api.h>

static int check_count, check_failed;

#define CHECK(cond, ...)                                        \
  do {                                                          \
    check_count++;                                              \
    if (!(cond)) {                                              \
      check_failed++;                                           \
      printf("not ok %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
      printf(__VA_ARGS__);                                      \
      printf("\n");                                             \
    }                                                           \
  } while (0)

/* A libc call that must fail with -1 (or NULL) and errno `e`. */
#define CHECK_ERR(call, e)                                                                    \
  do {                                                                                        \
    errno = 0;                                                                                \
    long r_ = (long)(call);                                                                   \
    int e_ = errno;                                                                           \
    CHECK((r_ == -1 || r_ == 0) && e_ == (e), "expected %s (%d), got result %ld errno %d (%s)", #e, e, r_, \
          e_, strerror(e_));                                                                  \
  } while (0)

/* A raw WASI call that must return errno `e` (0 for success). */
#define CHECK_WASI(call, e)                                                             \
  do {                                                                                  \
    int r_ = (int)(call);                                                               \
    CHECK(r_ == (e), "expected errno %d (%s), got %d (%s)", (int)(e), strerror(e), r_, strerror(r_)); \
  } while (0)

#define CHECK_STR(got, want)                                                            \
  do {                                                                                  \
    const char *g_ = (got), *w_ = (want);                                               \
    CHECK(g_ && strcmp(g_, w_) == 0, "expected \"%s\", got \"%s\"", w_, g_ ? g_ : "(null)"); \
  } while (0)

#define CHECK_INT(got, want)                                                            \
  do {                                                                                  \
    long long g_ = (long long)(got), w_ = (long long)(want);                            \
    CHECK(g_ == w_, "expected %lld, got %lld", w_, g_);                                 \
  } while (0)

static inline int check_done(void) {
  printf("%d checks, %d failed\n", check_count, check_failed);
  fflush(stdout);
  return check_failed ? 1 : 0;
}

/* Raw imports: every argument a plain integer, so any address can be passed. */
#define RAW(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))
RAW(fd_write) int32_t raw_fd_write(int32_t fd, int32_t iovs, int32_t n, int32_t ret);
RAW(fd_read) int32_t raw_fd_read(int32_t fd, int32_t iovs, int32_t n, int32_t ret);
RAW(fd_pread) int32_t raw_fd_pread(int32_t fd, int32_t iovs, int32_t n, int64_t off, int32_t ret);
RAW(fd_seek) int32_t raw_fd_seek(int32_t fd, int64_t off, int32_t whence, int32_t ret);
RAW(fd_readdir) int32_t raw_fd_readdir(int32_t fd, int32_t buf, int32_t len, int64_t cookie, int32_t ret);
RAW(fd_prestat_get) int32_t raw_fd_prestat_get(int32_t fd, int32_t ret);
RAW(fd_prestat_dir_name) int32_t raw_fd_prestat_dir_name(int32_t fd, int32_t buf, int32_t len);
RAW(fd_fdstat_get) int32_t raw_fd_fdstat_get(int32_t fd, int32_t ret);
RAW(fd_filestat_get) int32_t raw_fd_filestat_get(int32_t fd, int32_t ret);
RAW(path_open)
int32_t raw_path_open(int32_t fd, int32_t dirflags, int32_t path, int32_t len, int32_t oflags, int64_t base,
                      int64_t inh, int32_t fdflags, int32_t ret);
RAW(path_filestat_get) int32_t raw_path_filestat_get(int32_t fd, int32_t flags, int32_t path, int32_t len, int32_t ret);
RAW(path_create_directory) int32_t raw_path_create_directory(int32_t fd, int32_t path, int32_t len);
RAW(path_readlink)
int32_t raw_path_readlink(int32_t fd, int32_t path, int32_t len, int32_t buf, int32_t buf_len, int32_t ret);
RAW(path_symlink) int32_t raw_path_symlink(int32_t old, int32_t old_len, int32_t fd, int32_t path, int32_t len);
RAW(args_get) int32_t raw_args_get(int32_t argv, int32_t buf);
RAW(args_sizes_get) int32_t raw_args_sizes_get(int32_t argc, int32_t size);
RAW(environ_get) int32_t raw_environ_get(int32_t env, int32_t buf);
RAW(clock_time_get) int32_t raw_clock_time_get(int32_t id, int64_t precision, int32_t ret);
RAW(clock_res_get) int32_t raw_clock_res_get(int32_t id, int32_t ret);
RAW(random_get) int32_t raw_random_get(int32_t buf, int32_t len);
RAW(poll_oneoff) int32_t raw_poll_oneoff(int32_t in, int32_t out, int32_t n, int32_t ret);
RAW(proc_raise) int32_t raw_proc_raise(int32_t sig);
RAW(sock_recv)
int32_t raw_sock_recv(int32_t fd, int32_t iovs, int32_t n, int32_t flags, int32_t ret_len, int32_t ret_flags);

/* Addresses past the end of memory, for the fault checks. */
static inline uint32_t mem_end(void) { return (uint32_t)(__builtin_wasm_memory_size(0) * 65536u); }
#define A(p) ((int32_t)(uintptr_t)(p))

/* The pre-opened directories the harness grants, in order: fd 3 and fd 4. */
#define SANDBOX_FD 3
#define RO_FD 4

#endif
