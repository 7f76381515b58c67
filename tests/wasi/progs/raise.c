/* raise.c — proc_raise: ignored signals return, SIGTERM ends the guest (status 128+15). */
#include "check.h"

/* witx $signal numbers (wasi-libc no longer declares them). */
enum { SIG_NONE = 0, SIG_TERM = 15, SIG_CHLD = 16, SIG_STOP = 18, SIG_WINCH = 27 };

int main(void) {
  CHECK_WASI(raw_proc_raise(SIG_NONE), 0);
  CHECK_WASI(raw_proc_raise(SIG_CHLD), 0);
  CHECK_WASI(raw_proc_raise(SIG_WINCH), 0);
  CHECK_WASI(raw_proc_raise(SIG_STOP), __WASI_ERRNO_NOTSUP);
  CHECK_WASI(raw_proc_raise(31), __WASI_ERRNO_INVAL);
  check_done();
  (void)raw_proc_raise(SIG_TERM);
  printf("still running after SIGTERM\n");
  return 3;
}
