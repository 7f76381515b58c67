/*
 * hello.c — Tabbify's demo app: an HTTP handler written the WAGI way.
 *
 * The runtime runs one fresh instance per request: the request line and headers arrive
 * as CGI environment variables (REQUEST_METHOD, PATH_INFO, QUERY_STRING, HTTP_*), the
 * body on stdin; the response goes to stdout as headers, a blank line, then the body.
 *
 *   GET  /        a greeting, with the method, path and query it saw
 *   POST /echo    the request body, byte for byte
 *   GET  /fail    a trap (the client gets 500; the next request is unaffected)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env(const char *name) {
  const char *v = getenv(name);
  return v ? v : "";
}

static int echo(void) {
  static char buf[65536]; /* not on the stack: wasm32 stacks are 64 KiB by default */
  size_t n;
  printf("Content-Type: application/octet-stream\n\n");
  while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) fwrite(buf, 1, n, stdout);
  return 0;
}

int main(void) {
  const char *method = env("REQUEST_METHOD"), *path = env("PATH_INFO");
  if (strcmp(path, "/echo") == 0 && strcmp(method, "POST") == 0) return echo();
  if (strcmp(path, "/fail") == 0) __builtin_trap();
  printf("Content-Type: text/plain\n\n");
  printf("Hello from Tabbify! You sent %s %s%s%s\n", method[0] ? method : "GET", path[0] ? path : "/",
         env("QUERY_STRING")[0] ? "?" : "", env("QUERY_STRING"));
  return 0;
}
