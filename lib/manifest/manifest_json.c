/*
 * manifest_json.c — the resolved manifest as JSON, for `tabbify manifest check` and for
 * the node, which stores what the CLI resolved rather than re-deriving defaults.
 *
 * Every field appears, set or not (null for absent strings), so the output documents
 * the full schema and the defaults in effect.
 */
#include "tb/manifest.h"

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static json_t *strv(const tb_strv_t *v) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < v->n; i++) json_array_append_new(a, json_string(v->v[i]));
  return a;
}

static json_t *env(const tb_env_t *e) {
  json_t *o = json_object();
  for (size_t i = 0; o && i < e->n; i++) json_object_set_new(o, e->v[i].key, json_string(e->v[i].value));
  return o;
}

json_t *tb_manifest_to_json(const tb_manifest_t *m) {
  char id[TB_UUID_STR_LEN + 1];
  if (m->app.has_id) tb_uuid_format(&m->app.id, id);

  json_t *deploy = json_array();
  for (size_t i = 0; deploy && i < m->ndeploy; i++)
    json_array_append_new(deploy, json_pack("{s:s, s:s}", "supervisor", m->deploy[i].supervisor, "runtime",
                                            tb_runtime_name(m->deploy[i].runtime)));
  json_t *listen = json_array();
  for (size_t i = 0; listen && i < m->network.listen.n; i++)
    json_array_append_new(listen, json_integer(m->network.listen.v[i]));

  /* json_pack steals the "o" references, also on failure. */
  return json_pack(
      "{s:{s:o, s:o, s:o},"
      " s:{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o},"
      " s:{s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:o},"
      " s:o, s:o, s:{s:o}, s:{s:o, s:o, s:o}, s:{s:{s:o, s:o}}}",
      "app", "name", str_or_null(m->app.name), "id", m->app.has_id ? json_string(id) : json_null(),
      "description", str_or_null(m->app.description),
      "build", "kind", tb_build_kind_name(m->build.kind), "command", str_or_null(m->build.command), "wasm",
      str_or_null(m->build.wasm), "dockerfile", str_or_null(m->build.dockerfile), "context",
      str_or_null(m->build.context), "image", str_or_null(m->build.image), "archive", str_or_null(m->build.archive),
      "args", env(&m->build.args),
      "runtime", "type", tb_runtime_name(m->runtime.type), "lifecycle", tb_lifecycle_name(m->runtime.lifecycle),
      "idle_timeout_sec", (json_int_t)m->runtime.idle_timeout_sec, "memory_mb", (json_int_t)m->runtime.memory_mb,
      "port", (json_int_t)m->runtime.port, "request_timeout_sec", (json_int_t)m->runtime.request_timeout_sec,
      "args", strv(&m->runtime.args), "health_path", str_or_null(m->runtime.health_path),
      "env", env(&m->env),
      "deploy", deploy,
      "from", "image", str_or_null(m->from.image),
      "source", "path", str_or_null(m->source.path), "entrypoint", str_or_null(m->source.entrypoint), "exclude",
      strv(&m->source.exclude),
      "capabilities", "network", "listen", listen, "connect", strv(&m->network.connect));
}
