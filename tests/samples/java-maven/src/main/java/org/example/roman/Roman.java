package org.example.roman;

/** Roman numerals from 1 to 3999, in their standard subtractive form. */
public final class Roman {
    private static final int[] VALUES = {1000, 900, 500, 400, 100, 90, 50, 40, 10, 9, 5, 4, 1};
    private static final String[] SYMBOLS = {"M", "CM", "D", "CD", "C", "XC", "L", "XL", "X", "IX", "V", "IV", "I"};

    private Roman() {
    }

    /** Writes {@code value} as a Roman numeral. */
    public static String format(int value) {
        if (value < 1 || value > 3999) {
            throw new IllegalArgumentException("out of range: " + value);
        }
        StringBuilder out = new StringBuilder();
        int rest = value;
        for (int i = 0; i < VALUES.length; i++) {
            while (rest >= VALUES[i]) {
                out.append(SYMBOLS[i]);
                rest -= VALUES[i];
            }
        }
        return out.toString();
    }

    /** Reads a Roman numeral; refuses anything {@link #format} would not write. */
    public static int parse(String numeral) {
        if (numeral == null || numeral.isEmpty()) {
            throw new IllegalArgumentException("empty numeral");
        }
        int total = 0;
        int at = 0;
        for (int i = 0; i < VALUES.length && at < numeral.length(); i++) {
            while (numeral.startsWith(SYMBOLS[i], at)) {
                total += VALUES[i];
                at += SYMBOLS[i].length();
            }
        }
        if (at != numeral.length() || total > 3999 || !format(total).equals(numeral)) {
            throw new IllegalArgumentException("not a Roman numeral: " + numeral);
        }
        return total;
    }
}
