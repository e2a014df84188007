// The Firestore emulator's REST answer (google.firestore.v1.Document as JSON: name, fields) as the
// values firestore.get/exists return inside storage rules: get gives a map with `data` (the fields),
// `id` and `__name__` (the document path), as a document does in Firestore rules; a missing
// document is null for get and false for exists. Anything unexpected throws: the evaluation fails
// and the request is denied.
import com.google.firebase.rules.runtime.utils.PathUtils;
import com.google.firebase.rules.runtime.v1.ExpressionListValue;
import com.google.firebase.rules.runtime.v1.ExpressionMapValue;
import com.google.firebase.rules.runtime.v1.ExpressionValue;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.protobuf.ByteString;
import com.google.protobuf.NullValue;
import com.google.protobuf.util.Timestamps;
import com.google.type.LatLng;
import java.text.ParseException;
import java.util.Base64;
import java.util.Map;

final class FirestoreDocuments {
    private FirestoreDocuments() {}

    static ExpressionValue existsValue(JsonObject answer) {
        return ExpressionValue.newBuilder().setBoolValue(found(answer)).build();
    }

    static ExpressionValue documentValue(JsonObject answer) throws ParseException {
        if (!found(answer)) {
            return ExpressionValue.newBuilder().setNullValue(NullValue.NULL_VALUE).build();
        }
        JsonObject document = answer.getAsJsonObject("result");
        String name = document.get("name").getAsString();
        String path = documentPath(name);
        JsonObject fields = document.has("fields") ? document.getAsJsonObject("fields") : new JsonObject();
        return map(Map.of(
                "data", fieldsValue(fields),
                "id", string(path.substring(path.lastIndexOf('/') + 1)),
                "__name__", ExpressionValue.newBuilder().setPathValue(PathUtils.parseRaw(path)).build()));
    }

    /** ok: the document exists; not_found: it does not; anything else fails the evaluation. */
    private static boolean found(JsonObject answer) {
        if (answer.has("errors") && answer.getAsJsonArray("errors").size() > 0) {
            throw new IllegalStateException("Firestore read failed: " + answer.get("errors"));
        }
        String status = answer.has("status") ? answer.get("status").getAsString() : "";
        return switch (status) {
            case "ok" -> {
                if (!answer.has("result") || !answer.get("result").isJsonObject()) {
                    throw new IllegalStateException("Firestore read answered ok without a document");
                }
                yield true;
            }
            case "not_found" -> false;
            default -> throw new IllegalStateException("Firestore read status " + status);
        };
    }

    /** projects/p/databases/d/documents/c/x -> /databases/d/documents/c/x */
    private static String documentPath(String name) {
        int at = name.indexOf("/databases/");
        if (!name.startsWith("projects/") || at < 0) {
            throw new IllegalStateException("unexpected document name " + name);
        }
        return name.substring(at);
    }

    private static ExpressionValue fieldsValue(JsonObject fields) throws ParseException {
        ExpressionMapValue.Builder map = ExpressionMapValue.newBuilder();
        for (Map.Entry<String, JsonElement> field : fields.entrySet()) {
            map.putFields(field.getKey(), value(field.getValue().getAsJsonObject()));
        }
        return ExpressionValue.newBuilder().setMapValue(map).build();
    }

    /** One google.firestore.v1.Value in its JSON form. */
    static ExpressionValue value(JsonObject json) throws ParseException {
        if (json.size() != 1) {
            throw new IllegalStateException("Firestore value with " + json.size() + " kinds: " + json);
        }
        Map.Entry<String, JsonElement> kind = json.entrySet().iterator().next();
        JsonElement v = kind.getValue();
        ExpressionValue.Builder out = ExpressionValue.newBuilder();
        switch (kind.getKey()) {
            case "nullValue" -> out.setNullValue(NullValue.NULL_VALUE);
            case "booleanValue" -> out.setBoolValue(v.getAsBoolean());
            case "integerValue" -> out.setIntValue(Long.parseLong(v.getAsString()));
            case "doubleValue" -> out.setFloatValue(doubleOf(v));
            case "stringValue" -> out.setStringValue(v.getAsString());
            case "bytesValue" -> out.setBytesValue(ByteString.copyFrom(Base64.getDecoder().decode(v.getAsString())));
            case "timestampValue" -> out.setTimestampValue(Timestamps.parse(v.getAsString()));
            case "referenceValue" -> out.setPathValue(PathUtils.parseRaw(documentPath(v.getAsString())));
            case "geoPointValue" -> {
                JsonObject point = v.getAsJsonObject();
                out.setLatlngValue(LatLng.newBuilder()
                        .setLatitude(point.has("latitude") ? point.get("latitude").getAsDouble() : 0)
                        .setLongitude(point.has("longitude") ? point.get("longitude").getAsDouble() : 0));
            }
            case "arrayValue" -> {
                ExpressionListValue.Builder list = ExpressionListValue.newBuilder();
                JsonObject array = v.getAsJsonObject();
                if (array.has("values")) {
                    for (JsonElement item : array.getAsJsonArray("values")) {
                        list.addValues(value(item.getAsJsonObject()));
                    }
                }
                out.setListValue(list);
            }
            case "mapValue" -> {
                JsonObject map = v.getAsJsonObject();
                return fieldsValue(map.has("fields") ? map.getAsJsonObject("fields") : new JsonObject());
            }
            default -> throw new IllegalStateException("unsupported Firestore value kind " + kind.getKey());
        }
        return out.build();
    }

    // JSON doubles may be "NaN", "Infinity", "-Infinity" as strings.
    private static double doubleOf(JsonElement v) {
        return v.getAsJsonPrimitive().isString() ? Double.parseDouble(v.getAsString()) : v.getAsDouble();
    }

    private static ExpressionValue string(String s) {
        return ExpressionValue.newBuilder().setStringValue(s).build();
    }

    private static ExpressionValue map(Map<String, ExpressionValue> fields) {
        return ExpressionValue.newBuilder().setMapValue(ExpressionMapValue.newBuilder().putAllFields(fields)).build();
    }
}
