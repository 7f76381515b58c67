/*
 * image.c — images: load a tarball, import a root file system, pull, inspect, remove
 * (include/tb/docker.h).
 *
 * Load, import and pull answer 200 and then report progress — and failures — as a
 * stream of JSON messages (tb__docker_jsonstream_t); an error in that stream is as much
 * a failure as a non-2xx status and is turned into the same kind of sentence.
 */
#include <string.h>
#include <sys/stat.h>

#include "docker_int.h"
#include "tb/alloc.h"

/* Opens `path` for streaming as a request body. */
static int open_body(const char *path, const char *what, FILE **f, int64_t *len, tb_errbuf_t *eb) {
  struct stat st;
  *f = fopen(path, "rb");
  if (*f == NULL) {
    int e = tb_err_from_errno(errno);
    return tb_errf(eb, e, "cannot open %s to %s: %s", path, what, tb_strerror(e));
  }
  if (fstat(fileno(*f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(*f);
    *f = NULL;
    return tb_errf(eb, TB_EINVAL, "%s is not a regular file", path);
  }
  *len = st.st_size;
  return 0;
}

/* ---- load ---- */

typedef struct load_st {
  char *image; /* the first loaded reference, else the first loaded id */
  bool is_ref;
  int rc;
} load_st_t;

static int on_load_message(void *ud, json_t *m) {
  load_st_t *s = ud;
  const char *text = json_string_value(json_object_get(m, "stream"));
  if (text == NULL) return 0;
  static const char ref_prefix[] = "Loaded image: ", id_prefix[] = "Loaded image ID: ";
  const char *v = NULL;
  bool is_ref = false;
  if (strncmp(text, ref_prefix, sizeof ref_prefix - 1) == 0) {
    v = text + sizeof ref_prefix - 1;
    is_ref = true;
  } else if (strncmp(text, id_prefix, sizeof id_prefix - 1) == 0) {
    v = text + sizeof id_prefix - 1;
  }
  if (v == NULL || (s->image && (s->is_ref || !is_ref))) return 0;
  size_t n = strcspn(v, "\r\n");
  char *copy = tb_strndup(v, n);
  if (copy == NULL) return TB_ENOMEM;
  tb_free(s->image);
  s->image = copy;
  s->is_ref = is_ref;
  return 0;
}

/* Docker 20.10 falls back to its legacy loader when a tarball has no manifest.json, and
 * that one then fails to open "repositories" or "<dir>/json": say what it means. */
static const char *load_hint(const char *err) {
  if (strstr(err, "blobs/json") || strstr(err, "oci-layout")) {
    return " (this looks like an OCI image layout; this Docker daemon loads only `docker save` tarballs, "
           "which carry manifest.json)";
  }
  if (strstr(err, "/repositories: no such file") || strstr(err, "unexpected EOF") ||
      strstr(err, "invalid tar header")) {
    return " (the file is not a `docker save` tarball: it has no manifest.json)";
  }
  return "";
}

int tb_docker_image_load(tb_docker_t *d, const char *tar_path, char **image, tb_errbuf_t *eb) {
  FILE *f = NULL;
  int64_t len = 0;
  load_st_t st = {0};
  tb__docker_jsonstream_t js;
  tb_buf_t path, what;
  int rc;
  *image = NULL;
  tb__docker_jsonstream_init(&js, on_load_message, &st);
  tb_buf_init(&path, 256);
  tb_buf_init(&what, 4096 + 64);
  if ((rc = tb_buf_printf(&what, "load the image %s", tar_path)) != 0 ||
      (rc = tb__docker_path(d, &path, "/images/load?quiet=1")) != 0) {
    rc = tb_errf(eb, rc, "the path %s is too long", tar_path);
    goto out;
  }
  if ((rc = open_body(tar_path, "load it as an image", &f, &len, eb)) != 0) goto out;
  tb__docker_req_t r = {.method = "POST", .path = tb_buf_cstr(&path), .what = tb_buf_cstr(&what),
                        .content_type = "application/x-tar", .upload = f, .upload_len = len,
                        .sink = tb__docker_jsonstream_sink, .sink_ud = &js};
  if ((rc = tb__docker_do(d, &r, eb)) != 0) goto out;
  if ((rc = tb__docker_jsonstream_finish(&js, eb)) != 0) goto out;
  if (js.error[0]) {
    rc = tb_errf(eb, TB_EINVAL, "the Docker daemon could not load the image %s: %s%s", tar_path, js.error,
                 load_hint(js.error));
    goto out;
  }
  if (st.image == NULL) {
    rc = tb_errf(eb, TB_EINVAL, "the Docker daemon loaded %s but named no image in its answer%s%s", tar_path,
                 js.last[0] ? ": " : "", js.last);
    goto out;
  }
  *image = st.image;
  st.image = NULL;
out:
  if (f) fclose(f);
  tb_free(st.image);
  tb__docker_jsonstream_deinit(&js);
  tb_buf_deinit(&path);
  tb_buf_deinit(&what);
  return rc;
}

/* ---- import ---- */

int tb_docker_image_import(tb_docker_t *d, const char *rootfs_tar, const char *repo_tag,
                           const char *const *changes, size_t nchanges, char **image_id, tb_errbuf_t *eb) {
  FILE *f = NULL;
  int64_t len = 0;
  tb__docker_jsonstream_t js;
  tb_buf_t path, what;
  int rc;
  if (image_id) *image_id = NULL;
  tb__docker_jsonstream_init(&js, NULL, NULL);
  tb_buf_init(&path, 65536);
  tb_buf_init(&what, 8192);
  /* repo_tag "name:tag": the tag is after the last ':' that follows the last '/'. */
  const char *slash = strrchr(repo_tag, '/');
  const char *colon = strrchr(slash ? slash : repo_tag, ':');
  if ((rc = tb_buf_printf(&what, "import %s as the image %s", rootfs_tar, repo_tag)) != 0 ||
      (rc = tb__docker_path(d, &path, "/images/create?fromSrc=-&repo=")) != 0) {
    goto toolong;
  }
  if (colon) {
    char *repo = tb_strndup(repo_tag, (size_t)(colon - repo_tag));
    if (repo == NULL) {
      rc = tb_errf(eb, TB_ENOMEM, "out of memory");
      goto out;
    }
    rc = tb__docker_escape(&path, repo);
    tb_free(repo);
    if (rc || (rc = tb_buf_puts(&path, "&tag=")) != 0 || (rc = tb__docker_escape(&path, colon + 1)) != 0) goto toolong;
  } else if ((rc = tb__docker_escape(&path, repo_tag)) != 0) {
    goto toolong;
  }
  for (size_t i = 0; i < nchanges; i++) {
    if ((rc = tb_buf_puts(&path, "&changes=")) != 0 || (rc = tb__docker_escape(&path, changes[i])) != 0) goto toolong;
  }
  if ((rc = open_body(rootfs_tar, "import it as an image", &f, &len, eb)) != 0) goto out;
  tb__docker_req_t r = {.method = "POST", .path = tb_buf_cstr(&path), .what = tb_buf_cstr(&what),
                        .content_type = "application/x-tar", .upload = f, .upload_len = len,
                        .sink = tb__docker_jsonstream_sink, .sink_ud = &js};
  if ((rc = tb__docker_do(d, &r, eb)) != 0) goto out;
  if ((rc = tb__docker_jsonstream_finish(&js, eb)) != 0) goto out;
  if (js.error[0]) {
    rc = tb_errf(eb, TB_EINVAL, "the Docker daemon could not import %s as %s: %s", rootfs_tar, repo_tag, js.error);
    goto out;
  }
  /* The last status is the new image's id. */
  if (strncmp(js.last, "sha256:", 7) != 0) {
    rc = tb_errf(eb, TB_EIO, "the Docker daemon imported %s but did not name the image it made", rootfs_tar);
    goto out;
  }
  if (image_id && (*image_id = tb_strdup(js.last)) == NULL) rc = tb_errf(eb, TB_ENOMEM, "out of memory");
  goto out;
toolong:
  rc = tb_errf(eb, rc, "the image name or changes for %s are too long", rootfs_tar);
out:
  if (f) fclose(f);
  tb__docker_jsonstream_deinit(&js);
  tb_buf_deinit(&path);
  tb_buf_deinit(&what);
  return rc;
}

/* ---- pull ---- */

int tb_docker_image_pull(tb_docker_t *d, const char *ref, tb_errbuf_t *eb) {
  tb__docker_jsonstream_t js;
  tb_buf_t path, what;
  int rc;
  tb__docker_jsonstream_init(&js, NULL, NULL);
  tb_buf_init(&path, 8192);
  tb_buf_init(&what, 4096);
  /* fromImage may carry the tag or digest; without either the daemon would pull every
   * tag of the repository, so ask for :latest as `docker pull` does. */
  const char *slash = strrchr(ref, '/');
  bool tagged = strchr(ref, '@') != NULL || strchr(slash ? slash : ref, ':') != NULL;
  if ((rc = tb_buf_printf(&what, "pull %s", ref)) != 0 ||
      (rc = tb__docker_path(d, &path, "/images/create?fromImage=")) != 0 || (rc = tb__docker_escape(&path, ref)) != 0 ||
      (!tagged && (rc = tb_buf_puts(&path, "&tag=latest")) != 0)) {
    rc = tb_errf(eb, rc, "the image reference is too long");
    goto out;
  }
  tb__docker_req_t r = {.method = "POST", .path = tb_buf_cstr(&path), .what = tb_buf_cstr(&what),
                        .sink = tb__docker_jsonstream_sink, .sink_ud = &js};
  if ((rc = tb__docker_do(d, &r, eb)) != 0) goto out;
  if ((rc = tb__docker_jsonstream_finish(&js, eb)) != 0) goto out;
  if (js.error[0]) {
    bool missing = strstr(js.error, "not found") || strstr(js.error, "manifest unknown") ||
                   strstr(js.error, "does not exist");
    rc = tb_errf(eb, missing ? TB_ENOTFOUND : TB_EIO, "the Docker daemon could not pull %s: %s", ref, js.error);
  }
out:
  tb__docker_jsonstream_deinit(&js);
  tb_buf_deinit(&path);
  tb_buf_deinit(&what);
  return rc;
}

/* ---- inspect, remove ---- */

int tb_docker_image_inspect(tb_docker_t *d, const char *ref, json_t **out, tb_errbuf_t *eb) {
  tb_buf_t path, what, answer;
  int rc;
  *out = NULL;
  tb_buf_init(&path, 8192);
  tb_buf_init(&what, 4096);
  tb_buf_init(&answer, TB__DOCKER_MAX_ANSWER);
  if ((rc = tb_buf_printf(&what, "inspect the image %s", ref)) != 0 || (rc = tb__docker_path(d, &path, "/images/")) != 0 ||
      (rc = tb__docker_escape(&path, ref)) != 0 || (rc = tb_buf_puts(&path, "/json")) != 0) {
    rc = tb_errf(eb, rc, "the image reference is too long");
    goto out;
  }
  tb__docker_req_t r = {.method = "GET", .path = tb_buf_cstr(&path), .what = tb_buf_cstr(&what), .answer = &answer,
                        .timeout_s = TB__DOCKER_TIMEOUT_S};
  if ((rc = tb__docker_do(d, &r, eb)) != 0) goto out;
  char jerr[200];
  if (tb_json_parse((const char *)answer.data, answer.len, out, &(tb_errbuf_t){jerr, sizeof jerr}) != 0) {
    rc = tb_errf(eb, TB_EPARSE, "the Docker daemon's description of the image %s is not JSON: %s", ref, jerr);
  }
out:
  tb_buf_deinit(&path);
  tb_buf_deinit(&what);
  tb_buf_deinit(&answer);
  return rc;
}

/* A bodiless request whose path and description were built (`built` is the first
 * building error, 0 if none); frees both buffers. */
static int image_call(tb_docker_t *d, const char *method, int built, tb_buf_t *path, tb_buf_t *what, tb_errbuf_t *eb) {
  int rc;
  if (built != 0) {
    rc = tb_errf(eb, built, "the image reference is too long");
  } else {
    tb__docker_req_t r = {.method = method, .path = tb_buf_cstr(path), .what = tb_buf_cstr(what),
                          .timeout_s = TB__DOCKER_TIMEOUT_S};
    rc = tb__docker_do(d, &r, eb);
  }
  tb_buf_deinit(path);
  tb_buf_deinit(what);
  return rc;
}

int tb_docker_image_remove(tb_docker_t *d, const char *ref, bool force, tb_errbuf_t *eb) {
  tb_buf_t path, what;
  int rc;
  tb_buf_init(&path, 8192);
  tb_buf_init(&what, 4096);
  (void)((rc = tb_buf_printf(&what, "remove the image %s", ref)) != 0 || (rc = tb__docker_path(d, &path, "/images/")) != 0 ||
         (rc = tb__docker_escape(&path, ref)) != 0 || (force && (rc = tb_buf_puts(&path, "?force=1")) != 0));
  return image_call(d, "DELETE", rc, &path, &what, eb);
}

int tb_docker_image_tag(tb_docker_t *d, const char *ref, const char *repo, const char *tag, tb_errbuf_t *eb) {
  tb_buf_t path, what;
  int rc;
  tb_buf_init(&path, 8192);
  tb_buf_init(&what, 4096);
  (void)((rc = tb_buf_printf(&what, "tag the image %s as %s:%s", ref, repo, tag)) != 0 ||
         (rc = tb__docker_path(d, &path, "/images/")) != 0 || (rc = tb__docker_escape(&path, ref)) != 0 ||
         (rc = tb_buf_puts(&path, "/tag?repo=")) != 0 || (rc = tb__docker_escape(&path, repo)) != 0 ||
         (rc = tb_buf_puts(&path, "&tag=")) != 0 || (rc = tb__docker_escape(&path, tag)) != 0);
  return image_call(d, "POST", rc, &path, &what, eb);
}
