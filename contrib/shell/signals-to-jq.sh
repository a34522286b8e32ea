#!/usr/bin/env bash
#
# signals-to-jq.sh — watch the strategy stage: one line per trading signal,
#
#     SYMBOL <TAB> ACTION <TAB> STRATEGY <TAB> CONFIDENCE
#     AAPL	BUY	TrendFollowing	0.82
#
# as each `signals_ready` event arrives. The whole pipeline is
#
#     tradewire subscribe --json signals_ready | jq --unbuffered -r "$signals_jq"
#
# `tradewire subscribe --json` prints one Event object per line (docs/PROTOCOL.md,
# "Objects": {seq, event_type, timestamp, data, metadata}); for signals_ready, `data` is a
# list of TradingSignal ({symbol, action, strategy_name, confidence, ...}).
#
# Usage
#   contrib/shell/signals-to-jq.sh [PATTERN]           via the tradewire CLI ($TRADEWIRE,
#                                                      default `tradewire` on PATH)
#   contrib/shell/signals-to-jq.sh --shell [PATTERN]   via tw_subscribe from
#                                                      clients/shell/tradewire.sh (socat/nc)
#   contrib/shell/signals-to-jq.sh --stdin             only the jq part: Event lines on stdin
#
# PATTERN defaults to signals_ready; validated_ready and approved_ready carry the same
# [TradingSignal] list (`'*_ready'` works too: events whose data is not a signal list are
# skipped). Examples:
#   contrib/shell/signals-to-jq.sh approved_ready | column -t
#   contrib/shell/signals-to-jq.sh --shell | awk -F'\t' '$2 != "HOLD"'
#   source clients/shell/tradewire.sh
#   tw_subscribe signals_ready | contrib/shell/signals-to-jq.sh --stdin
#
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

# Confidence is 0..1; print it with two decimals (jq 1.6 has no printf).
# shellcheck disable=SC2016
signals_jq='
  def two_places:
    if type == "number" then
      (. * 100 | round) as $c
      | "\($c / 100 | floor).\($c % 100 | tostring | if length < 2 then "0" + . else . end)"
    else "-" end;
  select(type == "object")
  | .data
  | select(type == "array")
  | .[]
  | select(type == "object" and has("action"))
  | [.symbol, .action, .strategy_name, (.confidence | two_places)]
  | map(. // "-" | tostring)
  | @tsv'

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mode=cli
case ${1-} in
    --stdin) mode=stdin; shift ;;
    --shell) mode=shell; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
event_pattern=${1:-signals_ready}

case $mode in
    stdin)
        jq --unbuffered -r "$signals_jq"
        ;;
    cli)
        "${TRADEWIRE:-tradewire}" subscribe --json "$event_pattern" | jq --unbuffered -r "$signals_jq"
        ;;
    shell)
        # shellcheck source=../../clients/shell/tradewire.sh
        source "$here/../../clients/shell/tradewire.sh"
        tw_subscribe "$event_pattern" | jq --unbuffered -r "$signals_jq"
        ;;
esac
