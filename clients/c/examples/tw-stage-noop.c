/*
 * tw-stage-noop — a remote stage member that returns the stage's output unchanged: the
 * member `make bench` times stage calls with (the cost of the protocol, not of a handler).
 *
 *   tw-stage-noop [--socket PATH] [--timeout MS] STAGE NAME
 *
 * Registers as an `after` member of (STAGE, NAME) and answers every stage.handle call
 * with its `output`, until the daemon shuts down or SIGINT/SIGTERM. Exit: 0 on an orderly
 * stop, 1 on errors, 2 on bad usage.
 */
#define _POSIX_C_SOURCE 200809L

#include "../tradewire.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tw_client *g_conn;

static void on_signal(int sig)
{
    (void)sig;
    if (g_conn) tw_stop_serving(g_conn);
}

static json_t *echo_output(const tw_stage_call *call, void *user, tw_error *err)
{
    (void)user;
    if (!call->output) {
        snprintf(err->message, sizeof err->message, "no output to return (register with mode after)");
        return NULL;
    }
    return json_incref(call->output);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tw-stage-noop [--socket PATH] [--timeout MS] STAGE NAME\n"
               "  answers every call of an `after` member of STAGE/NAME with the output unchanged\n");
}

int main(int argc, char **argv)
{
    const char *socket_path = NULL;
    tw_stage_options options = TW_STAGE_OPTIONS_INIT;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
            socket_path = argv[++i];
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            options.timeout_ms = atoi(argv[++i]);
            if (options.timeout_ms < 1 || options.timeout_ms > 300000) {
                fprintf(stderr, "tw-stage-noop: --timeout must be 1...300000\n");
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (argc - i != 2) {
        usage(stderr);
        return 2;
    }
    char path[4096];
    if (!socket_path) {
        if (tw_default_socket_path(path, sizeof path) != 0) {
            fprintf(stderr, "tw-stage-noop: no socket path\n");
            return 2;
        }
        socket_path = path;
    }
    tw_error err;
    memset(&err, 0, sizeof err);
    g_conn = tw_connect(socket_path, &err);
    if (!g_conn) {
        fprintf(stderr, "tw-stage-noop: %s\n", err.message);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    options.mode = "after";
    int rc = tw_serve_stage(g_conn, argv[i], argv[i + 1], &options, echo_output, NULL, &err);
    if (rc != 0) fprintf(stderr, "tw-stage-noop: %s\n", err.message);
    tw_close(g_conn);
    return rc == 0 ? 0 : 1;
}
