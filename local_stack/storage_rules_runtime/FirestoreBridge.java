// firestore.get/exists inside storage rules, answered by the Storage emulator: we print
// {"action":"fetch_firestore_document","context":{"path":...},"server_request_id":<verify id>}, the
// emulator reads projects/<project><path> from the Firestore emulator and answers on stdin with
// {"id":<verify id>,"status":"ok"|"not_found",...,"result":{"name","fields"}}.
//
// The emulator keeps one pending reply per id, so one verify has at most one read in flight: further
// reads of the same evaluation wait in its queue and go out when the previous answer arrived.
import com.google.common.util.concurrent.Futures;
import com.google.common.util.concurrent.ListenableFuture;
import com.google.common.util.concurrent.MoreExecutors;
import com.google.common.util.concurrent.SettableFuture;
import com.google.firebase.rules.runtime.v1.ExpressionValue;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Consumer;

final class FirestoreBridge {
    /** The reads one evaluation may make. */
    interface Reads {
        ListenableFuture<ExpressionValue> get(String documentPath);

        ListenableFuture<ExpressionValue> exists(String documentPath);
    }

    private record Fetch(String path, SettableFuture<JsonObject> answer) {}

    private final Consumer<JsonObject> send;
    private final Map<Long, Deque<Fetch>> queues = new HashMap<>();

    FirestoreBridge(Consumer<JsonObject> send) {
        this.send = send;
    }

    Reads forRequest(long verifyId) {
        return new Reads() {
            @Override
            public ListenableFuture<ExpressionValue> get(String documentPath) {
                return transform(fetch(verifyId, documentPath), FirestoreDocuments::documentValue);
            }

            @Override
            public ListenableFuture<ExpressionValue> exists(String documentPath) {
                return transform(fetch(verifyId, documentPath), FirestoreDocuments::existsValue);
            }
        };
    }

    synchronized boolean isWaiting(long id) {
        Deque<Fetch> queue = queues.get(id);
        return queue != null && !queue.isEmpty();
    }

    /** The emulator's answer to the read in flight for verify `id`. */
    void answer(long id, JsonObject message) {
        Fetch done;
        synchronized (this) {
            Deque<Fetch> queue = queues.get(id);
            done = queue.removeFirst();
            if (!queue.isEmpty()) {
                send.accept(request(id, queue.peekFirst().path()));
            }
        }
        done.answer().set(message); // evaluation resumes here, on this thread
    }

    /** The evaluation of verify `id` is over: reads it still queued are failed. */
    void finished(long id) {
        Deque<Fetch> queue;
        synchronized (this) {
            queue = queues.remove(id);
        }
        if (queue != null) {
            queue.forEach(f -> f.answer().setException(new IllegalStateException("evaluation finished")));
        }
    }

    private ListenableFuture<JsonObject> fetch(long verifyId, String path) {
        if (!path.startsWith("/databases/")) {
            return Futures.immediateFailedFuture(
                    new IllegalArgumentException("not a Firestore document path: " + path));
        }
        SettableFuture<JsonObject> answer = SettableFuture.create();
        synchronized (this) {
            Deque<Fetch> queue = queues.computeIfAbsent(verifyId, id -> new ArrayDeque<>());
            queue.addLast(new Fetch(path, answer));
            if (queue.size() == 1) {
                send.accept(request(verifyId, path));
            }
        }
        return answer;
    }

    private static JsonObject request(long verifyId, String path) {
        JsonObject context = new JsonObject();
        context.addProperty("path", path);
        JsonObject message = new JsonObject();
        message.addProperty("id", verifyId);
        message.addProperty("server_request_id", verifyId);
        message.addProperty("status", "ok");
        message.addProperty("action", "fetch_firestore_document");
        message.add("context", context);
        message.add("errors", new JsonArray());
        message.add("warnings", new JsonArray());
        return message;
    }

    private interface Conversion {
        ExpressionValue apply(JsonObject answer) throws Exception;
    }

    private static ListenableFuture<ExpressionValue> transform(
            ListenableFuture<JsonObject> answer, Conversion conversion) {
        return Futures.transformAsync(
                answer,
                message -> {
                    try {
                        return Futures.immediateFuture(
                                conversion.apply(message));
                    } catch (Exception error) {
                        return Futures.immediateFailedFuture(error);
                    }
                },
                MoreExecutors.directExecutor());
    }
}
