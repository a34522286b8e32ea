/*
 * test_stage.c — tests of tw_serve_stage (api_level 2 remote stages).
 *
 * Most tests need no daemon: each starts tests/fake_stage_daemon.py (python3,
 * a scripted fake peer on a private socket), serves a stage against it, and
 * checks what the fake recorded. Two run contrib/c/risk_check against it.
 *
 *     ./tests/test_stage [TEST...]
 *
 * Environment:
 *   TW_STAGE_FAKE   the fake peer script (default: next to this binary)
 *   TW_RISK_CHECK   the risk_check binary (default: <repo>/contrib/c/risk_check
 *                   relative to this binary)
 *   TW_PYTHON       the Python interpreter (default python3)
 *   TW_STAGE_LIVE=1 also run live_pipeline against the live daemon at
 *                   TW_TEST_SOCKET (use tests/run.sh, or `make test-stage-live`)
 *
 * Prints one line per failed check and ends with "N passed, N failed"
 * (counted per test); exit status 1 if any test failed.
 */
#define _POSIX_C_SOURCE 200809L

#include "../tradewire.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *g_test;
static int g_test_failed;
static int g_passed, g_failed;
static char g_fake[PATH_MAX], g_risk_check[PATH_MAX];
static const char *g_python = "python3";

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            g_test_failed = 1;                                                   \
            printf("FAIL %s (%s:%d): ", g_test, __FILE__, __LINE__);             \
            printf(__VA_ARGS__);                                                 \
            printf("\n");                                                        \
            fflush(stdout);                                                      \
        }                                                                        \
    } while (0)

#define REQUIRE(cond, ...)                                                       \
    do {                                                                         \
        int ok_ = (cond) ? 1 : 0;                                                \
        CHECK(ok_, __VA_ARGS__);                                                 \
        if (!ok_)                                                                \
            goto done;                                                           \
    } while (0)

static const char *jstr(json_t *v)
{
    const char *s = json_string_value(v);
    return s ? s : "";
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Reads one line from fd into buf (up to timeout_s). Returns its length or -1. */
static int read_line(int fd, char *buf, size_t n, double timeout_s)
{
    size_t len = 0;
    double end = now_s() + timeout_s;
    while (len + 1 < n) {
        struct pollfd p = {fd, POLLIN, 0};
        int left = (int)((end - now_s()) * 1000);
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return -1;
        ssize_t r = read(fd, buf + len, 1);
        if (r <= 0)
            return -1;
        if (buf[len] == '\n')
            break;
        len++;
    }
    buf[len] = '\0';
    return (int)len;
}

/* Waits for pid up to timeout_s (then SIGKILL). Returns the wait status or -1. */
static int wait_child(pid_t pid, double timeout_s)
{
    int status;
    double end = now_s() + timeout_s;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_s() > end) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            return -1;
        }
        sleep_ms(10);
    }
}

/* ------------------------------------------------------------------------ */
/* The fake peer                                                              */

typedef struct {
    pid_t pid;
    char dir[64];
    char sock[128];
    char out[128];
} fake_peer;

/* Starts fake_stage_daemon.py SCENARIO; returns 0 once it listens. */
static int fake_start(fake_peer *f, const char *scenario)
{
    int pfd[2];
    char line[64];
    memset(f, 0, sizeof *f);
    f->pid = -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/twstage.XXXXXX");
    if (!mkdtemp(f->dir)) {
        CHECK(0, "mkdtemp: %s", strerror(errno));
        f->dir[0] = '\0';
        return -1;
    }
    snprintf(f->sock, sizeof f->sock, "%s/fake.sock", f->dir);
    snprintf(f->out, sizeof f->out, "%s/out.json", f->dir);
    if (pipe(pfd) != 0) {
        CHECK(0, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(stdout);
    f->pid = fork();
    if (f->pid < 0) {
        CHECK(0, "fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (f->pid == 0) {
        dup2(pfd[1], STDOUT_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        execlp(g_python, g_python, g_fake, "--socket", f->sock, "--scenario", scenario, "--out", f->out,
               (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    int n = read_line(pfd[0], line, sizeof line, 30.0);
    close(pfd[0]);
    if (n < 0 || strcmp(line, "ready") != 0) {
        CHECK(0, "the fake peer (%s %s) did not start", g_python, g_fake);
        return -1;
    }
    return 0;
}

/* Waits for the fake to finish and returns its record (new ref) or NULL.
 * Removes its directory. */
static json_t *fake_finish(fake_peer *f)
{
    json_t *rec = NULL;
    if (f->pid > 0) {
        int st = wait_child(f->pid, 60.0);
        CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the fake peer failed (status %d)", st);
        f->pid = -1;
        json_error_t jerr;
        rec = json_load_file(f->out, 0, &jerr);
        CHECK(rec != NULL, "cannot read the fake's record %s: %s", f->out, jerr.text);
        if (rec && !json_is_null(json_object_get(rec, "error")))
            CHECK(0, "the fake peer says: %s", jstr(json_object_get(rec, "error")));
    }
    if (f->dir[0]) {
        unlink(f->out);
        unlink(f->sock);
        rmdir(f->dir);
        f->dir[0] = '\0';
    }
    return rec;
}

static void fake_kill(fake_peer *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGKILL);
        wait_child(f->pid, 10.0);
        f->pid = -1;
    }
    json_decref(fake_finish(f));
}

/* The client's replies to our request id (in rec.received), as an array
 * (new ref). */
static json_t *replies_to(json_t *rec, const char *id)
{
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(rec, "received"), i, m) {
        if (!json_object_get(m, "method") && strcmp(jstr(json_object_get(m, "id")), id) == 0)
            json_array_append(out, m);
    }
    return out;
}

/* The one reply to id (borrowed from rec), or NULL (checked: exactly one). */
static json_t *reply_to(json_t *rec, const char *id)
{
    json_t *all = replies_to(rec, id);
    json_t *r = json_array_size(all) == 1 ? json_array_get(all, 0) : NULL;
    CHECK(r != NULL, "%zu replies to %s (want 1)", json_array_size(all), id);
    json_decref(all);
    if (r)
        CHECK(strcmp(jstr(json_object_get(r, "jsonrpc")), "2.0") == 0, "reply to %s: jsonrpc is not \"2.0\"", id);
    return r;
}

static void check_no_reply(json_t *rec, const char *id)
{
    json_t *all = replies_to(rec, id);
    CHECK(json_array_size(all) == 0, "%s got %zu replies (want none)", id, json_array_size(all));
    json_decref(all);
}

/* The first request of method in rec.received (borrowed), or NULL. */
static json_t *request_of(json_t *rec, const char *method)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(rec, "received"), i, m) {
        if (strcmp(jstr(json_object_get(m, "method")), method) == 0)
            return m;
    }
    return NULL;
}

static void check_error_reply(json_t *rec, const char *id, int code, const char *type, const char *msg_part)
{
    json_t *r = reply_to(rec, id);
    if (!r)
        return;
    json_t *e = json_object_get(r, "error");
    CHECK(json_is_object(e) && !json_object_get(r, "result"), "reply to %s is not an error", id);
    CHECK(json_integer_value(json_object_get(e, "code")) == code, "reply to %s: code %lld (want %d)", id,
          (long long)json_integer_value(json_object_get(e, "code")), code);
    CHECK(strcmp(jstr(json_object_get(json_object_get(e, "data"), "type")), type) == 0,
          "reply to %s: data.type '%s' (want %s)", id, jstr(json_object_get(json_object_get(e, "data"), "type")),
          type);
    if (msg_part)
        CHECK(strstr(jstr(json_object_get(e, "message")), msg_part) != NULL, "reply to %s: message '%s' lacks '%s'",
              id, jstr(json_object_get(e, "message")), msg_part);
}

/* ------------------------------------------------------------------------ */
/* A test stage callback driven by input.cmd                                  */

typedef struct {
    tw_client *c;
    int calls;
    int ping_ok;
    int cancel_seen;
    json_t *notes; /* notification methods seen */
} serve_state;

static void note_cb(const char *method, json_t *params, void *ud)
{
    serve_state *st = ud;
    (void)params;
    json_array_append_new(st->notes, json_string(method ? method : ""));
}

static int has_note(serve_state *st, const char *method)
{
    size_t i;
    json_t *v;
    json_array_foreach(st->notes, i, v) {
        if (strcmp(jstr(v), method) == 0)
            return 1;
    }
    return 0;
}

static json_t *test_cb(const tw_stage_call *call, void *user, tw_error *err)
{
    serve_state *st = user;
    const char *cmd = json_string_value(json_object_get(call->input, "cmd"));
    st->calls++;
    if (!cmd)
        cmd = "echo";
    if (strcmp(cmd, "fail") == 0) {
        snprintf(err->message, sizeof err->message, "the test callback fails on purpose");
        return NULL;
    }
    if (strcmp(cmd, "wait_cancel") == 0) {
        tw_error perr;
        /* a request of ours while the call is in flight; the fake answers
         * it and then cancels this call */
        if (tw_ping(st->c, &perr) == 0)
            st->ping_ok = 1;
        double end = now_s() + 30.0;
        while (now_s() < end) {
            if (tw_stage_call_cancelled(call)) {
                st->cancel_seen = 1;
                break;
            }
            sleep_ms(5);
        }
        return json_pack("{s:b}", "must_not_be_sent", 1);
    }
    if (strcmp(cmd, "sleep") == 0)
        sleep_ms(300);
    if (strcmp(cmd, "huge") == 0) {
        size_t n = 100000;
        char *s = malloc(n + 1);
        if (!s)
            return NULL;
        memset(s, 'x', n);
        s[n] = '\0';
        json_t *v = json_string(s);
        free(s);
        return v;
    }
    if (strcmp(cmd, "stop") == 0)
        tw_stop_serving(st->c);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:I, s:I, s:O?, s:b}",
                     "id", call->id, "registration", call->registration, "stage", call->stage, "name", call->name,
                     "mode", call->mode, "iteration_id", call->iteration_id, "deadline", call->deadline,
                     "iteration", (json_int_t)call->iteration, "dry_run", call->dry_run,
                     "deadline_ms_left", (json_int_t)call->deadline_ms_left,
                     "ms_left_now", (json_int_t)tw_stage_call_ms_left(call), "output", call->output,
                     "has_account", json_is_object(call->account));
}

static void state_init(serve_state *st, tw_client *c)
{
    memset(st, 0, sizeof *st);
    st->c = c;
    st->notes = json_array();
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                      */

static void test_invalid_args(void)
{
    tw_error err;
    CHECK(tw_serve_stage(NULL, "risk", "x", NULL, test_cb, NULL, &err) == -1 && err.code == TW_ERR_INVALID_ARG,
          "NULL client: code %d", err.code);
    CHECK(tw_stage_call_cancelled(NULL) == 0, "cancelled(NULL)");
    CHECK(tw_stage_call_ms_left(NULL) == -1, "ms_left(NULL)");
    CHECK(tw_stage_registration(NULL) == NULL, "registration(NULL)");
    tw_stop_serving(NULL); /* no crash */
}

/* registration params, result/error replies, -32601, cancels (running,
 * queued, finished), an over-long incoming line, a too-large result, params
 * not an object, notifications passed on, stop on `shutdown`. */
static void test_serve(void)
{
    fake_peer f;
    tw_error err;
    tw_client *c = NULL;
    json_t *rec = NULL;
    serve_state st;
    state_init(&st, NULL);
    REQUIRE(fake_start(&f, "serve") == 0, "fake");
    c = tw_connect(f.sock, &err);
    REQUIRE(c != NULL, "connect: %s", err.message);
    st.c = c;
    tw_set_max_message_size(c, 65536);
    tw_set_notification_handler(c, note_cb, &st);

    tw_stage_options o = TW_STAGE_OPTIONS_INIT;
    o.mode = "after";
    o.timeout_ms = 2500;
    o.on_failure = "fail_closed";
    o.concurrency = 1;
    o.durable = 0;
    int rc = tw_serve_stage(c, "risk", "c-test", &o, test_cb, &st, &err);
    CHECK(rc == 0, "tw_serve_stage returned %d: %d %s %s", rc, err.code, err.type, err.message);
    CHECK(tw_stage_registration(c) == NULL, "registration still set after serving");
    CHECK(has_note(&st, "event"), "the event notification did not reach the handler");
    CHECK(has_note(&st, "shutdown"), "the shutdown notification did not reach the handler");
    CHECK(!has_note(&st, "$/cancelRequest"), "$/cancelRequest leaked to the notification handler");
    CHECK(st.ping_ok, "tw_ping from inside the callback failed");
    CHECK(st.cancel_seen, "tw_stage_call_cancelled never saw the cancel of c-4");
    tw_close(c);
    c = NULL;
    rec = fake_finish(&f);
    REQUIRE(rec != NULL, "no record");

    /* registration */
    json_t *reg = request_of(rec, "register_stage");
    REQUIRE(reg != NULL, "no register_stage request");
    json_t *want = json_pack("{s:s, s:s, s:s, s:i, s:s, s:i, s:b}", "stage", "risk", "name", "c-test", "mode",
                             "after", "timeout_ms", 2500, "on_failure", "fail_closed", "concurrency", 1, "durable", 0);
    char *got = json_dumps(json_object_get(reg, "params"), JSON_SORT_KEYS | JSON_COMPACT);
    CHECK(json_equal(json_object_get(reg, "params"), want), "register_stage params %s", got);
    free(got);
    json_decref(want);
    CHECK(json_is_integer(json_object_get(reg, "id")) && strcmp(jstr(json_object_get(reg, "jsonrpc")), "2.0") == 0,
          "register_stage is not a JSON-RPC request");

    /* c-1: the result, with every call field */
    json_t *r1 = reply_to(rec, "c-1");
    if (r1) {
        json_t *res = json_object_get(r1, "result");
        CHECK(json_is_object(res) && !json_object_get(r1, "error"), "c-1: no result");
        CHECK(strcmp(jstr(json_object_get(res, "id")), "c-1") == 0, "c-1: call id '%s'",
              jstr(json_object_get(res, "id")));
        CHECK(strcmp(jstr(json_object_get(res, "registration")), "r-1") == 0, "c-1: registration");
        CHECK(strcmp(jstr(json_object_get(res, "stage")), "risk") == 0, "c-1: stage");
        CHECK(strcmp(jstr(json_object_get(res, "name")), "c-test") == 0, "c-1: name");
        CHECK(strcmp(jstr(json_object_get(res, "mode")), "after") == 0, "c-1: mode");
        CHECK(strcmp(jstr(json_object_get(res, "iteration_id")), "it-7") == 0, "c-1: iteration_id");
        CHECK(json_integer_value(json_object_get(res, "iteration")) == 7, "c-1: iteration");
        CHECK(json_is_true(json_object_get(res, "dry_run")), "c-1: dry_run");
        CHECK(json_is_true(json_object_get(res, "has_account")), "c-1: account");
        CHECK(json_array_size(json_object_get(res, "output")) == 1, "c-1: output");
        CHECK(strlen(jstr(json_object_get(res, "deadline"))) >= 20, "c-1: deadline '%s'",
              jstr(json_object_get(res, "deadline")));
        json_int_t left = json_integer_value(json_object_get(res, "deadline_ms_left"));
        json_int_t now_left = json_integer_value(json_object_get(res, "ms_left_now"));
        CHECK(left > 0 && left <= 5000, "c-1: deadline_ms_left %lld (want 0 < x <= 5000)", (long long)left);
        CHECK(now_left >= 0 && now_left <= left, "c-1: ms_left now %lld, at receipt %lld", (long long)now_left,
              (long long)left);
    }
    check_error_reply(rec, "c-2", -32000, "handler_error", "the test callback fails on purpose");
    check_error_reply(rec, "c-3", -32601, "method_not_found", "stage.bogus");
    check_no_reply(rec, "c-4"); /* cancelled while running */
    json_t *r5 = reply_to(rec, "c-5");
    CHECK(r5 && json_object_get(r5, "result"), "c-5: no result");
    check_no_reply(rec, "c-6"); /* cancelled while queued */
    json_t *r7 = reply_to(rec, "c-7");
    CHECK(r7 && json_object_get(r7, "result"), "c-7: no result");
    check_no_reply(rec, "c-8"); /* over-long: discarded */
    json_t *r9 = reply_to(rec, "c-9");
    CHECK(r9 && json_object_get(r9, "result"), "c-9: no result (serving did not survive the over-long line)");
    check_error_reply(rec, "c-10", -32000, "handler_error", "too large");
    check_error_reply(rec, "c-11", -32602, "invalid_params", NULL);
    /* run for c-1, 2, 4, 5, 7, 9, 10; not for 3 (unknown method), 6 (cancelled
     * while queued), 8 (over-long), 11 (params not an object) */
    CHECK(st.calls == 7, "callback ran %d times (want 7)", st.calls);

    /* nothing else was sent: requests register_stage and ping, replies to c-N */
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(rec, "received"), i, m) {
        const char *meth = jstr(json_object_get(m, "method"));
        const char *id = jstr(json_object_get(m, "id"));
        int ok = strcmp(meth, "register_stage") == 0 || strcmp(meth, "ping") == 0 ||
                 (!json_object_get(m, "method") && strncmp(id, "c-", 2) == 0);
        char *s = ok ? NULL : json_dumps(m, JSON_COMPACT);
        CHECK(ok, "unexpected message from the client: %.300s", s ? s : "");
        free(s);
    }
done:
    if (c)
        tw_close(c);
    if (!rec)
        fake_kill(&f);
    json_decref(rec);
    json_decref(st.notes);
}

/* register_stage refused: -1 with the daemon's code, type and message. */
static void test_refused(void)
{
    fake_peer f;
    tw_error err;
    tw_client *c = NULL;
    json_t *rec = NULL;
    REQUIRE(fake_start(&f, "refuse") == 0, "fake");
    c = tw_connect(f.sock, &err);
    REQUIRE(c != NULL, "connect: %s", err.message);
    tw_stage_options o = TW_STAGE_OPTIONS_INIT;
    o.mode = "replace";
    int rc = tw_serve_stage(c, "data", "c-data", &o, test_cb, NULL, &err);
    CHECK(rc == -1, "rc %d (want -1)", rc);
    CHECK(err.code == -32030 && strcmp(err.type, "stage_conflict") == 0, "err %d '%s'", err.code, err.type);
    CHECK(strstr(err.message, "replace group") != NULL, "message '%s'", err.message);
    CHECK(tw_is_open(c), "connection closed after a refused registration");
    CHECK(tw_stage_registration(c) == NULL, "registration set");
    tw_close(c);
    c = NULL;
    rec = fake_finish(&f);
    REQUIRE(rec != NULL, "no record");
    json_t *reg = request_of(rec, "register_stage");
    CHECK(reg && strcmp(jstr(json_object_get(json_object_get(reg, "params"), "mode")), "replace") == 0 &&
              json_object_size(json_object_get(reg, "params")) == 3,
          "register_stage params: want exactly stage, name, mode");
done:
    if (c)
        tw_close(c);
    if (!rec)
        fake_kill(&f);
    json_decref(rec);
}

/* The connection closes while serving: -1, TW_ERR_CLOSED. */
static void test_closed(void)
{
    fake_peer f;
    tw_error err;
    tw_client *c = NULL;
    json_t *rec = NULL;
    REQUIRE(fake_start(&f, "close") == 0, "fake");
    c = tw_connect(f.sock, &err);
    REQUIRE(c != NULL, "connect: %s", err.message);
    int rc = tw_serve_stage(c, "risk", "c-test", NULL, test_cb, NULL, &err);
    CHECK(rc == -1 && err.code == TW_ERR_CLOSED, "rc %d err %d %s", rc, err.code, err.message);
    tw_close(c);
    c = NULL;
    rec = fake_finish(&f);
    json_t *reg = request_of(rec, "register_stage");
    CHECK(reg && json_object_size(json_object_get(reg, "params")) == 2, "NULL options: want only stage and name");
done:
    if (c)
        tw_close(c);
    if (!rec)
        fake_kill(&f);
    json_decref(rec);
}

/* tw_stop_serving from the callback: unregister_stage, a call racing it is
 * served, one arriving after serving stopped gets -32601. */
static void test_stop(void)
{
    fake_peer f;
    tw_error err;
    tw_client *c = NULL;
    json_t *rec = NULL;
    serve_state st;
    state_init(&st, NULL);
    REQUIRE(fake_start(&f, "stop") == 0, "fake");
    c = tw_connect(f.sock, &err);
    REQUIRE(c != NULL, "connect: %s", err.message);
    st.c = c;
    int rc = tw_serve_stage(c, "risk", "c-test", NULL, test_cb, &st, &err);
    CHECK(rc == 0, "rc %d: %s", rc, err.message);
    CHECK(st.calls == 2, "callback ran %d times (want 2)", st.calls);
    CHECK(tw_ping(c, &err) == 0, "ping after serving: %s", err.message);
    tw_close(c);
    c = NULL;
    rec = fake_finish(&f);
    REQUIRE(rec != NULL, "no record");
    json_t *un = request_of(rec, "unregister_stage");
    CHECK(un && json_object_size(json_object_get(un, "params")) == 1 &&
              strcmp(jstr(json_object_get(json_object_get(un, "params"), "registration")), "r-1") == 0,
          "unregister_stage {registration: r-1} not sent");
    json_t *r1 = reply_to(rec, "c-1"), *r2 = reply_to(rec, "c-2");
    CHECK(r1 && json_object_get(r1, "result"), "c-1: no result");
    CHECK(r2 && json_object_get(r2, "result"), "c-2 (racing the unregister): no result");
    check_error_reply(rec, "c-3", -32601, "method_not_found", "stage.handle");
done:
    if (c)
        tw_close(c);
    if (!rec)
        fake_kill(&f);
    json_decref(rec);
    json_decref(st.notes);
}

/* tw_stop_serving before tw_serve_stage: returns 0, nothing sent. */
static void test_stop_before(void)
{
    fake_peer f;
    tw_error err;
    tw_client *c = NULL;
    json_t *rec = NULL;
    REQUIRE(fake_start(&f, "close") == 0, "fake");
    c = tw_connect(f.sock, &err);
    REQUIRE(c != NULL, "connect: %s", err.message);
    tw_stop_serving(c);
    CHECK(tw_serve_stage(c, "risk", "c-test", NULL, test_cb, NULL, &err) == 0, "rc: %s", err.message);
    tw_close(c);
    c = NULL;
    /* the fake complains that the client closed without registering: expected */
    if (f.pid > 0) {
        wait_child(f.pid, 60.0);
        f.pid = -1;
        json_error_t jerr;
        rec = json_load_file(f.out, 0, &jerr);
        CHECK(rec && json_array_size(json_object_get(rec, "received")) == 0, "the client sent something");
    }
    json_decref(fake_finish(&f));
done:
    if (c)
        tw_close(c);
    if (f.pid > 0)
        fake_kill(&f);
    json_decref(rec);
}

/* Runs contrib/c/risk_check with args against the "risk" scenario; returns
 * its reply to c-1 (new ref) and the signals the fake sent (*sent, new ref). */
static json_t *run_risk_check(const char *const *args, json_t **sent, json_t **reg_params)
{
    fake_peer f;
    json_t *rec = NULL, *reply = NULL;
    pid_t pid = -1;
    *sent = NULL;
    *reg_params = NULL;
    if (access(g_risk_check, X_OK) != 0) {
        CHECK(0, "%s is not built (make -C contrib/c, or set TW_RISK_CHECK)", g_risk_check);
        return NULL;
    }
    if (fake_start(&f, "risk") != 0)
        return NULL;
    char *argv[16];
    int n = 0;
    argv[n++] = g_risk_check;
    argv[n++] = "--socket";
    argv[n++] = f.sock;
    for (int i = 0; args[i] && n < 15; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDERR_FILENO); /* its per-call log lines */
        execv(g_risk_check, argv);
        _exit(127);
    }
    CHECK(pid > 0, "fork: %s", strerror(errno));
    if (pid > 0) {
        int st = wait_child(pid, 60.0);
        CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "risk_check exit status %d (want 0)",
              st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    rec = fake_finish(&f);
    if (rec) {
        json_t *r = reply_to(rec, "c-1");
        if (r) {
            reply = json_object_get(r, "result");
            json_incref(reply);
        }
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(rec, "sent"), i, m) {
            if (strcmp(jstr(json_object_get(m, "id")), "c-1") == 0)
                *sent = json_incref(json_object_get(json_object_get(m, "params"), "output"));
        }
        json_t *reg = request_of(rec, "register_stage");
        if (reg)
            *reg_params = json_incref(json_object_get(reg, "params"));
    } else {
        fake_kill(&f);
    }
    json_decref(rec);
    return reply;
}

static json_t *find_signal(json_t *list, const char *id)
{
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s) {
        if (strcmp(jstr(json_object_get(s, "id")), id) == 0)
            return s;
    }
    return NULL;
}

static void check_unchanged(json_t *out, json_t *sent, const char *id)
{
    json_t *a = find_signal(out, id), *b = find_signal(sent, id);
    CHECK(a && b && json_equal(a, b), "signal %s changed (it must pass untouched)", id);
}

static void test_risk_check_reject(void)
{
    static const char *const args[] = {NULL};
    json_t *sent, *regp;
    json_t *out = run_risk_check(args, &sent, &regp);
    json_t *want_reg = json_pack("{s:s, s:s, s:s}", "stage", "risk", "name", "c-risk-check", "mode", "after");
    CHECK(regp && json_equal(regp, want_reg), "register_stage params differ from {risk, c-risk-check, after}");
    json_decref(want_reg);
    REQUIRE(json_is_array(out) && json_array_size(out) == 5, "risk_check's result is not the 5-signal list");
    check_unchanged(out, sent, "a");
    check_unchanged(out, sent, "c");
    check_unchanged(out, sent, "d");
    json_t *b = find_signal(out, "b"), *e = find_signal(out, "e");
    CHECK(b && json_is_false(json_object_get(b, "approved")) &&
              strcmp(jstr(json_object_get(b, "rejection_reason")), "qty 150 exceeds the C risk check's limit 100") == 0,
          "b: approved/reason '%s'", jstr(json_object_get(b, "rejection_reason")));
    CHECK(b && json_integer_value(json_object_get(b, "qty")) == 150, "b: qty changed");
    CHECK(e && json_is_false(json_object_get(e, "approved")) &&
              strcmp(jstr(json_object_get(e, "rejection_reason")), "qty 120.5 exceeds the C risk check's limit 100") == 0,
          "e: reason '%s'", jstr(json_object_get(e, "rejection_reason")));
done:
    json_decref(out);
    json_decref(sent);
    json_decref(regp);
}

static void test_risk_check_clip(void)
{
    static const char *const args[] = {"--clip", "--name", "c-risk-clip", "--max-qty", "100", NULL};
    json_t *sent, *regp;
    json_t *out = run_risk_check(args, &sent, &regp);
    CHECK(regp && strcmp(jstr(json_object_get(regp, "name")), "c-risk-clip") == 0, "--name not used");
    REQUIRE(json_is_array(out) && json_array_size(out) == 5, "risk_check's result is not the 5-signal list");
    check_unchanged(out, sent, "a");
    check_unchanged(out, sent, "c");
    check_unchanged(out, sent, "d");
    json_t *b = find_signal(out, "b"), *e = find_signal(out, "e");
    REQUIRE(b && e, "signals missing");
    CHECK(json_is_true(json_object_get(b, "approved")) && json_is_null(json_object_get(b, "rejection_reason")),
          "b: no longer approved");
    CHECK(json_is_integer(json_object_get(b, "qty")) && json_integer_value(json_object_get(b, "qty")) == 100,
          "b: qty not clipped to 100");
    double ra = json_number_value(json_object_get(b, "risk_amount"));
    CHECK(ra > 199.999 && ra < 200.001, "b: risk_amount %g (want 300 * 100/150 = 200)", ra);
    CHECK(json_is_true(json_object_get(e, "approved")) && json_number_value(json_object_get(e, "qty")) == 100.0,
          "e: qty %g", json_number_value(json_object_get(e, "qty")));
    CHECK(!json_object_get(e, "risk_amount"), "e: risk_amount added");
    /* every other member of b is as sent */
    json_t *b0 = json_deep_copy(find_signal(sent, "b"));
    if (b0) {
        json_object_set(b0, "qty", json_object_get(b, "qty"));
        json_object_set(b0, "risk_amount", json_object_get(b, "risk_amount"));
        CHECK(json_equal(b0, b), "b: a member other than qty/risk_amount changed");
        json_decref(b0);
    }
done:
    json_decref(out);
    json_decref(sent);
    json_decref(regp);
}

/* ------------------------------------------------------------------------ */
/* Live (TW_STAGE_LIVE=1, needs the daemon's register_stage)                 */

#define LIVE_REASON "rejected by the C client's live stage test"

static tw_client *g_live_conn;

static void live_on_term(int sig)
{
    (void)sig;
    tw_stop_serving(g_live_conn);
}

typedef struct {
    int report_fd;
} live_state;

/* Rejects every approved signal; reports the ids it rejected on report_fd. */
static json_t *reject_all_cb(const tw_stage_call *call, void *user, tw_error *err)
{
    live_state *ls = user;
    if (!json_is_array(call->output)) {
        snprintf(err->message, sizeof err->message, "no output list");
        return NULL;
    }
    json_t *out = json_deep_copy(call->output);
    json_t *ids = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(out, i, s) {
        if (json_is_true(json_object_get(s, "approved"))) {
            json_object_set_new(s, "approved", json_false());
            json_object_set_new(s, "rejection_reason", json_string(LIVE_REASON));
            json_array_append(ids, json_object_get(s, "id"));
        }
    }
    char *line = json_dumps(ids, JSON_COMPACT);
    if (line) {
        size_t len = strlen(line);
        line[len] = '\n'; /* replaces the NUL: write len + 1 bytes */
        ssize_t w = write(ls->report_fd, line, len + 1);
        (void)w;
        free(line);
    }
    json_decref(ids);
    return out;
}

static void test_live_pipeline(void)
{
    const char *sock = getenv("TW_TEST_SOCKET");
    tw_error err;
    tw_client *b = NULL;
    json_t *run = NULL, *ours = json_array();
    int pfd[2] = {-1, -1};
    pid_t pid = -1;
    char name[64];
    REQUIRE(sock && *sock, "TW_TEST_SOCKET is not set (run through tests/run.sh)");
    snprintf(name, sizeof name, "c-live-%ld", (long)getpid());
    REQUIRE(pipe(pfd) == 0, "pipe");
    fflush(stdout);
    pid = fork();
    REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        close(pfd[0]);
        live_state ls = {pfd[1]};
        g_live_conn = tw_connect(sock, &err);
        if (!g_live_conn)
            _exit(3);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = live_on_term;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        tw_stage_options o = TW_STAGE_OPTIONS_INIT;
        o.mode = "after";
        int rc = tw_serve_stage(g_live_conn, "risk", name, &o, reject_all_cb, &ls, &err);
        if (rc < 0)
            fprintf(stderr, "live stage: %d %s %s\n", err.code, err.type, err.message);
        tw_close(g_live_conn);
        close(pfd[1]);
        json_decref(ours);
        exit(rc == 0 ? 0 : 1);
    }
    close(pfd[1]);
    pfd[1] = -1;

    b = tw_connect(sock, &err);
    REQUIRE(b != NULL, "connect: %s", err.message);
    /* wait until the group has its member */
    int registered = 0, child_status = 0;
    for (double end = now_s() + 20.0; !registered && now_s() < end;) {
        if (waitpid(pid, &child_status, WNOHANG) == pid) {
            pid = -1;
            REQUIRE(0, "the serving child exited (status %d) before registering; its stderr says why", child_status);
        }
        json_t *st = tw_call(b, "get_status", NULL, 10000, &err);
        size_t i;
        json_t *g;
        json_array_foreach(json_object_get(json_object_get(st, "stages"), "risk"), i, g) {
            if (strcmp(jstr(json_object_get(g, "name")), name) == 0 &&
                json_integer_value(json_object_get(g, "members")) >= 1)
                registered = 1;
        }
        json_decref(st);
        if (!registered)
            sleep_ms(50);
    }
    REQUIRE(registered, "get_status.stages.risk never listed %s with a member", name);

    json_t *p = json_pack("{s:b, s:i}", "dry_run", 1, "timeout_ms", 120000);
    run = tw_call(b, "run_pipeline", p, 180000, &err);
    json_decref(p);
    REQUIRE(run != NULL, "run_pipeline: %d %s %s", err.code, err.type, err.message);

    /* the ids our callback rejected (one line per call) */
    char line[65536];
    int calls = 0;
    while (read_line(pfd[0], line, sizeof line, calls ? 0.2 : 2.0) >= 0) {
        json_t *ids = json_loads(line, 0, NULL);
        json_array_extend(ours, ids);
        json_decref(ids);
        calls++;
    }
    json_t *validated = json_object_get(run, "validated_signals");
    json_t *approved = json_object_get(run, "approved_signals");
    json_t *rejected = json_object_get(run, "rejected_signals");
    CHECK(json_is_array(approved) && json_array_size(approved) == 0, "%zu approved signals (want 0)",
          json_array_size(approved));
    printf("# %s: %zu validated, %zu rejected (%zu by our stage in %d call(s)), %zu approved\n", g_test,
           json_array_size(validated), json_array_size(rejected), json_array_size(ours), calls,
           json_array_size(approved));
    if (json_array_size(validated) > 0)
        CHECK(calls >= 1, "%zu validated signals but the stage was never called", json_array_size(validated));
    else
        printf("# %s: note: no validated signals this iteration, so the check is vacuous\n", g_test);
    size_t i;
    json_t *s;
    json_array_foreach(rejected, i, s) {
        int mine = 0;
        size_t k;
        json_t *id;
        json_array_foreach(ours, k, id) {
            if (json_equal(id, json_object_get(s, "id")))
                mine = 1;
        }
        const char *reason = jstr(json_object_get(s, "rejection_reason"));
        if (mine)
            CHECK(strcmp(reason, LIVE_REASON) == 0, "signal %s: reason '%s'", jstr(json_object_get(s, "id")), reason);
        else if (json_number_value(json_object_get(s, "qty")) > 0)
            /* qty > 0 and rejected by the built-in agent before us: allowed,
             * but it must not have been approved when we saw it */
            CHECK(strcmp(reason, LIVE_REASON) != 0, "signal %s carries our reason but we never rejected it",
                  jstr(json_object_get(s, "id")));
    }
    json_array_foreach(ours, i, s) {
        int found = 0;
        size_t k;
        json_t *r;
        json_array_foreach(rejected, k, r) {
            if (json_equal(s, json_object_get(r, "id")))
                found = 1;
        }
        CHECK(found, "signal %s we rejected is not in rejected_signals", jstr(s));
    }
    int handler_ok = 0;
    json_array_foreach(json_object_get(run, "handlers"), i, s) {
        if (strcmp(jstr(json_object_get(s, "name")), name) == 0 &&
            strcmp(jstr(json_object_get(s, "outcome")), "ok") == 0)
            handler_ok = 1;
    }
    if (calls > 0)
        CHECK(handler_ok, "run_pipeline.handlers has no {name: %s, outcome: ok}", name);
done:
    if (pid > 0) {
        kill(pid, SIGTERM);
        int st = wait_child(pid, 30.0);
        CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the serving child exited with status %d", st);
    }
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    tw_close(b);
    json_decref(run);
    json_decref(ours);
}

/* ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    void (*fn)(void);
    int live;
} test_case;

static void path_next_to(char *out, size_t n, const char *argv0, const char *rel)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", argv0);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    if (snprintf(out, n, "%s/%s", dir, rel) >= (int)n)
        out[0] = '\0';
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        {"invalid_args", test_invalid_args, 0},
        {"serve", test_serve, 0},
        {"refused", test_refused, 0},
        {"closed", test_closed, 0},
        {"stop", test_stop, 0},
        {"stop_before", test_stop_before, 0},
        {"risk_check_reject", test_risk_check_reject, 0},
        {"risk_check_clip", test_risk_check_clip, 0},
        {"live_pipeline", test_live_pipeline, 1},
    };
    const char *e;
    if ((e = getenv("TW_STAGE_FAKE")) && *e)
        snprintf(g_fake, sizeof g_fake, "%s", e);
    else
        path_next_to(g_fake, sizeof g_fake, argv[0], "fake_stage_daemon.py");
    if ((e = getenv("TW_RISK_CHECK")) && *e)
        snprintf(g_risk_check, sizeof g_risk_check, "%s", e);
    else
        path_next_to(g_risk_check, sizeof g_risk_check, argv[0], "../../../contrib/c/risk_check");
    if ((e = getenv("TW_PYTHON")) && *e)
        g_python = e;
    int live = (e = getenv("TW_STAGE_LIVE")) && strcmp(e, "1") == 0;
    signal(SIGPIPE, SIG_IGN);

    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (argc > 1) {
            int want = 0;
            for (int a = 1; a < argc; a++)
                if (strcmp(argv[a], tests[i].name) == 0)
                    want = 1;
            if (!want)
                continue;
        }
        if (tests[i].live && !live) {
            printf("# %s: not run (set TW_STAGE_LIVE=1; needs a daemon with register_stage: make test-stage-live)\n",
                   tests[i].name);
            continue;
        }
        g_test = tests[i].name;
        g_test_failed = 0;
        tests[i].fn();
        if (g_test_failed)
            g_failed++;
        else
            g_passed++;
    }
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
