/*
 * test_client.c — tests of libtradewire against a LIVE tradewired.
 *
 * Run through tests/run.sh (starts the daemon on a unique socket and sets
 * TW_TEST_SOCKET, TW_TEST_STORAGE and TW_TEST_TRADEWIRED), or by hand against a
 * running daemon:
 *     TW_TEST_SOCKET=/path/to/sock ./tests/test_client
 * (identity_across_restarts, which starts daemons of its own, then needs
 * TW_TEST_TRADEWIRED=/abs/path/to/tradewired, else it is skipped).
 * Prints one line per failed check and ends with "N passed, N failed"
 * (counted per test); exit status 1 if any test failed.
 */
#if defined(__linux__)
#define _GNU_SOURCE /* unshare, CLONE_NEWNS */
#else
#define _POSIX_C_SOURCE 200809L
#endif

#include "../tradewire.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#endif

static const char *g_sock;
static const char *g_test;
static int g_test_failed;
static int g_passed, g_failed;
static int g_unique;

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

/* CHECK, and leave the test when it fails */
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

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void unique_type(char *buf, size_t n, const char *what)
{
    snprintf(buf, n, "ctest.%s.%ld.%d", what, (long)getpid(), ++g_unique);
}

static tw_client *connect_live(void)
{
    tw_error err;
    tw_client *c = tw_connect(g_sock, &err);
    if (!c) {
        g_test_failed = 1;
        printf("FAIL %s: cannot connect to %s: %s\n", g_test, g_sock, err.message);
    }
    return c;
}

/* Collects notifications delivered to a handler. */
typedef struct {
    json_t *events;   /* array of params objects of "event" notifications */
    json_t *others;   /* array of {"method", "params"} of other notifications */
    tw_client *nested; /* if set, the callback calls tw_ping on it */
    int nested_ok;
} collector;

static void collect_cb(const char *method, json_t *params, void *ud)
{
    collector *col = ud;
    if (method && strcmp(method, "event") == 0) {
        json_array_append(col->events, params);
    } else {
        json_array_append_new(col->others,
                              json_pack("{s:s, s:O?}", "method", method ? method : "",
                                        "params", params));
    }
    if (col->nested) {
        tw_error err;
        if (tw_ping(col->nested, &err) == 0)
            col->nested_ok++;
    }
}

static void collector_init(collector *col)
{
    memset(col, 0, sizeof *col);
    col->events = json_array();
    col->others = json_array();
}

static void collector_free(collector *col)
{
    json_decref(col->events);
    json_decref(col->others);
}

/* Polls c until col has at least n events or timeout_s elapsed. */
static void wait_events(tw_client *c, collector *col, size_t n, double timeout_s)
{
    double end = now_s() + timeout_s;
    while (json_array_size(col->events) < n && now_s() < end) {
        tw_error err;
        if (tw_poll(c, 100, &err) < 0 && !tw_is_open(c))
            break;
    }
}

static json_t *sample_data(void)
{
    return json_pack("{s:s, s:i, s:f, s:b, s:n, s:[i,s,{s:s}], s:s}",
                     "symbol", "SPY", "qty", 42, "price", 412.5, "ok", 1,
                     "nothing", "list", 1, "two", "three", "3",
                     "unicode", "caf\xc3\xa9 \xe2\x82\xac \\ \" / \t line\nbreak");
}

/* ------------------------------------------------------------------------ */

static void test_default_socket_path(void)
{
    char buf[512], expect[512];
    char *save_tw = getenv("TRADEWIRE_SOCKET") ? strdup(getenv("TRADEWIRE_SOCKET")) : NULL;
    char *save_xdg = getenv("XDG_RUNTIME_DIR") ? strdup(getenv("XDG_RUNTIME_DIR")) : NULL;

    setenv("TRADEWIRE_SOCKET", "/some/where/tw.sock", 1);
    setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
    int n = tw_default_socket_path(buf, sizeof buf);
    CHECK(n == (int)strlen("/some/where/tw.sock") && strcmp(buf, "/some/where/tw.sock") == 0,
          "TRADEWIRE_SOCKET wins: got %d '%s'", n, buf);

    unsetenv("TRADEWIRE_SOCKET");
    n = tw_default_socket_path(buf, sizeof buf);
    CHECK(n > 0 && strcmp(buf, "/run/user/4242/tradewire.sock") == 0, "XDG_RUNTIME_DIR: got '%s'", buf);

    setenv("TRADEWIRE_SOCKET", "", 1); /* empty counts as unset */
    n = tw_default_socket_path(buf, sizeof buf);
    CHECK(n > 0 && strcmp(buf, "/run/user/4242/tradewire.sock") == 0, "empty TRADEWIRE_SOCKET: got '%s'", buf);

    setenv("XDG_RUNTIME_DIR", "/run/user/4242/", 1);
    n = tw_default_socket_path(buf, sizeof buf);
    CHECK(n > 0 && strcmp(buf, "/run/user/4242/tradewire.sock") == 0, "XDG with trailing slash: got '%s'", buf);

    unsetenv("TRADEWIRE_SOCKET");
    unsetenv("XDG_RUNTIME_DIR");
    snprintf(expect, sizeof expect, "/tmp/tradewire-%lu/tradewire.sock", (unsigned long)getuid());
    n = tw_default_socket_path(buf, sizeof buf);
    CHECK(n == (int)strlen(expect) && strcmp(buf, expect) == 0, "fallback: got '%s' want '%s'", buf, expect);

    setenv("XDG_RUNTIME_DIR", "", 1);
    n = tw_default_socket_path(buf, sizeof buf);
    CHECK(n > 0 && strcmp(buf, expect) == 0, "empty XDG_RUNTIME_DIR: got '%s'", buf);

    n = tw_default_socket_path(buf, 10);
    CHECK(n == -1 && strlen(buf) == 9, "too small buffer: got %d", n);
    CHECK(tw_default_socket_path(NULL, 0) == -1, "NULL buffer");

    if (save_tw) setenv("TRADEWIRE_SOCKET", save_tw, 1); else unsetenv("TRADEWIRE_SOCKET");
    if (save_xdg) setenv("XDG_RUNTIME_DIR", save_xdg, 1); else unsetenv("XDG_RUNTIME_DIR");
    free(save_tw);
    free(save_xdg);
}

static void test_connect_missing(void)
{
    tw_error err;
    char path[128];
    snprintf(path, sizeof path, "/tmp/tw-missing-%ld-nope.sock", (long)getpid());
    tw_client *c = tw_connect(path, &err);
    CHECK(c == NULL, "connect to missing socket succeeded");
    CHECK(err.code == TW_ERR_CONNECT, "code %d, want TW_ERR_CONNECT", err.code);
    CHECK(strcmp(err.type, "connect_failed") == 0, "type '%s'", err.type);
    CHECK(tw_error_is_local(err.code), "not local");
    CHECK(strstr(err.message, path) != NULL, "message lacks path: %s", err.message);
    tw_close(c);

    char longp[300];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    c = tw_connect(longp, &err);
    CHECK(c == NULL && err.code == TW_ERR_CONNECT, "too long path: code %d", err.code);
    tw_close(c);
}

static void test_ping(void)
{
    tw_error err;
    tw_client *c = connect_live();
    if (!c)
        return;
    json_t *r = tw_call(c, "ping", NULL, 5000, &err);
    REQUIRE(r != NULL, "ping failed: %d %s %s", err.code, err.type, err.message);
    CHECK(err.code == 0, "err.code %d on success", err.code);
    CHECK(json_is_true(json_object_get(r, "pong")), "pong is not true");
    json_decref(r);

    json_t *empty = json_object();
    r = tw_call(c, "ping", empty, 5000, &err);
    CHECK(r && json_is_true(json_object_get(r, "pong")), "ping {} failed: %s", err.message);
    json_decref(r);
    json_decref(empty);

    json_t *arr = json_array();
    r = tw_call(c, "ping", arr, 5000, &err);
    CHECK(r && json_is_true(json_object_get(r, "pong")), "ping [] failed: %s", err.message);
    json_decref(r);
    json_decref(arr);

    CHECK(tw_ping(c, &err) == 0, "tw_ping: %s", err.message);
done:
    tw_close(c);
}

static void test_publish_seq(void)
{
    tw_error err;
    char type[128];
    unique_type(type, sizeof type, "seq");
    tw_client *c = connect_live();
    if (!c)
        return;
    json_int_t prev = 0;
    for (int i = 0; i < 3; i++) {
        json_t *d = json_pack("{s:i}", "i", i);
        json_int_t seq = -1;
        int rc = tw_publish(c, type, d, NULL, &seq, &err);
        json_decref(d);
        REQUIRE(rc == 0, "publish %d: %d %s", i, err.code, err.message);
        CHECK(seq >= 1, "seq %lld < 1", (long long)seq);
        CHECK(seq > prev, "seq %lld not > previous %lld", (long long)seq, (long long)prev);
        prev = seq;
    }
    /* full result shape */
    json_t *p = json_pack("{s:s}", "event_type", type);
    json_t *r = tw_call(c, "publish", p, 5000, &err);
    json_decref(p);
    REQUIRE(r != NULL, "publish via tw_call: %s", err.message);
    CHECK(json_integer_value(json_object_get(r, "seq")) > prev, "seq not increasing");
    CHECK(json_is_string(json_object_get(r, "event_type")) &&
              strcmp(json_string_value(json_object_get(r, "event_type")), type) == 0,
          "event_type not echoed");
    CHECK(json_is_string(json_object_get(r, "timestamp")), "no timestamp");
    CHECK(json_is_integer(json_object_get(r, "subscribers")) &&
              json_integer_value(json_object_get(r, "subscribers")) == 0,
          "subscribers != 0 for a fresh type");
    json_decref(r);
done:
    tw_close(c);
}

static void test_subscribe_then_publish(void)
{
    tw_error err;
    char type[128], sid[64];
    collector col;
    collector_init(&col);
    unique_type(type, sizeof type, "sub");
    tw_client *sub = connect_live();
    tw_client *pub = connect_live();
    json_t *data = sample_data();
    json_t *meta = json_pack("{s:s}", "source", "test_client");
    if (!sub || !pub)
        goto done;
    tw_set_notification_handler(sub, collect_cb, &col);
    REQUIRE(tw_subscribe(sub, type, -1, sid, sizeof sid, &err) == 0, "subscribe: %s", err.message);
    CHECK(strncmp(sid, "s-", 2) == 0, "subscription id '%s' does not start with s-", sid);

    json_int_t seq = 0;
    REQUIRE(tw_publish(pub, type, data, meta, &seq, &err) == 0, "publish: %s", err.message);
    wait_events(sub, &col, 1, 5.0);
    REQUIRE(json_array_size(col.events) == 1, "got %zu events, want 1", json_array_size(col.events));
    json_t *params = json_array_get(col.events, 0);
    json_t *ev = json_object_get(params, "event");
    CHECK(strcmp(jstr(json_object_get(params, "subscription")), sid) == 0,
          "subscription id mismatch");
    CHECK(json_integer_value(json_object_get(ev, "seq")) == seq, "event seq != published seq");
    CHECK(strcmp(jstr(json_object_get(ev, "event_type")), type) == 0, "event_type mismatch");
    CHECK(json_equal(json_object_get(ev, "data"), data), "data differs from what was published");
    CHECK(json_is_string(json_object_get(ev, "timestamp")), "no timestamp");
    CHECK(json_is_string(json_object_get(json_object_get(ev, "metadata"), "source")), "metadata.source lost");
    if (!json_equal(json_object_get(ev, "data"), data)) {
        char *s = json_dumps(ev, JSON_COMPACT);
        printf("     got event: %s\n", s);
        free(s);
    }
    CHECK(json_array_size(col.others) == 0, "unexpected other notifications");
done:
    json_decref(data);
    json_decref(meta);
    tw_close(sub);
    tw_close(pub);
    collector_free(&col);
}

/* subscribe and publish on ONE connection: the event may arrive while tw_call
 * waits for the publish response; it must be dispatched exactly once. */
static void test_same_connection(void)
{
    tw_error err;
    char type[128], sid[64], sid2[64];
    collector col;
    collector_init(&col);
    unique_type(type, sizeof type, "same");
    tw_client *c = connect_live();
    json_t *data = json_pack("{s:[i,i,i]}", "v", 1, 2, 3);
    if (!c)
        goto done;
    tw_set_notification_handler(c, collect_cb, &col);
    REQUIRE(tw_subscribe(c, type, -1, sid, sizeof sid, &err) == 0, "subscribe: %s", err.message);
    REQUIRE(tw_subscribe(c, type, -1, sid2, sizeof sid2, &err) == 0, "subscribe again: %s", err.message);
    CHECK(strcmp(sid, sid2) == 0, "same pattern twice gave %s and %s", sid, sid2);
    json_int_t seq;
    for (int i = 0; i < 5; i++)
        REQUIRE(tw_publish(c, type, data, NULL, &seq, &err) == 0, "publish: %s", err.message);
    wait_events(c, &col, 5, 5.0);
    tw_poll(c, 200, &err); /* anything extra would show up now */
    CHECK(json_array_size(col.events) == 5, "got %zu events, want 5", json_array_size(col.events));
    json_int_t prev = 0;
    for (size_t i = 0; i < json_array_size(col.events); i++) {
        json_t *ev = json_object_get(json_array_get(col.events, i), "event");
        json_int_t s = json_integer_value(json_object_get(ev, "seq"));
        CHECK(s > prev, "events out of order");
        prev = s;
        CHECK(json_equal(json_object_get(ev, "data"), data), "data differs");
    }
    CHECK(prev == seq, "last event seq %lld != last publish seq %lld", (long long)prev, (long long)seq);

    /* unsubscribe: 1 removed, then 0; no more events */
    int n = tw_unsubscribe(c, sid, &err);
    CHECK(n == 1, "unsubscribe removed %d (%s)", n, err.message);
    n = tw_unsubscribe(c, sid, &err);
    CHECK(n == 0, "second unsubscribe removed %d (%s)", n, err.message);
    REQUIRE(tw_publish(c, type, data, NULL, &seq, &err) == 0, "publish: %s", err.message);
    tw_poll(c, 200, &err);
    CHECK(json_array_size(col.events) == 5, "event delivered after unsubscribe");

    /* unsubscribe by pattern */
    REQUIRE(tw_subscribe(c, type, -1, sid, sizeof sid, &err) == 0, "subscribe: %s", err.message);
    n = tw_unsubscribe_pattern(c, type, &err);
    CHECK(n == 1, "unsubscribe by pattern removed %d (%s)", n, err.message);
done:
    json_decref(data);
    tw_close(c);
    collector_free(&col);
}

/* since_seq replay, read with the queue (no handler) */
static void test_since_seq_queue(void)
{
    tw_error err;
    char type[128];
    unique_type(type, sizeof type, "since");
    tw_client *c = connect_live();
    json_int_t seqs[3];
    if (!c)
        return;
    for (int i = 0; i < 3; i++) {
        json_t *d = json_integer(100 + i);
        int rc = tw_publish(c, type, d, NULL, &seqs[i], &err);
        json_decref(d);
        REQUIRE(rc == 0, "publish: %s", err.message);
    }
    REQUIRE(tw_subscribe(c, type, seqs[0] - 1, NULL, 0, &err) == 0, "subscribe since: %s", err.message);
    double end = now_s() + 5.0;
    while (tw_pending_notifications(c) < 3 && now_s() < end) {
        int n = tw_poll(c, 100, &err);
        if (n < 0)
            break;
    }
    REQUIRE(tw_pending_notifications(c) == 3, "queued %zu, want 3", tw_pending_notifications(c));
    for (int i = 0; i < 3; i++) {
        json_t *m = tw_next_notification(c);
        REQUIRE(m != NULL, "no notification %d", i);
        json_t *ev = json_object_get(json_object_get(m, "params"), "event");
        CHECK(strcmp(jstr(json_object_get(m, "method")), "event") == 0, "method not event");
        CHECK(json_integer_value(json_object_get(ev, "seq")) == seqs[i], "replayed seq mismatch at %d", i);
        CHECK(json_integer_value(json_object_get(ev, "data")) == 100 + i, "replayed data mismatch at %d", i);
        json_decref(m);
    }
    CHECK(tw_next_notification(c) == NULL, "queue not empty");
done:
    tw_close(c);
}

static void test_method_not_found(void)
{
    tw_error err;
    tw_client *c = connect_live();
    if (!c)
        return;
    json_t *r = tw_call(c, "no_such_method_xyz", NULL, 5000, &err);
    CHECK(r == NULL, "unknown method returned a result");
    CHECK(err.code == -32601, "code %d, want -32601", err.code);
    CHECK(strcmp(err.type, "method_not_found") == 0, "type '%s'", err.type);
    CHECK(!tw_error_is_local(err.code), "reported as local");
    json_decref(r);
    CHECK(tw_ping(c, &err) == 0, "connection unusable after an RPC error");
    tw_close(c);
}

static void test_invalid_params(void)
{
    tw_error err;
    tw_client *c = connect_live();
    if (!c)
        return;
    json_t *p = json_pack("{s:i}", "data", 1);
    json_t *r = tw_call(c, "publish", p, 5000, &err);
    json_decref(p);
    CHECK(r == NULL, "publish without event_type succeeded");
    CHECK(err.code == -32602, "code %d, want -32602", err.code);
    CHECK(strcmp(err.type, "invalid_params") == 0, "type '%s'", err.type);
    json_t *data = tw_last_error_data(c);
    CHECK(json_is_array(json_object_get(data, "errors")), "data.errors is not a list");
    json_decref(r);

    /* unknown parameter name */
    p = json_pack("{s:s, s:i}", "event_type", "ctest.x", "bogus_param", 1);
    r = tw_call(c, "publish", p, 5000, &err);
    json_decref(p);
    CHECK(r == NULL && err.code == -32602 && strcmp(err.type, "invalid_params") == 0,
          "unknown param: code %d type '%s'", err.code, err.type);
    json_decref(r);

    /* convenience path reports the same */
    CHECK(tw_subscribe(c, "bad pattern with spaces", -1, NULL, 0, &err) == -1 && err.code == -32602,
          "bad pattern: code %d", err.code);
    tw_close(c);
}

/* A listening socket that never accepts or answers: deterministic timeout. */
static void test_timeout(void)
{
    tw_error err;
    char path[108];
    snprintf(path, sizeof path, "/tmp/tw-silent-%ld.sock", (long)getpid());
    unlink(path);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    tw_client *c = NULL, *live = NULL;
    REQUIRE(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(lfd, 4) == 0,
            "cannot create silent server: %s", strerror(errno));
    c = tw_connect(path, &err);
    REQUIRE(c != NULL, "connect to silent server: %s", err.message);
    double t0 = now_s();
    json_t *r = tw_call(c, "ping", NULL, 150, &err);
    double dt = now_s() - t0;
    CHECK(r == NULL, "got a result from a silent server");
    CHECK(err.code == TW_ERR_TIMEOUT && strcmp(err.type, "timeout") == 0, "code %d type %s", err.code, err.type);
    CHECK(dt >= 0.14 && dt < 2.0, "timeout took %.3f s, want ~0.15", dt);
    CHECK(tw_is_open(c), "connection closed after a timeout");
    json_decref(r);
    r = tw_call(c, "ping", NULL, 0, &err);
    CHECK(r == NULL && err.code == TW_ERR_TIMEOUT, "timeout 0: code %d", err.code);
    json_decref(r);

    /* live daemon: a slow call with a short timeout; afterwards the late
     * response is discarded and the connection keeps working. */
    live = connect_live();
    if (live) {
        json_t *p = json_pack("{s:b}", "dry_run", 1);
        r = tw_call(live, "run_pipeline", p, 1, &err);
        json_decref(p);
        if (r == NULL)
            CHECK(err.code == TW_ERR_TIMEOUT || err.code <= -32000, "run_pipeline: unexpected code %d", err.code);
        json_decref(r);
        json_t *q = tw_call(live, "ping", NULL, 30000, &err);
        CHECK(q && json_is_true(json_object_get(q, "pong")), "ping after timeout: %s", err.message);
        json_decref(q);
        CHECK(tw_ping(live, &err) == 0, "second ping after timeout: %s", err.message);
    }
done:
    tw_close(c);
    tw_close(live);
    if (lfd >= 0)
        close(lfd);
    unlink(path);
}

static void test_event_history(void)
{
    tw_error err;
    char type[128];
    unique_type(type, sizeof type, "hist");
    tw_client *c = connect_live();
    json_int_t seqs[3];
    if (!c)
        return;
    for (int i = 0; i < 3; i++) {
        json_t *d = json_pack("{s:i}", "n", i);
        int rc = tw_publish(c, type, d, NULL, &seqs[i], &err);
        json_decref(d);
        REQUIRE(rc == 0, "publish: %s", err.message);
    }
    json_t *p = json_pack("{s:s, s:i}", "event_type", type, "limit", 2);
    json_t *r = tw_call(c, "get_event_history", p, 5000, &err);
    json_decref(p);
    REQUIRE(r != NULL, "get_event_history: %d %s", err.code, err.message);
    json_t *evs = json_object_get(r, "events");
    CHECK(json_is_array(evs) && json_array_size(evs) == 2, "want 2 events (limit keeps the last N)");
    for (size_t i = 0; i < json_array_size(evs) && i < 2; i++) {
        json_t *e = json_array_get(evs, i);
        CHECK(json_integer_value(json_object_get(e, "seq")) == seqs[i + 1], "history seq %zu mismatch", i);
        CHECK(json_integer_value(json_object_get(json_object_get(e, "data"), "n")) == (json_int_t)i + 1,
              "history data %zu mismatch", i);
        CHECK(json_is_integer(json_object_get(e, "subscriber_count")), "no subscriber_count");
        CHECK(strcmp(jstr(json_object_get(e, "data_type")), "object") == 0, "data_type not object");
    }
    json_t *oldest = json_object_get(r, "oldest_seq"), *newest = json_object_get(r, "newest_seq");
    CHECK(json_is_integer(oldest) && json_integer_value(oldest) <= seqs[0], "oldest_seq");
    CHECK(json_is_integer(newest) && json_integer_value(newest) >= seqs[2], "newest_seq");
    CHECK(json_is_integer(json_object_get(r, "capacity")), "capacity");
    json_decref(r);

    p = json_pack("{s:s, s:b}", "event_type", type, "include_data", 0);
    r = tw_call(c, "get_event_history", p, 5000, &err);
    json_decref(p);
    REQUIRE(r != NULL, "get_event_history include_data false: %s", err.message);
    evs = json_object_get(r, "events");
    CHECK(json_array_size(evs) == 3, "want 3 events, got %zu", json_array_size(evs));
    CHECK(json_object_get(json_array_get(evs, 0), "data") == NULL, "include_data false kept data");
    json_decref(r);
done:
    tw_close(c);
}

static void test_get_status(void)
{
    tw_error err;
    tw_client *c = connect_live();
    if (!c)
        return;
    json_t *r = tw_call(c, "get_status", NULL, 5000, &err);
    CHECK(r != NULL, "get_status: %s", err.message);
    CHECK(json_integer_value(json_object_get(r, "api_level")) == TW_API_LEVEL, "api_level != %d", TW_API_LEVEL);
    json_decref(r);
    tw_close(c);
}

/* Large events (buffer growth) and a client max message size below them. */
static void test_large_messages(void)
{
    tw_error err;
    char type[128];
    collector col;
    collector_init(&col);
    unique_type(type, sizeof type, "big");
    tw_client *sub = connect_live(), *pub = connect_live();
    size_t big = 300 * 1024;
    char *s = malloc(big + 1);
    memset(s, 'x', big);
    s[big] = '\0';
    json_t *bigdata = json_pack("{s:s}", "blob", s);
    json_t *small = json_pack("{s:i}", "small", 1);
    if (!sub || !pub)
        goto done;
    tw_set_notification_handler(sub, collect_cb, &col);
    REQUIRE(tw_subscribe(sub, type, -1, NULL, 0, &err) == 0, "subscribe: %s", err.message);
    REQUIRE(tw_publish(pub, type, bigdata, NULL, NULL, &err) == 0, "publish big: %s", err.message);
    wait_events(sub, &col, 1, 5.0);
    REQUIRE(json_array_size(col.events) == 1, "big event not received");
    CHECK(json_equal(json_object_get(json_object_get(json_array_get(col.events, 0), "event"), "data"), bigdata),
          "big data differs");

    tw_set_max_message_size(sub, 4096);
    REQUIRE(tw_publish(pub, type, bigdata, NULL, NULL, &err) == 0, "publish big: %s", err.message);
    double end = now_s() + 5.0;
    int rc = 0;
    while (now_s() < end && (rc = tw_poll(sub, 100, &err)) == 0)
        ;
    CHECK(rc == -1 && err.code == TW_ERR_TOO_LARGE, "over-long line: rc %d code %d", rc, err.code);
    CHECK(tw_is_open(sub), "connection closed after an over-long line");
    REQUIRE(tw_publish(pub, type, small, NULL, NULL, &err) == 0, "publish small: %s", err.message);
    wait_events(sub, &col, 2, 5.0);
    CHECK(json_array_size(col.events) == 2, "small event after an over-long one: %zu events", json_array_size(col.events));
    CHECK(tw_ping(sub, &err) == 0, "ping after over-long line: %s", err.message);
done:
    free(s);
    json_decref(bigdata);
    json_decref(small);
    tw_close(sub);
    tw_close(pub);
    collector_free(&col);
}

/* The callback may call tw_call on the same client (nested call). */
static void test_nested_call_in_callback(void)
{
    tw_error err;
    char type[128];
    collector col;
    collector_init(&col);
    unique_type(type, sizeof type, "nest");
    tw_client *c = connect_live();
    if (!c)
        goto done;
    col.nested = c;
    tw_set_notification_handler(c, collect_cb, &col);
    REQUIRE(tw_subscribe(c, type, -1, NULL, 0, &err) == 0, "subscribe: %s", err.message);
    for (int i = 0; i < 3; i++)
        REQUIRE(tw_publish(c, type, NULL, NULL, NULL, &err) == 0, "publish: %s", err.message);
    wait_events(c, &col, 3, 5.0);
    CHECK(json_array_size(col.events) == 3, "got %zu events", json_array_size(col.events));
    CHECK(col.nested_ok == 3, "nested pings ok: %d", col.nested_ok);
    CHECK(json_is_null(json_object_get(json_object_get(json_array_get(col.events, 0), "event"), "data")),
          "data should default to null");
done:
    tw_close(c);
    collector_free(&col);
}

/* Framing, offline: a fake daemon that answers with CRLF, blank lines, a
 * notification, a stray response and an id-null error. */
static void test_framing_offline(void)
{
    tw_error err;
    char path[108];
    snprintf(path, sizeof path, "/tmp/tw-fake-%ld.sock", (long)getpid());
    unlink(path);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0), afd = -1;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    tw_client *c = NULL;
    json_t *r = NULL;
    REQUIRE(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(lfd, 4) == 0,
            "cannot create fake server");
    c = tw_connect(path, &err);
    REQUIRE(c != NULL, "connect: %s", err.message);
    afd = accept(lfd, NULL, NULL);
    REQUIRE(afd >= 0, "accept");
    const char *canned =
        "\r\n\n   \n"
        "{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{\"k\":1}}\r\n"
        "{\"jsonrpc\":\"2.0\",\"id\":999,\"result\":{\"stray\":true}}\n"
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"ok\":true}}\r\n";
    const char *idnull =
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32600,\"message\":\"too big\",\"data\":{\"type\":\"message_too_large\"}}}\n";
    REQUIRE(write(afd, canned, strlen(canned)) == (ssize_t)strlen(canned), "write canned");
    r = tw_call(c, "ping", NULL, 2000, &err);
    REQUIRE(r != NULL, "call 1: %d %s", err.code, err.message);
    CHECK(json_is_true(json_object_get(r, "ok")), "wrong result for id 1");
    CHECK(tw_pending_notifications(c) == 1, "notification not queued: %zu", tw_pending_notifications(c));
    json_decref(r);
    r = NULL;
    REQUIRE(write(afd, idnull, strlen(idnull)) == (ssize_t)strlen(idnull), "write id-null error");
    r = tw_call(c, "ping", NULL, 2000, &err); /* id 2: answered by the id-null error */
    CHECK(r == NULL && err.code == -32600 && strcmp(err.type, "message_too_large") == 0,
          "id-null error: code %d type %s", err.code, err.type);
    json_decref(r);
    r = NULL;

    /* the requests we sent are compact single lines */
    char buf[4096];
    ssize_t n = read(afd, buf, sizeof buf - 1);
    REQUIRE(n > 0, "read requests");
    buf[n] = '\0';
    CHECK(strcmp(buf, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n"
                      "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n") == 0,
          "requests on the wire: %s", buf);

    /* invalid JSON fails the waiting call with a protocol error, then EOF */
    const char *bad = "{not json}\n";
    REQUIRE(write(afd, bad, strlen(bad)) == (ssize_t)strlen(bad), "write bad");
    r = tw_call(c, "ping", NULL, 2000, &err);
    CHECK(r == NULL && err.code == TW_ERR_PROTOCOL, "bad JSON: code %d", err.code);
    json_decref(r);
    r = NULL;
    close(afd);
    afd = -1;
    r = tw_call(c, "ping", NULL, 2000, &err);
    CHECK(r == NULL && (err.code == TW_ERR_CLOSED || err.code == TW_ERR_IO), "after EOF: code %d", err.code);
    CHECK(!tw_is_open(c), "still open after EOF");
    /* the queued notification survives and can be taken */
    json_t *m = tw_next_notification(c);
    CHECK(m && json_integer_value(json_object_get(json_object_get(m, "params"), "k")) == 1, "queued notification");
    json_decref(m);
    tw_close(c);

    /* a daemon refusing the peer: one id-null -32020 line, then close */
    c = tw_connect(path, &err);
    REQUIRE(c != NULL, "connect: %s", err.message);
    afd = accept(lfd, NULL, NULL);
    REQUIRE(afd >= 0, "accept");
    const char *forbidden =
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32020,\"message\":\"forbidden\",\"data\":{\"type\":\"forbidden\"}}}\n";
    REQUIRE(write(afd, forbidden, strlen(forbidden)) == (ssize_t)strlen(forbidden), "write forbidden");
    close(afd);
    afd = -1;
    r = tw_call(c, "ping", NULL, 2000, &err);
    CHECK(r == NULL && err.code == -32020 && strcmp(err.type, "forbidden") == 0,
          "forbidden: code %d type '%s' (%s)", err.code, err.type, err.message);
done:
    json_decref(r);
    tw_close(c);
    if (afd >= 0)
        close(afd);
    if (lfd >= 0)
        close(lfd);
    unlink(path);
}

/* ------------------------------------------------------------------------ */
/* Never talk to an impostor                                                  */

#define NOBODY_UID 65534

/* A listening socket at path that never accepts (non-blocking), or -1. */
static int listen_at(const char *path)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 8) != 0) {
        close(fd);
        return -1;
    }
    (void)fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* 1 when no connection is pending on the listening socket fd. */
static int nobody_connected(int fd)
{
    int a = accept(fd, NULL, NULL);
    if (a >= 0) {
        close(a);
        return 0;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK;
}

/* tw_check_socket_dir on directories under a private temporary parent. */
static void test_check_socket_dir(void)
{
    tw_error err;
    char parent[] = "/tmp/twcdir.XXXXXX", dir[128], real[128], file[128];
    unsigned long me = (unsigned long)getuid();
    char want[256];
    REQUIRE(mkdtemp(parent) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(dir, sizeof dir, "%s/tradewire-%lu", parent, me);
    snprintf(real, sizeof real, "%s/real", parent);
    snprintf(file, sizeof file, "%s/file", parent);

    CHECK(tw_check_socket_dir(dir, &err) == -1 && err.code == TW_ERR_CONNECT, "missing: code %d", err.code);
    snprintf(want, sizeof want, "no daemon: socket directory %s does not exist (is tradewired running?)", dir);
    CHECK(strcmp(err.message, want) == 0, "missing: message '%s'", err.message);

    REQUIRE(mkdir(dir, 0700) == 0 && chmod(dir, 0755) == 0, "mkdir: %s", strerror(errno));
    CHECK(tw_check_socket_dir(dir, &err) == -1 && err.code == TW_ERR_UNSAFE_DIR, "0755: code %d", err.code);
    CHECK(strcmp(err.type, "unsafe_socket_dir") == 0 && tw_error_is_local(err.code), "0755: type '%s'", err.type);
    snprintf(want, sizeof want, "refusing %s: mode 0755, expected 0700", dir);
    CHECK(strncmp(err.message, want, strlen(want)) == 0, "0755: message '%s'", err.message);

    REQUIRE(chmod(dir, 0700) == 0, "chmod: %s", strerror(errno));
    CHECK(tw_check_socket_dir(dir, &err) == 0 && err.code == 0, "0700 of ours refused: %s", err.message);

    if (me == 0) {
        REQUIRE(chown(dir, NOBODY_UID, (gid_t)-1) == 0, "chown: %s", strerror(errno));
        CHECK(tw_check_socket_dir(dir, &err) == -1 && err.code == TW_ERR_UNSAFE_DIR, "nobody's: code %d", err.code);
        snprintf(want, sizeof want, "refusing %s: owned by uid %d, not 0", dir, NOBODY_UID);
        CHECK(strncmp(err.message, want, strlen(want)) == 0, "nobody's: message '%s'", err.message);
    }
    REQUIRE(rmdir(dir) == 0, "rmdir: %s", strerror(errno));

    REQUIRE(mkdir(real, 0700) == 0 && chmod(real, 0700) == 0 && symlink(real, dir) == 0, "symlink: %s", strerror(errno));
    CHECK(tw_check_socket_dir(dir, &err) == -1 && err.code == TW_ERR_UNSAFE_DIR, "symlink: code %d", err.code);
    snprintf(want, sizeof want, "refusing %s: is a symlink", dir);
    CHECK(strncmp(err.message, want, strlen(want)) == 0, "symlink: message '%s'", err.message);
    unlink(dir);

    int f = open(file, O_CREAT | O_WRONLY, 0600);
    if (f >= 0)
        close(f);
    CHECK(tw_check_socket_dir(file, &err) == -1 && err.code == TW_ERR_UNSAFE_DIR &&
              strstr(err.message, "is not a directory") != NULL,
          "file: code %d '%s'", err.code, err.message);
    CHECK(tw_check_socket_dir(NULL, &err) == -1 && err.code == TW_ERR_INVALID_ARG, "NULL dir: code %d", err.code);
done:
    unlink(file);
    unlink(dir);
    rmdir(dir);
    rmdir(real);
    rmdir(parent);
}

/* tw_connect(NULL) with /tmp/tradewire-$UID as the directory: missing, 0755,
 * a symlink, another user's, and finally a good one. Leaves nothing behind. */
static void default_dir_scenarios(void)
{
    tw_error err;
    char dir[64], sock[96], real[64], realsock[96], want[256];
    unsigned long me = (unsigned long)getuid();
    int lfd = -1;
    tw_client *c = NULL;
    snprintf(dir, sizeof dir, "/tmp/tradewire-%lu", me);
    snprintf(sock, sizeof sock, "%s/tradewire.sock", dir);
    snprintf(real, sizeof real, "/tmp/twc-real-%ld", (long)getpid());
    snprintf(realsock, sizeof realsock, "%s/tradewire.sock", real);
    unsetenv("TRADEWIRE_SOCKET");
    unsetenv("XDG_RUNTIME_DIR");

    c = tw_connect(NULL, &err);
    CHECK(c == NULL && err.code == TW_ERR_CONNECT, "missing dir: code %d", err.code);
    snprintf(want, sizeof want, "no daemon: socket directory %s does not exist (is tradewired running?)", dir);
    CHECK(strcmp(err.message, want) == 0, "missing dir: message '%s'", err.message);
    tw_close(c);
    c = NULL;

    /* (a) mode 0755, with a listener inside: never connected to */
    REQUIRE(mkdir(dir, 0700) == 0 && chmod(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
    lfd = listen_at(sock);
    REQUIRE(lfd >= 0, "listen at %s: %s", sock, strerror(errno));
    c = tw_connect(NULL, &err);
    CHECK(c == NULL && err.code == TW_ERR_UNSAFE_DIR && strcmp(err.type, "unsafe_socket_dir") == 0,
          "0755: code %d type '%s'", err.code, err.type);
    snprintf(want, sizeof want, "refusing %s: mode 0755, expected 0700", dir);
    CHECK(strncmp(err.message, want, strlen(want)) == 0, "0755: message '%s'", err.message);
    CHECK(nobody_connected(lfd), "0755: the client connected anyway");
    tw_close(c);
    c = NULL;

    /* another user's directory */
    if (me == 0) {
        REQUIRE(chmod(dir, 0700) == 0 && chown(dir, NOBODY_UID, (gid_t)-1) == 0, "chown: %s", strerror(errno));
        c = tw_connect(NULL, &err);
        snprintf(want, sizeof want, "refusing %s: owned by uid %d, not 0", dir, NOBODY_UID);
        CHECK(c == NULL && err.code == TW_ERR_UNSAFE_DIR && strncmp(err.message, want, strlen(want)) == 0,
              "nobody's: code %d '%s'", err.code, err.message);
        CHECK(nobody_connected(lfd), "nobody's: the client connected anyway");
        tw_close(c);
        c = NULL;
        REQUIRE(chown(dir, (uid_t)me, (gid_t)-1) == 0, "chown back: %s", strerror(errno));
    }

    /* the good case: 0700 and ours; the listener (us) passes the peer check */
    REQUIRE(chmod(dir, 0700) == 0, "chmod: %s", strerror(errno));
    c = tw_connect(NULL, &err);
    CHECK(c != NULL && strcmp(tw_socket_path(c), sock) == 0, "0700 of ours: %d %s", err.code, err.message);
    CHECK(!nobody_connected(lfd), "0700 of ours: no connection arrived");
    tw_close(c);
    c = NULL;
    close(lfd);
    lfd = -1;
    unlink(sock);
    REQUIRE(rmdir(dir) == 0, "rmdir %s: %s", dir, strerror(errno));

    /* (b) a symlink to a good-looking directory */
    REQUIRE(mkdir(real, 0700) == 0 && chmod(real, 0700) == 0 && symlink(real, dir) == 0,
            "symlink: %s", strerror(errno));
    lfd = listen_at(realsock);
    REQUIRE(lfd >= 0, "listen at %s: %s", realsock, strerror(errno));
    c = tw_connect(NULL, &err);
    snprintf(want, sizeof want, "refusing %s: is a symlink", dir);
    CHECK(c == NULL && err.code == TW_ERR_UNSAFE_DIR && strncmp(err.message, want, strlen(want)) == 0,
          "symlink: code %d '%s'", err.code, err.message);
    CHECK(nobody_connected(lfd), "symlink: the client connected anyway");
done:
    tw_close(c);
    if (lfd >= 0)
        close(lfd);
    unlink(sock);
    unlink(realsock);
    unlink(dir); /* the symlink */
    rmdir(dir);
    rmdir(real);
}

/* The default-directory rules end to end, without touching the real
 * /tmp/tradewire-$UID: in a child process with a private mount namespace and
 * a fresh tmpfs on /tmp. Where that is not allowed, on the real /tmp only if
 * /tmp/tradewire-$UID does not exist (else those checks are skipped:
 * test_check_socket_dir still covers the rules). */
static void test_default_dir_checks(void)
{
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int isolated = 0;
#if defined(__linux__)
        if (unshare(CLONE_NEWNS) == 0 && mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == 0 &&
            mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") == 0)
            isolated = 1;
#endif
        if (!isolated) {
            char dir[64];
            struct stat st;
            snprintf(dir, sizeof dir, "/tmp/tradewire-%lu", (unsigned long)getuid());
            if (lstat(dir, &st) == 0) {
                printf("# %s: SKIP the end-to-end part: no private /tmp here and %s exists\n", g_test, dir);
                fflush(stdout);
                _exit(0);
            }
        }
        default_dir_scenarios();
        fflush(stdout);
        _exit(g_test_failed ? 1 : 0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the checks in the child failed (status %d)", status);
done:
    return;
}

/* (c) an impostor: a server run as nobody (runuser + python3) on a socket in a
 * directory anyone can write to. It prints "ready" once listening, then
 * "conn N" for each connection (N = bytes received). */
static const char *FAKE_SERVER =
    "import os, socket, sys\n"
    "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
    "s.bind(sys.argv[1])\n"
    "os.chmod(sys.argv[1], 0o777)\n"
    "s.listen(8)\n"
    "print('ready', os.getuid(), flush=True)\n"
    "while True:\n"
    "    c, _ = s.accept()\n"
    "    c.settimeout(3.0)\n"
    "    n = 0\n"
    "    try:\n"
    "        while True:\n"
    "            b = c.recv(65536)\n"
    "            if not b:\n"
    "                break\n"
    "            n += len(b)\n"
    "    except OSError:\n"
    "        pass\n"
    "    c.close()\n"
    "    print('conn', n, flush=True)\n";

/* Reads one line from fd into buf (up to 10 s). Returns its length or -1. */
static int read_line(int fd, char *buf, size_t n)
{
    size_t len = 0;
    double end = now_s() + 10.0;
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

static void test_impostor_peer(void)
{
    tw_error err;
    char dir[] = "/tmp/twcfake.XXXXXX", path[128], line[128];
    int pfd[2] = {-1, -1};
    pid_t pid = -1;
    tw_client *c = NULL;
    char *save_tw = NULL;
    if (getuid() != 0) {
        printf("# %s: SKIP: starting a server as nobody needs root\n", g_test);
        return;
    }
    save_tw = getenv("TRADEWIRE_SOCKET") ? strdup(getenv("TRADEWIRE_SOCKET")) : NULL;
    REQUIRE(mkdtemp(dir) != NULL && chmod(dir, 0777) == 0, "mkdtemp: %s", strerror(errno));
    snprintf(path, sizeof path, "%s/fake.sock", dir);
    REQUIRE(pipe(pfd) == 0, "pipe: %s", strerror(errno));
    fflush(stdout);
    pid = fork();
    REQUIRE(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(pfd[1], STDOUT_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDERR_FILENO);
        }
        execlp("runuser", "runuser", "-u", "nobody", "--", "python3", "-c", FAKE_SERVER, path, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    pfd[1] = -1;
    REQUIRE(read_line(pfd[0], line, sizeof line) > 0 && strncmp(line, "ready ", 6) == 0,
            "the fake server (runuser -u nobody -- python3) did not start");
    REQUIRE(strcmp(line, "ready 0") != 0, "the fake server runs as root");

    c = tw_connect(path, &err);
    CHECK(c == NULL, "connected to a server run by nobody");
    CHECK(err.code == TW_ERR_UNTRUSTED_PEER && strcmp(err.type, "untrusted_peer") == 0 && tw_error_is_local(err.code),
          "code %d type '%s'", err.code, err.type);
    CHECK(strstr(err.message, path) != NULL && strstr(err.message, "uid 65534") != NULL, "message '%s'", err.message);
    tw_close(c);
    c = NULL;

    /* the same through TRADEWIRE_SOCKET (every path gets the peer check) */
    setenv("TRADEWIRE_SOCKET", path, 1);
    c = tw_connect(NULL, &err);
    CHECK(c == NULL && err.code == TW_ERR_UNTRUSTED_PEER, "via TRADEWIRE_SOCKET: code %d", err.code);
    tw_close(c);
    c = NULL;

    for (int i = 0; i < 2; i++) {
        int n = read_line(pfd[0], line, sizeof line);
        CHECK(n > 0 && strcmp(line, "conn 0") == 0, "connection %d: the fake server says '%s' (want 'conn 0')",
              i + 1, n > 0 ? line : "nothing");
    }
done:
    if (save_tw)
        setenv("TRADEWIRE_SOCKET", save_tw, 1);
    else
        unsetenv("TRADEWIRE_SOCKET");
    free(save_tw);
    tw_close(c);
    if (pid > 0) {
        kill(pid, SIGTERM);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    unlink(path);
    rmdir(dir);
}

/* The live daemon (our uid) passes the peer check. */
static void test_own_daemon_peer(void)
{
    tw_error err;
    tw_client *c = tw_connect(g_sock, &err);
    CHECK(c != NULL, "connect to our own daemon: %d %s", err.code, err.message);
    CHECK(c && tw_ping(c, &err) == 0, "ping: %s", err.message);
    tw_close(c);
}

/* ---- the daemon's identity: tw_get_identity and the resume rule -------- */

/* The daemon tests/run.sh started, in the storage TW_TEST_STORAGE chose (run.sh
 * exports it): tw_get_identity agrees with get_status. */
static void test_identity(void)
{
    tw_error err;
    char jid[TW_ID_SIZE], iid[TW_ID_SIZE], small[8];
    const char *mode = getenv("TW_TEST_STORAGE");
    json_t *st = NULL;
    tw_client *c = connect_live();
    if (!c)
        return;
    st = tw_call(c, "get_status", NULL, 5000, &err);
    REQUIRE(st != NULL, "get_status: %s", err.message);
    const char *want_j = jstr(json_object_get(json_object_get(st, "journal"), "journal_id"));
    const char *want_i = jstr(json_object_get(st, "instance_id"));
    memset(jid, 'x', sizeof jid);
    memset(iid, 'x', sizeof iid);
    int rc = tw_get_identity(c, jid, sizeof jid, iid, sizeof iid, &err);
    CHECK(rc == (*want_j ? 1 : 0) && err.code == 0, "rc %d (journal_id '%s'): %d %s", rc, want_j, err.code,
          err.message);
    CHECK(strcmp(jid, want_j) == 0, "journal_id '%s', get_status says '%s'", jid, want_j);
    CHECK(*iid && strcmp(iid, want_i) == 0, "instance_id '%s', get_status says '%s'", iid, want_i);
    if (mode && strcmp(mode, "ephemeral") == 0)
        CHECK(rc == 0 && jid[0] == '\0', "TW_TEST_STORAGE=ephemeral: rc %d journal_id '%s'", rc, jid);
    else if (mode && strcmp(mode, "journal") == 0)
        CHECK(rc == 1 && jid[0] != '\0', "TW_TEST_STORAGE=journal: rc %d journal_id '%s'", rc, jid);

    /* NULL buffers: only the return value */
    CHECK(tw_get_identity(c, NULL, 0, NULL, 0, &err) == rc, "NULL buffers: %d %s", err.code, err.message);
    CHECK(tw_get_identity(c, NULL, 0, iid, sizeof iid, &err) == rc && strcmp(iid, want_i) == 0,
          "instance_id only: '%s'", iid);
    /* a buffer too small: -1, the id truncated */
    CHECK(tw_get_identity(c, NULL, 0, small, sizeof small, &err) == -1 && err.code == TW_ERR_INVALID_ARG &&
              strlen(small) == sizeof small - 1 && strncmp(small, want_i, sizeof small - 1) == 0,
          "small buffer: code %d '%s' '%s'", err.code, small, err.message);
    CHECK(tw_get_identity(c, NULL, 0, small, 0, &err) == -1 && err.code == TW_ERR_INVALID_ARG, "size 0: code %d",
          err.code);
    CHECK(tw_get_identity(NULL, jid, sizeof jid, NULL, 0, &err) == -1 && err.code == TW_ERR_INVALID_ARG,
          "NULL client: code %d", err.code);
    CHECK(tw_ping(c, &err) == 0, "ping afterwards: %s", err.message);
done:
    json_decref(st);
    tw_close(c);
}

/* A daemon of the test's own: TW_TEST_TRADEWIRED (run.sh exports it) with its
 * storage given explicitly (so TW_TEST_STORAGE does not apply). */
typedef struct {
    pid_t pid;
    char sock[108];
    char log[128];
} own_daemon;

/* Starts it on d->sock with ARG1 [ARG2] (--data-dir DIR, or --ephemeral) and
 * waits (30 s at most) for its "listening on" line. 0, or -1 (printed). */
static int own_daemon_start(own_daemon *d, const char *arg1, const char *arg2)
{
    const char *bin = getenv("TW_TEST_TRADEWIRED");
    char want[160], buf[8192];
    snprintf(want, sizeof want, "listening on %s", d->sock);
    d->pid = -1;
    unlink(d->log);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        printf("FAIL %s: fork: %s\n", g_test, strerror(errno));
        g_test_failed = 1;
        return -1;
    }
    if (pid == 0) {
#if defined(__linux__)
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the tests */
#endif
        int in = open("/dev/null", O_RDONLY), out = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || out < 0)
            _exit(127);
        dup2(in, STDIN_FILENO);
        dup2(out, STDOUT_FILENO);
        dup2(out, STDERR_FILENO);
        execl(bin, bin, "--socket", d->sock, "--seed", "42", "--log-level", "warning", arg1, arg2, (char *)NULL);
        _exit(127);
    }
    d->pid = pid;
    double end = now_s() + 30.0;
    while (now_s() < end) {
        FILE *f = fopen(d->log, "r");
        size_t n = 0;
        if (f) {
            n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
        }
        buf[n] = '\0';
        if (strstr(buf, want))
            return 0;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            d->pid = -1;
            printf("FAIL %s: %s %s %s exited (status %d) before listening: %s\n", g_test, bin, arg1,
                   arg2 ? arg2 : "", status, buf);
            g_test_failed = 1;
            return -1;
        }
        sleep_ms(50);
    }
    printf("FAIL %s: no '%s' within 30 s: %s\n", g_test, want, buf);
    g_test_failed = 1;
    return -1;
}

/* SIGTERM, 15 s, then SIGKILL. Returns its exit status (-1 if it had to be
 * killed or was not running). */
static int own_daemon_stop(own_daemon *d)
{
    int status = 0;
    if (d->pid <= 0)
        return -1;
    kill(d->pid, SIGTERM);
    double end = now_s() + 15.0;
    pid_t r;
    while ((r = waitpid(d->pid, &status, WNOHANG)) == 0 && now_s() < end)
        sleep_ms(50);
    if (r == 0) {
        kill(d->pid, SIGKILL);
        while (waitpid(d->pid, &status, 0) < 0 && errno == EINTR)
            ;
        d->pid = -1;
        return -1;
    }
    d->pid = -1;
    return r == -1 ? -1 : (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* rm -rf dir */
static void remove_tree(const char *dir)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", "--", dir, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
}

/* tw_get_identity across daemons of its own, each pinned to its storage:
 * journal_id stays the same across a restart on the same data dir, differs for
 * another data dir and is absent with --ephemeral; instance_id is new at every
 * start. And the resume rule end to end: events published while the client was
 * away come back exactly once with since_seq = the last seq it had. */
static void test_identity_across_restarts(void)
{
    tw_error err;
    char dir[] = "/tmp/twcid.XXXXXX", data1[64], data2[64], type[128];
    char j1[TW_ID_SIZE], i1[TW_ID_SIZE], j2[TW_ID_SIZE], i2[TW_ID_SIZE], j3[TW_ID_SIZE], i3[TW_ID_SIZE];
    char j4[TW_ID_SIZE], i4[TW_ID_SIZE];
    own_daemon d;
    tw_client *c = NULL;
    collector col;
    json_int_t last = -1, seq = -1;
    int made = 0, rc;
    collector_init(&col);
    memset(&d, 0, sizeof d);
    d.pid = -1;
    if (!getenv("TW_TEST_TRADEWIRED") || !*getenv("TW_TEST_TRADEWIRED")) {
        printf("# %s: SKIP: TW_TEST_TRADEWIRED (the daemon binary) is not set; tests/run.sh sets it\n", g_test);
        goto done;
    }
    REQUIRE(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
    made = 1;
    snprintf(d.sock, sizeof d.sock, "%s/d.sock", dir);
    snprintf(d.log, sizeof d.log, "%s/daemon.log", dir);
    snprintf(data1, sizeof data1, "%s/data1", dir);
    snprintf(data2, sizeof data2, "%s/data2", dir);
    unique_type(type, sizeof type, "resume");

    /* a journal in data1: three events, remember the last seq */
    REQUIRE(own_daemon_start(&d, "--data-dir", data1) == 0, "start on data1");
    REQUIRE((c = tw_connect(d.sock, &err)) != NULL, "connect: %s", err.message);
    rc = tw_get_identity(c, j1, sizeof j1, i1, sizeof i1, &err);
    REQUIRE(rc == 1 && j1[0] && i1[0], "journaled daemon: rc %d '%s' '%s' %s", rc, j1, i1, err.message);
    for (int n = 0; n < 3; n++) {
        json_t *v = json_pack("{s:i}", "n", n);
        rc = tw_publish(c, type, v, NULL, &last, &err);
        json_decref(v);
        REQUIRE(rc == 0, "publish: %s", err.message);
    }
    tw_close(c);
    c = NULL;
    CHECK(own_daemon_stop(&d) == 0, "the daemon did not exit 0 on SIGTERM");

    /* the same data dir again: the same journal_id, a new instance_id; two events
     * come in while we are away */
    REQUIRE(own_daemon_start(&d, "--data-dir", data1) == 0, "restart on data1");
    {
        tw_client *pub = tw_connect(d.sock, &err);
        REQUIRE(pub != NULL, "connect: %s", err.message);
        for (int n = 3; n < 5; n++) {
            json_t *v = json_pack("{s:i}", "n", n);
            rc = tw_publish(pub, type, v, NULL, &seq, &err);
            json_decref(v);
            CHECK(rc == 0 && seq > last, "publish after the restart: seq %lld after %lld: %s", (long long)seq,
                  (long long)last, err.message);
        }
        tw_close(pub);
    }
    REQUIRE((c = tw_connect(d.sock, &err)) != NULL, "connect: %s", err.message);
    rc = tw_get_identity(c, j2, sizeof j2, i2, sizeof i2, &err);
    CHECK(rc == 1 && strcmp(j2, j1) == 0, "restart on the same data dir: rc %d journal_id '%s' was '%s'", rc, j2, j1);
    CHECK(i2[0] && strcmp(i2, i1) != 0, "instance_id did not change on restart: '%s'", i2);
    /* the resume rule: same journal_id -> since_seq = the last seq handled */
    tw_set_notification_handler(c, collect_cb, &col);
    REQUIRE(tw_subscribe(c, type, strcmp(j2, j1) == 0 ? last : 0, NULL, 0, &err) == 0, "subscribe: %s",
            err.message);
    wait_events(c, &col, 2, 10.0);
    tw_poll(c, 300, &err); /* nothing more should come */
    CHECK(json_array_size(col.events) == 2, "resumed: want the 2 events published while away, got %zu",
          json_array_size(col.events));
    for (size_t k = 0; k < json_array_size(col.events) && k < 2; k++) {
        json_t *ev = json_object_get(json_array_get(col.events, k), "event");
        CHECK(json_integer_value(json_object_get(json_object_get(ev, "data"), "n")) == (json_int_t)k + 3 &&
                  json_integer_value(json_object_get(ev, "seq")) > last,
              "resumed event %zu: n %lld seq %lld", k,
              (long long)json_integer_value(json_object_get(json_object_get(ev, "data"), "n")),
              (long long)json_integer_value(json_object_get(ev, "seq")));
    }
    tw_close(c);
    c = NULL;
    CHECK(own_daemon_stop(&d) == 0, "the daemon did not exit 0 on SIGTERM");

    /* another data dir: another journal */
    REQUIRE(own_daemon_start(&d, "--data-dir", data2) == 0, "start on data2");
    REQUIRE((c = tw_connect(d.sock, &err)) != NULL, "connect: %s", err.message);
    rc = tw_get_identity(c, j3, sizeof j3, i3, sizeof i3, &err);
    CHECK(rc == 1 && j3[0] && strcmp(j3, j1) != 0, "another data dir: rc %d journal_id '%s' (data1: '%s')", rc, j3,
          j1);
    CHECK(i3[0] && strcmp(i3, i1) != 0 && strcmp(i3, i2) != 0, "instance_id '%s' seen before", i3);
    tw_close(c);
    c = NULL;
    CHECK(own_daemon_stop(&d) == 0, "the daemon did not exit 0 on SIGTERM");

    /* ephemeral: no journal_id (0, ""), still an instance_id */
    REQUIRE(own_daemon_start(&d, "--ephemeral", NULL) == 0, "start --ephemeral");
    REQUIRE((c = tw_connect(d.sock, &err)) != NULL, "connect: %s", err.message);
    memset(j4, 'x', sizeof j4);
    rc = tw_get_identity(c, j4, sizeof j4, i4, sizeof i4, &err);
    CHECK(rc == 0 && j4[0] == '\0' && err.code == 0, "--ephemeral: rc %d journal_id '%s' %s", rc, j4, err.message);
    CHECK(i4[0] && strcmp(i4, i3) != 0, "--ephemeral: instance_id '%s'", i4);
    tw_close(c);
    c = NULL;
    CHECK(own_daemon_stop(&d) == 0, "the daemon did not exit 0 on SIGTERM");
done:
    tw_close(c);
    if (d.pid > 0)
        own_daemon_stop(&d);
    if (made)
        remove_tree(dir);
    collector_free(&col);
}

/* ------------------------------------------------------------------------ */
/* Durable consumers (docs/PROTOCOL.md §11)                                  */

/* tw_parse_event on hand-made messages: no daemon needed. */
static void test_parse_event_offline(void)
{
    tw_error err;
    tw_event ev;
    json_t *plain = json_loads("{\"jsonrpc\":\"2.0\",\"method\":\"event\",\"params\":{\"subscription\":\"s-4\","
                               "\"event\":{\"seq\":12,\"event_type\":\"a.b\",\"timestamp\":\"2026-01-02T03:04:05.6Z\","
                               "\"data\":{\"x\":1},\"metadata\":{\"m\":2}}}}",
                               0, NULL);
    json_t *delivered = json_loads("{\"subscription\":\"s-9\",\"delivery\":{\"consumer\":\"billing\",\"attempt\":3},"
                                   "\"event\":{\"seq\":40,\"event_type\":\"order.new\"}}",
                                   0, NULL);
    json_t *bad_attempt = json_loads("{\"delivery\":{\"consumer\":\"c\",\"attempt\":0},"
                                     "\"event\":{\"seq\":1,\"event_type\":\"t\"}}",
                                     0, NULL);
    json_t *other = json_loads("{\"method\":\"events_dropped\",\"params\":{\"count\":1}}", 0, NULL);
    json_t *no_seq = json_loads("{\"event\":{\"event_type\":\"t\"}}", 0, NULL);
    REQUIRE(plain && delivered && bad_attempt && other && no_seq, "test JSON does not parse");

    REQUIRE(tw_parse_event(plain, &ev, &err) == 0, "plain: %s", err.message);
    CHECK(ev.seq == 12 && strcmp(ev.event_type, "a.b") == 0 && strcmp(ev.subscription, "s-4") == 0,
          "plain: seq %lld type %s sub %s", (long long)ev.seq, ev.event_type, ev.subscription);
    CHECK(strcmp(ev.timestamp, "2026-01-02T03:04:05.6Z") == 0, "timestamp %s", ev.timestamp);
    CHECK(json_integer_value(json_object_get(ev.data, "x")) == 1, "data");
    CHECK(json_integer_value(json_object_get(ev.metadata, "m")) == 2, "metadata");
    CHECK(ev.consumer == NULL && ev.attempt == 0, "a plain event has no delivery");

    REQUIRE(tw_parse_event(delivered, &ev, &err) == 0, "delivered: %s", err.message);
    CHECK(ev.consumer && strcmp(ev.consumer, "billing") == 0 && ev.attempt == 3, "delivery %s/%d",
          ev.consumer ? ev.consumer : "(null)", ev.attempt);
    CHECK(ev.seq == 40 && json_is_null(ev.data) && ev.metadata == NULL && strcmp(ev.timestamp, "") == 0,
          "absent members");

    CHECK(tw_parse_event(bad_attempt, &ev, &err) == -1 && err.code == TW_ERR_PROTOCOL, "attempt 0 accepted");
    CHECK(tw_parse_event(other, &ev, &err) == -1 && err.code == TW_ERR_PROTOCOL, "events_dropped accepted");
    CHECK(tw_parse_event(no_seq, &ev, &err) == -1 && err.code == TW_ERR_PROTOCOL, "event without seq accepted");
    CHECK(tw_parse_event(NULL, &ev, &err) == -1 && err.code == TW_ERR_INVALID_ARG, "NULL accepted");
done:
    json_decref(plain);
    json_decref(delivered);
    json_decref(bad_attempt);
    json_decref(other);
    json_decref(no_seq);
}

/* Polls c (no handler) until n notifications are queued or timeout_s passed. */
static size_t wait_queued(tw_client *c, size_t n, double timeout_s)
{
    double end = now_s() + timeout_s;
    tw_error err;
    while (tw_pending_notifications(c) < n && now_s() < end)
        if (tw_poll(c, 50, &err) < 0 && !tw_is_open(c))
            break;
    return tw_pending_notifications(c);
}

/* Takes the next queued notification as an event of consumer `name`:
 * its seq and attempt (-1, -1 if there is none or it is something else). */
static void next_delivery(tw_client *c, const char *name, json_int_t *seq, int *attempt)
{
    tw_error err;
    tw_event ev;
    json_t *m = tw_next_notification(c);
    *seq = -1;
    *attempt = -1;
    if (m && tw_parse_event(m, &ev, &err) == 0 && ev.consumer && strcmp(ev.consumer, name) == 0) {
        *seq = ev.seq;
        *attempt = ev.attempt;
    }
    json_decref(m);
}

static void test_consumer_ack_nak(void)
{
    tw_error err;
    char type[128], name[128], sid[64];
    json_int_t seqs[3], seq;
    int attempt, n;
    unique_type(type, sizeof type, "cons");
    unique_type(name, sizeof name, "group");
    tw_client *c = connect_live();
    tw_client *other = connect_live();
    if (!c || !other)
        goto done;
    tw_consumer_options o = TW_CONSUMER_OPTIONS_INIT;
    o.ack_wait_ms = 30000;
    o.max_in_flight = 16;
    REQUIRE(tw_subscribe_consumer(c, name, type, &o, sid, sizeof sid, &err) == 0, "subscribe: %s", err.message);
    CHECK(strncmp(sid, "s-", 2) == 0, "subscription id '%s'", sid);
    for (int i = 0; i < 3; i++) {
        json_t *d = json_integer(i);
        int rc = tw_publish(other, type, d, NULL, &seqs[i], &err);
        json_decref(d);
        REQUIRE(rc == 0, "publish: %s", err.message);
    }
    REQUIRE(wait_queued(c, 3, 10.0) == 3, "got %zu deliveries, want 3", tw_pending_notifications(c));
    for (int i = 0; i < 3; i++) {
        next_delivery(c, name, &seq, &attempt);
        CHECK(seq == seqs[i] && attempt == 1, "delivery %d: seq %lld attempt %d", i, (long long)seq, attempt);
    }
    n = tw_ack(c, name, seqs[0], &err);
    CHECK(n == 1, "ack: %d (%s)", n, err.message);
    n = tw_ack(c, name, seqs[0], &err);
    CHECK(n == 0, "second ack: %d (%s)", n, err.message);

    /* nak with a delay: the same event again, attempt 2 */
    REQUIRE(tw_nak(c, name, seqs[1], 100, "not yet", &err) == 0, "nak: %s", err.message);
    REQUIRE(wait_queued(c, 1, 10.0) == 1, "no redelivery after nak");
    next_delivery(c, name, &seq, &attempt);
    CHECK(seq == seqs[1] && attempt == 2, "redelivery: seq %lld attempt %d", (long long)seq, attempt);

    /* one batched ack for the two outstanding */
    n = tw_ack_up_to(c, name, seqs[2], &err);
    CHECK(n == 2, "ack up_to_seq: %d (%s)", n, err.message);
    tw_poll(c, 300, &err);
    CHECK(tw_pending_notifications(c) == 0, "a delivery after everything was acknowledged");

    /* a connection that is not a member */
    CHECK(tw_ack(other, name, seqs[2], &err) == -1 && err.code == -32040 && strcmp(err.type, "unknown_consumer") == 0,
          "ack from a non-member: code %d type %s", err.code, err.type);
    CHECK(tw_nak(other, name, seqs[2], -1, NULL, &err) == -1 && err.code == -32040, "nak from a non-member: %d",
          err.code);
done:
    tw_close(c);
    tw_close(other);
}

static void test_consumer_ack_wait(void)
{
    tw_error err;
    char type[128], name[128];
    json_int_t published, seq;
    int attempt;
    collector col;
    collector_init(&col);
    unique_type(type, sizeof type, "wait");
    unique_type(name, sizeof name, "waiter");
    tw_client *c = connect_live();
    if (!c)
        goto done;
    tw_consumer_options o = TW_CONSUMER_OPTIONS_INIT;
    o.ack_wait_ms = 300;
    REQUIRE(tw_subscribe_consumer(c, name, type, &o, NULL, 0, &err) == 0, "subscribe: %s", err.message);
    REQUIRE(tw_publish(c, type, NULL, NULL, &published, &err) == 0, "publish: %s", err.message);
    REQUIRE(wait_queued(c, 2, 10.0) >= 2, "no redelivery after ack_wait");
    next_delivery(c, name, &seq, &attempt);
    CHECK(seq == published && attempt == 1, "first: seq %lld attempt %d", (long long)seq, attempt);
    next_delivery(c, name, &seq, &attempt);
    CHECK(seq == published && attempt == 2, "after ack_wait: seq %lld attempt %d", (long long)seq, attempt);
    CHECK(tw_ack(c, name, published, &err) == 1, "ack: %s", err.message);
    json_t *stale; /* a third attempt that crossed the ack on a slow machine */
    while ((stale = tw_next_notification(c)) != NULL)
        json_decref(stale);

    /* the callback path: params with the delivery, parsed the same way */
    REQUIRE(tw_publish(c, type, NULL, NULL, &published, &err) == 0, "publish: %s", err.message);
    tw_set_notification_handler(c, collect_cb, &col);
    wait_events(c, &col, 1, 10.0);
    REQUIRE(json_array_size(col.events) >= 1, "no delivery through the callback");
    tw_event ev;
    REQUIRE(tw_parse_event(json_array_get(col.events, 0), &ev, &err) == 0, "parse: %s", err.message);
    CHECK(ev.seq == published && ev.attempt == 1 && strcmp(ev.consumer, name) == 0, "callback delivery");
    CHECK(tw_ack_up_to(c, name, published, &err) == 1, "ack_up_to: %s", err.message);
done:
    tw_close(c);
    collector_free(&col);
}

/* ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        {"default_socket_path", test_default_socket_path},
        {"connect_missing", test_connect_missing},
        {"framing_offline", test_framing_offline},
        {"check_socket_dir", test_check_socket_dir},
        {"default_dir_checks", test_default_dir_checks},
        {"impostor_peer", test_impostor_peer},
        {"own_daemon_peer", test_own_daemon_peer},
        {"ping", test_ping},
        {"publish_seq", test_publish_seq},
        {"subscribe_then_publish", test_subscribe_then_publish},
        {"same_connection", test_same_connection},
        {"since_seq_queue", test_since_seq_queue},
        {"method_not_found", test_method_not_found},
        {"invalid_params", test_invalid_params},
        {"timeout", test_timeout},
        {"event_history", test_event_history},
        {"get_status", test_get_status},
        {"large_messages", test_large_messages},
        {"nested_call_in_callback", test_nested_call_in_callback},
        {"identity", test_identity},
        {"identity_across_restarts", test_identity_across_restarts},
        {"parse_event_offline", test_parse_event_offline},
        {"consumer_ack_nak", test_consumer_ack_nak},
        {"consumer_ack_wait", test_consumer_ack_wait},
    };
    g_sock = getenv("TW_TEST_SOCKET");
    if (!g_sock || !*g_sock) {
        fprintf(stderr, "TW_TEST_SOCKET is not set: run tests/run.sh, or set it to a running daemon's socket\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (argc > 1) { /* optional filter: test names */
            int want = 0;
            for (int a = 1; a < argc; a++)
                if (strcmp(argv[a], tests[i].name) == 0)
                    want = 1;
            if (!want)
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
