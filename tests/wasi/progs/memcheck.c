/*
 * memcheck.c — hostile pointers and lengths: arrays and buffers past the end of memory,
 * lengths that wrap, iovec totals past 4 GiB, paths with NUL or bad UTF-8, result
 * pointers out of bounds. Each call must fail cleanly (fault, inval, ilseq,
 * nametoolong) and, where it matters, before doing anything.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

#define FAULT __WASI_ERRNO_FAULT

static uint32_t iov[2048 * 2];

int main(void) {
  uint32_t end = mem_end(), n = 0;
  char ok[16] = "ok\n";

  /* fd_write: the array, a buffer, a wrapping buffer, the result. */
  CHECK_WASI(raw_fd_write(1, end - 4, 1, A(&n)), FAULT);
  CHECK_WASI(raw_fd_write(1, 0xfffffff8u, 2, A(&n)), FAULT);
  uint32_t v[2] = {end - 2, 8};
  CHECK_WASI(raw_fd_write(1, A(v), 1, A(&n)), FAULT);
  uint32_t w[2] = {0xfffffff0u, 0x20};
  CHECK_WASI(raw_fd_write(1, A(w), 1, A(&n)), FAULT);
  uint32_t good[2] = {A(ok), 3};
  CHECK_WASI(raw_fd_write(1, A(good), 1, end), FAULT);
  CHECK_WASI(raw_fd_write(1, A(good), 1, end - 3), FAULT);
  CHECK_WASI(raw_fd_write(1, A(good), 0x20000000, A(&n)), FAULT); /* count * 8 past memory */

  /* Buffers that are each in bounds but add up past what a size can say. */
  uint32_t pages = (uint32_t)__builtin_wasm_memory_size(0);
  if (pages < 128) __builtin_wasm_memory_grow(0, 128 - pages); /* 8 MiB: 1024 x 8 MiB > 4 GiB */
  uint32_t big = (uint32_t)__builtin_wasm_memory_size(0) * 65536u;
  for (int i = 0; i < 1024; i++) {
    iov[2 * i] = 0;
    iov[2 * i + 1] = big;
  }
  CHECK_WASI(raw_fd_write(1, A(iov), 1024, A(&n)), __WASI_ERRNO_INVAL);
  end = big;

  /* A bad result pointer must not lose data: the read does not happen. */
  int fd = open("/sandbox/mem.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
  CHECK(fd >= 0 && write(fd, "abc", 3) == 3 && lseek(fd, 0, SEEK_SET) == 0, "setup: %s", strerror(errno));
  char rb[8] = {0};
  uint32_t rv[2] = {A(rb), sizeof rb};
  CHECK_WASI(raw_fd_read(fd, A(rv), 1, end - 2), FAULT);
  CHECK_INT(read(fd, rb, sizeof rb), 3);
  CHECK_STR(rb, "abc");
  CHECK_WASI(raw_fd_pread(fd, A(rv), 1, 0, end), FAULT);
  CHECK_WASI(raw_fd_seek(fd, 0, 0, end - 4), FAULT);
  CHECK_WASI(raw_fd_seek(fd, 0, 3, A(&n)), __WASI_ERRNO_INVAL);

  /* Paths: out of bounds, too long, NUL inside, not UTF-8, and a bad result pointer
   * that must not leave a file behind. */
  __wasi_fd_t nfd;
  CHECK_WASI(raw_path_open(SANDBOX_FD, 0, end - 2, 10, 0, 0, 0, 0, A(&nfd)), FAULT);
  CHECK_WASI(raw_path_open(SANDBOX_FD, 0, A("x"), 0x7fffffff, 0, 0, 0, 0, A(&nfd)), FAULT);
  static char longp[5000];
  memset(longp, 'a', sizeof longp);
  CHECK_WASI(raw_path_open(SANDBOX_FD, 0, A(longp), sizeof longp, 0, 0, 0, 0, A(&nfd)), __WASI_ERRNO_NAMETOOLONG);
  CHECK_WASI(raw_path_open(SANDBOX_FD, 0, A("a\0b"), 3, 0, 0, 0, 0, A(&nfd)), __WASI_ERRNO_INVAL);
  CHECK_WASI(raw_path_open(SANDBOX_FD, 0, A("\xff\xfe"), 2, 0, 0, 0, 0, A(&nfd)), __WASI_ERRNO_ILSEQ);
  CHECK_WASI(raw_path_open(SANDBOX_FD, 0, A("\xc0\xae"), 2, 0, 0, 0, 0, A(&nfd)), __WASI_ERRNO_ILSEQ); /* overlong '.' */
  CHECK_WASI(raw_path_open(SANDBOX_FD, 0, A("nofile"), 6, __WASI_OFLAGS_CREAT, 0, 0, 0, end), FAULT);
  struct stat sb;
  CHECK_ERR(stat("/sandbox/nofile", &sb), ENOENT);
  CHECK_WASI(raw_path_open(SANDBOX_FD, 0, A(""), 0, 0, 0, 0, 0, A(&nfd)), __WASI_ERRNO_NOENT);
  CHECK_WASI(raw_path_create_directory(SANDBOX_FD, end, 1), FAULT);
  CHECK_WASI(raw_path_filestat_get(SANDBOX_FD, 0, A("mem.txt"), 7, end - 32), FAULT);
  CHECK_WASI(raw_path_symlink(end - 1, 4, SANDBOX_FD, A("l"), 1), FAULT);
  uint32_t used;
  CHECK_WASI(raw_path_readlink(SANDBOX_FD, A("x"), 1, end - 1, 8, A(&used)), FAULT);

  /* Descriptor results and records. */
  CHECK_WASI(raw_fd_fdstat_get(1, end), FAULT);
  CHECK_WASI(raw_fd_filestat_get(SANDBOX_FD, end - 8), FAULT);
  CHECK_WASI(raw_fd_prestat_get(SANDBOX_FD, end - 4), FAULT);
  CHECK_WASI(raw_fd_prestat_dir_name(SANDBOX_FD, end - 2, 8), FAULT);
  CHECK_WASI(raw_fd_readdir(SANDBOX_FD, end - 10, 100, 0, A(&used)), FAULT);
  CHECK_WASI(raw_fd_readdir(SANDBOX_FD, A(rb), 8, 0, end), FAULT);

  /* Bad descriptors. */
  CHECK_WASI(raw_fd_write(999, A(good), 1, A(&n)), __WASI_ERRNO_BADF);
  CHECK_WASI(raw_fd_write(-1, A(good), 1, A(&n)), __WASI_ERRNO_BADF);

  /* Process-level calls. */
  uint32_t argc, argsz;
  CHECK_WASI(raw_args_sizes_get(end, A(&argsz)), FAULT);
  CHECK_WASI(raw_args_sizes_get(A(&argc), A(&argsz)), 0);
  CHECK_WASI(raw_args_get(end - 2, A(longp)), FAULT);
  CHECK_WASI(raw_args_get(A(iov), end - 1), FAULT);
  CHECK_WASI(raw_environ_get(A(iov), end - 1), argsz ? 0 : 0); /* no environment: nothing to write */
  CHECK_WASI(raw_clock_time_get(0, 0, end - 4), FAULT);
  CHECK_WASI(raw_clock_res_get(0, end), FAULT);
  CHECK_WASI(raw_random_get(end - 8, 16), FAULT);
  CHECK_WASI(raw_random_get(0xffffffffu, 2), FAULT);
  static unsigned char subs[48 * 2], evs[32 * 2];
  CHECK_WASI(raw_poll_oneoff(A(subs), A(evs), 0, A(&n)), __WASI_ERRNO_INVAL);
  CHECK_WASI(raw_poll_oneoff(end - 10, A(evs), 1, A(&n)), FAULT);
  CHECK_WASI(raw_poll_oneoff(A(subs), end - 10, 1, A(&n)), FAULT);
  CHECK_WASI(raw_poll_oneoff(A(subs), A(evs), 1, end), FAULT);
  CHECK_WASI(raw_poll_oneoff(A(subs), A(evs), 0x10000000, A(&n)), FAULT);
  return check_done();
}
