/*  =========================================================================
    run-tests - the zproc test runner

    run-tests                   run every test of test-list.h
    run-tests NAME [NAME...]    run just those
    run-tests --list            list the tests
    run-tests --run NAME        run one test in this process (what the
                                runner execs for each test)

    Each test runs in its own process, exec'd afresh and leader of its own
    process group, with stdout and stderr captured. The runner is a child
    subreaper, so whatever a test leaves behind comes back to it: when the
    test times out the whole group is killed with SIGKILL (by process group
    id, never by name); when a passing test leaves a process behind, the
    test fails. Timeouts are multiplied by ZPROC_TEST_TIMEOUT_SCALE (default
    1, or 10 when ZPROC_TEST_VALGRIND=1, which runs each test process under
    valgrind). With ZPROC_TEST_BACKTRACE=1 the runner appends gdb's
    backtraces of every process of a timed-out test to its output.

    Output: one line per test ("ok 1 - name (12 ms)" or "not ok 2 - name:
    reason"), the captured output of each failed test, and last the line
    "N passed, N failed", followed by ", N skipped" when a test could not
    run here (it returned TEST_SKIP: "ok 3 - name # SKIP why", in TAP's
    words). Exit status 0 only when none failed.
    =========================================================================
*/

#include "config.h"
#include "harness.h"
#include "test-list.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <dirent.h>
#include <pthread.h>

#if defined (__has_include)
#   if __has_include (<valgrind/valgrind.h>)
#       include <valgrind/valgrind.h>
#       define HAVE_VALGRIND_H 1
#   endif
#endif

const char *test_argv0 = "run-tests";

//  Most captured output shown for a failed test (its tail)
#define OUTPUT_MAX      (64 * 1024)
//  How long the runner lets a finished test's group drain, unscaled
#define DRAIN_MS        1000

//  ---------------------------------------------------------------------------
//  Helpers shared with the tests (harness.h)

#define ERRNO_ENTRY(name) { name, #name }
static const struct {
    int value;                  //  errno value
    const char *name;           //  Its symbol
} s_errno_names [] = {
    ERRNO_ENTRY (EPERM), ERRNO_ENTRY (ENOENT), ERRNO_ENTRY (ESRCH), ERRNO_ENTRY (EINTR),
    ERRNO_ENTRY (EIO), ERRNO_ENTRY (EBADF), ERRNO_ENTRY (ECHILD), ERRNO_ENTRY (EAGAIN),
    ERRNO_ENTRY (ENOMEM), ERRNO_ENTRY (EACCES), ERRNO_ENTRY (EEXIST), ERRNO_ENTRY (EINVAL),
    ERRNO_ENTRY (EPIPE), ERRNO_ENTRY (EMSGSIZE), ERRNO_ENTRY (ENOTCONN),
    ERRNO_ENTRY (ETIMEDOUT), ERRNO_ENTRY (EADDRINUSE), ERRNO_ENTRY (ENOTSUP),
    ERRNO_ENTRY (EPROTO), ERRNO_ENTRY (EFAULT), ERRNO_ENTRY (ENOSYS),
    ERRNO_ENTRY (ECONNREFUSED), ERRNO_ENTRY (EADDRNOTAVAIL), ERRNO_ENTRY (ENODEV)
};

const char *
test_errno_name (int err)
{
    if (err == 0)
        return "0";
    size_t index;
    for (index = 0; index < sizeof (s_errno_names) / sizeof (s_errno_names [0]); index++)
        if (s_errno_names [index].value == err)
            return s_errno_names [index].name;
    static __thread char text [32];
    snprintf (text, sizeof (text), "%d (%s)", err, strerror (err));
    return text;
}

void
test_fail (const char *file, int line, int err, const char *format, ...)
{
    char message [1024];
    va_list args;
    va_start (args, format);
    vsnprintf (message, sizeof (message), format, args);
    va_end (args);
    fprintf (stderr, "Assertion failed in %s:%d (pid %d): %s (errno %s)\n",
             file, line, (int) getpid (), message, test_errno_name (err));
    fflush (stderr);
    fflush (stdout);
    abort ();
}

int64_t
test_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
s_valgrind (void)
{
    const char *value = getenv ("ZPROC_TEST_VALGRIND");
    return value && *value && strcmp (value, "0") != 0;
}

double
test_timeout_scale (void)
{
    const char *value = getenv ("ZPROC_TEST_TIMEOUT_SCALE");
    if (value && *value) {
        char *end;
        double scale = strtod (value, &end);
        if (*end == 0 && scale > 0)
            return scale;
    }
    return s_valgrind ()? 10.0: 1.0;
}

int
test_ms (int ms)
{
    double scaled = ms * test_timeout_scale ();
    return scaled > INT_MAX / 2? INT_MAX / 2: (int) scaled;
}

char *
test_build_path (const char *relative)
{
    char *copy = strdup (test_argv0);
    char *dir = dirname (copy);
    size_t length = strlen (dir);
    //  libtool runs the real binary from .libs/ behind a wrapper script
    if (length >= 5 && strcmp (dir + length - 5, ".libs") == 0
    && (length == 5 || dir [length - 6] == '/')) {
        if (length == 5)
            strcpy (dir, ".");
        else
            dir [length - 6] = 0;
    }
    size_t size = strlen (dir) + strlen (relative) + 2;
    char *path = (char *) malloc (size);
    snprintf (path, size, "%s/%s", dir, relative);
    free (copy);
    return path;
}

//  Wait for fd to be readable; 1 readable, 0 timeout, -1 error
static int
s_poll_in (int fd, int64_t deadline)
{
    while (true) {
        int64_t remaining = deadline - test_now_ms ();
        if (remaining < 0)
            remaining = 0;
        struct pollfd item = { fd, POLLIN, 0 };
        int rc = poll (&item, 1, (int) remaining);
        if (rc == -1 && errno == EINTR)
            continue;
        return rc > 0? 1: rc;
    }
}

ssize_t
test_read_all (int fd, char *buf, size_t size, int timeout_ms)
{
    int64_t deadline = test_now_ms () + timeout_ms;
    size_t used = 0;
    buf [0] = 0;
    while (used + 1 < size) {
        int rc = s_poll_in (fd, deadline);
        if (rc == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (rc == -1)
            return -1;
        ssize_t bytes = read (fd, buf + used, size - 1 - used);
        if (bytes == -1 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (bytes == -1)
            return -1;
        if (bytes == 0)
            break;
        used += (size_t) bytes;
        buf [used] = 0;
    }
    return (ssize_t) used;
}

int
test_read_exact (int fd, void *buf, size_t size, int timeout_ms)
{
    int64_t deadline = test_now_ms () + timeout_ms;
    size_t used = 0;
    while (used < size) {
        int rc = s_poll_in (fd, deadline);
        if (rc == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (rc == -1)
            return -1;
        ssize_t bytes = read (fd, (char *) buf + used, size - used);
        if (bytes == -1 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (bytes == -1)
            return -1;
        if (bytes == 0) {
            errno = EPIPE;
            return -1;
        }
        used += (size_t) bytes;
    }
    return 0;
}

static int
s_status_code (int status)
{
    if (WIFEXITED (status))
        return WEXITSTATUS (status);
    if (WIFSIGNALED (status))
        return 128 + WTERMSIG (status);
    return -1;
}

static int
s_pidfd_open (pid_t pid)
{
#if defined (SYS_pidfd_open)
    return (int) syscall (SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

//  True when pid has terminated: no such process, or a zombie
static bool
s_pid_gone (void *arg)
{
    pid_t pid = *(pid_t *) arg;
    char path [64];
    snprintf (path, sizeof (path), "/proc/%d/stat", (int) pid);
    FILE *file = fopen (path, "r");
    if (!file)
        return true;
    char line [512] = "";
    bool gone = false;
    if (fgets (line, sizeof (line), file)) {
        char *close_paren = strrchr (line, ')');
        gone = close_paren && (close_paren [2] == 'Z' || close_paren [2] == 'X');
    }
    fclose (file);
    return gone;
}

int
test_wait_gone (pid_t pid, int timeout_ms)
{
    int pidfd = s_pidfd_open (pid);
    if (pidfd == -1)
        //  Gone already, or no pidfd here (old kernels, valgrind): /proc
        return wait_until (s_pid_gone, &pid, timeout_ms);
    int rc = s_poll_in (pidfd, test_now_ms () + timeout_ms);
    close (pidfd);
    if (rc == 1)
        return 0;
    errno = ETIMEDOUT;
    return -1;
}

int
test_wait_child (pid_t pid, int timeout_ms)
{
    int pidfd = s_pidfd_open (pid);
    if (pidfd != -1) {
        int rc = s_poll_in (pidfd, test_now_ms () + timeout_ms);
        close (pidfd);
        if (rc == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
    //  Without a pidfd (already reaped, or an old kernel) fall back on a
    //  deadline loop around waitpid
    int64_t deadline = test_now_ms () + timeout_ms;
    int delay = 1;
    while (true) {
        int status;
        pid_t rc = waitpid (pid, &status, WNOHANG);
        if (rc == pid)
            return s_status_code (status);
        if (rc == -1 && errno != EINTR)
            return -1;
        if (test_now_ms () >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        poll (NULL, 0, delay);
        delay = delay < 32? delay * 2: delay;
    }
}

bool
test_no_children (void)
{
    int status;
    pid_t rc;
    do
        rc = waitpid (-1, &status, WNOHANG | __WALL);
    while (rc == -1 && errno == EINTR);
    if (rc > 0)
        fprintf (stderr, "test_no_children: reaped child %d (status %d)\n",
                 (int) rc, s_status_code (status));
    else
    if (rc == 0) {
        //  Say which: every process whose parent we are
        DIR *proc = opendir ("/proc");
        struct dirent *entry;
        while (proc && (entry = readdir (proc))) {
            int pid = atoi (entry->d_name);
            char path [64], line [512] = "";
            snprintf (path, sizeof (path), "/proc/%d/stat", pid);
            FILE *file = pid > 0? fopen (path, "r"): NULL;
            if (!file)
                continue;
            if (!fgets (line, sizeof (line), file))
                line [0] = 0;
            fclose (file);
            char *close_paren = strrchr (line, ')');
            int ppid = 0;
            char state = 0;
            if (close_paren && sscanf (close_paren + 2, "%c %d", &state, &ppid) == 2
            &&  ppid == (int) getpid ())
                fprintf (stderr, "test_no_children: child still running: %.*s\n",
                         (int) (close_paren - line + 3), line);
        }
        if (proc)
            closedir (proc);
    }
    return rc == -1 && errno == ECHILD;
}

void
test_drain_mailbox (zp_worker_t *worker)
{
    zmsg_t *msg;
    while ((msg = zp_worker_recv (worker, -1)))
        zmsg_destroy (&msg);
}

bool
test_path_exists (const char *path)
{
    struct stat st;
    return lstat (path, &st) == 0;
}

char *
test_endpoint_dir (const char *endpoint)
{
    if (!endpoint || strncmp (endpoint, "ipc://", 6) != 0)
        return NULL;
    char *copy = strdup (endpoint + 6);
    char *slash = strrchr (copy, '/');
    if (slash == NULL || slash == copy) {
        free (copy);
        return NULL;
    }
    *slash = 0;
    return copy;
}

int64_t
test_info_field (const char *info, const char *name)
{
    size_t size = strlen (name);
    for (const char *line = info; line && *line; ) {
        if (strncmp (line, name, size) == 0 && line [size] == ' ')
            return strtoll (line + size + 1, NULL, 10);
        line = strchr (line, '\n');
        line = line? line + 1: NULL;
    }
    return -1;
}

int
wait_until (test_cond_fn *cond, void *arg, int timeout_ms)
{
    int64_t deadline = test_now_ms () + timeout_ms;
    int delay = 1;
    while (!cond (arg)) {
        if (test_now_ms () >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        poll (NULL, 0, delay);
        delay = delay < 50? delay * 2: delay;
    }
    return 0;
}

void
test_spawn (zp_ctx_t *ctx, zp_worker_fn *fn, void *props, zp_proc_t **procs, size_t count)
{
    for (size_t index = 0; index < count; index++) {
        procs [index] = zp_ctx_spawn (ctx, NULL, fn, props);
        ASSERT_NOT_NULL (procs [index]);
    }
}

bool
test_parked_is (void *wanted)
{
    test_parked_t *self = (test_parked_t *) wanted;
    char *info = zp_state_info (self->state);
    bool done = info && test_info_field (info, "parked") == self->parked;
    zstr_free (&info);
    return done;
}

//  ---------------------------------------------------------------------------
//  The runner

static test_entry_t *
s_find (const char *name)
{
    test_entry_t *entry;
    for (entry = s_tests; entry->name; entry++)
        if (strcmp (entry->name, name) == 0)
            return entry;
    return NULL;
}

//  In every process forked from a test process. Under valgrind a forked
//  worker holds the parent's heap but not the threads that referenced it,
//  so its exit-time leak check would report the parent's live memory as
//  lost and turn its exit code into 99. With --child-silent-after-fork the
//  child's report is never shown anyway: check leaks in the test process
//  only (other memory errors in a child still give 99).
//  True in a process forked from a test's process (a worker, a helper role)
static bool s_forked = false;

static void
s_after_fork_in_child (void)
{
    s_forked = true;
#if defined (HAVE_VALGRIND_H)
    if (RUNNING_ON_VALGRIND)
        VALGRIND_CLO_CHANGE ("--leak-check=no");
#endif
}

#if defined (ZPROC_SANITIZERS)
//  LeakSanitizer asks this at exit. A forked process holds copies of its
//  parent's objects (the context, the actors' state) that only the parent's
//  threads could free: when a worker leaves with exit (), they are not
//  leaks. Leaks are checked in each test's own process.
int __lsan_is_turned_off (void);
int
__lsan_is_turned_off (void)
{
    return s_forked;
}
#endif

//  Run one test in this process: what `run-tests --run NAME` does
static int
s_run_here (const char *name)
{
    test_entry_t *entry = s_find (name);
    if (!entry) {
        fprintf (stderr, "run-tests: no test named '%s'\n", name);
        return 2;
    }
    //  Workers are forked from this process: never let them inherit
    //  unwritten stdio buffers
    setvbuf (stdout, NULL, _IONBF, 0);
    setvbuf (stderr, NULL, _IONBF, 0);
    pthread_atfork (NULL, NULL, s_after_fork_in_child);
    return entry->fn ();
}

typedef struct {
    bool passed;                //  Did the test pass?
    bool skipped;               //  Could it not run here (TEST_SKIP)?
    char reason [512];          //  Why not
    int64_t elapsed;            //  Milliseconds from fork to exit
    char *output;               //  Captured stdout and stderr (tail)
} result_t;

static sigset_t s_waited;       //  Signals the runner handles synchronously
static pid_t s_current = 0;     //  Process group of the running test

//  Describe the processes of group pgid in text: "PID (comm)", and with
//  detail what each was doing: its state and the kernel function it waits
//  in (wchan)
static void
s_describe_group (pid_t pgid, char *text, size_t size, bool detail)
{
    text [0] = 0;
    DIR *proc = opendir ("/proc");
    struct dirent *entry;
    while (proc && (entry = readdir (proc))) {
        int pid = atoi (entry->d_name);
        if (pid <= 0 || getpgid (pid) != pgid)
            continue;
        char path [64], comm [64] = "", state [128] = "", wchan [64] = "";
        const char *files [] = { "comm", "wchan" };
        char *values [] = { comm, wchan };
        for (int index = 0; index < (detail? 2: 1); index++) {
            snprintf (path, sizeof (path), "/proc/%d/%s", pid, files [index]);
            FILE *file = fopen (path, "r");
            if (file) {
                if (fgets (values [index], 64, file))
                    values [index] [strcspn (values [index], "\n")] = 0;
                fclose (file);
            }
        }
        snprintf (path, sizeof (path), "/proc/%d/status", pid);
        FILE *file = detail? fopen (path, "r"): NULL;
        char line [128];
        while (file && fgets (line, sizeof (line), file))
            if (strncmp (line, "State:", 6) == 0) {
                snprintf (state, sizeof (state), "%s", line + 7);
                state [strcspn (state, "\n")] = 0;
            }
        if (file)
            fclose (file);
        size_t used = strlen (text);
        if (detail)
            snprintf (text + used, size - used, "%s%d (%s) %s, in %s", used? "; ": "",
                      pid, comm, state, *wchan && strcmp (wchan, "0")? wchan: "user code");
        else
            snprintf (text + used, size - used, "%s%d (%s)", used? ", ": "", pid, comm);
    }
    if (proc)
        closedir (proc);
}

//  Kill the test's process group and reap every process of it that is
//  ours; returns true when the group is empty
static bool
s_drain_group (pid_t pgid, int timeout_ms, bool kill_now, char *left, size_t left_size)
{
    int64_t deadline = test_now_ms () + timeout_ms;
    if (kill_now)
        kill (-pgid, SIGKILL);
    while (true) {
        int status;
        while (waitpid (-pgid, &status, WNOHANG | __WALL) > 0)
            ;
        if (kill (-pgid, 0) == -1 && errno == ESRCH)
            return true;
        if (test_now_ms () >= deadline)
            break;
        //  Members of the group may be the children of other members:
        //  check again shortly even if no SIGCHLD comes to us
        struct timespec pause_ts = { 0, 20 * 1000 * 1000 };
        int signum = sigtimedwait (&s_waited, NULL, &pause_ts);
        if (signum == SIGINT || signum == SIGTERM || signum == SIGHUP) {
            kill (-pgid, SIGKILL);
            kill_now = true;
        }
    }
    //  Say who was left, then kill them
    if (left && left_size)
        s_describe_group (pgid, left, left_size, false);
    kill (-pgid, SIGKILL);
    int64_t last = test_now_ms () + 5000;
    while (test_now_ms () < last) {
        int status;
        while (waitpid (-pgid, &status, WNOHANG | __WALL) > 0)
            ;
        if (kill (-pgid, 0) == -1 && errno == ESRCH)
            break;
        struct timespec pause_ts = { 0, 10 * 1000 * 1000 };
        sigtimedwait (&s_waited, NULL, &pause_ts);
    }
    return false;
}

//  Processes of the test that left its process group (setsid, setpgid)
//  still come back to us as orphans: kill and reap every child we have,
//  by pid. Returns how many there were, described in left.
static int
s_sweep_orphans (char *left, size_t left_size)
{
    int count = 0, round;
    for (round = 0; round < 20; round++) {
        int found = 0;
        DIR *proc = opendir ("/proc");
        struct dirent *entry;
        while (proc && (entry = readdir (proc))) {
            int pid = atoi (entry->d_name);
            if (pid <= 0)
                continue;
            char path [64], line [512] = "";
            snprintf (path, sizeof (path), "/proc/%d/stat", pid);
            FILE *file = fopen (path, "r");
            if (!file)
                continue;
            if (!fgets (line, sizeof (line), file))
                line [0] = 0;
            fclose (file);
            char *close_paren = strrchr (line, ')');
            char *open_paren = strchr (line, '(');
            int ppid = 0;
            char state = 0;
            if (!close_paren || !open_paren
            ||  sscanf (close_paren + 2, "%c %d", &state, &ppid) != 2
            ||  ppid != (int) getpid ())
                continue;
            found++;
            if (state != 'Z') {
                count++;
                size_t used = strlen (left);
                snprintf (left + used, left_size - used, "%s%d %.*s",
                          used? ", ": "", pid, (int) (close_paren - open_paren + 1),
                          open_paren);
            }
            kill (pid, SIGKILL);
        }
        if (proc)
            closedir (proc);
        int status;
        while (waitpid (-1, &status, WNOHANG | __WALL) > 0)
            ;
        if (found == 0)
            break;
        struct timespec pause_ts = { 0, 10 * 1000 * 1000 };
        sigtimedwait (&s_waited, NULL, &pause_ts);
    }
    return count;
}

//  ZPROC_TEST_BACKTRACE=1: before a timed-out test is killed, append the
//  stacks of every thread of every process of its group to its output
static void
s_backtrace_group (pid_t pgid, int fd)
{
    DIR *proc = opendir ("/proc");
    struct dirent *entry;
    while (proc && (entry = readdir (proc))) {
        int pid = atoi (entry->d_name);
        if (pid <= 0 || getpgid (pid) != pgid)
            continue;
        dprintf (fd, "\n=== backtrace of pid %d ===\n", pid);
        pid_t gdb = fork ();
        if (gdb == 0) {
            dup2 (fd, 1);
            dup2 (fd, 2);
            char target [32];
            snprintf (target, sizeof (target), "%d", pid);
            execlp ("gdb", "gdb", "-q", "-batch", "-p", target,
                    "-ex", "thread apply all bt", (char *) NULL);
            _exit (127);
        }
        if (gdb > 0)
            while (waitpid (gdb, NULL, 0) == -1 && errno == EINTR)
                ;
    }
    if (proc)
        closedir (proc);
}

static char *
s_read_output (int fd)
{
    struct stat st;
    if (fstat (fd, &st) == -1)
        return strdup ("(cannot read the test's output)\n");
    off_t start = st.st_size > OUTPUT_MAX? st.st_size - OUTPUT_MAX: 0;
    size_t size = (size_t) (st.st_size - start);
    char *output = (char *) malloc (size + 64);
    size_t used = 0;
    if (start > 0)
        used = (size_t) snprintf (output, 64, "(%lld bytes cut)\n", (long long) start);
    ssize_t bytes = pread (fd, output + used, size, start);
    used += bytes > 0? (size_t) bytes: 0;
    output [used] = 0;
    return output;
}

static void
s_run_isolated (test_entry_t *entry, const char *exe, result_t *result)
{
    memset (result, 0, sizeof (*result));
    const char *tmpdir = getenv ("TMPDIR");
    char capture [PATH_MAX];
    snprintf (capture, sizeof (capture), "%s/zproc-test-XXXXXX",
              tmpdir && *tmpdir? tmpdir: "/tmp");
    int fd = mkstemp (capture);
    if (fd == -1) {
        snprintf (result->reason, sizeof (result->reason),
                  "cannot create %.300s: %s", capture, strerror (errno));
        result->output = strdup ("");
        return;
    }
    unlink (capture);

    int timeout = test_ms (entry->timeout_ms);
    int64_t start = test_now_ms ();
    pid_t pid = fork ();
    if (pid == 0) {
        setpgid (0, 0);
        sigset_t none;
        sigemptyset (&none);
        sigprocmask (SIG_SETMASK, &none, NULL);
        int null = open ("/dev/null", O_RDONLY);
        if (null != -1) {
            dup2 (null, 0);
            close (null);
        }
        dup2 (fd, 1);
        dup2 (fd, 2);
        close (fd);
        //  Crashing workers are part of the suite: no core files
        struct rlimit no_core = { 0, 0 };
        setrlimit (RLIMIT_CORE, &no_core);
        if (s_valgrind ()) {
            char *args [] = {
                (char *) "valgrind", (char *) "--error-exitcode=99",
                (char *) "--leak-check=full", (char *) "--errors-for-leak-kinds=definite",
                (char *) "--child-silent-after-fork=yes", (char *) "-q",
                (char *) exe, (char *) "--run", (char *) entry->name, NULL
            };
            execvp (args [0], args);
        }
        else {
            char *args [] = {
                (char *) exe, (char *) "--run", (char *) entry->name, NULL
            };
            execv (exe, args);
        }
        fprintf (stderr, "run-tests: cannot exec %s: %s\n",
                 s_valgrind ()? "valgrind": exe, strerror (errno));
        _exit (127);
    }
    if (pid == -1) {
        snprintf (result->reason, sizeof (result->reason), "fork: %s", strerror (errno));
        result->output = strdup ("");
        close (fd);
        return;
    }
    setpgid (pid, pid);         //  Also here: no race with our kill (-pid)
    s_current = pid;

    int status = 0;
    bool exited = false, timed_out = false, interrupted = false;
    while (!exited) {
        pid_t rc = waitpid (pid, &status, WNOHANG);
        if (rc == pid) {
            exited = true;
            break;
        }
        int64_t remaining = start + timeout - test_now_ms ();
        if (remaining <= 0) {
            timed_out = true;
            break;
        }
        struct timespec wait_ts = {
            (time_t) (remaining / 1000), (long) (remaining % 1000) * 1000000
        };
        int signum = sigtimedwait (&s_waited, NULL, &wait_ts);
        if (signum == SIGINT || signum == SIGTERM || signum == SIGHUP) {
            interrupted = true;
            break;
        }
    }
    result->elapsed = test_now_ms () - start;
    if (timed_out) {
        //  What it had printed is in the capture; add where each of its
        //  processes was, before they are killed
        char where [4096];
        s_describe_group (pid, where, sizeof (where), true);
        dprintf (fd, "run-tests: timed out; its processes were: %s\n", where);
    }
    if (timed_out && getenv ("ZPROC_TEST_BACKTRACE"))
        s_backtrace_group (pid, fd);
    if (!exited) {
        kill (-pid, SIGKILL);
        while (waitpid (pid, &status, 0) == -1 && errno == EINTR)
            ;
    }
    if (interrupted) {
        s_drain_group (pid, 0, true, NULL, 0);
        fprintf (stdout, "Bail out! interrupted while running %s\n", entry->name);
        fflush (stdout);
        exit (130);
    }
    char left [512] = "";
    bool drained = s_drain_group (pid, timed_out? 0: test_ms (DRAIN_MS), timed_out,
                                  left, sizeof (left));
    s_current = 0;
    if (s_sweep_orphans (left, sizeof (left)) > 0)
        drained = false;
    result->output = s_read_output (fd);
    close (fd);

    int code = s_status_code (status);
    if (timed_out)
        snprintf (result->reason, sizeof (result->reason),
                  "timed out after %d ms", timeout);
    else
    if (WIFSIGNALED (status)) {
        const char *assertion = strstr (result->output, "Assertion failed");
        if (assertion) {
            size_t length = strcspn (assertion, "\n");
            snprintf (result->reason, sizeof (result->reason), "%.*s",
                      (int) (length < 400? length: 400), assertion);
        }
        else
            snprintf (result->reason, sizeof (result->reason),
                      "killed by signal %d (%s)", WTERMSIG (status),
                      strsignal (WTERMSIG (status)));
    }
    else
    if (code == TEST_SKIP && drained) {
        //  Its reason: the "SKIP: ..." line it printed
        const char *why = strstr (result->output, "SKIP: ");
        snprintf (result->reason, sizeof (result->reason), "%.*s",
                  why? (int) strcspn (why + 6, "\n"): 0, why? why + 6: "");
        result->skipped = true;
    }
    else
    if (code == 99 && s_valgrind ())
        snprintf (result->reason, sizeof (result->reason),
                  "valgrind reported errors (exit code 99)");
    else
    if (code != 0)
        snprintf (result->reason, sizeof (result->reason), "exit code %d", code);
    else
    if (!drained)
        snprintf (result->reason, sizeof (result->reason),
                  "left processes behind: %.480s", left);
    else
    if (strstr (result->output, "dangling '")
    ||  strstr (result->output, "dangling sockets"))
        snprintf (result->reason, sizeof (result->reason),
                  "CZMQ reported dangling sockets");
    else
        result->passed = true;
}

static void
s_print_output (const char *output)
{
    const char *line = output;
    while (*line) {
        size_t length = strcspn (line, "\n");
        printf ("#   %.*s\n", (int) length, line);
        line += length;
        if (*line == '\n')
            line++;
    }
}

static void
s_usage (void)
{
    printf ("usage: run-tests [NAME...]     run every test, or just those\n"
            "       run-tests --list        list the tests\n"
            "       run-tests --run NAME    run one test in this process\n"
            "env:   ZPROC_TEST_TIMEOUT_SCALE=F  multiply every timeout by F\n"
            "       ZPROC_TEST_VALGRIND=1       run each test under valgrind\n"
            "       ZPROC_TEST_BACKTRACE=1      gdb backtraces of a test that timed out\n");
}

int
main (int argc, char *argv [])
{
    test_argv0 = argv [0];
    if (argc == 3 && strcmp (argv [1], "--run") == 0)
        return s_run_here (argv [2]);
    if (argc == 2 && strcmp (argv [1], "--list") == 0) {
        test_entry_t *entry;
        for (entry = s_tests; entry->name; entry++)
            printf ("%s\n", entry->name);
        return 0;
    }
    if (argc >= 2 && (strcmp (argv [1], "--help") == 0 || strcmp (argv [1], "-h") == 0)) {
        s_usage ();
        return 0;
    }

    //  Which tests
    size_t total = 0;
    test_entry_t *entry;
    for (entry = s_tests; entry->name; entry++)
        total++;
    test_entry_t **selected = (test_entry_t **) calloc (total + (size_t) argc, sizeof (*selected));
    size_t count = 0;
    if (argc == 1)
        for (entry = s_tests; entry->name; entry++)
            selected [count++] = entry;
    else {
        int index;
        for (index = 1; index < argc; index++) {
            entry = s_find (argv [index]);
            if (!entry) {
                fprintf (stderr, "run-tests: no test named '%s' (see --list)\n", argv [index]);
                free (selected);
                return 2;
            }
            selected [count++] = entry;
        }
    }

    //  The test processes see the scale the runner uses
    char scale [32];
    snprintf (scale, sizeof (scale), "%g", test_timeout_scale ());
    setenv ("ZPROC_TEST_TIMEOUT_SCALE", scale, 1);
    //  ...and the library's default call timeout with it: under valgrind a
    //  16 MiB set takes longer than the 5 s default (ENOTCONN otherwise)
    if (test_timeout_scale () != 1.0 && !getenv ("ZPROC_TIMEOUT")) {
        char call_timeout [32];
        snprintf (call_timeout, sizeof (call_timeout), "%.0f", 5000 * test_timeout_scale ());
        setenv ("ZPROC_TIMEOUT", call_timeout, 1);
    }

    //  We exec this very binary (behind libtool's wrapper it is the real one)
    char exe [PATH_MAX];
    ssize_t length = readlink ("/proc/self/exe", exe, sizeof (exe) - 1);
    if (length <= 0) {
        fprintf (stderr, "run-tests: cannot read /proc/self/exe: %s\n", strerror (errno));
        free (selected);
        return 2;
    }
    exe [length] = 0;

    //  Orphans of a test come back to us, so we can reap and count them
    prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    sigemptyset (&s_waited);
    sigaddset (&s_waited, SIGCHLD);
    sigaddset (&s_waited, SIGINT);
    sigaddset (&s_waited, SIGTERM);
    sigaddset (&s_waited, SIGHUP);
    sigprocmask (SIG_BLOCK, &s_waited, NULL);

    printf ("1..%zu\n", count);
    fflush (stdout);
    size_t passed = 0, failed = 0, skipped = 0, index;
    for (index = 0; index < count; index++) {
        result_t result;
        s_run_isolated (selected [index], exe, &result);
        if (result.skipped) {
            skipped++;
            printf ("ok %zu - %s # SKIP %s\n", index + 1, selected [index]->name,
                    result.reason);
        }
        else
        if (result.passed) {
            passed++;
            printf ("ok %zu - %s (%lld ms)\n", index + 1, selected [index]->name,
                    (long long) result.elapsed);
        }
        else {
            failed++;
            printf ("not ok %zu - %s: %s\n", index + 1, selected [index]->name,
                    result.reason);
            printf ("#   --- output of %s (%lld ms) ---\n", selected [index]->name,
                    (long long) result.elapsed);
            s_print_output (result.output);
            printf ("#   --- end of output ---\n");
        }
        fflush (stdout);
        free (result.output);
    }
    free (selected);
    (void) s_current;
    if (skipped)
        printf ("%zu passed, %zu failed, %zu skipped\n", passed, failed, skipped);
    else
        printf ("%zu passed, %zu failed\n", passed, failed);
    fflush (stdout);
    return failed == 0? 0: 1;
}
