#!/usr/bin/env bash
# The bash kernel of the code interpreter (docs/code-interpreter.md, "Kernel protocol"):
# `bash --norc --noprofile bash_kernel.sh`. Each cell is sourced into this shell, so its working
# directory, variables, functions and aliases persist; `exit` (or a failure under `set -e`) ends
# the context, as in a terminal.
#
# Interrupting: the INT trap cannot simply `return` (that leaves the innermost function only, and
# the cell goes on). It arms a DEBUG trap instead which, under extdebug, makes every following
# command return from its function or sourced file, until the cell is left.
# Kernel names start with __kernel_; the kernel's own commands run in the cell's shell options,
# hence ${var-} for variables that may be unset.

__kernel_unwind() {
  # Inside this function BASH_SOURCE has its own entry, the kernel's and those of the cell.
  if [[ ${__kernel_interrupted-} && ${#BASH_SOURCE[@]} -gt 2 ]]; then return 2; fi
  return 0
}

shopt -s expand_aliases
trap '' INT
printf '{"type":"ready","language":"bash","version":"%s"}\n' "${BASH_VERSION%%(*}" >&4
while read -r __kernel_cell <&3; do
  __kernel_interrupted=
  trap '__kernel_interrupted=1; set -T; shopt -s extdebug; trap __kernel_unwind DEBUG' INT
  # The agent's pipes are closed for the cell: its commands neither see nor inherit them.
  # shellcheck source=/dev/null
  . "$__kernel_cell" </dev/null 3<&- 4>&-
  __kernel_status=$?
  trap '' INT
  if [[ $__kernel_interrupted ]]; then
    trap - DEBUG
    shopt -u extdebug
    set +T
    printf '{"type":"error","name":"Interrupted","value":"interrupted","traceback":""}\n' >&4
  elif [[ $__kernel_status != 0 ]]; then
    printf '{"type":"error","name":"CommandFailed","value":"exit status %d","traceback":""}\n' \
      "$__kernel_status" >&4
  fi
  printf '{"type":"done"}\n' >&4
done
