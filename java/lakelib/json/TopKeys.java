package lakelib.json;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.api.java.UDF1;

/**
 * Spark UDF {@code struct<keys: array<string>, repeats: boolean>}: the top-level keys of a JSON object, in order and
 * with any repeat (what Spark's {@code json_object_keys} gives), and whether an object nested below the top level
 * repeats a key. One pass over the text's tokens, no value built; {@code null} for text that is not a JSON object.
 */
public final class TopKeys implements UDF1<String, Row> {
    private static final long serialVersionUID = 1L;
    private static final JsonFactory FACTORY = new JsonFactory();

    @Override
    public Row call(String text) {
        if (text == null) {
            return null;
        }
        try (JsonParser parser = FACTORY.createParser(text)) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                return null;
            }
            List<String> keys = new ArrayList<>();
            boolean repeats = false;
            // The keys seen in each open container below the top level; null for an array. Sets are reused.
            List<HashSet<String>> open = new ArrayList<>();
            List<HashSet<String>> spare = new ArrayList<>();
            JsonToken token;
            while ((token = parser.nextToken()) != null) {
                if (token == JsonToken.FIELD_NAME) {
                    if (open.isEmpty()) {
                        keys.add(parser.getCurrentName());
                    } else if (!repeats) {
                        repeats = !open.get(open.size() - 1).add(parser.getCurrentName());
                    }
                } else if (token == JsonToken.START_OBJECT) {
                    HashSet<String> seen = spare.isEmpty() ? new HashSet<>() : spare.remove(spare.size() - 1);
                    seen.clear();
                    open.add(seen);
                } else if (token == JsonToken.START_ARRAY) {
                    open.add(null);
                } else if (token == JsonToken.END_OBJECT || token == JsonToken.END_ARRAY) {
                    if (open.isEmpty()) {
                        break; // the end of the top-level object
                    }
                    HashSet<String> closed = open.remove(open.size() - 1);
                    if (closed != null) {
                        spare.add(closed);
                    }
                }
            }
            return RowFactory.create(keys, repeats);
        } catch (Exception notJson) {
            return null;
        }
    }
}
