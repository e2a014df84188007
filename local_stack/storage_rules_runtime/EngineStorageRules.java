// The Cloud Storage rules runtime of the local stack, built from the Firebase rules engine that ships
// in the Debian package google-cloud-cli-firestore-emulator (compiled by local_stack/java.py with the
// machine's javac, that jar on the classpath; never committed as a binary).
//
// The Storage emulator of firebase-tools starts it as `java -jar <STORAGE_EMULATOR_BINARY_PATH> serve`
// and speaks line-delimited JSON over stdin/stdout, the protocol of its own downloadable runtime:
//   - we print {"id":-1,"status":"ok"} once ready;
//   - load_ruleset {context:{rulesetName, source:{files:[{name,content}]}}} compiles the ruleset with
//     the engine's compiler and answers {result:{rulesVersion}} or the compile issues in `errors`
//     (each a JSON object with description_/sourcePosition_, which firebase-tools prints as
//     "<description> in <file>:<line>");
//   - verify {context:{rulesetName, path, method, variables:{request, resource}}} evaluates the
//     request with the engine's evaluator and answers {result:{permit}};
//   - firestore.get/exists inside the rules: we print a fetch_firestore_document request whose
//     server_request_id is the verify's id, the emulator reads the document from the Firestore
//     emulator and answers on stdin with that id; evaluation then resumes.
// Every reply carries status "ok" (firebase-tools drops other replies and the request would hang);
// an evaluation that fails for any reason is answered with `errors`, which the emulator treats as
// a deny. Fail closed: nothing here answers permit:true unless the engine evaluated it so.
import com.google.firebase.rules.lang.CompileResult;
import com.google.firebase.rules.lang.FirebaseRulesProtoCompiler;
import com.google.firebase.rules.lang.common.FirebaseRulesLangOptions;
import com.google.firebase.rules.runtime.v1.RulesetAst;
import com.google.firebase.rules.v1.File;
import com.google.firebase.rules.v1.Issue;
import com.google.firebase.rules.v1.Source;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

public final class EngineStorageRules {
    private static final PrintStream OUT = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    private final Map<String, RulesetAst> rulesets = new ConcurrentHashMap<>();
    private final FirestoreBridge firestore;

    EngineStorageRules() {
        this.firestore = new FirestoreBridge(this::send);
    }

    public static void main(String[] args) throws Exception {
        EngineStorageRules runtime = new EngineStorageRules();
        runtime.warmUp();
        JsonObject ready = new JsonObject();
        ready.addProperty("id", -1);
        ready.addProperty("status", "ok");
        runtime.send(ready);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (!line.isBlank()) {
                runtime.handle(line.trim());
            }
        }
    }

    void send(JsonObject message) {
        writeLine(message.toString());
    }

    /** A line that is not JSON: firebase-tools logs it as information (stderr would read as an error). */
    static void info(String line) {
        writeLine(line.replace('\n', ' '));
    }

    private static synchronized void writeLine(String line) {
        OUT.println(line);
    }

    // Compiles a one-line ruleset before announcing readiness, so that the first real ruleset does not
    // pay for loading the engine. (On Java 24+ the JVM prints a warning about protobuf's use of
    // sun.misc.Unsafe to stderr here, once; firebase-tools logs it as "Unexpected rules runtime error".)
    void warmUp() {
        JsonObject file = new JsonObject();
        file.addProperty("name", "warm-up.rules");
        file.addProperty("content", "rules_version = '2'; service firebase.storage { match /b/{b}/o { } }");
        JsonArray files = new JsonArray();
        files.add(file);
        JsonObject source = new JsonObject();
        source.add("files", files);
        JsonObject context = new JsonObject();
        context.addProperty("rulesetName", "");
        context.add("source", source);
        loadRuleset(-1, context);
        rulesets.remove("");
    }

    void handle(String line) {
        JsonObject message;
        try {
            message = JsonParser.parseString(line).getAsJsonObject();
        } catch (RuntimeException error) {
            System.err.println("storage rules runtime: unreadable request line: " + error);
            return;
        }
        JsonElement idElement = message.get("id");
        if (idElement == null || idElement.isJsonNull()) {
            System.err.println("storage rules runtime: request without id");
            return;
        }
        long id = idElement.getAsLong();
        String action = message.has("action") && !message.get("action").isJsonNull()
                ? message.get("action").getAsString()
                : null;
        try {
            if ("load_ruleset".equals(action)) {
                send(loadRuleset(id, message.getAsJsonObject("context")));
            } else if ("verify".equals(action)) {
                verify(id, message.getAsJsonObject("context"));
            } else if (action == null && firestore.isWaiting(id)) {
                firestore.answer(id, message);
            } else {
                send(failure(id, "unknown action " + action));
            }
        } catch (RuntimeException error) {
            send(failure(id, "storage rules runtime: " + error));
        }
    }

    // ---------------------------------------------------------------------------------- compile

    JsonObject loadRuleset(long id, JsonObject context) {
        String name = context.get("rulesetName").getAsString();
        Source.Builder source = Source.newBuilder();
        for (JsonElement file : context.getAsJsonObject("source").getAsJsonArray("files")) {
            JsonObject f = file.getAsJsonObject();
            source.addFiles(File.newBuilder()
                    .setName(f.get("name").getAsString())
                    .setContent(f.get("content").getAsString()));
        }
        FirebaseRulesLangOptions options = FirebaseRulesLangOptions.builder()
                .allowCrossServiceRules(true)
                .allowTernaryOperator(true)
                .build();
        CompileResult compiled = FirebaseRulesProtoCompiler.createStandalone(options).compile(source);
        JsonArray errors = new JsonArray();
        JsonArray warnings = new JsonArray();
        for (Issue issue : compiled.getIssues()) {
            (issue.getSeverity() == Issue.Severity.ERROR ? errors : warnings).add(issueJson(issue));
        }
        JsonObject reply = reply(id, errors, warnings);
        if (compiled.hasCompilationError() || errors.size() > 0) {
            if (errors.size() == 0) {
                errors.add("Compilation failed without an issue from the compiler.");
            }
            rulesets.remove(name);
            return reply;
        }
        RulesetAst ast = compiled.getRulesetAst();
        rulesets.put(name, ast);
        JsonObject result = new JsonObject();
        result.addProperty("rulesVersion", ast.getVersion() == RulesetAst.Version.VERSION_2 ? 2 : 1);
        reply.add("result", result);
        return reply;
    }

    // firebase-tools parses each issue as JSON and prints "<description_> in <fileName_>:<line_>".
    private static String issueJson(Issue issue) {
        JsonObject position = new JsonObject();
        position.addProperty("fileName_", issue.getSourcePosition().getFileName());
        position.addProperty("line_", issue.getSourcePosition().getLine());
        position.addProperty("column_", issue.getSourcePosition().getColumn());
        JsonObject json = new JsonObject();
        json.addProperty("description_", issue.getDescription());
        json.add("sourcePosition_", position);
        json.addProperty("severity_", issue.getSeverity().name());
        return json.toString();
    }

    // ----------------------------------------------------------------------------------- verify

    void verify(long id, JsonObject context) {
        RulesetAst ast = rulesets.get(context.get("rulesetName").getAsString());
        if (ast == null) {
            send(failure(id, "no compiled ruleset named " + context.get("rulesetName")));
            return;
        }
        StorageRequest request = StorageRequest.fromVerifyContext(context, firestore.forRequest(id));
        request.evaluate(ast).whenComplete((permit, error) -> {
            firestore.finished(id);
            if (error != null) {
                send(failure(id, "rules evaluation failed: " + error));
                return;
            }
            JsonObject reply = reply(id, new JsonArray(), new JsonArray());
            JsonObject result = new JsonObject();
            result.addProperty("permit", permit);
            reply.add("result", result);
            send(reply);
        });
    }

    // ---------------------------------------------------------------------------------- replies

    static JsonObject reply(long id, JsonArray errors, JsonArray warnings) {
        JsonObject reply = new JsonObject();
        reply.addProperty("id", id);
        reply.addProperty("status", "ok");
        reply.add("errors", errors);
        reply.add("warnings", warnings);
        return reply;
    }

    static JsonObject failure(long id, String message) {
        JsonArray errors = new JsonArray();
        errors.add(message);
        return reply(id, errors, new JsonArray());
    }
}
