/*
 * test_client.c — tests of libtradewire against a LIVE tradewired.
 *
 * Run through tests/run.sh (starts the daemon on a unique socket and sets
 * TW_TEST_SOCKET), or by hand against a running daemon:
 *     TW_TEST_SOCKET=/path/to/sock ./tests/test_client
 * Prints one line per failed check and ends with "N passed, N failed"
 * (counted per test); exit status 1 if any test failed.
 */
#define _POSIX_C_SOURCE 200809L

#include "../tradewire.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

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
    CHECK(json_integer_value(json_object_get(r, "api_level")) == TW_API_LEVEL, "api_level != 1");
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
