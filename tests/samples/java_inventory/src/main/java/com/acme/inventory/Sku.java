package com.acme.inventory;

import java.util.Objects;

/** A stock-keeping unit code such as {@code ABC-123}. */
public final class Sku {
    private final String code;

    public Sku(String code) {
        if (!code.matches("[A-Z]{3}-\\d{3}")) {
            throw new IllegalArgumentException("bad SKU: " + code);
        }
        this.code = code;
    }

    public String code() {
        return code;
    }

    private static String normalise(String raw) {
        return raw.trim().toUpperCase();
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof Sku && ((Sku) other).code.equals(code);
    }

    @Override
    public int hashCode() {
        return Objects.hash(code);
    }
}
