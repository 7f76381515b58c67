/*
 * cmd_push.c — `tabbify push [--manifest FILE]`: uploads the app's artifact as its next
 * version.
 *
 * If the manifest has no [app] id yet, push mints a UUID v7 and stamps it into the file:
 * one line `id = "<uuid>"` right after the [app] header, every other byte left as it was
 * (written to a temporary file and renamed over the original). It then registers the app
 * (POST /v1/apps with the resolved manifest; a known app is fine), asks for the latest
 * version, and streams the artifact the manifest names (build.wasm or build.archive,
 * relative to the manifest) as version latest+1 with its SHA-256 in X-Content-SHA256.
 * Progress goes to stderr when it is a terminal.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_int.h"
#include "tb/alloc.h"
#include "tb/buf.h"
#include "tb/err.h"

static int read_file(const char *path, tb_buf_t *out) {
  FILE *f = fopen(path, "rb");
  if (!f) return tb_err_from_errno(errno);
  char buf[65536];
  size_t n;
  int rc = 0;
  while (rc == 0 && (n = fread(buf, 1, sizeof buf, f)) > 0) rc = tb_buf_append(out, buf, n);
  if (ferror(f)) rc = TB_EIO;
  fclose(f);
  return rc;
}

/* Inserts `id = "<uuid>"` after the [app] header line, preserving everything else. */
static int stamp_id(const char *path, const tb_buf_t *text, const char *id) {
  const char *s = tb_buf_cstr(text), *line = s, *at = NULL;
  while (*line) {
    const char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (strncmp(p, "[app]", 5) == 0) {
      const char *nl = strchr(p, '\n');
      at = nl ? nl + 1 : s + text->len;
      break;
    }
    const char *nl = strchr(line, '\n');
    if (!nl) break;
    line = nl + 1;
  }
  if (!at) return tb__cli_fail(2, "%s has no [app] table to stamp the id into; add one.", path);
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path);
  int fd = mkstemp(tmp);
  if (fd < 0) return tb__cli_fail(1, "cannot write next to %s: %s.", path, strerror(errno));
  struct stat st;
  if (stat(path, &st) == 0) fchmod(fd, st.st_mode & 07777);
  FILE *f = fdopen(fd, "wb");
  size_t head = (size_t)(at - s);
  bool nl_needed = head > 0 && s[head - 1] != '\n';
  bool ok = f && fwrite(s, 1, head, f) == head && (!nl_needed || fputc('\n', f) != EOF) &&
            fprintf(f, "id = \"%s\"\n", id) > 0 && fwrite(at, 1, text->len - head, f) == text->len - head &&
            fflush(f) == 0 && fsync(fileno(f)) == 0;
  if (f) fclose(f);
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return tb__cli_fail(1, "cannot update %s: %s.", path, strerror(errno));
  }
  return 0;
}

static int sha256_file(const char *path, char hex[65], long long *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return tb_err_from_errno(errno);
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  unsigned char buf[65536], d[crypto_hash_sha256_BYTES];
  size_t n;
  long long total = 0;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
    crypto_hash_sha256_update(&st, buf, n);
    total += (long long)n;
  }
  int rc = ferror(f) ? TB_EIO : 0;
  fclose(f);
  crypto_hash_sha256_final(&st, d);
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
  *size = total;
  return rc;
}

/* Writes {"image": ref} to a new temporary file whose path goes to `out`. */
static int image_ref_file(const char *ref, char *out, size_t cap) {
  const char *tmp = getenv("TMPDIR");
  snprintf(out, cap, "%s/tabbify-image-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  int fd = mkstemp(out);
  if (fd < 0) return tb__cli_fail(1, "cannot create a temporary file in %s: %s.", tmp ? tmp : "/tmp", strerror(errno));
  json_t *j = json_pack("{s:s}", "image", ref);
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  bool ok = text && write(fd, text, strlen(text)) == (ssize_t)strlen(text);
  free(text);
  close(fd);
  if (!ok) {
    unlink(out);
    return tb__cli_fail(1, "cannot write %s.", out);
  }
  return 0;
}

int tb__cli_push(int argc, char **argv) {
  tb__cli_api_t api;
  tb__cli_api_init(&api, &argc, argv);
  const char *path = "tabbify.toml";
  int rc = 0;
  tb_buf_t text;
  tb_buf_init(&text, TB_MANIFEST_MAX_BYTES);
  tb_manifest_t *m = NULL;
  json_t *mj = NULL, *reg = NULL, *app = NULL, *up = NULL;
  char *mtext = NULL;
  const char *ref_file = NULL; /* a temporary artifact naming an image, removed at the end */
  FILE *art = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--manifest") == 0 && i + 1 < argc) path = argv[++i];
    else {
      rc = tb__cli_fail(2, "unknown option %s for push.", argv[i]);
      goto out;
    }
  }
  if ((rc = read_file(path, &text)) != 0) {
    rc = tb__cli_fail(2, "cannot read %s: %s.", path, tb_strerror(rc));
    goto out;
  }
  for (int pass = 0; pass < 2; pass++) {
    tb_diags_t d;
    tb_diags_init(&d);
    rc = tb_manifest_load(path, &m, &d); /* load: the name defaults to the directory's */
    if (rc != 0) {
      tb_buf_t msg;
      tb_buf_init(&msg, 1 << 16);
      tb_diags_format(&d, path, &msg);
      fputs(tb_buf_cstr(&msg), stderr);
      tb_buf_deinit(&msg);
      tb_diags_deinit(&d);
      rc = tb__cli_fail(2, "%s is not a valid manifest; see `tabbify manifest check`.", path);
      goto out;
    }
    tb_diags_deinit(&d);
    if (m->app.has_id) break;
    tb_uuid_t u;
    char ids[TB_UUID_STR_LEN + 1];
    tb_uuid_v7_new(&u);
    tb_uuid_format(&u, ids);
    if ((rc = stamp_id(path, &text, ids)) != 0) goto out;
    fprintf(stderr, "tabbify: gave the app the id %s in %s\n", ids, path);
    tb_manifest_free(m);
    m = NULL;
    tb_buf_reset(&text);
    if ((rc = read_file(path, &text)) != 0) {
      rc = tb__cli_fail(1, "cannot read %s back.", path);
      goto out;
    }
  }
  const char *rel = m->build.wasm ? m->build.wasm : m->build.archive;
  char dir[4096], art_path[8300], id[TB_UUID_STR_LEN + 1], sha[65], url[200];
  if (!rel && m->build.image) {
    /* An image the daemon pulls: the version's artifact is {"image": "<reference>"}. */
    if ((rc = image_ref_file(m->build.image, art_path, sizeof art_path)) != 0) goto out;
    ref_file = art_path;
  } else if (!rel) {
    rc = tb__cli_fail(2, "%s names no artifact to upload (build.wasm, build.archive or build.image).", path);
    goto out;
  } else {
    snprintf(dir, sizeof dir, "%s", path);
    snprintf(art_path, sizeof art_path, rel[0] == '/' ? "%s%s" : "%s/%s", rel[0] == '/' ? "" : dirname(dir), rel);
  }
  long long size = 0;
  if ((rc = sha256_file(art_path, sha, &size)) != 0) {
    rc = tb__cli_fail(2, "cannot read the artifact %s: %s; build it first.", art_path, tb_strerror(rc));
    goto out;
  }
  tb_uuid_format(&m->app.id, id);
  mj = tb_manifest_to_json(m);
  mtext = mj ? json_dumps(mj, JSON_COMPACT) : NULL;
  tb__cli_body_t b = {.json = mtext};
  long st = 0;
  rc = tb__cli_api_call(&api, "POST", "/v1/apps", &b, &st, &reg);
  if (rc != 0) goto out;
  snprintf(url, sizeof url, "/v1/apps/%s", id);
  if ((rc = tb__cli_api_call(&api, "GET", url, NULL, &st, &app)) != 0) goto out;
  long long next = json_integer_value(json_object_get(app, "latest_version")) + 1;
  art = fopen(art_path, "rb");
  if (!art) {
    rc = tb__cli_fail(2, "cannot open %s: %s.", art_path, strerror(errno));
    goto out;
  }
  /* The version carries its resolved manifest: the supervisor runs it with these settings. */
  tb__cli_body_t ab = {.file = art, .file_size = size, .sha256 = sha, .manifest = mtext};
  snprintf(url, sizeof url, "/v1/apps/%s/versions/%lld", id, next);
  if ((rc = tb__cli_api_call(&api, "PUT", url, &ab, &st, &up)) != 0) goto out;
  printf("pushed %s version %lld (sha256:%s, %lld bytes) as app %s\n", m->app.name ? m->app.name : "app", next, sha,
         size, id);
out:
  if (art) fclose(art);
  if (ref_file) unlink(ref_file);
  free(mtext);
  json_decref(mj), json_decref(reg), json_decref(app), json_decref(up);
  tb_manifest_free(m);
  tb_buf_deinit(&text);
  tb__cli_api_deinit(&api);
  return rc;
}
