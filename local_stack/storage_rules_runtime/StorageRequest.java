// One Storage request as the rules engine sees it: the engine's FirebaseStorage*ContextConverter
// turns it into a rule context (the `request` and `resource` variables, firestore.get/exists and
// debug), and the engine's DefaultEvaluator evaluates the compiled ruleset against it.
import com.google.common.collect.ImmutableList;
import com.google.common.util.concurrent.FutureCallback;
import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.ListenableFuture;
import com.google.common.util.concurrent.MoreExecutors;
import com.google.firebase.rules.partners.services.firebasestorage.FirebaseStorageCreateContextConverter;
import com.google.firebase.rules.partners.services.firebasestorage.FirebaseStorageDeleteContextConverter;
import com.google.firebase.rules.partners.services.firebasestorage.FirebaseStorageGetContextConverter;
import com.google.firebase.rules.partners.services.firebasestorage.FirebaseStorageListContextConverter;
import com.google.firebase.rules.partners.services.firebasestorage.FirebaseStorageService;
import com.google.firebase.rules.partners.services.firebasestorage.FirebaseStorageUpdateContextConverter;
import com.google.firebase.rules.runtime.common.EvaluationRestrictions;
import com.google.firebase.rules.runtime.common.EvaluationResult;
import com.google.firebase.rules.runtime.evaluators.AuthRuleEvaluator;
import com.google.firebase.rules.runtime.impl.DefaultEvaluator;
import com.google.firebase.rules.runtime.utils.PathUtils;
import com.google.firebase.rules.runtime.v1.ExpressionMapValue;
import com.google.firebase.rules.runtime.v1.ExpressionPathValue;
import com.google.firebase.rules.runtime.v1.ExpressionValue;
import com.google.firebase.rules.runtime.v1.RulesetAst;
import com.google.firebase.rules.v1.SourcePosition;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import java.util.concurrent.CompletableFuture;

final class StorageRequest
        implements FirebaseStorageService.FirebaseStorageCreateContext,
                FirebaseStorageService.FirebaseStorageGetContext,
                FirebaseStorageService.FirebaseStorageUpdateContext,
                FirebaseStorageService.FirebaseStorageDeleteContext,
                FirebaseStorageService.FirebaseStorageListContext {

    private final String method;
    private final ExpressionPathValue path;
    private final ExpressionMapValue request;
    private final ExpressionValue resource;
    private final FirestoreBridge.Reads firestore;

    private StorageRequest(
            String method,
            ExpressionPathValue path,
            ExpressionMapValue request,
            ExpressionValue resource,
            FirestoreBridge.Reads firestore) {
        this.method = method;
        this.path = path;
        this.request = request;
        this.resource = resource;
        this.firestore = firestore;
    }

    /** The verify context firebase-tools sends: path, method, variables {request, resource}. */
    static StorageRequest fromVerifyContext(JsonObject context, FirestoreBridge.Reads firestore) {
        String service = context.has("service") ? context.get("service").getAsString() : null;
        if (!"firebase.storage".equals(service)) {
            throw new IllegalArgumentException("not a firebase.storage request: " + service);
        }
        JsonObject variables = context.getAsJsonObject("variables");
        ExpressionValue request = expressionValue(variables.get("request"));
        if (!request.hasMapValue()) {
            throw new IllegalArgumentException("request is not a map");
        }
        ExpressionValue resource = expressionValue(variables.get("resource"));
        String method = context.get("method").getAsString();
        // An upload onto an existing object is an update, as in production (firebase-tools sends
        // every upload as create, with the existing object as `resource`).
        if (method.equals("create") && !resource.hasNullValue()) {
            method = "update";
        }
        ExpressionPathValue path = PathUtils.parseRaw(context.get("path").getAsString());
        return new StorageRequest(method, path, request.getMapValue(), resource, firestore);
    }

    static ExpressionValue expressionValue(JsonElement json) {
        if (json == null || json.isJsonNull()) {
            throw new IllegalArgumentException("missing variable");
        }
        ExpressionValue.Builder value = ExpressionValue.newBuilder();
        try {
            JsonFormat.parser().merge(json.toString(), value);
        } catch (InvalidProtocolBufferException error) {
            throw new IllegalArgumentException("unreadable expression value: " + error.getMessage(), error);
        }
        if (value.getKindCase() == ExpressionValue.KindCase.KIND_NOT_SET) {
            throw new IllegalArgumentException("expression value without a kind: " + json);
        }
        return value.build();
    }

    /** The engine's verdict; completes exceptionally on anything but a clean evaluation. */
    CompletableFuture<Boolean> evaluate(RulesetAst ast) {
        AuthRuleEvaluator.RuleContext context = switch (method) {
            case "create" -> FirebaseStorageCreateContextConverter.convert(this);
            case "get" -> FirebaseStorageGetContextConverter.convert(this);
            case "list" -> FirebaseStorageListContextConverter.convert(this);
            case "update" -> FirebaseStorageUpdateContextConverter.convert(this);
            case "delete" -> FirebaseStorageDeleteContextConverter.convert(this);
            default -> throw new IllegalArgumentException("unknown storage method " + method);
        };
        DefaultEvaluator evaluator =
                new DefaultEvaluator(ast, ImmutableList.of(), EvaluationRestrictions.builder().build());
        CompletableFuture<Boolean> verdict = new CompletableFuture<>();
        Futures.addCallback(
                evaluator.evaluate(context),
                new FutureCallback<EvaluationResult>() {
                    @Override
                    public void onSuccess(EvaluationResult result) {
                        verdict.complete(result != null && result.permit());
                    }

                    @Override
                    public void onFailure(Throwable error) {
                        verdict.completeExceptionally(error);
                    }
                },
                MoreExecutors.directExecutor());
        return verdict;
    }

    String method() {
        return method;
    }

    // ------------------------------------------------------------- FirebaseStorageService contexts

    @Override
    public ExpressionPathValue path() {
        return path;
    }

    @Override
    public ExpressionMapValue request() {
        return request;
    }

    @Override
    public ListenableFuture<ExpressionValue> resource() {
        return Futures.immediateFuture(resource);
    }

    @Override
    public ExpressionValue debug(ExpressionValue value) {
        EngineStorageRules.info("storage rules debug(): " + value);
        return value;
    }

    @Override
    public ListenableFuture<ExpressionValue> firestoreGet(ExpressionPathValue document, SourcePosition at) {
        return firestore.get(PathUtils.toRawString(document));
    }

    @Override
    public ListenableFuture<ExpressionValue> firestoreExists(ExpressionPathValue document, SourcePosition at) {
        return firestore.exists(PathUtils.toRawString(document));
    }
}
