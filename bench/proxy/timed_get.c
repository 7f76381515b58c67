/*
 * timed_get.c — one HTTP/1.1 GET on a fresh loopback connection, timed from just before
 * connect() to the end of the response, for bench/proxy/run.sh's cold-start figures.
 * The clock starts after this process is up, so its own start-up (exec, the dynamic
 * loader) is not in the figure, which a shell timing `curl` from outside would include.
 *
 *   timed_get PORT PATH
 *
 * Prints one line, "STATUS WALL_US ELAPSED_US", where WALL_US is the wall clock at the
 * start (to match against the timestamps in the platform's logs) and ELAPSED_US the
 * monotonic time to the last byte, then the raw response (headers and body). The request
 * says Connection: close, so the response ends when the server closes. Exits 1 on any
 * error, with a sentence on stderr.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESP_MAX 65536

static long long now_us(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv) {
  static char resp[RESP_MAX + 1];
  char req[1024];
  if (argc != 3) {
    fprintf(stderr, "usage: timed_get PORT PATH\n");
    return 1;
  }
  int port = atoi(argv[1]);
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", argv[2], port);
  if (port <= 0 || port > 65535 || n < 0 || (size_t)n >= sizeof req) {
    fprintf(stderr, "timed_get: bad port or overlong path\n");
    return 1;
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  long long wall = now_us(CLOCK_REALTIME), t0 = now_us(CLOCK_MONOTONIC);
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    perror("timed_get: connect");
    return 1;
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (write(fd, req, (size_t)n) != n) {
    perror("timed_get: write");
    return 1;
  }
  size_t len = 0;
  for (;;) {
    ssize_t r = read(fd, resp + len, RESP_MAX - len);
    if (r < 0) {
      perror("timed_get: read");
      return 1;
    }
    if (r == 0) break;
    len += (size_t)r;
    if (len == RESP_MAX) {
      fprintf(stderr, "timed_get: response over %d bytes\n", RESP_MAX);
      return 1;
    }
  }
  long long elapsed = now_us(CLOCK_MONOTONIC) - t0;
  close(fd);
  resp[len] = 0;
  int status = 0;
  if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) {
    fprintf(stderr, "timed_get: no status line in %zu bytes\n", len);
    return 1;
  }
  printf("%d %lld %lld\n", status, wall, elapsed);
  fwrite(resp, 1, len, stdout);
  return 0;
}
