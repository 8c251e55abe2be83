package identity

import (
	"testing"
	"time"
)

// TestCase36_ContainsPersonalNumber is the detector's table (SECURITY.md
// case 36: no personal number in any output). 191212121212 is Skatteverket's
// test number, 201203154511 a valid one with a 2012 date, 701063-2391 a
// coordination number (day 03 plus 60).
func TestCase36_ContainsPersonalNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    string
		want bool
	}{
		{"mail built from the number", "191212121212@elev.skola.example.se", true},
		{"display name with the number", "Tolvan Tolvansson 19121212-1212", true},
		{"whole value, 12 digits", "191212121212", true},
		{"whole value, 10 digits", "1212121212", true},
		{"hyphen", "121212-1212", true},
		{"plus (aged 100 or more)", "121212+1212", true},
		{"space", "20120315 4511", true},
		{"en dash", "120315–4511", true},
		{"em dash", "120315—4511", true},
		{"no-break space", "120315\u00a04511", true},
		{"separators in the date", "2012-03-15-4511", true},
		{"spaced dash", "20120315 - 4511", true},
		{"spaced en dash", "120315 – 4511", true},
		{"spaces in the date", "12 03 15 4511", true},
		{"dots in the date", "2012.03.15-4511", true},
		{"underscore in a login name", "tolvan_121212_1212", true},
		{"full-width digits", "１９１２１２１２１２１２", true},
		{"full-width digits and hyphen", "１９１２１２１２－１２１２", true},
		{"full-width digits in a mail", "１２１２１２１２１２@elev.skola.example.se", true},
		{"Arabic-Indic digits", "١٩١٢١٢١٢١٢١٢", true},
		{"mathematical digits", "𝟏𝟗𝟏𝟐𝟏𝟐𝟏𝟐𝟏𝟐𝟏𝟐", true},
		{"superscript digits", "¹⁹¹²¹²¹²¹²¹²", true},
		{"soft hyphen inside", "19121212\u00ad1212", true},
		{"zero-width space inside", "1912\u200b1212\u200b1212", true},
		{"coordination number", "701063-2391", true},
		{"coordination number, 12 digits", "elev.197010632391@skola.example.se", true},
		{"letters around", "x19121212-1212y", true},
		{"after other digits and a separator", "0046 19121212-1212", true},
		{"twice", "121212-1212 and 191212121212", true},

		{"12 digits failing Luhn", "191212121213", false},
		{"10 digits failing Luhn", "121212-1213", false},
		{"in a mail, failing Luhn", "191212121213@elev.skola.example.se", false},
		{"plain mail", "tolvan@skola.example.se", false},
		{"name", "Tolvan Tolvansson", false},
		{"empty", "", false},
		{"school unit code", "12345678", false},
		{"13 digits around a valid number", "1191212121212", false},
		{"14 digits", "19121212121212", false},
		{"century not 18-20", "551212121212", false},
		{"month 13", "191213121211", false},
		{"day 00", "121200-1216", false},
		{"day 92 (no coordination number)", "121292-1215", false},
		{"phone number", "070-123 45 67", false},
		{"date and time", "2012-03-15 14:30", false},
		{"joints outside the date", "12-12-12-12-12", false},
		{"a long gap", "121212 -  - 1212", false},
		{"note with a date", "beslut 2025-02, rektor", false},
		{"other text between", "121212 x 1212", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := ContainsPersonalNumber(tc.s); got != tc.want {
				t.Errorf("ContainsPersonalNumber = %v, want %v", got, tc.want)
			}
		})
	}
}

// The detector finds at least what ParsePersonalNumber accepts with a valid
// date, so that a whole value that parses is always caught.
func TestContainsPersonalNumberCoversParse(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"191212121212", "19121212-1212", "121212-1212", "121212+1212", "1212121212", "200001012384"} {
		if _, err := ParsePersonalNumber(s, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatalf("%s does not parse: %v", s, err)
		}
		if !ContainsPersonalNumber(s) {
			t.Errorf("a parsable number is not detected")
		}
	}
}

func FuzzContainsPersonalNumber(f *testing.F) {
	for _, s := range []string{"191212121212", "Tolvan 19121212-1212", "12 03 15 4511", "１９１２１２１２１２", "\u00ad\u200b٠"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ContainsPersonalNumber(s) // never a panic
	})
}
