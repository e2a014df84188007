// A permit-all stand-in for the Cloud Storage rules runtime of the Firebase Storage emulator.
//
// Only for machines with neither firebase-tools' cached runtime (cloud-storage-rules-runtime-*.jar,
// fetched when online) nor the Firebase rules engine of the Debian package
// google-cloud-cli-firestore-emulator, on which ../storage_rules_runtime enforces the rules for real
// (local_stack/java.py picks). The emulator starts it as
// `java -jar <STORAGE_EMULATOR_BINARY_PATH> serve` and talks line-delimited JSON over stdin/stdout:
// it waits for {"id":-1,"status":"ok"}, then sends one request per line and waits for a reply with
// the same id. load_ruleset gets {"rulesVersion":2}; every other request (verify) gets
// {"permit":true}. STORAGE RULES ARE THEREFORE NOT ENFORCED: the Cloud Function's own checks
// (path owner, content type, size) are the only guard under this stand-in.
//
// Built by local_stack/java.py with whatever javac the machine has (--release 17), never committed
// as a binary.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public final class PermitAllStorageRules {
    // The emulator serialises {...request, id: N}: the id is the last top-level key.
    private static final Pattern LAST_ID = Pattern.compile("\"id\"\\s*:\\s*(-?\\d+)\\s*}\\s*$");
    private static final Pattern ANY_ID = Pattern.compile("\"id\"\\s*:\\s*(-?\\d+)");

    public static void main(String[] args) throws Exception {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        out.println("{\"id\":-1,\"status\":\"ok\"}");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            line = line.trim();
            if (line.isEmpty()) {
                continue;
            }
            String id = findId(line);
            if (id == null) {
                continue;
            }
            String result = line.contains("\"action\":\"load_ruleset\"")
                    ? "{\"rulesVersion\":2}"
                    : "{\"permit\":true}";
            out.println("{\"id\":" + id + ",\"status\":\"ok\",\"errors\":[],\"warnings\":[],\"result\":" + result + "}");
        }
    }

    private static String findId(String line) {
        Matcher last = LAST_ID.matcher(line);
        if (last.find()) {
            return last.group(1);
        }
        Matcher any = ANY_ID.matcher(line);
        String found = null;
        while (any.find()) {
            found = any.group(1);
        }
        return found;
    }
}
