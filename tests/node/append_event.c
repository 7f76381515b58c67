/*
 * append_event.c — appends one event to a node's event log from outside the node, as
 * tabbify-supervisord and runners will (the node picks it up within its 250 ms sync).
 * The proxy test uses it for app_started and supervisor_registered/_left until the real
 * supervisor appends them.
 *
 * Usage: append_event STATE_DIR TYPE AGGREGATE_UUID|- 'JSON PAYLOAD'
 */
#include <stdio.h>
#include <string.h>

#include "tb/eventlog.h"
#include "tb/projections.h"
#include "tb/uuid.h"

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: append_event STATE_DIR TYPE AGGREGATE_UUID|- 'JSON'\n");
    return 2;
  }
  char msg[512] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  tb_event_t ev = {.type = argv[2], .schema = 1, .actor = "test", .payload = argv[4], .payload_len = strlen(argv[4])};
  if (strcmp(argv[3], "-") != 0 && tb_uuid_parse(argv[3], strlen(argv[3]), &ev.aggregate) != 0) {
    fprintf(stderr, "append_event: \"%s\" is not a UUID\n", argv[3]);
    return 2;
  }
  int rc = tb_projections_check_event(&ev, &eb);
  tb_eventlog_t *log = NULL;
  if (rc == 0) {
    tb_eventlog_opts_t o;
    tb_eventlog_opts_init(&o);
    o.state_dir = argv[1];
    rc = tb_eventlog_open(&o, &log, &eb);
  }
  tb_eventlog_ack_t ack = {0};
  if (rc == 0) rc = tb_eventlog_append(log, &ev, &ack, &eb);
  if (log) tb_eventlog_close(log);
  if (rc != 0) {
    fprintf(stderr, "append_event: %s\n", msg[0] ? msg : tb_strerror(rc));
    return 1;
  }
  printf("%llu\n", (unsigned long long)ack.offset);
  return 0;
}
