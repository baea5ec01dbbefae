#!/usr/bin/env bash
#
# Vendored: a verbatim copy of the shared reference peer (../shared/peers/pg_debit_peer.sh
# beside the main checkout, sha256 0b280651bb09e1c01a67f5b6ec52c21acb11b11844a05983e5a37389065c6918),
# kept in the repository so that `make bench` runs it from a fresh clone, which has no
# ../shared. Only these comment lines are added: `sed 2,9d` of this file is the original
# byte for byte. It is a shared reference: do not change what it measures here; change
# it where it came from and copy it again. benchmarks/side_by_side.py runs it.
#
# pg_debit_peer.sh - PostgreSQL "peer" anchor for a cafeteria payment system.
#
# Measures the core operation ("one tap" = one durable debit of a member's
# purse + one idempotency-keyed journal row, in one transaction) on a private,
# throw-away PostgreSQL cluster on this machine, loopback TCP only.
#
# End to end: install PostgreSQL from Debian if missing -> pg_test_fsync on the
# same filesystem -> initdb a private cluster (port 55432, 127.0.0.1 only,
# shared_buffers=1GB, max_connections=200, fsync=on, synchronous_commit=on)
# -> load 100,000 members x 3 purse kinds -> pgbench runs (closed loop
# -c16/-c64, open loop -R1000/2000/3000/4000 at -c64, two labelled ref_* rows
# (prepared protocol; one-statement tap), synchronous_commit=off closed loop
# -c16/-c64 for reference) -> summary table -> stop server -> remove temp dir.
# Runtime ~5 min (pg_test_fsync ~80 s, 10 runs x 20 s + warm-up).
#
# Must run as root (uses runuser to act as the 'postgres' OS user) or as a
# non-root user that can run initdb itself. Never touches any existing cluster.
#
# Tunables (env): PGPEER_BASE (a new temporary directory), PGPEER_PORT (55432),
#   PGPEER_DURATION (20 s per run), PGPEER_MEMBERS (100000),
#   PGPEER_FSYNC_SECS (5, pg_test_fsync seconds per test),
#   PGPEER_KEEP (0; 1 keeps the run dir with pgbench logs / server log).
set -euo pipefail
export LC_ALL=C

BASE=${PGPEER_BASE:-}
PORT=${PGPEER_PORT:-55432}
DUR=${PGPEER_DURATION:-20}
MEMBERS=${PGPEER_MEMBERS:-100000}
FSYNC_SECS=${PGPEER_FSYNC_SECS:-5}
KEEP=${PGPEER_KEEP:-0}
HOST=127.0.0.1
T_START=$(date +%s)

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- 0. install
find_pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
PGBIN=$(find_pgbin || true)
if [[ -z "$PGBIN" || ! -x "$PGBIN/initdb" || ! -x "$PGBIN/pgbench" || ! -x "$PGBIN/pg_test_fsync" ]]; then
  [[ $(id -u) -eq 0 ]] || die "PostgreSQL server not installed and not root"
  log "installing PostgreSQL from Debian (apt-get update; apt-get install -y postgresql)"
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
  PGBIN=$(find_pgbin)
fi
[[ -x "$PGBIN/initdb" ]] || die "no initdb found under /usr/lib/postgresql/*/bin"
PSQL="$PGBIN/psql"; PGBENCH="$PGBIN/pgbench"

if [[ $(id -u) -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || die "OS user 'postgres' missing"
  AS_PG=(runuser -u postgres --); PGOWNER=postgres
else
  AS_PG=(); PGOWNER=$(id -un)
fi

# ------------------------------------------------------------ 1. temp dirs
if ss -ltn 2>/dev/null | awk '{print $4}' | grep -qE "[:.]${PORT}\$"; then
  die "port $PORT already in use"
fi
CREATED_BASE=0
if [[ -z "$BASE" ]]; then BASE=$(mktemp -d -t pgpeer.XXXXXX); CREATED_BASE=1
elif [[ ! -d "$BASE" ]]; then mkdir -p "$BASE"; CREATED_BASE=1; fi
chmod 755 "$BASE"
DATA="$BASE/data"
[[ -e "$DATA" ]] && die "$DATA already exists; refusing to reuse an existing cluster/dir"
RUN=$(mktemp -d "$BASE/run.XXXXXX")
mkdir "$DATA" "$RUN/log"
chown "$PGOWNER" "$DATA" "$RUN" "$RUN/log"
chmod 700 "$DATA"; chmod 755 "$RUN" "$RUN/log"
PM_PID=""

cleanup() {
  local rc=$?
  set +e
  if [[ -n "$PM_PID" ]] && kill -0 "$PM_PID" 2>/dev/null; then
    log "stopping server (postmaster PID $PM_PID) with pg_ctl"
    "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1 \
      || kill -TERM "$PM_PID" 2>/dev/null
    for _ in $(seq 60); do kill -0 "$PM_PID" 2>/dev/null || break; sleep 1; done
  fi
  if [[ "$KEEP" == 1 ]]; then
    rm -rf "$DATA"; log "kept run dir $RUN (data dir removed)"
  else
    rm -rf "$DATA" "$RUN"
    [[ $CREATED_BASE == 1 ]] && rmdir "$BASE" 2>/dev/null
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------ 2. pg_test_fsync
log "pg_test_fsync on $(df --output=source,fstype "$RUN" | tail -1) (${FSYNC_SECS}s per test)"
"$PGBIN/pg_test_fsync" -s "$FSYNC_SECS" -f "$RUN/pg_test_fsync.tmp" > "$RUN/pg_test_fsync.out" 2>&1
rm -f "$RUN/pg_test_fsync.tmp"

# ----------------------------------------------------------- 3. initdb
log "initdb $DATA"
"${AS_PG[@]}" "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C >"$RUN/initdb.out" 2>&1 \
  || { cat "$RUN/initdb.out" >&2; die "initdb failed"; }
cat >> "$DATA/postgresql.conf" <<EOF

# ---- pg_debit_peer.sh overrides (everything else: initdb defaults) ----
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = ''     # TCP loopback only
shared_buffers = 1GB
max_connections = 200
fsync = on
synchronous_commit = on
EOF
"${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$DATA" -l "$RUN/server.log" -w -t 120 start >/dev/null \
  || { cat "$RUN/server.log" >&2; die "server start failed"; }
PM_PID=$(head -1 "$DATA/postmaster.pid")
log "server up, postmaster PID $PM_PID, port $PORT"

export PGHOST=$HOST PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
q() { "$PSQL" -X -v ON_ERROR_STOP=1 -qAt -c "$1"; }

# ------------------------------------------------------ 4. schema + load
log "loading $MEMBERS members x 3 purse kinds"
"$PSQL" -X -v ON_ERROR_STOP=1 -q <<EOF
CREATE TABLE purse(
  member_no bigint,
  kind      smallint,
  balance   bigint NOT NULL CHECK (balance >= 0),
  PRIMARY KEY (member_no, kind));
CREATE TABLE journal(
  id        bigserial PRIMARY KEY,
  idem      text UNIQUE NOT NULL,
  member_no bigint,
  kind      smallint,
  amount    bigint,
  till      int,
  at        timestamptz DEFAULT now());
INSERT INTO purse(member_no, kind, balance)
  SELECT m, k, 1000000 FROM generate_series(1, $MEMBERS) m, generate_series(1, 3) k;
VACUUM ANALYZE purse;
VACUUM ANALYZE journal;
CHECKPOINT;
EOF

# One tap = one transaction. Idempotency key = run-client-random63.
cat > "$RUN/tap.sql" <<EOF
\set m random(1, $MEMBERS)
\set r random(1, 9223372036854775807)
\set till random(1, 32)
BEGIN;
UPDATE purse SET balance = balance - 500 WHERE member_no = :m AND kind = 1 AND balance >= 500;
INSERT INTO journal(idem, member_no, kind, amount, till) VALUES (concat_ws('-', :run::text, :client_id::text, :r::text), :m, 1, 500, :till);
COMMIT;
EOF

# Reference variant (not the spec'd workload): the same tap as ONE statement / one round trip;
# the journal row is written only if the debit succeeded.
cat > "$RUN/tap_onestmt.sql" <<EOF
\set m random(1, $MEMBERS)
\set r random(1, 9223372036854775807)
\set till random(1, 32)
WITH d AS (UPDATE purse SET balance = balance - 500 WHERE member_no = :m AND kind = 1 AND balance >= 500 RETURNING member_no) INSERT INTO journal(idem, member_no, kind, amount, till) SELECT concat_ws('-', :run::text, :client_id::text, :r::text), member_no, 1, 500, :till FROM d;
EOF

PG_VERSION=$(q "SELECT version()")
SETTINGS=$(q "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name) FROM pg_settings
              WHERE name IN ('shared_buffers','max_connections','fsync','synchronous_commit','wal_sync_method',
                             'full_page_writes','max_wal_size','checkpoint_timeout','wal_level','listen_addresses')")

# ------------------------------------------------------------ 5. runs
cpu_snap() { awk '/^cpu /{print $2+$3+$4+$7+$8, $6, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
RESULTS="$RUN/results.tsv"
printf 'name\tsync_commit\tclients\ttarget_rate\ttps\tlat_avg_ms\tlat_sd_ms\tp50_ms\tp90_ms\tp99_ms\tp999_ms\tp99_mid_ms\tp999_mid_ms\tmax_ms\ttxns\tfailed\tlag_avg_ms\tcpu_busy%%\tiowait%%\tpgbench_cpu%%\n' > "$RESULTS"
RUN_NO=0

bench() {  # bench NAME CLIENTS RATE(0=closed loop) RECORD(1/0) [DURATION] [SCRIPT] [PROTOCOL]
  local name=$1 clients=$2 rate=$3 record=$4 dur=${5:-$DUR} script=${6:-$RUN/tap.sql} proto=${7:-simple}
  RUN_NO=$((RUN_NO + 1))
  q "CHECKPOINT" >/dev/null
  local sc; sc=$(q "SHOW synchronous_commit")
  local args=(-n -f "$script" -M "$proto" -j 2 -c "$clients" -T "$dur" -P 5 -D "run=$RUN_NO")
  [[ "$rate" != 0 ]] && args+=(-R "$rate")
  [[ "$record" == 1 ]] && args+=(-l --log-prefix="$RUN/log/$name")
  local mode="closed loop"; [[ "$rate" != 0 ]] && mode="open loop -R $rate"
  log "run $RUN_NO: $name (synchronous_commit=$sc, -c $clients, $mode, $(basename "$script"), -M $proto, ${dur}s)"
  local c0; c0=$(cpu_snap)
  local TIMEFORMAT='%3U %3S'
  { time "$PGBENCH" "${args[@]}" > "$RUN/$name.out" 2>&1; } 2> "$RUN/$name.time" \
    || { cat "$RUN/$name.out" >&2; die "pgbench $name failed"; }
  local c1; c1=$(cpu_snap)
  [[ "$record" == 1 ]] || return 0
  local tps lat sd failed lag txns pct cpu
  tps=$(awk '/^tps = /{printf "%.0f", $3; exit}' "$RUN/$name.out")
  lat=$(awk '/^latency average = /{print $4; exit}' "$RUN/$name.out")
  sd=$(awk '/^latency stddev = /{print $4; exit}' "$RUN/$name.out")
  failed=$(awk -F': ' '/^number of failed transactions/{split($2,a," "); print a[1]; exit}' "$RUN/$name.out")
  lag=$(awk '/^rate limit schedule lag: avg/{print $6; exit}' "$RUN/$name.out")
  # per-transaction log: client txn_no latency_us script_no epoch_s epoch_us [lag_us]
  # (under -R, pgbench measures latency from the *scheduled* start: no coordinated omission)
  pct=$(cat "$RUN/log/$name".* | awk '$3 ~ /^[0-9]+$/ {print $3}' | sort -n | awk '
        {v[NR]=$1} END{ if (NR==0) {print "- - - - - 0"; exit}
          i50=int(NR*0.50+0.999999); i90=int(NR*0.90+0.999999); i99=int(NR*0.99+0.999999); i999=int(NR*0.999+0.999999);
          printf "%.3f %.3f %.3f %.3f %.3f %d\n", v[i50]/1000, v[i90]/1000, v[i99]/1000, v[i999]/1000, v[NR]/1000, NR }')
  # host CPU busy/iowait % over the run (all cores = 100), and pgbench's own share of the host's cores
  cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN{split(a,x," "); split(b,y," "); t=y[3]-x[3]; if(t<=0)t=1;
          printf "%.0f\t%.0f", 100*(y[1]-x[1])/t, 100*(y[2]-x[2])/t}')
  local bcpu; bcpu=$(awk -v d="$dur" -v n="$(nproc)" '{printf "%.0f", 100*($1+$2)/(d*n)}' "$RUN/$name.time")
  read -r p50 p90 p99 p999 pmax txns <<<"$pct"
  # same, restricted to the steady middle: txns ending >=2 s after the first and >=1 s before the last
  # completion (drops connection ramp-up / post-CHECKPOINT full-page-write burst / disconnect at the end)
  local mid; mid=$(cat "$RUN/log/$name".* | awk '$3 ~ /^[0-9]+$/ {printf "%.0f %s\n", $5*1000000+$6, $3}' | sort -k1,1n |
        awk '{t[NR]=$1; l[NR]=$2} END{for(i=1;i<=NR;i++) if(t[i]>=t[1]+2000000 && t[i]<=t[NR]-1000000) print l[i]}' | sort -n |
        awk '{v[NR]=$1} END{ if (NR==0) {print "-\t-"; exit}
          printf "%.3f\t%.3f\n", v[int(NR*0.99+0.999999)]/1000, v[int(NR*0.999+0.999999)]/1000 }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$sc" "$clients" \
    "${rate/#0/-}" "$tps" "$lat" "${sd:--}" "$p50" "$p90" "$p99" "$p999" "$mid" "$pmax" "$txns" "${failed:--}" "${lag:--}" "$cpu" "$bcpu" >> "$RESULTS"
}

bench warmup        16 0    0 5
bench closed_c16    16 0    1
bench closed_c64    64 0    1
bench open_R1000    64 1000 1
bench open_R2000    64 2000 1
bench open_R3000    64 3000 1   # extra point (not in the spec'd set) to bracket the knee
bench open_R4000    64 4000 1
# reference only (not the spec'd workload): same tap with prepared statements, and as one statement
bench ref_prepared_c16 16 0 1 "$DUR" "$RUN/tap.sql" prepared
bench ref_onestmt_c16  16 0 1 "$DUR" "$RUN/tap_onestmt.sql" prepared
q "ALTER SYSTEM SET synchronous_commit = off" >/dev/null; q "SELECT pg_reload_conf()" >/dev/null; sleep 1
bench nosync_closed_c16 16 0 1
bench nosync_closed_c64 64 0 1
q "ALTER SYSTEM RESET synchronous_commit" >/dev/null; q "SELECT pg_reload_conf()" >/dev/null

# Consistency check: every committed tap debited 500 from kind 1 and wrote one journal row.
CHECK=$(q "SELECT (SELECT count(*) FROM journal) || ' journal rows; '
              || (SELECT (sum(1000000 - balance) / 500)::bigint FROM purse WHERE kind = 1) || ' debits of 500; '
              || (SELECT count(*) FROM purse WHERE kind <> 1 AND balance <> 1000000) || ' untouched-kind rows changed; '
              || (SELECT count(*) FROM purse WHERE balance < 500) || ' purses below 500'")
DBSIZE=$(q "SELECT pg_size_pretty(pg_database_size('postgres'))")

# ---------------------------------------------------------- 6. summary
T_END=$(date +%s)
{
  echo
  echo "================ pg_debit_peer summary ================"
  echo "host:      $(nproc) cores ($(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)), $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
  echo "storage:   $(df --output=source,fstype "$RUN" | tail -1 | tr -s ' ') (data dir $DATA)"
  echo "server:    $PG_VERSION"
  echo "settings:  $SETTINGS"
  echo "workload:  1 tap = BEGIN; UPDATE purse (member random 1..$MEMBERS, kind 1, -500, balance>=500);"
  echo "           INSERT journal (unique text idem key); COMMIT  -- pgbench -n -j 2, simple protocol, TCP $HOST:$PORT,"
  echo "           ${DUR}s per run, CHECKPOINT before each run; pgbench runs on the same $(nproc)-core host."
  echo "           latencies in ms; p* from per-transaction logs (-l); under -R latency counts from scheduled start."
  echo "           *_mid: only txns completing >=2 s after the first / >=1 s before the last completion (steady state)."
  echo "           ref_* rows are NOT the spec'd workload: ref_prepared = same 4-statement tap with -M prepared;"
  echo "           ref_onestmt = tap as one CTE statement (UPDATE ... RETURNING -> INSERT), -M prepared, 1 round trip."
  echo "           cpu_busy/iowait: whole host (2 cores = 100%); pgbench_cpu: load generator's share of the host."
  echo
  awk -F'\t' '{for(i=1;i<=NF;i++){c[NR,i]=$i; if(length($i)>w[i])w[i]=length($i)}; if(NF>nf)nf=NF}
       END{for(r=1;r<=NR;r++){line=""; for(i=1;i<=nf;i++) line=line sprintf(i==1?"%-" w[i] "s":"  %" w[i] "s", c[r,i]); print line}}' "$RESULTS"
  echo
  echo "consistency: $CHECK; db size $DBSIZE"
  echo
  echo "pg_test_fsync (-s $FSYNC_SECS, same filesystem), ops/sec (usecs/op):"
  awk '/^Compare file sync methods/{on=1} /^Compare open_sync/{on=0} on && NF' "$RUN/pg_test_fsync.out" | sed 's/^/  /'
  echo
  echo "runtime:   $((T_END - T_START)) s (wall, incl. install check, pg_test_fsync, initdb, load, runs)"
  echo "======================================================="
} | tee "$RUN/summary.txt"
