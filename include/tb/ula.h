/*
 * ula.h — the app address: the IPv6 unique local address (RFC 4193) an app is reached at,
 * derived from its UUID.
 *
 * Every app gets fd5a:1f02:XXXX:XXXX:XXXX::1, the three XXXX groups being the first six
 * bytes of BLAKE3 over the app UUID's 16 raw bytes. The address is never stored or sent
 * as the source of truth: each program that needs it (the runtime that configures the
 * interface, the router that forwards to it, the CLI that prints it) recomputes it from
 * the UUID, so tb_ula_derive_app is the only place the rule may live. A second copy that
 * differs in any detail (hashing the text form, another byte order, another truncation)
 * would quietly send traffic to an address nobody listens on.
 * docs/internals/IDENTITY.md explains the choices.
 */
#ifndef TB_ULA_H
#define TB_ULA_H

#include <stdbool.h>
#include <stdint.h>

#include "tb/uuid.h"

/** An IPv6 address, 16 bytes in network order (the layout of struct in6_addr). */
typedef struct tb_ula {
  uint8_t b[16];
} tb_ula_t;

/** Space for the longest IPv6 text form, with its NUL (INET6_ADDRSTRLEN). */
#define TB_ULA_STR_MAX 46

/**
 * Writes the address of the app `app` to `out`: fd5a:1f02:h0h1:h2h3:h4h5:0:0:1 where
 * h = BLAKE3(app->b[0..16]). Any UUID is accepted, the nil UUID included; the result
 * depends on nothing but those 16 bytes. Cannot fail.
 */
void tb_ula_derive_app(const tb_uuid_t *app, tb_ula_t *out);

/**
 * Writes the canonical RFC 5952 text of `a` to `out` (lower case, leading zeros dropped,
 * the longest run of two or more zero groups shortened to "::"), NUL-terminated.
 */
void tb_ula_format(const tb_ula_t *a, char out[TB_ULA_STR_MAX]);

/**
 * Parses any textual IPv6 address that inet_pton(AF_INET6) accepts, from the
 * NUL-terminated `s`, into `out`. Returns 0, or TB_EPARSE with `out` untouched. It does
 * not require an app address: use tb_ula_is_app for that.
 */
int tb_ula_parse(const char *s, tb_ula_t *out);

/**
 * True when `a` has the shape of an app address: the prefix fd5a:1f02::/32 and ::1 in
 * its last 48 bits (bytes 10..15 are 0:0:1). Whether it belongs to a particular app is
 * answered by deriving that app's address and comparing.
 */
bool tb_ula_is_app(const tb_ula_t *a);

#endif /* TB_ULA_H */
