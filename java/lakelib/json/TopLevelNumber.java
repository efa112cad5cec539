package lakelib.json;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import org.apache.spark.sql.api.java.UDF2;

/**
 * Spark UDF {@code (string, string) -> string}: the number a JSON object holds under a top-level key, as the text
 * wrote it ({@code 1e400}, {@code 0.1000000000000000001}); the key's last copy counts, as in the parse. {@code null}
 * when that value is not a number, the key is absent (keys of nested objects are not looked at), or the text is not
 * a JSON object.
 */
public final class TopLevelNumber implements UDF2<String, String, String> {
    private static final long serialVersionUID = 1L;
    private static final JsonFactory FACTORY = new JsonFactory();

    @Override
    public String call(String text, String key) {
        if (text == null || key == null) {
            return null;
        }
        try (JsonParser parser = FACTORY.createParser(text)) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                return null;
            }
            String found = null;
            while (parser.nextToken() == JsonToken.FIELD_NAME) {
                boolean wanted = key.equals(parser.getCurrentName());
                JsonToken value = parser.nextToken();
                if (wanted) {
                    found = value == JsonToken.VALUE_NUMBER_INT || value == JsonToken.VALUE_NUMBER_FLOAT
                            ? parser.getText() : null;
                }
                parser.skipChildren();
            }
            return found;
        } catch (Exception notJson) {
            return null;
        }
    }
}
