/*
 * container.c — containers: create, start, stop, kill, remove, inspect, list, wait
 * (include/tb/docker.h).
 *
 * Each call is one request; ids and names are percent-encoded into the path, so a
 * caller's string can never turn into a different endpoint or query.
 */
#include <inttypes.h>
#include <string.h>

#include "docker_int.h"
#include "tb/alloc.h"

/* A request on /containers/{id}{suffix}: formats the path and the sentence, sends it. */
static int on_container(tb_docker_t *d, const char *method, const char *id, const char *suffix, const char *verb,
                        long timeout_s, tb_buf_t *answer, tb_errbuf_t *eb) {
  tb_buf_t path, what;
  int rc;
  tb_buf_init(&path, 8192);
  tb_buf_init(&what, 1024);
  if ((rc = tb_buf_printf(&what, "%s the container %.12s", verb, id)) != 0 ||
      (rc = tb__docker_path(d, &path, "/containers/")) != 0 || (rc = tb__docker_escape(&path, id)) != 0 ||
      (rc = tb_buf_puts(&path, suffix)) != 0) {
    rc = tb_errf(eb, rc, "the container id %.40s... is too long", id);
    goto out;
  }
  tb__docker_req_t r = {.method = method, .path = tb_buf_cstr(&path), .what = tb_buf_cstr(&what), .answer = answer,
                        .timeout_s = timeout_s};
  rc = tb__docker_do(d, &r, eb);
out:
  tb_buf_deinit(&path);
  tb_buf_deinit(&what);
  return rc;
}

static int parse_answer(const tb_buf_t *answer, const char *what, json_t **out, tb_errbuf_t *eb) {
  char jerr[200];
  if (tb_json_parse((const char *)answer->data, answer->len, out, &(tb_errbuf_t){jerr, sizeof jerr}) != 0) {
    return tb_errf(eb, TB_EPARSE, "the Docker daemon's answer to %s is not JSON: %s", what, jerr);
  }
  return 0;
}

/* ---- create ---- */

static json_t *string_array(const char *const *v, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < n; i++) {
    if (v[i] == NULL || json_array_append_new(a, json_string(v[i])) != 0) {
      json_decref(a);
      return NULL;
    }
  }
  return a;
}

static json_t *create_body(const tb_docker_container_spec_t *s) {
  json_t *b = json_object(), *labels = json_object(), *host = json_object();
  json_t *ok = b && labels && host ? b : NULL;
  if (ok == NULL) goto fail;
  for (size_t i = 0; i < s->nlabels; i++) {
    if (s->labels[i].key == NULL || s->labels[i].value == NULL ||
        json_object_set_new(labels, s->labels[i].key, json_string(s->labels[i].value)) != 0)
      goto fail;
  }
  int bad = json_object_set_new(b, "Image", json_string(s->image));
  bad |= json_object_set(b, "Labels", labels);
  if (s->nenv) bad |= json_object_set_new(b, "Env", string_array(s->env, s->nenv));
  if (s->ncmd) bad |= json_object_set_new(b, "Cmd", string_array(s->cmd, s->ncmd));
  bad |= json_object_set_new(b, "Tty", json_false());
  bad |= json_object_set_new(b, "OpenStdin", json_false());
  bad |= json_object_set_new(b, "AttachStdout", json_false());
  bad |= json_object_set_new(b, "AttachStderr", json_false());
  if (s->port) {
    char key[16];
    snprintf(key, sizeof key, "%u/tcp", (unsigned)s->port);
    json_t *ports = json_object();
    bad |= ports == NULL || json_object_set_new(ports, key, json_object()) != 0;
    bad |= json_object_set_new(b, "ExposedPorts", ports);
  }
  if (s->memory_mb) {
    /* Memory == MemorySwap: the limit covers memory plus swap, so no swap at all. */
    json_int_t bytes = (json_int_t)(s->memory_mb << 20);
    bad |= json_object_set_new(host, "Memory", json_integer(bytes));
    bad |= json_object_set_new(host, "MemorySwap", json_integer(bytes));
  }
  bad |= json_object_set_new(host, "NetworkMode", json_string(s->network ? s->network : "bridge"));
  bad |= json_object_set_new(host, "ReadonlyRootfs", json_boolean(s->read_only));
  json_t *restart = json_pack("{s:s}", "Name", "no");
  bad |= json_object_set_new(host, "RestartPolicy", restart);
  bad |= json_object_set(b, "HostConfig", host);
  if (bad) goto fail;
  json_decref(labels);
  json_decref(host);
  return b;
fail:
  json_decref(b);
  json_decref(labels);
  json_decref(host);
  return NULL;
}

int tb_docker_container_create(tb_docker_t *d, const tb_docker_container_spec_t *spec, char id[65],
                               tb_errbuf_t *eb) {
  json_t *body = NULL, *answer_j = NULL;
  tb_buf_t path, what, text, answer;
  int rc;
  id[0] = '\0';
  tb_buf_init(&path, 4096);
  tb_buf_init(&what, 1024);
  tb_buf_init(&text, 4 << 20);
  tb_buf_init(&answer, 1 << 20);
  if (spec->image == NULL || spec->image[0] == '\0') {
    rc = tb_errf(eb, TB_EINVAL, "a container needs an image");
    goto out;
  }
  if (spec->memory_mb > ((uint64_t)1 << 30)) { /* 1 PiB: beyond it the byte count overflows json_int_t */
    rc = tb_errf(eb, TB_EINVAL, "memory_mb %" PRIu64 " is not a memory size", spec->memory_mb);
    goto out;
  }
  if ((body = create_body(spec)) == NULL) {
    rc = tb_errf(eb, TB_ENOMEM, "out of memory (or a NULL label, env or cmd entry) describing the container");
    goto out;
  }
  if ((rc = tb_json_dump(body, TB_JSON_COMPACT, &text)) != 0) {
    rc = tb_errf(eb, rc, "the container's description is larger than %zu bytes", text.max);
    goto out;
  }
  if ((rc = tb__docker_path(d, &path, "/containers/create")) != 0 ||
      (spec->name && ((rc = tb_buf_puts(&path, "?name=")) != 0 || (rc = tb__docker_escape(&path, spec->name)) != 0)) ||
      (rc = tb_buf_printf(&what, "create the container%s%s", spec->name ? " " : "", spec->name ? spec->name : "")) != 0) {
    rc = tb_errf(eb, rc, "the container name is too long");
    goto out;
  }
  tb__docker_req_t r = {.method = "POST", .path = tb_buf_cstr(&path), .what = tb_buf_cstr(&what),
                        .content_type = "application/json", .body = text.data, .body_len = text.len,
                        .answer = &answer, .timeout_s = TB__DOCKER_TIMEOUT_S};
  if ((rc = tb__docker_do(d, &r, eb)) != 0) goto out;
  if ((rc = parse_answer(&answer, "create the container", &answer_j, eb)) != 0) goto out;
  const char *new_id = json_string_value(json_object_get(answer_j, "Id"));
  if (new_id == NULL || strlen(new_id) != 64) {
    rc = tb_errf(eb, TB_EPARSE, "the Docker daemon created a container but its answer has no 64-digit \"Id\"");
    goto out;
  }
  memcpy(id, new_id, 65);
out:
  json_decref(body);
  json_decref(answer_j);
  tb_buf_deinit(&path);
  tb_buf_deinit(&what);
  tb_buf_deinit(&text);
  tb_buf_deinit(&answer);
  return rc;
}

/* ---- lifecycle ---- */

int tb_docker_container_start(tb_docker_t *d, const char *id, tb_errbuf_t *eb) {
  return on_container(d, "POST", id, "/start", "start", TB__DOCKER_TIMEOUT_S, NULL, eb);
}

int tb_docker_container_stop(tb_docker_t *d, const char *id, int timeout_s, tb_errbuf_t *eb) {
  char suffix[32];
  if (timeout_s < 0) timeout_s = 0;
  if (timeout_s > 86400) timeout_s = 86400;
  snprintf(suffix, sizeof suffix, "/stop?t=%d", timeout_s);
  return on_container(d, "POST", id, suffix, "stop", timeout_s + TB__DOCKER_TIMEOUT_S, NULL, eb);
}

int tb_docker_container_kill(tb_docker_t *d, const char *id, const char *sig, tb_errbuf_t *eb) {
  tb_buf_t suffix;
  tb_buf_init(&suffix, 256);
  int rc = tb_buf_puts(&suffix, "/kill?signal=");
  if (rc == 0) rc = tb__docker_escape(&suffix, sig ? sig : "SIGKILL");
  if (rc) rc = tb_errf(eb, rc, "the signal name is too long");
  else rc = on_container(d, "POST", id, tb_buf_cstr(&suffix), "kill", TB__DOCKER_TIMEOUT_S, NULL, eb);
  tb_buf_deinit(&suffix);
  return rc;
}

int tb_docker_container_remove(tb_docker_t *d, const char *id, bool force, tb_errbuf_t *eb) {
  return on_container(d, "DELETE", id, force ? "?v=1&force=1" : "?v=1", "remove", TB__DOCKER_TIMEOUT_S, NULL, eb);
}

/* ---- inspect, list, wait ---- */

static void copy_str(char *out, size_t cap, const json_t *v) {
  const char *s = json_string_value(v);
  snprintf(out, cap, "%s", s ? s : "");
}

int tb_docker_container_inspect(tb_docker_t *d, const char *id, tb_docker_container_state_t *st, json_t **raw,
                                tb_errbuf_t *eb) {
  tb_buf_t answer;
  json_t *j = NULL;
  int rc;
  memset(st, 0, sizeof *st);
  if (raw) *raw = NULL;
  tb_buf_init(&answer, TB__DOCKER_MAX_ANSWER);
  if ((rc = on_container(d, "GET", id, "/json", "inspect", TB__DOCKER_TIMEOUT_S, &answer, eb)) != 0) goto out;
  if ((rc = parse_answer(&answer, "inspect the container", &j, eb)) != 0) goto out;
  if (!json_is_object(j)) {
    rc = tb_errf(eb, TB_EPARSE, "the Docker daemon described the container %.12s with something not an object", id);
    goto out;
  }
  const json_t *state = json_object_get(j, "State");
  copy_str(st->id, sizeof st->id, json_object_get(j, "Id"));
  copy_str(st->status, sizeof st->status, json_object_get(state, "Status"));
  st->running = json_is_true(json_object_get(state, "Running"));
  st->oom_killed = json_is_true(json_object_get(state, "OOMKilled"));
  st->exit_code = json_integer_value(json_object_get(state, "ExitCode"));
  st->pid = json_integer_value(json_object_get(state, "Pid"));
  copy_str(st->started_at, sizeof st->started_at, json_object_get(state, "StartedAt"));
  copy_str(st->finished_at, sizeof st->finished_at, json_object_get(state, "FinishedAt"));
  copy_str(st->error, sizeof st->error, json_object_get(state, "Error"));
  /* The default bridge fills NetworkSettings.IPAddress; user networks only Networks.*. */
  const json_t *ns = json_object_get(j, "NetworkSettings");
  copy_str(st->ip, sizeof st->ip, json_object_get(ns, "IPAddress"));
  if (st->ip[0] == '\0') {
    const char *name;
    json_t *net;
    json_object_foreach(json_object_get(ns, "Networks"), name, net) {
      copy_str(st->ip, sizeof st->ip, json_object_get(net, "IPAddress"));
      if (st->ip[0]) break;
    }
  }
  if (raw) {
    *raw = j;
    j = NULL;
  }
out:
  json_decref(j);
  tb_buf_deinit(&answer);
  return rc;
}

int tb_docker_container_list(tb_docker_t *d, const char *label_filter, json_t **out, tb_errbuf_t *eb) {
  tb_buf_t path, answer, filter;
  json_t *j = NULL, *f = NULL;
  int rc;
  *out = NULL;
  tb_buf_init(&path, 16384);
  tb_buf_init(&answer, TB__DOCKER_MAX_ANSWER);
  tb_buf_init(&filter, 8192);
  if ((rc = tb__docker_path(d, &path, "/containers/json?all=1")) != 0) goto toolong;
  if (label_filter) {
    f = json_pack("{s:[s]}", "label", label_filter);
    if (f == NULL) {
      rc = tb_errf(eb, TB_ENOMEM, "out of memory");
      goto out;
    }
    if ((rc = tb_json_dump(f, TB_JSON_COMPACT, &filter)) != 0 || (rc = tb_buf_puts(&path, "&filters=")) != 0 ||
        (rc = tb__docker_escape(&path, tb_buf_cstr(&filter))) != 0)
      goto toolong;
  }
  tb__docker_req_t r = {.method = "GET", .path = tb_buf_cstr(&path), .what = "list containers", .answer = &answer,
                        .timeout_s = TB__DOCKER_TIMEOUT_S};
  if ((rc = tb__docker_do(d, &r, eb)) != 0) goto out;
  if ((rc = parse_answer(&answer, "list containers", &j, eb)) != 0) goto out;
  if (!json_is_array(j)) {
    rc = tb_errf(eb, TB_EPARSE, "the Docker daemon listed containers with something that is not an array");
    goto out;
  }
  *out = j;
  j = NULL;
  goto out;
toolong:
  rc = tb_errf(eb, rc, "the label filter is too long");
out:
  json_decref(j);
  json_decref(f);
  tb_buf_deinit(&path);
  tb_buf_deinit(&answer);
  tb_buf_deinit(&filter);
  return rc;
}

int tb_docker_container_wait(tb_docker_t *d, const char *id, const char *condition, int64_t *exit_code,
                             tb_errbuf_t *eb) {
  tb_buf_t answer, suffix;
  json_t *j = NULL;
  int rc;
  tb_buf_init(&answer, 1 << 20);
  tb_buf_init(&suffix, 256);
  if ((rc = tb_buf_puts(&suffix, "/wait?condition=")) != 0 ||
      (rc = tb__docker_escape(&suffix, condition ? condition : "not-running")) != 0) {
    rc = tb_errf(eb, rc, "the wait condition is too long");
    goto out;
  }
  if ((rc = on_container(d, "POST", id, tb_buf_cstr(&suffix), "wait for", 0, &answer, eb)) != 0) goto out;
  if ((rc = parse_answer(&answer, "wait for the container", &j, eb)) != 0) goto out;
  /* The daemon answers 200 with an "Error" when the wait itself failed. */
  const char *werr = json_string_value(json_object_get(json_object_get(j, "Error"), "Message"));
  if (werr && werr[0]) {
    rc = tb_errf(eb, TB_EIO, "the Docker daemon could not wait for the container %.12s: %s", id, werr);
    goto out;
  }
  json_t *code = json_object_get(j, "StatusCode");
  if (!json_is_integer(code)) {
    rc = tb_errf(eb, TB_EPARSE, "the Docker daemon's answer to waiting for %.12s has no StatusCode", id);
    goto out;
  }
  if (exit_code) *exit_code = json_integer_value(code);
out:
  json_decref(j);
  tb_buf_deinit(&answer);
  tb_buf_deinit(&suffix);
  return rc;
}
