package agent

import "github.com/go-json-experiment/json"

func wireMarshal(v any) ([]byte, error) { return json.Marshal(v, json.Deterministic(true)) }
