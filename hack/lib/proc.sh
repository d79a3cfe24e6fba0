# shellcheck shell=bash
# Process supervision without systemd: every daemon is started with setsid so
# it leads its own process group, and its pid file records "PID STARTTIME"
# (field 22 of /proc/PID/stat). Stopping signals the whole group, so children
# (vsftpd sessions, sshd sessions, postgres backends) go too; the start time
# makes a stale pid file harmless even if the kernel has reused the PID.

RUN_DIR=$STACK_DIR/run
LOG_DIR=$STACK_DIR/logs

_starttime() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }

# pid_of NAME: print the PID if the recorded process is still the one we
# started; otherwise remove the stale pid file and fail.
pid_of() {
  local f=$RUN_DIR/$1.pid pid st
  [[ -r $f ]] || return 1
  read -r pid st < "$f" || true
  if [[ -n ${pid:-} ]] && alive "$pid" && [[ $(_starttime "$pid") == "${st:-}" ]]; then
    echo "$pid"; return 0
  fi
  rm -f "$f"
  return 1
}

# start_daemon NAME CMD...: run CMD detached, in its own session, logging to
# logs/NAME.log (stdin: /dev/null, or STDIN_FILE opened for appending).
# Environment variables for CMD can be given with `env`.
start_daemon() {
  local name=$1; shift
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  printf '\n==== %s starting: %s\n' "$(date -Is)" "$*" >> "$LOG_DIR/$name.log"
  if [[ -n ${STDIN_FILE:-} ]]; then
    setsid "$@" >> "$LOG_DIR/$name.log" 2>&1 0>> "$STDIN_FILE" &
  else
    setsid "$@" >> "$LOG_DIR/$name.log" 2>&1 < /dev/null &
  fi
  local pid=$!
  # setsid execs in place (the background child is not a group leader), so $!
  # is the daemon itself and its PID is also its process-group ID.
  local st="" i
  for i in 1 2 3 4 5 6 7 8 9 10; do st=$(_starttime "$pid") && [[ -n $st ]] && break; sleep 0.05; done
  echo "$pid $st" > "$RUN_DIR/$name.pid"
}

# record_pid NAME PID: adopt a daemon started by its own tool (pg_ctl).
record_pid() {
  mkdir -p "$RUN_DIR"
  echo "$2 $(_starttime "$2")" > "$RUN_DIR/$1.pid"
}

# alive PID: the process exists and is not a zombie. (Our daemons are
# reparented to PID 1, which may reap them a little later.)
alive() {
  [[ -d /proc/$1 ]] || return 1
  local state
  state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $state && $state != Z && $state != X ]]
}

# descendants PID: every process below PID, including those that left its
# process group (sshd's per-connection children call setsid()).
descendants() {
  local kids k
  kids=$(ps -o pid= --ppid "$1" 2>/dev/null) || true
  for k in $kids; do echo "$k"; descendants "$k"; done
}

# stop_daemon NAME [GRACE_SECONDS]: TERM the process group and descendants,
# wait for them to exit, then KILL whatever is left.
stop_daemon() {
  local name=$1 grace=${2:-10} pid i p others
  pid=$(pid_of "$name") || return 0
  others=$(descendants "$pid")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for p in $others; do kill -TERM "$p" 2>/dev/null || true; done
  for ((i = 0; i < grace * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    log "$name did not stop in ${grace}s; killing it"
  fi
  # Anything left in the group, or below it, goes too.
  kill -KILL -- "-$pid" 2>/dev/null || true
  for p in $others; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
  rm -f "$RUN_DIR/$name.pid"
  return 0
}

# wait_for DESCRIPTION TIMEOUT_SECONDS CMD...: poll CMD until it succeeds.
wait_for() {
  local what=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      return 1
    fi
    sleep 0.2
  done
}

# tcp_open PORT: is something listening on 127.0.0.1:PORT?
tcp_open() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
