/*
 * cgi.c — a WAGI guest for the runtime's tests: PATH_INFO picks a behaviour.
 *
 *   /status     Status: 404 with a reason       /location   Location only (→ 302)
 *   /headers    custom headers, CRLF lines      /noheaders  output without a blank line
 *   /bighead    a header block past any cap     /badline    a header line without ':'
 *   /exit       exit(3) before any output       /exitlate   head, body, then exit(4)
 *   /loop       an infinite loop before output  /looplate   head flushed, then loop
 *   /counter    a static counter (always 1)     /oom        malloc until NULL, print marker
 *   /stderr     a line to stderr                /env        the CGI environment
 *   /nothing    no output at all
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static volatile unsigned long spin;
/* The allocations are chained through here so the compiler cannot elide them. */
static void *volatile kept;

int main(void) {
  static int counter;
  const char *p = getenv("PATH_INFO");
  if (!p) p = "";
  if (!strcmp(p, "/status")) {
    printf("Status: 404 Not Found Here\nContent-Type: text/plain\n\nnope\n");
  } else if (!strcmp(p, "/location")) {
    printf("Location: https://example.com/elsewhere\n\n");
  } else if (!strcmp(p, "/headers")) {
    printf("Content-Type: text/html\r\nX-Custom:   spaced value  \r\nSet-Cookie: a=1\r\n\r\n<p>hi</p>");
  } else if (!strcmp(p, "/noheaders")) {
    printf("just some text with no header block");
  } else if (!strcmp(p, "/bighead")) {
    printf("X-Big: ");
    for (int i = 0; i < 200000; i++) putchar('x');
    printf("\n\nbody\n");
  } else if (!strcmp(p, "/badline")) {
    printf("Content-Type: text/plain\nthis line has no colon\n\nbody\n");
  } else if (!strcmp(p, "/exit")) {
    exit(3);
  } else if (!strcmp(p, "/exitlate")) {
    printf("Content-Type: text/plain\n\npartial\n");
    exit(4);
  } else if (!strcmp(p, "/loop")) {
    for (;;) spin++;
  } else if (!strcmp(p, "/looplate")) {
    printf("Content-Type: text/plain\n\nstarted\n");
    fflush(stdout);
    for (;;) spin++;
  } else if (!strcmp(p, "/counter")) {
    counter++;
    printf("Content-Type: text/plain\n\n%d\n", counter);
  } else if (!strcmp(p, "/oom")) {
    size_t got = 0;
    for (;;) {
      char *b = malloc(1 << 20);
      if (!b) break;
      memset(b, 1, 1 << 20);
      *(void **)b = kept;
      kept = b;
      got++;
    }
    printf("Content-Type: text/plain\n\nOOM after %zu MiB\n", got);
  } else if (!strcmp(p, "/stderr")) {
    fprintf(stderr, "guest says hello on stderr\n");
    printf("Content-Type: text/plain\n\nok\n");
  } else if (!strcmp(p, "/env")) {
    printf("Content-Type: text/plain\n\n");
    for (char **e = environ; *e; e++) printf("%s\n", *e);
  } else if (!strcmp(p, "/nothing")) {
    return 0;
  } else {
    printf("Content-Type: text/plain\n\nunknown %s\n", p);
  }
  return 0;
}
