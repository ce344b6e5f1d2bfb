/*  =========================================================================
    test-examples - the examples run as part of the suite, their output
    checked line by line
    =========================================================================
*/

#include "harness.h"
#include <signal.h>
#include <sys/wait.h>

//  Run the example at relative (to the top build directory) with stdout
//  captured into buf; returns its exit code (or 128+signal)
static int
s_run_example (const char *relative, char *buf, size_t size, int timeout_ms)
{
    char *path = test_build_path (relative);
    if (!test_path_exists (path))
        fprintf (stderr, "example %s not found (runner at %s)\n", path, test_argv0);
    ASSERT (test_path_exists (path));

    int fds [2];
    ASSERT_EQ (pipe (fds), 0);
    pid_t pid = fork ();
    ASSERT (pid != -1);
    if (pid == 0) {
        close (fds [0]);
        dup2 (fds [1], 1);
        close (fds [1]);
        execl (path, path, (char *) NULL);
        fprintf (stderr, "cannot exec %s: %s\n", path, strerror (errno));
        _exit (127);
    }
    close (fds [1]);
    int64_t deadline = test_now_ms () + timeout_ms;
    ssize_t length = test_read_all (fds [0], buf, size, timeout_ms);
    close (fds [0]);
    if (length == -1) {
        fprintf (stderr, "%s: no end of output within %d ms; so far:\n%s\n",
                 path, timeout_ms, buf);
        kill (pid, SIGKILL);
    }
    int64_t remaining = deadline - test_now_ms ();
    int status = test_wait_child (pid, remaining > 0? (int) remaining: 0);
    if (status == -1) {
        fprintf (stderr, "%s did not exit within %d ms\n", path, timeout_ms);
        kill (pid, SIGKILL);
        status = test_wait_child (pid, test_ms (5000));
    }
    free (path);
    ASSERT (length != -1);
    return status;
}


TEST_IMPL (example_seed)
{
    const char *expected =
        "child0: I set foo to foobar\n"
        "child1: foo got updated, so I wake\n"
        "child1: I set bar to xxx\n"
        "child1: I exit\n"
        "child2: bar changed to xxx, so I wake\n"
        "child2: I exit\n"
        "child0: I exit\n";
    char output [4096];
    int status = s_run_example ("../examples/seed", output, sizeof (output),
                                test_ms (15000));
    if (strcmp (output, expected) != 0)
        fprintf (stderr, "examples/seed printed:\n%s--- expected:\n%s", output, expected);
    ASSERT_STR_EQ (output, expected);
    ASSERT_EQ (status, 0);
    return 0;
}
