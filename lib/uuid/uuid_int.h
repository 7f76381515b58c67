/*
 * uuid_int.h — the version 7 generator's state machine, private to lib/uuid and its tests.
 *
 * tb_uuid_v7_new is this step function plus a wall clock, getrandom and a lock. Keeping
 * the step pure lets the tests drive the cases a real clock will not produce on demand:
 * a clock that steps backwards, and a counter that rolls over.
 */
#ifndef TB_UUID_INT_H
#define TB_UUID_INT_H

#include <stdint.h>

#include "tb/uuid.h"

/* The 42-bit counter of RFC 9562 §6.2 Method 1: rand_a and the top 30 bits of rand_b. */
#define TB__UUID_COUNTER_BITS 42
#define TB__UUID_COUNTER_MAX ((UINT64_C(1) << TB__UUID_COUNTER_BITS) - 1)
/* Random bytes one step consumes: 6 to seed the counter, 4 for the random tail. */
#define TB__UUID_RAND_LEN 10

typedef struct tb__uuid_gen {
  int64_t last_ms;  /* timestamp of the last UUID issued; -1 before the first */
  uint64_t counter; /* counter of the last UUID issued */
} tb__uuid_gen_t;

/** Puts `g` in its initial state, before any UUID was issued. */
static inline void tb__uuid_gen_init(tb__uuid_gen_t *g) {
  g->last_ms = -1;
  g->counter = 0;
}

/**
 * Issues the next UUID of generator `g` into `out`, the clock reading `now_ms` and
 * `rnd` (TB__UUID_RAND_LEN random bytes) being its inputs. The result always compares
 * greater than the previous one from `g`. Not thread-safe: the caller serialises calls.
 */
void tb__uuid_v7_next(tb__uuid_gen_t *g, int64_t now_ms, const uint8_t rnd[TB__UUID_RAND_LEN],
                      tb_uuid_t *out);

#endif /* TB_UUID_INT_H */
