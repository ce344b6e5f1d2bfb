/*  =========================================================================
    test-pyclient - the reference client in Python (tools/zproc_client.py),
    written from doc/PROTOCOL.md alone, against a live store: every command,
    and each rule of the document. Where the document and the store
    disagree, the client's check fails and so does this test. Without
    python3 and pyzmq (python3-zmq) the test is skipped, never passed.
    =========================================================================
*/

#include "harness.h"
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <fcntl.h>

//  Records each plain message it gets as echo/last = "SENDER:TEXT"
static void
s_echo (zp_worker_t *self, void *props)
{
    zmsg_t *msg;
    while ((msg = zp_worker_recv (self, -1))) {
        char *text = zmsg_popstr (msg);
        char *value = zsys_sprintf ("%s:%s", zp_worker_sender (self), text? text: "");
        zp_state_set_str (zp_worker_state (self), "echo/last", value);
        zstr_free (&value);
        zstr_free (&text);
        zmsg_destroy (&msg);
    }
}

//  A Python that can import zmq: python3 from PATH, else the system's
//  (PATH may lead to another one, e.g. pyenv's, without Debian's
//  python3-zmq); NULL when there is none
static const char *
s_python_with_zmq (void)
{
    static const char *candidates [] = { "python3", "/usr/bin/python3" };
    for (size_t index = 0; index < sizeof candidates / sizeof candidates [0]; index++) {
        pid_t pid = fork ();
        ASSERT (pid != -1);
        if (pid == 0) {
            int null = open ("/dev/null", O_WRONLY);
            dup2 (null, 1);
            dup2 (null, 2);
            execlp (candidates [index], candidates [index], "-c", "import zmq",
                    (char *) NULL);
            _exit (127);
        }
        if (test_wait_child (pid, test_ms (20000)) == 0)
            return candidates [index];
    }
    return NULL;
}

TEST_IMPL (pyclient_protocol)
{
    const char *python = s_python_with_zmq ();
    if (!python) {
        printf ("SKIP: python3 with pyzmq (Debian: python3-zmq) is not installed\n");
        return TEST_SKIP;
    }
    //  A log of 16 changes, so the client can make a gap
    ASSERT_EQ (setenv ("ZPROC_LOG_CHANGES", "16", 1), 0);
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "echo", s_echo, NULL));

    int fds [2];
    ASSERT_EQ (pipe (fds), 0);
    const char *client = ZPROC_SRCDIR "/tools/zproc_client.py";
    pid_t pid = fork ();
    ASSERT (pid != -1);
    if (pid == 0) {
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        dup2 (fds [1], 1);
        dup2 (fds [1], 2);
        close (fds [0]);
        close (fds [1]);
        execlp (python, python, client, "check", zp_ctx_endpoint (ctx), "echo",
                (char *) NULL);
        _exit (127);
    }
    close (fds [1]);
    //  Read until the client asks for the context to go
    char output [65536] = "";
    size_t used = 0;
    int64_t deadline = test_now_ms () + test_ms (60000);
    while (!strstr (output, "READY-FOR-SHUTDOWN\n") && used + 1 < sizeof output) {
        struct pollfd item = { fds [0], POLLIN, 0 };
        int64_t remaining = deadline - test_now_ms ();
        if (remaining <= 0 || poll (&item, 1, (int) remaining) <= 0)
            break;
        ssize_t bytes = read (fds [0], output + used, sizeof output - 1 - used);
        if (bytes <= 0)
            break;
        used += (size_t) bytes;
        output [used] = 0;
    }
    zp_ctx_destroy (&ctx);
    int64_t remaining = deadline - test_now_ms ();
    ssize_t rest = test_read_all (fds [0], output + used, sizeof output - used,
                                  remaining > 0? (int) remaining: 0);
    close (fds [0]);
    int status = test_wait_child (pid, test_ms (10000));
    if (status == -1) {
        kill (pid, SIGKILL);
        test_wait_child (pid, test_ms (5000));
    }
    if (status != 0 || !strstr (output, "all checks passed"))
        fprintf (stderr, "tools/zproc_client.py check (exit %d):\n%s\n", status, output);
    ASSERT (rest >= 0);
    ASSERT_EQ (status, 0);
    ASSERT_NOT_NULL (strstr (output, "all checks passed"));
    return 0;
}
