// JavaKernel: Java for the code interpreter (docs/code-interpreter.md), on the jdk.jshell API.
// Snippets run in this JVM (the "local" execution engine), so their System.out is our fd 1 and
// state (variables, methods, classes, imports) lives as long as the kernel. A cell is split into
// snippets as jshell would; the value of a trailing expression comes back as text/plain.
import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;
import jdk.jshell.Diag;
import jdk.jshell.EvalException;
import jdk.jshell.JShell;
import jdk.jshell.JShellException;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;
import jdk.jshell.UnresolvedReferenceException;

public class JavaKernel {
    private static PrintStream events;
    private static volatile boolean running, interrupted;

    public static void main(String[] args) throws Exception {
        events = new PrintStream(new FileOutputStream("/proc/self/fd/4"), true, StandardCharsets.UTF_8);
        BufferedReader requests = new BufferedReader(new InputStreamReader(
                new FileInputStream("/proc/self/fd/3"), StandardCharsets.UTF_8));
        JShell shell = JShell.builder().executionEngine("local").build();
        // SIGINT stops the running snippet; between cells it is ignored.
        sun.misc.Signal.handle(new sun.misc.Signal("INT"), s -> {
            if (running) {
                interrupted = true;
                shell.stop();
            }
        });
        emit("{\"type\":\"ready\",\"language\":\"java\",\"version\":" +
                json(System.getProperty("java.version")) + "}");
        String path;
        while ((path = requests.readLine()) != null) {
            String code = Files.readString(Path.of(path.trim()), StandardCharsets.UTF_8);
            interrupted = false;
            running = true;
            try {
                runCell(shell, code);
            } finally {
                running = false;
            }
            System.out.flush();
            System.err.flush();
            emit("{\"type\":\"done\"}");
        }
    }

    private static void runCell(JShell shell, String code) {
        SourceCodeAnalysis analysis = shell.sourceCodeAnalysis();
        String remaining = code, value = null;
        while (!remaining.isBlank()) {
            SourceCodeAnalysis.CompletionInfo info = analysis.analyzeCompletion(remaining);
            String source;
            if (info.completeness() == SourceCodeAnalysis.Completeness.EMPTY)
                break;
            if (info.completeness().isComplete()) {
                source = info.source();
                remaining = info.remaining();
            } else {
                source = remaining; // incomplete: let jshell say what is wrong
                remaining = "";
            }
            value = null;
            for (SnippetEvent e : shell.eval(source)) {
                if (e.causeSnippet() != null)
                    continue; // a dependent snippet updated, not this one
                if (interrupted) {
                    error("Interrupted", "the cell was interrupted", "");
                    return;
                }
                if (e.status() == Snippet.Status.REJECTED) {
                    rejected(shell, e.snippet());
                    return;
                }
                if (e.exception() != null) {
                    exception(e.exception());
                    return;
                }
                if (isExpression(e.snippet()) && e.value() != null && !e.value().isEmpty())
                    value = e.value();
            }
        }
        if (value != null)
            emit("{\"type\":\"result\",\"main\":true,\"data\":{\"text/plain\":" + json(value) + "}}");
    }

    private static boolean isExpression(Snippet s) {
        return s.kind() == Snippet.Kind.EXPRESSION ||
                s.subKind() == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND;
    }

    private static void rejected(JShell shell, Snippet s) {
        List<String> messages = shell.diagnostics(s)
                .filter(Diag::isError)
                .map(d -> d.getMessage(Locale.ROOT))
                .collect(Collectors.toList());
        String first = messages.isEmpty() ? "the snippet was rejected" : messages.get(0);
        error("CompilationError", first, String.join("\n", messages) + "\n" + s.source());
    }

    private static void exception(JShellException x) {
        String name, message = x.getMessage() == null ? "" : x.getMessage();
        if (x instanceof EvalException) {
            name = ((EvalException) x).getExceptionClassName();
            name = name.substring(name.lastIndexOf('.') + 1);
        } else if (x instanceof UnresolvedReferenceException) {
            name = "UnresolvedReference";
            message = "unresolved reference in " +
                    ((UnresolvedReferenceException) x).getSnippet().source().strip();
        } else {
            name = x.getClass().getSimpleName();
        }
        StringBuilder trace = new StringBuilder(name + ": " + message + "\n");
        for (StackTraceElement f : x.getStackTrace()) {
            if (f.getClassName().startsWith("jdk.jshell") || f.getClassName().startsWith("jdk.internal"))
                break; // jshell's own machinery from here on
            trace.append("\tat ").append(f).append('\n');
        }
        error(name, message, trace.toString());
    }

    private static void error(String name, String value, String traceback) {
        emit("{\"type\":\"error\",\"name\":" + json(name) + ",\"value\":" + json(value) +
                ",\"traceback\":" + json(traceback) + "}");
    }

    private static synchronized void emit(String line) {
        events.print(line + "\n");
        events.flush();
    }

    private static String json(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
            case '"': b.append("\\\""); break;
            case '\\': b.append("\\\\"); break;
            case '\n': b.append("\\n"); break;
            case '\r': b.append("\\r"); break;
            case '\t': b.append("\\t"); break;
            default:
                if (c < 0x20)
                    b.append(String.format("\\u%04x", (int) c));
                else
                    b.append(c);
            }
        }
        return b.append('"').toString();
    }
}
