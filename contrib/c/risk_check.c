/*
 * risk_check — a remote risk stage for tradewired, in C (libtradewire).
 *
 * Registers as the risk group NAME (mode "after": it sees the built-in risk
 * agent's output) and, for every approved signal whose qty exceeds
 * --max-qty, either rejects it ("qty N exceeds the C risk check's limit M")
 * or, with --clip, lowers its qty to the limit (scaling risk_amount by the
 * same factor). It only ever tightens: rejected signals and signals within
 * the limit pass unchanged.
 *
 *   risk_check [--socket PATH] [--name NAME] [--max-qty N] [--clip]
 *
 * Exit status: 0 after the daemon's shutdown notification or SIGINT/SIGTERM,
 * 1 on failure (cannot connect, registration refused, connection lost),
 * 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include "tradewire.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_NAME "c-risk-check"
#define DEFAULT_MAX_QTY 100

typedef struct {
    const char *name;
    long long max_qty;
    int clip;
    unsigned long calls;
} config;

static tw_client *g_conn;

static void on_signal(int sig)
{
    (void)sig;
    tw_stop_serving(g_conn); /* only sets a flag: async-signal-safe */
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: risk_check [--socket PATH] [--name NAME] [--max-qty N] [--clip]\n"
            "\n"
            "A tradewire risk stage (mode \"after\"): every approved signal whose qty is\n"
            "above N is rejected with the reason \"qty Q exceeds the C risk check's limit N\",\n"
            "or, with --clip, lowered to N (risk_amount scaled by the same factor).\n"
            "\n"
            "  --socket PATH   the daemon's socket (default: $TRADEWIRE_SOCKET, else\n"
            "                  $XDG_RUNTIME_DIR/tradewire.sock, else /tmp/tradewire-$UID/tradewire.sock)\n"
            "  --name NAME     the stage group name (default " DEFAULT_NAME ")\n"
            "  --max-qty N     the largest quantity let through, an integer >= 0 (default %d)\n"
            "  --clip          lower qty to N instead of rejecting the signal\n"
            "  --help          this text\n"
            "\n"
            "Runs until the daemon shuts down or SIGINT/SIGTERM (exit 0); exit 1 on failure, 2 on bad usage.\n",
            DEFAULT_MAX_QTY);
}

/* "150" for 150 and 150.0, "100.5" for 100.5 */
static void format_number(json_t *v, char *buf, size_t n)
{
    if (json_is_integer(v))
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    else
        snprintf(buf, n, "%.15g", json_number_value(v));
}

static json_t *check(const tw_stage_call *call, void *user, tw_error *err)
{
    config *cfg = user;
    json_t *list = call->output;
    cfg->calls++;
    if (!json_is_array(list)) /* mode after always has output; be lenient */
        list = json_object_get(call->input, "signals");
    if (!json_is_array(list)) {
        snprintf(err->message, sizeof err->message, "%s: the call carries no signal list", cfg->name);
        return NULL;
    }
    json_t *out = json_deep_copy(list);
    if (!out) {
        snprintf(err->message, sizeof err->message, "%s: out of memory", cfg->name);
        return NULL;
    }
    double max = (double)cfg->max_qty;
    size_t i, changed = 0;
    json_t *sig;
    json_array_foreach(out, i, sig) {
        if (!json_is_object(sig) || !json_is_true(json_object_get(sig, "approved")))
            continue;
        json_t *qty = json_object_get(sig, "qty");
        if (!json_is_number(qty) || json_number_value(qty) <= max)
            continue;
        double q = json_number_value(qty);
        changed++;
        if (cfg->clip) {
            json_t *risk = json_object_get(sig, "risk_amount");
            if (json_is_number(risk))
                json_object_set_new(sig, "risk_amount", json_real(json_number_value(risk) * (max / q)));
            json_object_set_new(sig, "qty", json_is_integer(qty) ? json_integer(cfg->max_qty) : json_real(max));
        } else {
            char qs[64], reason[160];
            format_number(qty, qs, sizeof qs);
            snprintf(reason, sizeof reason, "qty %s exceeds the C risk check's limit %lld", qs, cfg->max_qty);
            json_object_set_new(sig, "approved", json_false());
            json_object_set_new(sig, "rejection_reason", json_string(reason));
        }
    }
    fprintf(stderr, "%s: iteration %lld%s: %zu signals, %zu %s\n", cfg->name, (long long)call->iteration,
            call->dry_run ? " (dry run)" : "", json_array_size(out), changed, cfg->clip ? "clipped" : "rejected");
    return out;
}

/* --opt VALUE or --opt=VALUE; returns the value or NULL (not this option). */
static const char *opt_value(int argc, char **argv, int *i, const char *opt, int *missing)
{
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

int main(int argc, char **argv)
{
    config cfg = {DEFAULT_NAME, DEFAULT_MAX_QTY, 0, 0};
    const char *socket_path = NULL;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--clip") == 0) {
            cfg.clip = 1;
        } else if ((v = opt_value(argc, argv, &i, "--socket", &missing))) {
            socket_path = v;
        } else if ((v = opt_value(argc, argv, &i, "--name", &missing))) {
            cfg.name = v;
        } else if ((v = opt_value(argc, argv, &i, "--max-qty", &missing))) {
            char *end;
            errno = 0;
            long long n = strtoll(v, &end, 10);
            if (errno || end == v || *end || n < 0) {
                fprintf(stderr, "risk_check: --max-qty wants an integer >= 0, not '%s'\n", v);
                return 2;
            }
            cfg.max_qty = n;
        } else {
            if (missing)
                fprintf(stderr, "risk_check: %s needs a value\n", argv[i]);
            else
                fprintf(stderr, "risk_check: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!*cfg.name) {
        fprintf(stderr, "risk_check: --name must not be empty\n");
        return 2;
    }

    tw_error err;
    g_conn = tw_connect(socket_path, &err);
    if (!g_conn) {
        fprintf(stderr, "risk_check: %s\n", err.message);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    tw_stage_options opts = TW_STAGE_OPTIONS_INIT;
    opts.mode = "after";
    fprintf(stderr, "%s: serving risk on %s (max qty %lld, %s)\n", cfg.name, tw_socket_path(g_conn),
            cfg.max_qty, cfg.clip ? "clip" : "reject");
    int rc = tw_serve_stage(g_conn, "risk", cfg.name, &opts, check, &cfg, &err);
    if (rc < 0) {
        if (err.code != 0 && !tw_error_is_local(err.code))
            fprintf(stderr, "risk_check: register_stage refused: %s (%d %s)\n", err.message, err.code, err.type);
        else
            fprintf(stderr, "risk_check: %s\n", err.message);
    } else {
        fprintf(stderr, "%s: stopped after %lu calls\n", cfg.name, cfg.calls);
    }
    tw_close(g_conn);
    g_conn = NULL;
    return rc < 0 ? 1 : 0;
}
