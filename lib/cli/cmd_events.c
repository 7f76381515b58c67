/*
 * cmd_events.c — `tabbify events`: the event log, printed for audit.
 *
 *   tabbify events [--from N] [--type T] [--follow] [--json] [--verify]
 *                  [--state-dir DIR] [--nats URL] [--stream NAME]
 *
 * Opens the log read-only — the embedded one in the state directory (--state-dir,
 * $TABBIFY_STATE_DIR, else $XDG_STATE_HOME/tabbify, else ~/.local/state/tabbify), or the
 * JetStream stream with --nats URL (or $TABBIFY_NATS_URL) — and prints one line per event
 * from offset N (default 1): offset, time, type, aggregate, actor, payload. --json prints
 * one JSON object per line instead. --follow keeps printing events as they are appended
 * until interrupted. --verify checks every page and checksum of the log and says whether
 * it is intact. A damaged log is reported, with the offset, and exits 1. Secret values
 * never appear: their events carry only ciphertext.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"
#include "tb/buf.h"
#include "tb/clock.h"
#include "tb/eventlog.h"
#include "tb/json.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) { interrupted = 1; }

typedef struct printer {
  const char *type; /* only this type, or NULL */
  bool json;
  uint64_t printed;
  uint64_t last;
  int rc;
} printer_t;

static void print_json(const tb_event_t *ev) {
  char id[TB_UUID_STR_LEN + 1], agg[TB_UUID_STR_LEN + 1], ts[TB_RFC3339_MAX];
  tb_uuid_format(&ev->id, id);
  tb_uuid_format(&ev->aggregate, agg);
  tb_clock_format_rfc3339(ev->ts_ns, ts);
  json_t *payload = NULL;
  if (tb_json_parse(ev->payload, ev->payload_len, &payload, NULL) != 0) payload = json_stringn(ev->payload, ev->payload_len);
  json_t *o = json_pack("{s:I, s:s, s:s, s:i, s:o, s:s, s:s, s:I, s:o, s:o}", "offset", (json_int_t)ev->offset, "id",
                        id, "type", ev->type, "schema", (int)ev->schema, "aggregate",
                        tb_uuid_is_nil(&ev->aggregate) ? json_null() : json_string(agg), "actor", ev->actor, "time", ts,
                        "ts_ns", (json_int_t)ev->ts_ns, "idempotency_key",
                        ev->idem_key ? json_string(ev->idem_key) : json_null(), "payload",
                        payload ? payload : json_null());
  tb_buf_t out;
  tb_buf_init(&out, TB_BUF_DEFAULT_MAX);
  if (o && tb_json_dump(o, TB_JSON_COMPACT, &out) == 0) puts(tb_buf_cstr(&out));
  tb_buf_deinit(&out);
  json_decref(o);
}

static int print_cb(const tb_event_t *ev, void *ud) {
  printer_t *p = ud;
  p->last = ev->offset;
  if (p->type && strcmp(p->type, ev->type) != 0) return 0;
  if (p->json) {
    print_json(ev);
  } else {
    char agg[TB_UUID_STR_LEN + 1] = "-", ts[TB_RFC3339_MAX];
    if (!tb_uuid_is_nil(&ev->aggregate)) tb_uuid_format(&ev->aggregate, agg);
    tb_clock_format_rfc3339(ev->ts_ns, ts);
    printf("%llu  %s  %s  %s  %s  %.*s\n", (unsigned long long)ev->offset, ts, ev->type, agg, ev->actor,
           (int)ev->payload_len, ev->payload);
  }
  p->printed++;
  return 0;
}

/* The state directory: --state-dir, $TABBIFY_STATE_DIR, $XDG_STATE_HOME/tabbify, ~/.local/state/tabbify. */
static const char *state_dir(const char *flag, char *buf, size_t size) {
  if (flag) return flag;
  const char *env = getenv("TABBIFY_STATE_DIR");
  if (env && *env) return env;
  const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
  if (xdg && *xdg) snprintf(buf, size, "%s/tabbify", xdg);
  else snprintf(buf, size, "%s/.local/state/tabbify", home && *home ? home : ".");
  return buf;
}

static int usage(void) {
  return tb__cli_fail(TB_EXIT_USAGE, "usage: tabbify events [--from N] [--type T] [--follow] [--json] [--verify] "
                                     "[--state-dir DIR] [--nats URL] [--stream NAME]");
}

int tb__cli_events(int argc, char **argv) {
  const char *from_s = NULL, *type = NULL, *dir_flag = NULL, *nats = getenv("TABBIFY_NATS_URL"), *stream = NULL;
  bool follow = false, json = false, verify = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    bool has_val = i + 1 < argc;
    if (strcmp(a, "--follow") == 0 || strcmp(a, "-f") == 0) follow = true;
    else if (strcmp(a, "--json") == 0) json = true;
    else if (strcmp(a, "--verify") == 0) verify = true;
    else if (strcmp(a, "--from") == 0 && has_val) from_s = argv[++i];
    else if (strcmp(a, "--type") == 0 && has_val) type = argv[++i];
    else if (strcmp(a, "--state-dir") == 0 && has_val) dir_flag = argv[++i];
    else if (strcmp(a, "--nats") == 0 && has_val) nats = argv[++i];
    else if (strcmp(a, "--stream") == 0 && has_val) stream = argv[++i];
    else return usage();
  }
  uint64_t from = 1;
  if (from_s) {
    char *end;
    unsigned long long v = strtoull(from_s, &end, 10);
    if (*from_s == '\0' || *end || from_s[0] == '-' || v == 0)
      return tb__cli_fail(TB_EXIT_USAGE, "--from wants an offset (1 or more), got \"%s\"", from_s);
    from = v;
  }
  char dirbuf[1024], msg[512] = "";
  tb_errbuf_t eb = {msg, sizeof msg};
  tb_eventlog_opts_t o;
  tb_eventlog_opts_init(&o);
  o.read_only = true;
  if (nats && *nats) {
    o.backend = TB_EVENTLOG_JETSTREAM;
    o.nats_url = nats;
    o.stream = stream;
  } else {
    o.state_dir = state_dir(dir_flag, dirbuf, sizeof dirbuf);
  }
  tb_eventlog_t *log = NULL;
  int rc = tb_eventlog_open(&o, &log, &eb);
  if (rc) return tb__cli_fail(TB_EXIT_FAIL, "cannot open the event log: %s", msg);
  int status = TB_EXIT_OK;
  if (verify) {
    uint64_t head = 0;
    rc = tb_eventlog_verify(log, &eb);
    if (rc == 0) rc = tb_eventlog_head(log, &head);
    if (rc) status = tb__cli_fail(TB_EXIT_FAIL, "the event log is damaged: %s", msg[0] ? msg : tb_strerror(rc));
    else printf("ok: %llu events, every page and checksum verified\n", (unsigned long long)head);
    goto out;
  }
  printer_t p = {.type = type, .json = json, .last = from - 1};
  rc = tb_eventlog_read(log, from, NULL, print_cb, &p, &eb);
  fflush(stdout);
  if (rc) {
    status = tb__cli_fail(TB_EXIT_FAIL, "%s", msg[0] ? msg : tb_strerror(rc));
    goto out;
  }
  if (follow) {
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    tb_eventlog_sub_t *sub = NULL;
    if ((rc = tb_eventlog_sub_open(log, NULL, p.last + 1, &sub, &eb)) != 0) {
      status = tb__cli_fail(TB_EXIT_FAIL, "cannot follow the log: %s", msg);
      goto out;
    }
    while (!interrupted) {
      size_t n = 0;
      rc = tb_eventlog_sub_poll(sub, 1024, 500, print_cb, &p, &n, &eb);
      if (rc && rc != TB_EAGAIN) {
        status = tb__cli_fail(TB_EXIT_FAIL, "%s", msg[0] ? msg : tb_strerror(rc));
        break;
      }
      if (n) fflush(stdout);
    }
    tb_eventlog_sub_close(sub);
  }
out:
  tb_eventlog_close(log);
  return status;
}
