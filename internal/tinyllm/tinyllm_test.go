package tinyllm

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
)

// TestStartAnswers starts the tiny test model and checks one real
// completion with a tool call (its tool choice, not its argument values).
func TestStartAnswers(t *testing.T) {
	u := Start(t)
	body := `{"model":"tiny-chat","messages":[{"role":"user","content":"list my notes"}],"tools":[{"type":"function","function":{"name":"notes_list_notes","parameters":{"type":"object","properties":{}}}}]}`
	resp, err := http.Post(u+"/chat/completions", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Choices []struct {
			Message struct {
				ToolCalls []struct {
					Function struct{ Name string } `json:"function"`
				} `json:"tool_calls"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if len(out.Choices) != 1 || len(out.Choices[0].Message.ToolCalls) != 1 || out.Choices[0].Message.ToolCalls[0].Function.Name != "notes_list_notes" {
		t.Fatalf("tiny model answered %+v, want one notes_list_notes call", out)
	}
}
