/*
 * manifest.c — reads tabbify.toml into a resolved tb_manifest_t (include/tb/manifest.h).
 *
 * Three passes over the TOML tree. The first walks it against a schema (the field
 * tables below): every key must be known, every value must have the right type and
 * range, and each is stored at its offset in tb_manifest_t. The second fills defaults,
 * some of which depend on other fields (build.kind from the inputs given, runtime.type
 * from build.kind). The third checks rules that span fields, looking values up in the
 * tree again to point at the right line. Every pass keeps going after a problem, so one
 * run reports everything that is wrong.
 */
#include "tb/manifest.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tb/alloc.h"
#include "tb/err.h"
#include "tb/suggest.h"
#include "tb/toml.h"

/* ---- Names of the enumerations. ---- */

static const char *const build_kinds[] = {"wasm", "docker", NULL};
static const char *const runtimes[] = {"wasm-http", "docker", "firecracker", NULL};
static const char *const lifecycles[] = {"always_on", "on_request", NULL};

static const char *enum_name(const char *const *names, int v) {
  int n = 0;
  while (names[n]) n++;
  return v >= 1 && v <= n ? names[v - 1] : "?";
}

const char *tb_build_kind_name(tb_build_kind_t k) { return enum_name(build_kinds, (int)k); }
const char *tb_runtime_name(tb_runtime_t r) { return enum_name(runtimes, (int)r); }
const char *tb_lifecycle_name(tb_lifecycle_t l) { return enum_name(lifecycles, (int)l); }

int tb_runtime_parse(const char *name, tb_runtime_t *out) {
  for (int i = 0; runtimes[i]; i++) {
    if (strcmp(name, runtimes[i]) == 0) {
      *out = (tb_runtime_t)(i + 1);
      return 0;
    }
  }
  return TB_EINVAL;
}

/* ---- Diagnostics. ---- */

void tb_diags_init(tb_diags_t *d) { memset(d, 0, sizeof *d); }

void tb_diags_deinit(tb_diags_t *d) {
  for (size_t i = 0; i < d->n; i++) tb_free(d->v[i].msg);
  tb_free(d->v);
  tb_diags_init(d);
}

int tb_diags_format(const tb_diags_t *d, const char *filename, tb_buf_t *out) {
  for (size_t i = 0; i < d->n; i++) {
    const tb_diag_t *g = &d->v[i];
    const char *kind = g->warning ? "warning: " : "";
    int rc = g->line ? tb_buf_printf(out, "%s:%u:%u: %s%s\n", filename, g->line, g->col, kind, g->msg)
                     : tb_buf_printf(out, "%s: %s%s\n", filename, kind, g->msg);
    if (rc) return rc;
  }
  return 0;
}

/* The position of a problem with the whole file rather than one spot in it. */
static const tb_toml_pos_t NOWHERE = {0, 0};

typedef struct ctx {
  tb_manifest_t *m;
  const tb_toml_value_t *root;
  tb_diags_t *diags;
  int oom; /* set once any allocation failed; the parse then ends in TB_ENOMEM */
  size_t errors_before; /* diags->errors when this parse began: diags may hold older ones */
} ctx_t;

__attribute__((format(printf, 4, 5))) static void diag(ctx_t *c, tb_toml_pos_t pos, bool warning,
                                                       const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  tb_diags_t *d = c->diags;
  if (d->n == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 8;
    tb_diag_t *v = tb_reallocarray(d->v, cap, sizeof *v);
    if (v == NULL) {
      c->oom = 1;
      return;
    }
    d->v = v;
    d->cap = cap;
  }
  char *copy = tb_strdup(msg);
  if (copy == NULL) {
    c->oom = 1;
    return;
  }
  d->v[d->n++] = (tb_diag_t){pos.line, pos.col, warning, copy};
  if (!warning) d->errors++;
}

#define fail(c, pos, ...) diag((c), (pos), false, __VA_ARGS__)
#define advise(c, pos, ...) diag((c), (pos), true, __VA_ARGS__)

/* Describes a value for "got ..." in messages: "\"dockr\"", "integer 3", "a table". */
static const char *describe(const tb_toml_value_t *v, char *buf, size_t size) {
  switch (tb_toml_type(v)) {
  case TB_TOML_STRING: {
    size_t len;
    const char *s = tb_toml_str(v, &len);
    snprintf(buf, size, "\"%.*s\"", len > 60 ? 60 : (int)len, s);
    break;
  }
  case TB_TOML_INTEGER:
    snprintf(buf, size, "integer %lld", (long long)tb_toml_int(v));
    break;
  case TB_TOML_FLOAT:
    snprintf(buf, size, "float %g", tb_toml_float(v));
    break;
  case TB_TOML_BOOL:
    snprintf(buf, size, "%s", tb_toml_bool(v) ? "true" : "false");
    break;
  default: {
    const char *name = tb_toml_type_name(tb_toml_type(v));
    snprintf(buf, size, "%s %s", strchr("aeiou", name[0]) ? "an" : "a", name);
    break;
  }
  }
  return buf;
}

/* ---- The schema. ---- */

typedef enum kind {
  K_STR = 1, /* char *, non-empty, no NUL */
  K_UINT,    /* uint32_t in [min, max] */
  K_ENUM,    /* an enum stored as int: index in `choices` + 1 */
  K_UUID,    /* app.id: tb_uuid_t, version 7 */
  K_STRV,    /* tb_strv_t */
  K_PORTS,   /* tb_portv_t */
  K_MAP,     /* tb_env_t: a table of string values with identifier keys */
  K_TABLE,   /* a sub-table whose fields are in `sub` */
  K_DEPLOY,  /* [[deploy]]: an array of tables, each with deploy_fields */
} kind_t;

typedef struct field {
  const char *key;
  kind_t kind;
  size_t off; /* into tb_manifest_t, or into tb_manifest_deploy_t for deploy_fields */
  const struct field *sub;
  const char *const *choices;
  uint32_t min, max;
  bool (*valid)(const char *s); /* K_STR: an extra rule ... */
  const char *rule;             /* ... and what it demands, for the message */
} field_t;

#define OFF(member) offsetof(tb_manifest_t, member)

static bool valid_app_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-') return false;
  for (size_t i = 0; i < n; i++)
    if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-')) return false;
  return true;
}

static bool valid_http_path(const char *s) {
  if (s[0] != '/') return false;
  for (; *s; s++)
    if ((unsigned char)*s <= ' ' || *s == 0x7f) return false;
  return true;
}

static bool valid_env_key(const char *s) {
  if (!(isalpha((unsigned char)s[0]) || s[0] == '_')) return false;
  for (s++; *s; s++)
    if (!(isalnum((unsigned char)*s) || *s == '_')) return false;
  return true;
}

static const field_t app_fields[] = {
    {"name", K_STR, OFF(app.name), .valid = valid_app_name,
     .rule = "1-63 lower-case letters, digits and '-', not starting or ending with '-'"},
    {"id", K_UUID, OFF(app.id)},
    {"description", K_STR, OFF(app.description)},
    {0},
};

static const field_t build_fields[] = {
    {"kind", K_ENUM, OFF(build.kind), .choices = build_kinds},
    {"command", K_STR, OFF(build.command)},
    {"wasm", K_STR, OFF(build.wasm)},
    {"dockerfile", K_STR, OFF(build.dockerfile)},
    {"context", K_STR, OFF(build.context)},
    {"image", K_STR, OFF(build.image)},
    {"archive", K_STR, OFF(build.archive)},
    {"args", K_MAP, OFF(build.args)},
    {0},
};

static const field_t runtime_fields[] = {
    {"type", K_ENUM, OFF(runtime.type), .choices = runtimes},
    {"lifecycle", K_ENUM, OFF(runtime.lifecycle), .choices = lifecycles},
    {"idle_timeout_sec", K_UINT, OFF(runtime.idle_timeout_sec), .min = 1, .max = 7 * 86400},
    {"memory_mb", K_UINT, OFF(runtime.memory_mb), .min = 1, .max = TB_MANIFEST_MAX_MEMORY_MB},
    {"port", K_UINT, OFF(runtime.port), .min = 1, .max = 65535},
    {"request_timeout_sec", K_UINT, OFF(runtime.request_timeout_sec), .min = 1, .max = 86400},
    {"args", K_STRV, OFF(runtime.args)},
    {"health_path", K_STR, OFF(runtime.health_path), .valid = valid_http_path,
     .rule = "an absolute HTTP path such as \"/health\""},
    {0},
};

static const field_t deploy_fields[] = {
    {"supervisor", K_STR, offsetof(tb_manifest_deploy_t, supervisor)},
    {"runtime", K_ENUM, offsetof(tb_manifest_deploy_t, runtime), .choices = runtimes},
    {0},
};

static const field_t from_fields[] = {
    {"image", K_STR, OFF(from.image)},
    {0},
};

static const field_t source_fields[] = {
    {"path", K_STR, OFF(source.path)},
    {"entrypoint", K_STR, OFF(source.entrypoint)},
    {"exclude", K_STRV, OFF(source.exclude)},
    {0},
};

static const field_t network_fields[] = {
    {"listen", K_PORTS, OFF(network.listen)},
    {"connect", K_STRV, OFF(network.connect)},
    {0},
};

static const field_t capabilities_fields[] = {
    {"network", K_TABLE, 0, network_fields},
    {0},
};

static const field_t root_fields[] = {
    {"app", K_TABLE, 0, app_fields},
    {"build", K_TABLE, 0, build_fields},
    {"runtime", K_TABLE, 0, runtime_fields},
    {"env", K_MAP, OFF(env)},
    {"deploy", K_DEPLOY, 0, deploy_fields},
    {"from", K_TABLE, 0, from_fields},
    {"source", K_TABLE, 0, source_fields},
    {"capabilities", K_TABLE, 0, capabilities_fields},
    {0},
};

/* ---- Pass 1: walk the tree against the schema. ---- */

static void walk_table(ctx_t *c, const tb_toml_value_t *t, const field_t *fields, void *base, const char *path);

/* A copy of a TOML string, or NULL with a diagnostic if it holds a NUL byte. */
static char *copy_str(ctx_t *c, const tb_toml_value_t *v, const char *path) {
  size_t len;
  const char *s = tb_toml_str(v, &len);
  if (strlen(s) != len) {
    fail(c, tb_toml_pos(v), "%s must not contain a NUL character", path);
    return NULL;
  }
  char *copy = tb_strndup(s, len);
  if (copy == NULL) c->oom = 1;
  return copy;
}

static bool expect_type(ctx_t *c, const tb_toml_value_t *v, tb_toml_type_t type, const char *path) {
  if (tb_toml_type(v) == type) return true;
  char got[96];
  const char *what = type == TB_TOML_STRING    ? "a string"
                     : type == TB_TOML_INTEGER ? "an integer"
                     : type == TB_TOML_ARRAY   ? "an array"
                                               : "a table";
  fail(c, tb_toml_pos(v), "%s must be %s, got %s", path, what, describe(v, got, sizeof got));
  return false;
}

static void set_str(ctx_t *c, const field_t *f, const tb_toml_value_t *v, char **dst, const char *path) {
  if (!expect_type(c, v, TB_TOML_STRING, path)) return;
  char *s = copy_str(c, v, path);
  if (s == NULL) return;
  if (s[0] == '\0') {
    fail(c, tb_toml_pos(v), "%s must not be empty", path);
  } else if (f->valid && !f->valid(s)) {
    fail(c, tb_toml_pos(v), "%s must be %s, got \"%s\"", path, f->rule, s);
  } else {
    *dst = s;
    return;
  }
  tb_free(s);
}

static void set_uint(ctx_t *c, const field_t *f, const tb_toml_value_t *v, uint32_t *dst, const char *path) {
  if (!expect_type(c, v, TB_TOML_INTEGER, path)) return;
  int64_t i = tb_toml_int(v);
  if (i < f->min || i > f->max) {
    fail(c, tb_toml_pos(v), "%s must be between %u and %u, got %lld", path, f->min, f->max, (long long)i);
    return;
  }
  *dst = (uint32_t)i;
}

static void set_enum(ctx_t *c, const field_t *f, const tb_toml_value_t *v, int *dst, const char *path) {
  size_t len = 0;
  const char *s = tb_toml_type(v) == TB_TOML_STRING ? tb_toml_str(v, &len) : NULL;
  for (int i = 0; s && f->choices[i]; i++) {
    if (strlen(f->choices[i]) == len && memcmp(s, f->choices[i], len) == 0) {
      *dst = i + 1;
      return;
    }
  }
  char list[128] = "", got[96];
  for (int i = 0; f->choices[i]; i++) {
    strcat(list, i ? ", " : "");
    strcat(list, f->choices[i]);
  }
  fail(c, tb_toml_pos(v), "%s must be one of %s, got %s", path, list, describe(v, got, sizeof got));
}

static void set_uuid(ctx_t *c, const tb_toml_value_t *v, const char *path) {
  if (!expect_type(c, v, TB_TOML_STRING, path)) return;
  size_t len;
  const char *s = tb_toml_str(v, &len);
  tb_uuid_t u;
  if (tb_uuid_parse(s, len, &u) != 0) {
    fail(c, tb_toml_pos(v), "%s must be a UUID such as \"0192e4c4-7b5e-7a8c-9d2f-3c4b5a697887\", got \"%.*s\"",
          path, len > 60 ? 60 : (int)len, s);
  } else if (tb_uuid_version(&u) != 7 || tb_uuid_validate(&u) != 0) {
    fail(c, tb_toml_pos(v), "%s must be a version 7 UUID (as `tabbify push` writes), got version %d", path,
          tb_uuid_version(&u));
  } else {
    c->m->app.id = u;
    c->m->app.has_id = true;
  }
}

/* Checks that `v` is an array or table and allocates one zeroed item per element of it;
 * NULL (with the diagnostic or the out-of-memory mark made) when it cannot. */
static void *alloc_items(ctx_t *c, const tb_toml_value_t *v, tb_toml_type_t type, const char *path, size_t item) {
  if (!expect_type(c, v, type, path)) return NULL;
  void *items = tb_calloc(tb_toml_len(v), item);
  if (items == NULL) c->oom = 1;
  return items;
}

static void set_strv(ctx_t *c, const tb_toml_value_t *v, tb_strv_t *dst, const char *path) {
  if ((dst->v = alloc_items(c, v, TB_TOML_ARRAY, path, sizeof *dst->v)) == NULL) return;
  size_t n = tb_toml_len(v);
  char elem_path[160];
  snprintf(elem_path, sizeof elem_path, "%s[]", path);
  for (size_t i = 0; i < n; i++) {
    const tb_toml_value_t *e = tb_toml_at(v, i);
    if (!expect_type(c, e, TB_TOML_STRING, elem_path)) continue;
    char *s = copy_str(c, e, elem_path);
    if (s) dst->v[dst->n++] = s;
  }
}

static void set_ports(ctx_t *c, const tb_toml_value_t *v, tb_portv_t *dst, const char *path) {
  if ((dst->v = alloc_items(c, v, TB_TOML_ARRAY, path, sizeof *dst->v)) == NULL) return;
  size_t n = tb_toml_len(v);
  for (size_t i = 0; i < n; i++) {
    const tb_toml_value_t *e = tb_toml_at(v, i);
    char got[96];
    if (tb_toml_type(e) != TB_TOML_INTEGER || tb_toml_int(e) < 1 || tb_toml_int(e) > 65535) {
      fail(c, tb_toml_pos(e), "%s must hold port numbers from 1 to 65535, got %s", path, describe(e, got, sizeof got));
      continue;
    }
    dst->v[dst->n++] = (uint16_t)tb_toml_int(e);
  }
}

static void set_map(ctx_t *c, const tb_toml_value_t *v, tb_env_t *dst, const char *path) {
  if ((dst->v = alloc_items(c, v, TB_TOML_TABLE, path, sizeof *dst->v)) == NULL) return;
  size_t n = tb_toml_len(v);
  for (size_t i = 0; i < n; i++) {
    const tb_toml_value_t *val;
    tb_toml_pos_t kpos;
    size_t klen;
    const char *key = tb_toml_entry(v, i, &klen, &val, &kpos);
    char got[96];
    if (strlen(key) != klen || !valid_env_key(key)) {
      fail(c, kpos, "%s key \"%s\" must be a name of letters, digits and '_', not starting with a digit", path, key);
      continue;
    }
    if (tb_toml_type(val) != TB_TOML_STRING) {
      fail(c, tb_toml_pos(val), "%s.%s must be a string, got %s%s", path, key, describe(val, got, sizeof got),
            tb_toml_type(val) == TB_TOML_INTEGER || tb_toml_type(val) == TB_TOML_BOOL ? " (put it in quotes)" : "");
      continue;
    }
    char elem_path[160];
    snprintf(elem_path, sizeof elem_path, "%s.%s", path, key);
    char *k = tb_strndup(key, klen), *s = copy_str(c, val, elem_path);
    if (k == NULL || s == NULL) {
      if (k == NULL) c->oom = 1;
      tb_free(k);
      tb_free(s);
      continue;
    }
    dst->v[dst->n++] = (tb_env_var_t){k, s};
  }
}

static void set_deploy(ctx_t *c, const field_t *f, const tb_toml_value_t *v, const char *path) {
  tb_manifest_t *m = c->m;
  if (tb_toml_type(v) != TB_TOML_ARRAY) {
    fail(c, tb_toml_pos(v), "%s must be an array of tables, written as [[deploy]] blocks", path);
    return;
  }
  size_t n = tb_toml_len(v);
  m->deploy = tb_calloc(n, sizeof *m->deploy);
  if (m->deploy == NULL) {
    c->oom = 1;
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const tb_toml_value_t *e = tb_toml_at(v, i);
    if (!expect_type(c, e, TB_TOML_TABLE, path)) continue;
    tb_manifest_deploy_t *d = &m->deploy[m->ndeploy++];
    walk_table(c, e, f->sub, d, path);
    if (d->supervisor == NULL && !tb_toml_get(e, "supervisor"))
      fail(c, tb_toml_pos(e), "[[deploy]] needs supervisor: the name of the supervisor to deploy on");
  }
}

/* Stores one value under its field; `base` is the struct the field's offset is in. */
static void set_field(ctx_t *c, const field_t *f, const tb_toml_value_t *v, void *base, const char *path) {
  char *dst = (char *)base + f->off;
  switch (f->kind) {
  case K_STR:
    set_str(c, f, v, (char **)dst, path);
    break;
  case K_UINT:
    set_uint(c, f, v, (uint32_t *)dst, path);
    break;
  case K_ENUM:
    set_enum(c, f, v, (int *)dst, path);
    break;
  case K_UUID:
    set_uuid(c, v, path);
    break;
  case K_STRV:
    set_strv(c, v, (tb_strv_t *)dst, path);
    break;
  case K_PORTS:
    set_ports(c, v, (tb_portv_t *)dst, path);
    break;
  case K_MAP:
    set_map(c, v, (tb_env_t *)dst, path);
    break;
  case K_TABLE:
    if (tb_toml_type(v) != TB_TOML_TABLE) {
      char got[96];
      fail(c, tb_toml_pos(v), "%s must be a table ([%s]), got %s", path, path, describe(v, got, sizeof got));
      break;
    }
    walk_table(c, v, f->sub, base, path);
    break;
  case K_DEPLOY:
    set_deploy(c, f, v, path);
    break;
  }
}

static void unknown_key(ctx_t *c, const char *key, const tb_toml_value_t *v, tb_toml_pos_t pos,
                        const field_t *fields, const char *path) {
  const char *names[16];
  size_t n = 0;
  for (const field_t *f = fields; f->key && n < 16; f++) names[n++] = f->key;
  const char *hint = tb_suggest(key, names, n);
  bool table = tb_toml_type(v) == TB_TOML_TABLE && path[0] == '\0';
  char where[96] = "";
  if (path[0]) snprintf(where, sizeof where, " in [%s]", path);
  if (table && hint)
    fail(c, pos, "unknown table [%s], did you mean [%s]?", key, hint);
  else if (table)
    fail(c, pos, "unknown table [%s]", key);
  else if (hint)
    fail(c, pos, "unknown key \"%s\"%s, did you mean \"%s\"?", key, where, hint);
  else
    fail(c, pos, "unknown key \"%s\"%s", key, where);
}

static void walk_table(ctx_t *c, const tb_toml_value_t *t, const field_t *fields, void *base, const char *path) {
  size_t n = tb_toml_len(t);
  for (size_t i = 0; i < n && !c->oom; i++) {
    const tb_toml_value_t *v;
    tb_toml_pos_t kpos;
    const char *key = tb_toml_entry(t, i, NULL, &v, &kpos);
    const field_t *f = fields;
    while (f->key && strcmp(f->key, key) != 0) f++;
    if (f->key == NULL) {
      unknown_key(c, key, v, kpos, fields, path);
      continue;
    }
    char sub[160];
    snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", key);
    set_field(c, f, v, base, sub);
  }
}

/* ---- Passes 2 and 3: defaults and rules across fields. ---- */

/* The value at a dotted path such as "runtime.type", for positions; NULL if unset. */
static const tb_toml_value_t *lookup(const tb_toml_value_t *t, const char *path) {
  char part[64];
  while (t && *path) {
    size_t n = strcspn(path, ".");
    if (n >= sizeof part) return NULL;
    memcpy(part, path, n);
    part[n] = '\0';
    t = tb_toml_get(t, part);
    path += n + (path[n] == '.');
  }
  return t;
}

static tb_toml_pos_t pos_of(ctx_t *c, const char *path) {
  const tb_toml_value_t *v = lookup(c->root, path);
  return v ? tb_toml_pos(v) : (tb_toml_pos_t){1, 1};
}

static bool set_(ctx_t *c, const char *path) { return lookup(c->root, path) != NULL; }

static char *dup_default(ctx_t *c, const char *s) {
  char *d = tb_strdup(s);
  if (d == NULL) c->oom = 1;
  return d;
}

static bool runs_wasm(tb_runtime_t r) { return r == TB_RUNTIME_WASM_HTTP; }

static void check_runtime_fits_build(ctx_t *c, tb_runtime_t r, tb_toml_pos_t pos, const char *path) {
  tb_manifest_t *m = c->m;
  if (m->build.kind == TB_BUILD_WASM && !runs_wasm(r))
    fail(c, pos, "%s \"%s\" runs OCI images, but build.kind is \"wasm\"; use \"wasm-http\" or build a docker image",
          path, tb_runtime_name(r));
  else if (m->build.kind == TB_BUILD_DOCKER && runs_wasm(r))
    fail(c, pos, "%s \"wasm-http\" runs WebAssembly, but build.kind is \"docker\"; use \"docker\" or \"firecracker\"",
          path);
}

static void resolve(ctx_t *c) {
  tb_manifest_t *m = c->m;
  static const char *const docker_inputs[] = {"build.dockerfile", "build.context", "build.image", "build.archive",
                                              "build.args"};
  const size_t ndocker = sizeof docker_inputs / sizeof docker_inputs[0];

  /* build.kind: explicit, else what the inputs or the runtime imply. */
  if (m->build.kind == 0) {
    bool docker = false;
    for (size_t i = 0; i < ndocker; i++) docker |= set_(c, docker_inputs[i]);
    docker |= m->runtime.type == TB_RUNTIME_DOCKER || m->runtime.type == TB_RUNTIME_FIRECRACKER;
    /* A named module or a base runtime says "wasm" more plainly than anything else. */
    bool wasm = m->build.wasm != NULL || m->from.image != NULL;
    m->build.kind = docker && !wasm ? TB_BUILD_DOCKER : TB_BUILD_WASM;
  }
  if (m->runtime.type == 0) m->runtime.type = m->build.kind == TB_BUILD_WASM ? TB_RUNTIME_WASM_HTTP : TB_RUNTIME_DOCKER;
  if (m->runtime.lifecycle == 0) m->runtime.lifecycle = TB_MANIFEST_DEFAULT_LIFECYCLE;
  if (m->runtime.idle_timeout_sec == 0) m->runtime.idle_timeout_sec = TB_MANIFEST_DEFAULT_IDLE_TIMEOUT_SEC;
  if (m->runtime.memory_mb == 0) m->runtime.memory_mb = TB_MANIFEST_DEFAULT_MEMORY_MB;
  if (m->runtime.request_timeout_sec == 0) m->runtime.request_timeout_sec = TB_MANIFEST_DEFAULT_REQUEST_TIMEOUT_SEC;
  if (m->runtime.port == 0)
    m->runtime.port = m->network.listen.n ? m->network.listen.v[0] : TB_MANIFEST_DEFAULT_PORT;
  if (m->build.kind == TB_BUILD_DOCKER && m->build.image == NULL && m->build.archive == NULL) {
    if (m->build.dockerfile == NULL) m->build.dockerfile = dup_default(c, TB_MANIFEST_DEFAULT_DOCKERFILE);
    if (m->build.context == NULL) m->build.context = dup_default(c, TB_MANIFEST_DEFAULT_CONTEXT);
  }
  if (m->source.path == NULL && (m->from.image || m->source.entrypoint))
    m->source.path = dup_default(c, TB_MANIFEST_DEFAULT_SOURCE_PATH);
  for (size_t i = 0; i < m->ndeploy; i++)
    if (m->deploy[i].runtime == 0) m->deploy[i].runtime = m->runtime.type;
}

static void check_rules(ctx_t *c) {
  tb_manifest_t *m = c->m;
  static const char *const docker_only[] = {"build.dockerfile", "build.context", "build.image", "build.archive",
                                            "build.args"};

  if (m->build.kind == TB_BUILD_WASM) {
    for (size_t i = 0; i < sizeof docker_only / sizeof docker_only[0]; i++)
      if (set_(c, docker_only[i]))
        fail(c, pos_of(c, docker_only[i]), "%s only applies when build.kind is \"docker\"", docker_only[i]);
  } else {
    if (set_(c, "build.wasm"))
      fail(c, pos_of(c, "build.wasm"), "build.wasm only applies when build.kind is \"wasm\"");
    int sources = set_(c, "build.image") + set_(c, "build.archive") + set_(c, "build.dockerfile");
    if (sources > 1)
      fail(c, pos_of(c, set_(c, "build.archive") ? "build.archive" : "build.image"),
            "build.dockerfile, build.image and build.archive are alternatives; set only one");
    if (m->from.image)
      fail(c, pos_of(c, "from"), "[from] composes a WebAssembly app from a base runtime, but build.kind is \"docker\"");
  }

  check_runtime_fits_build(c, m->runtime.type, pos_of(c, set_(c, "runtime.type") ? "runtime.type" : "build.kind"),
                           "runtime.type");
  for (size_t i = 0; i < m->ndeploy; i++) {
    const tb_toml_value_t *blocks = lookup(c->root, "deploy");
    const tb_toml_value_t *rt = tb_toml_get(tb_toml_at(blocks, i), "runtime");
    if (rt) check_runtime_fits_build(c, m->deploy[i].runtime, tb_toml_pos(rt), "deploy.runtime");
    for (size_t j = 0; j < i; j++) {
      if (m->deploy[i].supervisor && m->deploy[j].supervisor &&
          strcmp(m->deploy[i].supervisor, m->deploy[j].supervisor) == 0) {
        const tb_toml_value_t *sv = tb_toml_get(tb_toml_at(blocks, i), "supervisor");
        const tb_toml_value_t *first = tb_toml_get(tb_toml_at(blocks, j), "supervisor");
        fail(c, tb_toml_pos(sv), "deploy.supervisor \"%s\" is already a target at line %u", m->deploy[i].supervisor,
              tb_toml_pos(first).line);
        break;
      }
    }
  }

  bool wasm_target = runs_wasm(m->runtime.type), container_target = !runs_wasm(m->runtime.type);
  for (size_t i = 0; i < m->ndeploy; i++) {
    wasm_target |= runs_wasm(m->deploy[i].runtime);
    container_target |= !runs_wasm(m->deploy[i].runtime);
  }
  if (wasm_target && m->runtime.memory_mb > TB_MANIFEST_WASM_MAX_MEMORY_MB)
    fail(c, pos_of(c, "runtime.memory_mb"),
         "runtime.memory_mb must be at most %u for wasm-http (a 32-bit linear memory), got %u",
         TB_MANIFEST_WASM_MAX_MEMORY_MB, m->runtime.memory_mb);

  if (m->from.image) {
    if (m->source.entrypoint == NULL)
      fail(c, pos_of(c, "from"), "[from] needs source.entrypoint: the file in [source] that the base runtime starts");
    if (set_(c, "build.wasm"))
      fail(c, pos_of(c, "build.wasm"), "build.wasm is made by composing [from] with [source]; remove it");
  } else if (m->source.entrypoint) {
    fail(c, pos_of(c, "source.entrypoint"), "source.entrypoint needs a [from] image to run it");
  }

  /* Advice about settings without effect is noise next to real errors: only give it alone. */
  if (c->diags->errors > c->errors_before) return;
  if (m->build.kind == TB_BUILD_WASM && m->from.image == NULL && m->build.wasm == NULL)
    advise(c, NOWHERE, "build.wasm is not set: `tabbify push` needs the path of the .wasm module");
  if (m->runtime.lifecycle == TB_LIFECYCLE_ALWAYS_ON && set_(c, "runtime.idle_timeout_sec"))
    advise(c, pos_of(c, "runtime.idle_timeout_sec"),
         "runtime.idle_timeout_sec has no effect unless runtime.lifecycle is \"on_request\"");
  if (set_(c, "runtime.port") && !container_target)
    advise(c, pos_of(c, "runtime.port"), "runtime.port has no effect for wasm-http, which serves requests in-process");
}

/* ---- Entry points. ---- */

static void free_strv(tb_strv_t *v) {
  for (size_t i = 0; i < v->n; i++) tb_free(v->v[i]);
  tb_free(v->v);
}

static void free_env(tb_env_t *e) {
  for (size_t i = 0; i < e->n; i++) {
    tb_free(e->v[i].key);
    tb_free(e->v[i].value);
  }
  tb_free(e->v);
}

void tb_manifest_free(tb_manifest_t *m) {
  if (m == NULL) return;
  tb_free(m->app.name);
  tb_free(m->app.description);
  tb_free(m->build.command);
  tb_free(m->build.wasm);
  tb_free(m->build.dockerfile);
  tb_free(m->build.context);
  tb_free(m->build.image);
  tb_free(m->build.archive);
  free_env(&m->build.args);
  free_strv(&m->runtime.args);
  tb_free(m->runtime.health_path);
  free_env(&m->env);
  for (size_t i = 0; i < m->ndeploy; i++) tb_free(m->deploy[i].supervisor);
  tb_free(m->deploy);
  tb_free(m->from.image);
  tb_free(m->source.path);
  tb_free(m->source.entrypoint);
  free_strv(&m->source.exclude);
  tb_free(m->network.listen.v);
  free_strv(&m->network.connect);
  tb_free(m);
}

int tb_manifest_parse(const char *text, size_t len, tb_manifest_t **out, tb_diags_t *diags) {
  int rc = 0;
  tb_toml_doc_t *doc = NULL;
  tb_toml_error_t terr;
  ctx_t c = {.diags = diags, .errors_before = diags->errors};
  *out = NULL;

  if (len > TB_MANIFEST_MAX_BYTES) {
    fail(&c, NOWHERE, "the manifest is %zu bytes; the limit is %u", len, TB_MANIFEST_MAX_BYTES);
    rc = c.oom ? TB_ENOMEM : TB_ETOOBIG;
    goto out;
  }
  rc = tb_toml_parse(text, len, &doc, &terr);
  if (rc == TB_EPARSE) {
    tb_toml_pos_t at = {terr.line, terr.col};
    fail(&c, at, "%s", terr.msg);
    rc = c.oom ? TB_ENOMEM : TB_EPARSE;
    goto out;
  }
  if (rc) goto out;

  c.m = tb_calloc(1, sizeof *c.m);
  if (c.m == NULL) {
    rc = TB_ENOMEM;
    goto out;
  }
  c.root = tb_toml_root(doc);
  walk_table(&c, c.root, root_fields, c.m, "");
  if (!c.oom) resolve(&c);
  if (!c.oom) check_rules(&c);
  if (c.oom) {
    rc = TB_ENOMEM;
  } else if (diags->errors > c.errors_before) {
    rc = TB_EPARSE;
  } else {
    *out = c.m;
    c.m = NULL;
  }
out:
  tb_manifest_free(c.m);
  tb_toml_free(doc);
  return rc;
}

/* The default app name: the directory holding the manifest, made into a valid name. */
static char *name_from_dir(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  if (slash == NULL) {
    if (getcwd(dir, sizeof dir) == NULL) return NULL;
  } else {
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    char real[4096];
    if (realpath(dir[0] ? dir : "/", real) != NULL) snprintf(dir, sizeof dir, "%s", real);
  }
  const char *base = strrchr(dir, '/');
  base = base ? base + 1 : dir;
  char name[64];
  size_t n = 0;
  for (const char *p = base; *p && n < 63; p++) {
    unsigned char ch = (unsigned char)*p;
    char out = isalnum(ch) ? (char)tolower(ch) : '-';
    if (out == '-' && (n == 0 || name[n - 1] == '-')) continue;
    name[n++] = out;
  }
  while (n > 0 && name[n - 1] == '-') n--;
  name[n] = '\0';
  return tb_strdup(n ? name : "app");
}

int tb_manifest_load(const char *path, tb_manifest_t **out, tb_diags_t *diags) {
  int rc = 0, fd = -1;
  char *text = NULL;
  ctx_t c = {.diags = diags};
  *out = NULL;

  fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    rc = tb_err_from_errno(errno);
    fail(&c, NOWHERE, "cannot read the manifest: %s", tb_strerror(rc));
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = TB_EINVAL;
    fail(&c, NOWHERE, "cannot read the manifest: not a regular file");
    goto out;
  }
  if ((uint64_t)st.st_size > TB_MANIFEST_MAX_BYTES) {
    rc = TB_ETOOBIG;
    fail(&c, NOWHERE, "the manifest is %lld bytes; the limit is %u", (long long)st.st_size,
          TB_MANIFEST_MAX_BYTES);
    goto out;
  }
  size_t len = 0, cap = (size_t)st.st_size + 1;
  text = tb_malloc(cap);
  if (text == NULL) {
    rc = TB_ENOMEM;
    goto out;
  }
  for (;;) {
    ssize_t r = read(fd, text + len, cap - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      rc = tb_err_from_errno(errno);
      fail(&c, NOWHERE, "cannot read the manifest: %s", tb_strerror(rc));
      goto out;
    }
    if (r == 0) break;
    len += (size_t)r;
    if (len == cap) { /* the file grew while we read it */
      rc = TB_ETOOBIG;
      fail(&c, NOWHERE, "the manifest changed while it was being read");
      goto out;
    }
  }
  rc = tb_manifest_parse(text, len, out, diags);
  if (rc == 0 && (*out)->app.name == NULL) {
    (*out)->app.name = name_from_dir(path);
    if ((*out)->app.name == NULL) {
      tb_manifest_free(*out);
      *out = NULL;
      rc = TB_ENOMEM;
    }
  }
out:
  if (c.oom && rc == 0) rc = TB_ENOMEM;
  if (fd >= 0) close(fd);
  tb_free(text);
  return rc;
}
