/* pause: the process that holds a pod sandbox's namespaces open.
 *
 * containerd's CRI plugin starts it as the first process of every pod (the
 * `sandbox_image`). It must do nothing, reap zombies it inherits as PID 1,
 * and exit promptly on SIGINT/SIGTERM so that stopping a pod is fast.
 * Built with `gcc -static` by hack/images/build-pause (no libc in the image).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    puts("tributary pause 1.0");
    return 0;
  }
  if (getpid() != 1) {
    /* Harmless outside a PID namespace, but worth a word in the log. */
    fputs("pause: warning: not running as PID 1\n", stderr);
  }
  struct sigaction stop = {.sa_handler = on_stop};
  struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP};
  if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
      sigaction(SIGCHLD, &child, NULL) < 0) {
    perror("pause: sigaction");
    return 1;
  }
  for (;;) {
    pause();
  }
}
