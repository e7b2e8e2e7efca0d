import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;

/**
 * One JVM per node for scripts/kafka.sh: formats the node's KRaft storage when its log directory
 * has no meta.properties yet, then runs the broker in the same JVM. A fresh start would otherwise
 * pay a separate StorageTool JVM per node (2-3 s each on a busy 2-core machine).
 *
 * <pre>java -cp LAUNCHER:KAFKA_CLASSPATH FormatAndRun server.properties CLUSTER_ID</pre>
 */
public final class FormatAndRun {
    public static void main(String[] args) throws IOException {
        if (args.length != 2) {
            System.err.println("usage: FormatAndRun server.properties cluster-id");
            System.exit(2);
        }
        String props = args[0];
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(Path.of(props))) {
            p.load(r);
        }
        Path logDir = Path.of(p.getProperty("log.dirs").split(",")[0]);
        if (!Files.exists(logDir.resolve("meta.properties"))) {
            int rc = kafka.tools.StorageTool.execute(new String[] {"format", "-t", args[1], "-c", props}, System.out);
            if (rc != 0) {
                System.err.println("formatting " + logDir + " failed (" + rc + ")");
                System.exit(rc);
            }
        }
        kafka.Kafka.main(new String[] {props});
    }
}
