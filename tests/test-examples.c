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


//  Run an example and check that it printed exactly expected and exited 0
static void
s_expect_example (const char *path, const char *expected)
{
    char output [4096];
    int status = s_run_example (path, output, sizeof (output), test_ms (15000));
    if (strcmp (output, expected) != 0)
        fprintf (stderr, "%s printed:\n%s--- expected:\n%s", path, output, expected);
    ASSERT_STR_EQ (output, expected);
    ASSERT_EQ (status, 0);
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
    s_expect_example ("../examples/seed", expected);
    return 0;
}


TEST_IMPL (example_pipeline)
{
    const char *expected =
        "pipeline: 4 workers, 1000 tasks, sum 332833500 (expected 332833500)\n";
    s_expect_example ("../examples/pipeline", expected);
    return 0;
}


TEST_IMPL (example_mapreduce)
{
    //  The counts of the text built into the example
    const char *expected =
        "    111 the\n"
        "     33 and\n"
        "     23 keeper\n"
        "     20 a\n"
        "     20 in\n"
        "mapreduce: 774 words, 254 distinct, matches single-process count\n";
    s_expect_example ("../examples/mapreduce", expected);
    return 0;
}


TEST_IMPL (example_pingpong)
{
    //  The rate depends on the machine: check the line's shape and count
    char output [4096];
    int status = s_run_example ("../examples/pingpong", output, sizeof (output),
                                test_ms (25000));
    int count = 0;
    double seconds = 0, rate = 0;
    int length = 0;
    int fields = sscanf (output, "pingpong: %d messages in %lf s, %lf msg/s\n%n",
                         &count, &seconds, &rate, &length);
    if (fields != 3 || output [length] != 0)
        fprintf (stderr, "examples/pingpong printed:\n%s", output);
    ASSERT_EQ (fields, 3);
    ASSERT_EQ (length, strlen (output));
    ASSERT_EQ (count, 100000);
    ASSERT (seconds > 0 && rate > 0);
    ASSERT_EQ (status, 0);
    return 0;
}


TEST_IMPL (example_supervisor)
{
    //  6 jobs done per run, the 7th crashes it: 16 crashes for 100 jobs
    const char *expected =
        "supervisor: 100 jobs done, 16 restarts, nothing lost\n";
    s_expect_example ("../examples/supervisor", expected);
    return 0;
}
