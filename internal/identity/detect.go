package identity

import "unicode"

// ContainsPersonalNumber reports whether s holds a Swedish personal identity
// number or coordination number (samordningsnummer, day of birth plus 60)
// anywhere, also inside a longer value such as a mail address
// (191212121212@elev.skola.example.se) or a display name
// (Tolvan Tolvansson 19121212-1212). It is the one detector the bridge uses
// wherever a number must not pass: upstream values before release, and the
// notes of the protection register.
//
// What counts, so that it can be reasoned about:
//   - Digits are read as NFKC would read them, and more: every Unicode
//     decimal digit (full-width ０-９, Arabic-Indic, mathematical, ...) and
//     the superscript and subscript digits count as their ASCII value.
//     Invisible format characters (soft hyphen, zero-width space, category
//     Cf) are skipped, as a reader would not see them.
//   - A number is 10 digits (YYMMDDNNNN) or 12 (CCYYMMDDNNNN, century 18,
//     19 or 20) with a valid month, a day of 01-31 or, for a coordination
//     number, 61-91, and a correct Luhn digit.
//   - It may be written in one run of digits, or in groups split by at most
//     three separator characters (spaces, dashes including the en dash,
//     plus signs, '.', '/', '_') at the joints of the date and before the
//     serial: 19121212-1212, 121212+1212, 2012-03-15-4511,
//     20120315 - 4511, 12 03 15 4511.
//   - It is bounded by non-digits: a run of more than 12 digits is not a
//     number (an account id, a hash), but a number separated from other
//     digits by a separator still is (0046 19121212-1212).
func ContainsPersonalNumber(s string) bool {
	runs := digitRuns(s)
	for i := range runs {
		digits := 0
		var joints []int
		for j := i; j < len(runs); j++ {
			if j > i {
				if !runs[j].joined {
					break
				}
				joints = append(joints, digits)
			}
			digits += len(runs[j].digits)
			if digits > 12 {
				break
			}
			if (digits == 10 || digits == 12) && validNumber(concat(runs[i:j+1]), joints) {
				return true
			}
		}
	}
	return false
}

// digitRun is a maximal run of digits, as ASCII; joined says that it
// follows the previous run after nothing but a short run of separators.
type digitRun struct {
	digits []byte
	joined bool
}

// maxSeparators is the longest gap between two groups of one number
// (" - " or " – " is three).
const maxSeparators = 3

func digitRuns(s string) []digitRun {
	var runs []digitRun
	var cur []byte
	gap := -1 // separators since the last digit; -1: something else came between
	for _, r := range s {
		if unicode.Is(unicode.Cf, r) {
			continue
		}
		if d, ok := digitValue(r); ok {
			if cur == nil {
				runs = append(runs, digitRun{joined: len(runs) > 0 && gap >= 1 && gap <= maxSeparators})
			}
			cur = append(cur, byte('0'+d))
			runs[len(runs)-1].digits = cur
			gap = 0
			continue
		}
		cur = nil
		switch {
		case gap >= 0 && isSeparator(r):
			gap++
		default:
			gap = -1
		}
	}
	return runs
}

func concat(runs []digitRun) []byte {
	var out []byte
	for _, r := range runs {
		out = append(out, r.digits...)
	}
	return out
}

// validNumber checks a 10- or 12-digit candidate: century, date, Luhn,
// and separators only where a date or the serial begins.
func validNumber(d []byte, joints []int) bool {
	off := 0
	if len(d) == 12 {
		switch string(d[:2]) {
		case "18", "19", "20":
		default:
			return false
		}
		off = 2
	}
	for _, j := range joints {
		switch j - off {
		case 2, 4, 6: // after the year, the month, the day
		default:
			return false
		}
	}
	ten := d[off:]
	month := int(ten[2]-'0')*10 + int(ten[3]-'0')
	day := int(ten[4]-'0')*10 + int(ten[5]-'0')
	if day > 60 {
		day -= 60 // coordination number
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn[month-1] {
		return false
	}
	return luhn(string(ten))
}

// daysIn is the longest month: 29 February is always allowed, since the
// century of a 10-digit number is not known here.
var daysIn = [12]int{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// digitValue returns the value of a decimal digit in any script, and of
// the superscript and subscript digits NFKC folds to ASCII.
func digitValue(r rune) (int, bool) {
	switch {
	case r >= '0' && r <= '9':
		return int(r - '0'), true
	case r == '¹':
		return 1, true
	case r == '²' || r == '³':
		return int(r-'²') + 2, true
	case r == '⁰' || (r >= '⁴' && r <= '⁹'):
		return int(r - '⁰'), true
	case r >= '₀' && r <= '₉':
		return int(r - '₀'), true
	case unicode.IsDigit(r):
		// Unicode assigns decimal digits only in contiguous runs of ten,
		// zero first (a stability policy), so the offset from the start of
		// the run of digits gives the value.
		z := r
		for n := 0; n < 100 && unicode.IsDigit(z-1); n++ {
			z--
		}
		return int(r-z) % 10, true
	}
	return 0, false
}

// isSeparator reports whether r may stand between the groups of a number.
func isSeparator(r rune) bool {
	switch r {
	case '+', '.', '/', '_', '\u2212' /* minus */, '\uFF0B' /* full-width plus */, '\uFE62' /* small plus */, '\uFF0E', '\uFF0F', '\uFF3F':
		return true
	}
	return unicode.Is(unicode.Pd, r) || unicode.Is(unicode.Zs, r)
}
