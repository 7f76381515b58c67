/*
 * cmd_events.c — `tabbify events`: the event log, printed for audit.
 *
 *   tabbify events [--from N] [--type T] [--follow] [--json] [--verify]
 *                  [--state-dir DIR] [--nats URL] [--stream NAME]
 *   tabbify events --server URL [--token T] [--from N] [--type T] [--follow] [--json]
 *
 * Where it reads, first match wins: --server URL reads a node's GET /v1/events (the token
 * needs events:read); --state-dir or --nats reads that log locally; $TABBIFY_SERVER reads
 * that node; $TABBIFY_NATS_URL that stream; else the local state directory. So an explicit
 * flag always wins over the environment, and --server with --state-dir or --nats is a
 * usage error. Remote mode prints exactly what local mode prints (each answer is turned
 * back into the event it came from), --follow polls every 500 ms, and --verify is local
 * only (it checks pages and checksums on disk).
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
#include <unistd.h>

#include "api_int.h"
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

static int usage(void) {
  return tb__cli_fail(TB_EXIT_USAGE, "usage: tabbify events [--from N] [--type T] [--follow] [--json] [--verify] "
                                     "[--state-dir DIR] [--nats URL] [--stream NAME] | [--server URL] [--token T]; "
                                     "--server, then --state-dir/--nats, then $TABBIFY_SERVER, then the local log");
}

/* One element of GET /v1/events back into the event it came from; borrows from `o`,
 * except the payload text, which the caller frees. */
static int event_from_json(json_t *o, tb_event_t *ev, char **payload) {
  memset(ev, 0, sizeof *ev);
  const char *id = json_string_value(json_object_get(o, "id"));
  const char *agg = json_string_value(json_object_get(o, "aggregate"));
  json_t *off = json_object_get(o, "offset"), *pl = json_object_get(o, "payload");
  ev->type = json_string_value(json_object_get(o, "type"));
  ev->actor = json_string_value(json_object_get(o, "actor"));
  ev->idem_key = json_string_value(json_object_get(o, "idempotency_key"));
  if (!json_is_integer(off) || !ev->type || !ev->actor || !id || tb_uuid_parse(id, strlen(id), &ev->id) != 0)
    return TB_EINVAL;
  if (agg && tb_uuid_parse(agg, strlen(agg), &ev->aggregate) != 0) return TB_EINVAL;
  ev->offset = (uint64_t)json_integer_value(off);
  ev->schema = (uint32_t)json_integer_value(json_object_get(o, "schema"));
  ev->ts_ns = (int64_t)json_integer_value(json_object_get(o, "ts_ns"));
  *payload = json_dumps(pl ? pl : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
  if (!*payload) return TB_ENOMEM;
  ev->payload = *payload;
  ev->payload_len = strlen(*payload);
  return 0;
}

/* GET /v1/events page by page from p->last + 1; with follow, again every 500 ms. */
static int events_remote(tb__cli_api_t *api, printer_t *p, bool follow) {
  if (p->type)
    for (const char *c = p->type; *c; c++)
      if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
        return tb__cli_fail(TB_EXIT_USAGE, "--type wants an event type such as app_registered, got \"%s\"", p->type);
  if (follow) {
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
  }
  for (;;) {
    char path[256];
    snprintf(path, sizeof path, "/v1/events?from=%llu&limit=1000%s%s", (unsigned long long)(p->last + 1),
             p->type ? "&type=" : "", p->type ? p->type : "");
    long st = 0;
    json_t *arr = NULL, *o;
    int rc = tb__cli_api_call(api, "GET", path, NULL, &st, &arr);
    if (rc != 0) return interrupted ? TB_EXIT_OK : rc;
    if (!json_is_array(arr)) {
      json_decref(arr);
      return tb__cli_fail(TB_EXIT_FAIL, "the node's answer to %s is not a list of events", path);
    }
    size_t i, n = json_array_size(arr);
    json_array_foreach(arr, i, o) {
      tb_event_t ev;
      char *text = NULL;
      int erc = event_from_json(o, &ev, &text);
      if (erc == 0) print_cb(&ev, p);
      free(text);
      if (erc != 0) {
        json_decref(arr);
        return tb__cli_fail(TB_EXIT_FAIL, "the node sent an event that cannot be read (after offset %llu)",
                            (unsigned long long)p->last);
      }
    }
    json_decref(arr);
    fflush(stdout);
    if (n >= 1000) continue; /* more pages */
    if (!follow) return TB_EXIT_OK;
    for (int k = 0; k < 5 && !interrupted; k++) usleep(100 * 1000);
    if (interrupted) return TB_EXIT_OK;
  }
}

int tb__cli_events(int argc, char **argv) {
  const char *from_s = NULL, *type = NULL, *dir_flag = NULL, *nats = getenv("TABBIFY_NATS_URL"), *stream = NULL;
  const char *env_server = getenv("TABBIFY_SERVER");
  bool follow = false, json = false, verify = false, server_flag = false, nats_flag = false;
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], "--server") == 0) server_flag = true;
    else if (strcmp(argv[i], "--nats") == 0) nats_flag = true;
  /* --server/--token are taken out of argv here; the API client is only used remotely. */
  tb__cli_api_t api;
  tb__cli_api_init(&api, &argc, argv);
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
    else return tb__cli_api_deinit(&api), usage();
  }
  uint64_t from = 1;
  if (from_s) {
    char *end;
    unsigned long long v = strtoull(from_s, &end, 10);
    if (*from_s == '\0' || *end || from_s[0] == '-' || v == 0)
      return tb__cli_api_deinit(&api),
             tb__cli_fail(TB_EXIT_USAGE, "--from wants an offset (1 or more), got \"%s\"", from_s);
    from = v;
  }
  if (server_flag && (dir_flag || nats_flag))
    return tb__cli_api_deinit(&api),
           tb__cli_fail(TB_EXIT_USAGE, "give either --server (a node's API) or --state-dir/--nats (a local log)");
  if (server_flag || (!dir_flag && !nats_flag && env_server && *env_server)) {
    int st;
    if (verify) st = tb__cli_fail(TB_EXIT_USAGE, "--verify checks a log on disk; it needs --state-dir, not a server");
    else {
      printer_t rp = {.type = type, .json = json, .last = from - 1};
      st = events_remote(&api, &rp, follow);
    }
    tb__cli_api_deinit(&api);
    return st;
  }
  tb__cli_api_deinit(&api);
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
    o.state_dir = tb__cli_state_dir(dir_flag, dirbuf, sizeof dirbuf);
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
