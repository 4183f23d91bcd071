package example

import (
	"fmt"
	"strconv"
	"strings"
)

// formatCents renders cents as 1234.56, or 1,234.56 with grouping.
func formatCents(c int64, grouping bool) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	units := strconv.FormatInt(c/100, 10)
	if grouping {
		var b strings.Builder
		for i, r := range units {
			if i > 0 && (len(units)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(r)
		}
		units = b.String()
	}
	return fmt.Sprintf("%s%s.%02d", sign, units, c%100)
}

// parseCents parses a non-negative amount with at most two decimals.
func parseCents(s string) (int64, error) {
	units, frac, hasFrac := strings.Cut(s, ".")
	if units == "" || (hasFrac && (len(frac) == 0 || len(frac) > 2)) {
		return 0, fmt.Errorf("amount %q is not like 12.34", s)
	}
	u, err := strconv.ParseInt(units, 10, 64)
	if err != nil || u < 0 || u > 1e12 {
		return 0, fmt.Errorf("amount %q is not like 12.34", s)
	}
	var f int64
	if hasFrac {
		if len(frac) == 1 {
			frac += "0"
		}
		f, err = strconv.ParseInt(frac, 10, 64)
		if err != nil || f < 0 {
			return 0, fmt.Errorf("amount %q is not like 12.34", s)
		}
	}
	return u*100 + f, nil
}

// centsToFloat is the JSON form of an amount.
func centsToFloat(c int64) float64 { return float64(c) / 100 }

// floatToCents is the inverse of centsToFloat for amounts read back.
func floatToCents(f float64) int64 {
	if f < 0 {
		return -floatToCents(-f)
	}
	return int64(f*100 + 0.5)
}
