/*
 * ula.c — the app address derivation (include/tb/ula.h).
 *
 * The derivation is deliberately tiny: a fixed /32 prefix, 48 bits of BLAKE3 over the
 * UUID's raw bytes, and a fixed ::1 host part. Text conversion is left to inet_ntop and
 * inet_pton, which already implement RFC 5952 output and every accepted input form, so
 * the text every program prints for an address is the same as what the system tools
 * (ip, ss, ping) print for it.
 */
#include "tb/ula.h"

#include <arpa/inet.h>
#include <string.h>

#include "tb/blake3.h"
#include "tb/err.h"

/*
 * fd00::/8 is RFC 4193's locally assigned range and 5a:1f02 the fixed part that marks an
 * address as Tabbify's. In RFC 4193's terms the 48 hash bits fill the rest of the 40-bit
 * global ID, the 16-bit subnet ID and the top group of the interface ID.
 */
static const uint8_t APP_PREFIX[4] = {0xfd, 0x5a, 0x1f, 0x02};
static const uint8_t APP_HOST[6] = {0, 0, 0, 0, 0, 1};

void tb_ula_derive_app(const tb_uuid_t *app, tb_ula_t *out) {
  uint8_t h[TB_BLAKE3_OUT_LEN];
  tb_blake3_hash(app->b, sizeof app->b, h);
  memcpy(out->b, APP_PREFIX, sizeof APP_PREFIX);
  memcpy(out->b + 4, h, 6);
  memcpy(out->b + 10, APP_HOST, sizeof APP_HOST);
}

void tb_ula_format(const tb_ula_t *a, char out[TB_ULA_STR_MAX]) {
  /* inet_ntop only fails for an unknown family or a short buffer, neither possible here. */
  if (inet_ntop(AF_INET6, a->b, out, TB_ULA_STR_MAX) == NULL) out[0] = '\0';
}

int tb_ula_parse(const char *s, tb_ula_t *out) {
  struct in6_addr addr;
  if (s == NULL || inet_pton(AF_INET6, s, &addr) != 1) return TB_EPARSE;
  memcpy(out->b, &addr, sizeof out->b);
  return 0;
}

bool tb_ula_is_app(const tb_ula_t *a) {
  return memcmp(a->b, APP_PREFIX, sizeof APP_PREFIX) == 0 &&
         memcmp(a->b + 10, APP_HOST, sizeof APP_HOST) == 0;
}
