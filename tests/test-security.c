/*  =========================================================================
    test-security.c - private by default, CURVE admission, tcp:// across
    two network namespaces
    =========================================================================
*/

#define _GNU_SOURCE             //  setns
#include <sched.h>
#include "harness.h"
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>

//  Run a shell command quietly; true when it succeeded
static bool
s_run (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *command = zsys_vprintf (format, args);
    va_end (args);
    char *quiet = zsys_sprintf ("%s >/dev/null 2>&1", command);
    int rc = system (quiet);
    zstr_free (&quiet);
    zstr_free (&command);
    return rc == 0;
}


TEST_IMPL (security_dir_private)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    char *dir = test_endpoint_dir (zp_ctx_endpoint (ctx));
    ASSERT_NOT_NULL (dir);
    struct stat info;
    ASSERT_EQ (stat (dir, &info), 0);
    ASSERT_EQ (info.st_mode & 0777, 0700);
    ASSERT_EQ (info.st_uid, getuid ());
    if (getuid () != 0) {
        printf ("SKIP: connecting as another user needs root\n");
        zstr_free (&dir);
        zp_ctx_destroy (&ctx);
        return 0;
    }
    //  Another user cannot reach the store
    struct passwd *nobody = getpwnam ("nobody");
    ASSERT_NOT_NULL (nobody);
    pid_t pid = fork ();
    ASSERT (pid >= 0);
    if (pid == 0) {
        if (setgid (nobody->pw_gid) < 0 || setuid (nobody->pw_uid) < 0)
            _exit (10);
        zp_state_t *intruder = zp_state_connect (zp_ctx_endpoint (ctx), NULL);
        int err = errno;
        zp_state_destroy (&intruder);
        _exit (intruder? 11: err == ENOTCONN || err == EACCES? 0: 12);
    }
    ASSERT_EQ (test_wait_child (pid, test_ms (15000)), 0);
    zstr_free (&dir);
    zp_ctx_destroy (&ctx);
    return 0;
}


TEST_IMPL (security_curve_allow)
{
    //  CURVE off: nothing to admit
    unsetenv ("ZPROC_CURVE");
    zp_ctx_t *plain = zp_ctx_new ();
    ASSERT_NOT_NULL (plain);
    ASSERT_FAIL_ERRNO (zp_ctx_allow (plain, "0000000000000000000000000000000000000000"),
                       EINVAL);
    zp_ctx_destroy (&plain);

    ASSERT_EQ (setenv ("ZPROC_CURVE", "1", 1), 0);
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    const char *server_key = zp_ctx_public_key (ctx);
    ASSERT_NOT_NULL (server_key);
    ASSERT_EQ (zp_state_set_str (zp_ctx_state (ctx), "k", "v"), 0);
    ASSERT_FAIL_ERRNO (zp_ctx_allow (ctx, "not a key"), EINVAL);

    //  A certificate the context did not issue: refused, quickly
    zcert_t *stranger = zcert_new ();
    ASSERT_NOT_NULL (stranger);
    int64_t start = test_now_ms ();
    ASSERT_NULL_ERRNO (zp_state_connect_cert (zp_ctx_endpoint (ctx), server_key, stranger),
                       EACCES);
    ASSERT_LT (test_now_ms () - start, test_ms (4000));

    //  Admitted (twice is harmless): in, with the certificate given or
    //  named in the environment
    ASSERT_EQ (zp_ctx_allow (ctx, zcert_public_txt (stranger)), 0);
    ASSERT_EQ (zp_ctx_allow (ctx, zcert_public_txt (stranger)), 0);
    zp_state_t *client = zp_state_connect_cert (zp_ctx_endpoint (ctx), server_key, stranger);
    ASSERT_NOT_NULL (client);
    char *value = zp_state_get_str (client, "k");
    ASSERT_STR_EQ (value, "v");
    zstr_free (&value);
    zp_state_destroy (&client);

    char path [] = "/tmp/zproc-test-certXXXXXX";
    int fd = mkstemp (path);
    ASSERT (fd >= 0);
    close (fd);
    ASSERT_EQ (zcert_save (stranger, path), 0);
    ASSERT_EQ (setenv ("ZPROC_CLIENT_CERT", path, 1), 0);
    client = zp_state_connect (zp_ctx_endpoint (ctx), server_key);
    ASSERT_NOT_NULL (client);
    zp_state_destroy (&client);
    unsetenv ("ZPROC_CLIENT_CERT");
    unlink (path);
    char *secret = zsys_sprintf ("%s_secret", path);
    unlink (secret);
    zstr_free (&secret);
    zp_ctx_destroy (&ctx);

    //  A directory of allowed certificates, as zcert_save writes them
    //  (NAME and NAME_secret: the same key twice)
    char dir [] = "/tmp/zproc-test-allowXXXXXX";
    ASSERT_NOT_NULL (mkdtemp (dir));
    char *saved = zsys_sprintf ("%s/client", dir);
    ASSERT_EQ (zcert_save (stranger, saved), 0);
    ASSERT_EQ (setenv ("ZPROC_CURVE_ALLOW", dir, 1), 0);
    ctx = zp_ctx_new ();
    unsetenv ("ZPROC_CURVE_ALLOW");
    ASSERT_NOT_NULL (ctx);
    client = zp_state_connect_cert (zp_ctx_endpoint (ctx), zp_ctx_public_key (ctx), stranger);
    ASSERT_NOT_NULL (client);
    zp_state_destroy (&client);
    zp_ctx_destroy (&ctx);
    unlink (saved);
    char *saved_secret = zsys_sprintf ("%s_secret", saved);
    unlink (saved_secret);
    rmdir (dir);
    zstr_free (&saved_secret);
    zstr_free (&saved);
    zcert_destroy (&stranger);
    return 0;
}


TEST_IMPL (security_curve_tcp)
{
    ASSERT_EQ (setenv ("ZPROC_CURVE", "1", 1), 0);
    zp_ctx_t *ctx = zp_ctx_new ();
    ASSERT_NOT_NULL (ctx);
    //  The tcp endpoint is CURVE too: a plain client is refused
    const char *endpoint = zp_ctx_bind (ctx, "tcp://127.0.0.1:*");
    ASSERT_NOT_NULL (endpoint);
    int64_t start = test_now_ms ();
    zp_state_t *plain = zp_state_connect (endpoint, NULL);
    int err = errno;
    ASSERT_NULL (plain);
    ASSERT (err == EACCES || err == ENOTCONN);
    ASSERT_LT (test_now_ms () - start, test_ms (8000));
    zcert_t *cert = zcert_new ();
    ASSERT_EQ (zp_ctx_allow (ctx, zcert_public_txt (cert)), 0);
    zp_state_t *client = zp_state_connect_cert (endpoint, zp_ctx_public_key (ctx), cert);
    ASSERT_NOT_NULL (client);
    ASSERT_EQ (zp_state_set_int (client, "over-tcp", 42), 0);
    int64_t value = 0;
    ASSERT_EQ (zp_state_get_int (zp_ctx_state (ctx), "over-tcp", &value), 0);
    ASSERT_EQ (value, 42);
    zp_state_destroy (&client);
    zcert_destroy (&cert);
    zp_ctx_destroy (&ctx);
    return 0;
}


//  Enter the network namespace name (made by `ip netns add`)
static void
s_enter_netns (const char *name)
{
    char *path = zsys_sprintf ("/var/run/netns/%s", name);
    int fd = open (path, O_RDONLY);
    if (fd < 0 || setns (fd, CLONE_NEWNET) < 0)
        _exit (20);
    close (fd);
    zstr_free (&path);
}

TEST_IMPL (security_netns_tcp)
{
    if (getuid () != 0 || !s_run ("ip -V")) {
        printf ("SKIP: network namespaces need root and iproute2\n");
        return 0;
    }
    //  Two hosts joined by a veth pair: 10.77.0.1 serves, 10.77.0.2 connects
    int id = (int) getpid ();
    char server_ns [32], client_ns [32];
    snprintf (server_ns, sizeof server_ns, "zps%d", id);
    snprintf (client_ns, sizeof client_ns, "zpc%d", id);
    bool made = s_run ("ip netns add %s", server_ns) && s_run ("ip netns add %s", client_ns)
        && s_run ("ip link add zpa%d type veth peer name zpb%d", id, id)
        && s_run ("ip link set zpa%d netns %s", id, server_ns)
        && s_run ("ip link set zpb%d netns %s", id, client_ns)
        && s_run ("ip -n %s addr add 10.77.0.1/24 dev zpa%d", server_ns, id)
        && s_run ("ip -n %s addr add 10.77.0.2/24 dev zpb%d", client_ns, id)
        && s_run ("ip -n %s link set zpa%d up", server_ns, id)
        && s_run ("ip -n %s link set zpb%d up", client_ns, id)
        && s_run ("ip -n %s link set lo up", server_ns)
        && s_run ("ip -n %s link set lo up", client_ns);
    if (!made) {
        s_run ("ip netns del %s", server_ns);
        s_run ("ip netns del %s", client_ns);
        printf ("SKIP: cannot make network namespaces here\n");
        return 0;
    }
    int report [2], done [2];
    ASSERT_EQ (pipe (report), 0);
    ASSERT_EQ (pipe (done), 0);
    pid_t server = fork ();
    ASSERT (server >= 0);
    if (server == 0) {
        //  The store's host: serve on its address, with CURVE, until told
        close (report [0]);
        close (done [1]);
        s_enter_netns (server_ns);
        setenv ("ZPROC_CURVE", "1", 1);
        zp_ctx_t *ctx = zp_ctx_new ();
        const char *endpoint = ctx? zp_ctx_bind (ctx, "tcp://10.77.0.1:*"): NULL;
        zcert_t *cert = zcert_new ();
        if (!endpoint || !cert || zp_ctx_allow (ctx, zcert_public_txt (cert)) < 0
        ||  zp_state_set_str (zp_ctx_state (ctx), "where", "server") < 0)
            _exit (21);
        //  Hand over: endpoint, store key, client certificate
        char message [512] = "";
        snprintf (message, sizeof message, "%s %s %s %s", endpoint, zp_ctx_public_key (ctx),
                  zcert_public_txt (cert), zcert_secret_txt (cert));
        ASSERT_EQ (write (report [1], message, sizeof message), (ssize_t) sizeof message);
        char byte;
        ASSERT_EQ (read (done [0], &byte, 1), 1);
        char *who = zp_state_get_str (zp_ctx_state (ctx), "where");
        int rc = who && streq (who, "client")? 0: 22;
        zstr_free (&who);
        zcert_destroy (&cert);
        zp_ctx_destroy (&ctx);
        _exit (rc);
    }
    close (report [1]);
    close (done [0]);
    char message [512];
    ASSERT_EQ (test_read_exact (report [0], message, sizeof message, test_ms (10000)), 0);
    pid_t client = fork ();
    ASSERT (client >= 0);
    if (client == 0) {
        //  Another host: not forked by the context, connects over tcp
        s_enter_netns (client_ns);
        char endpoint [256], server_key [41], public_key [41], secret_key [41];
        if (sscanf (message, "%255s %40s %40s %40s", endpoint, server_key, public_key,
                    secret_key) != 4)
            _exit (30);
        byte public_bin [32], secret_bin [32];
        zmq_z85_decode (public_bin, public_key);
        zmq_z85_decode (secret_bin, secret_key);
        zcert_t *cert = zcert_new_from (public_bin, secret_bin);
        zp_state_t *state = zp_state_connect_cert (endpoint, server_key, cert);
        if (!state)
            _exit (31);
        char *where = zp_state_get_str (state, "where");
        int rc = where && streq (where, "server")
              && zp_state_set_str (state, "where", "client") == 0? 0: 32;
        //  A plain client from this host is refused
        zp_state_t *plain = zp_state_connect (endpoint, NULL);
        if (plain)
            rc = 33;
        zp_state_destroy (&plain);
        zstr_free (&where);
        zp_state_destroy (&state);
        zcert_destroy (&cert);
        _exit (rc);
    }
    int client_rc = test_wait_child (client, test_ms (20000));
    ASSERT_EQ (write (done [1], "x", 1), 1);
    int server_rc = test_wait_child (server, test_ms (10000));
    close (report [0]);
    close (done [1]);
    s_run ("ip netns del %s", server_ns);
    s_run ("ip netns del %s", client_ns);
    ASSERT_EQ (client_rc, 0);
    ASSERT_EQ (server_rc, 0);
    return 0;
}
