package covgen.jvm;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.lang.reflect.Constructor;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

import org.jacoco.agent.rt.IAgent;
import org.jacoco.agent.rt.RT;
import org.junit.platform.engine.DiscoverySelector;
import org.junit.platform.engine.FilterResult;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.TestSource;
import org.junit.platform.engine.discovery.DiscoverySelectors;
import org.junit.platform.engine.support.descriptor.ClassSource;
import org.junit.platform.engine.support.descriptor.MethodSource;
import org.junit.platform.launcher.Launcher;
import org.junit.platform.launcher.LauncherDiscoveryRequest;
import org.junit.platform.launcher.PostDiscoveryFilter;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.TestPlan;
import org.junit.platform.launcher.core.LauncherDiscoveryRequestBuilder;
import org.junit.platform.launcher.core.LauncherFactory;

/**
 * covgen's test JVM: runs candidate test classes on the JUnit Platform under the JaCoCo agent.
 *
 * <p>Usage: {@code CovgenLauncher PLAN} where PLAN is a UTF-8 file of lines {@code out FILE},
 * {@code analysis DIR}, {@code jacoco JAR}, {@code measured PATH}, {@code timeout SECONDS},
 * {@code class NAME}, {@code skip UNIQUE_ID}.
 *
 * <p>One JSON line per event goes to the out file, flushed as it is written, so covgen can name
 * the test that was running when the JVM ended or hung: {@code session}, {@code plan} (every test
 * discovered), {@code class_start}/{@code class_done} around each test class, {@code start} before
 * each test and {@code done} after it with its outcome and the lines it covered, {@code finish}.
 * After each test the agent's execution data is taken and reset, so each test's coverage is its
 * own; the analysis runs here, in a class loader of its own (JaCoCo and its ASM must not meet
 * the project's libraries).
 */
public final class CovgenLauncher implements TestExecutionListener {
    private static final int MESSAGE_CAP = 4000;

    private final Writer out;
    private final IAgent agent;
    private final Function<byte[], String> analysis;
    /** Coverage outside any test (static initialisers, {@code @BeforeAll}), per test class, as exec data. */
    private final Map<String, List<byte[]>> outside = new HashMap<>();
    /** Test classes being run, innermost first ({@code @Nested} classes run inside their outer class). */
    private final Deque<String> openClasses = new ArrayDeque<>();

    private CovgenLauncher(Writer out, IAgent agent, Function<byte[], String> analysis) {
        this.out = out;
        this.agent = agent;
        this.analysis = analysis;
    }

    public static void main(String[] args) throws Exception {
        String outPath = null;
        String analysisDir = null;
        String timeout = null;
        List<String> jacoco = new ArrayList<>();
        List<String> measured = new ArrayList<>();
        List<String> classes = new ArrayList<>();
        List<String> skip = new ArrayList<>();
        for (String line : Files.readAllLines(Paths.get(args[0]), StandardCharsets.UTF_8)) {
            int space = line.indexOf(' ');
            if (space < 0) {
                continue;
            }
            String key = line.substring(0, space);
            String value = line.substring(space + 1);
            switch (key) {
                case "out": outPath = value; break;
                case "analysis": analysisDir = value; break;
                case "timeout": timeout = value; break;
                case "jacoco": jacoco.add(value); break;
                case "measured": measured.add(value); break;
                case "class": classes.add(value); break;
                case "skip": skip.add(value); break;
                default: break;
            }
        }
        Writer out = new OutputStreamWriter(new FileOutputStream(outPath, true), StandardCharsets.UTF_8);
        IAgent agent;
        try {
            agent = RT.getAgent();
        } catch (IllegalStateException | NoClassDefFoundError err) {
            emit(out, "{\"event\":\"session\",\"agent\":null,\"error\":" + Json.quote(String.valueOf(err)) + "}");
            System.exit(3);
            return;
        }
        CovgenLauncher listener = new CovgenLauncher(out, agent, loadAnalysis(analysisDir, jacoco, measured));
        emit(out, "{\"event\":\"session\",\"agent\":" + Json.quote(agent.getVersion()) + "}");

        List<DiscoverySelector> selectors = new ArrayList<>();
        for (String name : classes) {
            selectors.add(DiscoverySelectors.selectClass(name));
        }
        LauncherDiscoveryRequestBuilder builder = LauncherDiscoveryRequestBuilder.request().selectors(selectors)
                // Events are attributed to the test between "start" and "done": one test at a time.
                .configurationParameter("junit.jupiter.execution.parallel.enabled", "false");
        if (timeout != null) {
            // Interrupts a test that sleeps or waits past the limit; one that spins is killed from outside.
            builder.configurationParameter("junit.jupiter.execution.timeout.default", timeout + " s");
        }
        if (!skip.isEmpty()) {
            // Leaves only (the Platform filters nothing else): a test method, or a parameterized
            // test whose started invocation is below it.
            PostDiscoveryFilter filter = descriptor -> {
                String id = descriptor.getUniqueId().toString();
                for (String started : skip) {
                    if (started.equals(id) || started.startsWith(id + "/")) {
                        return FilterResult.excluded("already ran");
                    }
                }
                return FilterResult.included("not run yet");
            };
            builder.filters(filter);
        }
        LauncherDiscoveryRequest request = builder.build();
        Launcher launcher = LauncherFactory.create();
        TestPlan plan = launcher.discover(request);
        launcher.execute(plan, listener);
        emit(out, "{\"event\":\"finish\"}");
        out.close();
        // Not a return: a thread a test left running, or a shutdown hook it added, must not hold the JVM.
        Runtime.getRuntime().halt(0);
    }

    @Override
    public void testPlanExecutionStarted(TestPlan plan) {
        StringBuilder tests = new StringBuilder();
        List<TestIdentifier> pending = new ArrayList<>(plan.getRoots());
        while (!pending.isEmpty()) {
            TestIdentifier node = pending.remove(pending.size() - 1);
            if (node.isTest()) {
                tests.append(tests.length() == 0 ? "" : ",").append(Json.quote(node.getUniqueId()));
            }
            pending.addAll(plan.getChildren(node));
        }
        write("{\"event\":\"plan\",\"tests\":[" + tests + "]}");
    }

    @Override
    public void executionStarted(TestIdentifier node) {
        String className = classOf(node);
        if (node.isTest()) {
            keepOutside();
            write("{\"event\":\"start\",\"id\":" + Json.quote(node.getUniqueId()) + ",\"class\":" + Json.quote(className)
                    + ",\"method\":" + Json.quote(methodOf(node)) + ",\"name\":" + Json.quote(node.getDisplayName()) + "}");
        } else if (isClass(node)) {
            keepOutside();
            openClasses.push(className);
            write("{\"event\":\"class_start\",\"class\":" + Json.quote(className) + "}");
        }
    }

    @Override
    public void executionFinished(TestIdentifier node, TestExecutionResult result) {
        if (node.isTest()) {
            String lines = coverage(agent.getExecutionData(true));
            write("{\"event\":\"done\",\"id\":" + Json.quote(node.getUniqueId()) + ",\"class\":" + Json.quote(classOf(node))
                    + ",\"status\":" + Json.quote(result.getStatus().name()) + describe(result.getThrowable()) + lines + "}");
        } else if (isClass(node)) {
            keepOutside();
            String className = classOf(node);
            List<byte[]> data = outside.remove(className);
            String lines = coverage(data == null ? null : concat(data));
            write("{\"event\":\"class_done\",\"class\":" + Json.quote(className) + ",\"status\":"
                    + Json.quote(result.getStatus().name()) + describe(result.getThrowable()) + lines + "}");
            openClasses.remove(className);
        }
    }

    @Override
    public void executionSkipped(TestIdentifier node, String reason) {
        if (node.isTest() || isClass(node)) {
            write("{\"event\":\"skipped\",\"id\":" + Json.quote(node.getUniqueId()) + ",\"class\":" + Json.quote(classOf(node))
                    + ",\"message\":" + Json.quote(reason == null ? "" : reason) + "}");
        }
    }

    /** The event's coverage fields: the lines covered, or why they could not be read (the event must still be written). */
    private String coverage(byte[] data) {
        try {
            return ",\"coverage\":" + (data == null ? "{}" : analysis.apply(data));
        } catch (RuntimeException err) {
            return ",\"coverage\":{},\"analysis_error\":" + Json.quote(String.valueOf(err));
        }
    }

    private static String methodOf(TestIdentifier node) {
        Optional<TestSource> source = node.getSource();
        if (source.isPresent() && source.get() instanceof MethodSource) {
            MethodSource method = (MethodSource) source.get();
            return method.getMethodName() + "(" + method.getMethodParameterTypes() + ")";
        }
        return "";
    }

    /** What ran since the last test ended belongs to the open class, not to the next test. */
    private void keepOutside() {
        byte[] data = agent.getExecutionData(true);
        if (!openClasses.isEmpty()) {
            outside.computeIfAbsent(openClasses.peek(), k -> new ArrayList<>()).add(data);
        }
    }

    private static boolean isClass(TestIdentifier node) {
        Optional<TestSource> source = node.getSource();
        return node.isContainer() && source.isPresent() && source.get() instanceof ClassSource;
    }

    private static String classOf(TestIdentifier node) {
        Optional<TestSource> source = node.getSource();
        if (source.isPresent() && source.get() instanceof MethodSource) {
            return ((MethodSource) source.get()).getClassName();
        }
        if (source.isPresent() && source.get() instanceof ClassSource) {
            return ((ClassSource) source.get()).getClassName();
        }
        return "";
    }

    private static String describe(Optional<Throwable> thrown) {
        if (!thrown.isPresent()) {
            return ",\"message\":\"\"";
        }
        Throwable error = thrown.get();
        StringBuilder text = new StringBuilder(String.valueOf(error));
        int frames = 0;
        boolean inside = false;
        for (StackTraceElement frame : error.getStackTrace()) {
            // From the first frame past the assertion library to the reflection that called the
            // test: the candidate's frames and what it called, not the Platform's machinery.
            boolean machinery = isMachinery(frame.getClassName());
            if (machinery && inside || frames >= 15) {
                break;
            }
            if (!machinery) {
                inside = true;
                frames++;
                text.append("\n\tat ").append(frame);
            }
        }
        Throwable cause = error.getCause();
        if (cause != null && cause != error) {
            text.append("\nCaused by: ").append(cause);
        }
        String message = text.length() > MESSAGE_CAP ? text.substring(0, MESSAGE_CAP) : text.toString();
        return ",\"exception\":" + Json.quote(error.getClass().getName()) + ",\"message\":" + Json.quote(message);
    }

    private static boolean isMachinery(String className) {
        return className.startsWith("org.junit.") || className.startsWith("org.opentest4j.")
                || className.startsWith("jdk.internal.reflect.") || className.startsWith("java.lang.reflect.");
    }

    private static byte[] concat(List<byte[]> parts) {
        int size = 0;
        for (byte[] part : parts) {
            size += part.length;
        }
        byte[] joined = new byte[size];
        int at = 0;
        for (byte[] part : parts) {
            System.arraycopy(part, 0, joined, at, part.length);
            at += part.length;
        }
        return joined;
    }

    @SuppressWarnings("unchecked")
    private static Function<byte[], String> loadAnalysis(String dir, List<String> jacoco, List<String> measured) throws Exception {
        URL[] urls = new URL[jacoco.size() + 1];
        urls[0] = new File(dir).toURI().toURL();
        for (int i = 0; i < jacoco.size(); i++) {
            urls[i + 1] = new File(jacoco.get(i)).toURI().toURL();
        }
        // Parent: the platform loader, so the project's own ASM or JaCoCo (if it has them) stay apart.
        ClassLoader loader = new URLClassLoader(urls, ClassLoader.getPlatformClassLoader());
        Constructor<?> make = loader.loadClass("covgen.jvm.CovgenAnalysis").getConstructor(String[].class);
        return (Function<byte[], String>) make.newInstance((Object) measured.toArray(new String[0]));
    }

    private void write(String line) {
        try {
            emit(out, line);
        } catch (IOException err) {
            throw new IllegalStateException("covgen cannot write its results", err);
        }
    }

    private static void emit(Writer out, String line) throws IOException {
        out.write(line);
        out.write('\n');
        out.flush();
    }
}
