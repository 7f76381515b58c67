/*
 * docker_int.h — what the files of lib/docker share: the handle, one request through
 * libcurl (transport.c), and the reader of the daemon's JSON message streams.
 */
#ifndef TB_DOCKER_INT_H
#define TB_DOCKER_INT_H

#include "tb/curl.h"
#include <stdatomic.h>
#include <stdio.h>

#include "tb/buf.h"
#include "tb/docker.h"

struct tb_docker {
  CURL *curl;            /* one easy handle: its connection stays open between calls */
  char *socket;          /* the unix socket path, for requests and sentences */
  char api[16];          /* negotiated API version, "1.41" */
  char daemon[64];       /* the daemon's Version, "20.10.24+dfsg1" */
  atomic_int cancelled;  /* tb_docker_cancel */
};

/* Bounds on what the daemon may send into memory: JSON answers and one stream message. */
#define TB__DOCKER_MAX_ANSWER ((size_t)32 << 20)
#define TB__DOCKER_MAX_MESSAGE ((size_t)1 << 20)
/* Plain API calls give up after this; loads, pulls, waits and logs have no limit. */
#define TB__DOCKER_TIMEOUT_S 60L

/*
 * One request. `path` is the full path with the version prefix and query. The body is
 * `body`/`body_len` (with `content_type`) or a file streamed from `upload` (`upload_len`
 * bytes). A 2xx answer goes to `sink` when set (as it arrives), else into `answer`
 * (bounded by TB__DOCKER_MAX_ANSWER; may be NULL to drop it). `what` completes "the
 * Docker daemon refused to ..." in error sentences.
 */
typedef struct tb__docker_req {
  const char *method;
  const char *path;
  const char *what;
  const char *content_type;
  const void *body;
  size_t body_len;
  FILE *upload;
  int64_t upload_len;
  long timeout_s; /* 0: none */
  int (*sink)(void *ud, const uint8_t *p, size_t n, tb_errbuf_t *eb);
  void *sink_ud;
  tb_buf_t *answer;
  /* out */
  long status;
  char api_version[16]; /* the answer's Api-Version header, "" if none */
  char server[64];      /* the answer's Server header, "" if none */
} tb__docker_req_t;

/**
 * Performs `r` on `d`. Returns 0 for a 2xx or 304 answer (r->status says which), the
 * sink's error, or a TB_E* code with a sentence: the daemon's message for non-2xx
 * answers (404 TB_ENOTFOUND, 409 TB_ECONFLICT, ...), the socket for connection failures.
 */
int tb__docker_do(tb_docker_t *d, tb__docker_req_t *r, tb_errbuf_t *eb);

/** Appends "/v<api>" and the formatted rest to `out`; %s arguments are not escaped. */
int tb__docker_path(const tb_docker_t *d, tb_buf_t *out, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** Appends `s` percent-encoded (everything but unreserved characters) to `out`. */
int tb__docker_escape(tb_buf_t *out, const char *s);

/** The daemon's error text for an answer body: its JSON "message", else the text itself. */
void tb__docker_message(const tb_buf_t *answer, char *out, size_t cap);

/*
 * The JSON message stream (/images/load, /images/create): one JSON object per line.
 * `on_message` sees each object (borrowed); the first "errorDetail"/"error" is kept in
 * `error`. Feed it through tb__docker_jsonstream_sink as a request's sink.
 */
typedef struct tb__docker_jsonstream {
  tb_buf_t line;
  int (*on_message)(void *ud, json_t *msg);
  void *ud;
  char error[1024]; /* "" until the daemon reports an error */
  char last[256];   /* the last "status" or "stream" text, for sentences */
} tb__docker_jsonstream_t;

void tb__docker_jsonstream_init(tb__docker_jsonstream_t *s, int (*on_message)(void *, json_t *), void *ud);
void tb__docker_jsonstream_deinit(tb__docker_jsonstream_t *s);
int tb__docker_jsonstream_sink(void *ud, const uint8_t *p, size_t n, tb_errbuf_t *eb);
/** Call after the request: parses a last line without a newline. */
int tb__docker_jsonstream_finish(tb__docker_jsonstream_t *s, tb_errbuf_t *eb);

#endif /* TB_DOCKER_INT_H */
