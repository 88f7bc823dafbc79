#!/usr/bin/env bash
# The Go kernel of the code interpreter (docs/code-interpreter.md, "Kernel protocol"):
# `bash go_kernel.sh`. Nothing persists between cells: each is a program of its own, built in a
# fresh directory and run in the kernel's working directory. A cell without a package clause gets
# "package main; " in front of its first line, which keeps the compiler's line numbers right.

# Sets REPLY to $1 as a JSON string.
json_string() {
  local s=$1 hex char i
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  for ((i = 1; i < 32; i++)); do
    printf -v hex '%02x' "$i"
    printf -v char '%b' "\\x$hex"
    s=${s//"$char"/\\u00$hex}
  done
  REPLY="\"$s\""
}

error() { # NAME VALUE TRACEBACK
  local value
  json_string "$2"
  value=$REPLY
  json_string "$3"
  printf '{"type":"error","name":"%s","value":%s,"traceback":%s}\n' "$1" "$value" "$REPLY" >&4
}

version=$(go version) || exit 1
version=${version#go version }
trap '' INT
printf '{"type":"ready","language":"go","version":"%s"}\n' "${version%% *}" >&4
while read -r cell <&3; do
  interrupted=
  trap 'interrupted=1' INT
  dir=$(mktemp -d)
  source=$(<"$cell")
  if [[ $source =~ (^|$'\n')[[:space:]]*package[[:space:]] ]]; then
    printf '%s\n' "$source" >"$dir/main.go"
  else
    printf 'package main; %s\n' "$source" >"$dir/main.go"
  fi
  # The program and the compiler must not inherit the agent's pipes (3 and 4).
  if ! log=$(cd "$dir" && go build -o prog main.go 2>&1 </dev/null 3<&- 4>&-); then
    [[ $interrupted ]] || error CompilationError "$(grep -m1 -v '^#' <<<"$log")" "$log"
  elif [[ ! $interrupted ]]; then
    "$dir/prog" </dev/null 3<&- 4>&-
    status=$?
    [[ $interrupted ]] || ((status == 0)) || error ExitError "exit status $status" ''
  fi
  trap '' INT
  [[ $interrupted ]] && error Interrupted interrupted ''
  rm -rf "$dir" "$cell"
  printf '{"type":"done"}\n' >&4
done
