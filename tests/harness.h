/*  =========================================================================
    harness.h - the zproc test harness (libuv's shape)

    Every test is a function `TEST_IMPL (name) { ...; return 0; }` declared
    once in tests/test-list.h. tests/run-tests runs each test in its own
    process (`run-tests --run NAME`) with a timeout, so a crash, a hang or a
    leak in one test never affects another.

    The assertion macros are never compiled out. A failed assertion prints
    the expression, both values, errno and file:line to stderr, then aborts
    the process: in the test process the runner reports the test as failed;
    in a worker process the parent sees 134 (SIGABRT) from zp_proc_wait.
    =========================================================================
*/

#ifndef ZPROC_TEST_HARNESS_H_INCLUDED
#define ZPROC_TEST_HARNESS_H_INCLUDED

#include <zproc/zproc.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

//  ---------------------------------------------------------------------------
//  Declaring and listing tests (test-list.h)

#define TEST_IMPL(name)         int run_test_##name (void)
//  A test that cannot run here (a missing tool) prints "SKIP: why" and
//  returns this: the runner counts it as skipped, never as passed
#define TEST_SKIP               77
#define TEST_DECLARE(name)      int run_test_##name (void);

typedef int (test_fn) (void);
typedef struct {
    const char *name;           //  Test name, as given to run-tests
    test_fn *fn;                //  The test; returns 0 when it passed
    int timeout_ms;             //  Unscaled timeout for the whole test process
} test_entry_t;

#define TEST_LIST_START         static test_entry_t s_tests [] = {
#define TEST_ENTRY(name, timeout_ms) { #name, run_test_##name, (timeout_ms) },
#define TEST_LIST_END           { NULL, NULL, 0 } };

//  ---------------------------------------------------------------------------
//  Assertions: never compiled out; print both values and file:line

#if defined (__GNUC__)
#   define TEST_NORETURN    __attribute__ ((noreturn))
#   define TEST_PRINTF(f,a) __attribute__ ((format (printf, f, a)))
#else
#   define TEST_NORETURN
#   define TEST_PRINTF(f,a)
#endif

//  Print "Assertion failed in file:line (pid N): message (errno X)", abort
void
    test_fail (const char *file, int line, int err, const char *format, ...)
    TEST_NORETURN TEST_PRINTF (4, 5);

//  The symbolic name of an errno value ("ENOENT"), or its number as text
const char *
    test_errno_name (int err);

#define ASSERT(expr) do { \
    if (!(expr)) { \
        int e_ = errno; \
        test_fail (__FILE__, __LINE__, e_, "ASSERT (%s)", #expr); \
    } \
} while (0)

#define ASSERT_CMP_(a, op, b, opname) do { \
    int64_t a_ = (int64_t) (a); \
    int64_t b_ = (int64_t) (b); \
    int e_ = errno; \
    if (!(a_ op b_)) \
        test_fail (__FILE__, __LINE__, e_, \
                   "%s (%s, %s): %" PRId64 " vs %" PRId64, \
                   opname, #a, #b, a_, b_); \
} while (0)

//  Integer comparisons; values are printed as int64
#define ASSERT_EQ(a, b)     ASSERT_CMP_ (a, ==, b, "ASSERT_EQ")
#define ASSERT_NE(a, b)     ASSERT_CMP_ (a, !=, b, "ASSERT_NE")
#define ASSERT_LT(a, b)     ASSERT_CMP_ (a, <,  b, "ASSERT_LT")
#define ASSERT_LE(a, b)     ASSERT_CMP_ (a, <=, b, "ASSERT_LE")
#define ASSERT_GT(a, b)     ASSERT_CMP_ (a, >,  b, "ASSERT_GT")
#define ASSERT_GE(a, b)     ASSERT_CMP_ (a, >=, b, "ASSERT_GE")

//  String equality; NULL equals only NULL
#define ASSERT_STR_EQ(a, b) do { \
    const char *a_ = (a); \
    const char *b_ = (b); \
    int e_ = errno; \
    if (!((a_ == NULL && b_ == NULL) \
    ||    (a_ != NULL && b_ != NULL && strcmp (a_, b_) == 0))) \
        test_fail (__FILE__, __LINE__, e_, \
                   "ASSERT_STR_EQ (%s, %s): %s%.300s%s != %s%.300s%s", #a, #b, \
                   a_? "\"": "", a_? a_: "(null)", a_? "\"": "", \
                   b_? "\"": "", b_? b_: "(null)", b_? "\"": ""); \
} while (0)

#define ASSERT_NULL(p) do { \
    const void *p_ = (const void *) (p); \
    int e_ = errno; \
    if (p_ != NULL) \
        test_fail (__FILE__, __LINE__, e_, "ASSERT_NULL (%s): %p", #p, p_); \
} while (0)

#define ASSERT_NOT_NULL(p) do { \
    const void *p_ = (const void *) (p); \
    int e_ = errno; \
    if (p_ == NULL) \
        test_fail (__FILE__, __LINE__, e_, "ASSERT_NOT_NULL (%s): NULL", #p); \
} while (0)

//  errno right now equals E
#define ASSERT_ERRNO_EQ(E) do { \
    int e_ = errno; \
    if (e_ != (E)) \
        test_fail (__FILE__, __LINE__, e_, "ASSERT_ERRNO_EQ (%s): errno is %s", \
                   #E, test_errno_name (e_)); \
} while (0)

//  call returns int: it must return -1 with errno E
#define ASSERT_FAIL_ERRNO(call, E) do { \
    errno = 0; \
    int r_ = (int) (call); \
    int e_ = errno; \
    if (r_ != -1 || e_ != (E)) \
        test_fail (__FILE__, __LINE__, e_, \
                   "ASSERT_FAIL_ERRNO (%s, %s): returned %d with errno %s, " \
                   "expected -1 with errno %s", #call, #E, r_, \
                   test_errno_name (e_), test_errno_name (E)); \
} while (0)

//  call returns a pointer: it must return NULL with errno E
#define ASSERT_NULL_ERRNO(call, E) do { \
    errno = 0; \
    const void *p_ = (const void *) (call); \
    int e_ = errno; \
    if (p_ != NULL || e_ != (E)) \
        test_fail (__FILE__, __LINE__, e_, \
                   "ASSERT_NULL_ERRNO (%s, %s): returned %p with errno %s, " \
                   "expected NULL with errno %s", #call, #E, p_, \
                   test_errno_name (e_), test_errno_name (E)); \
} while (0)

//  The value of key in state is the string expected
#define ASSERT_STATE_STR(state, key, expected) do { \
    char *v_ = zp_state_get_str ((state), (key)); \
    ASSERT_STR_EQ (v_, (expected)); \
    free (v_); \
} while (0)

//  ---------------------------------------------------------------------------
//  Helpers (tests/run-tests.c)

//  argv[0] of this process, as main received it
extern const char *test_argv0;

//  Milliseconds on the monotonic clock
int64_t
    test_now_ms (void);

//  The timeout scale factor (ZPROC_TEST_TIMEOUT_SCALE, 10 under valgrind)
double
    test_timeout_scale (void);

//  ms multiplied by the timeout scale: use it for every upper bound
int
    test_ms (int ms);

//  A fresh string: the directory of the runner binary (libtool's .libs
//  stripped) followed by "/" and relative. The caller frees it.
char *
    test_build_path (const char *relative);

//  Read from fd until EOF, at most size - 1 bytes, NUL-terminated. Returns
//  the number of bytes read, or -1 with ETIMEDOUT if EOF did not come in
//  timeout_ms (what was read so far is still in buf), or -1 with errno.
ssize_t
    test_read_all (int fd, char *buf, size_t size, int timeout_ms);

//  Read exactly size bytes from fd within timeout_ms. Returns 0, or -1 with
//  ETIMEDOUT, EPIPE (EOF first) or errno.
int
    test_read_exact (int fd, void *buf, size_t size, int timeout_ms);

//  Wait for one of our own children to exit. Returns its exit code or
//  128+signal, or -1 with ETIMEDOUT (the child is left running) or errno.
int
    test_wait_child (pid_t pid, int timeout_ms);

//  Wait until process pid (any process, not only a child) has terminated;
//  a zombie counts as terminated. Returns 0, or -1 with ETIMEDOUT.
int
    test_wait_gone (pid_t pid, int timeout_ms);

//  True when this process has no child at all, live or zombie
//  (waitpid (-1, WNOHANG) fails with ECHILD). Reaps nothing otherwise.
bool
    test_no_children (void);

//  In a worker: read and drop mailbox messages until zp_worker_recv fails
//  ($TERM when the context stops, or a signal)
void
    test_drain_mailbox (zp_worker_t *worker);

//  True when path exists
bool
    test_path_exists (const char *path);

//  The socket directory of an "ipc:///dir/name" endpoint, as a fresh
//  string the caller frees; NULL when endpoint is not ipc://
char *
    test_endpoint_dir (const char *endpoint);

//  The value of the figure NAME in zp_state_info's text, or -1 when the
//  text has no such line
int64_t
    test_info_field (const char *info, const char *name);

//  Deadline-based wait: call cond (arg) until it returns true or timeout_ms
//  passes, backing off between calls. For conditions no blocking call can
//  wait on. Returns 0, or -1 with ETIMEDOUT.
typedef bool (test_cond_fn) (void *arg);
int
    wait_until (test_cond_fn *cond, void *arg, int timeout_ms);

//  Spawn count workers running fn (props) into procs, named by the context;
//  fails the test when one cannot be spawned
void
    test_spawn (zp_ctx_t *ctx, zp_worker_fn *fn, void *props, zp_proc_t **procs,
                size_t count);

//  A condition for wait_until: the store of state counts parked requests
//  (zp_state_info's "parked") as wanted
typedef struct {
    zp_state_t *state;          //  A handle to the store
    int64_t parked;             //  Requests parked, wanted
} test_parked_t;
bool
    test_parked_is (void *wanted);

#ifdef __cplusplus
}
#endif

#endif
