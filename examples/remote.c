/*  =========================================================================
    remote - a client of another program, over tcp:// with CURVE

    The server side makes a context with CURVE on (ZPROC_CURVE=1), serves
    its store on tcp://127.0.0.1 (a free port), issues a certificate for
    one outside client and admits it (zp_ctx_allow), and saves it where the
    client can read it. Then it starts the client: this very program again,
    as a separate process (it could run on another host: it needs only the
    endpoint, the store's public key and its certificate). The client
    connects with zp_state_connect_cert (or zp_state_connect with
    ZPROC_CLIENT_CERT naming the file), works with the state, and shows
    that a stranger without an admitted certificate is refused.

        client: connected to the store with an admitted certificate
        client: visits is now 1
        client: a stranger without an admitted certificate is refused
        server: the client says "hello over tcp"

    Run as: remote (the server, which starts the client itself), or
    remote client ENDPOINT SERVER_PUBLIC_KEY CERTIFICATE_FILE.
    =========================================================================
*/

#include <zproc/zproc.h>
#include <sys/wait.h>

static int
s_client (const char *endpoint, const char *server_key, const char *cert_file)
{
    zcert_t *cert = zcert_load (cert_file);     //  Reads CERTIFICATE_FILE_secret
    zp_state_t *state = cert? zp_state_connect_cert (endpoint, server_key, cert): NULL;
    if (!state) {
        fprintf (stderr, "client: cannot connect: %s\n", zp_strerror (errno));
        zcert_destroy (&cert);
        return 1;
    }
    printf ("client: connected to the store with an admitted certificate\n");
    int64_t visits = 0;
    if (zp_state_incr (state, "visits", 1, &visits) == 0)
        printf ("client: visits is now %" PRId64 "\n", visits);
    zp_state_set_str (state, "greeting", "hello over tcp");
    zp_state_destroy (&state);

    //  Knowing the server's public key is not enough: a fresh certificate
    //  is refused (EACCES, or ENOTCONN once the timeout runs out)
    zcert_t *stranger = zcert_new ();
    zp_state_t *refused = zp_state_connect_cert (endpoint, server_key, stranger);
    if (!refused && (errno == EACCES || errno == ENOTCONN))
        printf ("client: a stranger without an admitted certificate is refused\n");
    zp_state_destroy (&refused);
    zcert_destroy (&stranger);
    zcert_destroy (&cert);
    fflush (stdout);
    return 0;
}

static int
s_server (const char *self_path)
{
    setenv ("ZPROC_CURVE", "1", 1);                     //  Before zp_ctx_new
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx) {
        fprintf (stderr, "server: zp_ctx_new: %s\n", zp_strerror (errno));
        return 1;
    }
    int rc = 1;
    zcert_t *cert = zcert_new ();
    const char *tmpdir = getenv ("TMPDIR");
    char *dir = zsys_sprintf ("%s/remote-XXXXXX", tmpdir && *tmpdir? tmpdir: "/tmp");
    char *cert_file = NULL;
    const char *endpoint = zp_ctx_bind (ctx, "tcp://127.0.0.1:*");
    if (!endpoint || !cert || !dir || !mkdtemp (dir)) {
        fprintf (stderr, "server: %s\n", zp_strerror (errno));
        goto done;
    }
    //  The client's certificate: admitted here, handed over as a file (with
    //  its secret part, in a directory only we can read)
    cert_file = zsys_sprintf ("%s/client.cert", dir);
    if (zp_ctx_allow (ctx, zcert_public_txt (cert)) < 0 || zcert_save (cert, cert_file) < 0) {
        fprintf (stderr, "server: cannot admit the client: %s\n", zp_strerror (errno));
        goto done;
    }
    fflush (stdout);
    pid_t pid = fork ();
    if (pid == 0) {
        execl (self_path, self_path, "client", endpoint, zp_ctx_public_key (ctx), cert_file,
               (char *) NULL);
        _exit (127);
    }
    int status = 0;
    while (pid > 0 && waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    char *greeting = zp_state_get_str (zp_ctx_state (ctx), "greeting");
    if (pid > 0 && WIFEXITED (status) && WEXITSTATUS (status) == 0 && greeting) {
        printf ("server: the client says \"%s\"\n", greeting);
        rc = 0;
    }
    zstr_free (&greeting);
done:
    if (cert_file) {
        char *secret = zsys_sprintf ("%s_secret", cert_file);
        unlink (secret);
        unlink (cert_file);
        zstr_free (&secret);
        zstr_free (&cert_file);
    }
    if (dir)
        rmdir (dir);
    zstr_free (&dir);
    zcert_destroy (&cert);
    zp_ctx_destroy (&ctx);
    return rc;
}

int
main (int argc, char *argv [])
{
    if (argc == 5 && streq (argv [1], "client"))
        return s_client (argv [2], argv [3], argv [4]);
    if (argc == 1)
        return s_server ("/proc/self/exe");
    fprintf (stderr, "usage: remote | remote client ENDPOINT SERVER_KEY CERTIFICATE_FILE\n");
    return 2;
}
