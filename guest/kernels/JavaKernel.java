// The Java kernel of the code interpreter (docs/code-interpreter.md, "Kernel protocol"), on the
// jdk.jshell API: snippets run in this JVM (the "local" execution engine), so they print to fd 1
// and 2 directly and their definitions persist from cell to cell.
import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Collectors;
import jdk.jshell.DeclarationSnippet;
import jdk.jshell.Diag;
import jdk.jshell.EvalException;
import jdk.jshell.JShell;
import jdk.jshell.JShellException;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis.CompletionInfo;
import jdk.jshell.UnresolvedReferenceException;
import sun.misc.Signal;

import static java.nio.charset.StandardCharsets.UTF_8;

public class JavaKernel {
    // What the jshell tool imports by default.
    static final String[] IMPORTS = {"java.io", "java.math", "java.net", "java.nio.file",
        "java.util", "java.util.concurrent", "java.util.function", "java.util.prefs",
        "java.util.regex", "java.util.stream"};

    static OutputStream events;
    static JShell shell;
    static volatile Cell current; // the cell being run: SIGINT between cells is ignored

    static final class Cell {
        volatile boolean interrupted;
        boolean finished; // guarded by the cell itself: no stop() once it is over
    }

    public static void main(String[] args) throws IOException {
        openOutput();
        events = new FileOutputStream("/proc/self/fd/4");
        BufferedReader requests = new BufferedReader(
            new InputStreamReader(new FileInputStream("/proc/self/fd/3"), UTF_8));
        shell = JShell.builder().executionEngine("local").build();
        for (String name : IMPORTS) {
            shell.eval("import " + name + ".*;");
        }
        Signal.handle(new Signal("INT"), signal -> interrupt());
        emit("{\"type\":\"ready\",\"language\":\"java\",\"version\":"
            + json(System.getProperty("java.version")) + "}");
        for (String path; (path = requests.readLine()) != null; ) {
            Cell cell = new Cell();
            current = cell;
            String event = runCell(Path.of(path), cell);
            synchronized (cell) {
                cell.finished = true;
            }
            current = null;
            System.out.flush();
            System.err.flush();
            if (cell.interrupted) {
                event = error("Interrupted", "interrupted", "");
                openOutput(); // what a stopped print left in the old streams' buffers is lost
            }
            if (event != null) {
                emit(event);
            }
            emit("{\"type\":\"done\"}");
        }
        System.exit(0); // the snippets' threads must not keep the JVM alive
    }

    // Unbuffered: a cell's output reaches the agent as it is printed.
    static void openOutput() {
        System.setOut(new PrintStream(new FileOutputStream(FileDescriptor.out), true, UTF_8));
        System.setErr(new PrintStream(new FileOutputStream(FileDescriptor.err), true, UTF_8));
    }

    // SIGINT: stop the running snippet. The signal may come while a snippet is still being
    // compiled, with nothing to stop yet, so keep trying until the cell is over.
    static void interrupt() {
        Cell cell = current;
        if (cell == null) {
            return;
        }
        cell.interrupted = true;
        while (true) {
            synchronized (cell) {
                if (cell.finished) {
                    return;
                }
                try {
                    shell.stop();
                } catch (RuntimeException | InternalError e) {
                    // Nothing has run yet.
                }
            }
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    // Runs a cell's snippets in turn up to the first failure; returns its error or result event.
    static String runCell(Path path, Cell cell) {
        String source;
        try {
            source = Files.readString(path);
            Files.deleteIfExists(path);
        } catch (IOException e) {
            return error(e.getClass().getSimpleName(), String.valueOf(e.getMessage()), "");
        }
        String value = null;
        for (String rest = source; !rest.isBlank() && !cell.interrupted; ) {
            CompletionInfo info = shell.sourceCodeAnalysis().analyzeCompletion(rest);
            String snippet = info.source() != null ? info.source() : rest;
            rest = info.source() != null ? info.remaining() : "";
            value = null;
            for (SnippetEvent e : shell.eval(snippet)) {
                if (e.causeSnippet() != null) {
                    continue; // the update of a dependent snippet
                }
                if (e.status() == Snippet.Status.REJECTED) {
                    String diagnostics = diagnostics(e.snippet());
                    return error("CompilationError", diagnostics.lines().findFirst()
                        .orElse("rejected").replaceFirst("^error: ", ""), diagnostics);
                }
                if (e.exception() != null) {
                    return exceptionError(e.exception());
                }
                if (isExpression(e.snippet())) {
                    value = e.value();
                }
            }
        }
        return value == null ? null : "{\"type\":\"result\",\"main\":true,\"data\":{\"text/plain\":"
            + json(value) + "}}";
    }

    static boolean isExpression(Snippet snippet) {
        return snippet.kind() == Snippet.Kind.EXPRESSION
            || snippet.subKind() == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND;
    }

    // Each error with its line and a caret under it, as javac shows them.
    static String diagnostics(Snippet snippet) {
        String source = snippet.source();
        return shell.diagnostics(snippet).filter(Diag::isError).map(d -> {
            int start = (int) Math.max(0, d.getStartPosition());
            int from = source.lastIndexOf('\n', start - 1) + 1;
            int newline = source.indexOf('\n', start);
            int to = newline < 0 ? source.length() : newline;
            int width = (int) Math.max(1, Math.min(d.getEndPosition(), to) - start);
            return "error: " + d.getMessage(null) + "\n" + source.substring(from, to) + "\n"
                + " ".repeat(start - from) + "^".repeat(width) + "\n";
        }).collect(Collectors.joining());
    }

    static String exceptionError(JShellException exception) {
        String name = exception.getClass().getSimpleName();
        String message = exception.getMessage();
        if (exception instanceof EvalException thrown) {
            name = thrown.getExceptionClassName().replaceFirst(".*\\.", "");
        } else if (exception instanceof UnresolvedReferenceException unresolved) {
            DeclarationSnippet snippet = unresolved.getSnippet();
            message = snippet.name() + " cannot be used until this is declared: "
                + shell.unresolvedDependencies(snippet).collect(Collectors.joining(", "));
        }
        return error(name, message == null ? "" : message, stackTrace(exception));
    }

    // The user's frames of an exception and its causes; jshell's own frames are left out.
    static String stackTrace(Throwable exception) {
        StringBuilder text = new StringBuilder();
        for (Throwable e = exception; e != null; e = e.getCause()) {
            String name = e instanceof EvalException thrown
                ? thrown.getExceptionClassName() : e.getClass().getName();
            text.append(e == exception ? "" : "Caused by: ").append(name)
                .append(e.getMessage() == null ? "" : ": " + e.getMessage()).append('\n');
            for (StackTraceElement frame : e.getStackTrace()) {
                if (frame.getClassName().matches("(jdk\\.jshell|jdk\\.internal\\.reflect"
                        + "|java\\.lang\\.reflect)\\..*")) {
                    break;
                }
                text.append("\tat ").append(frameText(frame)).append('\n');
            }
        }
        return text.toString();
    }

    static String frameText(StackTraceElement frame) {
        if (!frame.getClassName().isEmpty()) {
            return frame.toString();
        }
        // A snippet's frame: no class, and a source named after the snippet ("#12").
        String where = "(" + frame.getFileName() + ":" + frame.getLineNumber() + ")";
        return frame.getMethodName().isEmpty() ? where : frame.getMethodName() + " " + where;
    }

    static String error(String name, String value, String traceback) {
        return "{\"type\":\"error\",\"name\":" + json(name) + ",\"value\":" + json(value)
            + ",\"traceback\":" + json(traceback) + "}";
    }

    static void emit(String event) throws IOException {
        events.write((event + "\n").getBytes(UTF_8));
    }

    static String json(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> b.append(c < 0x20 ? String.format("\\u%04x", (int) c) : c);
            }
        }
        return b.append('"').toString();
    }
}
