/*
 * clock.c — monotonic and wall-clock time (include/tb/clock.h).
 */
#include "tb/clock.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

static int64_t read_clock(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * TB_NS_PER_SEC + ts.tv_nsec;
}

int64_t tb_clock_mono_ns(void) { return read_clock(CLOCK_MONOTONIC); }

int64_t tb_clock_wall_ns(void) { return read_clock(CLOCK_REALTIME); }

char *tb_clock_format_rfc3339(int64_t ns, char out[TB_RFC3339_MAX]) {
  int64_t sec = ns / TB_NS_PER_SEC, rem = ns % TB_NS_PER_SEC;
  if (rem < 0) {
    rem += TB_NS_PER_SEC;
    sec--;
  }
  time_t t = (time_t)sec;
  struct tm tm;
  gmtime_r(&t, &tm);
  snprintf(out, TB_RFC3339_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
           tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(rem / TB_NS_PER_MS));
  return out;
}

void tb_clock_sleep_ms(int64_t ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * TB_NS_PER_MS};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}
