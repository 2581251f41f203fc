package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// MaxModelResponse caps a model endpoint's response body.
const MaxModelResponse = 4 << 20

// ModelClient calls an OpenAI-compatible chat-completions endpoint
// (POST {URL}/chat/completions, not streamed).
type ModelClient struct {
	// URL is the base URL ending in /v1 (or wherever chat/completions
	// lives). Required.
	URL string
	// Model is the model name sent in each request. Required.
	Model string
	// APIKey is sent as "Authorization: Bearer". If empty, none is sent.
	APIKey string
	// HTTPClient sends requests: one verifying RA-TLS when the endpoint is
	// attested. If nil, http.DefaultClient.
	HTTPClient *http.Client
}

// ChatMessage is one message of a chat-completions request or response.
// Content is a pointer because an assistant message that calls tools has
// "content": null.
type ChatMessage struct {
	Role       string     `json:"role"`
	Content    *string    `json:"content"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

// ToolCall is a model's request to call a function.
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
}

// FunctionCall names the function and its arguments (a JSON string).
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ToolDef is a function offered to the model (OpenAI "tools").
type ToolDef struct {
	Type     string      `json:"type"`
	Function FunctionDef `json:"function"`
}

// FunctionDef describes an offered function.
type FunctionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// ChatRequest is the body of a chat-completions request.
type ChatRequest struct {
	Model     string        `json:"model"`
	Messages  []ChatMessage `json:"messages"`
	Tools     []ToolDef     `json:"tools,omitempty"`
	MaxTokens int           `json:"max_tokens,omitempty"`
}

// ChatResponse is the part of a chat-completions response the agent reads.
type ChatResponse struct {
	Choices []struct {
		Message      ChatMessage `json:"message"`
		FinishReason string      `json:"finish_reason"`
	} `json:"choices"`
}

// Exchange is one model call as sent and received: the exact bytes, for
// the receipt's hashes, and the decoded reply.
type Exchange struct {
	Request, Response []byte
	Reply             ChatMessage
}

// ModelError is a failed model call; Msg is safe to show in a conversation
// (it holds no request content).
type ModelError struct {
	Msg string
	// Status is the HTTP status, 0 when there was none. Unlike Msg (which
	// may quote the endpoint), it is safe to log.
	Status int
}

func (e *ModelError) Error() string { return "model endpoint: " + e.Msg }

// Complete sends req and returns the first choice's message.
func (m *ModelClient) Complete(ctx context.Context, req *ChatRequest) (*Exchange, error) {
	req.Model = m.Model
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding model request: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(m.URL, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return nil, &ModelError{Msg: "bad URL"}
	}
	hr.Header.Set("Content-Type", "application/json")
	if m.APIKey != "" {
		hr.Header.Set("Authorization", "Bearer "+m.APIKey)
	}
	hc := m.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &ModelError{Msg: "no answer in time"}
		}
		return nil, &ModelError{Msg: "unreachable: " + sanitize(err.Error())}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxModelResponse+1))
	if err != nil {
		return nil, &ModelError{Msg: "reading the answer failed"}
	}
	if len(raw) > MaxModelResponse {
		return nil, &ModelError{Msg: fmt.Sprintf("answer exceeds %d bytes", MaxModelResponse)}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &ModelError{Msg: fmt.Sprintf("HTTP %d%s", resp.StatusCode, errorMessage(raw)), Status: resp.StatusCode}
	}
	reply, err := ParseChatResponse(raw)
	if err != nil {
		return nil, err
	}
	return &Exchange{Request: body, Response: raw, Reply: *reply}, nil
}

// ParseChatResponse decodes a chat-completions response body (untrusted:
// unknown fields are ignored, as OpenAI-compatible servers add their own)
// and returns its first choice's message, checked: role assistant, tool
// calls well formed.
func ParseChatResponse(raw []byte) (*ChatMessage, error) {
	var cr ChatResponse
	if err := json.Unmarshal(raw, &cr); err != nil {
		return nil, &ModelError{Msg: "malformed answer (not a chat completion)"}
	}
	if len(cr.Choices) == 0 {
		return nil, &ModelError{Msg: "answer has no choices"}
	}
	msg := cr.Choices[0].Message
	if msg.Role != "" && msg.Role != "assistant" {
		return nil, &ModelError{Msg: fmt.Sprintf("answer has role %q, want assistant", truncate(msg.Role, 20))}
	}
	msg.Role = "assistant"
	if len(msg.ToolCalls) > 64 {
		return nil, &ModelError{Msg: fmt.Sprintf("answer asks for %d tool calls", len(msg.ToolCalls))}
	}
	for i, tc := range msg.ToolCalls {
		if tc.Function.Name == "" || len(tc.Function.Name) > 256 {
			return nil, &ModelError{Msg: "answer has a tool call without a valid name"}
		}
		if tc.ID == "" {
			msg.ToolCalls[i].ID = fmt.Sprintf("call_%d", i)
		}
		msg.ToolCalls[i].Type = "function"
	}
	return &msg, nil
}

// errorMessage extracts an OpenAI-style {"error":{"message"}} for the
// reason, truncated and stripped of control characters.
func errorMessage(raw []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
		return ": " + sanitize(truncate(e.Error.Message, 200))
	}
	return ""
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && (s[n]&0xc0) == 0x80 {
		n--
	}
	return s[:n] + "…"
}
