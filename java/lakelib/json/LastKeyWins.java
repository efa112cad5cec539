package lakelib.json;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.api.java.UDF1;

/**
 * Spark UDF {@code string -> string}: JSON text without the earlier copies of a key repeated in one object, at any
 * depth, every other character as it is (a repeated key resolves to its last value, as in {@code JSON.parse}). Text
 * without a repeated key, and text that is not JSON, comes back unchanged.
 */
public final class LastKeyWins implements UDF1<String, String> {
    private static final long serialVersionUID = 1L;
    private static final JsonFactory FACTORY = new JsonFactory();

    @Override
    public String call(String text) {
        if (text == null) {
            return null;
        }
        List<int[]> cuts = new ArrayList<>();
        try (JsonParser parser = FACTORY.createParser(text)) {
            // Per open container: the names and start offsets of an object's keys (null for an array).
            List<List<String>> names = new ArrayList<>();
            List<List<Integer>> starts = new ArrayList<>();
            JsonToken token;
            while ((token = parser.nextToken()) != null) {
                if (token == JsonToken.FIELD_NAME) {
                    names.get(names.size() - 1).add(parser.getCurrentName());
                    starts.get(starts.size() - 1).add((int) parser.getTokenLocation().getCharOffset());
                } else if (token == JsonToken.START_OBJECT) {
                    names.add(new ArrayList<>());
                    starts.add(new ArrayList<>());
                } else if (token == JsonToken.START_ARRAY) {
                    names.add(null);
                    starts.add(null);
                } else if (token == JsonToken.END_OBJECT || token == JsonToken.END_ARRAY) {
                    List<String> keys = names.remove(names.size() - 1);
                    List<Integer> at = starts.remove(starts.size() - 1);
                    if (keys != null) {
                        cutEarlierCopies(keys, at, cuts);
                    }
                }
            }
        } catch (Exception notJson) {
            return text;
        }
        if (cuts.isEmpty()) {
            return text;
        }
        cuts.sort((a, b) -> Integer.compare(a[0], b[0]));
        StringBuilder out = new StringBuilder(text.length());
        int pos = 0;
        for (int[] cut : cuts) {
            if (cut[0] >= pos) { // a cut inside one already made is gone with it
                out.append(text, pos, cut[0]);
                pos = cut[1];
            }
        }
        return out.append(text, pos, text.length()).toString();
    }

    /** An earlier copy of a key runs from its name to the next key of its object (a later copy comes after it). */
    private static void cutEarlierCopies(List<String> keys, List<Integer> at, List<int[]> cuts) {
        if (keys.size() < 2) {
            return;
        }
        Map<String, Integer> last = new HashMap<>();
        for (int i = 0; i < keys.size(); i++) {
            last.put(keys.get(i), i);
        }
        if (last.size() == keys.size()) {
            return;
        }
        for (int i = 0; i < keys.size(); i++) {
            if (last.get(keys.get(i)) != i) {
                cuts.add(new int[] {at.get(i), at.get(i + 1)});
            }
        }
    }
}
