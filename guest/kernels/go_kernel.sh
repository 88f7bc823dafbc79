# go_kernel.sh: Go for the code interpreter (docs/code-interpreter.md). No state between cells:
# each cell is built and run as its own program. A cell without a package clause gets
# `package main`. The kernel outlives interrupts (a trap, not an ignore, so the compiler and the
# program still get the SIGINT); its request pipe is closed for them.
json() { # a JSON string of $1
  local s=$1
  s=${s//\\/\\\\} s=${s//\"/\\\"} s=${s//$'\n'/\\n} s=${s//$'\r'/\\r} s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}
error() { # error NAME VALUE TRACEBACK
  printf '{"type":"error","name":%s,"value":%s,"traceback":%s}\n' \
    "$(json "$1")" "$(json "$2")" "$(json "$3")" >&4
}
trap : INT
printf '{"type":"ready","language":"go","version":%s}\n' "$(json "$(go version 2>&1)")" >&4
while IFS= read -r path <&3; do
  dir=$(mktemp -d "${TMPDIR:-/tmp}/go-cell.XXXXXX")
  if grep -q '^[[:space:]]*package[[:space:]]' "$path"; then
    cp "$path" "$dir/main.go"
  else
    { echo 'package main'; cat "$path"; } >"$dir/main.go"
  fi
  if build=$(cd "$dir" && go build -o prog main.go 2>&1 3<&-); then
    "$dir/prog" </dev/null 3<&-
    status=$?
    if [ "$status" -eq 130 ]; then
      error Interrupted "the cell was interrupted" ""
    elif [ "$status" -ne 0 ]; then
      error ExitError "exit status $status" ""
    fi
  elif [ $? -eq 130 ]; then
    error Interrupted "the cell was interrupted while compiling" ""
  else
    # The compiler's first message, without go's "# command-line-arguments" heading.
    first=$(printf '%s\n' "$build" | grep -v '^#' | head -n 1)
    error CompilationError "${first#./}" "$build"
  fi
  rm -rf "$dir"
  printf '{"type":"done"}\n' >&4
done
