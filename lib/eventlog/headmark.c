/*
 * headmark.c — encoding and file I/O of events.head (eventlog_int.h).
 *
 * Layout, little-endian: "TBHEAD01" (8) | log id (16) | offset (8) | sum (4) |
 * event id (16) | zero (8) | CRC-32C of the first 60 bytes (4).
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "eventlog_int.h"

static const char magic[8] = {'T', 'B', 'H', 'E', 'A', 'D', '0', '1'};

void tb__headmark_encode(const tb__headmark_t *hm, uint8_t out[TB__HEADMARK_SIZE]) {
  memset(out, 0, TB__HEADMARK_SIZE);
  memcpy(out, magic, 8);
  memcpy(out + 8, hm->log_id.b, 16);
  for (int i = 0; i < 8; i++) out[24 + i] = (uint8_t)(hm->offset >> (8 * i));
  for (int i = 0; i < 4; i++) out[32 + i] = (uint8_t)(hm->sum >> (8 * i));
  memcpy(out + 36, hm->ev_id.b, 16);
  uint32_t crc = tb__crc32c(0, out, 60);
  for (int i = 0; i < 4; i++) out[60 + i] = (uint8_t)(crc >> (8 * i));
}

int tb__headmark_decode(const uint8_t in[TB__HEADMARK_SIZE], tb__headmark_t *hm) {
  uint32_t crc = 0;
  for (int i = 0; i < 4; i++) crc |= (uint32_t)in[60 + i] << (8 * i);
  if (memcmp(in, magic, 8) != 0 || crc != tb__crc32c(0, in, 60)) return TB_ECORRUPT;
  memcpy(hm->log_id.b, in + 8, 16);
  hm->offset = 0;
  for (int i = 0; i < 8; i++) hm->offset |= (uint64_t)in[24 + i] << (8 * i);
  hm->sum = 0;
  for (int i = 0; i < 4; i++) hm->sum |= (uint32_t)in[32 + i] << (8 * i);
  memcpy(hm->ev_id.b, in + 36, 16);
  return 0;
}

int tb__headmark_read(const char *path, tb__headmark_t *hm) {
  uint8_t buf[TB__HEADMARK_SIZE];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tb_err_from_errno(errno);
  ssize_t n = pread(fd, buf, sizeof buf, 0);
  int e = errno;
  close(fd);
  if (n < 0) return tb_err_from_errno(e);
  if (n == 0) return TB_ENOENT; /* created, never written */
  if (n != (ssize_t)sizeof buf) return TB_ECORRUPT;
  return tb__headmark_decode(buf, hm);
}

int tb__headmark_write(int fd, const tb__headmark_t *hm) {
  uint8_t buf[TB__HEADMARK_SIZE];
  tb__headmark_encode(hm, buf);
  ssize_t n = pwrite(fd, buf, sizeof buf, 0);
  if (n < 0) return tb_err_from_errno(errno);
  return n == (ssize_t)sizeof buf ? 0 : TB_EIO;
}
