/*
 * clock.h — time as Tabbify's components use it.
 *
 * Durations and deadlines come from the monotonic clock (immune to wall-clock jumps);
 * timestamps that leave the process (events, logs) come from the wall clock, in
 * nanoseconds since the Unix epoch, and are printed as RFC 3339 UTC.
 */
#ifndef TB_CLOCK_H
#define TB_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#define TB_NS_PER_MS INT64_C(1000000)
#define TB_NS_PER_SEC INT64_C(1000000000)

/** Monotonic time in nanoseconds, from an arbitrary origin. */
int64_t tb_clock_mono_ns(void);
/** Wall-clock time in nanoseconds since 1970-01-01T00:00:00Z. */
int64_t tb_clock_wall_ns(void);
/** Wall-clock time in milliseconds since the epoch. */
static inline int64_t tb_clock_wall_ms(void) { return tb_clock_wall_ns() / TB_NS_PER_MS; }

/** Space for the longest tb_clock_format_rfc3339 output, with its NUL. */
#define TB_RFC3339_MAX 64
/**
 * Writes `ns` since the epoch as "2026-11-22T00:44:09.123Z" (millisecond precision).
 * `out` must hold TB_RFC3339_MAX bytes. Returns `out`.
 */
char *tb_clock_format_rfc3339(int64_t ns, char out[TB_RFC3339_MAX]);
/** Sleeps for `ms` milliseconds, resuming after signals. */
void tb_clock_sleep_ms(int64_t ms);

#endif /* TB_CLOCK_H */
