package org.example.roman;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class RomanTest {
    @ParameterizedTest
    @CsvSource({"1, I", "4, IV", "9, IX", "1994, MCMXCIV", "3999, MMMCMXCIX"})
    void formatsStandardNumerals(int value, String numeral) {
        assertEquals(numeral, Roman.format(value));
    }
}
