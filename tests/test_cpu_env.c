/* A mistyped CBNN_SIMD (core/cpu.h): the library records it and falls back
 * to the C tables without exiting; the program reports it and exits 2.
 *
 *   test_cpu_env CYCLEBNN
 *
 * 1. This binary re-run with CBNN_SIMD=bogus --child: cpu_env_error() names
 *    the value, cpu_features() is the C level, and the process is still
 *    alive afterwards (before issue 13 item 6, the library called exit(2)).
 * 2. CYCLEBNN with CBNN_SIMD=bogus: exit status 2 and one line on stderr,
 *    "cyclebnn: CBNN_SIMD=bogus: unknown value; accepted: ...", before it
 *    reads any argument (a --dry-run, which runs no kernel, exits 2 too).
 * 3. The same command with CBNN_SIMD=avx2 and unset: exit 0.
 *
 * No testutil.c: its start-up check would stop the child of 1 first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cpu.h"

static int failures = 0, checks = 0;
#define CHECK(cond, ...)                                         \
    do {                                                         \
        checks++;                                                \
        if (!(cond)) {                                           \
            failures++;                                          \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                        \
            fprintf(stderr, "\n");                               \
        }                                                        \
    } while (0)

static int child(void) {
    const char *e = cpu_env_error();
    if (!e || !strstr(e, "CBNN_SIMD=bogus: unknown value; accepted: native")) {
        fprintf(stderr, "child: cpu_env_error() = '%s'\n", e ? e : "(null)");
        return 1;
    }
    unsigned f = cpu_features(), d = cpu_detected(); /* each used to exit(2) here */
    if (f != CPU_LEVEL_C) {
        fprintf(stderr, "child: cpu_features() = %#x with a bad CBNN_SIMD, want the C level 0 (detected %#x)\n", f, d);
        return 1;
    }
    printf("child: C tables, still running\n");
    return 0;
}

/* run argv with CBNN_SIMD = simd (NULL: unset); returns the exit status
 * (-1: did not exit normally), stderr into err */
static int run(char *const argv[], const char *simd, char *err, size_t errlen) {
    int fd[2];
    if (pipe(fd)) return -1;
    fflush(stdout); /* or the child's freopen would write our buffered lines a second time */
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        close(fd[1]);
        if (!freopen("/dev/null", "w", stdout)) _exit(127);
        if (simd) setenv("CBNN_SIMD", simd, 1);
        else unsetenv("CBNN_SIMD");
        unsetenv("CBNN_NO_SIMD");
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < errlen && (k = read(fd[0], err + n, errlen - 1 - n)) > 0) n += (size_t)k;
    err[n] = '\0';
    char sink[256];
    while (read(fd[0], sink, sizeof sink) > 0) {} /* drain, so the child never blocks on a full pipe */
    close(fd[0]);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--child")) return child();
    if (argc != 2) {
        fprintf(stderr, "usage: test_cpu_env CYCLEBNN\n");
        return 2;
    }
    char err[4096];

    char *self[] = {"/proc/self/exe", "--child", NULL};
    int rc = run(self, "bogus", err, sizeof err);
    CHECK(rc == 0, "the library with CBNN_SIMD=bogus: exit %d (want 0: no exit in library code), stderr '%s'", rc,
          err);

    const char *root = getenv("CBNN_SOURCE_ROOT");
    char yaml[4096];
    snprintf(yaml, sizeof yaml, "%s/experiments/quick/ablation_cycles.yaml", root ? root : ".");
    char *cyclebnn[] = {argv[1], "--dry-run", yaml, NULL};
    rc = run(cyclebnn, "bogus", err, sizeof err);
    const char *want = "cyclebnn: CBNN_SIMD=bogus: unknown value; accepted: native avx512 avx-vnni avx2 c none";
    const char *nl = strchr(err, '\n');
    CHECK(rc == 2 && !strncmp(err, want, strlen(want)) && nl && nl[1] == '\0',
          "cyclebnn with CBNN_SIMD=bogus: exit %d, stderr '%s' (want 2 and one line starting '%s')", rc, err, want);
    printf("CBNN_SIMD=bogus cyclebnn --dry-run: exit %d, %s", rc, err);

    rc = run(cyclebnn, "avx2", err, sizeof err);
    CHECK(rc == 0, "cyclebnn --dry-run with CBNN_SIMD=avx2: exit %d, stderr '%s'", rc, err);
    rc = run(cyclebnn, NULL, err, sizeof err);
    CHECK(rc == 0, "cyclebnn --dry-run with CBNN_SIMD unset: exit %d, stderr '%s'", rc, err);

    printf("cpu_env: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
