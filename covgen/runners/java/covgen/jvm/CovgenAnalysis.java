package covgen.jvm;

import java.io.ByteArrayInputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

import org.jacoco.core.analysis.Analyzer;
import org.jacoco.core.analysis.CoverageBuilder;
import org.jacoco.core.analysis.IClassCoverage;
import org.jacoco.core.analysis.ICounter;
import org.jacoco.core.analysis.ILine;
import org.jacoco.core.data.ExecutionData;
import org.jacoco.core.data.ExecutionDataReader;
import org.jacoco.core.data.ExecutionDataStore;

/**
 * Execution data (JaCoCo's binary format) in, covered lines per source file out, as JSON.
 *
 * <p>Only classes that ran are analysed, from bytes read once: a test costs what it touched,
 * not the size of the project. Lines are keyed {@code package/path/Source.java}, as JaCoCo's
 * XML report names them; a line counts as covered when any of its instructions ran, and lines
 * with branches also give {@code [line, covered, total]}.
 */
public final class CovgenAnalysis implements Function<byte[], String> {
    private final Map<String, byte[]> classes = new HashMap<>();

    public CovgenAnalysis(String[] roots) throws IOException {
        for (String root : roots) {
            File file = new File(root);
            if (file.isDirectory()) {
                Path base = file.toPath();
                try (Stream<Path> paths = Files.walk(base)) {
                    for (Path path : (Iterable<Path>) paths::iterator) {
                        String name = base.relativize(path).toString().replace(File.separatorChar, '/');
                        if (name.endsWith(".class")) {
                            classes.putIfAbsent(name.substring(0, name.length() - 6), Files.readAllBytes(path));
                        }
                    }
                }
            } else if (file.isFile()) {
                try (ZipFile jar = new ZipFile(file)) {
                    Enumeration<? extends ZipEntry> entries = jar.entries();
                    while (entries.hasMoreElements()) {
                        ZipEntry entry = entries.nextElement();
                        String name = entry.getName();
                        if (name.endsWith(".class") && !name.startsWith("META-INF/")) {
                            try (InputStream in = jar.getInputStream(entry)) {
                                classes.putIfAbsent(name.substring(0, name.length() - 6), in.readAllBytes());
                            }
                        }
                    }
                }
            }
        }
    }

    @Override
    public String apply(byte[] executionData) {
        try {
            ExecutionDataStore store = new ExecutionDataStore();
            ExecutionDataReader reader = new ExecutionDataReader(new ByteArrayInputStream(executionData));
            reader.setExecutionDataVisitor(store);
            reader.setSessionInfoVisitor(info -> { });
            reader.read();
            CoverageBuilder builder = new CoverageBuilder();
            Analyzer analyzer = new Analyzer(store, builder);
            for (ExecutionData data : store.getContents()) {
                byte[] bytes = classes.get(data.getName());
                if (bytes != null && data.hasHits()) {
                    analyzer.analyzeClass(bytes, data.getName());
                }
            }
            Map<String, List<int[]>> files = new TreeMap<>();
            for (IClassCoverage coverage : builder.getClasses()) {
                if (coverage.isNoMatch() || coverage.getSourceFileName() == null) {
                    continue;
                }
                String pkg = coverage.getPackageName();
                String key = pkg.isEmpty() ? coverage.getSourceFileName() : pkg + "/" + coverage.getSourceFileName();
                List<int[]> lines = files.computeIfAbsent(key, k -> new ArrayList<>());
                for (int nr = coverage.getFirstLine(); nr <= coverage.getLastLine() && nr > 0; nr++) {
                    ILine line = coverage.getLine(nr);
                    int status = line.getStatus();
                    if (status == ICounter.FULLY_COVERED || status == ICounter.PARTLY_COVERED) {
                        ICounter branches = line.getBranchCounter();
                        lines.add(new int[] {nr, branches.getCoveredCount(), branches.getTotalCount()});
                    }
                }
            }
            return toJson(files);
        } catch (IOException err) {
            throw new UncheckedIOException(err);
        }
    }

    private static String toJson(Map<String, List<int[]>> files) {
        StringBuilder json = new StringBuilder("{");
        for (Map.Entry<String, List<int[]>> file : files.entrySet()) {
            if (file.getValue().isEmpty()) {
                continue;
            }
            json.append(json.length() == 1 ? "" : ",").append(Json.quote(file.getKey())).append(":[");
            boolean first = true;
            for (int[] line : file.getValue()) {
                json.append(first ? "" : ",").append('[').append(line[0]).append(',').append(line[1]).append(',')
                        .append(line[2]).append(']');
                first = false;
            }
            json.append(']');
        }
        return json.append('}').toString();
    }
}
