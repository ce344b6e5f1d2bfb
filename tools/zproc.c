/*  =========================================================================
    zproc - the command-line client of a zproc state store

    Reads, writes and watches the key/value state of a running zproc
    context from a shell: `zproc ENDPOINT get KEY` and so on. It is a thin
    layer over the public API (zp_state, zp_watch); what it adds is what a
    shell user expects: output that pipes well, exit codes that tell "no
    such key" from "no store", and a --help that serves as the manual.
    =========================================================================
*/

#include <zproc/zproc.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

//  Exit codes, documented in s_help and zproc.1; scripts rely on them
#define EXIT_NO_KEY         1       //  get/del of a key that does not exist
#define EXIT_USAGE          2       //  bad command line
#define EXIT_UNREACHABLE    3       //  no store answers, or CURVE refused us
#define EXIT_ERROR          4       //  anything else
#define EXIT_INTERRUPTED    130     //  Ctrl-C before a command finished

//  A watch with nothing to print checks this often that the store is still
//  there: a watch on its own would wait forever on a store that died
#define WATCH_PROBE_MS      2000

typedef struct _tool_t tool_t;
typedef int (command_fn) (tool_t *self);

//  One command of the command line
typedef struct {
    const char *name;           //  As typed
    const char *synopsis;       //  Its arguments, for the short usage
    int min_args;               //  Arguments it needs
    int max_args;               //  Arguments it takes
    command_fn *run;            //  Runs it; returns the exit code
    bool host;                  //  Of this host, not of a store: no ENDPOINT
} command_t;

struct _tool_t {
    const char *endpoint;       //  The store's endpoint
    const char *server_key;     //  -k: the store's CURVE public key, or NULL
    const char *cert_file;      //  -c: our certificate file, or NULL
    zcert_t *cert;              //  The certificate loaded from cert_file
    int timeout;                //  -t in msecs, or 0 for the library's default
    const command_t *command;   //  The command to run
    char **args;                //  Its arguments
    int nargs;                  //  How many
    int64_t delta;              //  incr: what to add
    bool json;                  //  dump: as JSON?
    zp_state_t *state;          //  Our handle to the store
};


//  --------------------------------------------------------------------------
//  Usage and help

static void
s_short_usage (FILE *out)
{
    fprintf (out,
        "usage: zproc [-k KEY] [-c CERTFILE] [-t MS] ENDPOINT COMMAND [ARGS]\n"
        "       commands: get KEY | set KEY VALUE | del KEY | keys [PREFIX]\n"
        "                 incr KEY [N] | watch [PREFIX] | dump [--json] | ps | info\n"
        "       zproc ls | serve [ENDPOINT...]\n"
        "       zproc --help | --version\n");
}

static void
s_help (void)
{
    printf (
"zproc - read, write and watch the shared state of a zproc context\n"
"\n"
"Usage:\n"
"  zproc [OPTIONS] ENDPOINT COMMAND [ARGS...]\n"
"  zproc ls\n"
"  zproc serve [ENDPOINT...]\n"
"  zproc -h | --help\n"
"  zproc --version\n"
"\n"
"ENDPOINT is where the state store listens: the ipc:// endpoint of its\n"
"context (zp_ctx_endpoint), or a tcp:// endpoint the context was bound to\n"
"(zp_ctx_bind), e.g. ipc:///tmp/zproc-AbC123/store or tcp://10.0.0.5:7000.\n"
"\n"
"Commands:\n"
"  get KEY          Print the value of KEY and a newline. The value is\n"
"                   written as it is stored, byte for byte.\n"
"  set KEY VALUE    Set KEY to VALUE.\n"
"  del KEY          Delete KEY.\n"
"  keys [PREFIX]    Print the keys (those that start with PREFIX), one per\n"
"                   line, sorted bytewise.\n"
"  incr KEY [N]     Add N (default 1, may be negative) to the integer value\n"
"                   of KEY, atomically in the store (a missing key counts\n"
"                   as 0), and print the new value.\n"
"  watch [PREFIX]   Print every change (to keys that start with PREFIX) as\n"
"                   it happens, in store order: \"KEY<TAB>VALUE\" for a set,\n"
"                   \"KEY<TAB>(deleted)\" for a delete, one line each, until\n"
"                   interrupted (Ctrl-C, exit status 0). If the watch falls\n"
"                   so far behind that changes were lost, it says so on\n"
"                   stderr and goes on.\n"
"  dump [--json]    Print every key and its value as \"KEY<TAB>VALUE\" lines,\n"
"                   or with --json as one JSON object; bytes that are not\n"
"                   UTF-8 are escaped as \\u00XX (the byte as Latin-1). The\n"
"                   dump is a snapshot: the state at one moment, whole.\n"
"  ps               Print the workers of the context, one line each: NAME,\n"
"                   PID, STATUS (registered, starting, running, stopping,\n"
"                   restarting, exited, killed, failed), CODE (the last\n"
"                   exit code, or 128+signal; - while it never exited) and\n"
"                   RESTARTS, from the $proc/ notices the context publishes.\n"
"  info             Print the store's statistics, \"NAME VALUE\" lines as\n"
"                   Redis's INFO: keys, bytes (of keys and values), seq,\n"
"                   log, log_bytes (the change log), clients, lanes,\n"
"                   streams, parked (watchers waiting), rss, pid.\n"
"\n"
"Commands of this host (no ENDPOINT):\n"
"  ls               Print the contexts running on this host that you may\n"
"                   reach: the ENDPOINT of each and the PID of the process\n"
"                   that owns it (socket directories zproc-* under $TMPDIR\n"
"                   and /tmp whose owner process is alive).\n"
"  serve [ENDPOINT...]\n"
"                   Run a standalone store, as the Python zproc's\n"
"                   start_server: other programs connect to it with\n"
"                   zp_state_connect or zproc. It serves its ipc:// endpoint\n"
"                   and each ENDPOINT given (e.g. tcp://127.0.0.1:7000, or\n"
"                   tcp://127.0.0.1:* for a free port), prints \"endpoint\n"
"                   E\" for each, and \"public-key KEY\" under ZPROC_CURVE=1,\n"
"                   then serves until SIGINT or SIGTERM (exit status 0).\n"
"\n"
"Keys are 1 to 255 bytes; \"$proc/NAME/...\" keys are the context's process\n"
"notices, which clients can read and watch but not write.\n"
"\n"
"Options:\n"
"  -k, --key KEY       The store's CURVE public key (Z85, 40 characters),\n"
"                      as zp_ctx_public_key gives it: needed when the\n"
"                      context runs with ZPROC_CURVE=1.\n"
"  -c, --cert FILE     Present the client certificate in FILE, as\n"
"                      zcert_save writes it (FILE and FILE_secret). The\n"
"                      store admits it when told to (zp_ctx_allow, or the\n"
"                      ZPROC_CURVE_ALLOW directory). Needs -k.\n"
"  -t, --timeout MS    Fail when the store does not answer a request within\n"
"                      MS milliseconds, connecting included (default 5000,\n"
"                      or ZPROC_TIMEOUT from the environment).\n"
"  -h, --help          Print this help and exit.\n"
"      --version       Print the version and exit.\n"
"\n"
"Exit status:\n"
"  0    Success.\n"
"  1    No such key (get, del).\n"
"  2    Usage error: bad command line, option value or certificate file.\n"
"  3    Cannot reach the store: no store answers at ENDPOINT (not running,\n"
"       gone, or a wrong endpoint: an ipc:// path that does not exist, or\n"
"       whose owner process is gone, fails at once), or it refused us\n"
"       (CURVE: a wrong or missing -k, or a certificate it does not admit).\n"
"  4    Any other error, e.g. incr on a value that is not an integer, a\n"
"       write to a reserved key, a value too large, an output error.\n"
"  130  Interrupted (Ctrl-C) before the command finished; watch exits 0.\n"
"\n"
"Environment:\n"
"  ZPROC_CLIENT_CERT   With -k and without -c: the certificate file to\n"
"                      present, as for -c. Without either, zproc presents a\n"
"                      fresh certificate, which a CURVE store refuses.\n"
"  ZPROC_TIMEOUT       The default of -t.\n"
"  TMPDIR              Where ls looks (besides /tmp) and serve makes its\n"
"                      socket directory.\n"
"  ZPROC_CURVE         serve: 1 turns CURVE on (see zp_ctx_new(3)).\n"
"  ZPROC_CURVE_ALLOW   serve: a directory of client certificates to admit.\n"
"\n"
"Examples:\n"
"  zproc ipc:///tmp/zproc-AbC123/store set jobs/42/status queued\n"
"  zproc ipc:///tmp/zproc-AbC123/store get jobs/42/status\n"
"  zproc ipc:///tmp/zproc-AbC123/store incr stats/done 5\n"
"  zproc ipc:///tmp/zproc-AbC123/store keys jobs/\n"
"  zproc ipc:///tmp/zproc-AbC123/store watch jobs/ | grep failed\n"
"  zproc -k \"$SERVER_KEY\" -c client.cert tcp://10.0.0.5:7000 dump --json\n"
"  if zproc \"$EP\" get lock >/dev/null; then echo taken; fi\n"
"  zproc ls\n"
"  zproc \"$(zproc ls | awk 'NR == 2 { print $1 }')\" ps\n"
"  zproc serve tcp://127.0.0.1:7000 &\n");
}

static void
s_version (void)
{
    int major, minor, patch;
    zsys_version (&major, &minor, &patch);
    int zmq_major, zmq_minor, zmq_patch;
    zmq_version (&zmq_major, &zmq_minor, &zmq_patch);
    printf ("zproc %d.%d.%d (CZMQ %d.%d.%d, libzmq %d.%d.%d)\n",
            ZPROC_VERSION_MAJOR, ZPROC_VERSION_MINOR, ZPROC_VERSION_PATCH,
            major, minor, patch, zmq_major, zmq_minor, zmq_patch);
}

//  Complain about the command line; returns EXIT_USAGE
static int
s_usage_error (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "zproc: ");
    vfprintf (stderr, format, args);
    fprintf (stderr, "\n");
    va_end (args);
    s_short_usage (stderr);
    return EXIT_USAGE;
}


//  --------------------------------------------------------------------------
//  Errors: one place maps an errno to a message and an exit code, so that
//  every command answers the same failure the same way. what says which
//  call failed, e.g. "get jobs/1".

static int
s_fail (tool_t *self, const char *what, int err)
{
    switch (err) {
        case ENOENT:
            fprintf (stderr, "zproc: %s: no such key\n", what);
            return EXIT_NO_KEY;
        case ENOTCONN:
            fprintf (stderr, "zproc: %s: the store at %s does not answer (gone?)\n",
                     what, self->endpoint);
            return EXIT_UNREACHABLE;
        case EINTR:
            fprintf (stderr, "zproc: %s: interrupted\n", what);
            return EXIT_INTERRUPTED;
        case EACCES:
            //  Once connected, CURVE has admitted us: this is a reserved key
            fprintf (stderr, "zproc: %s: permission denied (a reserved key)\n", what);
            return EXIT_ERROR;
        default:
            fprintf (stderr, "zproc: %s: %s\n", what, zp_strerror (err));
            return EXIT_ERROR;
    }
}

//  The same, for a call on one key: "get KEY: no such key"
static int
s_fail_key (tool_t *self, const char *command, const char *key, int err)
{
    char *what = zsys_sprintf ("%s %s", command, key);
    int rc = s_fail (self, what? what: command, err);
    zstr_free (&what);
    return rc;
}

//  Check what was written to stdout actually went out (a full disk, a
//  closed pipe); returns 0 or EXIT_ERROR
static int
s_flush (void)
{
    if (fflush (stdout) == 0 && !ferror (stdout))
        return 0;
    fprintf (stderr, "zproc: cannot write the output: %s\n", strerror (errno));
    return EXIT_ERROR;
}

//  Keys are checked here, so that a typo is a usage error at once rather
//  than an EINVAL after a round trip
static bool
s_key_valid (const char *key)
{
    size_t size = strlen (key);
    return size > 0 && size <= ZP_KEY_MAX;
}


//  --------------------------------------------------------------------------
//  The commands. Each returns the process exit code.

static int
s_cmd_get (tool_t *self)
{
    const char *key = self->args [0];
    zchunk_t *value = zp_state_get_bytes (self->state, key);
    if (!value)
        return s_fail_key (self, "get", key, errno);
    //  Values are binary-safe: write the bytes, never a C string
    fwrite (zchunk_data (value), 1, zchunk_size (value), stdout);
    fputc ('\n', stdout);
    zchunk_destroy (&value);
    return s_flush ();
}

static int
s_cmd_set (tool_t *self)
{
    const char *key = self->args [0];
    const char *value = self->args [1];
    if (zp_state_set_bytes (self->state, key, value, strlen (value)) < 0)
        return s_fail_key (self, "set", key, errno);
    return 0;
}

static int
s_cmd_del (tool_t *self)
{
    const char *key = self->args [0];
    if (zp_state_delete (self->state, key) < 0)
        return s_fail_key (self, "del", key, errno);
    return 0;
}

static int
s_cmd_keys (tool_t *self)
{
    const char *prefix = self->nargs > 0? self->args [0]: NULL;
    zlistx_t *keys = zp_state_keys (self->state, prefix);
    if (!keys)
        return s_fail (self, "keys", errno);
    for (const char *key = (const char *) zlistx_first (keys); key;
         key = (const char *) zlistx_next (keys))
        printf ("%s\n", key);
    zlistx_destroy (&keys);
    return s_flush ();
}

static int
s_cmd_incr (tool_t *self)
{
    const char *key = self->args [0];
    int64_t result = 0;
    if (zp_state_incr (self->state, key, self->delta, &result) < 0) {
        //  The key is valid (checked before we connected): EINVAL is the value
        if (errno != EINVAL)
            return s_fail_key (self, "incr", key, errno);
        fprintf (stderr, "zproc: incr %s: the value is not an integer, or the sum "
                         "overflows\n", key);
        return EXIT_ERROR;
    }
    printf ("%" PRId64 "\n", result);
    return s_flush ();
}

//  The length of the valid UTF-8 sequence at data (1 to 4 bytes), or 0
//  when it is not one: a stray continuation byte, a truncated sequence, an
//  overlong form, a surrogate, or past U+10FFFF. JSON must be valid UTF-8,
//  so every byte such a test refuses is escaped.
static size_t
s_utf8_length (const byte *data, size_t size)
{
    byte lead = data [0];
    size_t length;
    uint32_t code, lowest;
    if (lead < 0x80)
        return 1;
    else
    if ((lead & 0xE0) == 0xC0) {
        length = 2;
        code = lead & 0x1F;
        lowest = 0x80;
    }
    else
    if ((lead & 0xF0) == 0xE0) {
        length = 3;
        code = lead & 0x0F;
        lowest = 0x800;
    }
    else
    if ((lead & 0xF8) == 0xF0) {
        length = 4;
        code = lead & 0x07;
        lowest = 0x10000;
    }
    else
        return 0;
    if (length > size)
        return 0;
    for (size_t index = 1; index < length; index++) {
        if ((data [index] & 0xC0) != 0x80)
            return 0;
        code = (code << 6) | (data [index] & 0x3F);
    }
    if (code < lowest || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
        return 0;
    return length;
}

//  Write size bytes of data as a JSON string. Valid UTF-8 goes out as it
//  is; a byte that is not part of it becomes \u00XX, i.e. it is read as
//  Latin-1, the one reading that keeps every byte and stays valid JSON.
static void
s_json_string (const byte *data, size_t size)
{
    fputc ('"', stdout);
    size_t index = 0;
    while (index < size) {
        byte c = data [index];
        size_t length = s_utf8_length (data + index, size - index);
        if (length > 1) {
            fwrite (data + index, 1, length, stdout);
            index += length;
            continue;
        }
        if (c == '"' || c == '\\')
            printf ("\\%c", c);
        else
        if (c == '\n')
            fputs ("\\n", stdout);
        else
        if (c == '\r')
            fputs ("\\r", stdout);
        else
        if (c == '\t')
            fputs ("\\t", stdout);
        else
        if (c < 0x20 || c == 0x7F || length == 0)
            printf ("\\u%04x", c);
        else
            fputc (c, stdout);
        index++;
    }
    fputc ('"', stdout);
}

static int
s_cmd_dump (tool_t *self)
{
    //  One round trip: every key and value at one sequence number
    zp_state_t *view = zp_state_snapshot (self->state, NULL);
    zlistx_t *keys = view? zp_state_keys (view, NULL): NULL;
    if (!keys) {
        int saved = errno;
        zp_state_destroy (&view);
        return s_fail (self, "dump", saved);
    }
    int rc = 0;
    bool first = true;
    if (self->json)
        fputc ('{', stdout);
    for (const char *key = (const char *) zlistx_first (keys); key && rc == 0;
         key = (const char *) zlistx_next (keys)) {
        zchunk_t *value = zp_state_get_bytes (view, key);
        if (!value) {
            rc = s_fail_key (self, "dump: get", key, errno);
            continue;
        }
        if (self->json) {
            if (!first)
                fputc (',', stdout);
            s_json_string ((const byte *) key, strlen (key));
            fputc (':', stdout);
            s_json_string (zchunk_data (value), zchunk_size (value));
        }
        else {
            printf ("%s\t", key);
            fwrite (zchunk_data (value), 1, zchunk_size (value), stdout);
            fputc ('\n', stdout);
        }
        first = false;
        zchunk_destroy (&value);
    }
    zlistx_destroy (&keys);
    zp_state_destroy (&view);
    if (rc)
        return rc;
    if (self->json)
        fputs ("}\n", stdout);
    return s_flush ();
}

static int
s_cmd_watch (tool_t *self)
{
    const char *prefix = self->nargs > 0? self->args [0]: NULL;
    zp_watch_t *watch = zp_watch_new (self->state, prefix);
    if (!watch)
        return errno == EINTR? 0: s_fail (self, "watch", errno);
    int rc = 0;
    while (rc == 0) {
        char *key = NULL;
        zchunk_t *value = NULL;
        if (zp_watch_next_bytes (watch, &key, &value, WATCH_PROBE_MS) == 0) {
            fputs (key, stdout);
            putchar ('\t');
            if (value)
                fwrite (zchunk_data (value), 1, zchunk_size (value), stdout);
            else
                fputs ("(deleted)", stdout);
            putchar ('\n');
            zstr_free (&key);
            zchunk_destroy (&value);
            //  A watch is read as it goes, through pipes too
            rc = s_flush ();
        }
        else
        if (errno == EAGAIN)
            fprintf (stderr, "zproc: watch: fell behind the store's change log; "
                             "some changes were lost\n");
        else
        if (errno == ETIMEDOUT) {
            //  Quiet: is the store still there?
            errno = 0;
            zp_state_size (self->state);
            if (errno == EINTR)
                break;
            if (errno)
                rc = s_fail (self, "watch", errno);
        }
        else
        if (errno == EINTR)
            break;              //  Ctrl-C: the normal end of a watch
        else
            rc = s_fail (self, "watch", errno);
    }
    zp_watch_destroy (&watch);
    return rc;
}

static int
s_cmd_info (tool_t *self)
{
    char *info = zp_state_info (self->state);
    if (!info)
        return s_fail (self, "info", errno);
    fputs (info, stdout);
    zstr_free (&info);
    return s_flush ();
}

//  One worker as ps shows it: the fields of its $proc/NAME/ notices
typedef struct {
    char *name;                 //  Worker name
    char *pid;                  //  $proc/NAME/pid, or NULL
    char *status;               //  $proc/NAME/status, or NULL
    char *code;                 //  $proc/NAME/code, or NULL
    char *restarts;             //  $proc/NAME/restarts, or NULL
} worker_row_t;

static void
s_worker_row_destroy (worker_row_t **self_p)
{
    worker_row_t *self = *self_p;
    if (self) {
        zstr_free (&self->name);
        zstr_free (&self->pid);
        zstr_free (&self->status);
        zstr_free (&self->code);
        zstr_free (&self->restarts);
        free (self);
        *self_p = NULL;
    }
}

static int
s_cmd_ps (tool_t *self)
{
    //  One snapshot: every notice at one sequence number
    zp_state_t *view = zp_state_snapshot (self->state, ZP_PROC_PREFIX);
    zlistx_t *keys = view? zp_state_keys (view, NULL): NULL;
    if (!keys) {
        int saved = errno;
        zp_state_destroy (&view);
        return s_fail (self, "ps", saved);
    }
    zlistx_t *rows = zlistx_new ();
    zlistx_set_destructor (rows, (zlistx_destructor_fn *) s_worker_row_destroy);
    worker_row_t *row = NULL;
    size_t width = strlen ("NAME");
    //  Keys are sorted: the notices of one worker come together
    for (const char *key = (const char *) zlistx_first (keys); key;
         key = (const char *) zlistx_next (keys)) {
        const char *name = key + strlen (ZP_PROC_PREFIX);
        const char *field = strrchr (name, '/');
        if (!field || field == name)
            continue;
        size_t length = (size_t) (field - name);
        field++;
        if (!row || strlen (row->name) != length || strncmp (row->name, name, length) != 0) {
            row = (worker_row_t *) zmalloc (sizeof (worker_row_t));
            row->name = zsys_sprintf ("%.*s", (int) length, name);
            zlistx_add_end (rows, row);
            width = length > width? length: width;
        }
        char **slot = streq (field, "pid")? &row->pid
                    : streq (field, "status")? &row->status
                    : streq (field, "code")? &row->code
                    : streq (field, "restarts")? &row->restarts: NULL;
        if (slot) {
            zstr_free (slot);
            *slot = zp_state_get_str (view, key);
        }
    }
    printf ("%-*s %7s %-10s %4s %8s\n", (int) width, "NAME", "PID", "STATUS", "CODE",
            "RESTARTS");
    for (row = (worker_row_t *) zlistx_first (rows); row;
         row = (worker_row_t *) zlistx_next (rows))
        printf ("%-*s %7s %-10s %4s %8s\n", (int) width, row->name,
                row->pid? row->pid: "-", row->status? row->status: "-",
                row->code? row->code: "-", row->restarts? row->restarts: "0");
    zlistx_destroy (&rows);
    zlistx_destroy (&keys);
    zp_state_destroy (&view);
    return s_flush ();
}


//  --------------------------------------------------------------------------
//  Socket directories: a context's is DIR/zproc-XXXXXX (mode 0700) holding
//  "store", its ipc endpoint, and "owner", the pid of the process that made
//  it (zp_ctx_new)

//  The pid in dir's owner file, or 0 when there is none
static pid_t
s_dir_owner (const char *dir)
{
    char *path = zsys_sprintf ("%s/owner", dir);
    FILE *file = path? fopen (path, "r"): NULL;
    int owner = 0;
    if (file && fscanf (file, "%d", &owner) != 1)
        owner = 0;
    if (file)
        fclose (file);
    zstr_free (&path);
    return owner > 0? (pid_t) owner: 0;
}

//  True when process pid exists (ours or another user's)
static bool
s_pid_alive (pid_t pid)
{
    return pid > 0 && (kill (pid, 0) == 0 || errno == EPERM);
}

//  Add to contexts ("ENDPOINT\tPID" strings) the live contexts under dir
//  that we may reach
static void
s_scan_contexts (const char *dir, zlistx_t *contexts)
{
    DIR *handle = opendir (dir);
    if (!handle)
        return;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        if (strncmp (entry->d_name, "zproc-", 6) != 0)
            continue;
        char *path = zsys_sprintf ("%s/%s", dir, entry->d_name);
        char *store = path? zsys_sprintf ("%s/store", path): NULL;
        struct stat info;
        pid_t owner = store? s_dir_owner (path): 0;
        //  Reach: we may enter the directory and write to the socket
        if (owner && s_pid_alive (owner) && stat (store, &info) == 0
        &&  S_ISSOCK (info.st_mode) && access (store, W_OK) == 0) {
            char *line = zsys_sprintf ("ipc://%s\t%d", store, (int) owner);
            if (line && !zlistx_find (contexts, line))
                zlistx_add_end (contexts, line);
            else
                zstr_free (&line);
        }
        zstr_free (&store);
        zstr_free (&path);
    }
    closedir (handle);
}

static int
s_cmd_ls (tool_t *self)
{
    zlistx_t *contexts = zlistx_new ();
    zlistx_set_destructor (contexts, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (contexts, (zlistx_comparator_fn *) strcmp);
    const char *tmpdir = getenv ("TMPDIR");
    if (tmpdir && *tmpdir)
        s_scan_contexts (tmpdir, contexts);
    s_scan_contexts ("/tmp", contexts);
    zlistx_sort (contexts);
    size_t width = strlen ("ENDPOINT");
    const char *line;
    for (line = (const char *) zlistx_first (contexts); line;
         line = (const char *) zlistx_next (contexts))
        width = strcspn (line, "\t") > width? strcspn (line, "\t"): width;
    printf ("%-*s %s\n", (int) width, "ENDPOINT", "PID");
    for (line = (const char *) zlistx_first (contexts); line;
         line = (const char *) zlistx_next (contexts)) {
        size_t length = strcspn (line, "\t");
        printf ("%-*.*s %s\n", (int) width, (int) length, line, line + length + 1);
    }
    zlistx_destroy (&contexts);
    return s_flush ();
}

static int
s_cmd_serve (tool_t *self)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx) {
        fprintf (stderr, "zproc: serve: cannot start a store: %s\n", zp_strerror (errno));
        return EXIT_ERROR;
    }
    int rc = 0;
    printf ("endpoint %s\n", zp_ctx_endpoint (ctx));
    for (int index = 0; index < self->nargs && rc == 0; index++) {
        const char *bound = zp_ctx_bind (ctx, self->args [index]);
        if (bound)
            printf ("endpoint %s\n", bound);
        else {
            fprintf (stderr, "zproc: serve: cannot bind %s: %s\n", self->args [index],
                     errno == EINVAL? "not a valid endpoint": zp_strerror (errno));
            rc = errno == EINVAL? EXIT_USAGE: EXIT_ERROR;
        }
    }
    if (rc == 0 && zp_ctx_public_key (ctx))
        printf ("public-key %s\n", zp_ctx_public_key (ctx));
    if (rc == 0)
        rc = s_flush ();
    //  Serve until SIGINT or SIGTERM: the main mailbox's recv waits for
    //  them (mail sent to "main" is dropped)
    while (rc == 0) {
        zmsg_t *msg = zp_worker_recv (zp_ctx_main (ctx), -1);
        if (!msg && errno != ETIMEDOUT)
            break;
        zmsg_destroy (&msg);
    }
    zp_ctx_destroy (&ctx);
    return rc;
}

static const command_t s_commands [] = {
    { "get",   "get KEY",             1, 1,  s_cmd_get,   false },
    { "set",   "set KEY VALUE",       2, 2,  s_cmd_set,   false },
    { "del",   "del KEY",             1, 1,  s_cmd_del,   false },
    { "keys",  "keys [PREFIX]",       0, 1,  s_cmd_keys,  false },
    { "incr",  "incr KEY [N]",        1, 2,  s_cmd_incr,  false },
    { "watch", "watch [PREFIX]",      0, 1,  s_cmd_watch, false },
    { "dump",  "dump [--json]",       0, 1,  s_cmd_dump,  false },
    { "ps",    "ps",                  0, 0,  s_cmd_ps,    false },
    { "info",  "info",                0, 0,  s_cmd_info,  false },
    { "ls",    "ls",                  0, 0,  s_cmd_ls,    true },
    { "serve", "serve [ENDPOINT...]", 0, 16, s_cmd_serve, true },
    { NULL, NULL, 0, 0, NULL, false }
};


//  --------------------------------------------------------------------------
//  The command line, checked in full before we connect, so that a mistake
//  costs no wait for the store. Returns 0 or an exit code.

static int
s_parse_command (tool_t *self)
{
    const command_t *command = s_commands;
    while (command->name && strcmp (command->name, self->args [0]) != 0)
        command++;
    if (!command->name)
        return s_usage_error ("unknown command '%s'", self->args [0]);
    if (command->host && self->endpoint)
        return s_usage_error ("%s: takes no ENDPOINT (zproc %s)", command->name,
                              command->synopsis);
    self->command = command;
    self->args++;
    self->nargs--;
    if (self->nargs < command->min_args || self->nargs > command->max_args)
        return s_usage_error ("%s: wrong number of arguments (zproc %s%s)",
                              command->name, command->host? "": "ENDPOINT ",
                              command->synopsis);

    //  Every command of a store but dump takes a key or a prefix first
    if (command->host)
        ;                       //  serve's endpoints are checked as it binds them
    else
    if (command->run == s_cmd_dump) {
        if (self->nargs == 1 && strcmp (self->args [0], "--json") != 0)
            return s_usage_error ("dump: unknown argument '%s' (only --json)",
                                  self->args [0]);
        self->json = self->nargs == 1;
    }
    else
    if (command->min_args > 0 && !s_key_valid (self->args [0]))
        return s_usage_error ("%s: invalid key '%s' (keys are 1 to %d bytes)",
                              command->name, self->args [0], ZP_KEY_MAX);
    else
    if (self->nargs > 0 && strlen (self->args [0]) > ZP_KEY_MAX)
        return s_usage_error ("%s: prefix longer than %d bytes", command->name, ZP_KEY_MAX);

    if (command->run == s_cmd_incr) {
        self->delta = 1;
        if (self->nargs == 2) {
            const char *text = self->args [1];
            char *end = NULL;
            errno = 0;
            long long delta = strtoll (text, &end, 10);
            if (errno || end == text || *end)
                return s_usage_error ("incr: '%s' is not a 64-bit integer", text);
            self->delta = (int64_t) delta;
        }
    }
    return 0;
}

//  A Z85 CURVE public key: 40 characters that decode to 32 bytes
static bool
s_server_key_valid (const char *key)
{
    byte decoded [32];
    return strlen (key) == 40 && zmq_z85_decode (decoded, key) != NULL;
}

static int
s_load_cert (tool_t *self)
{
    //  zcert_load reads FILE_secret when there is one, else FILE alone,
    //  which has no secret key: useless to present
    self->cert = zcert_load (self->cert_file);
    if (!self->cert) {
        fprintf (stderr, "zproc: cannot load the certificate %s (want FILE and "
                         "FILE_secret as zcert_save writes them)\n", self->cert_file);
        return EXIT_USAGE;
    }
    const byte *secret = zcert_secret_key (self->cert);
    bool has_secret = false;
    for (int index = 0; index < 32; index++)
        if (secret [index])
            has_secret = true;
    if (!has_secret) {
        fprintf (stderr, "zproc: the certificate %s has no secret key (is %s_secret "
                         "there?)\n", self->cert_file, self->cert_file);
        zcert_destroy (&self->cert);
        return EXIT_USAGE;
    }
    return 0;
}

static int
s_parse (tool_t *self, int argc, char *argv [])
{
    static const struct option options [] = {
        { "key",     required_argument, NULL, 'k' },
        { "cert",    required_argument, NULL, 'c' },
        { "timeout", required_argument, NULL, 't' },
        { "help",    no_argument,       NULL, 'h' },
        { "version", no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    //  "+": options end at ENDPOINT, so that "incr KEY -5" and
    //  "dump --json" reach the command as they are
    opterr = 0;
    int option;
    while ((option = getopt_long (argc, argv, "+:k:c:t:h", options, NULL)) != -1) {
        switch (option) {
            case 'k':
                self->server_key = optarg;
                break;
            case 'c':
                self->cert_file = optarg;
                break;
            case 't': {
                char *end = NULL;
                errno = 0;
                long timeout = strtol (optarg, &end, 10);
                if (errno || end == optarg || *end || timeout <= 0 || timeout > INT_MAX)
                    return s_usage_error ("-t: '%s' is not a timeout in milliseconds "
                                          "(a positive integer)", optarg);
                self->timeout = (int) timeout;
                break;
            }
            case 'h':
            case 'V':
                if (option == 'h')
                    s_help ();
                else
                    s_version ();
                //  -1: nothing more to do, and nothing went wrong
                return s_flush () == 0? -1: EXIT_ERROR;
            case ':':
                return s_usage_error ("option '%s' needs an argument", argv [optind - 1]);
            default:
                if (optopt)
                    return s_usage_error ("unknown option '-%c'", optopt);
                return s_usage_error ("unknown option '%s'", argv [optind - 1]);
        }
    }
    if (optind >= argc)
        return s_usage_error ("no endpoint given");
    //  A command of this host comes first; any other after an ENDPOINT
    const command_t *command = s_commands;
    while (command->name && !(command->host && streq (command->name, argv [optind])))
        command++;
    if (!command->name)
        self->endpoint = argv [optind++];
    if (self->endpoint && strncmp (self->endpoint, "ipc://", 6) != 0 && strncmp (self->endpoint, "tcp://", 6) != 0)
        return s_usage_error ("'%s' is not an endpoint (ipc://PATH or tcp://HOST:PORT)",
                              self->endpoint);
    if (self->endpoint && optind >= argc)
        return s_usage_error ("no command given");
    self->args = argv + optind;
    self->nargs = argc - optind;
    int rc = s_parse_command (self);
    if (rc)
        return rc;

    if (self->command->host && (self->server_key || self->cert_file || self->timeout))
        return s_usage_error ("%s: -k, -c and -t are for the commands of a store",
                              self->command->name);
    if (self->server_key && !s_server_key_valid (self->server_key))
        return s_usage_error ("-k: '%s' is not a CURVE public key (40 characters of Z85)",
                              self->server_key);
    if (self->cert_file && !self->server_key)
        return s_usage_error ("-c needs -k, the store's public key");
    if (self->cert_file)
        return s_load_cert (self);
    return 0;
}


//  --------------------------------------------------------------------------
//  Connecting: -t bounds the connect too, through ZPROC_TIMEOUT, the
//  default timeout of new handles

//  An ipc:// endpoint whose socket is missing, or whose context's process
//  is gone, has no store: say so at once rather than wait out the timeout.
//  Returns 0 when a store may answer there, else EXIT_UNREACHABLE.
static int
s_check_ipc (tool_t *self)
{
    //  "ipc://@name" is in Linux's abstract namespace: no file to look at
    if (strncmp (self->endpoint, "ipc://", 6) != 0 || self->endpoint [6] == '@')
        return 0;
    const char *path = self->endpoint + 6;
    struct stat info;
    const char *problem = NULL;
    if (stat (path, &info) < 0)
        problem = errno == ENOENT? "no such socket": strerror (errno);
    else
    if (!S_ISSOCK (info.st_mode))
        problem = "not a socket";
    if (problem) {
        fprintf (stderr, "zproc: cannot connect to %s: %s\n", self->endpoint, problem);
        return EXIT_UNREACHABLE;
    }
    char *dir = strdup (path);
    char *slash = dir? strrchr (dir, '/'): NULL;
    pid_t owner = 0;
    if (slash) {
        *slash = 0;
        owner = s_dir_owner (*dir? dir: "/");
    }
    free (dir);
    if (owner && !s_pid_alive (owner)) {
        fprintf (stderr, "zproc: cannot connect to %s: the process that served it "
                         "(pid %d) is gone\n", self->endpoint, (int) owner);
        return EXIT_UNREACHABLE;
    }
    return 0;
}

//  Returns 0 or an exit code
static int
s_connect (tool_t *self)
{
    if (self->command->host)
        return 0;               //  Not a client of a store
    int rc = s_check_ipc (self);
    if (rc)
        return rc;
    if (self->timeout > 0) {
        char text [16];
        snprintf (text, sizeof text, "%d", self->timeout);
        setenv ("ZPROC_TIMEOUT", text, 1);
    }
    self->state = self->cert
        ? zp_state_connect_cert (self->endpoint, self->server_key, self->cert)
        : zp_state_connect (self->endpoint, self->server_key);
    int err = errno;
    if (self->state)
        return 0;
    const char *env_cert = getenv ("ZPROC_CLIENT_CERT");
    switch (err) {
        case ENOTCONN:
            fprintf (stderr, "zproc: cannot connect to %s: no store answers there\n",
                     self->endpoint);
            return EXIT_UNREACHABLE;
        case EACCES:
            fprintf (stderr, "zproc: cannot connect to %s: refused by the store (CURVE: %s)\n",
                     self->endpoint,
                     !self->server_key? "it needs -k, its public key"
                     : self->cert? "is the certificate admitted?"
                     : "present an admitted certificate with -c");
            return EXIT_UNREACHABLE;
        case EINTR:
            fprintf (stderr, "zproc: cannot connect to %s: interrupted\n", self->endpoint);
            return EXIT_INTERRUPTED;
        case EINVAL:
            if (self->server_key && !self->cert && env_cert)
                fprintf (stderr, "zproc: cannot connect to %s: bad endpoint, or cannot load "
                                 "the certificate ZPROC_CLIENT_CERT=%s\n",
                         self->endpoint, env_cert);
            else
                fprintf (stderr, "zproc: cannot connect to %s: not a valid endpoint\n",
                         self->endpoint);
            return EXIT_USAGE;
        default:
            fprintf (stderr, "zproc: cannot connect to %s: %s\n", self->endpoint,
                     strerror (err));
            return EXIT_ERROR;
    }
}


//  --------------------------------------------------------------------------

int
main (int argc, char *argv [])
{
    tool_t self;
    memset (&self, 0, sizeof self);
    int rc = s_parse (&self, argc, argv);
    if (rc == 0)
        rc = s_connect (&self);
    if (rc == 0)
        rc = self.command->run (&self);
    zp_state_destroy (&self.state);
    zcert_destroy (&self.cert);
    //  -1: --help or --version, done
    return rc < 0? 0: rc;
}
