/*
 * race.c — opens paths while a host thread swaps what they name. The harness keeps
 * exchanging (renameat2 RENAME_EXCHANGE), as fast as it can:
 *
 *   sandbox/race       a real directory holding secret.txt = "inside\n"
 *   sandbox/race_swap  a symlink to ../outside        (so race/secret.txt would be outside)
 *
 *   sandbox/final      a regular file = "inside\n"
 *   sandbox/final_swap a symlink to ../outside/secret.txt
 *
 * Every open must give the inside file or fail (notcapable, or noent/notdir when it
 * lands between the two renames); reading "OUTSIDE" even once is an escape.
 */
#include <stdlib.h>

#include "check.h"

#define ROUNDS 3000

static int attempt(const char *path, int *inside, int *refused, int *other) {
  __wasi_fd_t fd;
  int e = __wasi_path_open(SANDBOX_FD, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, path, 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd);
  if (e == __WASI_ERRNO_NOTCAPABLE) {
    ++*refused;
    return 0;
  }
  if (e != 0) {
    ++*other;
    return 0;
  }
  char buf[32] = {0};
  __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf - 1};
  __wasi_size_t n = 0;
  (void)__wasi_fd_read(fd, &iov, 1, &n);
  (void)__wasi_fd_close(fd);
  if (strncmp(buf, "OUTSIDE", 7) == 0) return 1;
  if (strcmp(buf, "inside\n") == 0) ++*inside;
  else ++*other;
  return 0;
}

int main(void) {
  int escapes = 0, inside = 0, refused = 0, other = 0;
  for (int i = 0; i < ROUNDS; i++) {
    escapes += attempt("race/secret.txt", &inside, &refused, &other);
    escapes += attempt("final", &inside, &refused, &other);
    escapes += attempt("race/../race/secret.txt", &inside, &refused, &other);
  }
  printf("%d opens: %d inside, %d refused, %d other, %d escaped\n", 3 * ROUNDS, inside, refused, other, escapes);
  CHECK(escapes == 0, "read the outside file %d times", escapes);
  return check_done();
}
