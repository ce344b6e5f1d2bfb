/*  =========================================================================
    tree - a supervision tree: group strategies at two levels

    main supervises "app" and "logger" one_for_all: if either dies, both
    restart. "app" is itself a supervisor (a worker with its own context,
    zp_worker_ctx) of "app.db", "app.cache" and "app.web", rest_for_one: a
    worker that dies restarts with those spawned after it, which depend on
    it, while those before it keep running. Every worker is permanent. The
    parent kills workers from outside and reads, from the process notices
    every level publishes ($proc/NAME/pid), who was restarted:

        tree: main (one_for_all) -> app, logger; app (rest_for_one) -> app.db, app.cache, app.web
        kill app.cache: restarted app.cache app.web; kept app logger app.db
        kill logger: restarted app logger app.db app.cache app.web; kept (none)
    =========================================================================
*/

#include <zproc/zproc.h>

//  Every worker of the tree, in the order the report lists them
static const char *s_names [] = { "app", "logger", "app.db", "app.cache", "app.web" };
#define TREE_SIZE   5

//  A leaf: serves until it is told to stop
static void
s_leaf (zp_worker_t *self, void *props)
{
    zmsg_t *msg;
    while ((msg = zp_worker_recv (self, -1)))
        zmsg_destroy (&msg);
}

//  "app": supervises its three children, rest_for_one
static void
s_app (zp_worker_t *self, void *props)
{
    zp_ctx_t *children = zp_worker_ctx (self);
    if (!children)
        return;
    zp_ctx_set_strategy (children, ZP_STRATEGY_REST_FOR_ONE);
    zp_ctx_set_restart (children, ZP_RESTART_PERMANENT);
    zp_ctx_set_backoff (children, 10, 100);
    zp_worker_spawn (self, "app.db", s_leaf, NULL);
    zp_worker_spawn (self, "app.cache", s_leaf, NULL);
    zp_worker_spawn (self, "app.web", s_leaf, NULL);
    s_leaf (self, props);
    //  Returning stops app.db, app.cache and app.web with app's context
}

//  The pid of a running worker, from its notices; waits until it runs with
//  a pid other than old (0: any)
static pid_t
s_running_pid (zp_state_t *state, const char *name, pid_t old)
{
    char pid_key [128], status_key [128];
    snprintf (pid_key, sizeof pid_key, "$proc/%s/pid", name);
    snprintf (status_key, sizeof status_key, "$proc/%s/status", name);
    for (int attempt = 0; attempt < 500; attempt++) {
        int64_t pid = 0;
        char *status = zp_state_get_str (state, status_key);
        bool running = status && streq (status, "running");
        zstr_free (&status);
        if (running && zp_state_get_int (state, pid_key, &pid) == 0 && pid != old)
            return (pid_t) pid;
        zclock_sleep (20);
    }
    return old;
}

//  Kill one worker, wait until it runs again, then say who was restarted
//  with it and who kept running. A group restart stops every worker it
//  takes along before it restarts any, so once the victim runs again the
//  others were either stopped (their pid changes) or left alone.
static void
s_kill_and_report (zp_state_t *state, pid_t *pids, int victim)
{
    kill (pids [victim], SIGKILL);
    pids [victim] = s_running_pid (state, s_names [victim], pids [victim]);
    char restarted [256] = "", kept [256] = "";
    for (int index = 0; index < TREE_SIZE; index++) {
        char key [128];
        snprintf (key, sizeof key, "$proc/%s/status", s_names [index]);
        char *status = zp_state_get_str (state, key);
        int64_t pid = 0;
        snprintf (key, sizeof key, "$proc/%s/pid", s_names [index]);
        zp_state_get_int (state, key, &pid);
        bool same = index != victim && status && streq (status, "running")
                 && pid == pids [index];
        zstr_free (&status);
        if (!same && index != victim)
            pids [index] = s_running_pid (state, s_names [index], pids [index]);
        char *list = same? kept: restarted;
        size_t used = strlen (list);
        snprintf (list + used, 256 - used, " %s", s_names [index]);
    }
    printf ("kill %s: restarted%s; kept%s\n", s_names [victim], restarted,
            *kept? kept: " (none)");
}

int
main (void)
{
    zp_ctx_t *ctx = zp_ctx_new ();
    if (!ctx)
        return 1;
    zp_state_t *state = zp_ctx_state (ctx);
    zp_ctx_set_strategy (ctx, ZP_STRATEGY_ONE_FOR_ALL);
    zp_ctx_set_restart (ctx, ZP_RESTART_PERMANENT);
    zp_ctx_set_backoff (ctx, 10, 100);
    zp_ctx_set_grace (ctx, 500);
    if (!zp_ctx_spawn (ctx, "app", s_app, NULL) || !zp_ctx_spawn (ctx, "logger", s_leaf, NULL))
        return 1;
    pid_t pids [TREE_SIZE];
    for (int index = 0; index < TREE_SIZE; index++)
        pids [index] = s_running_pid (state, s_names [index], 0);
    printf ("tree: main (one_for_all) -> app, logger; "
            "app (rest_for_one) -> app.db, app.cache, app.web\n");
    s_kill_and_report (state, pids, 3);
    s_kill_and_report (state, pids, 1);
    zp_ctx_destroy (&ctx);
    return 0;
}
