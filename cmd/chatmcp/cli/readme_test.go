package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestREADMEAttestationWalkthrough runs the README's "attestation on real
// evidence" walkthrough line by line, in a scratch directory as a reader
// would from the checkout, and checks each line's documented exit code
// ("# exit N", else 0). The lines must call the installed chatmcp: `go run`
// turns every failure into exit 1, so the documented 2 and 3 would be lies.
func TestREADMEAttestationWalkthrough(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	section := markdownSection(t, string(readme), "## Walkthrough: attestation on real evidence")
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) == 0 {
		t.Fatal("the walkthrough has no sh blocks")
	}
	t.Chdir(t.TempDir())
	vars := map[string]string{}
	exitComment := regexp.MustCompile(`#\s*exit (\d+)`)
	ran := 0
	for _, b := range blocks {
		lines := strings.Split(strings.ReplaceAll(b[1], "\\\n", " "), "\n")
		for i := 0; i < len(lines); i++ {
			line := strings.TrimSpace(lines[i])
			switch f := strings.Fields(line); {
			case line == "":
			case len(f) == 4 && f[0] == "cat" && f[1] == ">" && f[3] == "<<'EOF'":
				var body []string
				for i++; i < len(lines) && lines[i] != "EOF"; i++ {
					body = append(body, lines[i])
				}
				if err := os.WriteFile(f[2], []byte(strings.Join(body, "\n")+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			case regexp.MustCompile(`^[A-Z]+=\S+$`).MatchString(line):
				name, value, _ := strings.Cut(line, "=")
				// README lines run from the checkout's root.
				vars[name] = filepath.Join(root, value)
				if _, err := os.Stat(vars[name]); err != nil {
					t.Skipf("real TEE test vectors not found at %s (they live beside the checkout)", value)
				}
			case f[0] == "chatmcp":
				want := 0
				if m := exitComment.FindStringSubmatch(line); m != nil {
					want, _ = strconv.Atoi(m[1])
				}
				cmd, _, _ := strings.Cut(line, "#")
				args := strings.Fields(os.Expand(cmd, func(k string) string { return vars[k] }))[1:]
				var out, errb bytes.Buffer
				got := Main(context.Background(), args, &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
				if got != want {
					t.Errorf("README line %q exits %d, documented %d\nstdout: %s\nstderr: %s", line, got, want, out.String(), errb.String())
				}
				ran++
			default:
				t.Errorf("README walkthrough line %q does not run the installed chatmcp (go run exits 1 on any failure)", line)
			}
		}
	}
	if ran < 5 {
		t.Errorf("ran %d chatmcp lines from the walkthrough, want at least 5", ran)
	}
}

// markdownSection returns the text from heading to the next heading of the
// same level.
func markdownSection(t *testing.T, doc, heading string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README has no %q", heading)
	}
	level := heading[:strings.Index(heading, " ")+1]
	if i := strings.Index(rest, "\n"+level); i >= 0 {
		rest = rest[:i]
	}
	return rest
}
