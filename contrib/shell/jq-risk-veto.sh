#!/usr/bin/env bash
#
# jq-risk-veto.sh — a risk stage in one jq filter: approved BUY signals whose notional
# (qty × price) is over $MAX_NOTIONAL (default 10000) are rejected with the reason
# "notional over MAX"; every other signal is left as it is.
#
# It runs
#
#     tradewire serve-stage risk --name jq-veto --mode after -- jq -c --argjson max MAX "$veto_jq"
#
# The daemon calls the group after its built-in risk agent ("Remote stages" in
# docs/PROTOCOL.md): serve-stage writes each call's params ({stage, name,
# iteration, deadline, dry_run, input, output, account}) to jq's stdin as one line, and
# jq's stdout, the revised `output` list of TradingSignal, is the reply. A risk group may
# only tighten, which is all this filter does.
#
# Usage
#   contrib/shell/jq-risk-veto.sh [SERVE-STAGE OPTIONS]   serve until SIGINT/SIGTERM
#   contrib/shell/jq-risk-veto.sh --stdin                 only the jq part: params on stdin
#
# Options before `--` go to serve-stage, e.g. --socket PATH, --timeout MS, --name NAME
# (a second --name wins), --durable (calls fail closed while no veto is connected).
# Environment: MAX_NOTIONAL (a number, default 10000), TRADEWIRE (the CLI, default
# `tradewire` on PATH). Examples:
#   MAX_NOTIONAL=5000 contrib/shell/jq-risk-veto.sh
#   TRADEWIRE=.build/debug/tradewire contrib/shell/jq-risk-veto.sh --socket /tmp/tw.sock
#   tradewire run GOOGL --strategy TrendFollowing --dry-run     # from another shell
#
set -euo pipefail

max=${MAX_NOTIONAL:-10000}
if ! [[ $max =~ ^[0-9]+([.][0-9]+)?$ ]]; then
    echo "jq-risk-veto.sh: MAX_NOTIONAL must be a number, got '$max'" >&2
    exit 2
fi
command -v jq >/dev/null || { echo "jq-risk-veto.sh: jq is not installed" >&2; exit 2; }

# shellcheck disable=SC2016
veto_jq='
  .output
  | map(
      if .approved == true and .action == "BUY" and ((.qty // 0) * (.price // 0)) > $max
      then .approved = false | .rejection_reason = "notional over \($max)"
      else . end)'

case ${1-} in
    --stdin) exec jq -c --argjson max "$max" "$veto_jq" ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac

exec "${TRADEWIRE:-tradewire}" serve-stage risk --name jq-veto --mode after "$@" \
    -- jq -c --argjson max "$max" "$veto_jq"
