/*
 * tw-tail — print events from a tradewired bus, one compact JSON line each.
 *
 *   tw-tail [--socket PATH] [--since SEQ] [--count N] PATTERN...
 *
 * Subscribes to every PATTERN ('*' any run, '?' one character; quote it for
 * the shell) and prints each event object ({"seq","event_type","timestamp",
 * "data","metadata"}) as one line on stdout, flushed per line. An event that
 * matches several patterns is printed once. With --since SEQ, events with a
 * larger seq still in the daemon's history are printed first. --count N
 * exits after N events. events_dropped and shutdown notices go to stderr.
 * Exit: 0 after N events or a daemon shutdown, 1 on errors, 2 on bad usage.
 */
#define _POSIX_C_SOURCE 200809L

#include "../tradewire.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEEN_SLOTS (1u << 18) /* dedupe window for multi-pattern tails */

typedef struct {
    long long count;       /* stop after this many (0 = never) */
    long long printed;
    int multi;             /* several patterns: dedupe by seq */
    json_int_t *seen;      /* seen[seq % SEEN_SLOTS] == seq */
    int shutdown;
    int failed;
} tail_state;

static void usage(FILE *f)
{
    fprintf(f, "usage: tw-tail [--socket PATH] [--since SEQ] [--count N] PATTERN...\n"
               "  --socket PATH  daemon socket (default: $TRADEWIRE_SOCKET, $XDG_RUNTIME_DIR/tradewire.sock,\n"
               "                 /tmp/tradewire-$UID/tradewire.sock)\n"
               "  --since SEQ    first replay events with seq > SEQ still in history\n"
               "  --count N      exit after N events\n"
               "  PATTERN        event type pattern: '*' any run of characters, '?' one ('*' = all)\n");
}

/* Shortest of %.15g/%.16g/%.17g that still round-trips every number in v. */
static char *dump_event(json_t *ev)
{
    for (int prec = 15; prec <= 17; prec++) {
        char *s = json_dumps(ev, JSON_COMPACT | JSON_REAL_PRECISION(prec));
        if (!s || prec == 17)
            return s;
        json_t *back = json_loads(s, JSON_DECODE_ANY, NULL);
        int same = back && json_equal(back, ev);
        json_decref(back);
        if (same)
            return s;
        free(s);
    }
    return NULL;
}

static void on_notification(const char *method, json_t *params, void *ud)
{
    tail_state *st = ud;
    if (st->count > 0 && st->printed >= st->count)
        return;
    if (strcmp(method, "event") == 0) {
        json_t *ev = json_object_get(params, "event");
        if (!json_is_object(ev))
            return;
        if (st->multi) {
            json_t *seqv = json_object_get(ev, "seq");
            if (json_is_integer(seqv)) {
                json_int_t seq = json_integer_value(seqv);
                json_int_t *slot = &st->seen[(uint64_t)seq % SEEN_SLOTS];
                if (*slot == seq)
                    return;
                *slot = seq;
            }
        }
        char *s = dump_event(ev);
        if (!s)
            return;
        if (fputs(s, stdout) == EOF || fputc('\n', stdout) == EOF || fflush(stdout) == EOF) {
            fprintf(stderr, "tw-tail: write error: %s\n", strerror(errno));
            st->failed = 1;
        }
        free(s);
        st->printed++;
    } else if (strcmp(method, "events_dropped") == 0) {
        char *s = json_dumps(params, JSON_COMPACT);
        fprintf(stderr, "tw-tail: events dropped (fetch the gap with get_event_history since_seq): %s\n",
                s ? s : "?");
        free(s);
    } else if (strcmp(method, "shutdown") == 0) {
        json_t *reason = json_object_get(params, "reason");
        fprintf(stderr, "tw-tail: daemon is shutting down%s%s\n", json_is_string(reason) ? ": " : "",
                json_is_string(reason) ? json_string_value(reason) : "");
        st->shutdown = 1;
    }
}

static int parse_ll(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    long long since = -1, count = 0;
    const char **patterns = calloc((size_t)argc, sizeof *patterns);
    int npat = 0, only_patterns = 0;
    if (!patterns)
        return 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_patterns || a[0] != '-' || a[1] == '\0' || (a[1] != '-' && a[1] != 'h')) {
            patterns[npat++] = a; /* a pattern (may itself start with one '-') */
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            free(patterns);
            return 0;
        } else if (strcmp(a, "--socket") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(a, "--since") == 0 && i + 1 < argc) {
            if (parse_ll(argv[++i], &since) < 0 || since < 0) {
                fprintf(stderr, "tw-tail: --since wants a seq >= 0\n");
                free(patterns);
                return 2;
            }
        } else if (strcmp(a, "--count") == 0 && i + 1 < argc) {
            if (parse_ll(argv[++i], &count) < 0 || count < 1) {
                fprintf(stderr, "tw-tail: --count wants a number >= 1\n");
                free(patterns);
                return 2;
            }
        } else if (strcmp(a, "--") == 0) {
            only_patterns = 1;
        } else {
            fprintf(stderr, "tw-tail: unknown or incomplete option %s\n", a);
            usage(stderr);
            free(patterns);
            return 2;
        }
    }
    if (npat == 0) {
        usage(stderr);
        free(patterns);
        return 2;
    }

    tail_state st;
    memset(&st, 0, sizeof st);
    st.count = count;
    st.multi = npat > 1;
    if (st.multi) {
        st.seen = malloc(SEEN_SLOTS * sizeof *st.seen);
        if (!st.seen) {
            fprintf(stderr, "tw-tail: out of memory\n");
            free(patterns);
            return 1;
        }
        for (size_t k = 0; k < SEEN_SLOTS; k++)
            st.seen[k] = -1;
    }

    tw_error err;
    int rc = 0;
    tw_client *c = tw_connect(path, &err);
    if (!c) {
        fprintf(stderr, "tw-tail: %s\n", err.message);
        free(st.seen);
        free(patterns);
        return 1;
    }
    tw_set_notification_handler(c, on_notification, &st);
    for (int i = 0; i < npat; i++) {
        if (tw_subscribe(c, patterns[i], since, NULL, 0, &err) < 0) {
            fprintf(stderr, "tw-tail: subscribe '%s': %s%s%s%s\n", patterns[i], err.message,
                    err.type[0] ? " (" : "", err.type, err.type[0] ? ")" : "");
            rc = err.code == -32602 ? 2 : 1;
            goto out;
        }
    }
    while (!st.failed && !st.shutdown && (st.count == 0 || st.printed < st.count)) {
        if (tw_poll(c, TW_TIMEOUT_INFINITE, &err) < 0) {
            if (!tw_is_open(c)) {
                if (err.code == TW_ERR_CLOSED && st.shutdown)
                    break;
                fprintf(stderr, "tw-tail: %s\n", err.message);
                rc = 1;
                break;
            }
            fprintf(stderr, "tw-tail: warning: %s\n", err.message); /* e.g. an over-long line */
        }
    }
    if (st.failed)
        rc = 1;
out:
    tw_close(c);
    free(st.seen);
    free(patterns);
    return rc;
}
