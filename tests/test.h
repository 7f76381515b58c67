/*
 * test.h — what every cmocka test file includes: cmocka needs these headers first.
 */
#ifndef TB_TEST_H
#define TB_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define TB_RUN(tests) cmocka_run_group_tests((tests), NULL, NULL)

#endif
