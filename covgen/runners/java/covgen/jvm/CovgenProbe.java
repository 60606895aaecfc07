package covgen.jvm;

import java.io.File;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;

import org.jacoco.agent.rt.IAgent;
import org.jacoco.agent.rt.RT;

/**
 * How far the JaCoCo agent reaches on this JDK, or whether it instruments one class: {@code
 * CovgenProbe CLASSPATH NAME...}, run under the agent (which names on stderr what it cannot instrument).
 */
public final class CovgenProbe {
    private CovgenProbe() {
    }

    /**
     * Which of the classes {@code NAME...} on {@code CLASSPATH} the agent instrumented: each is loaded
     * (a class newer than this JVM fails here) and initialised, then the execution data says
     * which ran with probes. Prints the instrumented names, one a line, then the agent's version.
     */
    public static void main(String[] args) throws Exception {
        IAgent agent = RT.getAgent();
        String[] entries = args[0].split(File.pathSeparator);
        URL[] urls = new URL[entries.length];
        for (int i = 0; i < entries.length; i++) {
            urls[i] = new File(entries[i]).toURI().toURL();
        }
        ClassLoader loader = new URLClassLoader(urls, CovgenProbe.class.getClassLoader());
        for (int i = 1; i < args.length; i++) {
            try {
                Class.forName(args[i], true, loader);
            } catch (LinkageError err) {
                // Newer than this JVM, or refused: not instrumented either way.
            }
        }
        String data = new String(agent.getExecutionData(false), StandardCharsets.ISO_8859_1);
        for (int i = 1; i < args.length; i++) {
            if (data.contains(args[i].replace('.', '/'))) {
                System.out.println(args[i]);
            }
        }
        System.out.println("agent " + agent.getVersion());
    }
}
