/*
 * docker.h — a small, blocking client for the Docker Engine API over the daemon's unix
 * socket, and the demultiplexer for the daemon's log stream.
 *
 * This is what the docker runtime (tabbify-runner) and capability detection (the
 * supervisor) talk to dockerd through: open (ping, version negotiation), images (load
 * a `docker save` tarball, import a root file system, pull, inspect), containers
 * (create with labels/env/memory limit, start, stop, kill, remove, inspect, list by
 * label, wait) and logs (followed, demultiplexed into stdout and stderr). The design
 * notes, the API subset and how the tests run a private daemon are in
 * docs/internals/DOCKER.md.
 *
 * Threading: a tb_docker_t is one libcurl handle (one connection to the daemon, kept
 * alive between calls) and is used by ONE thread at a time. Calls block until the
 * daemon answers; tb_docker_container_wait() and tb_docker_logs_follow() block until the
 * container stops. A thread that needs to wait or follow while another thread drives the
 * container opens a second tb_docker_t (opening costs two small requests). The only call
 * that may come from another thread is tb_docker_cancel().
 *
 * Errors: every function returns 0 or a negative TB_E* code and fills `eb` (may be NULL)
 * with a sentence meant for users. Answers from the daemon map as 404 -> TB_ENOTFOUND,
 * 409 -> TB_ECONFLICT, 400 -> TB_EINVAL, 401/403 -> TB_EDENIED, other non-2xx -> TB_EIO,
 * and the sentence carries the daemon's own message ("the Docker daemon refused to create
 * the container: No such image: foo:1"). A daemon that is not there gives TB_ENOENT (no
 * socket file) or TB_ECONNREFUSED (nobody listening) and a sentence naming the socket.
 * tb_docker_cancel() makes the call in progress return TB_ECANCELED.
 */
#ifndef TB_DOCKER_H
#define TB_DOCKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tb/err.h"
#include "tb/json.h"

/* ---- the log stream demultiplexer: bytes in, frames out, no I/O ---- */

/*
 * For a container without a TTY, GET /containers/{id}/logs (and attach) answer with the
 * multiplexed stream: frames of an 8-byte header — the stream (0 stdin, 1 stdout,
 * 2 stderr), three zero bytes, the payload length as a big-endian uint32 — then the
 * payload. The demultiplexer is a state machine fed whatever the transport delivers;
 * any split of the input gives the same frames. It does not buffer payloads: each piece
 * is handed out as it arrives, so a frame of any length costs no memory.
 */
enum { TB_DOCKER_STDIN = 0, TB_DOCKER_STDOUT = 1, TB_DOCKER_STDERR = 2 };

typedef struct tb_docker_demux {
  uint8_t head[8];  /* the header being assembled */
  uint8_t head_len; /* bytes of it seen so far (0..8) */
  uint8_t stream;   /* the current frame's stream */
  uint32_t left;    /* payload bytes of the current frame still to come */
  uint64_t offset;  /* bytes consumed since init, for error sentences */
  int err;          /* sticky: once the input was malformed, every feed fails */
} tb_docker_demux_t;

/**
 * Called with a piece of a frame's payload: `stream` is TB_DOCKER_STDOUT/STDERR (or
 * STDIN), `p`/`n` the bytes (borrowed, valid during the call), `end` true on the last
 * piece of the frame. A frame with an empty payload is reported once with n == 0 and
 * end == true. Return 0 to go on; anything else stops the feed, which returns it.
 */
typedef int (*tb_docker_frame_cb)(void *ud, int stream, const uint8_t *p, size_t n, bool end);

/** Prepares `m` for a new stream. Allocates nothing; there is no deinit. */
void tb_docker_demux_init(tb_docker_demux_t *m);

/**
 * Feeds `n` bytes. Returns 0, the callback's non-zero value, or TB_EPARSE (and a sentence
 * naming the byte offset) when a header is not a multiplexed-stream header — stream
 * byte above 2 or non-zero padding; after TB_EPARSE every later feed fails the same way.
 */
int tb_docker_demux_feed(tb_docker_demux_t *m, const uint8_t *p, size_t n, tb_docker_frame_cb cb, void *ud,
                         tb_errbuf_t *eb);

/** At end of input: 0 on a frame boundary, TB_EPARSE when the stream stopped mid-frame. */
int tb_docker_demux_finish(const tb_docker_demux_t *m, tb_errbuf_t *eb);

/* ---- the client ---- */

typedef struct tb_docker tb_docker_t;

/** The API version Tabbify asks for: min(daemon's, this); below TB_DOCKER_API_MIN fails. */
#define TB_DOCKER_API_MAX "1.41"
#define TB_DOCKER_API_MIN "1.40"
/** The system daemon's socket, for callers that have no configured one. */
#define TB_DOCKER_DEFAULT_SOCKET "/var/run/docker.sock"

/**
 * Connects to the daemon at the unix socket `socket_path` (NULL: the default above):
 * GET /_ping, then GET /version, and settles the API version every later path is
 * prefixed with (/v1.41/...). On success *out is a new handle for the calling thread
 * (free with tb_docker_close). On failure *out is NULL and `eb` says why, e.g. "no Docker
 * daemon answers at /var/run/docker.sock (connection refused); is dockerd running?" or
 * "the Docker daemon at ... speaks API 1.24 (Docker 1.12.6), Tabbify needs 1.40 or newer"
 * (TB_EUNSUPPORTED). Copies `socket_path`.
 */
int tb_docker_open(const char *socket_path, tb_docker_t **out, tb_errbuf_t *eb);

/** Closes the connection and frees the handle. NULL is fine. */
void tb_docker_close(tb_docker_t *d);

/** The negotiated API version ("1.41") and the daemon's version ("20.10.24+dfsg1"); borrowed. */
const char *tb_docker_api_version(const tb_docker_t *d);
const char *tb_docker_daemon_version(const tb_docker_t *d);

/** GET /_ping: 0 while the daemon answers (capability detection), else as tb_docker_open. */
int tb_docker_ping(tb_docker_t *d, tb_errbuf_t *eb);

/**
 * Makes the call running on `d` in another thread (a wait, a followed log, a load)
 * return TB_ECANCELED within about a second, and every later call on `d` too: a
 * cancelled handle is only good for tb_docker_close. Safe from any thread and from
 * signal handlers (it sets one atomic flag).
 */
void tb_docker_cancel(tb_docker_t *d);

/* ---- images ---- */

/**
 * POST /images/load?quiet=1 with the tarball at `tar_path` as the body, streamed from the
 * file. Accepts what `docker save` writes (manifest.json + config + layer tars, also the
 * Docker 25+ layout that carries an OCI layout beside manifest.json); Docker 20.10 does
 * NOT load a bare OCI image layout (docs/internals/DOCKER.md). On success *image is a new
 * tb_malloc'd string (tb_free): the first "Loaded image: repo:tag" reference, or the
 * "sha256:..." id when the tarball had no tags. A tarball the daemon rejects is TB_EINVAL
 * with the daemon's reason; an unreadable file is its errno.
 */
int tb_docker_image_load(tb_docker_t *d, const char *tar_path, char **image, tb_errbuf_t *eb);

/**
 * POST /images/create?fromSrc=-: a root file system tar (`rootfs_tar`, streamed) becomes
 * the image `repo_tag` ("name:tag"), with Dockerfile-like `changes` ("CMD [\"/httpd\"]",
 * "EXPOSE 8080"; `nchanges` of them, may be 0). *image_id (optional) gets the new
 * image's "sha256:..." id (tb_free).
 */
int tb_docker_image_import(tb_docker_t *d, const char *rootfs_tar, const char *repo_tag,
                           const char *const *changes, size_t nchanges, char **image_id, tb_errbuf_t *eb);

/**
 * POST /images/create?fromImage=...: pulls `ref` ("name[:tag|@digest]"; no tag means
 * :latest, never every tag) through the daemon. Blocks until the pull ends. A failure
 * reported in the progress stream ("pull access denied", a registry that cannot be
 * reached) becomes TB_EIO, or TB_ENOTFOUND for an unknown image, with the daemon's words.
 */
int tb_docker_image_pull(tb_docker_t *d, const char *ref, tb_errbuf_t *eb);

/** GET /images/{ref}/json: *out is a new reference (json_decref). TB_ENOTFOUND when absent. */
int tb_docker_image_inspect(tb_docker_t *d, const char *ref, json_t **out, tb_errbuf_t *eb);

/** POST /images/{ref}/tag?repo=...&tag=...: gives the image `ref` the name repo:tag too. */
int tb_docker_image_tag(tb_docker_t *d, const char *ref, const char *repo, const char *tag, tb_errbuf_t *eb);

/** DELETE /images/{ref}: untags/removes an image; TB_ENOTFOUND, TB_ECONFLICT when in use. */
int tb_docker_image_remove(tb_docker_t *d, const char *ref, bool force, tb_errbuf_t *eb);

/* ---- containers ---- */

typedef struct tb_docker_label {
  const char *key;
  const char *value;
} tb_docker_label_t;

/**
 * What tb_docker_container_create makes. Everything is borrowed for the call. The
 * container never gets a TTY (so its logs are the multiplexed stream), never restarts
 * on its own (RestartPolicy "no": restarts are the runner's), and has no swap.
 */
typedef struct tb_docker_container_spec {
  const char *image;                /* required: a reference or an id */
  const char *name;                 /* optional container name; NULL lets Docker pick */
  const tb_docker_label_t *labels;  /* nlabels of them */
  size_t nlabels;
  const char *const *env;           /* "KEY=value", nenv of them */
  size_t nenv;
  const char *const *cmd;           /* argv overriding the image's Cmd; ncmd == 0 keeps it */
  size_t ncmd;
  uint64_t memory_mb;               /* HostConfig.Memory = MemorySwap; 0 means no limit */
  uint16_t port;                    /* TCP port to expose (ExposedPorts), 0 for none */
  const char *network;              /* HostConfig.NetworkMode; NULL means "bridge" */
  bool read_only;                   /* read-only root file system */
} tb_docker_container_spec_t;

/**
 * POST /containers/create. On success `id` holds the full 64-hex-digit id, NUL-terminated.
 * "No such image" is TB_ENOTFOUND, a name in use TB_ECONFLICT.
 */
int tb_docker_container_create(tb_docker_t *d, const tb_docker_container_spec_t *spec, char id[65],
                               tb_errbuf_t *eb);

/** POST /containers/{id}/start; starting a running container is not an error. */
int tb_docker_container_start(tb_docker_t *d, const char *id, tb_errbuf_t *eb);

/**
 * POST /containers/{id}/stop?t=timeout_s: SIGTERM (or the image's StopSignal), SIGKILL
 * after `timeout_s` seconds; blocks until the container stopped. Stopping a stopped
 * container is not an error.
 */
int tb_docker_container_stop(tb_docker_t *d, const char *id, int timeout_s, tb_errbuf_t *eb);

/**
 * POST /containers/{id}/kill?signal=...: `sig` like "SIGKILL" or "9"; NULL is SIGKILL.
 * A container that is not running is TB_ECONFLICT.
 */
int tb_docker_container_kill(tb_docker_t *d, const char *id, const char *sig, tb_errbuf_t *eb);

/**
 * DELETE /containers/{id}?v=1[&force=1] (with its anonymous volumes): `force` kills a
 * running container first; without it a running container is TB_ECONFLICT.
 */
int tb_docker_container_remove(tb_docker_t *d, const char *id, bool force, tb_errbuf_t *eb);

/** What the runner needs from GET /containers/{id}/json, copied out of the answer. */
typedef struct tb_docker_container_state {
  char id[65];
  char status[16];      /* State.Status: created, running, paused, restarting, removing, exited, dead */
  bool running;         /* State.Running */
  bool oom_killed;      /* State.OOMKilled: the kernel's OOM killer ended it (memory_mb) */
  int64_t exit_code;    /* State.ExitCode (137 after SIGKILL / an OOM kill) */
  int64_t pid;          /* State.Pid, 0 when not running */
  char ip[46];          /* NetworkSettings.IPAddress, else the first Networks.*.IPAddress; "" if none */
  char started_at[40];  /* State.StartedAt, RFC 3339 ("0001-01-01T00:00:00Z" when never) */
  char finished_at[40]; /* State.FinishedAt */
  char error[256];      /* State.Error: why it failed to start, "" otherwise */
} tb_docker_container_state_t;

/**
 * GET /containers/{id}/json into *st; *raw (optional, may be NULL) gets the whole answer
 * as a new reference (json_decref). TB_ENOTFOUND when there is no such container.
 */
int tb_docker_container_inspect(tb_docker_t *d, const char *id, tb_docker_container_state_t *st, json_t **raw,
                                tb_errbuf_t *eb);

/**
 * GET /containers/json?all=1&filters={"label":[label_filter]}: every container, running
 * or not, carrying the label ("io.tabbify.app=<uuid>", or just a key). NULL lists all.
 * *out is a new reference to the daemon's array (json_decref); each element has "Id",
 * "Names", "Image", "State", "Status", "Labels", "NetworkSettings".
 */
int tb_docker_container_list(tb_docker_t *d, const char *label_filter, json_t **out, tb_errbuf_t *eb);

/**
 * POST /containers/{id}/wait?condition=...: blocks until the container reaches the
 * condition — "not-running" (NULL; returns at once if it is not running), "next-exit"
 * or "removed" — and stores its exit code in *exit_code (optional). There is no
 * timeout; use a second handle and tb_docker_cancel to give up.
 */
int tb_docker_container_wait(tb_docker_t *d, const char *id, const char *condition, int64_t *exit_code,
                             tb_errbuf_t *eb);

enum {
  TB_DOCKER_LOGS_FOLLOW = 1,     /* keep the stream open until the container stops */
  TB_DOCKER_LOGS_TIMESTAMPS = 2, /* the daemon prefixes each line with an RFC 3339 time */
};

/**
 * GET /containers/{id}/logs?stdout=1&stderr=1[&follow=1][&since=...]: hands every piece
 * of output to `cb` (stream TB_DOCKER_STDOUT or TB_DOCKER_STDERR) as the daemon sends it,
 * demultiplexed; `since` is a Unix time in seconds (0: from the start). With
 * TB_DOCKER_LOGS_FOLLOW it returns when the container stops (after the last output),
 * when `cb` returns non-zero (that value is returned) or on tb_docker_cancel. Only for
 * containers created without a TTY (all of tb_docker_container_create's).
 */
int tb_docker_logs(tb_docker_t *d, const char *id, int64_t since, int flags, tb_docker_frame_cb cb, void *ud,
                   tb_errbuf_t *eb);

#endif /* TB_DOCKER_H */
