package protection

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/skolbro/skolbro/internal/identity"
)

// testNow is the fixed clock of the tests.
var testNow = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

// testNumbers are valid personal numbers (Luhn) used across the tests.
var testNumbers = []string{
	"200501022388",
	"201203154511",
	"199807217642",
	"201511306126",
	"200902287341",
}

// testRegisterKey is a 32-byte register key.
var testRegisterKey = []byte("0123456789abcdef0123456789abcdef")

// numberForms returns the ways a 12-digit number could be written: the
// 12-digit, 10-digit and both dashed forms.
func numberForms(pnr string) []string {
	return []string{pnr, pnr[2:], pnr[2:8] + "-" + pnr[8:], pnr[:8] + "-" + pnr[8:]}
}

// assertNoTestNumber fails if any form of any test number is in b.
func assertNoTestNumber(t *testing.T, what string, b []byte) {
	t.Helper()
	for _, n := range testNumbers {
		for _, f := range numberForms(n) {
			if bytes.Contains(b, []byte(f)) {
				t.Errorf("%s holds a personal number in clear (form %d chars)", what, len(f))
			}
		}
	}
}

// numberLike is SECURITY.md's pattern for a personal number in text.
var numberLike = regexp.MustCompile(`\d{6,8}[-+]?\d{4}`)

// assertNoNumberInText fails if text (an error or output message, which
// holds no hex keys) has anything shaped like a personal number.
func assertNoNumberInText(t *testing.T, what, text string) {
	t.Helper()
	assertNoTestNumber(t, what, []byte(text))
	if numberLike.MatchString(text) {
		t.Errorf("%s looks like it holds a personal number: %q", what, numberLike.FindString(text))
	}
}

func mustPNR(t testing.TB, s string) identity.PersonalNumber {
	t.Helper()
	p, err := identity.ParsePersonalNumber(s, testNow)
	if err != nil {
		t.Fatalf("test number %d: %v", len(s), err)
	}
	return p
}

func person(t testing.TB, pnr string) *identity.Identity {
	t.Helper()
	id := &identity.Identity{Upstream: "test"}
	if pnr != "" {
		id.PersonalNumber = mustPNR(t, pnr)
	}
	return id
}

// TestTestNumbersAreValid guards the fixtures: every test number parses.
func TestTestNumbersAreValid(t *testing.T) {
	for _, n := range testNumbers {
		if _, err := identity.ParsePersonalNumber(n, testNow); err != nil {
			t.Errorf("test number of length %d does not parse: %v", len(n), err)
		}
	}
}

var bg = context.Background()
