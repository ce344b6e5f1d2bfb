/*  =========================================================================
    test-examples - the examples run as part of the suite, their output
    checked line by line
    =========================================================================
*/

#include "harness.h"
#include <signal.h>
#include <sys/wait.h>

//  How s_run_example interrupts the example once it printed its first line
typedef enum {
    NO_INTERRUPT,               //  Let it run
    INTERRUPT_GROUP,            //  SIGINT to its process group, as Ctrl-C in a terminal
    INTERRUPT_PROCESS           //  SIGINT to the example's process alone, as `kill -INT`
} interrupt_t;

//  Run the example at relative (to the top build directory), leader of a
//  process group of its own, with stdout captured into buf; returns its exit
//  code (or 128+signal)
static int
s_run_example (const char *relative, interrupt_t interrupt, char *buf, size_t size,
               int timeout_ms)
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
        setpgid (0, 0);
        close (fds [0]);
        dup2 (fds [1], 1);
        close (fds [1]);
        execl (path, path, (char *) NULL);
        fprintf (stderr, "cannot exec %s: %s\n", path, strerror (errno));
        _exit (127);
    }
    setpgid (pid, pid);
    close (fds [1]);
    int64_t deadline = test_now_ms () + timeout_ms;
    size_t used = 0;
    buf [0] = 0;
    if (interrupt != NO_INTERRUPT) {
        //  Its first line says it is ready
        while (!strchr (buf, '\n') && used + 1 < size
        &&     test_read_exact (fds [0], buf + used, 1, timeout_ms) == 0)
            buf [++used] = 0;
        if (!strchr (buf, '\n'))
            fprintf (stderr, "%s: no first line within %d ms\n", path, timeout_ms);
        kill (interrupt == INTERRUPT_GROUP? -pid: pid, SIGINT);
    }
    int64_t remaining = deadline - test_now_ms ();
    ssize_t length = test_read_all (fds [0], buf + used, size - used,
                                    remaining > 0? (int) remaining: 0);
    close (fds [0]);
    if (length == -1) {
        fprintf (stderr, "%s: no end of output within %d ms; so far:\n%s\n",
                 path, timeout_ms, buf);
        kill (-pid, SIGKILL);
    }
    remaining = deadline - test_now_ms ();
    int status = test_wait_child (pid, remaining > 0? (int) remaining: 0);
    if (status == -1) {
        fprintf (stderr, "%s did not exit within %d ms\n", path, timeout_ms);
        kill (-pid, SIGKILL);
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
    int status = s_run_example (path, NO_INTERRUPT, output, sizeof (output),
                                test_ms (15000));
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
    int status = s_run_example ("../examples/pingpong", NO_INTERRUPT, output,
                                sizeof (output), test_ms (25000));
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


TEST_IMPL (example_hello)
{
    char expected [256];
    snprintf (expected, sizeof (expected),
              "main: hello from the worker\n"
              "main: zproc %s\n", zp_version ());
    s_expect_example ("../examples/hello", expected);
    return 0;
}


TEST_IMPL (example_shop)
{
    const char *expected =
        "shop: 20 items sold by 4 clerks, till 80 (expected 80), stock left 0\n";
    s_expect_example ("../examples/shop", expected);
    return 0;
}


//  Ctrl-C in a terminal (the whole process group), and `kill -INT` of the
//  parent alone: a clean shutdown either way
TEST_IMPL (example_ctrlc)
{
    const char *expected =
        "main: 2 workers ticking; press Ctrl-C to stop\n"
        "main: interrupted, stopping\n"
        "main: every worker exited cleanly\n";
    interrupt_t interrupts [] = { INTERRUPT_GROUP, INTERRUPT_PROCESS };
    size_t index;
    for (index = 0; index < 2; index++) {
        char output [4096];
        int status = s_run_example ("../examples/ctrlc", interrupts [index], output,
                                    sizeof (output), test_ms (15000));
        if (strcmp (output, expected) != 0)
            fprintf (stderr, "examples/ctrlc printed:\n%s--- expected:\n%s", output, expected);
        ASSERT_STR_EQ (output, expected);
        ASSERT_EQ (status, 0);
    }
    return 0;
}


TEST_IMPL (example_pool)
{
    const char *expected =
        "pool: 2 workers, 20 tasks; task 10 crashes its worker on its first try\n"
        "watcher: saw 20 of 20 done\n"
        "pool: 0 1 4 9 16 25 36 49 64 81 100 121 144 169 196 225 256 289 324 361\n"
        "pool: task 10 took 2 tries, on a replacement worker squares-0 or squares-1\n"
        "progress: 20 of 20 done, 0 failed\n";
    s_expect_example ("../examples/pool", expected);
    return 0;
}


TEST_IMPL (example_tree)
{
    const char *expected =
        "tree: main (one_for_all) -> app, logger; "
        "app (rest_for_one) -> app.db, app.cache, app.web\n"
        "kill app.cache: restarted app.cache app.web; kept app logger app.db\n"
        "kill logger: restarted app logger app.db app.cache app.web; kept (none)\n";
    s_expect_example ("../examples/tree", expected);
    return 0;
}


TEST_IMPL (example_service)
{
    const char *expected =
        "service: main asked calc \"add 20 22\": 42\n"
        "service: client-1 made 100 calls, every answer right\n"
        "service: client-2 made 100 calls, every answer right\n"
        "service: calc killed; a call now fails: no such live worker\n";
    s_expect_example ("../examples/service", expected);
    return 0;
}


TEST_IMPL (example_reactor)
{
    const char *expected =
        "reactor: placed 10 orders, total 550\n"
        "reactor: the report says \"10 orders, in store order, total 550\"\n";
    s_expect_example ("../examples/reactor", expected);
    return 0;
}


TEST_IMPL (example_remote)
{
    const char *expected =
        "client: connected to the store with an admitted certificate\n"
        "client: visits is now 1\n"
        "client: a stranger without an admitted certificate is refused\n"
        "server: the client says \"hello over tcp\"\n";
    s_expect_example ("../examples/remote", expected);
    return 0;
}
