/*
 * test_manifest.c — tabbify.toml: the seeds' examples, defaults, every rule, the error
 * lines users read, and allocation failure at every point.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tb/alloc.h"
#include "tb/err.h"
#include "tb/json.h"
#include "tb/manifest.h"
#include "test.h"

static const char *data_dir;

/* Parses `text`; returns the rc and leaves the formatted diagnostics in *diag_text. */
static int parse(const char *text, tb_manifest_t **m, char **diag_text) {
  tb_diags_t d;
  tb_buf_t out;
  tb_diags_init(&d);
  tb_buf_init(&out, 1 << 16);
  int rc = tb_manifest_parse(text, strlen(text), m, &d);
  tb_diags_format(&d, "tabbify.toml", &out);
  *diag_text = tb_buf_steal(&out, NULL);
  tb_diags_deinit(&d);
  return rc;
}

/* Expects `text` to be rejected with exactly the diagnostics in `expected`. */
static void expect_errors(const char *text, const char *expected) {
  tb_manifest_t *m = (tb_manifest_t *)1;
  char *got;
  int rc = parse(text, &m, &got);
  if (strcmp(got, expected) != 0) fprintf(stderr, "--- expected:\n%s--- got:\n%s", expected, got);
  assert_int_equal(rc, TB_EPARSE);
  assert_null(m);
  assert_string_equal(got, expected);
  tb_free(got);
}

static tb_manifest_t *expect_ok(const char *text) {
  tb_manifest_t *m = NULL;
  char *got;
  int rc = parse(text, &m, &got);
  if (rc) fprintf(stderr, "unexpected diagnostics:\n%s", got);
  assert_int_equal(rc, 0);
  tb_free(got);
  return m;
}

static tb_manifest_t *load(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", data_dir, name);
  tb_diags_t d;
  tb_diags_init(&d);
  tb_manifest_t *m = NULL;
  int rc = tb_manifest_load(path, &m, &d);
  for (size_t i = 0; i < d.n; i++) fprintf(stderr, "%s:%u:%u: %s\n", name, d.v[i].line, d.v[i].col, d.v[i].msg);
  tb_diags_deinit(&d);
  assert_int_equal(rc, 0);
  return m;
}

static void seed_000_runtimes(void **state) {
  tb_manifest_t *m = load("seed-000-runtimes.toml");
  assert_int_equal(m->build.kind, TB_BUILD_DOCKER);
  assert_int_equal(m->runtime.type, TB_RUNTIME_DOCKER);
  assert_int_equal(m->runtime.lifecycle, TB_LIFECYCLE_ON_REQUEST);
  assert_int_equal(m->runtime.idle_timeout_sec, 300);
  assert_int_equal(m->runtime.memory_mb, 512);
  assert_int_equal(m->ndeploy, 2);
  assert_string_equal(m->deploy[0].supervisor, "ec2-prod");
  assert_int_equal(m->deploy[0].runtime, TB_RUNTIME_DOCKER);
  assert_string_equal(m->deploy[1].supervisor, "thinkpad");
  assert_int_equal(m->deploy[1].runtime, TB_RUNTIME_FIRECRACKER);
  assert_string_equal(m->build.dockerfile, "Dockerfile");
  assert_string_equal(m->app.name, "data"); /* the directory holding the file */
  assert_false(m->app.has_id);
  tb_manifest_free(m);
}

static void seed_004_from(void **state) {
  tb_manifest_t *m = load("seed-004-from.toml");
  assert_int_equal(m->build.kind, TB_BUILD_WASM);
  assert_int_equal(m->runtime.type, TB_RUNTIME_WASM_HTTP);
  assert_string_equal(m->from.image, "fabricks.dev/runtimes/python:3.12");
  assert_string_equal(m->source.path, ".");
  assert_string_equal(m->source.entrypoint, "server.py");
  assert_int_equal(m->network.listen.n, 1);
  assert_int_equal(m->network.listen.v[0], 8080);
  tb_manifest_free(m);
}

static void full_manifest_and_json(void **state) {
  tb_manifest_t *m = load("full.toml");
  json_t *j = tb_manifest_to_json(m);
  assert_non_null(j);
  tb_buf_t out;
  tb_buf_init(&out, 1 << 16);
  assert_int_equal(tb_json_dump(j, TB_JSON_COMPACT, &out), 0);
  const char *expected =
      "{\"app\":{\"name\":\"hello-api\",\"id\":\"0192e4c4-7b5e-7a8c-9d2f-3c4b5a697887\",\"description\":\"says hello\"},"
      "\"build\":{\"kind\":\"docker\",\"command\":\"make image\",\"wasm\":null,\"dockerfile\":null,\"context\":null,"
      "\"image\":\"registry.local/hello:1.2\",\"archive\":null,\"args\":{}},"
      "\"runtime\":{\"type\":\"docker\",\"lifecycle\":\"on_request\",\"idle_timeout_sec\":60,\"memory_mb\":128,"
      "\"port\":3000,\"request_timeout_sec\":10,\"args\":[\"--verbose\"],\"health_path\":\"/healthz\"},"
      "\"env\":{\"GREETING\":\"hello\",\"LOG_LEVEL\":\"debug\"},"
      "\"deploy\":[{\"supervisor\":\"edge-fra-1\",\"runtime\":\"docker\"},{\"supervisor\":\"kvm-box\",\"runtime\":"
      "\"firecracker\"}],"
      "\"from\":{\"image\":null},\"source\":{\"path\":null,\"entrypoint\":null,\"exclude\":[]},"
      "\"capabilities\":{\"network\":{\"listen\":[3000,3001],\"connect\":[\"api.example.com:443\"]}}}";
  assert_string_equal(tb_buf_cstr(&out), expected);
  tb_buf_deinit(&out);
  json_decref(j);
  tb_manifest_free(m);
}

static void defaults(void **state) {
  tb_manifest_t *m = expect_ok("[app]\nname = \"a\"\n[build]\nwasm = \"a.wasm\"\n");
  assert_int_equal(m->build.kind, TB_BUILD_WASM);
  assert_int_equal(m->runtime.type, TB_RUNTIME_WASM_HTTP);
  assert_int_equal(m->runtime.lifecycle, TB_MANIFEST_DEFAULT_LIFECYCLE);
  assert_int_equal(m->runtime.idle_timeout_sec, TB_MANIFEST_DEFAULT_IDLE_TIMEOUT_SEC);
  assert_int_equal(m->runtime.memory_mb, TB_MANIFEST_DEFAULT_MEMORY_MB);
  assert_int_equal(m->runtime.port, TB_MANIFEST_DEFAULT_PORT);
  assert_int_equal(m->runtime.request_timeout_sec, TB_MANIFEST_DEFAULT_REQUEST_TIMEOUT_SEC);
  assert_null(m->build.dockerfile);
  assert_int_equal(m->ndeploy, 0);
  tb_manifest_free(m);
  /* A docker runtime implies a docker build from ./Dockerfile; the port follows listen. */
  m = expect_ok("[runtime]\ntype = \"firecracker\"\n[capabilities.network]\nlisten = [9000]\n");
  assert_int_equal(m->build.kind, TB_BUILD_DOCKER);
  assert_string_equal(m->build.dockerfile, "Dockerfile");
  assert_string_equal(m->build.context, ".");
  assert_int_equal(m->runtime.port, 9000);
  tb_manifest_free(m);
  /* Naming an image means no Dockerfile is assumed. */
  m = expect_ok("[build]\nimage = \"busybox:latest\"\n");
  assert_int_equal(m->build.kind, TB_BUILD_DOCKER);
  assert_int_equal(m->runtime.type, TB_RUNTIME_DOCKER);
  assert_null(m->build.dockerfile);
  tb_manifest_free(m);
}

static void the_issue_example_line(void **state) {
  expect_errors("[app]\nname = \"x\"\n\n[build]\nkind = \"docker\"\n\n[runtime]\ntype = \"dockr\"\n",
                "tabbify.toml:8:8: runtime.type must be one of wasm-http, docker, firecracker, got \"dockr\"\n");
  expect_errors("[runtime]\n\n\n\n\n\ntype     = \"dockr\"\n",
                "tabbify.toml:7:12: runtime.type must be one of wasm-http, docker, firecracker, got \"dockr\"\n");
}

static void typos_all_reported_once(void **state) {
  char path[1024];
  snprintf(path, sizeof path, "%s/typos.toml", data_dir);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char text[4096];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  expect_errors(text, "tabbify.toml:2:1: unknown key \"nmae\" in [app], did you mean \"name\"?\n"
                      "tabbify.toml:4:2: unknown table [runtim], did you mean [runtime]?\n"
                      "tabbify.toml:8:8: runtime.type must be one of wasm-http, docker, firecracker, got \"dockr\"\n"
                      "tabbify.toml:9:13: runtime.memory_mb must be an integer, got \"512\"\n"
                      "tabbify.toml:10:13: runtime.lifecycle must be one of always_on, on_request, got \"sometimes\"\n"
                      "tabbify.toml:13:8: env.PORT must be a string, got integer 8080 (put it in quotes)\n");
}

static void toml_syntax_error(void **state) {
  tb_manifest_t *m = (tb_manifest_t *)1;
  char *got;
  assert_int_equal(parse("[app]\nname = \"x\n", &m, &got), TB_EPARSE);
  assert_null(m);
  assert_true(strncmp(got, "tabbify.toml:2:", 15) == 0);
  tb_free(got);
}

static void values_out_of_range(void **state) {
  expect_errors("[runtime]\nmemory_mb = 0\nport = 70000\nidle_timeout_sec = -5\n",
                "tabbify.toml:2:13: runtime.memory_mb must be between 1 and 1048576, got 0\n"
                "tabbify.toml:3:8: runtime.port must be between 1 and 65535, got 70000\n"
                "tabbify.toml:4:20: runtime.idle_timeout_sec must be between 1 and 604800, got -5\n");
  expect_errors("[capabilities.network]\nlisten = [80, 0, \"x\"]\n",
                "tabbify.toml:2:15: capabilities.network.listen must hold port numbers from 1 to 65535, got integer 0\n"
                "tabbify.toml:2:18: capabilities.network.listen must hold port numbers from 1 to 65535, got \"x\"\n");
  expect_errors("[app]\nname = \"Hello World\"\n",
                "tabbify.toml:2:8: app.name must be 1-63 lower-case letters, digits and '-', not starting or ending "
                "with '-', got \"Hello World\"\n");
  expect_errors("[runtime]\nhealth_path = \"health\"\n",
                "tabbify.toml:2:15: runtime.health_path must be an absolute HTTP path such as \"/health\", got "
                "\"health\"\n");
  expect_errors("[build]\ncommand = \"\"\n", "tabbify.toml:2:11: build.command must not be empty\n");
}

static void app_id(void **state) {
  expect_errors("[app]\nid = \"not-a-uuid\"\n",
                "tabbify.toml:2:6: app.id must be a UUID such as \"0192e4c4-7b5e-7a8c-9d2f-3c4b5a697887\", got "
                "\"not-a-uuid\"\n");
  expect_errors("[app]\nid = \"5c9d2e6a-1b7f-4c3e-9a8d-2f1e0b4c6d7a\"\n",
                "tabbify.toml:2:6: app.id must be a version 7 UUID (as `tabbify push` writes), got version 4\n");
  tb_manifest_t *m = expect_ok("[app]\nid = \"0192E4C4-7B5E-7A8C-9D2F-3C4B5A697887\"\n[build]\nwasm=\"x.wasm\"\n");
  assert_true(m->app.has_id);
  assert_int_equal(m->app.id.b[0], 0x01);
  tb_manifest_free(m);
}

static void rules_across_fields(void **state) {
  expect_errors("[build]\nkind = \"wasm\"\n[runtime]\ntype = \"docker\"\n",
                "tabbify.toml:4:8: runtime.type \"docker\" runs OCI images, but build.kind is \"wasm\"; use "
                "\"wasm-http\" or build a docker image\n");
  expect_errors("[build]\nkind = \"docker\"\n[runtime]\ntype = \"wasm-http\"\n",
                "tabbify.toml:4:8: runtime.type \"wasm-http\" runs WebAssembly, but build.kind is \"docker\"; use "
                "\"docker\" or \"firecracker\"\n");
  expect_errors("[build]\nwasm = \"a.wasm\"\n[[deploy]]\nsupervisor = \"a\"\nruntime = \"firecracker\"\n",
                "tabbify.toml:5:11: deploy.runtime \"firecracker\" runs OCI images, but build.kind is \"wasm\"; use "
                "\"wasm-http\" or build a docker image\n");
  expect_errors("[build]\nwasm = \"a.wasm\"\ndockerfile = \"Dockerfile\"\n",
                "tabbify.toml:3:14: build.dockerfile only applies when build.kind is \"docker\"\n");
  expect_errors("[build]\nimage = \"a\"\narchive = \"a.tar\"\n",
                "tabbify.toml:3:11: build.dockerfile, build.image and build.archive are alternatives; set only one\n");
  expect_errors("[[deploy]]\nsupervisor = \"a\"\n[[deploy]]\nsupervisor = \"a\"\n[[deploy]]\nruntime = \"docker\"\n"
                "[build]\nwasm = \"x.wasm\"\n",
                "tabbify.toml:5:1: [[deploy]] needs supervisor: the name of the supervisor to deploy on\n"
                "tabbify.toml:4:14: deploy.supervisor \"a\" is already a target at line 2\n"
                "tabbify.toml:6:11: deploy.runtime \"docker\" runs OCI images, but build.kind is \"wasm\"; use "
                "\"wasm-http\" or build a docker image\n");
  expect_errors("[from]\nimage = \"py\"\n", "tabbify.toml:1:1: [from] needs source.entrypoint: the file in [source] "
                                             "that the base runtime starts\n");
  expect_errors("[source]\nentrypoint = \"a.py\"\n[build]\nwasm=\"a.wasm\"\n",
                "tabbify.toml:2:14: source.entrypoint needs a [from] image to run it\n");
  expect_errors("[runtime]\nmemory_mb = 8192\n[build]\nwasm=\"a.wasm\"\n",
                "tabbify.toml:2:13: runtime.memory_mb must be at most 4096 for wasm-http (a 32-bit linear memory), "
                "got 8192\n");
  /* The same memory is fine for a container. */
  tb_manifest_free(expect_ok("[runtime]\nmemory_mb = 8192\ntype = \"docker\"\n"));
}

static void wrong_shapes(void **state) {
  expect_errors("runtime = \"docker\"\n", "tabbify.toml:1:11: runtime must be a table ([runtime]), got \"docker\"\n");
  expect_errors("[deploy]\nsupervisor = \"a\"\n",
                "tabbify.toml:1:1: deploy must be an array of tables, written as [[deploy]] blocks\n");
  expect_errors("[runtime]\nargs = \"--x\"\n", "tabbify.toml:2:8: runtime.args must be an array, got \"--x\"\n");
  expect_errors("[runtime]\nargs = [\"a\", 1]\n", "tabbify.toml:2:14: runtime.args[] must be a string, got integer 1\n");
  expect_errors("[env]\n\"1BAD\" = \"x\"\n",
                "tabbify.toml:2:1: env key \"1BAD\" must be a name of letters, digits and '_', not starting with a "
                "digit\n");
  expect_errors("[capabilities.netwrk]\n",
                "tabbify.toml:1:15: unknown key \"netwrk\" in [capabilities], did you mean \"network\"?\n");
  expect_errors("version = 2\n", "tabbify.toml:1:1: unknown key \"version\"\n");
}

static void warnings_do_not_fail(void **state) {
  tb_manifest_t *m = NULL;
  char *got;
  assert_int_equal(parse("[runtime]\nidle_timeout_sec = 5\n", &m, &got), 0);
  assert_string_equal(got, "tabbify.toml: warning: build.wasm is not set: `tabbify push` needs the path of the "
                           ".wasm module\n"
                           "tabbify.toml:2:20: warning: runtime.idle_timeout_sec has no effect unless "
                           "runtime.lifecycle is \"on_request\"\n");
  tb_free(got);
  tb_manifest_free(m);
}

static void limits(void **state) {
  size_t n = TB_MANIFEST_MAX_BYTES + 1;
  char *big = malloc(n + 1);
  memset(big, '#', n);
  big[n] = '\0';
  tb_manifest_t *m;
  char *got;
  assert_int_equal(parse(big, &m, &got), TB_ETOOBIG);
  assert_non_null(strstr(got, "the limit is 1048576"));
  tb_free(got);
  free(big);
}

static void load_errors(void **state) {
  tb_diags_t d;
  tb_diags_init(&d);
  tb_manifest_t *m;
  assert_int_equal(tb_manifest_load("/nonexistent/tabbify.toml", &m, &d), TB_ENOENT);
  assert_null(m);
  assert_int_equal(d.n, 1);
  assert_string_equal(d.v[0].msg, "cannot read the manifest: no such file or directory");
  assert_int_equal(tb_manifest_load("/", &m, &d), TB_EINVAL);
  tb_diags_deinit(&d);
}

static void default_name_from_directory(void **state) {
  char dir[] = "/tmp/My_App 2.0-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/tabbify.toml", dir);
  FILE *f = fopen(path, "w");
  fputs("[build]\nwasm = \"a.wasm\"\n", f);
  fclose(f);
  tb_diags_t d;
  tb_diags_init(&d);
  tb_manifest_t *m;
  assert_int_equal(tb_manifest_load(path, &m, &d), 0);
  assert_int_equal(strncmp(m->app.name, "my-app-2-0-", 11), 0);
  tb_manifest_free(m);
  tb_diags_deinit(&d);
  unlink(path);
  rmdir(dir);
}

/* Every allocation in a full parse fails in turn: each must give TB_ENOMEM, no leak. */
static void allocation_failure_walk(void **state) {
  char path[1024];
  snprintf(path, sizeof path, "%s/full.toml", data_dir);
  int successes = 0;
  for (long n = 0; n < 100000 && successes == 0; n++) {
    tb_diags_t d;
    tb_diags_init(&d);
    tb_manifest_t *m = NULL;
    tb_alloc_fail_after(n);
    int rc = tb_manifest_load(path, &m, &d);
    tb_alloc_fail_after(-1);
    if (rc == 0) {
      successes++;
      assert_non_null(m);
    } else {
      assert_int_equal(rc, TB_ENOMEM);
      assert_null(m);
    }
    tb_manifest_free(m);
    tb_diags_deinit(&d);
  }
  assert_int_equal(successes, 1);
}

int main(int argc, char **argv) {
  data_dir = argc > 1 ? argv[1] : "tests/manifest/data";
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(seed_000_runtimes),
      cmocka_unit_test(seed_004_from),
      cmocka_unit_test(full_manifest_and_json),
      cmocka_unit_test(defaults),
      cmocka_unit_test(the_issue_example_line),
      cmocka_unit_test(typos_all_reported_once),
      cmocka_unit_test(toml_syntax_error),
      cmocka_unit_test(values_out_of_range),
      cmocka_unit_test(app_id),
      cmocka_unit_test(rules_across_fields),
      cmocka_unit_test(wrong_shapes),
      cmocka_unit_test(warnings_do_not_fail),
      cmocka_unit_test(limits),
      cmocka_unit_test(load_errors),
      cmocka_unit_test(default_name_from_directory),
      cmocka_unit_test(allocation_failure_walk),
  };
  return TB_RUN(tests);
}
