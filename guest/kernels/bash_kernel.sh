# bash_kernel.sh: a persistent bash for the code interpreter (docs/code-interpreter.md).
# An interactive bash keeps the context: SIGINT aborts the running command (breaking loops, as
# Ctrl-C does at a prompt) and the shell reads on. It reads from a pipe fed by a reader of the
# request fd, which turns each cell's path into two lines: source the cell, then report.
exec bash --noprofile --noediting --rcfile "${BASH_SOURCE%/*}/bash_kernel_rc" -i < <(
  trap '' INT # the interrupt is for the cell, not for this reader
  while IFS= read -r path <&3; do
    printf '. %q </dev/null\n__sbx_cell_done $?\n' "$path"
  done) 3<&-
