/*
 * poll.c — poll_oneoff: relative and absolute clock subscriptions, the earliest of two
 * clocks, fd subscriptions on a file (always ready), on stdin (a host pipe the harness
 * writes "ping\n" into after a delay) and on stdout, and per-event errors for a bad
 * descriptor and an unknown clock.
 */
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static uint64_t mono(void) {
  uint64_t t = 0;
  (void)__wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &t);
  return t;
}

static __wasi_subscription_t clock_sub(uint64_t ud, __wasi_clockid_t id, uint64_t timeout, int abs) {
  __wasi_subscription_t s;
  memset(&s, 0, sizeof s);
  s.userdata = ud;
  s.u.tag = __WASI_EVENTTYPE_CLOCK;
  s.u.u.clock.id = id;
  s.u.u.clock.timeout = timeout;
  s.u.u.clock.flags = abs ? __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME : 0;
  return s;
}

static __wasi_subscription_t fd_sub(uint64_t ud, int type, __wasi_fd_t fd) {
  __wasi_subscription_t s;
  memset(&s, 0, sizeof s);
  s.userdata = ud;
  s.u.tag = (uint8_t)type;
  s.u.u.fd_read.file_descriptor = fd;
  return s;
}

int main(void) {
  __wasi_event_t ev[4];
  __wasi_size_t n = 0;

  /* A relative clock: one event, after the timeout. */
  __wasi_subscription_t s[4];
  s[0] = clock_sub(11, __WASI_CLOCKID_MONOTONIC, 10000000, 0);
  uint64_t t0 = mono();
  CHECK_WASI(__wasi_poll_oneoff(s, ev, 1, &n), 0);
  CHECK(mono() - t0 >= 10000000, "woke after %llu ns", (unsigned long long)(mono() - t0));
  CHECK_INT(n, 1);
  CHECK_INT(ev[0].userdata, 11);
  CHECK_INT(ev[0].type, __WASI_EVENTTYPE_CLOCK);
  CHECK_INT(ev[0].error, 0);

  /* An absolute one, and the earlier of two. */
  s[0] = clock_sub(12, __WASI_CLOCKID_MONOTONIC, mono() + 5000000, 1);
  CHECK_WASI(__wasi_poll_oneoff(s, ev, 1, &n), 0);
  CHECK(n == 1 && ev[0].userdata == 12, "absolute clock: %u events", (unsigned)n);
  uint64_t real = 0;
  (void)__wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &real);
  s[0] = clock_sub(13, __WASI_CLOCKID_REALTIME, real + 5000000, 1);
  CHECK_WASI(__wasi_poll_oneoff(s, ev, 1, &n), 0);
  CHECK(n == 1 && ev[0].userdata == 13, "absolute realtime clock: %u events", (unsigned)n);
  s[0] = clock_sub(1, __WASI_CLOCKID_MONOTONIC, 2000000000, 0);
  s[1] = clock_sub(2, __WASI_CLOCKID_MONOTONIC, 5000000, 0);
  t0 = mono();
  CHECK_WASI(__wasi_poll_oneoff(s, ev, 2, &n), 0);
  CHECK(n == 1 && ev[0].userdata == 2, "two clocks: %u events, first %llu", (unsigned)n, (unsigned long long)ev[0].userdata);
  CHECK(mono() - t0 < 1000000000, "waited for the later clock");

  /* A file is always ready, with what is left to read. */
  int fd = open("/sandbox/poll.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
  CHECK(fd >= 0 && write(fd, "12345", 5) == 5 && lseek(fd, 0, SEEK_SET) == 0, "setup");
  s[0] = fd_sub(21, __WASI_EVENTTYPE_FD_READ, fd);
  s[1] = clock_sub(22, __WASI_CLOCKID_MONOTONIC, 2000000000, 0);
  CHECK_WASI(__wasi_poll_oneoff(s, ev, 2, &n), 0);
  CHECK(n == 1 && ev[0].userdata == 21 && ev[0].type == __WASI_EVENTTYPE_FD_READ, "file readable: %u events", (unsigned)n);
  CHECK_INT(ev[0].fd_readwrite.nbytes, 5);

  /* Per-event errors: a bad descriptor, an unknown clock. Both are reported at once. */
  s[0] = fd_sub(31, __WASI_EVENTTYPE_FD_READ, 99);
  s[1] = clock_sub(32, 7, 1, 0);
  CHECK_WASI(__wasi_poll_oneoff(s, ev, 2, &n), 0);
  CHECK_INT(n, 2);
  CHECK(ev[0].userdata == 31 && ev[0].error == __WASI_ERRNO_BADF, "bad fd event: error %d", ev[0].error);
  CHECK(ev[1].userdata == 32 && ev[1].error == __WASI_ERRNO_INVAL, "bad clock event: error %d", ev[1].error);

  /* stdout is writable now. */
  s[0] = fd_sub(41, __WASI_EVENTTYPE_FD_WRITE, 1);
  CHECK_WASI(__wasi_poll_oneoff(s, ev, 1, &n), 0);
  CHECK(n == 1 && ev[0].userdata == 41 && ev[0].error == 0, "stdout writable");

  /* stdin is a pipe that gets "ping\n" later: wait for it, with a 5 s clock as a guard. */
  s[0] = fd_sub(51, __WASI_EVENTTYPE_FD_READ, 0);
  s[1] = clock_sub(52, __WASI_CLOCKID_MONOTONIC, 5000000000ull, 0);
  CHECK_WASI(__wasi_poll_oneoff(s, ev, 2, &n), 0);
  CHECK(n >= 1 && ev[0].userdata == 51 && ev[0].error == 0, "stdin readable: first event %llu",
        (unsigned long long)ev[0].userdata);
  CHECK_INT(ev[0].fd_readwrite.nbytes, 5);
  char buf[16] = {0};
  CHECK_INT(read(0, buf, sizeof buf), 5);
  CHECK_STR(buf, "ping\n");
  /* libc's poll() too: the writer closed the pipe, so it is readable (end of input). */
  struct pollfd p = {.fd = 0, .events = POLLIN};
  CHECK_INT(poll(&p, 1, 5000), 1);
  CHECK_INT(read(0, buf, sizeof buf), 0);
  return check_done();
}
