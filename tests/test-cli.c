/*  =========================================================================
    test-cli.c - the zproc command-line client, run as a shell would run it

    Each test makes a context and runs tools/zproc as a child process
    against its endpoint, with stdout and stderr captured through pipes,
    and checks what it printed and its exit code.
    =========================================================================
*/

#include "harness.h"
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <dirent.h>

//  What one run of the tool gave
typedef struct {
    int code;                   //  Exit code, or 128+signal
    char out [16384];           //  Its stdout, NUL-terminated
    ssize_t out_size;           //  Bytes of stdout (it may hold NULs)
    char err [4096];            //  Its stderr, NUL-terminated
} run_t;

//  Start the tool with argv (NULL-terminated; argv [0] is filled in) and
//  its stdout and stderr on pipes; returns its pid
static pid_t
s_start (char **argv, int *out_fd, int *err_fd)
{
    //  Behind libtool's wrapper (we run from .libs/, with the library on
    //  LD_LIBRARY_PATH), the tool's real binary: its own wrapper is a shell
    //  script that costs a shell and a sed per run, seconds on a loaded
    //  machine
    char *path = test_build_path ("../tools/.libs/zproc");
    if (!strstr (test_argv0, "/.libs/") || !test_path_exists (path)) {
        free (path);
        path = test_build_path ("../tools/zproc");
    }
    if (!test_path_exists (path))
        fprintf (stderr, "tool %s not found (runner at %s)\n", path, test_argv0);
    ASSERT (test_path_exists (path));
    argv [0] = path;
    int out [2], err [2];
    ASSERT_EQ (pipe (out), 0);
    ASSERT_EQ (pipe (err), 0);
    pid_t pid = fork ();
    ASSERT (pid != -1);
    if (pid == 0) {
        //  Only async-signal-safe calls between fork and exec: our parent
        //  has threads. Give the tool the signal state a shell gives it,
        //  not the mask the context's actors set up.
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        signal (SIGINT, SIG_DFL);
        signal (SIGPIPE, SIG_DFL);
        dup2 (out [1], 1);
        dup2 (err [1], 2);
        close (out [0]);
        close (out [1]);
        close (err [0]);
        close (err [1]);
        execv (path, argv);
        _exit (127);
    }
    close (out [1]);
    close (err [1]);
    *out_fd = out [0];
    *err_fd = err [0];
    free (path);
    return pid;
}

//  Wait for the tool to exit; kill it if it does not in timeout_ms
static int
s_finish (pid_t pid, int timeout_ms)
{
    int code = test_wait_child (pid, timeout_ms);
    if (code == -1) {
        fprintf (stderr, "zproc did not exit within %d ms\n", timeout_ms);
        kill (pid, SIGKILL);
        test_wait_child (pid, test_ms (5000));
    }
    return code;
}

//  Run the tool with the arguments that follow (NULL-terminated) to its end
static void
s_run (run_t *run, const char *arg, ...)
{
    char *argv [32] = { NULL };
    int argc = 1;
    va_list args;
    va_start (args, arg);
    for (; arg; arg = va_arg (args, const char *)) {
        ASSERT (argc < 31);
        argv [argc++] = (char *) arg;
    }
    va_end (args);

    int out_fd, err_fd;
    pid_t pid = s_start (argv, &out_fd, &err_fd);
    int timeout = test_ms (10000);
    run->out_size = test_read_all (out_fd, run->out, sizeof run->out, timeout);
    ssize_t err_size = test_read_all (err_fd, run->err, sizeof run->err, timeout);
    close (out_fd);
    close (err_fd);
    run->code = s_finish (pid, timeout);
    ASSERT (run->out_size >= 0);
    ASSERT (err_size >= 0);
}

//  Read from fd into buf (appending at *used) until buf holds needle, or
//  timeout_ms passes. Returns true when it came.
static bool
s_read_until (int fd, char *buf, size_t size, size_t *used, const char *needle,
              int timeout_ms)
{
    int64_t deadline = test_now_ms () + timeout_ms;
    while (!strstr (buf, needle)) {
        int64_t remaining = deadline - test_now_ms ();
        if (remaining <= 0 || *used + 1 >= size)
            return false;
        struct pollfd item = { fd, POLLIN, 0 };
        int rc = poll (&item, 1, (int) remaining);
        if (rc <= 0)
            continue;           //  Timeout (checked above) or EINTR
        ssize_t bytes = read (fd, buf + *used, size - 1 - *used);
        if (bytes <= 0)
            return false;       //  EOF: the tool ended
        *used += (size_t) bytes;
        buf [*used] = 0;
    }
    return true;
}

//  A private directory for the test's contexts, made under $TMPDIR (or
//  /tmp), which becomes $TMPDIR for what the test starts. The caller frees it.
static char *
s_private_tmpdir (void)
{
    const char *tmpdir = getenv ("TMPDIR");
    char *dir = zsys_sprintf ("%s/cli-test-XXXXXX", tmpdir && *tmpdir? tmpdir: "/tmp");
    ASSERT_NOT_NULL (mkdtemp (dir));
    ASSERT_EQ (setenv ("TMPDIR", dir, 1), 0);
    return dir;
}

//  Remove dir and what its subdirectories hold (two levels: the socket
//  directories of contexts)
static void
s_remove_tree (const char *dir)
{
    DIR *handle = opendir (dir);
    struct dirent *entry;
    while (handle && (entry = readdir (handle))) {
        if (streq (entry->d_name, ".") || streq (entry->d_name, ".."))
            continue;
        char *path = zsys_sprintf ("%s/%s", dir, entry->d_name);
        DIR *inner = opendir (path);
        struct dirent *file;
        while (inner && (file = readdir (inner))) {
            char *name = zsys_sprintf ("%s/%s", path, file->d_name);
            unlink (name);
            zstr_free (&name);
        }
        if (inner)
            closedir (inner);
        if (rmdir (path) < 0)
            unlink (path);
        zstr_free (&path);
    }
    if (handle)
        closedir (handle);
    rmdir (dir);
}

//  The pid of a process that has exited and been reaped
static pid_t
s_dead_pid (void)
{
    pid_t pid = fork ();
    ASSERT (pid != -1);
    if (pid == 0)
        _exit (0);
    ASSERT_EQ (test_wait_child (pid, test_ms (5000)), 0);
    return pid;
}

//  What a context leaves in dir/name: a unix socket "store" (nobody
//  listening) and an "owner" file naming owner. Returns the directory.
static char *
s_fake_context (const char *dir, const char *name, pid_t owner)
{
    char *path = zsys_sprintf ("%s/%s", dir, name);
    ASSERT_EQ (mkdir (path, 0700), 0);
    char *file = zsys_sprintf ("%s/owner", path);
    FILE *handle = fopen (file, "w");
    ASSERT_NOT_NULL (handle);
    fprintf (handle, "%d\n", (int) owner);
    fclose (handle);
    zstr_free (&file);
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    snprintf (address.sun_path, sizeof address.sun_path, "%s/store", path);
    int sock = socket (AF_UNIX, SOCK_STREAM, 0);
    ASSERT (sock >= 0);
    ASSERT_EQ (bind (sock, (struct sockaddr *) &address, sizeof address), 0);
    close (sock);
    return path;
}


TEST_IMPL (cli_help)
{
    run_t run;
    s_run (&run, "--help", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.err, "");
    //  It serves as the manual: every command, option, exit code
    const char *expected [] = {
        "get KEY", "set KEY VALUE", "del KEY", "keys [PREFIX]", "incr KEY [N]",
        "watch [PREFIX]", "dump [--json]", "ps", "info", "ls", "serve [ENDPOINT...]",
        "-k", "-c", "-t", "--version",
        "Exit status", "  0 ", "  1 ", "  2 ", "  3 ", "  4 ",
        "ZPROC_CLIENT_CERT", "Examples", NULL
    };
    for (const char **text = expected; *text; text++) {
        if (!strstr (run.out, *text))
            fprintf (stderr, "--help does not mention '%s'\n", *text);
        ASSERT_NOT_NULL (strstr (run.out, *text));
    }
    char help [sizeof run.out];
    memcpy (help, run.out, sizeof help);
    s_run (&run, "-h", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, help);

    s_run (&run, "--version", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT (strncmp (run.out, "zproc 0.1.0", 11) == 0);

    //  The man page has an entry for every command
    FILE *file = fopen (ZPROC_SRCDIR "/tools/zproc.1", "r");
    ASSERT_NOT_NULL (file);
    char page [65536];
    size_t size = fread (page, 1, sizeof page - 1, file);
    page [size] = 0;
    fclose (file);
    const char *commands [] = {
        "get", "set", "del", "keys", "incr", "watch", "dump", "ps", "info", "ls", "serve",
        NULL
    };
    for (const char **command = commands; *command; command++) {
        char *entries [] = {
            zsys_sprintf ("\n.TP\n.B %s\n", *command),
            zsys_sprintf ("\n.TP\n.BI %s ", *command),
            zsys_sprintf ("\n.TP\n.BR %s ", *command)
        };
        bool found = strstr (page, entries [0]) || strstr (page, entries [1])
                  || strstr (page, entries [2]);
        if (!found)
            fprintf (stderr, "tools/zproc.1 has no entry for %s\n", *command);
        ASSERT (found);
        for (size_t index = 0; index < 3; index++)
            zstr_free (&entries [index]);
    }
    return 0;
}


TEST_IMPL (cli_usage)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    const char *endpoint = zp_ctx_endpoint (ctx);
    const char *key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    run_t run;

    //  Each: exit 2, a message and the short usage on stderr, nothing on
    //  stdout
#   define CHECK_USAGE(...) do { \
        s_run (&run, __VA_ARGS__, NULL); \
        ASSERT_EQ (run.code, 2); \
        ASSERT_STR_EQ (run.out, ""); \
        ASSERT (strncmp (run.err, "zproc: ", 7) == 0); \
        ASSERT_NOT_NULL (strstr (run.err, "usage: zproc")); \
    } while (0)

    CHECK_USAGE ("--frobnicate");
    CHECK_USAGE ("-x", endpoint, "get", "k");
    CHECK_USAGE ("-t");
    CHECK_USAGE ("-t", "soon", endpoint, "get", "k");
    CHECK_USAGE ("-t", "0", endpoint, "get", "k");
    CHECK_USAGE ("-k", "short", endpoint, "get", "k");
    CHECK_USAGE ("-c", "/nonexistent/cert", endpoint, "get", "k");     //  -c needs -k
    CHECK_USAGE (endpoint);
    CHECK_USAGE ("get", "k");                   //  No endpoint
    CHECK_USAGE (endpoint, "frob", "k");
    CHECK_USAGE (endpoint, "get");
    CHECK_USAGE (endpoint, "get", "k", "extra");
    CHECK_USAGE (endpoint, "get", "");
    CHECK_USAGE (endpoint, "set", "k");
    CHECK_USAGE (endpoint, "del");
    CHECK_USAGE (endpoint, "keys", "a", "b");
    CHECK_USAGE (endpoint, "incr", "k", "1.5");
    CHECK_USAGE (endpoint, "incr", "k", "99999999999999999999");
    CHECK_USAGE (endpoint, "dump", "--xml");
    ASSERT_NOT_NULL (strstr (run.err, "--xml"));
    CHECK_USAGE (endpoint, "ps", "x");
    CHECK_USAGE (endpoint, "ls");               //  ls and serve take no ENDPOINT
    CHECK_USAGE (endpoint, "serve");
    CHECK_USAGE ("ls", "x");
    CHECK_USAGE ("-t", "100", "ls");
    //  A bad command line costs no wait for a store
    int64_t start = test_now_ms ();
    CHECK_USAGE ("ipc:///nonexistent/x", "dump", "--xml");
    ASSERT_LT (test_now_ms () - start, test_ms (2000));
#   undef CHECK_USAGE

    //  A certificate file that is not there: 2, and a message naming it
    s_run (&run, "-k", key, "-c", "/nonexistent/cert", endpoint, "get", "k", NULL);
    ASSERT_EQ (run.code, 2);
    ASSERT_STR_EQ (run.out, "");
    ASSERT_NOT_NULL (strstr (run.err, "/nonexistent/cert"));

    //  Nothing was written by any of them
    ASSERT_EQ (zp_state_size (zp_ctx_state (ctx)), 0);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (cli_get_set)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    const char *endpoint = zp_ctx_endpoint (ctx);
    run_t run;

    s_run (&run, endpoint, "set", "jobs/1/status", "queued", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "");
    ASSERT_STR_EQ (run.err, "");
    char *value = zp_state_get_str (state, "jobs/1/status");
    ASSERT_STR_EQ (value, "queued");
    zstr_free (&value);

    s_run (&run, endpoint, "get", "jobs/1/status", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "queued\n");
    ASSERT_STR_EQ (run.err, "");

    //  Values are written byte for byte, NULs and all
    const char binary [] = { 'a', 0, 'b', '\n', (char) 0xff };
    ASSERT_EQ (zp_state_set_bytes (state, "bin", binary, sizeof binary), 0);
    s_run (&run, endpoint, "get", "bin", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_EQ (run.out_size, sizeof binary + 1);
    ASSERT (memcmp (run.out, binary, sizeof binary) == 0);
    ASSERT_EQ (run.out [sizeof binary], '\n');

    //  An empty value is a value
    s_run (&run, endpoint, "set", "empty", "", NULL);
    ASSERT_EQ (run.code, 0);
    s_run (&run, endpoint, "get", "empty", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "\n");

    //  Missing: 1, and a message that names the key
    s_run (&run, endpoint, "get", "nothing/here", NULL);
    ASSERT_EQ (run.code, 1);
    ASSERT_STR_EQ (run.out, "");
    ASSERT_STR_EQ (run.err, "zproc: get nothing/here: no such key\n");

    //  A reserved key: 4
    s_run (&run, endpoint, "set", "$proc/x/status", "running", NULL);
    ASSERT_EQ (run.code, 4);
    ASSERT_NOT_NULL (strstr (run.err, "$proc/x/status"));

    //  Options before the endpoint; a value that looks like an option
    s_run (&run, "-t", "2000", endpoint, "set", "dash", "-5", NULL);
    ASSERT_EQ (run.code, 0);
    s_run (&run, "--timeout", "2000", endpoint, "get", "dash", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "-5\n");
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (cli_del)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    const char *endpoint = zp_ctx_endpoint (ctx);
    ASSERT_EQ (zp_state_set_str (state, "doomed", "x"), 0);
    run_t run;
    s_run (&run, endpoint, "del", "doomed", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "");
    ASSERT_STR_EQ (run.err, "");
    errno = 0;
    ASSERT (!zp_state_exists (state, "doomed"));
    ASSERT_EQ (errno, 0);

    s_run (&run, endpoint, "del", "doomed", NULL);
    ASSERT_EQ (run.code, 1);
    ASSERT_STR_EQ (run.err, "zproc: del doomed: no such key\n");
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (cli_keys)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    const char *endpoint = zp_ctx_endpoint (ctx);
    run_t run;

    //  None: no output, success
    s_run (&run, endpoint, "keys", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "");

    const char *keys [] = { "jobs/2", "b", "jobs/10", "a", "jobs/1", "jobsx", NULL };
    for (const char **key = keys; *key; key++)
        ASSERT_EQ (zp_state_set_str (state, *key, "v"), 0);
    s_run (&run, endpoint, "keys", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "a\nb\njobs/1\njobs/10\njobs/2\njobsx\n");
    ASSERT_STR_EQ (run.err, "");

    s_run (&run, endpoint, "keys", "jobs/", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "jobs/1\njobs/10\njobs/2\n");

    s_run (&run, endpoint, "keys", "zzz", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "");
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (cli_incr)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    const char *endpoint = zp_ctx_endpoint (ctx);
    run_t run;

    //  A missing key counts as 0; N defaults to 1
    s_run (&run, endpoint, "incr", "count", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "1\n");
    s_run (&run, endpoint, "incr", "count", "41", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "42\n");
    s_run (&run, endpoint, "incr", "count", "-50", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "-8\n");
    int64_t value = 0;
    ASSERT_EQ (zp_state_get_int (state, "count", &value), 0);
    ASSERT_EQ (value, -8);

    //  Not an integer: 4, and the value is left alone
    ASSERT_EQ (zp_state_set_str (state, "name", "alice"), 0);
    s_run (&run, endpoint, "incr", "name", NULL);
    ASSERT_EQ (run.code, 4);
    ASSERT_STR_EQ (run.out, "");
    ASSERT_NOT_NULL (strstr (run.err, "incr name"));
    char *name = zp_state_get_str (state, "name");
    ASSERT_STR_EQ (name, "alice");
    zstr_free (&name);

    //  Overflow: 4 as well
    ASSERT_EQ (zp_state_set_int (state, "big", INT64_MAX), 0);
    s_run (&run, endpoint, "incr", "big", NULL);
    ASSERT_EQ (run.code, 4);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (cli_dump)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    const char *endpoint = zp_ctx_endpoint (ctx);
    run_t run;

    s_run (&run, endpoint, "dump", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "");

    ASSERT_EQ (zp_state_set_str (state, "b", "two words"), 0);
    ASSERT_EQ (zp_state_set_str (state, "a", "1"), 0);
    ASSERT_EQ (zp_state_set_str (state, "c/d", ""), 0);
    s_run (&run, endpoint, "dump", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "a\t1\nb\ttwo words\nc/d\t\n");
    ASSERT_STR_EQ (run.err, "");
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (cli_dump_json)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    const char *endpoint = zp_ctx_endpoint (ctx);
    run_t run;

    s_run (&run, endpoint, "dump", "--json", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "{}\n");

    ASSERT_EQ (zp_state_set_str (state, "quote", "say \"hi\""), 0);
    ASSERT_EQ (zp_state_set_str (state, "backslash", "C:\\temp"), 0);
    ASSERT_EQ (zp_state_set_str (state, "newline", "two\nlines\ttab"), 0);
    //  Valid UTF-8 goes out as it is
    ASSERT_EQ (zp_state_set_str (state, "utf8", "caf\xc3\xa9 \xe2\x82\xac"), 0);
    //  Not UTF-8 (a stray byte, a truncated sequence, an overlong '/'), a
    //  control character and a NUL: each byte becomes \u00XX
    const char bad [] = { (char) 0xff, 'x', (char) 0xc3, 0x01, 0, (char) 0xc0,
                          (char) 0xaf };
    ASSERT_EQ (zp_state_set_bytes (state, "binary", bad, sizeof bad), 0);
    //  Keys are escaped too
    ASSERT_EQ (zp_state_set_str (state, "odd\"key", "v"), 0);

    s_run (&run, endpoint, "dump", "--json", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.err, "");
    ASSERT_STR_EQ (run.out,
        "{\"backslash\":\"C:\\\\temp\","
        "\"binary\":\"\\u00ffx\\u00c3\\u0001\\u0000\\u00c0\\u00af\","
        "\"newline\":\"two\\nlines\\ttab\","
        "\"odd\\\"key\":\"v\","
        "\"quote\":\"say \\\"hi\\\"\","
        "\"utf8\":\"caf\xc3\xa9 \xe2\x82\xac\"}\n");
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (cli_unreachable)
{
    //  Nothing listens there: 3, quickly, with a message naming it
    run_t run;
    int64_t start = test_now_ms ();
    s_run (&run, "-t", "300", "ipc:///nonexistent/x", "get", "k", NULL);
    ASSERT_EQ (run.code, 3);
    ASSERT_LT (test_now_ms () - start, test_ms (3000));
    ASSERT_STR_EQ (run.out, "");
    ASSERT_NOT_NULL (strstr (run.err, "ipc:///nonexistent/x"));

    //  A missing ipc path fails at once, with the default timeout too
    start = test_now_ms ();
    s_run (&run, "ipc:///nonexistent/x", "get", "k", NULL);
    ASSERT_EQ (run.code, 3);
    ASSERT_LT (test_now_ms () - start, test_ms (2000));
    ASSERT_NOT_NULL (strstr (run.err, "no such socket"));

    //  A store that went away
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    char *endpoint = strdup (zp_ctx_endpoint (ctx));
    zp_ctx_destroy (&ctx);
    start = test_now_ms ();
    s_run (&run, endpoint, "keys", NULL);
    ASSERT_EQ (run.code, 3);
    ASSERT_LT (test_now_ms () - start, test_ms (2000));
    ASSERT_NOT_NULL (strstr (run.err, endpoint));
    free (endpoint);

    //  A socket left by a context whose process is gone (SIGKILL): at once
    char *dir = s_private_tmpdir ();
    char *stale = s_fake_context (dir, "zproc-stale", s_dead_pid ());
    endpoint = zsys_sprintf ("ipc://%s/store", stale);
    start = test_now_ms ();
    s_run (&run, endpoint, "keys", NULL);
    ASSERT_EQ (run.code, 3);
    ASSERT_LT (test_now_ms () - start, test_ms (2000));
    ASSERT_NOT_NULL (strstr (run.err, "is gone"));
    zstr_free (&endpoint);
    zstr_free (&stale);
    s_remove_tree (dir);
    zstr_free (&dir);
    return 0;
}


TEST_IMPL (cli_watch)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    char *argv [] = { NULL, (char *) zp_ctx_endpoint (ctx), (char *) "watch",
                      (char *) "jobs/", NULL };
    int out_fd, err_fd;
    pid_t pid = s_start (argv, &out_fd, &err_fd);

    //  The watch starts some time after the tool does: change a probe key
    //  until a change shows up
    char out [8192] = "";
    size_t used = 0;
    int64_t deadline = test_now_ms () + test_ms (5000);
    bool started = false;
    for (int probe = 0; !started && test_now_ms () < deadline; probe++) {
        ASSERT_EQ (zp_state_set_int (state, "jobs/probe", probe), 0);
        started = s_read_until (out_fd, out, sizeof out, &used, "jobs/probe\t", 50);
    }
    ASSERT (started);

    //  Every change under the prefix, in order; others not at all
    ASSERT_EQ (zp_state_set_str (state, "jobs/1", "queued"), 0);
    ASSERT_EQ (zp_state_set_str (state, "other", "x"), 0);
    ASSERT_EQ (zp_state_set_str (state, "jobs/2", "two words"), 0);
    ASSERT_EQ (zp_state_set_str (state, "jobs/1", "done"), 0);
    ASSERT_EQ (zp_state_delete (state, "jobs/1"), 0);
    ASSERT (s_read_until (out_fd, out, sizeof out, &used, "jobs/1\t(deleted)\n",
                          test_ms (5000)));
    //  Probes made before the first showed up may come first
    char *last_probe = out;
    for (char *probe = out; (probe = strstr (probe, "jobs/probe\t")); probe++)
        last_probe = probe;
    char *after = strchr (last_probe, '\n');
    ASSERT_NOT_NULL (after);
    ASSERT_STR_EQ (after + 1,
        "jobs/1\tqueued\n"
        "jobs/2\ttwo words\n"
        "jobs/1\tdone\n"
        "jobs/1\t(deleted)\n");

    //  Ctrl-C ends it, successfully and quietly
    ASSERT_EQ (kill (pid, SIGINT), 0);
    char err [1024];
    ASSERT (test_read_all (out_fd, out + used, sizeof out - used, test_ms (5000)) >= 0);
    ASSERT (test_read_all (err_fd, err, sizeof err, test_ms (5000)) >= 0);
    ASSERT_EQ (s_finish (pid, test_ms (5000)), 0);
    ASSERT_STR_EQ (err, "");
    close (out_fd);
    close (err_fd);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (cli_watch_store_gone)
{
    //  A watch on a store that goes away ends with 3, not a hang
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    char *argv [] = { NULL, (char *) "-t", (char *) "300", (char *) zp_ctx_endpoint (ctx),
                      (char *) "watch", NULL };
    int out_fd, err_fd;
    pid_t pid = s_start (argv, &out_fd, &err_fd);
    char out [4096] = "";
    size_t used = 0;
    int64_t deadline = test_now_ms () + test_ms (5000);
    bool started = false;
    for (int probe = 0; !started && test_now_ms () < deadline; probe++) {
        ASSERT_EQ (zp_state_set_int (state, "probe", probe), 0);
        started = s_read_until (out_fd, out, sizeof out, &used, "probe\t", 50);
    }
    ASSERT (started);
    zp_ctx_destroy (&ctx);

    char err [1024];
    ASSERT (test_read_all (out_fd, out + used, sizeof out - used, test_ms (10000)) >= 0);
    ASSERT (test_read_all (err_fd, err, sizeof err, test_ms (5000)) >= 0);
    ASSERT_EQ (s_finish (pid, test_ms (5000)), 3);
    ASSERT_NOT_NULL (strstr (err, "does not answer"));
    close (out_fd);
    close (err_fd);
    return 0;
}


TEST_IMPL (cli_tcp)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    const char *endpoint = zp_ctx_bind (ctx, "tcp://127.0.0.1:*");
    ASSERT_NOT_NULL (endpoint);
    ASSERT (strncmp (endpoint, "tcp://", 6) == 0);
    run_t run;
    s_run (&run, endpoint, "set", "over", "tcp", NULL);
    ASSERT_EQ (run.code, 0);
    s_run (&run, endpoint, "incr", "hits", "3", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "3\n");
    s_run (&run, endpoint, "dump", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "hits\t3\nover\ttcp\n");
    char *value = zp_state_get_str (zp_ctx_state (ctx), "over");
    ASSERT_STR_EQ (value, "tcp");
    zstr_free (&value);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (cli_curve)
{
    ASSERT_EQ (setenv ("ZPROC_CURVE", "1", 1), 0);
    unsetenv ("ZPROC_CLIENT_CERT");
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    const char *endpoint = zp_ctx_endpoint (ctx);
    const char *server_key = zp_ctx_public_key (ctx);
    ASSERT_NOT_NULL (server_key);
    ASSERT_EQ (zp_state_set_str (zp_ctx_state (ctx), "k", "secret value"), 0);

    //  A client certificate, saved as zcert_save writes it, and admitted
    zcert_t *cert = zcert_new ();
    ASSERT_NOT_NULL (cert);
    char path [] = "/tmp/zproc-test-cli-certXXXXXX";
    int fd = mkstemp (path);
    ASSERT (fd >= 0);
    close (fd);
    ASSERT_EQ (zcert_save (cert, path), 0);
    char *secret_path = zsys_sprintf ("%s_secret", path);
    ASSERT_EQ (zp_ctx_allow (ctx, zcert_public_txt (cert)), 0);

    run_t run;
    s_run (&run, "-k", server_key, "-c", path, endpoint, "get", "k", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "secret value\n");
    ASSERT_STR_EQ (run.err, "");

    //  The same certificate named in the environment
    ASSERT_EQ (setenv ("ZPROC_CLIENT_CERT", path, 1), 0);
    s_run (&run, "-k", server_key, endpoint, "get", "k", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.out, "secret value\n");
    unsetenv ("ZPROC_CLIENT_CERT");

    //  No certificate (a fresh one is presented): refused, quickly
    int64_t start = test_now_ms ();
    s_run (&run, "-k", server_key, endpoint, "get", "k", NULL);
    ASSERT_EQ (run.code, 3);
    ASSERT_LT (test_now_ms () - start, test_ms (4000));
    ASSERT_STR_EQ (run.out, "");
    ASSERT_NOT_NULL (strstr (run.err, "refused"));
    ASSERT_NOT_NULL (strstr (run.err, endpoint));

    //  No key at all: refused too
    start = test_now_ms ();
    s_run (&run, endpoint, "get", "k", NULL);
    ASSERT_EQ (run.code, 3);
    ASSERT_LT (test_now_ms () - start, test_ms (6000));

    //  The public half alone cannot be presented: a usage error
    ASSERT_EQ (unlink (secret_path), 0);
    s_run (&run, "-k", server_key, "-c", path, endpoint, "get", "k", NULL);
    ASSERT_EQ (run.code, 2);
    ASSERT_NOT_NULL (strstr (run.err, "secret"));

    unlink (path);
    zstr_free (&secret_path);
    zcert_destroy (&cert);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  ---------------------------------------------------------------------------
//  ps, ls, serve

static void
s_sleeper (zp_worker_t *self, void *props)
{
    test_drain_mailbox (self);
}

static void
s_quitter (zp_worker_t *self, void *props)
{
    exit (3);
}

//  Fails its first run, then stays
static void
s_phoenix (zp_worker_t *self, void *props)
{
    int64_t runs = 0;
    ASSERT_EQ (zp_state_incr (zp_worker_state (self), "phoenix/runs", 1, &runs), 0);
    if (runs == 1)
        exit (1);
    test_drain_mailbox (self);
}

//  One line of ps, as parsed
typedef struct {
    char name [80];
    char pid [16];
    char status [16];
    char code [16];
    char restarts [16];
} ps_line_t;

//  Find name's line in ps output; false when there is none
static bool
s_ps_line (const char *output, const char *name, ps_line_t *line)
{
    const char *cursor = output;
    while (cursor && *cursor) {
        if (sscanf (cursor, "%79s %15s %15s %15s %15s", line->name, line->pid, line->status,
                    line->code, line->restarts) == 5
        &&  streq (line->name, name))
            return true;
        cursor = strchr (cursor, '\n');
        cursor = cursor? cursor + 1: NULL;
    }
    return false;
}

TEST_IMPL (cli_ps)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    zp_state_t *state = zp_ctx_state (ctx);
    const char *endpoint = zp_ctx_endpoint (ctx);
    run_t run;

    //  No workers: the header alone
    s_run (&run, endpoint, "ps", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.err, "");
    char name [16], pid [16], status [16], code [16], restarts [16];
    ASSERT_EQ (sscanf (run.out, "%15s %15s %15s %15s %15s", name, pid, status, code, restarts), 5);
    ASSERT_STR_EQ (name, "NAME");
    ASSERT_STR_EQ (restarts, "RESTARTS");
    ASSERT_EQ (strchr (run.out, '\n') - run.out + 1, strlen (run.out));

    zp_proc_t *sleeper = zp_ctx_spawn (ctx, "sleeper", s_sleeper, NULL);
    ASSERT_NOT_NULL (sleeper);
    ASSERT_NOT_NULL (zp_ctx_spawn (ctx, "quitter", s_quitter, NULL));
    ASSERT_EQ (zp_ctx_set_restart (ctx, ZP_RESTART_TRANSIENT), 0);
    ASSERT_EQ (zp_ctx_set_backoff (ctx, 10, 10), 0);
    zp_proc_t *phoenix = zp_ctx_spawn (ctx, "phoenix", s_phoenix, NULL);
    ASSERT_NOT_NULL (phoenix);
    ASSERT_EQ (zp_state_get_when_equal_str (state, "$proc/quitter/status", "exited",
                                            test_ms (5000)), 0);
    ASSERT_EQ (zp_state_get_when_equal_str (state, "$proc/phoenix/restarts", "1",
                                            test_ms (5000)), 0);
    ASSERT_EQ (zp_state_get_when_equal_str (state, "$proc/phoenix/status", "running",
                                            test_ms (5000)), 0);

    s_run (&run, endpoint, "ps", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.err, "");
    ps_line_t line;
    char expected [16];
    ASSERT (s_ps_line (run.out, "sleeper", &line));
    snprintf (expected, sizeof expected, "%d", (int) zp_proc_pid (sleeper));
    ASSERT_STR_EQ (line.pid, expected);
    ASSERT_STR_EQ (line.status, "running");
    ASSERT_STR_EQ (line.code, "-");
    ASSERT_STR_EQ (line.restarts, "0");
    ASSERT (s_ps_line (run.out, "quitter", &line));
    ASSERT_STR_EQ (line.status, "exited");
    ASSERT_STR_EQ (line.code, "3");
    ASSERT_STR_EQ (line.restarts, "0");
    ASSERT (s_ps_line (run.out, "phoenix", &line));
    snprintf (expected, sizeof expected, "%d", (int) zp_proc_pid (phoenix));
    ASSERT_STR_EQ (line.pid, expected);
    ASSERT_STR_EQ (line.status, "running");
    ASSERT_STR_EQ (line.code, "1");
    ASSERT_STR_EQ (line.restarts, "1");
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (cli_ls)
{
    char *dir = s_private_tmpdir ();
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    //  Left by a killed process, and a directory with no store: not listed
    char *stale = s_fake_context (dir, "zproc-stale1", s_dead_pid ());
    char *bare = zsys_sprintf ("%s/zproc-bare11", dir);
    ASSERT_EQ (mkdir (bare, 0700), 0);

    run_t run;
    s_run (&run, "ls", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.err, "");
    ASSERT (strncmp (run.out, "ENDPOINT ", 9) == 0);
    char *line = zsys_sprintf ("\n%s %d\n", zp_ctx_endpoint (ctx), (int) getpid ());
    //  Columns are aligned: squeeze the blanks before comparing
    char squeezed [sizeof run.out];
    size_t used = 0;
    for (const char *cursor = run.out; *cursor; cursor++)
        if (!(*cursor == ' ' && used && squeezed [used - 1] == ' '))
            squeezed [used++] = *cursor;
    squeezed [used] = 0;
    if (!strstr (squeezed, line))
        fprintf (stderr, "zproc ls printed:\n%s--- without the line%s", run.out, line);
    ASSERT_NOT_NULL (strstr (squeezed, line));
    ASSERT_NULL (strstr (run.out, "zproc-stale1"));
    ASSERT_NULL (strstr (run.out, "zproc-bare11"));

    //  Gone once destroyed
    zp_ctx_destroy (&ctx);
    s_run (&run, "ls", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_NULL (strstr (run.out, dir));
    zstr_free (&line);
    zstr_free (&bare);
    zstr_free (&stale);
    s_remove_tree (dir);
    zstr_free (&dir);
    return 0;
}


//  Start `zproc serve ARGS`; wait until it printed its lines (the last
//  ending with last_line_prefix...\n) into out. Returns its pid.
static pid_t
s_start_serve (char **argv, char *out, size_t size, const char *last_prefix, int *out_fd)
{
    int err_fd;
    pid_t pid = s_start (argv, out_fd, &err_fd);
    close (err_fd);
    size_t used = 0;
    out [0] = 0;
    ASSERT (s_read_until (*out_fd, out, size, &used, last_prefix, test_ms (10000)));
    const char *last = strstr (out, last_prefix);
    ASSERT (s_read_until (*out_fd, out, size, &used, "\n", test_ms (10000)));
    while (!strchr (last, '\n'))
        ASSERT (s_read_until (*out_fd, out, size, &used, "\n", test_ms (10000)));
    return pid;
}

//  The value of the line that starts with "label " in text, fresh
static char *
s_labelled (const char *text, const char *label)
{
    char *wanted = zsys_sprintf ("%s ", label);
    const char *line = text;
    char *value = NULL;
    while (line && *line && !value) {
        if (strncmp (line, wanted, strlen (wanted)) == 0)
            value = zsys_sprintf ("%.*s", (int) strcspn (line + strlen (wanted), "\n"),
                                  line + strlen (wanted));
        line = strchr (line, '\n');
        line = line? line + 1: NULL;
    }
    zstr_free (&wanted);
    return value;
}

TEST_IMPL (cli_serve)
{
    char *dir = s_private_tmpdir ();
    char *argv [] = { NULL, (char *) "serve", (char *) "tcp://127.0.0.1:*", NULL };
    char out [4096];
    int out_fd;
    pid_t pid = s_start_serve (argv, out, sizeof out, "endpoint tcp://", &out_fd);
    char *ipc = s_labelled (out, "endpoint");
    ASSERT_NOT_NULL (ipc);
    ASSERT (strncmp (ipc, "ipc://", 6) == 0);
    ASSERT (strncmp (ipc + 6, dir, strlen (dir)) == 0);
    char *tcp = s_labelled (strstr (out, "endpoint tcp://"), "endpoint");
    ASSERT_NULL (strstr (out, "public-key"));

    //  Programs meet through it, over both endpoints
    zp_state_t *one = zp_state_connect (ipc, NULL);
    ASSERT_NOT_NULL (one);
    zp_state_t *two = zp_state_connect (tcp, NULL);
    ASSERT_NOT_NULL (two);
    ASSERT_EQ (zp_state_set_str (one, "shared", "yes"), 0);
    ASSERT_STATE_STR (two, "shared", "yes");
    zp_state_destroy (&one);
    zp_state_destroy (&two);
    //  ls lists it, with serve's pid
    run_t run;
    s_run (&run, "ls", NULL);
    char *pid_text = zsys_sprintf (" %d\n", (int) pid);
    ASSERT_NOT_NULL (strstr (run.out, ipc));
    ASSERT_NOT_NULL (strstr (strstr (run.out, ipc), pid_text));

    //  SIGINT: a clean exit, the socket directory removed
    kill (pid, SIGINT);
    ASSERT_EQ (s_finish (pid, test_ms (10000)), 0);
    close (out_fd);
    ASSERT (!test_path_exists (ipc + 6));

    //  With CURVE: its public key, and clients admitted from ZPROC_CURVE_ALLOW
    zcert_t *cert = zcert_new ();
    char *allow = zsys_sprintf ("%s/allow", dir);
    ASSERT_EQ (mkdir (allow, 0700), 0);
    char *cert_path = zsys_sprintf ("%s/client.cert", allow);
    ASSERT_EQ (zcert_save_public (cert, cert_path), 0);
    ASSERT_EQ (setenv ("ZPROC_CURVE", "1", 1), 0);
    ASSERT_EQ (setenv ("ZPROC_CURVE_ALLOW", allow, 1), 0);
    char *argv_curve [] = { NULL, (char *) "serve", NULL };
    pid = s_start_serve (argv_curve, out, sizeof out, "public-key ", &out_fd);
    unsetenv ("ZPROC_CURVE");
    unsetenv ("ZPROC_CURVE_ALLOW");
    char *key = s_labelled (out, "public-key");
    ASSERT_NOT_NULL (key);
    ASSERT_EQ (strlen (key), 40);
    zstr_free (&ipc);
    ipc = s_labelled (out, "endpoint");
    zp_state_t *client = zp_state_connect_cert (ipc, key, cert);
    ASSERT_NOT_NULL (client);
    ASSERT_EQ (zp_state_set_str (client, "k", "v"), 0);
    zp_state_destroy (&client);
    kill (pid, SIGTERM);
    ASSERT_EQ (s_finish (pid, test_ms (10000)), 0);
    close (out_fd);

    //  A bad endpoint: a usage error, nothing left behind
    s_run (&run, "serve", "tcp://no such host", NULL);
    ASSERT_EQ (run.code, 2);
    ASSERT_NOT_NULL (strstr (run.err, "tcp://no such host"));

    zstr_free (&key);
    zstr_free (&cert_path);
    zstr_free (&allow);
    zcert_destroy (&cert);
    zstr_free (&pid_text);
    zstr_free (&tcp);
    zstr_free (&ipc);
    s_remove_tree (dir);
    zstr_free (&dir);
    return 0;
}


TEST_IMPL (cli_info)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    ASSERT_EQ (zp_state_set_str (zp_ctx_state (ctx), "a", "1"), 0);
    ASSERT_EQ (zp_state_set_str (zp_ctx_state (ctx), "bb", "22"), 0);
    run_t run;
    s_run (&run, zp_ctx_endpoint (ctx), "info", NULL);
    ASSERT_EQ (run.code, 0);
    ASSERT_STR_EQ (run.err, "");
    ASSERT (strncmp (run.out, "keys 2\nbytes 6\nseq 2\n", 21) == 0);
    char *pid = zsys_sprintf ("\npid %d\n", (int) getpid ());
    ASSERT_NOT_NULL (strstr (run.out, pid));
    zstr_free (&pid);
    s_run (&run, zp_ctx_endpoint (ctx), "info", "x", NULL);
    ASSERT_EQ (run.code, 2);
    zp_ctx_destroy (&ctx);
    return 0;
}
