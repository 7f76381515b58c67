/*
 * uuid.h — UUIDs as RFC 9562 defines them: parsing, formatting, inspection, and new
 * version 7 (time-ordered) UUIDs.
 *
 * Tabbify names apps, deployments and events with v7 UUIDs because their byte order is
 * their creation order: sorting them, indexing them in a B-tree or comparing them with
 * memcmp (tb_uuid_compare) all follow time. Within one process the generator is strictly
 * monotonic, across threads too and when the wall clock steps backwards; the method is
 * described at tb_uuid_v7_new and in docs/internals/IDENTITY.md. A tb_uuid_t is 16 plain
 * bytes in network order, the same bytes the text form spells out, so it can be copied,
 * compared and hashed as is (ula.h hashes exactly these 16 bytes).
 */
#ifndef TB_UUID_H
#define TB_UUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A UUID: the 16 bytes in the order of their text form ("00112233-4455-..."). */
typedef struct tb_uuid {
  uint8_t b[16];
} tb_uuid_t;

/** Length of the canonical text form "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", without NUL. */
#define TB_UUID_STR_LEN 36

/**
 * Creates a new version 7 UUID in `out`: a 48-bit big-endian Unix timestamp in
 * milliseconds, the version (7) and variant (0b10) bits, and 74 bits that are a counter
 * followed by fresh randomness from getrandom(2).
 *
 * Every UUID returned in this process compares greater (tb_uuid_compare) than every
 * UUID returned before it, whichever thread asked: RFC 9562 §6.2 Method 1, with a 42-bit
 * counter (the 12 bits of rand_a and the top 30 bits of rand_b) that is seeded randomly
 * each new millisecond, with its top bit clear as a rollover guard, and incremented for
 * each UUID in the same millisecond. When the clock stands still or steps backwards the
 * previous timestamp is reused and the counter incremented; if the counter ever rolls
 * over, the timestamp is advanced by one millisecond ahead of the clock. The low 32 bits
 * are random in every UUID, so successive UUIDs are not guessable from each other.
 *
 * Thread-safe; takes a process-wide lock for a few instructions. Returns 0, or a TB_E*
 * code (from errno) if the random source fails, in which case `out` is untouched and the
 * generator's state is unchanged.
 */
int tb_uuid_v7_new(tb_uuid_t *out);

/**
 * Parses the canonical form: exactly TB_UUID_STR_LEN characters, hyphens at offsets 8,
 * 13, 18 and 23 and hex digits of either case everywhere else. Braces, "urn:uuid:",
 * missing hyphens and surrounding space are all rejected. `s` need not be NUL-terminated;
 * only `len` bytes are read. Returns 0 and fills `out`, or TB_EPARSE and leaves `out`
 * untouched. The version and variant are not checked: call tb_uuid_validate for that.
 */
int tb_uuid_parse(const char *s, size_t len, tb_uuid_t *out);

/** Writes the canonical lower-case form of `u`, NUL-terminated, to `out`. */
void tb_uuid_format(const tb_uuid_t *u, char out[TB_UUID_STR_LEN + 1]);

/**
 * The version field: the high four bits of byte 6 (0..15). Only meaningful when the
 * variant is RFC 9562's; the nil UUID gives 0 and the max UUID 15.
 */
int tb_uuid_version(const tb_uuid_t *u);

/** True for the nil UUID, 00000000-0000-0000-0000-000000000000. */
bool tb_uuid_is_nil(const tb_uuid_t *u);

/** True for the max UUID, ffffffff-ffff-ffff-ffff-ffffffffffff. */
bool tb_uuid_is_max(const tb_uuid_t *u);

/**
 * Returns 0 when `u` is a UUID RFC 9562 defines: variant bits 10 and version 1 to 8, or
 * the nil or max UUID. TB_EINVAL otherwise (another variant, or an unassigned version).
 */
int tb_uuid_validate(const tb_uuid_t *u);

/**
 * The timestamp of a version 7 UUID in milliseconds since the Unix epoch (0 to 2^48-1).
 * TB_EINVAL if `u` is not version 7 with the RFC 9562 variant.
 */
int64_t tb_uuid_v7_unix_ms(const tb_uuid_t *u);

/**
 * Orders UUIDs by their bytes (memcmp): negative, 0 or positive as `a` sorts before,
 * equal to or after `b`. For version 7 UUIDs this is creation order.
 */
int tb_uuid_compare(const tb_uuid_t *a, const tb_uuid_t *b);

#endif /* TB_UUID_H */
