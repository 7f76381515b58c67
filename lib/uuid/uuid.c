/*
 * uuid.c — RFC 9562 UUIDs and the monotonic version 7 generator (include/tb/uuid.h).
 *
 * The generator is a pure step function (tb__uuid_v7_next, uuid_int.h) over one piece of
 * process-wide state, the last timestamp and counter handed out, kept behind a mutex.
 * Randomness is drawn before the lock is taken, so the critical section is a clock read
 * and a few stores. A fork handler forgets that state in the child: parent and child
 * share the last timestamp, and without the reset they would go on to issue the same
 * counter values, told apart only by their 32 random bits.
 */
#include "tb/uuid.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "tb/clock.h"
#include "tb/err.h"
#include "uuid_int.h"

/* Seeds leave the counter's top bit clear (the RFC's rollover guard), so at least 2^41
 * UUIDs fit in one millisecond before it can roll over. */
#define SEED_MASK ((UINT64_C(1) << (TB__UUID_COUNTER_BITS - 1)) - 1)
#define TS_MAX ((INT64_C(1) << 48) - 1)

void tb__uuid_v7_next(tb__uuid_gen_t *g, int64_t now_ms, const uint8_t rnd[TB__UUID_RAND_LEN],
                      tb_uuid_t *out) {
  uint64_t seed = 0;
  for (int i = 0; i < 6; i++) seed = seed << 8 | rnd[i];
  seed &= SEED_MASK;
  if (now_ms < 0) now_ms = 0;
  if (now_ms > TS_MAX) now_ms = TS_MAX;

  if (now_ms > g->last_ms) {
    g->last_ms = now_ms;
    g->counter = seed;
  } else if (g->counter < TB__UUID_COUNTER_MAX) {
    /* Same millisecond, or the clock went backwards: keep the last timestamp. */
    g->counter++;
  } else {
    /* Rollover: run the timestamp one millisecond ahead of the clock and reseed. Past
     * the year 10889 (TS_MAX) there is nothing left to advance into; the timestamp then
     * wraps like the 48-bit field itself. */
    g->last_ms = (g->last_ms + 1) & TS_MAX;
    g->counter = seed;
  }

  uint64_t ms = (uint64_t)g->last_ms;
  uint32_t rand_a = (uint32_t)(g->counter >> 30);         /* 12 bits */
  uint32_t rand_b_hi = (uint32_t)g->counter & 0x3FFFFFFF; /* 30 bits */
  for (int i = 0; i < 6; i++) out->b[i] = (uint8_t)(ms >> (40 - 8 * i));
  out->b[6] = (uint8_t)(0x70 | rand_a >> 8);
  out->b[7] = (uint8_t)rand_a;
  out->b[8] = (uint8_t)(0x80 | rand_b_hi >> 24);
  out->b[9] = (uint8_t)(rand_b_hi >> 16);
  out->b[10] = (uint8_t)(rand_b_hi >> 8);
  out->b[11] = (uint8_t)rand_b_hi;
  memcpy(out->b + 12, rnd + 6, 4);
}

/* The process-wide generator. */
static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t gen_once = PTHREAD_ONCE_INIT;
static tb__uuid_gen_t gen = {.last_ms = -1};

static void gen_prepare_fork(void) { pthread_mutex_lock(&gen_lock); }
static void gen_parent_fork(void) { pthread_mutex_unlock(&gen_lock); }
static void gen_child_fork(void) {
  tb__uuid_gen_init(&gen);
  pthread_mutex_unlock(&gen_lock);
}
static void gen_register_fork(void) {
  pthread_atfork(gen_prepare_fork, gen_parent_fork, gen_child_fork);
}

static int fill_random(uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t got = getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return tb_err_from_errno(errno);
    }
    p += got;
    n -= (size_t)got;
  }
  return 0;
}

int tb_uuid_v7_new(tb_uuid_t *out) {
  uint8_t rnd[TB__UUID_RAND_LEN];
  int rc = fill_random(rnd, sizeof rnd);
  if (rc) return rc;
  pthread_once(&gen_once, gen_register_fork);
  pthread_mutex_lock(&gen_lock);
  tb__uuid_v7_next(&gen, tb_clock_wall_ms(), rnd, out);
  pthread_mutex_unlock(&gen_lock);
  return 0;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool is_hyphen_offset(size_t i) { return i == 8 || i == 13 || i == 18 || i == 23; }

int tb_uuid_parse(const char *s, size_t len, tb_uuid_t *out) {
  if (s == NULL || len != TB_UUID_STR_LEN) return TB_EPARSE;
  tb_uuid_t u;
  size_t n = 0; /* nibbles decoded */
  for (size_t i = 0; i < len; i++) {
    if (is_hyphen_offset(i)) {
      if (s[i] != '-') return TB_EPARSE;
      continue;
    }
    int v = hex_value(s[i]);
    if (v < 0) return TB_EPARSE;
    if (n % 2 == 0)
      u.b[n / 2] = (uint8_t)(v << 4);
    else
      u.b[n / 2] |= (uint8_t)v;
    n++;
  }
  *out = u;
  return 0;
}

void tb_uuid_format(const tb_uuid_t *u, char out[TB_UUID_STR_LEN + 1]) {
  static const char digits[] = "0123456789abcdef";
  size_t o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = digits[u->b[i] >> 4];
    out[o++] = digits[u->b[i] & 0xF];
  }
  out[o] = '\0';
}

int tb_uuid_version(const tb_uuid_t *u) { return u->b[6] >> 4; }

static bool all_bytes(const tb_uuid_t *u, uint8_t v) {
  for (int i = 0; i < 16; i++)
    if (u->b[i] != v) return false;
  return true;
}

bool tb_uuid_is_nil(const tb_uuid_t *u) { return all_bytes(u, 0x00); }

bool tb_uuid_is_max(const tb_uuid_t *u) { return all_bytes(u, 0xFF); }

static bool is_rfc_variant(const tb_uuid_t *u) { return (u->b[8] & 0xC0) == 0x80; }

int tb_uuid_validate(const tb_uuid_t *u) {
  if (tb_uuid_is_nil(u) || tb_uuid_is_max(u)) return 0;
  int v = tb_uuid_version(u);
  return is_rfc_variant(u) && v >= 1 && v <= 8 ? 0 : TB_EINVAL;
}

int64_t tb_uuid_v7_unix_ms(const tb_uuid_t *u) {
  if (!is_rfc_variant(u) || tb_uuid_version(u) != 7) return TB_EINVAL;
  int64_t ms = 0;
  for (int i = 0; i < 6; i++) ms = ms << 8 | u->b[i];
  return ms;
}

int tb_uuid_compare(const tb_uuid_t *a, const tb_uuid_t *b) {
  return memcmp(a->b, b->b, sizeof a->b);
}
