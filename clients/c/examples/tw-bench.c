/*
 * tw-bench — load generator for tradewired (an independent load source for
 * `make bench`). examples/bench.h runs the shapes (the same ones redis-bench
 * runs against Redis); this file speaks tradewired's JSON lines.
 *
 *   tw-bench [--socket PATH] ping [--count 20000]
 *       Sequential ping round trips (after 100 untimed warm-up pings).
 *       Prints: ping count=N p50_us=X p99_us=Y mean_us=Z
 *
 *   tw-bench [--socket PATH] publish [--count 200000] [--subscribers 1]
 *            [--publishers 1] [--inflight 256] [--size 100] [--timeout 60]
 *       K subscriber connections subscribe to a unique event type (each waits
 *       for its subscribe ack), then P publisher connections (COUNT / P
 *       publishes each) pipeline `publish` requests with ~SIZE bytes of data
 *       ({"pad":"<stamp>xx..."}) and at most INFLIGHT unanswered each; one
 *       thread per subscriber counts `event` notifications (and the counts of
 *       `events_dropped` notices). `--publishers 50 --inflight 1` is the
 *       unpipelined shape: 50 clients each publishing one at a time.
 *       Prints: publish count=N subscribers=K inflight=I publish_per_s=X
 *               delivered_per_s=Y elapsed_s=Z dropped=D publishers=P
 *               disconnected=S latency_us_p50=A latency_us_p99=B
 *       publish_per_s   = N / (last publish response - first send)
 *       delivered_per_s = events received by all subscribers / (time the last
 *                         subscriber got its last event - first send)
 *       elapsed_s       = first send -> all responses and events received
 *       dropped         = events reported skipped by events_dropped notices
 *       latency_us_*    = publish -> receipt (see bench.h); absent when
 *                         SIZE < 30 leaves no room for the stamp
 *       A subscriber is done when received + dropped == N (minus publishes
 *       answered with an error, reported on stderr). --timeout bounds every
 *       wait (no progress for that long): the run then stops, prints the
 *       line with what it got, and exits 3. A subscriber connection closed by
 *       the daemon also exits 3.
 *
 *   tw-bench [--socket PATH] publish --consumer [--ack-every 64]
 *            [--max-in-flight 0] [the options above]
 *       The same, but each subscriber is a durable consumer of its own
 *       (docs/PROTOCOL.md §11; subscribe with "consumer", removed with
 *       delete_consumer at the end) and acknowledges with
 *       `ack {consumer, up_to_seq}` every ACK_EVERY events (and once at the
 *       end), pipelined on its connection without waiting for the answers.
 *       --max-in-flight is the consumer's bound (0: the daemon's default, 256).
 *       The line gains, after dropped=: consumer=1 ack_every=A acks=N
 *       ack_errors=E redelivered=R (deliveries with attempt > 1, counted as
 *       received).
 *
 * The hot paths use raw pipelined lines on the socket (libtradewire only
 * connects and subscribes) and never build or parse JSON per message.
 */
#define _POSIX_C_SOURCE 200809L

#include "../tradewire.h"

#include "bench.h"

#include <signal.h>

/* ------------------------------------------------------------------------ */
/* the protocol: JSON lines                                                   */

typedef struct {
    int on;                  /* --consumer                                   */
    long long ack_every;     /* --ack-every                                  */
    long long max_in_flight; /* --max-in-flight (0: omitted)               */
} consumer_opts;

typedef struct {
    const char *path;
    char type[96];       /* the run's unique event type */
    consumer_opts co;
    /* publish request: PREFIX <id> SUFFIX, the stamp at stamp_at in SUFFIX */
    char *suffix;
    size_t suffix_len;
    long long stamp_at; /* -1: no room for a stamp */
} tw_ctx;

/* Consumer mode (--consumer): what a subscriber acknowledges, and how. */
typedef struct {
    int on;                 /* the subscribers are consumers                  */
    long long ack_every;    /* ack up_to_seq after this many deliveries       */
    char name[128];         /* this subscriber's consumer name                */
    long long unacked;      /* deliveries since the last ack                  */
    long long last_seq;     /* the highest seq delivered                      */
    long long acks;         /* ack requests sent                              */
    long long ack_errors;   /* ack requests answered with an error            */
    long long redelivered;  /* deliveries with attempt > 1                    */
    long long next_id;
} consumer_t;

static const char req_prefix[] = "{\"jsonrpc\":\"2.0\",\"id\":";

static void *tw_open(void *ctx, int *fd)
{
    tw_ctx *x = ctx;
    tw_error err;
    tw_client *c = tw_connect(x->path, &err);
    if (!c)
        die("%s", err.message);
    *fd = tw_fileno(c);
    return c;
}

static void tw_shut(void *ctx, void *handle)
{
    (void)ctx;
    tw_close(handle);
}

static size_t tw_ping_req(void *ctx, char *dst, size_t cap, long long id)
{
    (void)ctx;
    return (size_t)snprintf(dst, cap, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"ping\"}\n", id);
}

static size_t tw_publish_req(void *ctx, char *dst, long long id, unsigned long long stamp)
{
    tw_ctx *x = ctx;
    size_t len = sizeof req_prefix - 1;
    memcpy(dst, req_prefix, len);
    len += (size_t)sprintf(dst + len, "%lld", id);
    memcpy(dst + len, x->suffix, x->suffix_len);
    if (x->stamp_at >= 0)
        stamp_write(dst + len + x->stamp_at, stamp);
    return len + x->suffix_len;
}

static answer_kind tw_answer(void *ctx, const char *buf, size_t len, size_t *used, char *msg, size_t msgcap)
{
    (void)ctx;
    const char *nl = memchr(buf, '\n', len);
    if (!nl)
        return ANSWER_MORE;
    size_t n = (size_t)(nl - buf);
    *used = n + 1;
    if (n == 0)
        return ANSWER_SKIP;
    if (FIND(buf, n, "\"result\""))
        return ANSWER_OK;
    json_t *m = json_loadb(buf, n, 0, NULL);
    json_t *e = json_object_get(m, "error");
    const char *method = json_string_value(json_object_get(m, "method"));
    answer_kind k = ANSWER_SKIP;
    if (!m) {
        snprintf(msg, msgcap, "a line that is not JSON");
        k = ANSWER_FATAL;
    } else if (e) {
        char *s = json_dumps(e, JSON_COMPACT);
        snprintf(msg, msgcap, "%s", s ? s : "?");
        free(s);
        k = ANSWER_ERROR;
    } else if (method && strcmp(method, "shutdown") == 0) {
        snprintf(msg, msgcap, "daemon is shutting down");
        k = ANSWER_FATAL;
    }
    json_decref(m);
    return k;
}

/* Subscribes subscriber i: a plain subscription, or a consumer of its own. */
static void tw_subscribe_sub(void *ctx, bench_sub *s, int i)
{
    tw_ctx *x = ctx;
    tw_error err;
    tw_client *c = tw_open(ctx, &s->fd);
    s->handle = c;
    tw_set_timeout(c, 60000);
    consumer_t *k = calloc(1, sizeof *k);
    if (!k)
        die("%s", "out of memory");
    s->ext = k;
    if (!x->co.on) {
        if (tw_subscribe(c, x->type, -1, NULL, 0, &err) < 0)
            die("subscribe: %s", err.message);
        return;
    }
    k->on = 1;
    k->ack_every = x->co.ack_every;
    snprintf(k->name, sizeof k->name, "%s.c%d", x->type, i);
    tw_consumer_options o = TW_CONSUMER_OPTIONS_INIT;
    o.max_in_flight = (int)x->co.max_in_flight;
    if (tw_subscribe_consumer(c, k->name, x->type, &o, NULL, 0, &err) < 0)
        die("subscribe (consumer): %s", err.message);
}

/* The integer after `key` in line (0 when absent): the hot path reads seq and
 * attempt without parsing the JSON (the payload is {"pad":"xx..."}). */
static long long int_after(const char *line, size_t len, const char *key, size_t keylen)
{
    const char *p = find(line, len, key, keylen);
    if (!p)
        return 0;
    long long v = 0;
    for (p += keylen; p < line + len && *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (*p - '0');
    return v;
}
#define INT_AFTER(line, len, lit) int_after((line), (len), (lit), sizeof(lit) - 1)

/* --consumer: ack {consumer, up_to_seq: the highest seq delivered}, unanswered
 * (the answer is read, and checked, with the events). */
static void consumer_ack(bench_sub *s)
{
    consumer_t *k = s->ext;
    if (!k->on || k->unacked == 0)
        return;
    char req[256];
    int len = snprintf(req, sizeof req,
                       "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"ack\",\"params\":{\"consumer\":\"%s\","
                       "\"up_to_seq\":%lld}}\n",
                       ++k->next_id, k->name, k->last_seq);
    if (send_all(s->fd, req, (size_t)len) < 0) {
        s->failed = 1;
        snprintf(s->errmsg, sizeof s->errmsg, "ack: send failed: %s", strerror(errno));
        return;
    }
    k->acks++;
    k->unacked = 0;
}

static void consumer_delivery(bench_sub *s, const char *line, size_t len)
{
    consumer_t *k = s->ext;
    long long seq = INT_AFTER(line, len, "\"seq\":");
    if (seq > k->last_seq)
        k->last_seq = seq;
    if (INT_AFTER(line, len, "\"attempt\":") > 1)
        k->redelivered++;
    if (++k->unacked >= k->ack_every)
        consumer_ack(s);
}

static void event_line(bench_sub *s, const char *line, size_t len, unsigned long long t)
{
    s->received++;
    const char *pad = FIND(line, len, "\"pad\":\"");
    unsigned long long stamp;
    if (pad && stamp_read(pad + 7, (size_t)(line + len - pad - 7), &stamp) && t > stamp)
        hist_add(s->lat, t - stamp);
    if (((consumer_t *)s->ext)->on)
        consumer_delivery(s, line, len);
}

static void sub_line(bench_sub *s, const char *line, size_t len, unsigned long long t)
{
    consumer_t *k = s->ext;
    if (FIND(line, len, "\"method\":\"event\"")) {
        event_line(s, line, len, t);
        return;
    }
    if (k->on && FIND(line, len, "\"result\"")) /* an ack's answer */
        return;
    /* rare: parse properly */
    json_t *m = json_loadb(line, len, 0, NULL);
    const char *method = json_string_value(json_object_get(m, "method"));
    if (method && strcmp(method, "event") == 0) {
        event_line(s, line, len, t);
    } else if (method && strcmp(method, "events_dropped") == 0) {
        json_t *cnt = json_object_get(json_object_get(m, "params"), "count");
        if (json_is_integer(cnt))
            s->dropped += json_integer_value(cnt);
    } else if (method && strcmp(method, "shutdown") == 0) {
        s->failed = 1;
        snprintf(s->errmsg, sizeof s->errmsg, "daemon is shutting down");
    } else if (json_object_get(m, "error")) {
        if (k->ack_errors++ == 0) {
            char *e = json_dumps(json_object_get(m, "error"), JSON_COMPACT);
            fprintf(stderr, "tw-bench: ack error (first one shown): %s\n", e ? e : "?");
            free(e);
        }
    }
    json_decref(m);
}

static size_t tw_feed(bench_sub *s, const char *buf, size_t len, unsigned long long t)
{
    const char *p = buf, *end = buf + len, *nl;
    while (!s->failed && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (nl > p)
            sub_line(s, p, (size_t)(nl - p), t);
        p = nl + 1;
    }
    return (size_t)(p - buf);
}

/* What is left below ack_every. */
static void tw_sub_finish(bench_sub *s)
{
    consumer_ack(s);
}

static void tw_print_keys(void *ctx, bench_sub *subs, int n)
{
    tw_ctx *x = ctx;
    if (!x->co.on)
        return;
    long long acks = 0, ack_errors = 0, redelivered = 0;
    for (int i = 0; i < n; i++) {
        consumer_t *k = subs[i].ext;
        acks += k->acks;
        ack_errors += k->ack_errors;
        redelivered += k->redelivered;
    }
    printf(" consumer=1 ack_every=%lld acks=%lld ack_errors=%lld redelivered=%lld", x->co.ack_every, acks,
           ack_errors, redelivered);
}

/* Removes the consumers a --consumer run made (best effort); frees the
 * subscribers' state. 1 when an ack was answered with an error. */
static int tw_after_run(void *ctx, void *publisher, bench_sub *subs, int n)
{
    (void)ctx;
    int ack_errors = 0;
    for (int i = 0; i < n; i++) {
        consumer_t *k = subs[i].ext;
        ack_errors |= k->ack_errors > 0;
        if (k->on) {
            tw_error err;
            json_t *p = json_pack("{s:s}", "consumer", k->name);
            json_t *r = tw_call(publisher, "delete_consumer", p, 10000, &err);
            if (!r)
                fprintf(stderr, "tw-bench: delete_consumer %s: %s\n", k->name, err.message);
            json_decref(r);
            json_decref(p);
        }
        free(k);
        subs[i].ext = NULL;
    }
    return ack_errors;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tw-bench [--socket PATH] ping [--count 20000]\n"
            "       tw-bench [--socket PATH] publish [--count 200000] [--subscribers 1]\n"
            "                [--publishers 1] [--inflight 256] [--size 100] [--timeout 60]\n"
            "                [--consumer [--ack-every 64] [--max-in-flight N]]\n");
}

int main(int argc, char **argv)
{
    const char *v;
    bench_args a = BENCH_ARGS_INIT;
    tw_ctx x = {0};
    x.co.ack_every = 64;
    bench_name = "tw-bench";
    signal(SIGPIPE, SIG_IGN);

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (bench_arg(argc, argv, &i, &a)) {
            continue;
        } else if (strcmp(argv[i], "--consumer") == 0) {
            x.co.on = 1;
        } else if ((v = opt_value(argc, argv, &i, "--ack-every"))) {
            x.co.ack_every = num_or_die(v, "--ack-every", 1);
        } else if ((v = opt_value(argc, argv, &i, "--max-in-flight"))) {
            x.co.max_in_flight = num_or_die(v, "--max-in-flight", 0);
        } else {
            fprintf(stderr, "tw-bench: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!a.mode) {
        usage(stderr);
        return 2;
    }
    if (bench_args_check(&a))
        return 2;
    if (x.co.max_in_flight > 1000000) {
        fprintf(stderr, "tw-bench: --max-in-flight <= 1000000\n");
        return 2;
    }
    x.path = a.path;

    bench_proto pr = {.ctx = &x, .connect = tw_open, .close = tw_shut, .ping = tw_ping_req, .answer = tw_answer};
    if (strcmp(a.mode, "ping") == 0)
        return bench_ping(&pr, a.count > 0 ? a.count : 20000);

    bench_unique_name(x.type, sizeof x.type);

    /* publish request suffix: ,"method":...,"data":{"pad":"<stamp>xx..."}}}\n */
    size_t padlen = a.size > 10 ? (size_t)a.size - 10 : 0; /* {"pad":""} is 10 bytes */
    size_t suffix_cap = 128 + strlen(x.type) + padlen;
    x.suffix = malloc(suffix_cap);
    if (!x.suffix)
        die("%s", "out of memory");
    int sl = snprintf(x.suffix, suffix_cap,
                      ",\"method\":\"publish\",\"params\":{\"event_type\":\"%s\",\"data\":{\"pad\":\"", x.type);
    memset(x.suffix + sl, 'x', padlen);
    x.stamp_at = padlen >= STAMP_DIGITS ? sl : -1;
    memcpy(x.suffix + sl + padlen, "\"}}}\n", 5);
    x.suffix_len = (size_t)sl + padlen + 5;

    pr.publish = tw_publish_req;
    pr.publish_max = sizeof req_prefix - 1 + 20 + x.suffix_len;
    pr.subscribe = tw_subscribe_sub;
    pr.feed = tw_feed;
    pr.sub_finish = tw_sub_finish;
    pr.print_keys = tw_print_keys;
    pr.after_run = tw_after_run;
    pr.disconnect_fails = 1;
    int status = bench_publish(&pr, &a);
    free(x.suffix);
    return status;
}
