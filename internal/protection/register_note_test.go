package protection

import (
	"errors"
	"strings"
	"testing"
)

// TestCase36_RegisterNoteRefusesPersonalNumber: a note next to a protected
// marking never stores a personal number in clear, however it is written.
// 201203154511 is a valid number (Luhn) of a pupil born 2012-03-15.
func TestCase36_RegisterNoteRefusesPersonalNumber(t *testing.T) {
	t.Parallel()
	r, err := NewRegister(newFileBackend(t).backend, testRegisterKey)
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct{ name, note string }{
		{"separators in the date", "ny identitet, tidigare 2012-03-15-4511"},
		{"spaced dash", "tidigare 20120315 - 4511"},
		{"en dash", "tidigare 120315–4511"},
		{"spaces in the date", "tidigare 12 03 15 4511"},
		{"full-width digits", "tidigare １２０３１５－４５１１"},
		{"full-width digits, 12 in a row", "tidigare ２０１２０３１５４５１１"},
		{"coordination number", "samordningsnummer 701063-2391"},
		{"no-break space", "tidigare 120315\u00a04511"},
	}
	for i, tc := range refused {
		err := r.Add(bg, mustPNR(t, testNumbers[i%len(testNumbers)]), tc.note, testNow)
		if !errors.Is(err, ErrBadNote) {
			t.Errorf("%s: Add = %v, want ErrBadNote", tc.name, err)
		}
		if err != nil && strings.Contains(err.Error(), "4511") {
			t.Errorf("%s: the error quotes the note", tc.name)
		}
	}
	if entries, err := r.List(bg); err != nil || len(entries) != 0 {
		t.Fatalf("after refused notes the register holds %d entries (err %v)", len(entries), err)
	}
	// Dates and numbers that are not personal numbers are still fine.
	for i, note := range []string{"beslut 2025-02-14, rektor", "ärende 2025/1234", "Skatteverket 2025-02-14 1430"} {
		if err := r.Add(bg, mustPNR(t, testNumbers[i]), note, testNow); err != nil {
			t.Errorf("note %q refused: %v", note, err)
		}
	}
}
