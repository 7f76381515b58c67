/*
 * openapi.c — GET /v1/openapi.json, generated from tb__node_routes: the document is the
 * router's own table, so what it says and what the node does cannot drift apart.
 */
#include <stdio.h>
#include <string.h>

#include "node_int.h"

static json_t *path_params(const char *pattern) {
  json_t *a = json_array();
  for (const char *p = strchr(pattern, '{'); p; p = strchr(p + 1, '{')) {
    const char *e = strchr(p, '}');
    if (!e) break;
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)(e - p - 1), p + 1);
    json_array_append_new(a, json_pack("{s:s, s:s, s:b, s:{s:s}}", "name", name, "in", "path", "required", 1, "schema",
                                       "type", strcmp(name, "n") == 0 ? "integer" : "string"));
  }
  return a;
}

void tb__node_get_openapi(tb__node_x_t *x) {
  json_t *paths = json_object();
  for (size_t i = 0; i < tb__node_nroutes; i++) {
    const tb__node_route_t *r = &tb__node_routes[i];
    char path[256];
    snprintf(path, sizeof path, "%s", r->pattern);
    size_t pl = strlen(path);
    if (pl >= 2 && strcmp(path + pl - 2, "/*") == 0) strcpy(path + pl - 2, "/{rest}");
    json_t *item = json_object_get(paths, path);
    if (!item) json_object_set_new(paths, path, item = json_object());
    json_t *responses = json_object();
    for (const int *s = r->statuses; *s; s++) {
      char code[8];
      snprintf(code, sizeof code, "%d", *s);
      json_object_set_new(responses, code, json_pack("{s:s}", "description", tb_http_status_reason(*s)));
    }
    json_t *op = json_pack("{s:s, s:o, s:o}", "summary", r->summary, "parameters", path_params(path), "responses",
                           responses);
    if (r->scope)
      json_object_set_new(op, "security", json_pack("[{s:[s]}]", "bearer", r->scope));
    else
      json_object_set_new(op, "security", json_array());
    if (strcmp(r->method, "*") == 0) {
      static const char *const any[] = {"get", "post", "put", "delete", "patch", "head", "options"};
      for (size_t k = 0; k < sizeof any / sizeof any[0]; k++) json_object_set(item, any[k], op);
      json_decref(op);
    } else {
      char m[8];
      size_t k = 0;
      for (; r->method[k] && k < sizeof m - 1; k++) m[k] = (char)(r->method[k] | 0x20);
      m[k] = 0;
      json_object_set_new(item, m, op);
    }
  }
  json_t *doc = json_pack(
      "{s:s, s:{s:s, s:s, s:s}, s:o, s:{s:{s:{s:s, s:s, s:s}}}}", "openapi", "3.0.3", "info", "title",
      "Tabbify node API", "version", "1", "description",
      "Every /v1 call but this document needs Authorization: Bearer <EdDSA JWT>; errors are "
      "{\"error\",\"message\",\"status\"}. Uploads declare X-Content-SHA256.",
      "paths", paths, "components", "securitySchemes", "bearer", "type", "http", "scheme", "bearer", "bearerFormat",
      "JWT");
  tb__node_reply_json(x, 200, doc);
}
