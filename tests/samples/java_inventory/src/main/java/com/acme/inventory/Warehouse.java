package com.acme.inventory;

import java.util.HashMap;
import java.util.Map;

/** Quantities on hand per SKU, with reservations that may not exceed them. */
public class Warehouse {
    public static final int MAX_RESERVATION = 1_000;

    private final Map<Sku, Integer> onHand = new HashMap<>();
    private final Map<Sku, Integer> reserved = new HashMap<>();

    public Warehouse() {
    }

    public void receive(Sku sku, int quantity) {
        if (quantity <= 0) {
            throw new IllegalArgumentException("quantity must be positive");
        }
        onHand.merge(sku, quantity, Integer::sum);
    }

    public int available(Sku sku) {
        return onHand.getOrDefault(sku, 0) - reserved.getOrDefault(sku, 0);
    }

    public Reservation reserve(Sku sku, int quantity) {
        if (quantity > MAX_RESERVATION) {
            throw new IllegalArgumentException("too many: " + quantity);
        }
        if (available(sku) < quantity) {
            return Reservation.rejected(sku);
        }
        reserved.merge(sku, quantity, Integer::sum);
        return new Reservation(sku, quantity, Status.HELD);
    }

    int reservedCount() {
        return reserved.size();
    }

    private void audit(String line) {
        System.out.println(line);
    }

    public enum Status { HELD, REJECTED }

    public static final class Reservation {
        private final Sku sku;
        private final int quantity;
        private final Status status;

        Reservation(Sku sku, int quantity, Status status) {
            this.sku = sku;
            this.quantity = quantity;
            this.status = status;
        }

        static Reservation rejected(Sku sku) {
            return new Reservation(sku, 0, Status.REJECTED);
        }

        public Status status() {
            return status;
        }

        public int quantity() {
            return quantity;
        }
    }
}
