/*
 * echo.c — a tiny line server for `--tcplisten`: accepts N connections (argv[1]) on the
 * first pre-opened descriptor (3), answers each line with "echo: LINE", and closes.
 */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 1;
  for (int i = 0; i < n; i++) {
    __wasi_fd_t c;
    int e = __wasi_sock_accept(3, 0, &c);
    if (e != 0) {
      fprintf(stderr, "echo: sock_accept: %s\n", strerror(e));
      return 1;
    }
    char line[256];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof line - 1 && (r = read(c, line + len, 1)) == 1 && line[len] != '\n') len++;
    line[len] = '\0';
    char reply[300];
    int m = snprintf(reply, sizeof reply, "echo: %s\n", line);
    if (write(c, reply, (size_t)m) != m) fprintf(stderr, "echo: write: %s\n", strerror(errno)); /* a peer gone */
    (void)__wasi_sock_shutdown(c, __WASI_SDFLAGS_RD | __WASI_SDFLAGS_WR);
    close(c);
  }
  return 0;
}
