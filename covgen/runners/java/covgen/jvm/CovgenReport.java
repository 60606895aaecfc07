package covgen.jvm;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;

/**
 * {@code CovgenReport EXEC OUT ROOTS...}: the covered lines in JaCoCo's execution data file
 * {@code EXEC}, analysed against the classes in {@code ROOTS}, written to {@code OUT} as the
 * JSON {@link CovgenAnalysis} gives. Used for the clean run, where the tests ran on the JUnit
 * Platform's own launcher and the agent wrote its data to a file: no covgen code ran beside them.
 */
public final class CovgenReport {
    private CovgenReport() {
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: CovgenReport EXEC OUT ROOTS...");
            System.exit(2);
        }
        byte[] data = Files.readAllBytes(Paths.get(args[0]));
        String json = new CovgenAnalysis(Arrays.copyOfRange(args, 2, args.length)).apply(data);
        Path out = Paths.get(args[1]);
        Files.write(out, json.getBytes(StandardCharsets.UTF_8));
    }
}
