/*
 * stdio.c — stdio plugged in by the embedder: stdin from a read callback (the harness
 * feeds "a line\nanother line\n" in small chunks), stdout and stderr to two separate
 * write callbacks. Echoes stdin upper-cased to stdout and a note to stderr.
 */
#include <ctype.h>
#include <unistd.h>

#include "check.h"

int main(void) {
  char buf[4096];
  size_t len = 0;
  ssize_t r;
  while ((r = read(0, buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)r;
  buf[len] = '\0';
  for (size_t i = 0; i < len; i++) buf[i] = (char)toupper((unsigned char)buf[i]);
  fputs(buf, stdout);
  fprintf(stderr, "read %zu bytes\n", len);
  __wasi_fdstat_t st;
  (void)__wasi_fd_fdstat_get(1, &st);
  fprintf(stderr, "stdout is a tty: %d\n", isatty(1));
  return 0;
}
