package gregor.compat;

import java.util.Collection;
import java.util.Iterator;
import java.util.Map;

/** Minimal JSON writing for the one-line events the group programs print. */
final class Json {
    private final StringBuilder sb = new StringBuilder("{");
    private boolean first = true;

    static Json event(String name) {
        return new Json().str("event", name);
    }

    private Json key(String k) {
        if (!first) {
            sb.append(',');
        }
        first = false;
        quote(sb, k);
        sb.append(':');
        return this;
    }

    Json str(String k, String v) {
        key(k);
        if (v == null) {
            sb.append("null");
        } else {
            quote(sb, v);
        }
        return this;
    }

    Json num(String k, long v) {
        key(k).sb.append(v);
        return this;
    }

    Json bool(String k, boolean v) {
        key(k).sb.append(v);
        return this;
    }

    Json ints(String k, Collection<Integer> vs) {
        key(k).sb.append('[');
        Iterator<Integer> it = vs.iterator();
        while (it.hasNext()) {
            sb.append(it.next());
            if (it.hasNext()) {
                sb.append(',');
            }
        }
        sb.append(']');
        return this;
    }

    Json strs(String k, Collection<String> vs) {
        key(k).sb.append('[');
        Iterator<String> it = vs.iterator();
        while (it.hasNext()) {
            quote(sb, it.next());
            if (it.hasNext()) {
                sb.append(',');
            }
        }
        sb.append(']');
        return this;
    }

    /** A nested object written by the caller (already JSON). */
    Json raw(String k, String json) {
        key(k).sb.append(json);
        return this;
    }

    /** An object of string keys to JSON numbers. */
    Json numMap(String k, Map<String, Long> m) {
        key(k).sb.append('{');
        boolean f = true;
        for (Map.Entry<String, Long> e : m.entrySet()) {
            if (!f) {
                sb.append(',');
            }
            f = false;
            quote(sb, e.getKey());
            sb.append(':').append(e.getValue());
        }
        sb.append('}');
        return this;
    }

    @Override
    public String toString() {
        return sb.toString() + "}";
    }

    static void quote(StringBuilder out, String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }

    /** Prints one event line and flushes (the reader is a pipe). */
    static synchronized void emit(Json j) {
        System.out.println(j.toString());
        System.out.flush();
    }
}
