/*
 * basics.c — args, environ, clocks, random_get, sched_yield: the process-level calls.
 * The harness runs it as `basics one "two words" ""` with FOO=bar and EMPTY= granted,
 * and nothing else.
 */
#include <sched.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

extern char **environ;

int main(int argc, char **argv) {
  /* Arguments, exactly as granted. */
  CHECK_INT(argc, 4);
  CHECK_STR(argv[0], "basics");
  CHECK_STR(argv[1], "one");
  CHECK_STR(argv[2], "two words");
  CHECK_STR(argv[3], "");
  CHECK(argv[4] == NULL, "argv is not NULL-terminated");

  /* The sizes agree with the strings. */
  uint32_t n = 0, size = 0;
  CHECK_WASI(raw_args_sizes_get(A(&n), A(&size)), 0);
  CHECK_INT(n, 4);
  CHECK_INT(size, strlen("basics") + strlen("one") + strlen("two words") + 4);

  /* Environment: only what was granted, in order. */
  CHECK_STR(getenv("FOO"), "bar");
  CHECK_STR(getenv("EMPTY"), "");
  CHECK(getenv("PATH") == NULL, "the host's PATH leaked in: %s", getenv("PATH"));
  CHECK(getenv("HOME") == NULL, "the host's HOME leaked in");
  int count = 0;
  for (char **e = environ; *e; e++) count++;
  CHECK_INT(count, 2);

  /* Clocks: realtime is after 2020, monotonic does not go back, resolutions are sane. */
  struct timespec a, b;
  CHECK(clock_gettime(CLOCK_REALTIME, &a) == 0, "realtime failed");
  CHECK(a.tv_sec > 1577836800, "realtime says %lld", (long long)a.tv_sec);
  CHECK(clock_gettime(CLOCK_MONOTONIC, &a) == 0, "monotonic failed");
  for (volatile int i = 0; i < 100000; i++) {
  }
  CHECK(clock_gettime(CLOCK_MONOTONIC, &b) == 0, "monotonic failed");
  CHECK(b.tv_sec > a.tv_sec || (b.tv_sec == a.tv_sec && b.tv_nsec >= a.tv_nsec), "monotonic went back");
  uint64_t res = 0, t = 0;
  CHECK_WASI(raw_clock_res_get(__WASI_CLOCKID_MONOTONIC, A(&res)), 0);
  CHECK(res > 0 && res <= 1000000, "monotonic resolution %llu ns", (unsigned long long)res);
  CHECK_WASI(raw_clock_time_get(__WASI_CLOCKID_PROCESS_CPUTIME_ID, 1, A(&t)), 0);
  CHECK_WASI(raw_clock_time_get(__WASI_CLOCKID_THREAD_CPUTIME_ID, 1, A(&t)), 0);
  CHECK_WASI(raw_clock_time_get(4, 1, A(&t)), __WASI_ERRNO_INVAL);
  CHECK_WASI(raw_clock_res_get(99, A(&res)), __WASI_ERRNO_INVAL);

  /* Sleeping goes through poll_oneoff with a clock subscription. */
  CHECK(clock_gettime(CLOCK_MONOTONIC, &a) == 0, "monotonic failed");
  struct timespec nap = {0, 20 * 1000 * 1000};
  CHECK(nanosleep(&nap, NULL) == 0, "nanosleep: %s", strerror(errno));
  CHECK(clock_gettime(CLOCK_MONOTONIC, &b) == 0, "monotonic failed");
  long long slept = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
  CHECK(slept >= 20000000LL, "slept %lld ns, wanted at least 20 ms", slept);

  /* Randomness: filled, and not the same twice. */
  unsigned char r1[64] = {0}, r2[64] = {0};
  CHECK_WASI(raw_random_get(A(r1), sizeof r1), 0);
  CHECK_WASI(raw_random_get(A(r2), sizeof r2), 0);
  CHECK(memcmp(r1, r2, sizeof r1) != 0, "two random_get calls returned the same bytes");
  CHECK_WASI(raw_random_get(A(r1), 0), 0);

  CHECK_WASI(__wasi_sched_yield(), 0);
  CHECK(sched_yield() == 0, "sched_yield");
  return check_done();
}
