/* libFuzzer target: the experiment YAML parser (experiments/config.c) through
 * experiment_parse, the entry point that experiment_load reads files with.
 *
 * Input: the YAML text itself. Contract checked on every input:
 *  - a refusal says why, in one line that starts with the file's name (the
 *    parser's promise: FILE:LINE:COL: message, no newline inside);
 *  - an accepted file has a safe experiment name (it names files and reaches
 *    gnuplot: [A-Za-z0-9_.+=-], not starting with '.' or '-'), at least one
 *    run, run names that are one path component, and its resolved config
 *    serialises (config_to_yaml) and parses back to the same runs. */
#include <string.h>

#include "config.h"
#include "fuzz_common.h"

static int safe_name(const char *s) {
    if (!s[0] || s[0] == '.' || s[0] == '-') return 0;
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+=-", *p)) return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ExperimentConfig e;
    char err[2048] = "";
    if (experiment_parse(&e, (const char *)data, size, "fuzz.yaml", err, sizeof err) != 0) {
        FZ_CHECK(err[0] != '\0');
        FZ_CHECK(strchr(err, '\n') == NULL);
        FZ_CHECK(strncmp(err, "fuzz.yaml", 9) == 0);
        return 0;
    }
    FZ_CHECK(safe_name(e.name));
    FZ_CHECK(e.n_runs >= 1);
    for (int k = 0; k < e.n_runs; k++) {
        const char *n = e.runs[k].name;
        FZ_CHECK(n[0] && !strchr(n, '/') && strcmp(n, ".") && strcmp(n, ".."));
        /* what the results file stores must read back as the same run */
        char *yaml = config_to_yaml(&e.runs[k].c);
        FZ_CHECK(yaml != NULL);
        ExperimentConfig back;
        char err2[2048] = "";
        int rc = experiment_parse(&back, yaml, strlen(yaml), "stored-config", err2, sizeof err2);
        if (rc != 0) fprintf(stderr, "stored config of run %s does not parse back: %s\n", n, err2);
        FZ_CHECK(rc == 0);
        FZ_CHECK(back.n_runs == 1);
        /* the driver compares stored and current configs with memcmp: a round trip that changed a
         * byte would refuse an unchanged run as "trained with another configuration" */
        FZ_CHECK(memcmp(&back.runs[0].c, &e.runs[k].c, sizeof back.runs[0].c) == 0);
        free(yaml);
        experiment_free(&back);
    }
    experiment_free(&e);
    return 0;
}
