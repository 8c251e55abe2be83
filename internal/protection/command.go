package protection

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/skolbro/skolbro/internal/generation"
	"github.com/skolbro/skolbro/internal/identity"
)

// maxInputLine bounds one line read from stdin.
const maxInputLine = 1024

// Errors of Command. None of them repeats what was typed.
var (
	// ErrBadInput refuses a personal number that does not parse.
	ErrBadInput = errors.New("protection: not a valid personal number (the input is not repeated here)")
	// ErrNoInput is returned when stdin ended before a number.
	ErrNoInput = errors.New("protection: no personal number on standard input")
	// ErrUnknownOp is returned for an operation other than add, remove,
	// list and init (new-identity is NewIdentityCommand).
	ErrUnknownOp = errors.New("protection: unknown operation (add, remove, list, init or new-identity)")
)

// initer is a backend that must be created before use (FileRegister).
type initer interface {
	Init(ctx context.Context) error
}

// Command runs `skolbro protect add|remove|list|init` on reg.
//
// add and remove read one personal number from the first line of stdin,
// never from the command line (where it would be kept in shell history and
// shown in process lists); add then reads an optional note from the second
// line (never a name or a number). A prompt is printed to stdout only when
// stdin is a terminal. The number is checked with
// identity.ParsePersonalNumber; neither an error nor the confirmation
// repeats it: the confirmation shows the entry's shortened key. list
// prints every marking's shortened key, date and note. init creates an
// empty register where the backend needs one (a register file, the marker
// of a Redis register), or adopts an existing Redis register written
// before markers existed, and says how many markings it holds. It is also
// how a register whose data was lost is re-initialised, on purpose.
func Command(ctx context.Context, op string, reg *Register, stdin io.Reader, stdout io.Writer, now time.Time) error {
	in := bufio.NewReaderSize(stdin, maxInputLine)
	prompt := isTerminal(stdin)
	switch op {
	case "add":
		pnr, err := readNumber(in, stdout, prompt, now)
		if err != nil {
			return err
		}
		if prompt {
			fmt.Fprint(stdout, "Note (optional; never a name or a personal number): ")
		}
		note, err := readLine(in)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		switch err := reg.Add(ctx, pnr, note, now); {
		case errors.Is(err, ErrAlreadyMarked):
			fmt.Fprintf(stdout, "Already in the protection register as %s; unchanged.\n", reg.ShortKey(pnr))
			return nil
		case err != nil:
			return err
		}
		fmt.Fprintf(stdout, "Added to the protection register as %s.\n", reg.ShortKey(pnr))
		return nil
	case "remove":
		pnr, err := readNumber(in, stdout, prompt, now)
		if err != nil {
			return err
		}
		if err := reg.Remove(ctx, pnr); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Removed %s from the protection register.\n", reg.ShortKey(pnr))
		return nil
	case "list":
		entries, err := reg.List(ctx)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			fmt.Fprintln(stdout, "The protection register is empty.")
			return nil
		}
		w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "KEY\tADDED\tNOTE")
		for _, e := range entries {
			fmt.Fprintf(w, "%s\t%s\t%s\n", e.Key, printable(e.Added), printable(e.Note))
		}
		return w.Flush()
	case "init":
		wasReady := reg.Ready(ctx) == nil
		if i, ok := reg.backend.(initer); ok {
			if err := i.Init(ctx); err != nil {
				return err
			}
		}
		entries, err := reg.List(ctx)
		if err != nil {
			return err
		}
		switch {
		case wasReady:
			fmt.Fprintf(stdout, "The protection register was already initialised; unchanged. It holds %d marking(s).\n", len(entries))
		case len(entries) > 0:
			// A register written before markers existed (an upgrade).
			fmt.Fprintf(stdout, "The protection register is ready. It holds %d marking(s); check them with `skolbro protect list`.\n", len(entries))
		default:
			fmt.Fprintln(stdout, "The protection register is ready and holds no markings.")
			fmt.Fprintln(stdout, "If it held markings before (data lost from Redis, a deleted file), restore the backup or add them again now: until then those people are released unmasked.")
		}
		return nil
	default:
		return ErrUnknownOp
	}
}

// Renewer issues new identities on request: package generation's Keeper.
type Renewer interface {
	Request(ctx context.Context, pn identity.PersonalNumber, now time.Time) (generation.Status, error)
}

// NewIdentityCommand runs `skolbro protect new-identity`: it reads one
// personal number from the first line of stdin (as add does, never from
// the command line) and asks for a new identity for that person, issued
// at their next login that carries the number. It prints the dates known
// (requested, last issued), never the number.
func NewIdentityCommand(ctx context.Context, k Renewer, stdin io.Reader, stdout io.Writer, now time.Time) error {
	in := bufio.NewReaderSize(stdin, maxInputLine)
	pnr, err := readNumber(in, stdout, isTerminal(stdin), now)
	if err != nil {
		return err
	}
	st, err := k.Request(ctx, pnr, now)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "A new identity was requested on %s; it is issued at the person's next login that carries the personal number.\n", st.Requested.UTC().Format(time.DateOnly))
	if !st.Issued.IsZero() {
		fmt.Fprintf(stdout, "The last new identity was issued on %s (%s).\n", st.Issued.UTC().Format(time.DateOnly), printable(st.IssuedCause))
	}
	return nil
}

// readNumber prompts for and parses one personal number.
func readNumber(in *bufio.Reader, stdout io.Writer, prompt bool, now time.Time) (identity.PersonalNumber, error) {
	if prompt {
		fmt.Fprint(stdout, "Personal number: ")
	}
	line, err := readLine(in)
	if errors.Is(err, io.EOF) && line == "" {
		return identity.PersonalNumber{}, ErrNoInput
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return identity.PersonalNumber{}, err
	}
	pnr, err := identity.ParsePersonalNumber(line, now)
	if err != nil {
		return identity.PersonalNumber{}, ErrBadInput
	}
	return pnr, nil
}

// readLine reads one line without its line ending. It returns io.EOF with
// the text of a last line that had no line ending.
func readLine(in *bufio.Reader) (string, error) {
	line, err := in.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", errors.New("protection: input line too long")
	}
	s := strings.TrimRight(string(line), "\r\n")
	if err != nil {
		return s, err
	}
	return s, nil
}

// isTerminal reports whether r is a character device, such as a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// printable replaces control characters, which a note read from a backend
// someone else wrote might hold.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}
