/* hpcansible: hand a secret to a program that takes it only as an argument (redis-benchmark -a)
 * without it showing in ps. Loaded with LD_PRELOAD; before main() runs, every argument equal to
 * "@HPCANSIBLE_SECRET" is replaced by the value of the environment variable HPCANSIBLE_SECRET.
 * The program's argv array then points at a private copy, while the kernel's copy of the
 * arguments (/proc/PID/cmdline, which ps and every user of the node read) keeps the placeholder.
 * The environment (/proc/PID/environ) is readable only by the job's owner. */
#include <stdlib.h>
#include <string.h>

#define PLACEHOLDER "@HPCANSIBLE_SECRET"

static void hpcansible_replace_secret(int argc, char **argv, char **envp) {
    (void)envp;
    const char *secret = getenv("HPCANSIBLE_SECRET");
    if (secret == NULL) {
        return;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], PLACEHOLDER) == 0) {
            char *copy = strdup(secret);
            if (copy != NULL) {
                argv[i] = copy;
            }
        }
    }
}

/* glibc calls the init_array functions of every loaded object with (argc, argv, envp). */
__attribute__((section(".init_array"), used)) static void (*hpcansible_init)(int, char **, char **) =
    hpcansible_replace_secret;
